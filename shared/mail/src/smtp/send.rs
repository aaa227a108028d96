//! Sending exactly once. The rule, per idempotency key:
//!
//! 1. A stored record with another request hash: `KeyReused` (409). With the same hash and status
//!    `sent` or `uncertain`: the first result again, nothing sent (`replay`). `pending`: another
//!    request is sending it (`InProgress`, 409), unless it has been pending for longer than any
//!    process may run ([`STALE_PENDING_SECONDS`]): then it became `uncertain`. `failed`: nothing
//!    reached the server's queue, so this request may send it (it replaces the record under a
//!    version condition, so of two retries only one sends).
//! 2. Otherwise the request is validated and built, and the key is claimed with a conditional
//!    write (`NotExists`) before any connection is opened.
//! 3. The record ends `sent`, `failed` (nothing left us, or the server refused it explicitly) or
//!    `uncertain` (message data was on the wire when the session broke: never re-sent).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::Address;
use mailroom_core::domain::{Account, AccountStatus, ProviderSettings, SendRecord, SendStatus};
use mailroom_core::ports::{AccessGrant, TokenError, TokenSource};
use mailroom_core::records::{MessageKey, RecordError, Repository, SendClaim, StoredSend};
use mailroom_core::time::now_unix;

use super::connect::SmtpConnector;
use super::error::SmtpError;
use super::outcome::{
    STALE_PENDING_SECONDS, SendError, SendFailure, SendResult, mark_reauth_required,
    note_auth_disabled, reported,
};
use super::session::{DeliveryOutcome, SmtpSession};
use crate::compose::{self, ComposeError, Composed, Limits, ReplyContext, SendRequest};

/// Sends mail for accounts.
#[derive(Clone)]
pub struct Mailer {
    repo: Repository,
    tokens: Arc<dyn TokenSource>,
    connector: SmtpConnector,
    limits: Limits,
}

fn status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::ReauthRequired => "reauth_required",
        AccountStatus::Degraded => "degraded",
    }
}

impl Mailer {
    pub fn new(
        repo: Repository,
        tokens: Arc<dyn TokenSource>,
        connector: SmtpConnector,
        limits: Limits,
    ) -> Self {
        Self {
            repo,
            tokens,
            connector,
            limits,
        }
    }

    /// The stored record of one key, with a long-pending record shown as `uncertain`.
    pub async fn record(
        &self,
        account_id: &str,
        key: &str,
    ) -> Result<Option<SendRecord>, RecordError> {
        Ok(self
            .repo
            .get_send(account_id, key)
            .await?
            .map(|s| reported(s.record)))
    }

    /// Sends `request` for `account_id` once per `key` (see the module documentation).
    pub async fn send(
        &self,
        account_id: &str,
        key: &str,
        request: &SendRequest,
    ) -> Result<SendResult, SendError> {
        let hash = request.canonical_hash();
        let account = self
            .repo
            .get_account(account_id)
            .await?
            .ok_or_else(|| SendError::AccountNotFound(account_id.to_owned()))?;
        let existing = self.repo.get_send(account_id, key).await?;
        if let Some(done) = self.settled(existing.as_ref(), &hash).await? {
            return Ok(done);
        }
        if account.status == AccountStatus::ReauthRequired {
            return Err(SendError::AccountInactive {
                account_id: account.id,
                status: status_name(account.status),
                reason: account
                    .status_reason
                    .unwrap_or_else(|| "the grant was revoked".into()),
            });
        }
        let provider = self
            .repo
            .get_provider(&account.provider_id)
            .await?
            .ok_or_else(|| SendError::ProviderMissing(account.provider_id.clone()))?;
        let composed = self.compose(&account, request).await?;

        let now = now_unix();
        let pending = SendRecord {
            account_id: account.id.clone(),
            idempotency_key: key.to_owned(),
            request_hash: hash.clone(),
            status: SendStatus::Pending,
            message_id: Some(composed.message_id.clone()),
            accepted: Vec::new(),
            rejected: Vec::new(),
            error: None,
            created_at: existing.as_ref().map_or(now, |e| e.record.created_at),
            updated_at: now,
        };
        let claimed = match &existing {
            // Only a `failed` record gets here: replace it, unless another retry did first.
            Some(previous) => self.repo.replace_send(previous, &pending).await?,
            None => match self.repo.claim_send(&pending).await? {
                SendClaim::Claimed(stored) => Some(stored),
                SendClaim::Taken(stored) => {
                    // Another request claimed the key between our read and our write.
                    if let Some(done) = self.settled(Some(&stored), &hash).await? {
                        return Ok(done);
                    }
                    None
                }
            },
        };
        let Some(claimed) = claimed else {
            return Err(SendError::InProgress);
        };
        self.attempt(&account, &provider, &composed, claimed).await
    }

    /// The answer for a key that is already settled, `Ok(None)` when this request may send.
    async fn settled(
        &self,
        existing: Option<&StoredSend>,
        hash: &str,
    ) -> Result<Option<SendResult>, SendError> {
        let Some(stored) = existing else {
            return Ok(None);
        };
        if stored.record.request_hash != hash {
            return Err(SendError::KeyReused);
        }
        match stored.record.status {
            SendStatus::Sent | SendStatus::Uncertain => Ok(Some(SendResult {
                record: stored.record.clone(),
                replay: true,
            })),
            SendStatus::Failed => Ok(None),
            SendStatus::Pending
                if now_unix() - stored.record.updated_at < STALE_PENDING_SECONDS =>
            {
                Err(SendError::InProgress)
            }
            SendStatus::Pending => {
                let record = reported(stored.record.clone());
                // Best effort: the next read reports the same thing either way.
                if let Err(e) = self.repo.replace_send(stored, &record).await {
                    tracing::warn!(error = %e, "could not mark a stale pending send uncertain");
                }
                Ok(Some(SendResult {
                    record,
                    replay: true,
                }))
            }
        }
    }

    async fn compose(
        &self,
        account: &Account,
        request: &SendRequest,
    ) -> Result<Composed, SendError> {
        let draft = compose::validate(request, &self.limits)?;
        let sender: Address = account.email.parse().map_err(|e| {
            ComposeError::Build(format!(
                "the account address {:?} cannot send: {e}",
                account.email
            ))
        })?;
        let reply = match &request.in_reply_to_message_id {
            None => None,
            Some(id) => Some(self.reply_context(&account.id, id).await?),
        };
        Ok(compose::build(
            &draft,
            &sender,
            reply.as_ref(),
            SystemTime::now(),
        )?)
    }

    async fn reply_context(&self, account_id: &str, id: &str) -> Result<ReplyContext, SendError> {
        let target = |reason: &str| SendError::ReplyTarget {
            id: id.to_owned(),
            reason: reason.to_owned(),
        };
        let key = MessageKey::from_message_id(id).ok_or_else(|| target("is not a message id"))?;
        let parent = self
            .repo
            .get_message(account_id, &key)
            .await?
            .ok_or_else(|| target("no such message is stored for this account"))?;
        ReplyContext::from_parent(&parent)
            .ok_or_else(|| target("the message has no Message-ID to reply to"))
    }

    /// Connects, logs in (refreshing the token once if it is refused), delivers and records.
    async fn attempt(
        &self,
        account: &Account,
        provider: &ProviderSettings,
        composed: &Composed,
        claimed: StoredSend,
    ) -> Result<SendResult, SendError> {
        let mut record = claimed.record.clone();
        let session = match self.login(account, provider).await {
            Ok(session) => session,
            Err(failure) => {
                record.status = SendStatus::Failed;
                record.error = Some(failure.to_string());
                self.finish(&claimed, &record).await;
                if let SendFailure::Smtp(SmtpError::AuthDisabled { reply }) = &failure {
                    note_auth_disabled(&self.repo, &account.id, reply).await;
                }
                return Err(SendError::Failed {
                    record: Box::new(record),
                    failure,
                });
            }
        };
        let mut session = session;
        let delivery = session
            .deliver(
                &composed.envelope_from,
                &composed.recipients,
                &composed.bytes,
            )
            .await;
        record.accepted = delivery.accepted;
        record.rejected = delivery.rejected.iter().map(ToString::to_string).collect();
        let failure = match delivery.outcome {
            DeliveryOutcome::Sent { .. } => {
                record.status = SendStatus::Sent;
                None
            }
            DeliveryOutcome::Uncertain(e) => {
                record.status = SendStatus::Uncertain;
                record.error = Some(e.to_string());
                tracing::warn!(account_id = %account.id, error = %e, "send uncertain: the session broke after the data was sent");
                None
            }
            DeliveryOutcome::NotSent(e) => {
                record.status = SendStatus::Failed;
                record.error = Some(e.to_string());
                Some(SendFailure::Smtp(e))
            }
        };
        self.finish(&claimed, &record).await;
        // The caller's answer does not wait for QUIT's reply: one round trip to the provider
        // (tens of ms over the internet) that changes nothing about the outcome.
        tokio::spawn(session.quit());
        match failure {
            None => {
                tracing::info!(account_id = %account.id, status = ?record.status, recipients = record.accepted.len(), "send finished");
                Ok(SendResult {
                    record,
                    replay: false,
                })
            }
            Some(failure) => Err(SendError::Failed {
                record: Box::new(record),
                failure,
            }),
        }
    }

    /// Writes the final record. A failure here leaves it `pending`, which turns `uncertain`
    /// after [`STALE_PENDING_SECONDS`]: never a duplicate.
    async fn finish(&self, claimed: &StoredSend, record: &SendRecord) {
        let mut record = record.clone();
        record.updated_at = now_unix();
        match self.repo.replace_send(claimed, &record).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::error!(key = %record.idempotency_key, "the send record changed under us")
            }
            Err(e) => {
                tracing::error!(key = %record.idempotency_key, error = %e, "could not store the send result")
            }
        }
    }

    async fn token(&self, account_id: &str, force: bool) -> Result<AccessGrant, SendFailure> {
        self.tokens
            .access_token(account_id, force)
            .await
            .map_err(|e| match e {
                TokenError::ReauthRequired { account_id, reason } => {
                    SendFailure::ReauthRequired { account_id, reason }
                }
                TokenError::AdminActionRequired {
                    provider_id,
                    reason,
                } => SendFailure::AdminActionRequired {
                    provider_id,
                    reason,
                },
                other => SendFailure::TokenUnavailable(other.to_string()),
            })
    }

    /// An authenticated session; a refused token is refreshed once, and a fresh token refused
    /// too marks the account `reauth_required`.
    async fn login(
        &self,
        account: &Account,
        provider: &ProviderSettings,
    ) -> Result<SmtpSession, SendFailure> {
        let grant = self.token(&account.id, false).await?;
        match self.open(provider, &grant).await {
            Err(SendFailure::Smtp(SmtpError::AuthRejected { reply, .. })) => {
                tracing::info!(account_id = %account.id, reply = %reply, "SMTP refused the token; refreshing it");
                let fresh = self.token(&account.id, true).await?;
                match self.open(provider, &fresh).await {
                    Err(SendFailure::Smtp(SmtpError::AuthRejected { reply, .. })) => {
                        let reason =
                            format!("the SMTP server refused a freshly refreshed token: {reply}");
                        mark_reauth_required(&self.repo, &account.id, &reason).await;
                        Err(SendFailure::ReauthRequired {
                            account_id: account.id.clone(),
                            reason,
                        })
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn open(
        &self,
        provider: &ProviderSettings,
        grant: &AccessGrant,
    ) -> Result<SmtpSession, SendFailure> {
        let mut session = self.connector.connect(&provider.smtp).await?;
        match session
            .authenticate(&grant.email, &grant.access_token)
            .await
        {
            Ok(()) => Ok(session),
            Err(e) => {
                session.quit().await;
                Err(e.into())
            }
        }
    }
}

/// The per-step network timeout senders use by default.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(20);

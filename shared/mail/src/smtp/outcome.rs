//! What a send comes to: its result, the errors that stop it, and the two record rules shared
//! by the sender (a long-pending record reads as `uncertain`; a token refused even fresh marks
//! the account `reauth_required`).

use mailroom_core::domain::{Account, AccountStatus, SendRecord, SendStatus};
use mailroom_core::records::{RecordError, Repository};
use mailroom_core::time::{now_unix, to_rfc3339};
use serde_json::{Map, Value, json};

use super::error::{AUTH_DISABLED_FIX, SmtpError};
use super::preflight::PREFLIGHT_KEY;
use crate::compose::ComposeError;

/// A record pending this long belongs to a process that died mid-send (a Lambda lives at most
/// 15 minutes): it is reported as `uncertain`.
pub const STALE_PENDING_SECONDS: i64 = 15 * 60;

/// Why a send attempt failed after the key was claimed (the record says `failed`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendFailure {
    #[error("account {account_id} must be connected again: {reason}")]
    ReauthRequired { account_id: String, reason: String },
    #[error("the OAuth app {provider_id} needs an administrator: {reason}")]
    AdminActionRequired { provider_id: String, reason: String },
    #[error("could not get an access token now: {0}")]
    TokenUnavailable(String),
    #[error(transparent)]
    Smtp(#[from] SmtpError),
}

/// Why a message was not sent (or not sent by this request).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("account {0} does not exist")]
    AccountNotFound(String),
    #[error("account {account_id} cannot send while it is {status}: {reason}")]
    AccountInactive {
        account_id: String,
        status: &'static str,
        reason: String,
    },
    #[error("the provider settings {0} of the account are missing")]
    ProviderMissing(String),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error("in_reply_to_message_id {id:?}: {reason}")]
    ReplyTarget { id: String, reason: String },
    #[error("the idempotency key was already used for a different request")]
    KeyReused,
    #[error("a send with this idempotency key is in progress")]
    InProgress,
    /// The attempt failed; `record` (status `failed`) is stored and a retry may send.
    #[error("the message was not sent: {failure}")]
    Failed {
        record: Box<SendRecord>,
        failure: SendFailure,
    },
    #[error(transparent)]
    Store(#[from] RecordError),
}

/// What a send request got: the record, and whether it is a replay of an earlier request.
#[derive(Debug, Clone)]
pub struct SendResult {
    pub record: SendRecord,
    pub replay: bool,
}

/// A pending record older than any process may live is reported as `uncertain`.
pub(crate) fn reported(mut record: SendRecord) -> SendRecord {
    if record.status == SendStatus::Pending
        && now_unix() - record.updated_at >= STALE_PENDING_SECONDS
    {
        record.status = SendStatus::Uncertain;
        record.error = Some("the sending process stopped before recording the result".into());
    }
    record
}

/// Applies `change` to the stored account, re-reading it on a conflict; best effort (the
/// caller's error already says the same thing).
async fn change_account(
    repo: &Repository,
    account_id: &str,
    what: &str,
    change: impl Fn(&mut Account),
) {
    for _ in 0..3 {
        let mut account = match repo.get_account(account_id).await {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(account_id, error = %e, what, "could not read the account");
                return;
            }
        };
        change(&mut account);
        account.updated_at = now_unix();
        match repo.update_account(&mut account).await {
            Ok(()) => return,
            Err(e) if e.is_conflict() => continue,
            Err(e) => {
                tracing::warn!(account_id, error = %e, what, "could not update the account");
                return;
            }
        }
    }
}

/// Marks an account `reauth_required`.
pub(crate) async fn mark_reauth_required(repo: &Repository, account_id: &str, reason: &str) {
    change_account(repo, account_id, "mark reauth_required", |a| {
        a.status = AccountStatus::ReauthRequired;
        a.status_reason = Some(reason.to_owned());
    })
    .await;
}

/// Records on the account's preflight that SMTP AUTH is disabled for its tenant, so the account
/// view says so (and names the fix) without waiting for the next preflight.
pub(crate) async fn note_auth_disabled(repo: &Repository, account_id: &str, reply: &str) {
    change_account(repo, account_id, "note SMTP AUTH disabled", |a| {
        let mut preflight = match a.extra.get(PREFLIGHT_KEY) {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::from_iter([("imap".to_owned(), json!("not_checked"))]),
        };
        preflight.insert("smtp".into(), json!("auth_disabled_for_tenant"));
        preflight.insert("smtp_detail".into(), json!(reply));
        preflight.insert("fix".into(), json!(AUTH_DISABLED_FIX));
        preflight.insert("checked_at".into(), json!(to_rfc3339(now_unix())));
        a.extra
            .insert(PREFLIGHT_KEY.to_owned(), Value::Object(preflight));
    })
    .await;
}

//! One account's sync from lease to health: take the lease, get a token, log in (refreshing the
//! token once if the server refuses it), sync each folder, log out, then record the outcome:
//! success clears errors, throttling parks the account, a login refused after a refresh sets
//! `reauth_required`, other failures count toward `degraded`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;

use mailroom_core::domain::{Account, AccountStatus, MailEndpoint};
use mailroom_core::ports::{AccessGrant, TokenError};
use mailroom_core::time::now_unix;
use serde_json::json;
use tokio::time::Instant;

use super::batch::BatchTarget;
use super::folder::{FolderJob, FolderReport};
use super::{SENT_MARKER, SYNC_LEASE, SyncEngine, SyncError};
use crate::imap::{ErrorKind, ImapError, ImapSession};

/// What a sync run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncReport {
    pub folders: Vec<FolderReport>,
    /// False when the deadline stopped the run with work left (the next run continues).
    pub complete: bool,
}

impl SyncReport {
    pub fn new_messages(&self) -> u64 {
        self.folders.iter().map(|f| f.new_messages).sum()
    }
}

/// How a sync job ended.
#[derive(Debug)]
pub enum SyncOutcome {
    Synced(SyncReport),
    /// Another worker holds the account's sync lease: it is syncing right now.
    Busy,
    /// Nothing to do (the account is gone or must be connected again).
    Skipped(String),
    /// The sync failed; the account's health records why.
    Failed {
        kind: FailureKind,
        error: String,
    },
}

/// Why a sync failed, as recorded on the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Throttled,
    ReauthRequired,
    AdminActionRequired,
    /// Network, server or protocol trouble: counts toward `degraded`.
    Transient,
}

impl SyncEngine {
    /// Syncs one account, stopping between batches once `deadline` has passed. `Err` only when
    /// the store itself failed (nothing could be recorded; the job should be retried).
    pub async fn sync_account(
        &self,
        account_id: &str,
        deadline: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        let Some(account) = self.repo.get_account(account_id).await? else {
            return Ok(SyncOutcome::Skipped("the account does not exist".into()));
        };
        if account.status == AccountStatus::ReauthRequired {
            return Ok(SyncOutcome::Skipped(
                "the account must be connected again".into(),
            ));
        }
        // A provider's back-off holds for requested syncs too: never knock before it ends.
        if let Some(until) = account.extra.get("parked_until").and_then(|v| v.as_i64())
            && until > now_unix()
        {
            return Ok(SyncOutcome::Skipped(format!(
                "the provider asked to wait until {}",
                mailroom_core::time::to_rfc3339(until)
            )));
        }
        let lease_seconds = self.settings.lease.as_secs().max(1) as i64;
        let Some(lease) = self
            .repo
            .try_lease(
                account_id,
                SYNC_LEASE,
                &self.settings.holder,
                now_unix(),
                lease_seconds,
            )
            .await?
        else {
            tracing::info!(account_id, "another worker is syncing this account");
            return Ok(SyncOutcome::Busy);
        };
        let result = self.run(&account, deadline).await;
        let recorded = self.record(account_id, &result).await;
        if let Err(e) = self.repo.release_lease(&lease).await {
            tracing::warn!(account_id, error = %e, "could not release the sync lease; it expires on its own");
        }
        recorded?;
        if self.repo.get_account(account_id).await?.is_none() {
            // Deleted while this run synced (a DELETE does not wait for a running sync): what the
            // run wrote after the delete cleared the account would be left behind; remove it.
            self.forget(account_id).await?;
            return Ok(SyncOutcome::Skipped(
                "the account was deleted during the sync".into(),
            ));
        }
        Ok(match result {
            Ok(report) => SyncOutcome::Synced(report),
            Err(SyncError::Store(e)) => return Err(SyncError::Store(e)),
            Err(SyncError::Token(TokenError::NotFound { .. })) => {
                SyncOutcome::Skipped("the account does not exist".into())
            }
            Err(e) => SyncOutcome::Failed {
                kind: failure_kind(&e),
                error: e.to_string(),
            },
        })
    }

    /// Removes the synced data of a deleted account: messages, raw sources and folder cursors.
    async fn forget(&self, account_id: &str) -> Result<(), SyncError> {
        super::delete_account_messages(&self.repo, self.blobs.as_ref(), account_id).await?;
        for cursor in self.repo.folder_cursors(account_id).await? {
            self.repo
                .delete_folder_cursor(account_id, &cursor.folder)
                .await?;
        }
        tracing::info!(
            account_id,
            "account deleted during its sync; its synced data was removed"
        );
        Ok(())
    }

    async fn run(&self, account: &Account, deadline: Instant) -> Result<SyncReport, SyncError> {
        let provider = self
            .repo
            .get_provider(&account.provider_id)
            .await?
            .ok_or_else(|| SyncError::NoProvider(account.provider_id.clone()))?;
        let mut forced = false;
        loop {
            let grant = self.tokens.access_token(&account.id, forced).await?;
            match self
                .with_session(&provider.imap, &grant, account, deadline)
                .await
            {
                // The server refused the token (or it expired mid-session): refresh it once.
                Err(SyncError::Imap(e)) if e.kind() == ErrorKind::Auth && !forced => {
                    tracing::info!(account_id = %account.id, error = %e, "IMAP refused the token; refreshing it once");
                    forced = true;
                }
                other => return other,
            }
        }
    }

    async fn with_session(
        &self,
        endpoint: &MailEndpoint,
        grant: &AccessGrant,
        account: &Account,
        deadline: Instant,
    ) -> Result<SyncReport, SyncError> {
        let mut session = self
            .connector
            .open_session(endpoint, &grant.email, &grant.access_token)
            .await?;
        let result = self.sync_folders(&mut session, account, deadline).await;
        session.logout().await;
        result
    }

    async fn sync_folders(
        &self,
        session: &mut ImapSession,
        account: &Account,
        deadline: Instant,
    ) -> Result<SyncReport, SyncError> {
        session.enable_condstore().await?;
        let folders = self.folders(session, account).await?;
        let mut cursors: HashMap<String, _> = self
            .repo
            .folder_cursors(&account.id)
            .await?
            .into_iter()
            .map(|c| (c.folder.clone(), c))
            .collect();
        let mut report = SyncReport {
            folders: Vec::new(),
            complete: true,
        };
        let now = now_unix();
        let batches = AtomicU32::new(0);
        for folder in &folders {
            let mut job = FolderJob {
                target: BatchTarget {
                    repo: &self.repo,
                    blobs: &self.blobs,
                    account_id: &account.id,
                    folder,
                    uid_validity: 0,
                    max_in_flight: self.settings.max_in_flight,
                    now,
                },
                settings: &self.settings,
                deadline,
                batches: &batches,
            };
            let folder_report = match job.run(session, cursors.remove(folder)).await {
                // A configured folder that was deleted on the server is skipped, not a failure.
                Err(SyncError::Imap(e)) if e.is_missing_folder() => {
                    tracing::warn!(account_id = %account.id, folder = %folder, error = %e, "folder not found; skipped");
                    continue;
                }
                other => other?,
            };
            let stop = folder_report.incomplete;
            report.folders.push(folder_report);
            if stop {
                report.complete = false;
                break;
            }
        }
        Ok(report)
    }

    /// The folders to sync: the account's own list, else INBOX and the `\Sent` folder.
    async fn folders(
        &self,
        session: &mut ImapSession,
        account: &Account,
    ) -> Result<Vec<String>, SyncError> {
        let configured: Vec<String> = account
            .extra
            .get("sync_folders")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_else(|| vec!["INBOX".to_owned(), SENT_MARKER.to_owned()]);
        let mut out: Vec<String> = Vec::new();
        for name in configured {
            let resolved = if name.eq_ignore_ascii_case(SENT_MARKER) {
                session.sent_folder().await?
            } else {
                Some(name)
            };
            if let Some(folder) = resolved
                && !out.contains(&folder)
            {
                out.push(folder);
            }
        }
        Ok(out)
    }

    /// Writes the outcome onto the account, re-reading it when a concurrent writer (a token
    /// refresh) got there first.
    async fn record(
        &self,
        account_id: &str,
        result: &Result<SyncReport, SyncError>,
    ) -> Result<(), SyncError> {
        if matches!(result, Err(SyncError::Store(_))) {
            // The store is failing: nothing can be recorded; the job is retried.
            return Ok(());
        }
        for _ in 0..5 {
            let Some(mut account) = self.repo.get_account(account_id).await? else {
                return Ok(());
            };
            apply(&mut account, result, &self.settings);
            match self.repo.update_account(&mut account).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SyncError::Internal(
            "the account kept changing while the sync outcome was recorded".into(),
        ))
    }
}

fn failure_kind(e: &SyncError) -> FailureKind {
    match e {
        SyncError::Imap(i) if i.kind() == ErrorKind::Throttled => FailureKind::Throttled,
        SyncError::Imap(i) if i.kind() == ErrorKind::Auth => FailureKind::ReauthRequired,
        SyncError::Token(TokenError::ReauthRequired { .. }) => FailureKind::ReauthRequired,
        SyncError::Token(TokenError::AdminActionRequired { .. }) => {
            FailureKind::AdminActionRequired
        }
        _ => FailureKind::Transient,
    }
}

fn apply(
    account: &mut Account,
    result: &Result<SyncReport, SyncError>,
    settings: &super::SyncSettings,
) {
    let now = now_unix();
    let interval = settings.interval.as_secs() as i64;
    account.updated_at = now;
    match result {
        Ok(report) => {
            account.last_sync_at = Some(now);
            // An unfinished run continues as soon as the scheduler looks again.
            account.next_sync_at = if report.complete { now + interval } else { now };
            account.failure_count = 0;
            account.last_error = None;
            if account.status == AccountStatus::Degraded {
                account.status = AccountStatus::Active;
                account.status_reason = None;
            }
            account.extra.remove("parked_until");
            let mut folders = account
                .extra
                .get("folders")
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            for f in &report.folders {
                folders.insert(
                    f.folder.clone(),
                    json!({ "messages": f.message_count, "synced_at": now }),
                );
            }
            account.extra.insert("folders".into(), json!(folders));
        }
        Err(e) => {
            account.last_error = Some(e.to_string());
            match failure_kind(e) {
                FailureKind::Throttled => {
                    let wait = match e {
                        SyncError::Imap(ImapError::Throttled { retry_after, .. }) => {
                            retry_after.as_secs_f64().ceil() as i64
                        }
                        _ => interval,
                    };
                    account.next_sync_at = now + wait.max(1);
                    account
                        .extra
                        .insert("parked_until".into(), json!(account.next_sync_at));
                }
                FailureKind::ReauthRequired => {
                    account.status = AccountStatus::ReauthRequired;
                    account.status_reason = Some(e.to_string());
                }
                FailureKind::AdminActionRequired => {
                    account.next_sync_at = now + interval;
                }
                FailureKind::Transient => {
                    account.failure_count = account.failure_count.saturating_add(1);
                    if account.failure_count >= settings.degraded_after {
                        account.status = AccountStatus::Degraded;
                        account.status_reason = Some(e.to_string());
                    }
                    // Back off with the failures, at most an hour.
                    let factor = i64::from(account.failure_count.min(12));
                    account.next_sync_at = now + (interval * factor).min(3600).max(interval);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mailroom_core::domain::Tokens;
    use secrecy::SecretString;

    use super::*;
    use crate::sync::SyncSettings;

    fn account() -> Account {
        Account {
            id: "a1".into(),
            owner: "o".into(),
            provider_id: "p".into(),
            email: "a@example.test".into(),
            identity: "i".into(),
            status: AccountStatus::Active,
            status_reason: None,
            tokens: Tokens {
                access_token: SecretString::from("x"),
                refresh_token: SecretString::from("y"),
                access_expires_at: 0,
            },
            granted_scopes: vec![],
            created_at: 0,
            updated_at: 0,
            next_sync_at: 0,
            last_sync_at: None,
            last_error: None,
            failure_count: 0,
            extra: Default::default(),
            version: 1,
        }
    }

    #[test]
    fn throttling_parks_the_account_until_the_suggested_time() {
        let mut a = account();
        let err = Err(SyncError::Imap(ImapError::Throttled {
            retry_after: Duration::from_millis(299_951),
            reason: "Request is throttled".into(),
        }));
        apply(&mut a, &err, &SyncSettings::default());
        let now = now_unix();
        assert!((now + 299..=now + 301).contains(&a.next_sync_at));
        assert_eq!(a.extra["parked_until"], json!(a.next_sync_at));
        assert_eq!((a.status, a.failure_count), (AccountStatus::Active, 0));
    }

    #[test]
    fn repeated_connection_failures_degrade_and_success_clears() {
        let mut a = account();
        let settings = SyncSettings::default();
        let err = Err(SyncError::Imap(ImapError::Connect {
            server: "imap.example.test:993".into(),
            reason: "connection refused".into(),
        }));
        for expected in 1..=3 {
            apply(&mut a, &err, &settings);
            assert_eq!(a.failure_count, expected);
        }
        assert_eq!(a.status, AccountStatus::Degraded);
        assert!(
            a.last_error
                .as_deref()
                .is_some_and(|e| e.contains("refused"))
        );
        apply(
            &mut a,
            &Ok(SyncReport {
                folders: vec![],
                complete: true,
            }),
            &settings,
        );
        assert_eq!(
            (a.status, a.failure_count, a.last_error.clone()),
            (AccountStatus::Active, 0, None)
        );
        assert!(a.last_sync_at.is_some());
    }

    #[test]
    fn a_login_refused_after_refresh_requires_reauth() {
        let mut a = account();
        let err = Err(SyncError::Imap(ImapError::Auth {
            reason: "AUTHENTICATIONFAILED".into(),
            challenge: None,
        }));
        apply(&mut a, &err, &SyncSettings::default());
        assert_eq!(a.status, AccountStatus::ReauthRequired);
        assert!(a.status_reason.is_some());
    }
}

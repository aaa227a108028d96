//! One account's sync from check to health: get a token, log in (refreshing the token once if
//! the server refuses it), check and sync the folders (`check.rs`), log out, then record the
//! outcome when it changes the account: success clears errors, throttling parks the account, a
//! login refused after a refresh sets `reauth_required`, other failures count toward `degraded`.

use mailroom_core::domain::{Account, AccountStatus, FolderCursor, MailEndpoint};
use mailroom_core::ports::{AccessGrant, TokenError};
use mailroom_core::records::Lease;
use mailroom_core::time::now_unix;
use tokio::time::Instant;

use super::folder::FolderReport;
use super::health::{apply, failure_kind, needs_record};
use super::{SENT_MARKER, SyncEngine, SyncError};
use crate::imap::{ErrorKind, ImapSession};

/// How long before the lease ends a run stops taking new batches.
const LEASE_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

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
    /// Syncs one account (a scheduled poll), stopping between batches once `deadline` has
    /// passed. `Err` only when the store itself failed (nothing could be recorded; the job
    /// should be retried).
    pub async fn sync_account(
        &self,
        account_id: &str,
        deadline: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        self.sync(account_id, None, deadline, false).await
    }

    /// Syncs one account for a scheduled job that carries the account's `version` as the
    /// scheduler found it: when this process checked that very version lately, the check uses
    /// its copy of the account and cursors and reads nothing (`cache.rs`).
    pub async fn sync_account_at(
        &self,
        account_id: &str,
        version: Option<u64>,
        deadline: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        self.sync(account_id, version, deadline, false).await
    }

    /// Syncs one account because someone asked for it: like a scheduled poll, except that the
    /// outcome is always recorded, so `last_sync_at` shows the requested sync happened.
    pub async fn sync_account_requested(
        &self,
        account_id: &str,
        deadline: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        self.sync(account_id, None, deadline, true).await
    }

    async fn sync(
        &self,
        account_id: &str,
        version: Option<u64>,
        deadline: Instant,
        requested: bool,
    ) -> Result<SyncOutcome, SyncError> {
        // Two jobs of one account in one process (a duplicate in a batch, a poll arriving during
        // a long sync) never run at once; across processes the lease guards what is written.
        let Some(_running) = self.local.enter(account_id) else {
            tracing::debug!(account_id, "this process is already syncing the account");
            return Ok(SyncOutcome::Busy);
        };
        // A poll reads eventually consistent (half the price): the check writes nothing on its
        // strength; the outcome write re-reads the account, the lease path re-reads the cursors.
        // A requested sync reads consistently (it may follow the account's creation at once).
        // A poll reads the account and its cursors in one query of the account's partition,
        // unless this process checked the version the job carries lately.
        let cached = version
            .filter(|_| !requested)
            .and_then(|v| self.local.accounts.get(account_id, v));
        let from_cache = cached.is_some();
        let (account, mut known_cursors) = if let Some(hit) = cached {
            (Some(hit.account), Some(hit.cursors))
        } else if requested {
            self.local.accounts.forget(account_id);
            (self.repo.get_account(account_id).await?, None)
        } else {
            match self.repo.account_with_cursors_stale(account_id).await? {
                Some((account, cursors)) => (Some(account), Some(cursors)),
                None => (None, None),
            }
        };
        let read_cursors = known_cursors.clone();
        let Some(account) = account else {
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
        // Never work past the lease: after it another worker may open a second session. The
        // lease is taken later in the run, so ending relative to now is on the safe side.
        let held_for = self.settings.lease;
        let lease_end = Instant::now() + held_for.saturating_sub(LEASE_MARGIN.min(held_for / 4));
        let mut lease = None;
        let result = self
            .run(
                &account,
                deadline.min(lease_end),
                &mut lease,
                &mut known_cursors,
                from_cache,
            )
            .await;
        if matches!(result, Err(SyncError::Busy)) {
            self.local.accounts.forget(account_id);
            tracing::info!(account_id, "another worker is syncing this account");
            return Ok(SyncOutcome::Busy);
        }
        if matches!(result, Err(SyncError::Changed)) {
            self.local.accounts.forget(account_id);
            if let Some(lease) = &lease
                && let Err(e) = self.repo.release_lease(lease).await
            {
                tracing::warn!(account_id, error = %e, "could not release the sync lease; it expires on its own");
            }
            return Ok(SyncOutcome::Skipped(
                "the account changed since it was read; the next poll uses its new state".into(),
            ));
        }
        // Whether the run stored anything (only a run under the lease can: it fetched mail or
        // moved a cursor). A check that found nothing new on a healthy account writes nothing.
        let stored = lease.is_some()
            && result.as_ref().map_or(true, |r| {
                !r.complete || r.folders.iter().any(|f| !f.unchanged)
            });
        let write =
            stored || requested || needs_record(&account, &result, &self.settings, now_unix());
        // Only a check that found nothing and writes nothing leaves the account and cursors as
        // read: kept for the next poll. Anything else may have changed them.
        match read_cursors {
            Some(cursors) if !write && lease.is_none() && result.is_ok() => {
                self.local.accounts.put(&account, cursors)
            }
            _ => self.local.accounts.forget(account_id),
        }
        let recorded = if write {
            self.record(account_id, &result).await
        } else {
            Ok(())
        };
        if let Some(lease) = &lease
            && let Err(e) = self.repo.release_lease(lease).await
        {
            tracing::warn!(account_id, error = %e, "could not release the sync lease; it expires on its own");
        }
        recorded?;
        // Only a run that stored something wrote cursors or messages that a delete could miss.
        if stored && self.repo.get_account(account_id).await?.is_none() {
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
            Err(SyncError::Busy) => SyncOutcome::Busy,
            Err(SyncError::Changed) => SyncOutcome::Skipped("the account changed".into()),
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

    /// The provider's IMAP settings, read at most once a minute per process.
    async fn imap_endpoint(&self, provider_id: &str) -> Result<MailEndpoint, SyncError> {
        if let Some(endpoint) = self.local.endpoint(provider_id) {
            return Ok(endpoint);
        }
        let provider = self
            .repo
            .get_provider(provider_id)
            .await?
            .ok_or_else(|| SyncError::NoProvider(provider_id.to_owned()))?;
        self.local.remember_endpoint(provider_id, &provider.imap);
        Ok(provider.imap)
    }

    async fn run(
        &self,
        account: &Account,
        deadline: Instant,
        lease: &mut Option<Lease>,
        known_cursors: &mut Option<Vec<FolderCursor>>,
        from_cache: bool,
    ) -> Result<SyncReport, SyncError> {
        let endpoint = self.imap_endpoint(&account.provider_id).await?;
        let mut forced = false;
        loop {
            let grant = self.tokens.access_token(&account.id, forced).await?;
            match self
                .with_session(
                    &endpoint,
                    &grant,
                    account,
                    (deadline, from_cache),
                    lease,
                    known_cursors,
                )
                .await
            {
                // The server refused the token (or it expired mid-session): refresh it once.
                Err(SyncError::Imap(e)) if e.kind() == ErrorKind::Auth && !forced => {
                    tracing::info!(account_id = %account.id, error = %e, "IMAP refused the token; refreshing it once");
                    forced = true;
                }
                Err(SyncError::Imap(e)) => {
                    self.local.forget_endpoint(&account.provider_id);
                    return Err(SyncError::Imap(e));
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
        (deadline, from_cache): (Instant, bool),
        lease: &mut Option<Lease>,
        known_cursors: &mut Option<Vec<FolderCursor>>,
    ) -> Result<SyncReport, SyncError> {
        let mut session = self
            .connector
            .open_session(endpoint, &grant.email, &grant.access_token)
            .await?;
        let result = self
            .sync_folders(
                &mut session,
                (account, from_cache),
                deadline,
                lease,
                known_cursors.take(),
            )
            .await;
        session.logout().await;
        result
    }

    /// The folders to sync: the account's own list, else INBOX and the `\Sent` folder.
    /// `cursors` (the account's folder cursors) say which folder was `\Sent` before and whether
    /// the server reported HIGHESTMODSEQ, so a sync with nothing new needs neither LIST nor
    /// CAPABILITY.
    pub(super) async fn folders(
        &self,
        session: &mut ImapSession,
        account: &Account,
        cursors: &std::collections::HashMap<String, FolderCursor>,
    ) -> Result<Vec<String>, SyncError> {
        session.hint_condstore(cursors.values().any(|c| c.highest_modseq.is_some()));
        let configured: Vec<String> = account
            .extra
            .get("sync_folders")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_else(|| vec!["INBOX".to_owned(), SENT_MARKER.to_owned()]);
        let mut out: Vec<String> = Vec::new();
        for name in configured {
            let resolved = if name.eq_ignore_ascii_case(SENT_MARKER) {
                self.sent_folder(session, &account.id, cursors).await?
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

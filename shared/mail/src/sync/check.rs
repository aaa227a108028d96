//! The folders of one session: a read-only check first (STATUS of each folder against its
//! stored cursor, read eventually consistent or cached by this process; no lease, nothing
//! written), then, only when a folder has something to fetch, the account's sync lease, the
//! account confirmed if it came from the cache, the cursors read again consistently, and the
//! folder syncs under it.

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;

use mailroom_core::domain::{Account, AccountStatus, FolderCursor};
use mailroom_core::records::Lease;
use mailroom_core::time::now_unix;
use tokio::time::Instant;

use super::account::SyncReport;
use super::batch::BatchTarget;
use super::folder::{FolderJob, FolderReport, unchanged};
use super::{SYNC_LEASE, SyncEngine, SyncError};
use crate::imap::ImapSession;

/// A folder STATUS proved unchanged, with the cursor it was compared against.
fn unchanged_report(cursor: &FolderCursor) -> FolderReport {
    FolderReport {
        folder: cursor.folder.clone(),
        unchanged: true,
        message_count: cursor.message_count,
        ..Default::default()
    }
}

impl SyncEngine {
    /// Takes the account's sync lease; [`SyncError::Busy`] when another worker holds it.
    async fn take_lease(&self, account_id: &str) -> Result<Lease, SyncError> {
        let lease_seconds = self.settings.lease.as_secs().max(1) as i64;
        self.repo
            .try_lease(
                account_id,
                SYNC_LEASE,
                &self.settings.holder,
                now_unix(),
                lease_seconds,
            )
            .await?
            .ok_or(SyncError::Busy)
    }

    /// The folder cursors of an account by folder name; `consistent: false` for the read-only
    /// check (a stale cursor only makes the check see a change the lease path then re-reads).
    async fn cursors(
        &self,
        account_id: &str,
        consistent: bool,
    ) -> Result<HashMap<String, FolderCursor>, SyncError> {
        let cursors = if consistent {
            self.repo.folder_cursors(account_id).await?
        } else {
            self.repo.folder_cursors_stale(account_id).await?
        };
        Ok(cursors.into_iter().map(|c| (c.folder.clone(), c)).collect())
    }

    /// STATUS of each folder against its cursor, stopping at the first that needs a sync.
    /// Returns the folders proved unchanged and whether all of them were.
    async fn check(
        &self,
        session: &mut ImapSession,
        account: &Account,
        folders: &[String],
        cursors: &HashMap<String, FolderCursor>,
    ) -> Result<(HashMap<String, FolderCursor>, bool), SyncError> {
        let mut proved = HashMap::new();
        for folder in folders {
            let cursor = cursors.get(folder);
            // A first sync goes straight to the lease (no STATUS before its SELECT). A folder
            // without a cursor on an account synced before (added to `sync_folders`, or
            // configured but missing on the server) is asked STATUS first, so a missing one is
            // skipped here instead of taking the lease on every poll.
            if cursor.is_none() && cursors.is_empty() {
                return Ok((proved, false));
            }
            let status = match session.status(folder).await {
                Ok(status) => status,
                // Skipped here as in the folder sync: a configured folder deleted on the server.
                Err(e) if e.is_missing_folder() => {
                    tracing::warn!(account_id = %account.id, folder = %folder, error = %e, "folder not found; skipped");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let Some(cursor) = cursor.filter(|c| unchanged(c, &status)) else {
                return Ok((proved, false));
            };
            proved.insert(folder.clone(), cursor.clone());
        }
        Ok((proved, true))
    }

    /// Under the lease, before anything is written, when the check used this process's copy of
    /// the account (`cache.rs`): the account as it is now must still exist, be syncable and sync
    /// the same folders (a job queued before a delete, a re-authorization or a settings change
    /// carries the old version); else [`SyncError::Changed`].
    async fn confirm(&self, account: &Account) -> Result<(), SyncError> {
        let current = self.repo.get_account(&account.id).await?;
        let same = current.is_some_and(|now| {
            matches!(now.status, AccountStatus::Active | AccountStatus::Degraded)
                && now.provider_id == account.provider_id
                && now.extra.get("sync_folders") == account.extra.get("sync_folders")
        });
        if same {
            Ok(())
        } else {
            Err(SyncError::Changed)
        }
    }

    pub(super) async fn sync_folders(
        &self,
        session: &mut ImapSession,
        (account, from_cache): (&Account, bool),
        deadline: Instant,
        lease: &mut Option<Lease>,
        known_cursors: Option<Vec<FolderCursor>>,
    ) -> Result<SyncReport, SyncError> {
        // No ENABLE CONDSTORE: `STATUS (... HIGHESTMODSEQ)` and `SELECT folder (CONDSTORE)`, the
        // only commands that need it, each turn CONDSTORE on themselves (RFC 7162 §3.1), so a
        // sync with nothing new costs one command less.
        // Cursors read with the account (one query) serve the read-only check as they are.
        let cursors = match known_cursors {
            Some(known) if lease.is_none() => {
                known.into_iter().map(|c| (c.folder.clone(), c)).collect()
            }
            _ => self.cursors(&account.id, lease.is_some()).await?,
        };
        let folders = self.folders(session, account, &cursors).await?;
        let mut proved = HashMap::new();
        if lease.is_none() {
            let all_unchanged;
            (proved, all_unchanged) = self.check(session, account, &folders, &cursors).await?;
            if all_unchanged {
                let folders = folders
                    .iter()
                    .filter_map(|f| proved.get(f))
                    .map(unchanged_report)
                    .collect();
                return Ok(SyncReport {
                    folders,
                    complete: true,
                });
            }
            *lease = Some(self.take_lease(&account.id).await?);
            if from_cache {
                self.confirm(account).await?;
            }
        }
        // Under the lease: the cursors as they are now (another worker may have moved them
        // since they were read).
        let mut cursors = self.cursors(&account.id, true).await?;
        let mut report = SyncReport {
            folders: Vec::new(),
            complete: true,
        };
        let now = now_unix();
        let batches = AtomicU32::new(0);
        for folder in &folders {
            let stored = cursors.remove(folder);
            // STATUS in this session already proved it unchanged against this very cursor.
            if let Some(cursor) = &stored
                && proved.get(folder) == Some(cursor)
            {
                report.folders.push(unchanged_report(cursor));
                continue;
            }
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
            let folder_report = match job.run(session, stored).await {
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
}

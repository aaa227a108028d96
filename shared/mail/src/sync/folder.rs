//! One folder's sync: skip it when STATUS shows nothing changed, else fetch new mail above the
//! cursor, apply CONDSTORE flag changes, and continue the newest-first backfill, each batch
//! stored before the cursor moves past it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use mailroom_core::domain::FolderCursor;
use tokio::time::Instant;

use super::batch::{
    BatchResult, BatchTarget, FetchedBatch, ReconcileMap, fetch_batch, load_reconcile_map,
};
use super::{SENT_MARKER, SyncEngine, SyncError, SyncSettings};
use crate::imap::{FolderStatus, ImapSession};
use mailroom_core::records::MessageKey;

/// What happened in one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FolderReport {
    pub folder: String,
    pub new_messages: u64,
    pub reconciled: u64,
    /// New here, with the body already stored under another Gmail label (not downloaded).
    pub reused: u64,
    pub flag_updates: u64,
    pub bytes: u64,
    /// Nothing changed: no SELECT, no FETCH.
    pub unchanged: bool,
    /// Stopped at the deadline with work left.
    pub incomplete: bool,
    pub uid_validity_changed: bool,
    pub message_count: u64,
}

/// Whether STATUS proves there is nothing to do.
pub(super) fn unchanged(cursor: &FolderCursor, status: &FolderStatus) -> bool {
    status.uid_next != 0
        && cursor.uid_validity == status.uid_validity
        && status.uid_next <= cursor.last_uid.saturating_add(1)
        && cursor.backfill_below == 0
        && cursor.reconcile_validity.is_none()
        && (cursor.highest_modseq.is_none() || status.highest_modseq == cursor.highest_modseq)
}

/// A cursor for a folder seen for the first time (or again after a UIDVALIDITY change): new
/// mail starts above today's top, the backfill walks down from it.
fn fresh_cursor(folder: &str, status: &FolderStatus, now: i64) -> FolderCursor {
    FolderCursor {
        special_use: None,
        folder: folder.to_owned(),
        uid_validity: status.uid_validity,
        last_uid: status.uid_next.saturating_sub(1),
        backfill_below: status.uid_next.max(1),
        backfill_floor: 0,
        reconcile_validity: None,
        highest_modseq: status.highest_modseq,
        message_count: 0,
        updated_at: now,
    }
}

fn add(report: &mut FolderReport, cursor: &mut FolderCursor, r: BatchResult) {
    report.new_messages += r.new;
    report.reconciled += r.reconciled;
    report.reused += r.reused;
    report.bytes += r.bytes;
    cursor.message_count += r.new;
}

/// IMAP's date format for SEARCH SINCE.
fn imap_date(unix: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%d-%b-%Y")
        .to_string()
}

/// A batch commit running in the background.
type Commit = tokio::task::JoinHandle<Result<(), SyncError>>;

/// Waits for the running commit, if any.
async fn settle(pending: &mut Option<Commit>) -> Result<(), SyncError> {
    if let Some(commit) = pending.take() {
        commit
            .await
            .map_err(|e| SyncError::Internal(format!("a batch commit task failed: {e}")))??;
    }
    Ok(())
}

impl SyncEngine {
    /// The account's `\Sent` folder. The folder an earlier sync remembered on its cursor is
    /// checked with the STATUS the sync asks anyway (kept for it, so no extra command); only
    /// when none is remembered, or the remembered one no longer exists (renamed or deleted), is
    /// it looked up with LIST, and the answer remembered.
    pub(super) async fn sent_folder(
        &self,
        session: &mut ImapSession,
        account_id: &str,
        cursors: &HashMap<String, FolderCursor>,
    ) -> Result<Option<String>, SyncError> {
        let remembered = cursors
            .values()
            .filter(|c| c.special_use.as_deref() == Some(SENT_MARKER))
            .max_by_key(|c| c.updated_at);
        if let Some(cursor) = remembered {
            match session.status_ahead(&cursor.folder).await {
                Ok(_) => return Ok(Some(cursor.folder.clone())),
                Err(e) if e.is_missing_folder() => {
                    tracing::info!(account_id, folder = %cursor.folder, "the remembered Sent folder is gone; looking it up again");
                    let mut old = cursor.clone();
                    old.special_use = None;
                    self.repo.put_folder_cursor(account_id, &old).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let found = session.sent_folder().await?;
        // A folder synced before it was known as `\Sent` (or before roles were remembered)
        // gets the role now, once; a new folder gets it with its first cursor.
        if let Some(name) = &found
            && let Some(cursor) = cursors.get(name)
            && cursor.special_use.is_none()
        {
            let mut cursor = cursor.clone();
            cursor.special_use = Some(SENT_MARKER.to_owned());
            cursor.updated_at = mailroom_core::time::now_unix();
            self.repo.put_folder_cursor(account_id, &cursor).await?;
        }
        Ok(found)
    }
}

pub(crate) struct FolderJob<'a> {
    pub target: BatchTarget<'a>,
    pub settings: &'a SyncSettings,
    pub deadline: Instant,
    /// FETCH batches stored so far in this run (all folders).
    pub batches: &'a AtomicU32,
}

impl FolderJob<'_> {
    async fn save(&self, cursor: &mut FolderCursor) -> Result<(), SyncError> {
        cursor.updated_at = self.target.now;
        self.target
            .repo
            .put_folder_cursor(self.target.account_id, cursor)
            .await?;
        Ok(())
    }

    /// Hands a fetched batch to its commit, which runs while the next batch is fetched. The
    /// previous commit finishes first, so cursors are written in order; `cursor` already says
    /// where the folder stands once this batch is stored. A failed fetch still lets the previous
    /// batch commit, so what was fully fetched is kept.
    async fn commit_after(
        &self,
        fetched: Result<FetchedBatch, SyncError>,
        pending: &mut Option<Commit>,
        report: &mut FolderReport,
        cursor: &mut FolderCursor,
    ) -> Result<(), SyncError> {
        let fetched = match fetched {
            Ok(batch) => batch,
            Err(e) => {
                settle(pending).await?;
                return Err(e);
            }
        };
        add(report, cursor, fetched.result);
        self.batches.fetch_add(1, Ordering::Relaxed);
        cursor.updated_at = self.target.now;
        settle(pending).await?;
        *pending = Some(tokio::spawn(fetched.commit(
            self.target.repo.clone(),
            self.target.account_id.to_owned(),
            cursor.clone(),
        )));
        Ok(())
    }

    /// Whether the run must stop before the next batch (deadline or batch budget).
    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
            || self
                .settings
                .max_batches
                .is_some_and(|max| self.batches.load(Ordering::Relaxed) >= max)
    }

    /// Syncs the folder; `cursor` is its stored cursor, if any.
    pub(crate) async fn run(
        &mut self,
        session: &mut ImapSession,
        stored: Option<FolderCursor>,
    ) -> Result<FolderReport, SyncError> {
        let folder = self.target.folder.to_owned();
        let mut report = FolderReport {
            folder: folder.clone(),
            ..Default::default()
        };
        if let Some(c) = &stored {
            let status = session.status(&folder).await?;
            if unchanged(c, &status) {
                report.unchanged = true;
                report.message_count = c.message_count;
                return Ok(report);
            }
        }
        // LIST found this folder as `\Sent` in this session: remember it on the cursor.
        let listed_sent = session.listed_sent() == Some(Some(folder.as_str()));
        let selected = session.open(&folder).await?;
        let mut cursor = match stored {
            None => fresh_cursor(&folder, &selected, self.target.now),
            Some(c) if c.uid_validity != selected.uid_validity => {
                tracing::warn!(
                    folder = %folder,
                    old = c.uid_validity,
                    new = selected.uid_validity,
                    "UIDVALIDITY changed: re-syncing the folder"
                );
                report.uid_validity_changed = true;
                let mut fresh = fresh_cursor(&folder, &selected, self.target.now);
                // The messages stored under the old validity are matched as the folder is
                // fetched again; a second change before that ends keeps the oldest unmatched.
                fresh.reconcile_validity = c.reconcile_validity.or(Some(c.uid_validity));
                fresh.message_count = c.message_count;
                fresh.special_use = c.special_use;
                fresh
            }
            Some(c) => c,
        };
        if listed_sent {
            cursor.special_use = Some(SENT_MARKER.to_owned());
        }
        self.target.uid_validity = cursor.uid_validity;
        let mut reconcile = match cursor.reconcile_validity {
            Some(old) => {
                load_reconcile_map(self.target.repo, self.target.account_id, &folder, old).await?
            }
            None => ReconcileMap::new(),
        };
        self.save(&mut cursor).await?;

        // Flag changes only matter for messages stored before this run; new ones came with
        // their current flags.
        let known_last = cursor.last_uid;
        let done_new = self
            .new_mail(session, &mut cursor, &selected, &mut report, &mut reconcile)
            .await?;
        if done_new {
            report.flag_updates = self
                .flag_changes(session, &mut cursor, &selected, known_last)
                .await?;
        }
        let done_backfill = done_new
            && self
                .backfill(session, &mut cursor, &mut report, &mut reconcile)
                .await?;
        if done_backfill && cursor.reconcile_validity.take().is_some() {
            // Old-validity messages that matched nothing stay stored, as expunged mail does.
            tracing::info!(folder = %folder, unmatched = reconcile.len(), "UIDVALIDITY reconciliation finished");
        }
        report.incomplete = !(done_new && done_backfill);
        report.message_count = cursor.message_count;
        self.save(&mut cursor).await?;
        Ok(report)
    }

    /// New mail above the cursor, oldest first so the cursor only moves up. Returns false when
    /// the deadline stopped it.
    async fn new_mail(
        &mut self,
        session: &mut ImapSession,
        cursor: &mut FolderCursor,
        selected: &FolderStatus,
        report: &mut FolderReport,
        reconcile: &mut ReconcileMap,
    ) -> Result<bool, SyncError> {
        if selected.uid_next != 0 && selected.uid_next <= cursor.last_uid.saturating_add(1) {
            return Ok(true);
        }
        let above = cursor.last_uid;
        let uids: Vec<u32> = session
            .uid_search(&format!("UID {}:*", above.saturating_add(1)))
            .await?
            .into_iter()
            .filter(|uid| *uid > above)
            .collect();
        let mut pending = None;
        for chunk in uids.chunks(self.settings.batch_size.max(1)) {
            if self.out_of_time() {
                settle(&mut pending).await?;
                return Ok(false);
            }
            let (lo, hi) = (chunk[0], chunk[chunk.len() - 1]);
            let fetched = fetch_batch(
                session,
                &self.target,
                &format!("{lo}:{hi}"),
                |uid| uid > above && uid >= lo && uid <= hi,
                reconcile,
            )
            .await;
            cursor.last_uid = cursor.last_uid.max(hi);
            self.commit_after(fetched, &mut pending, report, cursor)
                .await?;
        }
        settle(&mut pending).await?;
        // Everything below UIDNEXT (as of SELECT) has been handled, even UIDs already expunged.
        cursor.last_uid = cursor.last_uid.max(selected.uid_next.saturating_sub(1));
        Ok(true)
    }

    /// CONDSTORE: flags changed since the stored HIGHESTMODSEQ.
    async fn flag_changes(
        &mut self,
        session: &mut ImapSession,
        cursor: &mut FolderCursor,
        selected: &FolderStatus,
        known_last: u32,
    ) -> Result<u64, SyncError> {
        let (Some(known), Some(now)) = (cursor.highest_modseq, selected.highest_modseq) else {
            cursor.highest_modseq = selected.highest_modseq;
            return Ok(0);
        };
        if now <= known || known_last == 0 {
            cursor.highest_modseq = Some(now);
            return Ok(0);
        }
        session
            .start_fetch(
                &format!("1:{known_last}"),
                &format!("(UID FLAGS) (CHANGEDSINCE {known})"),
            )
            .await?;
        let mut changes = Vec::new();
        while let Some(m) = session.next_fetched().await? {
            if m.uid != 0 && m.uid <= known_last {
                changes.push((m.uid, m.flags));
            }
        }
        let mut updated = 0;
        for (uid, flags) in changes {
            let key = MessageKey::new(self.target.folder, cursor.uid_validity, uid);
            if self
                .target
                .repo
                .set_message_flags(self.target.account_id, &key, &flags)
                .await?
            {
                updated += 1;
            }
        }
        cursor.highest_modseq = Some(now);
        Ok(updated)
    }

    /// The first sync's walk down from the top, newest first, bounded by the backfill limit.
    /// Returns false when the deadline stopped it.
    async fn backfill(
        &mut self,
        session: &mut ImapSession,
        cursor: &mut FolderCursor,
        report: &mut FolderReport,
        reconcile: &mut ReconcileMap,
    ) -> Result<bool, SyncError> {
        if cursor.backfill_below <= 1 || cursor.backfill_below <= cursor.backfill_floor {
            cursor.backfill_below = 0;
            return Ok(true);
        }
        let mut query = format!("UID 1:{}", cursor.backfill_below - 1);
        if let Some(days) = self.settings.backfill_days {
            query.push_str(&format!(
                " SINCE {}",
                imap_date(self.target.now - i64::from(days) * 86_400)
            ));
        }
        let mut uids: Vec<u32> = session
            .uid_search(&query)
            .await?
            .into_iter()
            .filter(|uid| *uid < cursor.backfill_below)
            .collect();
        if cursor.backfill_floor == 0 {
            // The limit is fixed once, when the backfill starts, so resumed runs agree on it.
            cursor.backfill_floor = match self.settings.backfill_limit {
                Some(limit) if uids.len() > limit as usize => uids[uids.len() - limit as usize],
                _ => 1,
            };
            self.save(cursor).await?;
        }
        uids.retain(|uid| *uid >= cursor.backfill_floor);
        uids.reverse();
        let mut pending = None;
        for chunk in uids.chunks(self.settings.batch_size.max(1)) {
            if self.out_of_time() {
                settle(&mut pending).await?;
                return Ok(false);
            }
            let (hi, lo) = (chunk[0], chunk[chunk.len() - 1]);
            let fetched = fetch_batch(
                session,
                &self.target,
                &format!("{lo}:{hi}"),
                |uid| uid >= lo && uid <= hi,
                reconcile,
            )
            .await;
            cursor.backfill_below = lo;
            self.commit_after(fetched, &mut pending, report, cursor)
                .await?;
        }
        settle(&mut pending).await?;
        cursor.backfill_below = 0;
        Ok(true)
    }
}

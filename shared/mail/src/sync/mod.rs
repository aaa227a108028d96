//! The sync engine: every configured folder of an account checked and synced through one IMAP
//! session, and the outcome recorded on the account (health, next sync time, per-folder counts).
//!
//! A poll that finds nothing new writes nothing. The worker first checks read-only: it reads
//! the account and its folder cursors, logs in and asks STATUS of each folder. When every folder
//! is unchanged and the account's health needs no change, the run ends there: no lease, no
//! outcome write (every write per poll costs about $5.40 a month per 1,000 mailboxes polled
//! every 5 minutes; see COST.md). Only when there is mail to fetch does it take the account's
//! sync lease (a conditional write that keeps two processes from syncing one account at once),
//! re-read the cursors under it, sync, record the outcome and release the lease. A health
//! change alone (a failure, the first success after failures) is written without the lease: the
//! account write is conditional on its version. Overlapping read-only checks from two processes
//! are harmless; within one process a second job for an account that is running is skipped.
//! A warm worker reads nothing at all for a scheduled job whose account version it checked
//! lately (`cache.rs`: the job carries the version the scheduler read from the due index).
//!
//! `last_sync_at` therefore means "the last recorded sync": a sync that stored mail or changed
//! health, or, on a healthy account with nothing new, the first check after
//! [`SyncSettings::touch_after`] (6 hours: 4 account writes a day, about $0.15 a month per 1,000
//! mailboxes). Healthy accounts keep `next_sync_at` in the past, so the scheduler finds them due
//! on every run without writing anything; failures, throttling and re-authorization move it
//! (or take the account out of the due index) once per change.

mod account;
mod batch;
mod cache;
mod check;
mod folder;
mod health;
mod local;

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::ports::{BlobError, BlobStore, TokenError, TokenSource};
use mailroom_core::records::{RecordError, Repository};

pub use account::{SyncOutcome, SyncReport};
pub use folder::FolderReport;

use crate::imap::{ImapConnector, ImapError};

/// The lease purpose that serializes syncs of one account.
pub const SYNC_LEASE: &str = "sync";

/// Folder names in an account's `extra.sync_folders`; `\Sent` stands for the SPECIAL-USE folder.
pub const SENT_MARKER: &str = "\\Sent";

/// How syncs behave.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Time between successful syncs of an account.
    pub interval: Duration,
    /// Messages per FETCH batch (the unit stored before the cursor moves).
    pub batch_size: usize,
    /// At most this many messages per folder on the first sync.
    pub backfill_limit: Option<u32>,
    /// Only messages from the last this many days on the first sync.
    pub backfill_days: Option<u32>,
    /// How long the sync lease lasts; longer than any run (a crashed holder frees it then).
    pub lease: Duration,
    /// Consecutive failed syncs after which an account shows `degraded`.
    pub degraded_after: u32,
    /// At most this many FETCH batches per run (besides the deadline); the next run resumes.
    pub max_batches: Option<u32>,
    /// Blob uploads in flight per batch.
    pub max_in_flight: usize,
    /// Names this worker in leases and logs.
    pub holder: String,
    /// A healthy account with nothing new still gets its `last_sync_at` written when it is at
    /// least this old (one account write per account per this period).
    pub touch_after: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            batch_size: 50,
            backfill_limit: Some(10_000),
            backfill_days: None,
            lease: Duration::from_secs(16 * 60),
            degraded_after: 3,
            max_batches: None,
            max_in_flight: 8,
            holder: format!("worker-{:016x}", rand::random::<u64>()),
            touch_after: Duration::from_secs(6 * 3600),
        }
    }
}

/// Failures during a sync (the engine classifies them for the account's health).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("could not read or write sync records: {0}")]
    Store(#[from] RecordError),
    #[error("could not store a raw message: {0}")]
    Blob(#[from] BlobError),
    #[error("the account's provider settings {0} are missing")]
    NoProvider(String),
    #[error("sync failed: {0}")]
    Internal(String),
    /// Another worker holds the account's sync lease (not a failure: nothing is recorded).
    #[error("another worker is syncing this account")]
    Busy,
    /// Read again under the lease, the account was gone or no longer syncable as cached (not a
    /// failure: nothing is recorded; the next poll reads its new state).
    #[error("the account changed since this poll read it")]
    Changed,
}

/// Syncs accounts; cheap to clone.
#[derive(Clone)]
pub struct SyncEngine {
    pub(crate) repo: Repository,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) tokens: Arc<dyn TokenSource>,
    pub(crate) connector: ImapConnector,
    pub(crate) settings: SyncSettings,
    pub(crate) local: local::LocalState,
}

impl SyncEngine {
    pub fn new(
        repo: Repository,
        blobs: Arc<dyn BlobStore>,
        tokens: Arc<dyn TokenSource>,
        connector: ImapConnector,
        settings: SyncSettings,
    ) -> Self {
        Self {
            repo,
            blobs,
            tokens,
            connector,
            settings,
            local: local::LocalState::default(),
        }
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }
}

/// Deletes every stored message of an account, metadata and raw sources (for account deletion).
pub async fn delete_account_messages(
    repo: &Repository,
    blobs: &dyn BlobStore,
    account_id: &str,
) -> Result<u64, SyncError> {
    let deleted = repo.delete_all_messages(account_id).await?;
    blobs
        .delete_prefix(&mailroom_core::records::message_blob_prefix(account_id))
        .await?;
    Ok(deleted)
}

/// A healthy account for unit tests.
#[cfg(test)]
pub(crate) fn test_account() -> mailroom_core::domain::Account {
    use mailroom_core::domain::{Account, AccountStatus, Tokens};
    use secrecy::SecretString;
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

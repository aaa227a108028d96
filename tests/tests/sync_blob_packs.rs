//! The sync over the packed local blob store (`DirBlobStore`): a crash before a batch's
//! `make_durable` leaves no metadata or cursor past the last durable batch, every stored
//! message's source is readable after a restart, and deleting the account frees the packs.
//! Needs the test servers (`tests/run`).

mod sync_support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::ports::{BlobError, BlobStore};
use mailroom_embedded::DirBlobStore;
use mailroom_mail::sync::{SyncEngine, SyncOutcome, SyncSettings};
use sync_support::{Mailbox, deadline, deliver, message};

/// The process "dies" at the n-th `make_durable` (0-based): it never reaches the store.
struct CrashAt {
    inner: DirBlobStore,
    at: usize,
    syncs: AtomicUsize,
}

#[async_trait]
impl BlobStore for CrashAt {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.inner.put(key, body).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        self.inner.get(key).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        self.inner.delete_prefix(prefix).await
    }

    async fn put_unsynced(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.inner.put_unsynced(key, body).await
    }

    async fn make_durable(&self, keys: &[String]) -> Result<(), BlobError> {
        if self.syncs.fetch_add(1, Ordering::SeqCst) == self.at {
            return Err(BlobError::Unavailable("crashed before make_durable".into()));
        }
        self.inner.make_durable(keys).await
    }
}

fn engine(mbox: &Mailbox, blobs: Arc<dyn BlobStore>) -> SyncEngine {
    let settings = SyncSettings {
        batch_size: 5,
        ..SyncSettings::default()
    };
    mbox.engine_with_blobs(blobs, settings)
}

fn pack_files(root: &Path) -> usize {
    std::fs::read_dir(root.join("packs"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_make_durable_keeps_nothing_past_the_last_durable_batch() {
    let mbox = Mailbox::create(None, None, serde_json::json!({"sync_folders": ["INBOX"]})).await;
    let mail: Vec<_> = (0..30).map(|i| message("packs", i, 40)).collect();
    deliver(&mbox.email, &mail).await;
    let root = tempfile::tempdir().expect("blob dir");

    let crashing = Arc::new(CrashAt {
        inner: DirBlobStore::open(root.path()).expect("blobs"),
        at: 3,
        syncs: AtomicUsize::new(0),
    });
    let outcome = engine(&mbox, crashing.clone())
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("an outcome");
    assert!(
        matches!(&outcome, SyncOutcome::Failed { error, .. } if error.contains("crashed")),
        "{outcome:?}"
    );
    // The process ends: the store is dropped with the fourth batch written, never committed.
    drop(crashing);

    let blobs = DirBlobStore::open(root.path()).expect("reopen");
    let stored = mbox.stored("INBOX").await;
    assert_eq!(stored.len(), 15, "the three durable batches only");
    let cursors = mbox
        .app
        .services
        .repo
        .folder_cursors(&mbox.account_id)
        .await
        .expect("cursors");
    let cursor = cursors.first().expect("a cursor");
    let uids: HashSet<u32> = stored.iter().map(|m| m.uid).collect();
    assert_eq!(
        cursor.backfill_below, 16,
        "the cursor stops at the last durable batch"
    );
    for uid in cursor.backfill_below..=30 {
        assert!(uids.contains(&uid), "UID {uid} is behind the cursor");
    }
    for meta in &stored {
        let raw = blobs
            .get(&meta.blob_key)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("UID {}: its blob is gone after the restart", meta.uid));
        assert_eq!(raw.len() as u64, meta.size, "UID {}", meta.uid);
    }

    // The next run resumes below the cursor and stores the rest once.
    let blobs: Arc<dyn BlobStore> = Arc::new(blobs);
    let outcome = engine(&mbox, blobs.clone())
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Synced(r) if r.complete),
        "{outcome:?}"
    );
    let stored = mbox.stored("INBOX").await;
    assert_eq!(stored.len(), 30);
    for meta in &stored {
        let raw = blobs
            .get(&meta.blob_key)
            .await
            .expect("read")
            .expect("blob");
        assert_eq!(raw.len() as u64, meta.size, "UID {}", meta.uid);
    }
    assert!(pack_files(root.path()) >= 1);

    // Deleting the account's sources frees its packs.
    let prefix = mailroom_core::records::message_blob_prefix(&mbox.account_id);
    assert_eq!(blobs.delete_prefix(&prefix).await.expect("delete"), 30);
    assert_eq!(pack_files(root.path()), 0, "no pack left after the delete");
}

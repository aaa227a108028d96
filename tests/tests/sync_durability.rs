//! A batch's raw messages are durable before its metadata and cursor are written: a blob store
//! that fails to write or to make a batch durable stops the sync with no metadata pointing at a
//! blob that was not made durable, and no cursor past a batch that was not fully stored. Needs
//! the test servers (`tests/run`).

mod sync_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::ports::{BlobError, BlobStore};
use mailroom_mail::sync::{SyncEngine, SyncOutcome, SyncSettings};
use sync_support::{Mailbox, deadline, deliver, message};

/// Which call of the decorated store fails.
#[derive(Clone, Copy)]
enum Fault {
    /// The n-th `make_durable` (0-based) fails; the files were written.
    Durable(usize),
    /// The n-th `put_unsynced` (0-based) fails.
    Write(usize),
    None,
}

/// Wraps the app's blob store, fails one call, and remembers which keys were made durable.
struct FailingBlobs {
    inner: Arc<dyn BlobStore>,
    fault: Mutex<Fault>,
    writes: AtomicUsize,
    syncs: AtomicUsize,
    durable: Mutex<HashSet<String>>,
}

impl FailingBlobs {
    fn new(inner: Arc<dyn BlobStore>, fault: Fault) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fault: Mutex::new(fault),
            writes: AtomicUsize::new(0),
            syncs: AtomicUsize::new(0),
            durable: Mutex::new(HashSet::new()),
        })
    }

    fn fault(&self) -> Fault {
        *self.fault.lock().expect("fault lock")
    }

    fn heal(&self) {
        *self.fault.lock().expect("fault lock") = Fault::None;
    }

    fn is_durable(&self, key: &str) -> bool {
        self.durable.lock().expect("durable lock").contains(key)
    }
}

#[async_trait]
impl BlobStore for FailingBlobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.inner.put(key, body).await?;
        self.durable
            .lock()
            .expect("durable lock")
            .insert(key.to_owned());
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        self.inner.get(key).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        self.inner.delete_prefix(prefix).await
    }

    async fn put_unsynced(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if matches!(self.fault(), Fault::Write(at) if at == n) {
            return Err(BlobError::Unavailable("injected write failure".into()));
        }
        self.inner.put_unsynced(key, body).await
    }

    async fn make_durable(&self, keys: &[String]) -> Result<(), BlobError> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst);
        if matches!(self.fault(), Fault::Durable(at) if at == n) {
            return Err(BlobError::Unavailable("injected sync failure".into()));
        }
        self.inner.make_durable(keys).await?;
        self.durable
            .lock()
            .expect("durable lock")
            .extend(keys.iter().cloned());
        Ok(())
    }
}

fn engine(mbox: &Mailbox, blobs: Arc<FailingBlobs>) -> SyncEngine {
    let settings = SyncSettings {
        batch_size: 5,
        ..SyncSettings::default()
    };
    mbox.engine_with_blobs(blobs, settings)
}

/// Runs a sync that meets `fault`, checks what was kept, then a healthy run that completes.
async fn fault_then_resume(tag: &str, fault: Fault) {
    let mbox = Mailbox::create(None, None, serde_json::json!({"sync_folders": ["INBOX"]})).await;
    let mail: Vec<_> = (0..30).map(|i| message(tag, i, 3)).collect();
    deliver(&mbox.email, &mail).await;
    let blobs = FailingBlobs::new(mbox.app.services.blobs.clone(), fault);
    let engine = engine(&mbox, blobs.clone());

    let outcome = engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("a blob failure is a recorded outcome");
    match &outcome {
        SyncOutcome::Failed { error, .. } => {
            assert!(error.contains("injected"), "{error}");
        }
        other => panic!("the blob failure should fail the sync, got {other:?}"),
    }

    let stored = mbox.stored("INBOX").await;
    assert!(
        !stored.is_empty() && stored.len() < 30 && stored.len() % 5 == 0,
        "stored {}: whole batches before the fault only",
        stored.len()
    );
    for meta in &stored {
        assert!(
            blobs.is_durable(&meta.blob_key),
            "UID {} is stored but its blob {} was never made durable",
            meta.uid,
            meta.blob_key
        );
    }
    let uids: HashSet<u32> = stored.iter().map(|m| m.uid).collect();
    let cursors = mbox
        .app
        .services
        .repo
        .folder_cursors(&mbox.account_id)
        .await
        .expect("cursors");
    let cursor = cursors.first().expect("a cursor");
    // The backfill walks down from the top: everything from its cursor up is stored.
    assert!(cursor.backfill_below > 1, "the backfill is unfinished");
    for uid in cursor.backfill_below..=30 {
        assert!(
            uids.contains(&uid),
            "UID {uid} is behind the cursor but not stored"
        );
    }
    assert_eq!(cursor.message_count as usize, stored.len());

    blobs.heal();
    let outcome = engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Synced(r) if r.complete),
        "{outcome:?}"
    );
    let stored = mbox.stored("INBOX").await;
    let ids: HashSet<_> = stored.iter().map(|m| m.message_id_header.clone()).collect();
    assert_eq!((stored.len(), ids.len()), (30, 30), "none lost, none twice");
    for meta in &stored {
        assert!(blobs.is_durable(&meta.blob_key), "UID {}", meta.uid);
        let raw = mbox
            .app
            .services
            .blobs
            .get(&meta.blob_key)
            .await
            .expect("read the blob")
            .expect("the blob exists");
        assert_eq!(raw.len() as u64, meta.size, "UID {}", meta.uid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_blobs_cannot_be_made_durable_does_not_move_the_cursor() {
    fault_then_resume("durable", Fault::Durable(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_blob_write_fails_does_not_move_the_cursor() {
    fault_then_resume("write", Fault::Write(12)).await;
}

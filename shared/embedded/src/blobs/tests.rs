//! The packed layout: batches, restarts, the earlier layout, and space after deletes.

use std::fs;
use std::path::Path;

use super::*;

fn pack_bytes(root: &Path) -> (usize, u64) {
    let files: Vec<_> = fs::read_dir(root.join("packs"))
        .expect("packs")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .collect();
    (files.len(), files.iter().sum())
}

#[tokio::test]
async fn unsynced_blobs_are_readable_and_made_durable_as_a_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DirBlobStore::open(dir.path()).expect("store");
    let keys: Vec<String> = (0..20)
        .map(|i| format!("acct/msg/INBOX/1/{i}.eml"))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        store
            .put_unsynced(key, Bytes::from(format!("message {i}")))
            .await
            .expect("put");
    }
    store.make_durable(&keys).await.expect("durable");
    for (i, key) in keys.iter().enumerate() {
        let got = store.get(key).await.expect("get").expect("stored");
        assert_eq!(got, Bytes::from(format!("message {i}")));
    }
    // A blob written again (a retried batch) is replaced whole.
    store
        .put_unsynced(&keys[0], Bytes::from_static(b"again"))
        .await
        .expect("put again");
    store.make_durable(&keys[..1]).await.expect("durable");
    let got = store.get(&keys[0]).await.expect("get").expect("stored");
    assert_eq!(got, Bytes::from_static(b"again"));
    // One folder, one pack: no file per blob.
    assert_eq!(pack_bytes(dir.path()).0, 1);
}

#[tokio::test]
async fn a_blob_never_written_cannot_be_made_durable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DirBlobStore::open(dir.path()).expect("store");
    store
        .put_unsynced("a/1.eml", Bytes::from_static(b"one"))
        .await
        .expect("put");
    let err = store
        .make_durable(&["a/1.eml".to_owned(), "a/2.eml".to_owned()])
        .await
        .expect_err("a missing blob");
    assert!(err.to_string().contains("a/2.eml"), "{err}");
    let err = store
        .make_durable(&["../escape".to_owned()])
        .await
        .expect_err("a bad key");
    assert!(matches!(err, BlobError::InvalidKey(_)));
}

#[tokio::test]
async fn after_a_restart_durable_blobs_remain_and_unsynced_ones_are_gone() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = DirBlobStore::open(dir.path()).expect("store");
        let durable: Vec<String> = (0..5).map(|i| format!("a/INBOX/{i}.eml")).collect();
        for key in &durable {
            store
                .put_unsynced(key, Bytes::from(key.clone()))
                .await
                .expect("put");
        }
        store.make_durable(&durable).await.expect("durable");
        // A crash before the next batch's make_durable: written, never committed; one in the
        // same pack, one in a pack of its own.
        for key in ["a/INBOX/9.eml", "a/Sent/1.eml"] {
            store
                .put_unsynced(key, Bytes::from_static(b"lost"))
                .await
                .expect("put");
            assert!(store.get(key).await.expect("get").is_some());
        }
    }
    let store = DirBlobStore::open(dir.path()).expect("reopen");
    for i in 0..5 {
        let key = format!("a/INBOX/{i}.eml");
        let got = store.get(&key).await.expect("get").expect("durable");
        assert_eq!(got, Bytes::from(key));
    }
    assert_eq!(store.get("a/INBOX/9.eml").await.expect("get"), None);
    assert_eq!(store.get("a/Sent/1.eml").await.expect("get"), None);
    // The pack with nothing committed was deleted on open.
    assert_eq!(pack_bytes(dir.path()).0, 1);
    // A retried batch writes it again, now durably.
    store
        .put("a/INBOX/9.eml", Bytes::from_static(b"again"))
        .await
        .expect("put");
    drop(store);
    let store = DirBlobStore::open(dir.path()).expect("reopen");
    let got = store.get("a/INBOX/9.eml").await.expect("get");
    assert_eq!(got, Some(Bytes::from_static(b"again")));
}

#[tokio::test]
async fn blobs_of_the_one_file_per_blob_layout_stay_readable_and_deletable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = dir.path().join("blobs/acct/INBOX");
    fs::create_dir_all(&old).expect("old layout");
    fs::write(old.join("1.eml"), b"old one").expect("old blob");
    fs::write(old.join("2.eml"), b"old two").expect("old blob");
    let store = DirBlobStore::open(dir.path()).expect("store");
    let got = store.get("acct/INBOX/1.eml").await.expect("get");
    assert_eq!(got, Some(Bytes::from_static(b"old one")));
    // Already durable: a batch naming it has nothing to do.
    store
        .make_durable(&["acct/INBOX/1.eml".to_owned()])
        .await
        .expect("durable");
    // Written again: the packed copy wins, and is counted once when deleted.
    store
        .put("acct/INBOX/2.eml", Bytes::from_static(b"new two"))
        .await
        .expect("put");
    let got = store.get("acct/INBOX/2.eml").await.expect("get");
    assert_eq!(got, Some(Bytes::from_static(b"new two")));
    store
        .put("acct/INBOX/3.eml", Bytes::from_static(b"new three"))
        .await
        .expect("put");
    assert_eq!(store.delete_prefix("acct/").await.expect("delete"), 3);
    for i in 1..=3 {
        let key = format!("acct/INBOX/{i}.eml");
        assert_eq!(store.get(&key).await.expect("get"), None, "{key}");
    }
    assert!(
        !old.exists(),
        "emptied folders of the old layout are removed"
    );
    assert_eq!(pack_bytes(dir.path()), (0, 0));
}

#[tokio::test]
async fn deletes_free_whole_packs_and_rewrite_mostly_dead_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DirBlobStore::open(dir.path()).expect("store");
    let body = Bytes::from(vec![b'x'; 100 * 1024]);
    // 30 blobs of 100 KB in one folder (one pack of 3 MB), 5 in another.
    let mut keys = Vec::new();
    for i in 0..30 {
        keys.push(format!("acct/INBOX/{i:02}.eml"));
    }
    for i in 0..5 {
        keys.push(format!("acct/Sent/{i}.eml"));
    }
    for key in &keys {
        store.put_unsynced(key, body.clone()).await.expect("put");
    }
    store.make_durable(&keys).await.expect("durable");
    assert_eq!(pack_bytes(dir.path()), (2, 35 * 100 * 1024));

    // A whole folder: its pack is deleted at once.
    assert_eq!(store.delete_prefix("acct/Sent/").await.expect("delete"), 5);
    assert_eq!(pack_bytes(dir.path()), (1, 30 * 100 * 1024));

    // Two thirds of the other: its live blobs are copied into a new pack, the old one deleted.
    assert_eq!(
        store.delete_prefix("acct/INBOX/0").await.expect("delete"),
        10
    );
    assert_eq!(
        store.delete_prefix("acct/INBOX/1").await.expect("delete"),
        10
    );
    assert_eq!(pack_bytes(dir.path()), (1, 10 * 100 * 1024));
    for key in &keys[..20] {
        assert_eq!(store.get(key).await.expect("get"), None, "{key}");
    }
    drop(store);
    let store = DirBlobStore::open(dir.path()).expect("reopen");
    for key in &keys[20..30] {
        let got = store.get(key).await.expect("get").expect("kept");
        assert_eq!(got, body, "{key}");
    }
}

#[tokio::test]
async fn a_pack_of_empty_blobs_outlives_a_sweep() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DirBlobStore::open(dir.path()).expect("store");
    store.put("a/empty.eml", Bytes::new()).await.expect("put");
    store
        .put("b/full.eml", Bytes::from_static(b"x"))
        .await
        .expect("put");
    // A delete elsewhere sweeps: the empty blob's pack has no live bytes, but a live blob.
    assert_eq!(store.delete_prefix("b/").await.expect("delete"), 1);
    drop(store);
    let store = DirBlobStore::open(dir.path()).expect("reopen");
    let got = store.get("a/empty.eml").await.expect("get");
    assert_eq!(got, Some(Bytes::new()));
    assert_eq!(pack_bytes(dir.path()), (1, 0));
}

//! The blob store and job queue contracts.

use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::ports::{BlobError, BlobStore, Job, JobKind};

pub async fn blob_round_trip(blobs: Arc<dyn BlobStore>) {
    let body = Bytes::from_static(b"From: a@example.test\r\n\r\nhello\r\n");
    assert_eq!(blobs.get("acct1/INBOX/1.eml").await.unwrap(), None);
    blobs.put("acct1/INBOX/1.eml", body.clone()).await.unwrap();
    assert_eq!(blobs.get("acct1/INBOX/1.eml").await.unwrap(), Some(body));
    // Puts replace (idempotent re-sync).
    let newer = Bytes::from(vec![0u8, 255, 10, 13]);
    blobs.put("acct1/INBOX/1.eml", newer.clone()).await.unwrap();
    assert_eq!(blobs.get("acct1/INBOX/1.eml").await.unwrap(), Some(newer));
    blobs.put("acct1/Sent/2.eml", Bytes::new()).await.unwrap();
    assert_eq!(
        blobs.get("acct1/Sent/2.eml").await.unwrap(),
        Some(Bytes::new())
    );
    // A "folder" is not a blob.
    assert_eq!(blobs.get("acct1/INBOX").await.unwrap(), None);

    for bad in [
        "",
        "../etc/passwd",
        "a//b",
        "a/./b",
        "/abs",
        "a/",
        "sp ace",
        "a\\b",
    ] {
        let put = blobs.put(bad, Bytes::from_static(b"x")).await;
        assert!(
            matches!(put, Err(BlobError::InvalidKey(_))),
            "{bad:?}: {put:?}"
        );
        let get = blobs.get(bad).await;
        assert!(
            matches!(get, Err(BlobError::InvalidKey(_))),
            "{bad:?}: {get:?}"
        );
    }
}

/// Runs under its own top-level folder `d/`, so it can share a store with other contracts.
pub async fn blob_delete_prefix(blobs: Arc<dyn BlobStore>) {
    let keys = [
        "d/acct1/INBOX/1.eml",
        "d/acct1/INBOX/2.eml",
        "d/acct1/Sent/3.eml",
        "d/acct10/INBOX/1.eml",
        "d/acct2/INBOX/1.eml",
    ];
    for key in keys {
        blobs.put(key, Bytes::from(key.to_owned())).await.unwrap();
    }
    assert_eq!(blobs.delete_prefix("d/acct1/INBOX/").await.unwrap(), 2);
    assert_eq!(blobs.get("d/acct1/INBOX/1.eml").await.unwrap(), None);
    assert!(blobs.get("d/acct1/Sent/3.eml").await.unwrap().is_some());
    // "acct1/" must not reach into "acct10/".
    assert_eq!(blobs.delete_prefix("d/acct1/").await.unwrap(), 1);
    assert!(blobs.get("d/acct10/INBOX/1.eml").await.unwrap().is_some());
    assert_eq!(blobs.delete_prefix("d/acct1/").await.unwrap(), 0);
    // A prefix may end inside a name.
    assert_eq!(blobs.delete_prefix("d/acct1").await.unwrap(), 1);
    assert!(blobs.get("d/acct2/INBOX/1.eml").await.unwrap().is_some());
    // The empty prefix (everything) and unsafe prefixes are refused.
    for bad in ["", "/", "../", "a//"] {
        let result = blobs.delete_prefix(bad).await;
        assert!(
            matches!(result, Err(BlobError::InvalidKey(_))),
            "{bad:?}: {result:?}"
        );
    }
    assert!(blobs.get("d/acct2/INBOX/1.eml").await.unwrap().is_some());
}

/// Jobs of every kind, with and without a delay.
pub fn sample_jobs(count: usize) -> Vec<Job> {
    let kinds = [JobKind::Sync, JobKind::SyncNow, JobKind::Verify];
    (0..count)
        .map(|i| Job {
            account_id: format!("acct-{i:04}"),
            kind: kinds[i % kinds.len()],
            delay_seconds: 0,
            // Odd jobs carry a version: both forms travel through every queue.
            version: (i % 2 == 1).then_some(i as u64),
        })
        .collect()
}

//! The item store contract against both adapters (redb in a temporary directory, DynamoDB on
//! moto with a table provisioned per test), and the blob and queue adapters.

use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use mailroom_core::ports::{BlobStore, Job, JobQueue, QueueError};
use mailroom_embedded::{DirBlobStore, InProcessQueue};
use mailroom_tests::contract::{backends, blobs, query, store};

/// Runs each contract function against a fresh redb store and a fresh DynamoDB table.
macro_rules! item_store_contract {
    ($($module:ident::$name:ident),* $(,)?) => {
        mod redb {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let redb = backends::redb();
                    $module::$name(redb.store.clone()).await;
                }
            )*
        }
        mod dynamodb {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let moto = backends::moto("store").await;
                    $module::$name(Arc::new(moto.backends.store.clone())).await;
                }
            )*
        }
    };
}

item_store_contract!(
    store::get_put_delete,
    store::take_once,
    store::conditions,
    store::expired_items_read_as_absent,
    store::refuses_invalid_items,
    store::write_atomic_all_or_nothing,
    store::racing_writers,
    query::query_pages,
    query::index_bounds,
    query::put_many_and_delete_many,
);

#[tokio::test]
async fn directory_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(DirBlobStore::open(dir.path()).unwrap());
    blobs::blob_round_trip(store.clone()).await;
    blobs::blob_delete_prefix(store).await;
    // Atomic writes leave no temporary files behind.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn s3_blobs() {
    let moto = backends::moto("blobs").await;
    let store: Arc<dyn BlobStore> = Arc::new(moto.backends.blobs.clone());
    blobs::blob_round_trip(store.clone()).await;
    blobs::blob_delete_prefix(store).await;
    // What S3 holds, listed with the SDK directly.
    let listed = moto
        .clients
        .s3
        .list_objects_v2()
        .bucket(&moto.settings.bucket)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort();
    // "d/acct1" also removed "d/acct10/...", as an S3 prefix does.
    assert_eq!(
        keys,
        vec![
            "acct1/INBOX/1.eml",
            "acct1/Sent/2.eml",
            "d/acct2/INBOX/1.eml"
        ]
    );
    let raw = moto
        .clients
        .s3
        .get_object()
        .bucket(&moto.settings.bucket)
        .key("d/acct2/INBOX/1.eml")
        .send()
        .await
        .unwrap();
    let body = raw.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), b"d/acct2/INBOX/1.eml");
}

#[tokio::test]
async fn in_process_queue() {
    let (queue, mut receiver) = InProcessQueue::new();
    let jobs = blobs::sample_jobs(13);
    queue.enqueue(&jobs).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..jobs.len() {
        got.push(receiver.recv().await.unwrap());
    }
    assert_eq!(got, jobs);
}

async fn receive_all(moto: &backends::Moto, url: &str, expected: usize) -> Vec<Job> {
    let mut got = Vec::new();
    for _ in 0..20 {
        let out = moto
            .clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in out.messages() {
            got.push(serde_json::from_str(message.body().unwrap()).unwrap());
        }
        if got.len() >= expected {
            break;
        }
    }
    got
}

#[tokio::test]
async fn sqs_queue() {
    let moto = backends::moto("queue").await;
    let queue = moto.backends.queue.clone();
    let url = moto.backends.provisioned.queue_url.clone();
    let jobs = blobs::sample_jobs(13);
    queue.enqueue(&jobs).await.unwrap();
    let mut got = receive_all(&moto, &url, jobs.len()).await;
    got.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    assert_eq!(got, jobs, "every job arrives once, with its body intact");

    // A too-long delay refuses the whole call and sends nothing.
    let mut late = blobs::sample_jobs(2);
    late[1].delay_seconds = 901;
    let refused = queue.enqueue(&late).await;
    assert!(
        matches!(refused, Err(QueueError::Rejected { failed: 1, .. })),
        "{refused:?}"
    );
    // A delayed job waits in the queue as delayed.
    late[1].delay_seconds = 900;
    queue.enqueue(&late[1..]).await.unwrap();
    let attrs = moto
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes.unwrap_or_default();
    assert_eq!(
        attrs
            .get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        attrs
            .get(&QueueAttributeName::ApproximateNumberOfMessages)
            .map(String::as_str),
        Some("0")
    );
    assert!(
        attrs.contains_key(&QueueAttributeName::RedrivePolicy),
        "the DLQ is wired"
    );
}

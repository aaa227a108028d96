//! The item store contract against both adapters (redb in a temporary directory, DynamoDB on
//! moto with a table provisioned per test), and the blob and queue adapters.

use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use mailroom_aws::{AwsClients, ProvisionError, provision};
use mailroom_core::ports::{BlobStore, Job, JobKind, JobMessage, JobQueue, QueueError};
use mailroom_core::ports::{Condition, ItemKey, ItemStore};
use mailroom_core::time::now_unix;
use mailroom_embedded::{DirBlobStore, InProcessQueue, RedbStore};
use mailroom_tests::contract::fixtures::{expired, item};
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
    query::put_many_then_writes_the_last_item_after,
);

#[tokio::test]
async fn directory_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(DirBlobStore::open(dir.path()).unwrap());
    blobs::blob_round_trip(store.clone()).await;
    blobs::blob_delete_prefix(store).await;
    // Blobs are packed, a pack per key folder still holding blobs (acct1/INBOX, acct1/Sent with
    // its empty blob, d/acct2/INBOX); the deleted folders' packs are gone, and nothing is
    // written in the one-file-per-blob layout.
    assert_eq!(
        std::fs::read_dir(dir.path().join("packs")).unwrap().count(),
        3
    );
    assert!(!dir.path().join("blobs").exists());
}

#[tokio::test]
async fn s3_blobs() {
    let moto = backends::moto("blobs").await;
    let store: Arc<dyn BlobStore> = Arc::new(moto.backends.blobs.clone());
    blobs::blob_round_trip(store.clone()).await;
    blobs::blob_delete_prefix(store).await;
    // What S3 holds, listed with the SDK's client directly.
    let sdk = backends::sdk_s3(&moto.config);
    let listed = sdk
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
    let raw = sdk
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

/// The jobs received, and in how many messages they came.
async fn receive_all(moto: &backends::Moto, url: &str, expected: usize) -> (Vec<Job>, usize) {
    let mut got = Vec::new();
    let mut messages = 0;
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
            got.extend(JobMessage::decode(message.body().unwrap()).unwrap());
            messages += 1;
        }
        if got.len() >= expected {
            break;
        }
    }
    (got, messages)
}

#[tokio::test]
async fn sqs_queue() {
    let moto = backends::moto("queue").await;
    let queue = moto.backends.queue.clone();
    let url = moto.backends.provisioned.queue_url.clone();
    let jobs = blobs::sample_jobs(13);
    queue.enqueue(&jobs).await.unwrap();
    let (mut got, messages) = receive_all(&moto, &url, jobs.len()).await;
    got.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    assert_eq!(got, jobs, "every job arrives once, with its body intact");
    // Jobs with one delay share messages, JOBS_PER_MESSAGE at most.
    assert_eq!(messages, 1);
    // A scheduler run's worth: 100 jobs a message, several SendMessageBatch calls (ten
    // messages or 256 KB each: the long ids below make 40 KB messages).
    let many: Vec<Job> = (0..1_234)
        .map(|i| Job {
            account_id: format!("acct-{i:04}-{}", "x".repeat(300)),
            kind: JobKind::Sync,
            delay_seconds: 0,
            version: Some(i),
        })
        .collect();
    queue.enqueue(&many).await.unwrap();
    let (mut got, messages) = receive_all(&moto, &url, many.len()).await;
    got.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    assert_eq!(got, many, "every job arrives once, with its version");
    assert_eq!(messages, 13);

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

#[tokio::test]
async fn provisioning_is_idempotent() {
    let moto = backends::moto("prov").await;
    let clients = AwsClients::new(&moto.config, true);
    let again = provision::provision(&clients, &moto.settings)
        .await
        .unwrap();
    assert_eq!(
        again, moto.backends.provisioned,
        "same queue and key on a second start"
    );
    assert!(again.queue_url.ends_with(&moto.settings.queue));

    // What was created, seen through the SDK.
    let table = clients
        .dynamodb
        .describe_table()
        .table_name(&moto.settings.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let indexes: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    assert_eq!(indexes, vec![mailroom_aws::GSI1]);
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&moto.settings.table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    backends::sdk_s3(&moto.config)
        .head_bucket()
        .bucket(&moto.settings.bucket)
        .send()
        .await
        .unwrap();
    let key = clients
        .kms
        .describe_key()
        .key_id(&again.kms_key_id)
        .send()
        .await
        .unwrap();
    assert!(key.key_metadata.unwrap().enabled);

    // Without auto-create nothing is created: a key id is required, the queue URL is resolved.
    let mut manual = moto.settings.clone();
    manual.auto_create = false;
    assert!(matches!(
        provision::provision(&clients, &manual).await,
        Err(ProvisionError::MissingKey)
    ));
    manual.kms_key_id = Some(again.kms_key_id.clone());
    assert_eq!(
        provision::provision(&clients, &manual).await.unwrap(),
        again
    );
    manual.queue = backends::unique_name("absent");
    assert!(matches!(
        provision::provision(&clients, &manual).await,
        Err(ProvisionError::Queue { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_keeps_data_across_reopen_and_purges_expired_items() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        store.put(item("KEEP", "a"), Condition::None).await.unwrap();
        store
            .put(expired("KEEP", "dead"), Condition::None)
            .await
            .unwrap();
        let mut soon = item("KEEP", "soon");
        soon.expires_at = Some(now_unix() + 3600);
        store.put(soon, Condition::None).await.unwrap();
        // Only items dead at the given instant go.
        assert_eq!(store.purge_expired(now_unix()).await.unwrap(), 1);
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(
        store.get(&ItemKey::new("KEEP", "a")).await.unwrap(),
        Some(item("KEEP", "a"))
    );
    assert_eq!(store.purge_expired(now_unix() + 7200).await.unwrap(), 1);
    // The purged item is physically gone: at an early clock it would still be live.
    store
        .put(item("KEEP", "soon"), Condition::AbsentOrExpired { now: 0 })
        .await
        .unwrap();
}

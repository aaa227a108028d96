//! Counting decorators for the benchmarks: wrap the real ItemStore, KeyService and BlobStore
//! adapters and count the requests each would make to DynamoDB, KMS and S3 (batched writes are
//! counted as the adapters send them: 25 items per BatchWriteItem).

pub mod imap;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::ports::{
    BlobError, BlobStore, Condition, DataKey, Item, ItemKey, ItemStore, KeyContext, KeyError,
    KeyService, Page, QueryRange, StoreError, WriteOp,
};
use zeroize::Zeroizing;

/// Items per DynamoDB BatchWriteItem request.
const BATCH: u64 = 25;

/// Request counters shared by the decorators.
#[derive(Debug, Default)]
pub struct Counters {
    /// GetItem, Query (one per page) and index queries.
    pub store_reads: AtomicU64,
    /// Those of them that may be stale (eventually consistent: half the price).
    pub store_stale_reads: AtomicU64,
    /// PutItem, DeleteItem, TransactWriteItems and BatchWriteItem requests.
    pub store_writes: AtomicU64,
    /// Items written or deleted by those requests.
    pub items_written: AtomicU64,
    pub kms_generate: AtomicU64,
    pub kms_decrypt: AtomicU64,
    pub s3_put: AtomicU64,
    pub s3_get: AtomicU64,
    /// ListObjectsV2 and DeleteObjects requests made by a prefix delete (counted as one).
    pub s3_delete_prefix: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub store_reads: u64,
    pub store_stale_reads: u64,
    pub store_writes: u64,
    pub items_written: u64,
    pub kms_generate: u64,
    pub kms_decrypt: u64,
    pub s3_put: u64,
    pub s3_get: u64,
    pub s3_delete_prefix: u64,
}

impl Counts {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Counts) -> Counts {
        Counts {
            store_reads: self.store_reads - before.store_reads,
            store_stale_reads: self.store_stale_reads - before.store_stale_reads,
            store_writes: self.store_writes - before.store_writes,
            items_written: self.items_written - before.items_written,
            kms_generate: self.kms_generate - before.kms_generate,
            kms_decrypt: self.kms_decrypt - before.kms_decrypt,
            s3_put: self.s3_put - before.s3_put,
            s3_get: self.s3_get - before.s3_get,
            s3_delete_prefix: self.s3_delete_prefix - before.s3_delete_prefix,
        }
    }

    pub fn kms(&self) -> u64 {
        self.kms_generate + self.kms_decrypt
    }

    pub fn s3(&self) -> u64 {
        self.s3_put + self.s3_get + self.s3_delete_prefix
    }
}

impl Counters {
    pub fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            store_reads: get(&self.store_reads),
            store_stale_reads: get(&self.store_stale_reads),
            store_writes: get(&self.store_writes),
            items_written: get(&self.items_written),
            kms_generate: get(&self.kms_generate),
            kms_decrypt: get(&self.kms_decrypt),
            s3_put: get(&self.s3_put),
            s3_get: get(&self.s3_get),
            s3_delete_prefix: get(&self.s3_delete_prefix),
        }
    }

    fn write(&self, requests: u64, items: u64) {
        self.store_writes.fetch_add(requests, Ordering::Relaxed);
        self.items_written.fetch_add(items, Ordering::Relaxed);
    }

    fn read(&self) {
        self.store_reads.fetch_add(1, Ordering::Relaxed);
    }

    fn stale_read(&self) {
        self.read();
        self.store_stale_reads.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts the item store's requests.
pub struct CountingStore {
    pub inner: Arc<dyn ItemStore>,
    pub counters: Arc<Counters>,
}

#[async_trait]
impl ItemStore for CountingStore {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.counters.read();
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.counters.write(1, 1);
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        self.counters.write(1, 1);
        self.inner.delete(key, condition).await
    }
    async fn take(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.counters.write(1, 1);
        self.inner.take(key).await
    }
    async fn query(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        self.counters.read();
        self.inner.query(pk, range).await
    }
    async fn get_stale(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.counters.stale_read();
        self.inner.get_stale(key).await
    }
    async fn query_stale(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        self.counters.stale_read();
        self.inner.query_stale(pk, range).await
    }
    async fn query_index(
        &self,
        index_pk: &str,
        sk_max: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        // A DynamoDB global secondary index is always read eventually consistent.
        self.counters.stale_read();
        self.inner
            .query_index(index_pk, sk_max, start_after, limit)
            .await
    }
    async fn write_atomic(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.counters.write(1, ops.len() as u64);
        self.inner.write_atomic(ops).await
    }
    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let n = items.len() as u64;
        self.counters.write(n.div_ceil(BATCH), n);
        self.inner.put_many(items).await
    }
    async fn delete_many(&self, keys: Vec<ItemKey>) -> Result<(), StoreError> {
        let n = keys.len() as u64;
        self.counters.write(n.div_ceil(BATCH), n);
        self.inner.delete_many(keys).await
    }
}

/// Counts the key service's (KMS) requests.
pub struct CountingKeys {
    pub inner: Arc<dyn KeyService>,
    pub counters: Arc<Counters>,
}

#[async_trait]
impl KeyService for CountingKeys {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        self.counters.kms_generate.fetch_add(1, Ordering::Relaxed);
        self.inner.generate_data_key(context).await
    }
    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.counters.kms_decrypt.fetch_add(1, Ordering::Relaxed);
        self.inner.unwrap_data_key(wrapped, context).await
    }
}

/// Counts the blob store's (S3) requests.
pub struct CountingBlobs {
    pub inner: Arc<dyn BlobStore>,
    pub counters: Arc<Counters>,
}

#[async_trait]
impl BlobStore for CountingBlobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.counters.s3_put.fetch_add(1, Ordering::Relaxed);
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        self.counters.s3_get.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        self.counters
            .s3_delete_prefix
            .fetch_add(1, Ordering::Relaxed);
        self.inner.delete_prefix(prefix).await
    }
}

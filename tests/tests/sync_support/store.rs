//! An item store wrapper that counts the requests made through it (the nothing-changed sync
//! must cost a constant number of them), and can fail them all (an outage).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use mailroom_core::ports::{
    Condition, Item, ItemKey, ItemStore, Page, QueryRange, StoreError, WriteOp,
};

/// Counts every request, then passes it on.
pub struct CountingStore {
    inner: Arc<dyn ItemStore>,
    requests: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ItemStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            requests: AtomicUsize::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Requests so far, and resets the counter.
    pub fn take(&self) -> usize {
        self.requests.swap(0, Ordering::SeqCst)
    }

    /// From now on every request fails as if the store were unreachable (or works again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn count(&self) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "the test made the store unreachable".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl ItemStore for CountingStore {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.count()?;
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.count()?;
        self.inner.put(item, condition).await
    }

    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        self.count()?;
        self.inner.delete(key, condition).await
    }

    async fn take(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.count()?;
        self.inner.take(key).await
    }

    async fn query(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        self.count()?;
        self.inner.query(pk, range).await
    }

    async fn query_index(
        &self,
        index_pk: &str,
        sk_max: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        self.count()?;
        self.inner
            .query_index(index_pk, sk_max, start_after, limit)
            .await
    }

    async fn write_atomic(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.count()?;
        self.inner.write_atomic(ops).await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.count()?;
        self.inner.put_many(items).await
    }

    async fn delete_many(&self, keys: Vec<ItemKey>) -> Result<(), StoreError> {
        self.count()?;
        self.inner.delete_many(keys).await
    }
}

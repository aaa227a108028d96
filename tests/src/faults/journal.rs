//! [`JournalStore`]: an item store decorator that remembers every key ever written through it, so
//! [`JournalStore::snapshot`] can read back the store's whole logical content (the item store
//! port has no scan, on purpose). Tests start from an empty store, so the journal covers it all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailroom_core::ports::{
    Condition, Item, ItemKey, ItemStore, Page, QueryRange, StoreError, WriteOp,
};

/// The live items of a store, by key.
pub type Snapshot = BTreeMap<ItemKey, Item>;

/// Journals the keys written to an inner store.
#[derive(Clone)]
pub struct JournalStore {
    inner: Arc<dyn ItemStore>,
    keys: Arc<Mutex<BTreeSet<ItemKey>>>,
}

impl JournalStore {
    pub fn new(inner: Arc<dyn ItemStore>) -> Self {
        Self {
            inner,
            keys: Arc::default(),
        }
    }

    fn note(&self, keys: impl IntoIterator<Item = ItemKey>) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(keys);
    }

    /// Every live item the store holds now.
    pub async fn snapshot(&self) -> Snapshot {
        let keys: Vec<ItemKey> = self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let mut out = Snapshot::new();
        for key in keys {
            if let Some(item) = self.inner.get(&key).await.expect("read a journaled key") {
                out.insert(key, item);
            }
        }
        out
    }

    /// The live items whose partition key starts with `prefix`.
    pub async fn partition(&self, prefix: &str) -> Snapshot {
        self.snapshot()
            .await
            .into_iter()
            .filter(|(k, _)| k.pk.starts_with(prefix))
            .collect()
    }
}

#[async_trait]
impl ItemStore for JournalStore {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.note([item.key.clone()]);
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        self.inner.delete(key, condition).await
    }
    async fn take(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.inner.take(key).await
    }
    async fn query(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        self.inner.query(pk, range).await
    }
    async fn query_index(
        &self,
        index_pk: &str,
        sk_max: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        self.inner
            .query_index(index_pk, sk_max, start_after, limit)
            .await
    }
    async fn write_atomic(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.note(ops.iter().map(|op| op.key().clone()));
        self.inner.write_atomic(ops).await
    }
    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.note(items.iter().map(|i| i.key.clone()));
        self.inner.put_many(items).await
    }
    async fn delete_many(&self, keys: Vec<ItemKey>) -> Result<(), StoreError> {
        self.inner.delete_many(keys).await
    }
}

/// Every file under `dir` (recursively) with its bytes: the embedded blob store's content.
pub fn blob_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path.display().to_string(), bytes);
            }
        }
    }
    out
}

//! [`RedbStore`]: the item store on an embedded redb file, with the same semantics as the
//! DynamoDB adapter. Every write runs in one redb write transaction (redb allows one writer at a
//! time), so conditions are checked and applied atomically.

mod codec;
mod tables;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use mailroom_core::ports::{
    Condition, Item, ItemKey, ItemStore, MAX_PAGE, Page, QueryRange, StoreError, WriteOp,
};
use mailroom_core::time::now_unix;
use redb::{Database, ReadableDatabase};

use tables::{INDEX, ITEMS, Writer, db_err};

/// The item store on a redb database file.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (or creates) the database at `path`, creates the tables and removes expired items.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| {
            StoreError::Unavailable(format!("cannot open database {}: {e}", path.display()))
        })?;
        let store = Self { db: Arc::new(db) };
        let purged = store.write_sync(|w| w.purge_expired(now_unix()))?;
        tracing::debug!(path = %path.display(), purged, "opened the embedded item store");
        Ok(store)
    }

    /// Deletes every item expired at `now` (DynamoDB's TTL sweeper does this for the cloud
    /// store); returns how many were removed. Reads already skip expired items.
    pub async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.write(move |w| w.purge_expired(now)).await
    }

    /// Runs `f` in one write transaction, committed only when `f` succeeds.
    fn write_sync<T>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let out = {
            let mut writer = Writer {
                items: txn.open_table(ITEMS).map_err(db_err)?,
                index: txn.open_table(INDEX).map_err(db_err)?,
            };
            f(&mut writer)
        };
        match out {
            Ok(value) => {
                txn.commit().map_err(db_err)?;
                Ok(value)
            }
            Err(e) => {
                txn.abort().map_err(db_err)?;
                Err(e)
            }
        }
    }

    /// [`Self::write_sync`] on the blocking pool (redb does file I/O and fsync).
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.write_sync(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("embedded database task failed: {e}")))?
    }

    /// Runs `f` on a read snapshot, on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(db_err)?;
            f(&txn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("embedded database task failed: {e}")))?
    }
}

#[async_trait]
impl ItemStore for RedbStore {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.read(move |txn| {
            let items = txn.open_table(ITEMS).map_err(db_err)?;
            Ok(tables::load(&items, &key)?.filter(|i| !i.is_expired(now_unix())))
        })
        .await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        item.validate()?;
        self.write(move |w| {
            let existing = w.check(&item.key, condition, now_unix())?;
            w.put(&item, existing.as_ref())
        })
        .await
    }

    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |w| {
            w.check(&key, condition, now_unix())?;
            w.delete(&key)?;
            Ok(())
        })
        .await
    }

    async fn take(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.write(move |w| Ok(w.delete(&key)?.filter(|i| !i.is_expired(now_unix()))))
            .await
    }

    async fn query(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        range.validate()?;
        let pk = pk.to_owned();
        self.read(move |txn| {
            let items = txn.open_table(ITEMS).map_err(db_err)?;
            tables::query(&items, &pk, &range, now_unix())
        })
        .await
    }

    async fn query_index(
        &self,
        index_pk: &str,
        sk_max: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let (index_pk, sk_max) = (index_pk.to_owned(), sk_max.to_owned());
        let start_after = start_after.map(str::to_owned);
        let limit = if limit == 0 {
            MAX_PAGE
        } else {
            limit.min(MAX_PAGE)
        };
        self.read(move |txn| {
            let items = txn.open_table(ITEMS).map_err(db_err)?;
            let index = txn.open_table(INDEX).map_err(db_err)?;
            let bounds = tables::IndexBounds {
                index_pk: &index_pk,
                sk_max: &sk_max,
                start_after: start_after.as_deref(),
            };
            tables::query_index(&items, &index, &bounds, limit, now_unix())
        })
        .await
    }

    async fn write_atomic(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        WriteOp::validate_group(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.write(move |w| {
            let now = now_unix();
            // Check every condition before the first write; an error aborts the transaction anyway.
            let mut existing = Vec::with_capacity(ops.len());
            for op in &ops {
                let condition = match op {
                    WriteOp::Put { condition, .. } | WriteOp::Delete { condition, .. } => {
                        *condition
                    }
                };
                existing.push(w.check(op.key(), condition, now)?);
            }
            for (op, old) in ops.iter().zip(existing) {
                match op {
                    WriteOp::Put { item, .. } => w.put(item, old.as_ref())?,
                    WriteOp::Delete { key, .. } => {
                        w.delete(key)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for item in &items {
            item.validate()?;
        }
        self.write(move |w| w.put_many(&items)).await
    }

    /// One transaction: the items and `last` are durable together, so `last` never is before
    /// them (one commit, and one fsync, instead of two).
    async fn put_many_then(&self, items: Vec<Item>, last: Item) -> Result<(), StoreError> {
        for item in items.iter().chain([&last]) {
            item.validate()?;
        }
        self.write(move |w| {
            w.put_many(&items)?;
            let existing = tables::load(&w.items, &last.key)?;
            w.put(&last, existing.as_ref())
        })
        .await
    }

    async fn delete_many(&self, keys: Vec<ItemKey>) -> Result<(), StoreError> {
        self.write(move |w| {
            for key in &keys {
                w.delete(key)?;
            }
            Ok(())
        })
        .await
    }
}

//! Decorators that make the store or the key service fail on command, the way DynamoDB
//! (throttling, unavailability, lost conditional races) and KMS (unavailable) fail, so tests can
//! check that Mailroom ends with a clean error and nothing half-written. Every item that reached
//! the inner store is kept, so tests can also look for plaintext in what was really written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailroom_core::ports::{
    Condition, DataKey, Item, ItemKey, ItemStore, KeyContext, KeyError, KeyService, Page,
    QueryRange, StoreError, WriteOp,
};
use zeroize::Zeroizing;

/// The error a failing store call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    Throttled,
    Unavailable,
    ConditionFailed,
}

/// Which store calls fail, and how often.
#[derive(Debug, Clone)]
pub struct StoreFault {
    /// Call names (`get`, `put`, `delete`, `take`, `query`, `query_index`, `write_atomic`,
    /// `put_many`, `delete_many`); empty: every call.
    pub ops: Vec<&'static str>,
    /// Only calls touching a partition key that starts with this.
    pub pk_prefix: Option<String>,
    /// Only calls touching a sort key that starts with this.
    pub sk_prefix: Option<String>,
    /// Matching calls let through before the fault starts.
    pub skip: u32,
    /// Matching calls that fail before the fault clears itself; `None`: until cleared.
    pub times: Option<u32>,
    pub error: StoreErrorKind,
}

impl StoreFault {
    /// Every call fails with throttling until cleared.
    pub fn throttle_all() -> Self {
        Self {
            ops: vec![],
            pk_prefix: None,
            sk_prefix: None,
            skip: 0,
            times: None,
            error: StoreErrorKind::Throttled,
        }
    }

    /// The given calls fail (until cleared) with `error`.
    pub fn on(ops: &[&'static str], error: StoreErrorKind) -> Self {
        Self {
            ops: ops.to_vec(),
            pk_prefix: None,
            sk_prefix: None,
            skip: 0,
            times: None,
            error,
        }
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Lets `n` matching calls through before failing.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    pub fn under(mut self, pk_prefix: &str) -> Self {
        self.pk_prefix = Some(pk_prefix.to_owned());
        self
    }

    pub fn sort_key(mut self, sk_prefix: &str) -> Self {
        self.sk_prefix = Some(sk_prefix.to_owned());
        self
    }
}

/// An item store that fails on command.
#[derive(Clone)]
pub struct BrokenStore {
    inner: Arc<dyn ItemStore>,
    fault: Arc<Mutex<Option<StoreFault>>>,
    written: Arc<Mutex<Vec<Item>>>,
    failed: Arc<AtomicU64>,
}

impl BrokenStore {
    pub fn new(inner: Arc<dyn ItemStore>) -> Self {
        Self {
            inner,
            fault: Arc::default(),
            written: Arc::default(),
            failed: Arc::default(),
        }
    }

    pub fn set(&self, fault: StoreFault) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(fault);
    }

    pub fn clear(&self) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// How many calls failed on purpose so far.
    pub fn failed_calls(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    /// Every item that reached the inner store (puts, atomic puts, batch puts).
    pub fn written(&self) -> Vec<Item> {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn check(&self, op: &'static str, keys: &[(&str, &str)]) -> Result<(), StoreError> {
        let mut guard = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        let Some(fault) = guard.as_mut() else {
            return Ok(());
        };
        let op_matches = fault.ops.is_empty() || fault.ops.contains(&op);
        let key_matches = keys.iter().any(|(pk, sk)| {
            fault.pk_prefix.as_deref().is_none_or(|p| pk.starts_with(p))
                && fault.sk_prefix.as_deref().is_none_or(|p| sk.starts_with(p))
        });
        if !(op_matches && key_matches) {
            return Ok(());
        }
        if fault.skip > 0 {
            fault.skip -= 1;
            return Ok(());
        }
        let error = fault.error;
        if let Some(n) = fault.times.as_mut() {
            *n -= 1;
            if *n == 0 {
                *guard = None;
            }
        }
        self.failed.fetch_add(1, Ordering::SeqCst);
        Err(match error {
            StoreErrorKind::Throttled => StoreError::Throttled,
            StoreErrorKind::Unavailable => {
                StoreError::Unavailable("injected: the store is unreachable".into())
            }
            StoreErrorKind::ConditionFailed => StoreError::ConditionFailed {
                pk: keys.first().map(|k| k.0).unwrap_or_default().to_owned(),
                sk: keys.first().map(|k| k.1).unwrap_or_default().to_owned(),
            },
        })
    }

    fn record(&self, items: impl IntoIterator<Item = Item>) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(items);
    }
}

#[async_trait]
impl ItemStore for BrokenStore {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.check("get", &[(&key.pk, &key.sk)])?;
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.check("put", &[(&item.key.pk, &item.key.sk)])?;
        self.inner.put(item.clone(), condition).await?;
        self.record([item]);
        Ok(())
    }
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        self.check("delete", &[(&key.pk, &key.sk)])?;
        self.inner.delete(key, condition).await
    }
    async fn take(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.check("take", &[(&key.pk, &key.sk)])?;
        self.inner.take(key).await
    }
    async fn query(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        self.check("query", &[(pk, range.sk_prefix.as_str())])?;
        self.inner.query(pk, range).await
    }
    async fn query_index(
        &self,
        index_pk: &str,
        sk_max: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        self.check("query_index", &[(index_pk, "")])?;
        self.inner
            .query_index(index_pk, sk_max, start_after, limit)
            .await
    }
    async fn write_atomic(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let keys: Vec<(&str, &str)> = ops
            .iter()
            .map(|o| (o.key().pk.as_str(), o.key().sk.as_str()))
            .collect();
        self.check("write_atomic", &keys)?;
        let items: Vec<Item> = ops
            .iter()
            .filter_map(|o| match o {
                WriteOp::Put { item, .. } => Some(item.clone()),
                WriteOp::Delete { .. } => None,
            })
            .collect();
        self.inner.write_atomic(ops).await?;
        self.record(items);
        Ok(())
    }
    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let keys: Vec<(&str, &str)> = items
            .iter()
            .map(|i| (i.key.pk.as_str(), i.key.sk.as_str()))
            .collect();
        self.check("put_many", &keys)?;
        self.inner.put_many(items.clone()).await?;
        self.record(items);
        Ok(())
    }
    async fn delete_many(&self, keys: Vec<ItemKey>) -> Result<(), StoreError> {
        let pairs: Vec<(&str, &str)> = keys
            .iter()
            .map(|k| (k.pk.as_str(), k.sk.as_str()))
            .collect();
        self.check("delete_many", &pairs)?;
        self.inner.delete_many(keys).await
    }
}

/// Which key-service calls fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyFault {
    pub generate: bool,
    pub unwrap: bool,
}

/// A key service that is unavailable on command (KMS outage).
#[derive(Clone)]
pub struct BrokenKeys {
    inner: Arc<dyn KeyService>,
    fault: Arc<Mutex<KeyFault>>,
    calls: Arc<AtomicU64>,
}

impl BrokenKeys {
    pub fn new(inner: Arc<dyn KeyService>) -> Self {
        Self {
            inner,
            fault: Arc::default(),
            calls: Arc::default(),
        }
    }

    pub fn set(&self, fault: KeyFault) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// Calls that reached this decorator (failed or not).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn fault(&self) -> KeyFault {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl KeyService for BrokenKeys {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fault().generate {
            return Err(KeyError::Unavailable("injected: KMS is unreachable".into()));
        }
        self.inner.generate_data_key(context).await
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fault().unwrap {
            return Err(KeyError::Unavailable("injected: KMS is unreachable".into()));
        }
        self.inner.unwrap_data_key(wrapped, context).await
    }
}

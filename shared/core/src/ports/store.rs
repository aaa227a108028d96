//! The item store port: a small single-table model (partition key, sort key, version, TTL, one
//! secondary index) that DynamoDB and the embedded database both implement with the same semantics.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Attribute names the adapters use for their own columns; record attributes may not use them.
pub const RESERVED_ATTRIBUTES: &[&str] = &["pk", "sk", "version", "ttl", "gsi1pk", "gsi1sk"];

/// Where an item lives: partition key and sort key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// The item's place in the one secondary index (used for "accounts due for sync").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    pub pk: String,
    pub sk: String,
}

/// One stored record.
///
/// `attributes` hold plaintext, non-secret fields (a JSON object whose top-level members become
/// top-level attributes in DynamoDB); `sealed` holds encrypted fields as opaque bytes, keyed by
/// field name (stored as binary attributes named `enc_<field>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: ItemKey,
    /// Optimistic-concurrency version; the adapters store it as given.
    pub version: u64,
    /// Unix seconds after which the item is dead: readers treat it as absent even before the
    /// backend's TTL sweeper removes it.
    pub expires_at: Option<i64>,
    pub index: Option<IndexKey>,
    pub attributes: Map<String, Value>,
    pub sealed: BTreeMap<String, Vec<u8>>,
}

impl Item {
    pub fn new(key: ItemKey) -> Self {
        Self {
            key,
            version: 1,
            expires_at: None,
            index: None,
            attributes: Map::new(),
            sealed: BTreeMap::new(),
        }
    }

    /// Whether the item's TTL has passed at `now` (Unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// The condition a write must meet; when it does not, the write fails with
/// [`StoreError::ConditionFailed`] and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Always write.
    None,
    /// Only when no live item has this key.
    NotExists,
    /// Only when the stored item has exactly this version.
    VersionIs(u64),
    /// Only when no item exists or the stored one has expired at `now` (leases).
    AbsentOrExpired { now: i64 },
}

/// A range of sort keys within one partition.
#[derive(Debug, Clone, Default)]
pub struct QueryRange {
    /// Only sort keys starting with this prefix.
    pub sk_prefix: String,
    /// Resume after this sort key (exclusive), in the direction of the query.
    pub start_after: Option<String>,
    /// Newest (largest sort key) first.
    pub descending: bool,
    /// At most this many items (adapters cap it at 1,000).
    pub limit: usize,
}

/// One page of a query; `next` is the sort key to pass as `start_after` for the following page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

/// One write of an atomic group.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put { item: Item, condition: Condition },
    Delete { key: ItemKey, condition: Condition },
}

/// What the store could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the write's condition did not hold for {pk}/{sk} (another writer got there first)")]
    ConditionFailed { pk: String, sk: String },
    #[error("the store is throttling requests; try again later")]
    Throttled,
    #[error("the stored item {pk}/{sk} is malformed: {reason}")]
    Corrupt {
        pk: String,
        sk: String,
        reason: String,
    },
    #[error("invalid store request: {0}")]
    Invalid(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::ConditionFailed { .. })
    }
}

/// The single-table item store.
#[async_trait]
pub trait ItemStore: Send + Sync {
    /// Reads one item; expired items read as absent.
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError>;

    /// Writes one item if `condition` holds.
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;

    /// Deletes one item if `condition` holds; deleting an absent item with `Condition::None` is ok.
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError>;

    /// Deletes one item and returns what it held, atomically: of two concurrent takers exactly one
    /// gets the item. Expired items are deleted and read as absent.
    async fn take(&self, key: &ItemKey) -> Result<Option<Item>, StoreError>;

    /// Reads a range of one partition, in sort-key order; expired items are skipped.
    async fn query(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError>;

    /// Reads the secondary index partition `index_pk` up to and including `sk_max`, in ascending
    /// order, at most `limit` items (index reads may lag writes slightly, as a DynamoDB GSI does).
    async fn query_index(
        &self,
        index_pk: &str,
        sk_max: &str,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError>;

    /// Applies up to 25 writes all-or-nothing: if any condition fails nothing is written.
    async fn write_atomic(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// Writes many items unconditionally (batched by the adapter); idempotent on the keys.
    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError>;

    /// Deletes many items unconditionally (batched by the adapter).
    async fn delete_many(&self, keys: Vec<ItemKey>) -> Result<(), StoreError>;
}

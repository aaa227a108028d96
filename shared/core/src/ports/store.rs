//! The item store port: a small single-table model (partition key, sort key, version, TTL, one
//! secondary index) that DynamoDB and the embedded database both implement with the same semantics.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Attribute names the adapters use for their own columns; record attributes may not use them.
pub const RESERVED_ATTRIBUTES: &[&str] = &["pk", "sk", "version", "ttl", "gsi1pk", "gsi1sk"];

/// Prefix of the attributes that hold sealed fields (`enc_<field>`); plain attributes may not use it.
pub const SEALED_PREFIX: &str = "enc_";

/// The most items one query page returns.
pub const MAX_PAGE: usize = 1000;

/// The most writes one [`ItemStore::write_atomic`] call may hold.
pub const MAX_ATOMIC_WRITES: usize = 25;

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

    /// Checks what every adapter requires of an item, so a bad item is refused the same way by
    /// all of them: non-empty keys, no reserved or `enc_`-prefixed attribute names, named sealed
    /// fields.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |what: String| {
            Err(StoreError::Invalid(format!(
                "item {}/{}: {what}",
                self.key.pk, self.key.sk
            )))
        };
        if self.key.pk.is_empty() || self.key.sk.is_empty() {
            return invalid("partition and sort keys must not be empty".into());
        }
        if let Some(index) = &self.index
            && (index.pk.is_empty() || index.sk.is_empty())
        {
            return invalid("index keys must not be empty".into());
        }
        for name in self.attributes.keys() {
            if name.is_empty()
                || RESERVED_ATTRIBUTES.contains(&name.as_str())
                || name.starts_with(SEALED_PREFIX)
            {
                return invalid(format!("attribute name {name:?} is reserved"));
            }
        }
        if self.sealed.keys().any(String::is_empty) {
            return invalid("a sealed field has an empty name".into());
        }
        Ok(())
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
    /// At most this many items (adapters cap it at [`MAX_PAGE`]; 0 means the cap).
    pub limit: usize,
}

impl QueryRange {
    /// The number of items a page may hold: `limit`, or [`MAX_PAGE`] when it is 0 or larger.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => MAX_PAGE,
            n => n.min(MAX_PAGE),
        }
    }

    /// Checks that `start_after` lies within the prefix (a cursor from another query is refused).
    pub fn validate(&self) -> Result<(), StoreError> {
        match &self.start_after {
            Some(after) if !after.starts_with(&self.sk_prefix) => {
                Err(StoreError::Invalid(format!(
                    "start_after {after:?} is outside the sort-key prefix {:?}",
                    self.sk_prefix
                )))
            }
            _ => Ok(()),
        }
    }
}

/// One page of a query; `next` is the sort key to pass as `start_after` for the following page,
/// `None` when no live item follows.
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

impl WriteOp {
    /// The key this write touches.
    pub fn key(&self) -> &ItemKey {
        match self {
            WriteOp::Put { item, .. } => &item.key,
            WriteOp::Delete { key, .. } => key,
        }
    }

    /// Checks an atomic group: at most [`MAX_ATOMIC_WRITES`] writes, valid items, and each key
    /// at most once (DynamoDB refuses a transaction that touches an item twice).
    pub fn validate_group(ops: &[WriteOp]) -> Result<(), StoreError> {
        if ops.len() > MAX_ATOMIC_WRITES {
            return Err(StoreError::Invalid(format!(
                "an atomic write holds at most {MAX_ATOMIC_WRITES} writes, not {}",
                ops.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for op in ops {
            if let WriteOp::Put { item, .. } = op {
                item.validate()?;
            }
            if !seen.insert(op.key()) {
                let key = op.key();
                return Err(StoreError::Invalid(format!(
                    "an atomic write touches {}/{} more than once",
                    key.pk, key.sk
                )));
            }
        }
        Ok(())
    }
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

    /// Reads one item like [`ItemStore::get`], but may return what it held a moment ago
    /// (DynamoDB's eventually consistent read: half the price). Only for reads whose result a
    /// consistent read confirms before anything is written on its strength (the sync worker's
    /// read-only check). The default is the consistent read.
    async fn get_stale(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.get(key).await
    }

    /// Writes one item if `condition` holds.
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;

    /// Deletes one item if `condition` holds; deleting an absent item with `Condition::None` is ok.
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError>;

    /// Deletes one item and returns what it held, atomically: of two concurrent takers exactly one
    /// gets the item. Expired items are deleted and read as absent.
    async fn take(&self, key: &ItemKey) -> Result<Option<Item>, StoreError>;

    /// Reads a range of one partition, in sort-key order; expired items are skipped. A
    /// `start_after` outside `sk_prefix` is [`StoreError::Invalid`].
    async fn query(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError>;

    /// Reads a range like [`ItemStore::query`], possibly a moment stale (see
    /// [`ItemStore::get_stale`]). The default is the consistent query.
    async fn query_stale(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        self.query(pk, range).await
    }

    /// Reads the secondary index partition `index_pk` up to and including `sk_max`, in ascending
    /// order, after the index sort key `start_after` (exclusive; pass the last item's index sort
    /// key to read the next page, so index sort keys should be unique), at most `limit` items.
    /// Index reads may lag writes slightly, as a DynamoDB GSI does.
    ///
    /// The index projects only keys, the expiry and the version: each item holds its key, its
    /// index key, `expires_at` and `version` (0 on a table whose index was created without it);
    /// there are no attributes or sealed fields (read the item itself for those). The version
    /// lets the scheduler tell workers which state of an account it found due (their cache
    /// checks it); a write rewrites the index copy (DynamoDB bills it again) because every
    /// write changes the version, an accepted cost of about 1 WRU a write (COST.md).
    async fn query_index(
        &self,
        index_pk: &str,
        sk_max: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError>;

    /// Applies up to 25 writes all-or-nothing: if any condition fails nothing is written. A key
    /// may appear once per group. `Condition::VersionIs` fails on an expired item (it reads as
    /// absent), here as in `put` and `delete`.
    async fn write_atomic(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// Writes many items unconditionally (batched by the adapter); idempotent on the keys (when a
    /// key repeats, the last item wins). Not atomic: on error, some items may have been written.
    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError>;

    /// Writes `items` as [`ItemStore::put_many`] does, then `last` unconditionally: `last` is
    /// never durable before every item (a folder cursor after the metadata it covers). This
    /// default makes two calls in that order; a store that can commit both at once (one
    /// transaction) overrides it, saving a commit per sync batch.
    async fn put_many_then(&self, items: Vec<Item>, last: Item) -> Result<(), StoreError> {
        self.put_many(items).await?;
        self.put(last, Condition::None).await
    }

    /// Deletes many items unconditionally (batched by the adapter).
    async fn delete_many(&self, keys: Vec<ItemKey>) -> Result<(), StoreError>;
}

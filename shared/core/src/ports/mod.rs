//! The ports: small async traits that the storage, crypto, blob and queue adapters implement.

mod blobs;
mod keys;
mod queue;
mod store;
mod tokens;

pub use blobs::{BlobError, BlobStore, validate_blob_key};
pub use keys::{DataKey, KeyContext, KeyError, KeyService};
pub use queue::{
    JOBS_PER_MESSAGE, Job, JobKind, JobMessage, JobQueue, MAX_DELAY_SECONDS, QueueError,
};
pub use store::{
    Condition, IndexKey, Item, ItemKey, ItemStore, MAX_ATOMIC_WRITES, MAX_PAGE, Page, QueryRange,
    RESERVED_ATTRIBUTES, SEALED_PREFIX, StoreError, WriteOp,
};
pub use tokens::{AccessGrant, TokenError, TokenSource};

//! Mailroom's embedded adapters for running without AWS: a redb item store, a key-file key
//! service, a directory blob store and an in-process job queue.

mod blobs;
mod durable;
mod keyfile;
mod queue;
mod store;

pub use blobs::DirBlobStore;
pub use keyfile::{KeyFile, KeyFileError};
pub use queue::{InProcessQueue, JobReceiver};
pub use store::RedbStore;

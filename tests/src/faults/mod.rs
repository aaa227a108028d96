//! Fault injection and observation for the reliability and security suite: a store decorator
//! that journals every key so a test can snapshot the store's whole logical content, store and
//! key-service decorators that fail on command, a TLS-terminating proxy that cuts, delays and
//! injects replies between Mailroom and the real Dovecot, and a tracing capture for log checks.

pub mod broken;
pub mod journal;
pub mod logs;
pub mod proxy;

pub use broken::{BrokenKeys, BrokenStore, KeyFault, StoreErrorKind, StoreFault};
pub use journal::{JournalStore, Snapshot, blob_files};
pub use proxy::{Action, FaultProxy, Plan, Rule, Upstream};

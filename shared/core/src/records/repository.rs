//! The repository: typed access to records, sealing and opening their secret fields.

use std::sync::Arc;

use crate::crypto::{CryptoError, Sealer};
use crate::ports::{ItemStore, StoreError};

/// What could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl RecordError {
    /// Whether another writer changed the record first (retry after re-reading it).
    pub fn is_conflict(&self) -> bool {
        matches!(self, RecordError::Store(e) if e.is_conflict())
    }
}

/// Typed records over one item store and one sealer.
#[derive(Clone)]
pub struct Repository {
    pub(crate) store: Arc<dyn ItemStore>,
    pub(crate) sealer: Arc<Sealer>,
}

impl Repository {
    pub fn new(store: Arc<dyn ItemStore>, sealer: Arc<Sealer>) -> Self {
        Self { store, sealer }
    }

    /// The underlying store, for records that have no secret fields.
    pub fn store(&self) -> &Arc<dyn ItemStore> {
        &self.store
    }

    pub fn sealer(&self) -> &Arc<Sealer> {
        &self.sealer
    }
}

//! The key service port: generates and unwraps the data keys of envelope encryption (AWS KMS, or
//! a local key file).

use async_trait::async_trait;
use zeroize::Zeroizing;

/// What a data key is bound to; passed to KMS as the encryption context, so a wrapped key copied
/// onto another record cannot be unwrapped there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyContext {
    pub record_kind: String,
    pub record_id: String,
}

impl KeyContext {
    pub fn new(record_kind: impl Into<String>, record_id: impl Into<String>) -> Self {
        Self {
            record_kind: record_kind.into(),
            record_id: record_id.into(),
        }
    }

    /// The context as key/value pairs, in a stable order.
    pub fn pairs(&self) -> [(&'static str, &str); 2] {
        [
            ("record_kind", &self.record_kind),
            ("record_id", &self.record_id),
        ]
    }
}

/// A fresh 256-bit data key: the plaintext (wiped on drop) and the same key wrapped by the master key.
pub struct DataKey {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("wrapped_len", &self.wrapped.len())
            .finish_non_exhaustive()
    }
}

/// What the key service could not do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the wrapped data key could not be unwrapped (wrong key, context or tampered data)")]
    Unwrap,
    #[error("the key service is unavailable: {0}")]
    Unavailable(String),
    #[error("the key service refused the request: {0}")]
    Refused(String),
}

/// Envelope-encryption master key.
#[async_trait]
pub trait KeyService: Send + Sync {
    /// Creates a new 32-byte data key bound to `context`.
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError>;

    /// Unwraps a data key produced by `generate_data_key` with the same `context`.
    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError>;
}

//! The key service port: generates and unwraps the data keys of envelope encryption (AWS KMS, or
//! a local key file).

use async_trait::async_trait;
use zeroize::Zeroizing;

/// What a data key is bound to at the key service (the KMS encryption context, the key file's
/// associated data), and, for the [`Sealer`](crate::crypto::Sealer), which record a sealed field
/// belongs to.
///
/// Keys generated today are [`KeyContext::shared`]: one data key seals many records, so its
/// context cannot name one of them (the sealed value's associated data names the record and
/// field instead). Values sealed by format 1 hold a key bound to their record
/// ([`KeyContext::new`]), and opening them passes that record's context to the key service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyContext(Binding);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Binding {
    Record { kind: String, id: String },
    Shared,
}

/// The encryption context of shared data keys. Its version changes if the way keys are shared
/// ever does, so old wrapped keys stay distinguishable in CloudTrail.
const SHARED: [(&str, &str); 3] = [("app", "mailroom"), ("purpose", "record-key"), ("v", "2")];

impl KeyContext {
    /// The record `record_kind`/`record_id`: what [`Sealer`](crate::crypto::Sealer) binds a
    /// sealed field to, and the key-service context of format-1 data keys.
    pub fn new(record_kind: impl Into<String>, record_id: impl Into<String>) -> Self {
        Self(Binding::Record {
            kind: record_kind.into(),
            id: record_id.into(),
        })
    }

    /// The context of data keys shared by many records: `{"app": "mailroom", "purpose":
    /// "record-key", "v": "2"}`.
    pub fn shared() -> Self {
        Self(Binding::Shared)
    }

    /// The record's kind and id; `None` for the shared context.
    pub fn record(&self) -> Option<(&str, &str)> {
        match &self.0 {
            Binding::Record { kind, id } => Some((kind, id)),
            Binding::Shared => None,
        }
    }

    /// The context as key/value pairs, in a stable order.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        match &self.0 {
            Binding::Record { kind, id } => vec![("record_kind", kind), ("record_id", id)],
            Binding::Shared => SHARED.to_vec(),
        }
    }

    /// Every key name any context may send (what a KMS key policy must allow).
    pub fn all_pair_names() -> [&'static str; 5] {
        [
            "record_kind",
            "record_id",
            SHARED[0].0,
            SHARED[1].0,
            SHARED[2].0,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_shared_contexts_have_distinct_pairs() {
        let record = KeyContext::new("account", "a1");
        assert_eq!(
            record.pairs(),
            vec![("record_kind", "account"), ("record_id", "a1")]
        );
        assert_eq!(record.record(), Some(("account", "a1")));
        let shared = KeyContext::shared();
        assert_eq!(
            shared.pairs(),
            vec![("app", "mailroom"), ("purpose", "record-key"), ("v", "2")]
        );
        assert_eq!(shared.record(), None);
        let names: Vec<_> = [record, shared]
            .iter()
            .flat_map(|c| c.pairs().into_iter().map(|(k, _)| k))
            .collect();
        assert_eq!(names, KeyContext::all_pair_names());
    }
}

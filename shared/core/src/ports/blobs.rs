//! The blob store port: raw RFC 5322 messages (S3, or a local directory).

use async_trait::async_trait;
use bytes::Bytes;

/// What the blob store could not do.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    #[error("the blob store is unavailable: {0}")]
    Unavailable(String),
}

/// Stores opaque blobs under `/`-separated keys of safe characters (`[A-Za-z0-9._=-]` segments).
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `body` under `key`, replacing what was there (idempotent).
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError>;

    /// Reads the blob under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError>;

    /// Deletes every blob whose key starts with `prefix`; returns how many were deleted.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError>;
}

/// Checks that a blob key is made of safe segments, so no adapter can be led outside its root.
pub fn validate_blob_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._=-".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.to_owned()))
    }
}

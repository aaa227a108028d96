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

    /// Stores `body` under `key` like [`BlobStore::put`], but it may only become durable at the
    /// next [`BlobStore::make_durable`] naming it: a store that pays per durable write (a local
    /// disk's fsync) can then pay once per batch. By default the same as `put` (S3's PUT is
    /// durable when it answers).
    async fn put_unsynced(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.put(key, body).await
    }

    /// Makes the blobs written by [`BlobStore::put_unsynced`] under `keys` durable; when it
    /// returns `Ok`, they survive a crash. By default nothing is left to do.
    async fn make_durable(&self, keys: &[String]) -> Result<(), BlobError> {
        let _ = keys;
        Ok(())
    }
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

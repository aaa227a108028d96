//! [`DirBlobStore`]: blobs on a local directory. New blobs are appended to pack files and
//! found through a redb index (`packs`): one batch of a first sync becomes durable with one
//! sync of its pack and one index commit, where a file per blob cost a creation and an fsync
//! each (on this project's disks, most of a first sync's time). Blobs stored by earlier
//! versions, one file each under `<root>/blobs/<key>` (`legacy`), are still read and deleted.
//!
//! Space: deleting blobs removes their index entries at once; a pack nothing points at any
//! more is deleted by the sweep that follows every `delete_prefix` (and one at open), and a
//! pack more than half dead is first rewritten. Packs are kept per key folder, so deleting an
//! account or a folder frees whole packs.

mod compact;
mod legacy;
mod packs;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::ports::{BlobError, BlobStore, validate_blob_key};

use packs::Packs;

/// A blob store on a local directory.
#[derive(Clone)]
pub struct DirBlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The earlier one-file-per-blob layout.
    legacy: PathBuf,
    packs: Packs,
}

impl std::fmt::Debug for DirBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirBlobStore")
            .field("legacy", &self.inner.legacy)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BlobError {
    BlobError::Unavailable(format!("{what}: {e}"))
}

/// A prefix is a key, optionally ending in `/` (a whole "folder").
fn validate_prefix(prefix: &str) -> Result<(), BlobError> {
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    validate_blob_key(body).map_err(|_| BlobError::InvalidKey(prefix.to_owned()))
}

/// Unsynced writes up to this size run on the caller's thread: into the page cache only, which
/// is shorter than handing them to a blocking thread and back (those hand-offs were a quarter
/// of a first sync's CPU).
const INLINE_WRITE_MAX: usize = 256 * 1024;

impl DirBlobStore {
    /// Opens the store under `root` (`packs/`, `packs.redb`, and `blobs/` if an earlier version
    /// wrote there), deleting what a crash left uncommitted.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(root)
            .map_err(|e| unavailable(&format!("cannot create {}", root.display()), e))?;
        let packs = Packs::open(root)?;
        Ok(Self {
            inner: Arc::new(Inner {
                legacy: root.join("blobs"),
                packs,
            }),
        })
    }

    fn get_sync(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        let packs = &self.inner.packs;
        // A pack rewritten between the lookup and the read: the second lookup finds the copy.
        for _ in 0..3 {
            let Some(location) = packs.lookup(key)? else {
                return legacy::get(&self.inner.legacy, key);
            };
            match packs.read(location) {
                Ok(body) => return Ok(Some(body)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(unavailable(&format!("cannot read blob {key}"), e)),
            }
        }
        Err(unavailable(
            &format!("cannot read blob {key}"),
            "its pack keeps moving",
        ))
    }

    fn make_durable_sync(&self, keys: &[String]) -> Result<(), BlobError> {
        let missing = self.inner.packs.commit(keys)?;
        // Keys not written since the start are fine if an earlier version stored them.
        match missing
            .iter()
            .find(|k| !legacy::exists(&self.inner.legacy, k))
        {
            Some(key) => Err(unavailable(
                &format!("cannot make blob {key} durable"),
                "it was not stored",
            )),
            None => Ok(()),
        }
    }

    fn delete_prefix_sync(&self, prefix: &str) -> Result<u64, BlobError> {
        let packed = self.inner.packs.delete_prefix(prefix)?;
        let files = legacy::delete_prefix(&self.inner.legacy, prefix, &packed)?;
        if let Err(e) = self.inner.packs.sweep() {
            // The blobs are gone; their space is reclaimed by a later sweep.
            tracing::warn!(error = %e, "could not reclaim the space of deleted blobs yet");
        }
        Ok(packed.len() as u64 + files)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, BlobError> + Send + 'static,
    ) -> Result<T, BlobError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| unavailable("blob task failed", e))?
    }
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.put_unsynced(key, body).await?;
        self.make_durable(&[key.to_owned()]).await
    }

    async fn put_unsynced(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        validate_blob_key(key)?;
        if body.len() <= INLINE_WRITE_MAX {
            self.inner.packs.append(key, &body)
        } else {
            let key = key.to_owned();
            self.blocking(move |s| s.inner.packs.append(&key, &body))
                .await
        }
    }

    async fn make_durable(&self, keys: &[String]) -> Result<(), BlobError> {
        for key in keys {
            validate_blob_key(key)?;
        }
        let keys = keys.to_vec();
        self.blocking(move |s| s.make_durable_sync(&keys)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        validate_blob_key(key)?;
        let key = key.to_owned();
        self.blocking(move |s| s.get_sync(&key)).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.blocking(move |s| s.delete_prefix_sync(&prefix)).await
    }
}

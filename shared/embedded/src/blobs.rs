//! [`DirBlobStore`]: blobs as files under `<root>/blobs/<key>`, written atomically (a temporary
//! file under `<root>/tmp/`, renamed into place; a new blob written unsynced goes straight into
//! place, as nothing refers to it before its batch is durable). `put` syncs the file and its folder before it
//! answers; `put_unsynced` leaves that to one `make_durable` per batch, which syncs the batch's
//! files in parallel (an fsync per blob made syncing the bottleneck of a first sync on disk).

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::ports::{BlobError, BlobStore, validate_blob_key};

/// A blob store on a local directory.
#[derive(Debug, Clone)]
pub struct DirBlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    /// Unsynced writes go one at a time: they only touch the page cache, and parallel file
    /// creations in the same folders spin on the folders' locks (most of a first sync's CPU on
    /// this ext4 with 8 at once).
    writer: Arc<Mutex<()>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BlobError {
    BlobError::Unavailable(format!("{what}: {e}"))
}

/// A prefix is a key, optionally ending in `/` (a whole "folder").
fn validate_prefix(prefix: &str) -> Result<(), BlobError> {
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    validate_blob_key(body).map_err(|_| BlobError::InvalidKey(prefix.to_owned()))
}

/// Renames `temp` to `target`, creating the folders only when missing (a `mkdir` per blob
/// showed in profiles); retried because a concurrent `delete_prefix` may remove a folder it has
/// just emptied.
fn move_into_place(temp: &Path, target: &Path) -> std::io::Result<()> {
    let mut attempt = 0;
    loop {
        match fs::rename(temp, target) {
            Err(e) if e.kind() == ErrorKind::NotFound && attempt < 3 => {
                attempt += 1;
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)?;
                }
            }
            other => return other,
        }
    }
}

/// Unsynced writes up to this size run on the caller's thread.
const INLINE_WRITE_MAX: usize = 256 * 1024;

/// How many threads sync one batch's files at once: file syncs mostly wait on the disk, and
/// concurrent ones share the file system's journal commits.
const SYNC_THREADS: usize = 8;

impl DirBlobStore {
    /// Opens the store under `root`, creating its directories.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let store = Self {
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
            writer: Arc::new(Mutex::new(())),
        };
        for dir in [&store.blobs, &store.tmp] {
            fs::create_dir_all(dir)
                .map_err(|e| unavailable(&format!("cannot create {}", dir.display()), e))?;
        }
        Ok(store)
    }

    /// Writes a blob that does not exist yet straight into place (no temporary file, no
    /// rename: a third of an unsynced write's system calls). Nothing refers to a new blob before
    /// its batch is durable, so a crash mid-write only leaves a file the retried batch replaces
    /// (through [`DirBlobStore::put_sync`], as the file then exists). `Ok(false)`: it exists.
    fn put_new(&self, key: &str, body: &[u8]) -> Result<bool, BlobError> {
        let target = self.blobs.join(key);
        let create = || {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
        };
        let file = match create() {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| unavailable(&format!("cannot write blob {key}"), e))?;
                }
                create()
            }
            other => other,
        };
        let mut file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(unavailable(&format!("cannot write blob {key}"), e)),
        };
        if let Err(e) = file.write_all(body) {
            // A partial file must not stay under the key.
            let _ = fs::remove_file(&target);
            return Err(unavailable(&format!("cannot write blob {key}"), e));
        }
        Ok(true)
    }

    /// Writes the blob atomically; with `durable`, its data and folder entry are synced first.
    fn put_sync(&self, key: &str, body: &[u8], durable: bool) -> Result<(), BlobError> {
        let target = self.blobs.join(key);
        let temp = self.tmp.join(format!("{:016x}", rand::random::<u64>()));
        let written = (|| {
            let mut file = fs::File::create_new(&temp)?;
            file.write_all(body)?;
            if durable {
                file.sync_all()?;
            }
            move_into_place(&temp, &target)?;
            if durable {
                crate::durable::sync_parent(&target);
            }
            Ok::<_, std::io::Error>(())
        })();
        if let Err(e) = written {
            // Best effort: a leftover temporary file is harmless and never read.
            let _ = fs::remove_file(&temp);
            return Err(unavailable(&format!("cannot write blob {key}"), e));
        }
        Ok(())
    }

    /// Syncs the files under `keys` (a missing one is an error: it was not stored).
    fn sync_files(&self, keys: &[String]) -> Result<(), BlobError> {
        for key in keys {
            fs::File::open(self.blobs.join(key))
                .and_then(|f| f.sync_all())
                .map_err(|e| unavailable(&format!("cannot make blob {key} durable"), e))?;
        }
        Ok(())
    }

    fn get_sync(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        match fs::read(self.blobs.join(key)) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            // A "folder" of other keys is not a blob, as in S3.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotADirectory => Ok(None),
            Err(e) => Err(unavailable(&format!("cannot read blob {key}"), e)),
        }
    }

    fn delete_prefix_sync(&self, prefix: &str) -> Result<u64, BlobError> {
        // Walk only the deepest folder the prefix names completely.
        let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let start = self.blobs.join(folder);
        let mut deleted = 0;
        let mut stack = vec![(start, folder.to_owned())];
        while let Some((dir, key)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    continue;
                }
                Err(e) => return Err(unavailable("cannot list blobs", e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| unavailable("cannot list blobs", e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let child = if key.is_empty() {
                    name.to_owned()
                } else {
                    format!("{key}/{name}")
                };
                let file_type = entry
                    .file_type()
                    .map_err(|e| unavailable("cannot list blobs", e))?;
                if file_type.is_dir() {
                    // Descend only where keys under the folder can still match the prefix.
                    let as_folder = format!("{child}/");
                    if as_folder.starts_with(prefix) || prefix.starts_with(&as_folder) {
                        stack.push((entry.path(), child));
                    }
                } else if child.starts_with(prefix) {
                    match fs::remove_file(entry.path()) {
                        Ok(()) => deleted += 1,
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(unavailable(&format!("cannot delete blob {child}"), e));
                        }
                    }
                }
            }
            // Tidy emptied folders; a folder still in use simply stays.
            if dir != self.blobs {
                let _ = fs::remove_dir(&dir);
            }
        }
        Ok(deleted)
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
        validate_blob_key(key)?;
        let key = key.to_owned();
        self.blocking(move |s| s.put_sync(&key, &body, true)).await
    }

    async fn put_unsynced(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        validate_blob_key(key)?;
        let key = key.to_owned();
        let inline = body.len() <= INLINE_WRITE_MAX;
        let write = move |s: &Self| {
            // A poisoned lock only means another write panicked; the files are still fine.
            let _one_at_a_time = s.writer.lock().unwrap_or_else(|e| e.into_inner());
            match s.put_new(&key, &body)? {
                true => Ok(()),
                false => s.put_sync(&key, &body, false),
            }
        };
        if inline {
            // Into the page cache only: shorter than handing it to a blocking thread and back
            // (those hand-offs were a quarter of a first sync's CPU).
            write(self)
        } else {
            self.blocking(write).await
        }
    }

    async fn make_durable(&self, keys: &[String]) -> Result<(), BlobError> {
        for key in keys {
            validate_blob_key(key)?;
        }
        let mut syncs = tokio::task::JoinSet::new();
        for chunk in keys.chunks(keys.len().div_ceil(SYNC_THREADS).max(1)) {
            let chunk = chunk.to_vec();
            let this = self.clone();
            syncs.spawn_blocking(move || this.sync_files(&chunk));
        }
        while let Some(done) = syncs.join_next().await {
            done.map_err(|e| unavailable("blob sync task failed", e))??;
        }
        // Then each folder once, so the renames survive a crash too.
        let folders: BTreeSet<PathBuf> = keys
            .iter()
            .filter_map(|k| self.blobs.join(k).parent().map(Path::to_path_buf))
            .collect();
        self.blocking(move |_| {
            for folder in folders {
                crate::durable::sync_dir(&folder);
            }
            Ok(())
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unsynced_blobs_are_readable_and_made_durable_as_a_batch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = DirBlobStore::open(dir.path()).expect("store");
        let keys: Vec<String> = (0..20)
            .map(|i| format!("acct/msg/INBOX/1/{i}.eml"))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            store
                .put_unsynced(key, Bytes::from(format!("message {i}")))
                .await
                .expect("put");
        }
        store.make_durable(&keys).await.expect("durable");
        for (i, key) in keys.iter().enumerate() {
            let got = store.get(key).await.expect("get").expect("stored");
            assert_eq!(got, Bytes::from(format!("message {i}")));
        }
        // A blob written again (a retried batch) is replaced whole.
        store
            .put_unsynced(&keys[0], Bytes::from_static(b"again"))
            .await
            .expect("put again");
        store.make_durable(&keys[..1]).await.expect("durable");
        let got = store.get(&keys[0]).await.expect("get").expect("stored");
        assert_eq!(got, Bytes::from_static(b"again"));
        // Nothing is left behind in the temporary folder.
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).expect("tmp").count(),
            0
        );
    }

    #[tokio::test]
    async fn a_blob_never_written_cannot_be_made_durable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = DirBlobStore::open(dir.path()).expect("store");
        store
            .put_unsynced("a/1.eml", Bytes::from_static(b"one"))
            .await
            .expect("put");
        let err = store
            .make_durable(&["a/1.eml".to_owned(), "a/2.eml".to_owned()])
            .await
            .expect_err("a missing blob");
        assert!(err.to_string().contains("a/2.eml"), "{err}");
        let err = store
            .make_durable(&["../escape".to_owned()])
            .await
            .expect_err("a bad key");
        assert!(matches!(err, BlobError::InvalidKey(_)));
    }
}

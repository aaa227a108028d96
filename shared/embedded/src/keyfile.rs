//! [`KeyFile`]: the local key service. A 32-byte master key lives in `<data dir>/master.key`
//! (mode 0600); data keys are wrapped with AES-256-GCM under it, with the key context as
//! associated data: the shared context for the keys sealing uses today, a record's own context
//! for the keys of format-1 values (which then do not unwrap on another record). The associated
//! data of record contexts is what it always was, so existing data directories keep opening.
//!
//! Wrapped format (version 1): `0x01 | 12-byte nonce | 32-byte ciphertext | 16-byte tag`.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use mailroom_core::ports::{DataKey, KeyContext, KeyError, KeyService};
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const FORMAT: u8 = 1;
const FILE_NAME: &str = "master.key";

/// Why the master key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or write the master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the master key file {path} is readable by group or others (mode {mode:o}); run `chmod 600` on it"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the master key file {path} holds {len} bytes, not 32")]
    Length { path: PathBuf, len: usize },
    #[error("the master key could not be used")]
    Key,
}

/// The local key service: wraps data keys under a master key kept in a file.
pub struct KeyFile {
    master: RandomizedNonceKey,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile").finish_non_exhaustive()
    }
}

/// The associated data: every context pair, length-prefixed so no two contexts collide.
fn aad(context: &KeyContext) -> Vec<u8> {
    let mut out = b"mailroom-keyfile/v1".to_vec();
    for (name, value) in context.pairs() {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(&(value.len() as u64).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

impl KeyFile {
    /// Loads `<data_dir>/master.key`, creating the directory (0700) and a fresh random key (0600)
    /// on first run. Refuses a key file that group or others may read.
    pub fn open_or_create(data_dir: &Path) -> Result<Self, KeyFileError> {
        if !data_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(|source| KeyFileError::CreateDir {
                    path: data_dir.to_owned(),
                    source,
                })?;
        }
        let path = data_dir.join(FILE_NAME);
        let bytes = match read_key(&path) {
            Ok(bytes) => bytes,
            Err(KeyFileError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                create_key(&path)?
            }
            Err(e) => return Err(e),
        };
        let master =
            RandomizedNonceKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyFileError::Key)?;
        Ok(Self { master })
    }

    fn wrap(&self, plaintext: &[u8], context: &KeyContext) -> Result<Vec<u8>, KeyError> {
        let mut body = plaintext.to_vec();
        let nonce = self
            .master
            .seal_in_place_append_tag(Aad::from(aad(context)), &mut body)
            .map_err(|_| KeyError::Refused("the data key could not be wrapped".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(FORMAT);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mode = file.metadata().map_err(io_err(path))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN));
    file.read_to_end(&mut bytes).map_err(io_err(path))?;
    if bytes.len() != KEY_LEN {
        return Err(KeyFileError::Length {
            path: path.to_owned(),
            len: bytes.len(),
        });
    }
    Ok(bytes)
}

/// Writes a fresh key to a 0600 temporary file, then links it into place: the key file appears
/// complete or not at all, and of two processes starting at once the first link wins and the
/// other reads that key.
fn create_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
    rand::fill(key.as_mut_slice());
    let temp = path.with_extension(format!("tmp-{:016x}", rand::random::<u64>()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&key)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| fs::hard_link(&temp, path));
    // The temporary name is removed whatever happened; a leftover would only hold a spare key.
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            crate::durable::sync_parent(path);
            tracing::info!(path = %path.display(), "created a new master key");
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(io_err(path)(e)),
    }
}

#[async_trait]
impl KeyService for KeyFile {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        let mut plaintext = Zeroizing::new(vec![0u8; KEY_LEN]);
        rand::fill(plaintext.as_mut_slice());
        let wrapped = self.wrap(&plaintext, context)?;
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let Some((&FORMAT, rest)) = wrapped.split_first() else {
            return Err(KeyError::Unwrap);
        };
        if rest.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(KeyError::Unwrap);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unwrap)?;
        let mut buffer = Zeroizing::new(body.to_vec());
        let len = self
            .master
            .open_in_place(nonce, Aad::from(aad(context)), &mut buffer)
            .map_err(|_| KeyError::Unwrap)?
            .len();
        buffer.truncate(len);
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wraps_and_binds_to_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyFile::open_or_create(dir.path()).unwrap();
        let ctx = KeyContext::new("account", "a1");
        let dk = keys.generate_data_key(&ctx).await.unwrap();
        assert_eq!(dk.plaintext.len(), 32);
        let back = keys.unwrap_data_key(&dk.wrapped, &ctx).await.unwrap();
        assert_eq!(*back, *dk.plaintext);
        let other = KeyContext::new("account", "a2");
        assert!(matches!(
            keys.unwrap_data_key(&dk.wrapped, &other).await,
            Err(KeyError::Unwrap)
        ));
        let mut tampered = dk.wrapped.clone();
        tampered[20] ^= 1;
        assert!(matches!(
            keys.unwrap_data_key(&tampered, &ctx).await,
            Err(KeyError::Unwrap)
        ));
        // Shared keys unwrap under the shared context only, and record keys never under it.
        let shared = KeyContext::shared();
        let sk = keys.generate_data_key(&shared).await.unwrap();
        let back = keys.unwrap_data_key(&sk.wrapped, &shared).await.unwrap();
        assert_eq!(*back, *sk.plaintext);
        for (wrapped, wrong) in [(&sk.wrapped, &ctx), (&dk.wrapped, &shared)] {
            assert!(matches!(
                keys.unwrap_data_key(wrapped, wrong).await,
                Err(KeyError::Unwrap)
            ));
        }
    }

    #[tokio::test]
    async fn keeps_the_key_across_opens_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = KeyContext::new("provider", "p");
        let dk = KeyFile::open_or_create(dir.path())
            .unwrap()
            .generate_data_key(&ctx)
            .await
            .unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = KeyFile::open_or_create(dir.path()).unwrap();
        let back = again.unwrap_data_key(&dk.wrapped, &ctx).await.unwrap();
        assert_eq!(*back, *dk.plaintext);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "only master.key remains");
    }

    #[test]
    fn refuses_a_readable_or_short_key_file() {
        let dir = tempfile::tempdir().unwrap();
        KeyFile::open_or_create(dir.path()).unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            KeyFile::open_or_create(dir.path()),
            Err(KeyFileError::Permissions { mode: 0o644, .. })
        ));
        fs::write(&path, b"short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            KeyFile::open_or_create(dir.path()),
            Err(KeyFileError::Length { len: 5, .. })
        ));
    }
}

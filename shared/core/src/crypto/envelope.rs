//! The [`Sealer`]: seals fields under a shared data key that it generates once per key period,
//! and opens fields of both formats (see [`super::format`]) with cached unwrapped keys.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::aead::{Aad, Nonce};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::cache::{CachedKey, KeyCache, key_id};
use super::format::{self, Version};
use crate::ports::{KeyContext, KeyError, KeyService};

/// The longest one data key seals new values (a configured shorter period wins).
pub const MAX_KEY_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// The most values one data key seals. Random 96-bit nonces keep AES-GCM's collision chance
/// negligible up to 2^32 messages per key (NIST SP 800-38D); 2^20 stays 4,096 times below that.
pub const MAX_SEALS_PER_KEY: u64 = 1 << 20;
/// Unwrapped keys kept for opening: shared keys are few (one per writer process and key
/// period), format-1 keys one per record until those records are sealed again.
const OPENING_KEYS: usize = 1024;

/// What could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("could not get a data key: {0}")]
    Key(#[from] KeyError),
    #[error("the sealed {field} of {kind} {id} is malformed or was tampered with")]
    Tampered {
        kind: String,
        id: String,
        field: String,
    },
    #[error("the sealed {field} of {kind} {id} is not valid UTF-8")]
    NotText {
        kind: String,
        id: String,
        field: String,
    },
    #[error("a sealed field must belong to a record, not to the shared key context")]
    NoRecord,
    #[error("encryption failed")]
    Seal,
}

/// The data key new values are sealed with, and how many it has sealed.
struct SealingKey {
    key: Arc<CachedKey>,
    seals: u64,
}

/// Seals and opens secret fields with envelope encryption: one generated data key seals many
/// records (until [`MAX_KEY_AGE`] or [`MAX_SEALS_PER_KEY`]), and unwrapped keys are cached, so a
/// process makes a handful of key-service calls in its life, whatever the number of records.
pub struct Sealer {
    keys: Arc<dyn KeyService>,
    sealing: tokio::sync::Mutex<Option<SealingKey>>,
    opening: Mutex<KeyCache>,
    max_age: Duration,
    max_seals: u64,
}

impl Sealer {
    /// `ttl` bounds how long a data key seals new values and how long an unwrapped key stays in
    /// memory (at most [`MAX_KEY_AGE`]).
    pub fn new(keys: Arc<dyn KeyService>, ttl: Duration) -> Self {
        Self::with_rotation(keys, ttl, MAX_SEALS_PER_KEY)
    }

    /// Like [`Sealer::new`], with the number of seals after which a new data key is generated
    /// (at most [`MAX_SEALS_PER_KEY`]).
    pub fn with_rotation(keys: Arc<dyn KeyService>, ttl: Duration, max_seals: u64) -> Self {
        let max_age = ttl.min(MAX_KEY_AGE);
        Self {
            keys,
            sealing: tokio::sync::Mutex::new(None),
            opening: Mutex::new(KeyCache::new(OPENING_KEYS, max_age)),
            max_age,
            max_seals: max_seals.clamp(1, MAX_SEALS_PER_KEY),
        }
    }

    fn opening(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        // A panic while holding the lock leaves only a cache behind; it is safe to keep using.
        self.opening
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current sealing key, counting one more use; a new one when it is used up or too old.
    /// The lock is held across the key-service call so that concurrent seals wait for one
    /// generation instead of each making their own.
    async fn sealing_key(&self) -> Result<Arc<CachedKey>, CryptoError> {
        let mut current = self.sealing.lock().await;
        if let Some(sealing) = current.as_mut()
            && sealing.seals < self.max_seals
            && sealing.key.created.elapsed() < self.max_age
        {
            sealing.seals += 1;
            return Ok(sealing.key.clone());
        }
        // The old key is no longer used for sealing (it stays in the opening cache).
        *current = None;
        let shared = KeyContext::shared();
        let data_key = self.keys.generate_data_key(&shared).await?;
        let key = CachedKey::new(&data_key.plaintext, data_key.wrapped)
            .ok_or_else(|| KeyError::Refused("data key is not 32 bytes".into()))?;
        let key = Arc::new(key);
        self.opening()
            .remember(key_id(&shared, &key.wrapped), key.clone());
        tracing::debug!("generated a shared data key for sealing");
        *current = Some(SealingKey {
            key: key.clone(),
            seals: 1,
        });
        Ok(key)
    }

    /// The unwrapped form of `wrapped` made under `context`, from the cache or the key service.
    async fn opening_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Arc<CachedKey>, CryptoError> {
        let slot = self.opening().slot(key_id(context, wrapped));
        let key = slot
            .get_or_try_init(|| async {
                let plaintext = self.keys.unwrap_data_key(wrapped, context).await?;
                let key = CachedKey::new(&plaintext, wrapped.to_vec()).ok_or(KeyError::Unwrap)?;
                Ok::<_, CryptoError>(Arc::new(key))
            })
            .await?;
        Ok(key.clone())
    }

    /// Encrypts `plaintext` as field `field` of the record named by `context`.
    pub async fn seal(
        &self,
        context: &KeyContext,
        field: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (kind, id) = context.record().ok_or(CryptoError::NoRecord)?;
        let key = self.sealing_key().await?;
        let mut out = format::header_v2(&key.wrapped).ok_or(CryptoError::Seal)?;
        // Room for the tag, so the plaintext copy is never reallocated (and left unwiped).
        let mut body = Zeroizing::new(Vec::with_capacity(plaintext.len() + format::TAG_LEN));
        body.extend_from_slice(plaintext);
        let aad = format::aad(Version::V2, kind, id, field);
        let nonce = key
            .key
            .seal_in_place_append_tag(Aad::from(aad), &mut *body)
            .map_err(|_| CryptoError::Seal)?;
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts a field sealed (by this or an earlier format) for the same record and field.
    pub async fn open(
        &self,
        context: &KeyContext,
        field: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (kind, id) = context.record().ok_or(CryptoError::NoRecord)?;
        let tampered = || CryptoError::Tampered {
            kind: kind.to_owned(),
            id: id.to_owned(),
            field: field.to_owned(),
        };
        let parsed = format::parse(sealed).ok_or_else(tampered)?;
        let nonce = Nonce::try_assume_unique_for_key(parsed.nonce).map_err(|_| tampered())?;
        let key_context = format::key_context(parsed.version, kind, id);
        let key = match self.opening_key(parsed.wrapped, &key_context).await {
            Ok(key) => key,
            Err(CryptoError::Key(KeyError::Unwrap)) => return Err(tampered()),
            Err(other) => return Err(other),
        };
        let aad = format::aad(parsed.version, kind, id, field);
        let mut buffer = Zeroizing::new(parsed.body.to_vec());
        let len = key
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| tampered())?
            .len();
        buffer.truncate(len);
        Ok(buffer)
    }

    /// Seals a secret string.
    pub async fn seal_secret(
        &self,
        context: &KeyContext,
        field: &str,
        secret: &SecretString,
    ) -> Result<Vec<u8>, CryptoError> {
        use secrecy::ExposeSecret;
        self.seal(context, field, secret.expose_secret().as_bytes())
            .await
    }

    /// Opens a sealed secret string.
    pub async fn open_secret(
        &self,
        context: &KeyContext,
        field: &str,
        sealed: &[u8],
    ) -> Result<SecretString, CryptoError> {
        let bytes = self.open(context, field, sealed).await?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            let (kind, id) = context.record().unwrap_or_default();
            CryptoError::NotText {
                kind: kind.to_owned(),
                id: id.to_owned(),
                field: field.to_owned(),
            }
        })?;
        Ok(SecretString::from(text.to_owned()))
    }
}

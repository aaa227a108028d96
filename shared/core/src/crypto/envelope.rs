//! The sealed-field format and the [`Sealer`] that makes and opens it.
//!
//! Format (version 1): `0x01 | u16 BE wrapped-key length | wrapped key | 12-byte nonce |
//! ciphertext | 16-byte tag`. The associated data is `mailroom/v1|<kind>|<id>|<field>`, so a
//! ciphertext moved to another record or field fails to open.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::cache::{CachedKey, KeyCache};
use crate::ports::{KeyContext, KeyError, KeyService};

const FORMAT_VERSION: u8 = 1;
const TAG_LEN: usize = 16;

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
    #[error("encryption failed")]
    Seal,
}

/// Seals and opens secret fields with envelope encryption and a short-lived data-key cache.
pub struct Sealer {
    keys: Arc<dyn KeyService>,
    cache: Mutex<KeyCache>,
    ttl: Duration,
}

fn aad(context: &KeyContext, field: &str) -> Vec<u8> {
    format!(
        "mailroom/v1|{}|{}|{}",
        context.record_kind, context.record_id, field
    )
    .into_bytes()
}

impl Sealer {
    /// `ttl` bounds how long an unwrapped data key is kept in memory.
    pub fn new(keys: Arc<dyn KeyService>, ttl: Duration) -> Self {
        Self {
            keys,
            cache: Mutex::new(KeyCache::default()),
            ttl,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        // A panic while holding the lock leaves only a cache behind; it is safe to keep using.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn sealing_key(&self, context: &KeyContext) -> Result<Arc<CachedKey>, CryptoError> {
        if let Some(key) = self.cache().sealing_key(context, self.ttl) {
            return Ok(key);
        }
        let data_key = self.keys.generate_data_key(context).await?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &data_key.plaintext)
            .map_err(|_| CryptoError::Key(KeyError::Refused("data key is not 32 bytes".into())))?;
        let cached = Arc::new(CachedKey {
            key,
            wrapped: data_key.wrapped,
        });
        self.cache()
            .remember(context, cached.clone(), true, self.ttl);
        Ok(cached)
    }

    async fn opening_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Arc<CachedKey>, CryptoError> {
        if let Some(key) = self.cache().opening_key(wrapped, context, self.ttl) {
            return Ok(key);
        }
        let plaintext = self.keys.unwrap_data_key(wrapped, context).await?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &plaintext)
            .map_err(|_| CryptoError::Key(KeyError::Unwrap))?;
        let cached = Arc::new(CachedKey {
            key,
            wrapped: wrapped.to_vec(),
        });
        self.cache()
            .remember(context, cached.clone(), false, self.ttl);
        Ok(cached)
    }

    /// Encrypts `plaintext` as field `field` of the record named by `context`.
    pub async fn seal(
        &self,
        context: &KeyContext,
        field: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self.sealing_key(context).await?;
        let wrapped_len = u16::try_from(key.wrapped.len()).map_err(|_| CryptoError::Seal)?;
        let mut body = plaintext.to_vec();
        let nonce = key
            .key
            .seal_in_place_append_tag(Aad::from(aad(context, field)), &mut body)
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(3 + key.wrapped.len() + NONCE_LEN + body.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&wrapped_len.to_be_bytes());
        out.extend_from_slice(&key.wrapped);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts a field sealed by [`Sealer::seal`] for the same record and field.
    pub async fn open(
        &self,
        context: &KeyContext,
        field: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let tampered = || CryptoError::Tampered {
            kind: context.record_kind.clone(),
            id: context.record_id.clone(),
            field: field.to_owned(),
        };
        let (&version, rest) = sealed.split_first().ok_or_else(tampered)?;
        if version != FORMAT_VERSION || rest.len() < 2 {
            return Err(tampered());
        }
        let wrapped_len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let rest = &rest[2..];
        if rest.len() < wrapped_len + NONCE_LEN + TAG_LEN {
            return Err(tampered());
        }
        let (wrapped, rest) = rest.split_at(wrapped_len);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| tampered())?;
        let key = match self.opening_key(wrapped, context).await {
            Ok(key) => key,
            Err(CryptoError::Key(KeyError::Unwrap)) => return Err(tampered()),
            Err(other) => return Err(other),
        };
        let mut buffer = Zeroizing::new(body.to_vec());
        let len = key
            .key
            .open_in_place(nonce, Aad::from(aad(context, field)), &mut buffer)
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
        let text = std::str::from_utf8(&bytes).map_err(|_| CryptoError::NotText {
            kind: context.record_kind.clone(),
            id: context.record_id.clone(),
            field: field.to_owned(),
        })?;
        Ok(SecretString::from(text.to_owned()))
    }
}

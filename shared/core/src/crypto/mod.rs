//! Envelope encryption of secret fields: AES-256-GCM under per-record data keys from the
//! [`KeyService`](crate::ports::KeyService), with associated data binding each ciphertext to its
//! record and field.

mod cache;
mod envelope;

pub use envelope::{CryptoError, Sealer};

/// SHA-256 of `bytes` (request fingerprints, constant-time key comparison).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

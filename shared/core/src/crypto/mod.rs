//! Envelope encryption of secret fields: AES-256-GCM under per-record data keys from the
//! [`KeyService`](crate::ports::KeyService), with associated data binding each ciphertext to its
//! record and field.

mod cache;
mod envelope;

pub use envelope::{CryptoError, Sealer};

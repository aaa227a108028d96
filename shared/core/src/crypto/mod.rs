//! Envelope encryption of secret fields: AES-256-GCM under data keys from the
//! [`KeyService`](crate::ports::KeyService), with associated data binding each ciphertext to its
//! record and field.
//!
//! Key reuse, and why it is safe enough: a process generates ONE data key (GenerateDataKey under
//! the fixed context [`KeyContext::shared`](crate::ports::KeyContext::shared)) and seals every
//! record with it for at most a day ([`MAX_KEY_AGE`], shorter when configured) or
//! [`MAX_SEALS_PER_KEY`] values, like the AWS Encryption SDK's caching materials manager. The
//! wrapped key travels in every sealed value, and unwrapped keys are cached by wrapped bytes, so a
//! process serving any number of accounts makes a handful of KMS calls in its life instead of one
//! per record (see COST.md). What that costs:
//! - KMS no longer checks which record a key belongs to. The associated data (`kind`, `id`,
//!   `field`, length-prefixed) still binds each ciphertext to its record and field, so a value
//!   copied onto another record or field fails to open; but anyone who can call Decrypt with the
//!   shared context can unwrap the key of every record sealed in that period, and CloudTrail shows
//!   the shared context instead of a record id. Access to the KMS key (its key policy) is the
//!   boundary, as it was: the per-record context never stopped a caller allowed to Decrypt from
//!   naming the record.
//! - An unwrapped key in memory opens up to a day of one process's writes rather than one record;
//!   the cache is bounded (1,024 keys) and entries expire with the same period, so disabling the
//!   KMS key takes effect in running processes within that period.
//! - AES-GCM with random 96-bit nonces: 2^20 seals per key keeps the nonce-collision chance far
//!   below NIST's 2^-32 bound (which allows 2^32 seals per key).
//!
//! Values sealed before shared keys (format 1, keys bound to the record at KMS) still open; they
//! are sealed again in format 2 the next time their record is written. [`format`] has the bytes.

mod cache;
mod envelope;
mod format;
#[cfg(test)]
mod tests;

pub use envelope::{CryptoError, MAX_KEY_AGE, MAX_SEALS_PER_KEY, Sealer};

/// SHA-256 of `bytes` (request fingerprints, constant-time key comparison), with aws-lc-rs like
/// the rest of our cryptography.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    out
}

#[cfg(test)]
mod digest_tests {
    #[test]
    fn sha256_matches_the_standard_vector() {
        let hex: String = super::sha256(b"abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

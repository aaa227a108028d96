//! [`KmsKeys`]: the key service on AWS KMS. Data keys come from GenerateDataKey (AES-256) and are
//! unwrapped with Decrypt, both under the [`KeyContext`]'s pairs as the encryption context: the
//! fixed shared context for the keys sealing uses today (so one key serves many records and a
//! process makes a handful of calls in its life), a record's own context for keys of format-1
//! values (which KMS refuses to unwrap under any other record's context). The key policy must
//! allow every name of [`KeyContext::all_pair_names`].

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use mailroom_core::ports::{DataKey, KeyContext, KeyError, KeyService};
use zeroize::Zeroizing;

use crate::error::{code, describe, is_throttling};

/// The key service on one KMS key.
#[derive(Debug, Clone)]
pub struct KmsKeys {
    client: Client,
    key_id: String,
}

fn encryption_context(context: &KeyContext) -> HashMap<String, String> {
    context
        .pairs()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn key_err<E, R>(op: &str, e: &SdkError<E, R>) -> KeyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match code(e) {
        Some("InvalidCiphertextException" | "IncorrectKeyException") => KeyError::Unwrap,
        Some(
            "NotFoundException"
            | "DisabledException"
            | "KMSInvalidStateException"
            | "AccessDeniedException"
            | "InvalidKeyUsageException"
            | "KeyUnavailableException",
        ) => KeyError::Refused(format!("KMS {op}: {}", describe(e))),
        _ if is_throttling(e) => KeyError::Unavailable(format!("KMS {op} is throttled")),
        _ => KeyError::Unavailable(format!("KMS {op} failed: {}", describe(e))),
    }
}

impl KmsKeys {
    /// The key service on `key_id` (id, ARN or alias), using a client built once at start-up.
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

#[async_trait]
impl KeyService for KmsKeys {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|e| key_err("GenerateDataKey", &e))?;
        let plaintext = Zeroizing::new(
            out.plaintext
                .ok_or_else(|| KeyError::Unavailable("KMS returned no plaintext data key".into()))?
                .into_inner(),
        );
        let wrapped = out
            .ciphertext_blob
            .ok_or_else(|| KeyError::Unavailable("KMS returned no wrapped data key".into()))?
            .into_inner();
        if plaintext.len() != 32 {
            return Err(KeyError::Refused(format!(
                "KMS returned a {}-byte data key, not 32",
                plaintext.len()
            )));
        }
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let out = self
            .client
            .decrypt()
            // Naming the key makes KMS refuse ciphertext made under any other key.
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|e| key_err("Decrypt", &e))?;
        let plaintext = out.plaintext.ok_or(KeyError::Unwrap)?;
        Ok(Zeroizing::new(plaintext.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_kms::error::ErrorMetadata;
    use aws_sdk_kms::operation::decrypt::DecryptError;

    use super::*;

    fn service_error(code: &str) -> SdkError<DecryptError, ()> {
        let meta = ErrorMetadata::builder().code(code).build();
        SdkError::service_error(DecryptError::generic(meta), ())
    }

    #[test]
    fn maps_kms_errors_to_key_errors() {
        for unwrap in ["InvalidCiphertextException", "IncorrectKeyException"] {
            assert!(matches!(
                key_err("Decrypt", &service_error(unwrap)),
                KeyError::Unwrap
            ));
        }
        assert!(matches!(
            key_err("Decrypt", &service_error("DisabledException")),
            KeyError::Refused(_)
        ));
        assert!(matches!(
            key_err("Decrypt", &service_error("ThrottlingException")),
            KeyError::Unavailable(_)
        ));
    }

    #[test]
    fn the_encryption_context_is_the_key_context() {
        let ctx = encryption_context(&KeyContext::new("account", "a1"));
        assert_eq!(ctx.len(), 2);
        assert_eq!(ctx["record_kind"], "account");
        assert_eq!(ctx["record_id"], "a1");
        let shared = encryption_context(&KeyContext::shared());
        assert_eq!(shared.len(), 3);
        assert_eq!(shared["app"], "mailroom");
        assert_eq!(shared["purpose"], "record-key");
        assert_eq!(shared["v"], "2");
    }
}

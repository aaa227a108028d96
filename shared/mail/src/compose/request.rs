//! The body of `POST /v1/accounts/{id}/send` as callers write it, and its canonical hash (what
//! tells an idempotent replay from a conflicting reuse of the same key).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One address: `"a@example.com"`, `"Name <a@example.com>"`, or
/// `{"address": "a@example.com", "name": "Name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AddressInput {
    Text(String),
    Parts(AddressParts),
}

/// The object form of an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressParts {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One attachment; with `content_id` it is an inline part (`<img src="cid:...">`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    pub filename: String,
    pub content_type: String,
    pub content_base64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    #[serde(default)]
    pub to: Vec<AddressInput>,
    #[serde(default)]
    pub cc: Vec<AddressInput>,
    #[serde(default)]
    pub bcc: Vec<AddressInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<AddressInput>,
    /// The API id of a stored message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to_message_id: Option<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    /// Extra headers, from the allow-list only.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl SendRequest {
    /// Hex SHA-256 of the request re-serialized with a fixed field order (headers sorted), so
    /// the same request hashes the same however its JSON was spaced or its keys ordered.
    pub fn canonical_hash(&self) -> String {
        // Serializing plain data (strings, vectors, maps with string keys) cannot fail.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&canonical);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ignores_spacing_and_key_order_but_not_content() {
        let a: SendRequest =
            serde_json::from_str(r#"{"to":["a@x.test"],"subject":"Hi","text":"t"}"#).unwrap();
        let b: SendRequest = serde_json::from_str(
            r#"{ "text": "t",  "subject": "Hi", "to": ["a@x.test"], "headers": {} }"#,
        )
        .unwrap();
        let c: SendRequest =
            serde_json::from_str(r#"{"to":["a@x.test"],"subject":"Hi!","text":"t"}"#).unwrap();
        assert_eq!(a.canonical_hash(), b.canonical_hash());
        assert_ne!(a.canonical_hash(), c.canonical_hash());
        assert_eq!(a.canonical_hash().len(), 64);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<SendRequest>(r#"{"to":[],"bogus":1}"#).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = serde_json::from_str::<SendRequest>(
            r#"{"attachments":[{"filename":"a","content_type":"text/plain","content_base64":"","size":1}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("size"), "{err}");
    }
}

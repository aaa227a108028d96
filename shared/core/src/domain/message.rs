//! Metadata of a stored message.

use serde::{Deserialize, Serialize};

/// One attachment's description (its bytes stay in the raw message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
}

/// What the store keeps about a synced message; the raw source lives in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MessageMeta {
    pub id: String,
    pub account_id: String,
    pub folder: String,
    pub uid_validity: u32,
    pub uid: u32,
    pub message_id_header: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub thread_key: Option<String>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    /// Unix seconds from the Date header, else the server's internal date.
    pub date: Option<i64>,
    pub size: u64,
    pub flags: Vec<String>,
    pub snippet: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
    /// Gmail's X-GM-MSGID when available.
    pub provider_message_id: Option<String>,
    pub blob_key: String,
    /// Whether the MIME parser could read the message.
    pub parsed: bool,
    /// Hex SHA-256 of the raw source: matches a message again after a UIDVALIDITY change when
    /// it has no Message-ID.
    #[serde(default)]
    pub content_sha256: Option<String>,
    pub stored_at: i64,
}

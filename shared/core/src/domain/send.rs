//! Records of sends, keyed by the caller's idempotency key.

use serde::{Deserialize, Serialize};

/// Where a send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    /// Claimed; the SMTP session has not finished yet.
    Pending,
    Sent,
    /// The message data was sent but the session failed before the server confirmed it: the
    /// message may or may not have gone out; never re-sent blindly.
    Uncertain,
    /// Failed before any message data was sent; safe to retry with the same key.
    Failed,
}

/// One send, as kept for idempotent replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    pub account_id: String,
    pub idempotency_key: String,
    /// SHA-256 of the canonical request body, to tell a replay from a conflicting reuse.
    pub request_hash: String,
    pub status: SendStatus,
    pub message_id: Option<String>,
    pub accepted: Vec<String>,
    pub rejected: Vec<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

//! Accounts: connected mailboxes and their tokens.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Whether an account can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    #[default]
    Active,
    /// The user must connect again (refresh token revoked or expired).
    ReauthRequired,
    /// Syncs keep failing for reasons other than authentication.
    Degraded,
}

/// OAuth tokens of an account.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    /// Unix seconds when the access token expires.
    pub access_expires_at: i64,
}

/// A connected mailbox.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub owner: String,
    pub provider_id: String,
    pub email: String,
    /// Stable identity from the id_token (`iss`/`tid` + `sub`/`oid`), used to find the account
    /// again on re-connect.
    pub identity: String,
    pub status: AccountStatus,
    pub status_reason: Option<String>,
    pub tokens: Tokens,
    pub granted_scopes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the scheduler should sync it next (Unix seconds).
    pub next_sync_at: i64,
    pub last_sync_at: Option<i64>,
    pub last_error: Option<String>,
    /// Consecutive failed syncs (not counting authentication failures).
    pub failure_count: u32,
    /// Free-form per-feature state (preflight results, per-folder counts…), non-secret.
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub version: u64,
}

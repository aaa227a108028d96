//! Token bookkeeping kept in the account record: when the stored refresh token was written.
//!
//! The token source persists a rotated refresh token only when the provider may invalidate the
//! old one, or when the stored one has grown old (Microsoft keeps old refresh tokens valid, so
//! one write a day is enough). That needs the age of the stored refresh token, kept as
//! `extra.refresh_token_stored_at` (Unix seconds, non-secret) so that every writer of the
//! account item carries it along without knowing about it.

use crate::domain::Account;

/// Key of the refresh token's storage time in [`Account::extra`].
pub const REFRESH_TOKEN_STORED_AT: &str = "refresh_token_stored_at";

/// When the stored refresh token was written (Unix seconds); 0 when unknown (accounts stored
/// before this was recorded), which makes it count as old.
pub fn refresh_token_stored_at(account: &Account) -> i64 {
    account
        .extra
        .get(REFRESH_TOKEN_STORED_AT)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
}

/// Records that the account's refresh token was (re)written at `now`.
pub fn set_refresh_token_stored_at(account: &mut Account, now: i64) {
    account
        .extra
        .insert(REFRESH_TOKEN_STORED_AT.into(), serde_json::json!(now));
}

//! The token source port: a valid OAuth access token for an account, refreshed when needed. Sync
//! (IMAP) and send (SMTP) ask it for the token they authenticate with; `mailroom-oauth`
//! implements it.

use async_trait::async_trait;
use secrecy::SecretString;

/// An access token good for at least a minute, and the mailbox address to log in as.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub account_id: String,
    /// The mailbox address (XOAUTH2 `user=`).
    pub email: String,
    pub access_token: SecretString,
    /// Unix seconds when the token expires.
    pub expires_at: i64,
}

/// Why no access token could be handed out. Messages never contain tokens.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("account {account_id} does not exist")]
    NotFound { account_id: String },
    /// The refresh token was revoked or expired: the user must connect the mailbox again. The
    /// account is already marked `reauth_required`.
    #[error("account {account_id} must be connected again: {reason}")]
    ReauthRequired { account_id: String, reason: String },
    /// The OAuth app itself was rejected (expired or wrong client secret): an administrator must
    /// fix the provider settings. The provider is already marked `needs_admin_action`.
    #[error("the OAuth app {provider_id} needs an administrator: {reason}")]
    AdminActionRequired { provider_id: String, reason: String },
    /// Network trouble, a provider outage or a busy store: nothing was changed; try again later.
    #[error("could not get an access token for account {account_id} now: {reason}")]
    Transient { account_id: String, reason: String },
}

impl TokenError {
    /// Whether retrying later may succeed without anybody acting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TokenError::Transient { .. })
    }
}

/// Hands out access tokens for accounts. Implementations keep the tokens they hand out in
/// memory until shortly before expiry, so asking again (every sync, every send) is free within
/// a token's lifetime; only a cold process or an expiring token costs a refresh.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token valid for at least 60 seconds; with `force_refresh` a different one than this
    /// source handed out last (the server just rejected it), refreshed from the provider unless
    /// another caller already replaced it.
    async fn access_token(
        &self,
        account_id: &str,
        force_refresh: bool,
    ) -> Result<AccessGrant, TokenError>;
}

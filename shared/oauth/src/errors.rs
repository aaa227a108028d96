//! What the connect flow could not do. Messages say what failed and never carry secrets.

use mailroom_core::records::RecordError;

use crate::id_token::IdTokenError;

/// Why a connection could not be started; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("return_to is not allowed: its origin is not in the allow-list")]
    ReturnToNotAllowed,
    #[error("provider {0} does not exist")]
    UnknownProvider(String),
    #[error("provider {provider_id} needs an administrator before mailboxes can connect: {reason}")]
    ProviderNeedsAdmin { provider_id: String, reason: String },
    #[error("the provider settings cannot be used: {0}")]
    Settings(String),
    #[error("could not store the sign-in state: {0}")]
    Store(RecordError),
}

/// Why a callback did not connect a mailbox.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("the callback carries no state")]
    MissingState,
    #[error("the sign-in is unknown, expired or was already completed; start again")]
    UnknownState,
    #[error("the sign-in was started for another provider")]
    WrongProvider,
    #[error("the provider reported {error}: {description}")]
    Denied { error: String, description: String },
    #[error("the callback carries no authorization code")]
    MissingCode,
    #[error("the provider settings were deleted during the sign-in")]
    ProviderGone,
    #[error(
        "the provider rejected the OAuth app; an administrator must fix the provider settings: {0}"
    )]
    AppRejected(String),
    #[error("the provider refused to exchange the authorization code: {0}")]
    Exchange(String),
    #[error("the provider could not be reached; try again: {0}")]
    Transient(String),
    #[error("the provider's id_token could not be used: {0}")]
    IdToken(#[from] IdTokenError),
    #[error("the permissions granted do not cover IMAP and SMTP; missing: {}", .missing.join(" "))]
    InsufficientScope { missing: Vec<String> },
    #[error("the provider issued no refresh token, so the mailbox could not stay connected")]
    NoRefreshToken,
    #[error("this mailbox is already connected by another owner")]
    OwnerConflict,
    #[error("the account could not be stored: {0}")]
    Store(String),
}

impl CallbackError {
    /// The `error` code reported to `return_to`.
    pub fn code(&self) -> &str {
        match self {
            CallbackError::MissingState | CallbackError::MissingCode => "invalid_request",
            CallbackError::UnknownState | CallbackError::WrongProvider => "invalid_state",
            CallbackError::Denied { error, .. } => error,
            CallbackError::ProviderGone => "provider_not_found",
            CallbackError::AppRejected(_) => "provider_needs_admin_action",
            CallbackError::Exchange(_) => "token_exchange_failed",
            CallbackError::Transient(_) => "temporarily_unavailable",
            CallbackError::IdToken(_) => "invalid_id_token",
            CallbackError::InsufficientScope { .. } => "insufficient_scope",
            CallbackError::NoRefreshToken => "no_refresh_token",
            CallbackError::OwnerConflict => "account_conflict",
            CallbackError::Store(_) => "server_error",
        }
    }
}

//! The server-side record of one OAuth authorization in progress.

use secrecy::SecretString;

/// One pending authorization, consumed once by the callback.
#[derive(Debug, Clone)]
pub struct OAuthState {
    /// The random `state` parameter itself.
    pub state: String,
    pub provider_id: String,
    pub owner: String,
    pub return_to: Option<String>,
    pub login_hint: Option<String>,
    pub pkce_verifier: SecretString,
    pub redirect_uri: String,
    pub created_at: i64,
    pub expires_at: i64,
}

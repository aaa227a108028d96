//! The connect flow: `start` stores a single-use state with the PKCE verifier and builds the
//! provider's authorize URL; `callback` consumes the state, exchanges the code and hands the
//! tokens to [`crate::connect`] to create or update the account.

use std::sync::Arc;

use mailroom_core::SecretString;
use mailroom_core::domain::{OAuthState, ProviderKind, ProviderStatus};
use mailroom_core::records::Repository;
use mailroom_core::time::{now_unix, to_rfc3339};
use serde::{Deserialize, Serialize};

use crate::connect::{Connected, connect};
use crate::endpoint::{self, EndpointError};
use crate::errors::{CallbackError, StartError};

/// How long a started flow may take before its state is dead.
pub const STATE_TTL_SECONDS: i64 = 600;

/// What the flow needs from configuration.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Where this API is reachable from browsers, e.g. `https://mail.example.com`.
    pub public_url: String,
    /// Origins (`scheme://host[:port]`) that `return_to` may point at.
    pub return_to_allowlist: Vec<String>,
}

/// The body of `POST /v1/oauth/{provider_id}/start`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub owner: Option<String>,
    pub return_to: Option<String>,
    pub login_hint: Option<String>,
}

/// Where to send the browser, and until when that works.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub authorize_url: String,
    pub expires_at: String,
}

/// The query of the callback.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// What the callback did, and where to tell the browser about it (`None`: show a page).
#[derive(Debug)]
pub struct CallbackOutcome {
    pub return_to: Option<String>,
    pub result: Result<Connected, CallbackError>,
}

/// Starts and completes OAuth connections.
#[derive(Clone)]
pub struct OAuthService {
    pub(crate) repo: Repository,
    pub(crate) http: reqwest::Client,
    config: Arc<OAuthConfig>,
}

/// `scheme://host[:port]` of a URL, or `None` for URLs without a usable origin.
fn origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        o @ url::Origin::Tuple(..) => Some(o.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

fn bounded(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, StartError> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(StartError::Invalid {
            field,
            message: format!("must be 1 to {max} characters without control characters"),
        });
    }
    Ok(Some(value.to_owned()))
}

impl OAuthService {
    /// `http` is the process's shared client (its TLS trust honours `SSL_CERT_FILE`).
    pub fn new(repo: Repository, http: reqwest::Client, config: OAuthConfig) -> Self {
        Self {
            repo,
            http,
            config: Arc::new(config),
        }
    }

    /// The redirect URI registered for a provider: one path per provider against mix-up attacks.
    pub fn redirect_uri(&self, provider_id: &str) -> String {
        format!(
            "{}/v1/oauth/{provider_id}/callback",
            self.config.public_url.trim_end_matches('/')
        )
    }

    /// Whether `return_to` may receive the browser after the callback.
    pub fn return_to_allowed(&self, return_to: &str) -> bool {
        origin(return_to).is_some_and(|o| {
            self.config
                .return_to_allowlist
                .iter()
                .filter_map(|allowed| origin(allowed))
                .any(|allowed| allowed == o)
        })
    }

    /// Begins a connection: stores the state and answers the provider's authorize URL.
    pub async fn start(&self, provider_id: &str, req: StartRequest) -> Result<Started, StartError> {
        let owner = bounded("owner", req.owner.as_deref(), 256)?.ok_or(StartError::Invalid {
            field: "owner",
            message: "is required".into(),
        })?;
        let login_hint = bounded("login_hint", req.login_hint.as_deref(), 256)?;
        let return_to = bounded("return_to", req.return_to.as_deref(), 2048)?;
        if let Some(r) = &return_to
            && !self.return_to_allowed(r)
        {
            return Err(StartError::ReturnToNotAllowed);
        }
        let provider = self
            .repo
            .get_provider(provider_id)
            .await
            .map_err(StartError::Store)?
            .ok_or_else(|| StartError::UnknownProvider(provider_id.to_owned()))?;
        if provider.status == ProviderStatus::NeedsAdminAction {
            return Err(StartError::ProviderNeedsAdmin {
                provider_id: provider_id.to_owned(),
                reason: provider.status_reason.unwrap_or_default(),
            });
        }
        let state = random_state();
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let redirect_uri = self.redirect_uri(provider_id);
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if provider.kind == ProviderKind::Google {
            // Google issues a refresh token only offline, and reliably only on a consent screen.
            extra.push(("access_type", "offline"));
            extra.push(("prompt", "consent"));
        }
        if let Some(hint) = &login_hint {
            extra.push(("login_hint", hint));
        }
        let url = endpoint::authorize_url(&provider, &redirect_uri, &state, challenge, &extra)
            .map_err(|e| StartError::Settings(e.to_string()))?;
        let now = now_unix();
        let record = OAuthState {
            state,
            provider_id: provider_id.to_owned(),
            owner,
            return_to,
            login_hint,
            pkce_verifier: SecretString::from(verifier.secret().to_owned()),
            redirect_uri,
            created_at: now,
            expires_at: now + STATE_TTL_SECONDS,
        };
        self.repo
            .put_oauth_state(&record)
            .await
            .map_err(StartError::Store)?;
        tracing::info!(provider_id, "OAuth connection started");
        Ok(Started {
            authorize_url: url.to_string(),
            expires_at: to_rfc3339(record.expires_at),
        })
    }

    /// Completes a connection. Never fails as a whole: the outcome says what happened and where
    /// to report it.
    pub async fn callback(&self, provider_id: &str, params: CallbackParams) -> CallbackOutcome {
        let Some(state_value) = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 256)
        else {
            return CallbackOutcome {
                return_to: None,
                result: Err(CallbackError::MissingState),
            };
        };
        let state = match self.repo.take_oauth_state(state_value).await {
            Ok(Some(state)) => state,
            Ok(None) => {
                return CallbackOutcome {
                    return_to: None,
                    result: Err(CallbackError::UnknownState),
                };
            }
            Err(e) => {
                return CallbackOutcome {
                    return_to: None,
                    result: Err(CallbackError::Store(e.to_string())),
                };
            }
        };
        // Belt and braces: the store reads expired items as absent already.
        let result = if state.expires_at <= now_unix() {
            Err(CallbackError::UnknownState)
        } else if state.provider_id != provider_id {
            Err(CallbackError::WrongProvider)
        } else {
            self.complete(&state, params).await
        };
        match &result {
            Ok(c) => {
                tracing::info!(provider_id, account_id = %c.account_id, reconnected = c.reconnected, "mailbox connected")
            }
            Err(e) => tracing::warn!(provider_id, error = %e, "OAuth callback failed"),
        }
        CallbackOutcome {
            return_to: state.return_to.clone(),
            result,
        }
    }

    async fn complete(
        &self,
        state: &OAuthState,
        params: CallbackParams,
    ) -> Result<Connected, CallbackError> {
        if let Some(error) = params.error.as_deref() {
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            let description = params
                .error_description
                .as_deref()
                .map(crate::aadsts::first_line)
                .unwrap_or_default();
            return Err(CallbackError::Denied { error, description });
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(CallbackError::MissingCode)?;
        let provider = self
            .repo
            .get_provider(&state.provider_id)
            .await
            .map_err(|e| CallbackError::Store(e.to_string()))?
            .ok_or(CallbackError::ProviderGone)?;
        let granted = match endpoint::exchange_code(
            &self.http,
            &provider,
            &state.redirect_uri,
            code,
            &state.pkce_verifier,
        )
        .await
        {
            Ok(g) => g,
            Err(EndpointError::Client(reason)) => {
                crate::tokens::mark_provider_needs_admin(
                    &self.repo,
                    &provider.id,
                    provider.version,
                    &reason,
                )
                .await;
                return Err(CallbackError::AppRejected(reason));
            }
            Err(EndpointError::Grant(reason)) => return Err(CallbackError::Exchange(reason)),
            Err(EndpointError::Settings(reason)) => return Err(CallbackError::Exchange(reason)),
            Err(EndpointError::Transient(reason)) => return Err(CallbackError::Transient(reason)),
        };
        connect(&self.repo, &provider, state, granted).await
    }
}

/// 256 random bits, URL-safe.
fn random_state() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

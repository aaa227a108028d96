//! Talking to a provider's token endpoint through the `oauth2` crate over the shared reqwest
//! client, with every failure sorted into what it means for us: the grant is dead (re-connect),
//! the app is rejected (admin), or it may work later (transient).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use mailroom_core::domain::ProviderSettings;
use oauth2::basic::{BasicErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::aadsts;

/// How long one token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The id_token the token endpoint returns next to the access token.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

/// An OAuth error answer, with Microsoft's `error_codes` kept to explain it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ProviderErrorResponse {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Option<Vec<u64>>,
}

impl std::fmt::Display for ProviderErrorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

impl oauth2::ErrorResponse for ProviderErrorResponse {}

type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;

type OAuthClient = Client<
    ProviderErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What the token endpoint handed out.
#[derive(Debug)]
pub struct Granted {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<Duration>,
    /// `None` when the answer carried no `scope` (RFC 6749: then it is the requested one).
    pub scopes: Option<Vec<String>>,
    pub id_token: Option<String>,
}

/// Why a token request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EndpointError {
    /// The grant (code or refresh token) is dead: the user must connect again.
    #[error("the provider refused the grant: {0}")]
    Grant(String),
    /// The provider rejected our client (secret expired or wrong, app gone).
    #[error("the provider rejected the OAuth app: {0}")]
    Client(String),
    /// Network trouble, 5xx or 429, a malformed answer: may work later.
    #[error("the token endpoint could not be used now: {0}")]
    Transient(String),
    /// Our own settings cannot form a request (bad URL).
    #[error("the provider settings cannot be used: {0}")]
    Settings(String),
}

/// A failure of the HTTP exchange itself (the `oauth2` crate passes it through untouched).
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("could not reach the token endpoint ({0})")]
    Transport(String),
    #[error("the token endpoint answered HTTP {0}")]
    Status(u16),
}

/// The shared reqwest client as an `oauth2` HTTP client that turns 5xx and 429 answers into
/// errors of their own, so they are never mistaken for OAuth error answers.
struct Http<'a>(&'a reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Http<'_> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut request = reqwest::Request::try_from(request)
                .map_err(|e| HttpError::Transport(describe_transport(e)))?;
            *request.timeout_mut() = Some(REQUEST_TIMEOUT);
            let response = self
                .0
                .execute(request)
                .await
                .map_err(|e| HttpError::Transport(describe_transport(e)))?;
            let status = response.status();
            if status.is_server_error() || status.as_u16() == 429 {
                return Err(HttpError::Status(status.as_u16()));
            }
            let mut builder = http::Response::builder().status(status);
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| HttpError::Transport(describe_transport(e)))?;
            builder
                .body(body.to_vec())
                .map_err(|e| HttpError::Transport(e.to_string()))
        })
    }
}

fn describe_transport(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn client(p: &ProviderSettings, redirect_uri: Option<&str>) -> Result<OAuthClient, EndpointError> {
    let bad = |what: &str, e: url::ParseError| {
        EndpointError::Settings(format!("{what} is not a valid URL: {e}"))
    };
    let mut c = Client::new(ClientId::new(p.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            p.client_secret.expose_secret().to_owned(),
        ))
        .set_auth_uri(AuthUrl::new(p.authorize_url.clone()).map_err(|e| bad("authorize_url", e))?)
        .set_token_uri(TokenUrl::new(p.token_url.clone()).map_err(|e| bad("token_url", e))?)
        // Both Microsoft and Google document the secret in the request body.
        .set_auth_type(AuthType::RequestBody);
    if let Some(uri) = redirect_uri {
        c = c.set_redirect_uri(
            RedirectUrl::new(uri.to_owned()).map_err(|e| bad("redirect URI", e))?,
        );
    }
    Ok(c)
}

/// The authorize URL of a new flow.
pub fn authorize_url(
    p: &ProviderSettings,
    redirect_uri: &str,
    state: &str,
    challenge: oauth2::PkceCodeChallenge,
    extra: &[(&str, &str)],
) -> Result<url::Url, EndpointError> {
    let c = client(p, Some(redirect_uri))?;
    let state = state.to_owned();
    let mut request = c
        .authorize_url(move || oauth2::CsrfToken::new(state))
        .add_scopes(p.scopes.iter().cloned().map(oauth2::Scope::new))
        .set_pkce_challenge(challenge);
    for (k, v) in extra {
        request = request.add_extra_param(*k, *v);
    }
    Ok(request.url().0)
}

fn classify(e: RequestTokenError<HttpError, ProviderErrorResponse>) -> EndpointError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let reason = aadsts::explain(
                &r.error,
                r.error_description.as_deref(),
                r.error_codes.as_deref(),
            );
            match r.error.as_str() {
                "invalid_client" | "unauthorized_client" => EndpointError::Client(reason),
                "invalid_grant"
                | "interaction_required"
                | "consent_required"
                | "login_required"
                | "invalid_scope" => EndpointError::Grant(reason),
                "temporarily_unavailable" | "server_error" | "slow_down" => {
                    EndpointError::Transient(reason)
                }
                // An error we do not know: nothing proves the grant or app dead, so do not
                // change anybody's status over it.
                _ => EndpointError::Transient(reason),
            }
        }
        RequestTokenError::Request(e) => EndpointError::Transient(e.to_string()),
        RequestTokenError::Parse(e, _) => EndpointError::Transient(format!(
            "the token endpoint's answer could not be read: {}",
            e.path()
        )),
        RequestTokenError::Other(e) => EndpointError::Transient(e),
    }
}

fn granted(answer: TokenAnswer) -> Granted {
    Granted {
        access_token: SecretString::from(answer.access_token().secret().to_owned()),
        refresh_token: answer
            .refresh_token()
            .map(|t| SecretString::from(t.secret().to_owned())),
        expires_in: answer.expires_in(),
        scopes: answer
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect()),
        id_token: answer.extra_fields().id_token.clone(),
    }
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    p: &ProviderSettings,
    redirect_uri: &str,
    code: &str,
    verifier: &SecretString,
) -> Result<Granted, EndpointError> {
    let c = client(p, Some(redirect_uri))?;
    c.exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()))
        .request_async(&Http(http))
        .await
        .map(granted)
        .map_err(classify)
}

/// Uses a refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    p: &ProviderSettings,
    refresh_token: &SecretString,
) -> Result<Granted, EndpointError> {
    let c = client(p, None)?;
    let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
    c.exchange_refresh_token(&token)
        .request_async(&Http(http))
        .await
        .map(granted)
        .map_err(classify)
}

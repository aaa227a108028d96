//! Mailroom's OAuth: provider defaults and settings validation, the authorization-code flow with
//! PKCE (start and callback), and the [`TokenSource`](mailroom_core::ports::TokenSource) that
//! keeps access tokens fresh. Talks to token endpoints through the `oauth2` crate over a reqwest
//! client the runtime provides (its TLS trust honours `SSL_CERT_FILE`).

mod aadsts;
mod cache;
mod connect;
pub mod defaults;
mod endpoint;
mod errors;
mod flow;
pub mod id_token;
pub mod policy;
mod providers;
mod refresh;
pub mod settings;
mod tokens;

pub use connect::{Connected, missing_scopes};
pub use endpoint::EndpointError;
pub use errors::{CallbackError, StartError};
pub use flow::{
    CallbackOutcome, CallbackParams, OAuthConfig, OAuthService, STATE_TTL_SECONDS, StartRequest,
    Started,
};
pub use policy::{MICROSOFT_PERSIST_AFTER_SECONDS, RefreshPolicy};
pub use settings::{FieldError, ProviderSettingsInput, ValidationError, public_view, validate};
pub use tokens::{OAuthTokenSource, REFRESH_MARGIN_SECONDS};

//! A test OAuth provider that behaves like Microsoft's and Google's token services (see the
//! contract in the team notes): auto-consenting `/authorize`, `/token` with PKCE and refresh
//! token rotation, `/introspect` for Dovecot, and an admin API. Runs in-process ([`spawn`]) or
//! as the `test-oauth-server` binary.
//!
//! Beyond the contract: `POST /admin/clients {"client_id","client_secret"}` registers a client
//! with its own secret; settings knobs `expires_in` (lifetime of issued access tokens) and
//! `rotate_refresh_token` (false: Google-like, the refresh answer carries no new refresh token),
//! `keep_old_refresh_tokens` (true: Microsoft-like, a rotated-away refresh token stays valid;
//! default false: rotation invalidates it);
//! a refresh token is issued only when the scope has `offline_access` or the authorize request
//! has `access_type=offline`. Helpers: [`connect`] drives Mailroom's connect flow like a browser,
//! [`admin_client::OAuthAdmin`] drives the external process over HTTP.

mod admin;
pub mod admin_client;
pub mod connect;
mod endpoints;
pub mod jwt;
pub mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use state::{DEFAULT_CLIENT_SECRET, DEFAULT_USER, ForcedStatus, Settings, Stats, TENANT_ID};

/// The server's state, shared by the handlers.
pub type Shared = Arc<Mutex<state::State>>;

/// Locks the state; a handler that panicked leaves plain data behind, so a poisoned lock is used
/// as is.
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, state::State> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The provider's routes over `shared`.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/authorize", get(endpoints::authorize))
        .route("/token", post(endpoints::token))
        .route(
            "/introspect",
            post(endpoints::introspect).get(endpoints::introspect),
        )
        .route("/admin/issue", post(admin::issue))
        .route("/admin/revoke", post(admin::revoke))
        .route("/admin/expire", post(admin::expire))
        .route("/admin/clients", post(admin::register_client))
        .route("/admin/settings", post(admin::settings))
        .route("/admin/stats", get(admin::stats))
        .route("/admin/reset", post(admin::reset))
        .with_state(shared)
}

/// Serves the provider on an already bound listener until the task is dropped; returns the
/// shared state and the base URL.
pub fn serve(
    listener: TcpListener,
) -> std::io::Result<(Shared, String, tokio::task::JoinHandle<()>)> {
    let addr: SocketAddr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let shared: Shared = Arc::new(Mutex::new(state::State::new(base_url.clone())));
    let app = router(shared.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "test OAuth server stopped");
        }
    });
    Ok((shared, base_url, task))
}

/// A provider running inside the test process; stops when dropped.
pub struct TestOAuthServer {
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestOAuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a provider on a free loopback port of the current tokio runtime.
pub async fn spawn() -> TestOAuthServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the test OAuth server to a loopback port");
    let (shared, url, task) = serve(listener).expect("read the test OAuth server's address");
    TestOAuthServer { url, shared, task }
}

impl TestOAuthServer {
    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }

    /// The issuer of this server's id_tokens.
    pub fn issuer(&self) -> String {
        jwt::issuer(&self.url)
    }

    /// Changes the behaviour knobs.
    pub fn configure(&self, change: impl FnOnce(&mut Settings)) {
        change(&mut lock(&self.shared).settings);
    }

    /// Registers a client with its own secret.
    pub fn register_client(&self, client_id: &str, secret: &str) {
        lock(&self.shared)
            .clients
            .insert(client_id.to_owned(), secret.to_owned());
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared).stats.clone()
    }

    /// Token requests of one grant type so far.
    pub fn token_requests(&self, grant_type: &str) -> u64 {
        lock(&self.shared)
            .stats
            .token_requests
            .get(grant_type)
            .copied()
            .unwrap_or_default()
    }

    /// Whether `refresh_token` is currently valid.
    pub fn refresh_token_live(&self, refresh_token: &str) -> bool {
        lock(&self.shared)
            .refresh_tokens
            .contains_key(refresh_token)
    }

    /// Whether `access_token` is currently active (what introspection would say).
    pub fn access_token_active(&self, access_token: &str) -> bool {
        lock(&self.shared)
            .access_tokens
            .get(access_token)
            .is_some_and(|t| t.expires_at > state::now())
    }

    /// Makes every token of `email` invalid.
    pub fn revoke(&self, email: &str) {
        lock(&self.shared).revoke(email);
    }

    /// Makes the access tokens of `email` inactive.
    pub fn expire(&self, email: &str) {
        lock(&self.shared).expire(email);
    }

    /// Issues tokens without the browser flow: `(access_token, refresh_token)`.
    pub fn issue(&self, email: &str, client_id: Option<&str>, scope: &str) -> (String, String) {
        let mut s = lock(&self.shared);
        let (len, exp) = (s.settings.access_token_len, s.settings.expires_in);
        let (access, refresh) = s.issue(email, client_id, scope, len, exp, true);
        (access, refresh.unwrap_or_default())
    }
}

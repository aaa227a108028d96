//! The admin API of a test OAuth provider running as its own process (`tests/servers/oauth.sh`,
//! `MAILROOM_TEST_OAUTH_URL`), the one Dovecot introspects against. Tests sharing that process
//! run in parallel: use addresses of their own and compare counters before and after.

use serde_json::{Value, json};

/// Tokens from `POST /admin/issue`.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub id_token: String,
}

/// Talks to `{url}/admin/*`.
#[derive(Debug, Clone)]
pub struct OAuthAdmin {
    pub url: String,
    http: reqwest::Client,
}

impl OAuthAdmin {
    pub fn new(url: impl Into<String>) -> Self {
        // reqwest is built without a default TLS provider: install the process's one first.
        mailroom_runtime::tls::install_crypto_provider();
        Self {
            url: url.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// The provider at `MAILROOM_TEST_OAUTH_URL` (panics, saying to run `tests/run`, without it).
    pub fn from_env() -> Self {
        Self::new(crate::app::server_env("MAILROOM_TEST_OAUTH_URL"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("test OAuth server {path}: {e}"));
        let status = response.status();
        let body: Value = response.json().await.expect("admin answer is JSON");
        assert!(
            status.is_success(),
            "test OAuth server {path}: {status} {body}"
        );
        body
    }

    /// Fresh tokens for `email` without the browser flow (any client may refresh them).
    pub async fn issue(&self, email: &str) -> IssuedTokens {
        self.issue_with(json!({ "email": email })).await
    }

    /// `POST /admin/issue` with extra fields (`access_token_len`, `expires_in`, `client_id`, `scope`).
    pub async fn issue_with(&self, body: Value) -> IssuedTokens {
        let v = self.post("/admin/issue", body).await;
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        IssuedTokens {
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
            expires_in: v["expires_in"].as_i64().unwrap_or_default(),
            id_token: text("id_token"),
        }
    }

    /// Every token of `email` becomes invalid.
    pub async fn revoke(&self, email: &str) {
        self.post("/admin/revoke", json!({ "email": email })).await;
    }

    /// The access tokens of `email` become inactive; refresh still works.
    pub async fn expire(&self, email: &str) {
        self.post("/admin/expire", json!({ "email": email })).await;
    }

    /// Registers a client with its own secret.
    pub async fn register_client(&self, client_id: &str, secret: &str) {
        self.post(
            "/admin/clients",
            json!({ "client_id": client_id, "client_secret": secret }),
        )
        .await;
    }

    /// Merges behaviour knobs (see `Settings`); answers the settings now in force.
    pub async fn settings(&self, patch: Value) -> Value {
        self.post("/admin/settings", patch).await
    }

    /// The counters.
    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/admin/stats", self.url))
            .send()
            .await
            .expect("test OAuth server stats")
            .json()
            .await
            .expect("stats are JSON")
    }

    /// Whether introspection calls `access_token` active (what Dovecot would conclude).
    pub async fn introspect(&self, access_token: &str) -> Value {
        self.http
            .post(format!("{}/introspect", self.url))
            .form(&[("token", access_token)])
            .send()
            .await
            .expect("test OAuth server introspect")
            .json()
            .await
            .expect("introspection is JSON")
    }
}

//! The test provider's in-memory state: registered clients, pending codes, issued tokens, the
//! behaviour knobs and the request counters.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The secret any unregistered client id authenticates with.
pub const DEFAULT_CLIENT_SECRET: &str = "test-secret";
/// The user the authorize endpoint consents as when no `login_hint` is given.
pub const DEFAULT_USER: &str = "user@example.test";
/// The tenant id put in every id_token (`tid`).
pub const TENANT_ID: &str = "00000000-0000-4000-8000-00000000beef";

/// What the token endpoint is forced to answer instead of doing its job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ForcedStatus {
    /// An HTTP status (5xx for outages, 429 for throttling).
    Code(u16),
    /// An OAuth error: `"invalid_client"` (expired client secret) or any other error code.
    Error(String),
}

/// Behaviour knobs, changed with `POST /admin/settings` (a merge: absent fields stay as they are).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Length of every access token issued (Microsoft issues tokens over 4 KB).
    pub access_token_len: usize,
    /// `expires_in` of every access token issued.
    pub expires_in: i64,
    /// Issue no refresh token from the authorization-code grant.
    pub omit_refresh_token: bool,
    /// Whether the refresh grant rotates the refresh token (Microsoft: yes; Google: no, the
    /// response then carries no refresh token and the old one stays valid).
    pub rotate_refresh_token: bool,
    /// Whether a rotated-away refresh token keeps working (Microsoft: old refresh tokens are
    /// replaced but not revoked). Off by default: rotation invalidates the old one, the strict
    /// behaviour of generic OAuth2 servers with reuse detection.
    pub keep_old_refresh_tokens: bool,
    /// The `email` claim of id_tokens instead of the user's address; `""` leaves the claim out
    /// (clients must then fall back to `preferred_username`).
    pub id_token_email: Option<String>,
    /// The granted `scope` to answer instead of the requested one (a user granting a subset).
    pub scope: Option<String>,
    /// Forced answer of the token endpoint.
    pub token_endpoint_status: Option<ForcedStatus>,
    /// Delay before the token endpoint answers, in milliseconds.
    pub token_delay_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token_len: 64,
            expires_in: 3600,
            omit_refresh_token: false,
            rotate_refresh_token: true,
            keep_old_refresh_tokens: false,
            id_token_email: None,
            scope: None,
            token_endpoint_status: None,
            token_delay_ms: 0,
        }
    }
}

/// Request counters, read with `GET /admin/stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Token requests by grant type, counted when they arrive (whatever the outcome).
    pub token_requests: HashMap<String, u64>,
    /// Token requests answered with an error, by OAuth error code.
    pub token_errors: HashMap<String, u64>,
    pub authorize_requests: u64,
    pub introspect_requests: u64,
}

/// A code waiting to be exchanged.
#[derive(Debug, Clone)]
pub struct PendingCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub user: String,
    /// Whether the grant includes a refresh token (`offline_access` scope or Google's
    /// `access_type=offline`).
    pub offline: bool,
    pub expires_at: i64,
}

/// One live access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub user: String,
    pub client_id: Option<String>,
    pub scope: String,
    pub expires_at: i64,
}

/// One live refresh token.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub user: String,
    /// `None` for tokens from `/admin/issue` without a client: any client may use them.
    pub client_id: Option<String>,
    pub scope: String,
}

/// Everything the server remembers.
#[derive(Debug, Default)]
pub struct State {
    /// Base URL the server is reachable at (the id_token issuer is derived from it).
    pub base_url: String,
    pub clients: HashMap<String, String>,
    pub codes: HashMap<String, PendingCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    /// Refresh tokens no longer valid, with why (`rotated` or `revoked`), for realistic errors.
    pub dead_refresh_tokens: HashMap<String, &'static str>,
    pub settings: Settings,
    pub stats: Stats,
}

impl State {
    pub fn new(base_url: String) -> Self {
        Self {
            base_url,
            ..Default::default()
        }
    }

    /// Forgets everything but the base URL.
    pub fn reset(&mut self) {
        *self = State::new(std::mem::take(&mut self.base_url));
    }

    /// Whether `secret` is the client's secret (registered, else the default one).
    pub fn client_secret_ok(&self, client_id: &str, secret: &str) -> bool {
        let expected = self
            .clients
            .get(client_id)
            .map_or(DEFAULT_CLIENT_SECRET, String::as_str);
        !client_id.is_empty() && expected == secret
    }

    /// Issues an access token (and a refresh token when `with_refresh`) for `user`.
    pub fn issue(
        &mut self,
        user: &str,
        client_id: Option<&str>,
        scope: &str,
        access_len: usize,
        expires_in: i64,
        with_refresh: bool,
    ) -> (String, Option<String>) {
        let access = random_token("at", access_len);
        self.access_tokens.insert(
            access.clone(),
            AccessToken {
                user: user.to_owned(),
                client_id: client_id.map(str::to_owned),
                scope: scope.to_owned(),
                expires_at: now() + expires_in,
            },
        );
        let refresh = with_refresh.then(|| {
            let refresh = random_token("rt", 48);
            self.refresh_tokens.insert(
                refresh.clone(),
                RefreshToken {
                    user: user.to_owned(),
                    client_id: client_id.map(str::to_owned),
                    scope: scope.to_owned(),
                },
            );
            refresh
        });
        (access, refresh)
    }

    /// Makes every token of `user` invalid.
    pub fn revoke(&mut self, user: &str) {
        self.access_tokens.retain(|_, t| !same_user(&t.user, user));
        let dead: Vec<String> = self
            .refresh_tokens
            .iter()
            .filter(|(_, t)| same_user(&t.user, user))
            .map(|(k, _)| k.clone())
            .collect();
        for token in dead {
            self.refresh_tokens.remove(&token);
            self.dead_refresh_tokens.insert(token, "revoked");
        }
    }

    /// Makes the access tokens of `user` inactive; refresh tokens keep working.
    pub fn expire(&mut self, user: &str) {
        let past = now() - 1;
        for token in self.access_tokens.values_mut() {
            if same_user(&token.user, user) {
                token.expires_at = past;
            }
        }
    }

    pub fn count_token_error(&mut self, error: &str) {
        *self.stats.token_errors.entry(error.to_owned()).or_default() += 1;
    }
}

fn same_user(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A random token of exactly `len` characters (at least 8) of the base64url alphabet.
pub fn random_token(prefix: &str, len: usize) -> String {
    let len = len.max(8);
    let mut out = String::with_capacity(len + 32);
    out.push_str(prefix);
    out.push('.');
    while out.len() < len {
        let bytes: [u8; 32] = rand::random();
        out.push_str(&URL_SAFE_NO_PAD.encode(bytes));
    }
    out.truncate(len);
    out
}

/// `BASE64URL(SHA256(verifier))`, the S256 code challenge of RFC 7636.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A stable subject for a user, so re-connecting yields the same identity.
pub fn subject(user: &str) -> String {
    let digest = Sha256::digest(user.to_ascii_lowercase().as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..18])
}

/// A stable GUID-shaped object id for a user (Microsoft's `oid`).
pub fn object_id(user: &str) -> String {
    let d = Sha256::digest(format!("oid:{}", user.to_ascii_lowercase()).as_bytes());
    let h: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

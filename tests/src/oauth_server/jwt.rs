//! id_tokens shaped like Microsoft's: a compact JWT signed HS256 with the client secret (clients
//! reading it from the token endpoint's TLS response need not check the signature, OIDC Core
//! 3.1.3.7, but it should look real).

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::state::{TENANT_ID, now, object_id, subject};

/// What goes into one id_token.
pub struct IdTokenClaims<'a> {
    pub base_url: &'a str,
    pub user: &'a str,
    pub client_id: &'a str,
    /// `None`: the user's address; `Some("")`: no `email` claim at all.
    pub email_override: Option<&'a str>,
    pub lifetime: i64,
}

/// The issuer the server uses in id_tokens.
pub fn issuer(base_url: &str) -> String {
    format!("{base_url}/{TENANT_ID}/v2.0")
}

/// The claims as JSON.
pub fn claims(c: &IdTokenClaims<'_>) -> Value {
    let iat = now();
    let mut claims = json!({
        "iss": issuer(c.base_url),
        "sub": subject(c.user),
        "tid": TENANT_ID,
        "oid": object_id(c.user),
        "aud": c.client_id,
        "iat": iat,
        "nbf": iat,
        "exp": iat + c.lifetime,
        "preferred_username": c.user,
        "name": c.user.split('@').next().unwrap_or(c.user),
        "ver": "2.0",
    });
    let email = c.email_override.unwrap_or(c.user);
    if !email.is_empty() {
        claims["email"] = json!(email);
    }
    claims
}

/// Encodes and signs the claims.
pub fn encode(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{body}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Decodes the claims of a JWT without checking it (test assertions).
pub fn decode_claims(jwt: &str) -> Option<Value> {
    let body = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    serde_json::from_slice(&bytes).ok()
}

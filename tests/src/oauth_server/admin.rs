//! The admin API tests drive the provider with: issue tokens without a browser, revoke or expire
//! a user's tokens, register clients, change behaviour knobs, read counters, reset.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::jwt::{self, IdTokenClaims};
use super::state::{DEFAULT_CLIENT_SECRET, Settings};
use super::{Shared, lock};

fn bad_request(why: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": why.into()}))).into_response()
}

#[derive(Debug, Deserialize)]
pub struct IssueRequest {
    email: String,
    access_token_len: Option<usize>,
    expires_in: Option<i64>,
    /// Bind the tokens to this client (refresh then needs its credentials); default: any client.
    client_id: Option<String>,
    scope: Option<String>,
}

/// `POST /admin/issue`: fresh tokens for a user without the browser flow.
pub async fn issue(AxState(shared): AxState<Shared>, Json(req): Json<IssueRequest>) -> Response {
    if req.email.is_empty() {
        return bad_request("email is required");
    }
    let mut s = lock(&shared);
    let len = req.access_token_len.unwrap_or(s.settings.access_token_len);
    let expires_in = req.expires_in.unwrap_or(s.settings.expires_in);
    let scope = req.scope.unwrap_or_else(|| {
        "openid profile email offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send".to_owned()
    });
    let (access, refresh) = s.issue(
        &req.email,
        req.client_id.as_deref(),
        &scope,
        len,
        expires_in,
        true,
    );
    let client_id = req.client_id.as_deref().unwrap_or("test-admin");
    let secret = s
        .clients
        .get(client_id)
        .cloned()
        .unwrap_or_else(|| DEFAULT_CLIENT_SECRET.to_owned());
    let claims = jwt::claims(&IdTokenClaims {
        base_url: &s.base_url,
        user: &req.email,
        client_id,
        email_override: None,
        lifetime: 3600,
    });
    Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": expires_in,
        "token_type": "Bearer",
        "scope": scope,
        "id_token": jwt::encode(&claims, &secret),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct UserRequest {
    email: String,
}

/// `POST /admin/revoke`: every token of the user becomes invalid.
pub async fn revoke(AxState(shared): AxState<Shared>, Json(req): Json<UserRequest>) -> Response {
    lock(&shared).revoke(&req.email);
    Json(json!({"revoked": req.email})).into_response()
}

/// `POST /admin/expire`: the user's access tokens become inactive; refresh still works.
pub async fn expire(AxState(shared): AxState<Shared>, Json(req): Json<UserRequest>) -> Response {
    lock(&shared).expire(&req.email);
    Json(json!({"expired": req.email})).into_response()
}

#[derive(Debug, Deserialize)]
pub struct ClientRequest {
    client_id: String,
    client_secret: String,
}

/// `POST /admin/clients`: registers a client with its own secret (the default secret then no
/// longer works for it).
pub async fn register_client(
    AxState(shared): AxState<Shared>,
    Json(req): Json<ClientRequest>,
) -> Response {
    if req.client_id.is_empty() || req.client_secret.is_empty() {
        return bad_request("client_id and client_secret are required");
    }
    lock(&shared)
        .clients
        .insert(req.client_id.clone(), req.client_secret);
    Json(json!({"client_id": req.client_id})).into_response()
}

/// `POST /admin/settings`: merges the given knobs into the current settings; answers the result.
pub async fn settings(AxState(shared): AxState<Shared>, Json(patch): Json<Value>) -> Response {
    let Value::Object(patch) = patch else {
        return bad_request("settings must be a JSON object");
    };
    let mut s = lock(&shared);
    let mut current = match serde_json::to_value(&s.settings) {
        Ok(Value::Object(map)) => map,
        _ => return bad_request("settings could not be read"),
    };
    for (key, value) in patch {
        if !current.contains_key(&key) {
            return bad_request(format!("unknown setting {key}"));
        }
        current.insert(key, value);
    }
    match serde_json::from_value::<Settings>(Value::Object(current)) {
        Ok(new) => {
            s.settings = new;
            Json(json!(s.settings)).into_response()
        }
        Err(e) => bad_request(format!("invalid settings: {e}")),
    }
}

/// `GET /admin/stats`.
pub async fn stats(AxState(shared): AxState<Shared>) -> Response {
    let s = lock(&shared);
    let mut body = json!(s.stats);
    body["live_refresh_tokens"] = json!(s.refresh_tokens.len());
    body["live_access_tokens"] = json!(s.access_tokens.len());
    Json(body).into_response()
}

/// `POST /admin/reset`: forgets clients, codes, tokens, settings and counters.
pub async fn reset(AxState(shared): AxState<Shared>) -> Response {
    lock(&shared).reset();
    Json(json!({"reset": true})).into_response()
}

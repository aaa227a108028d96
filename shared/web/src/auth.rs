//! API-key authentication: `Authorization: Bearer <key>`, compared in constant time.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::problem::Problem;

/// Whether `presented` equals the configured key; the comparison takes the same time wherever
/// the two differ, and hashing first hides the key's length too.
pub fn key_matches(configured: &str, presented: &str) -> bool {
    let configured = mailroom_core::crypto::sha256(configured.as_bytes());
    let presented = mailroom_core::crypto::sha256(presented.as_bytes());
    configured.ct_eq(&presented).into()
}

/// Middleware for every route that is not public.
pub async fn require_api_key(
    State(services): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        None => Problem::unauthorized("send the API key as `Authorization: Bearer <key>`")
            .into_response(),
        Some(key) if key_matches(services.api_key.expose_secret(), key) => next.run(request).await,
        Some(_) => Problem::unauthorized("the API key is not valid").into_response(),
    }
}

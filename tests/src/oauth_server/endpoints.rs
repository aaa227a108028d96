//! The provider-facing endpoints: `/authorize` (auto-consent), `/token` (authorization code with
//! PKCE, refresh with rotation) and `/introspect` (what Dovecot asks).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::jwt::{self, IdTokenClaims};
use super::state::{DEFAULT_USER, ForcedStatus, PendingCode, State, now, s256, subject};
use super::{Shared, lock};

#[derive(Debug, Deserialize)]
pub struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    login_hint: Option<String>,
    access_type: Option<String>,
}

/// Redirects back to the client with `params` (and the state) in the query.
fn back_to(redirect_uri: &url::Url, state: Option<&str>, params: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(state) = state {
            q.append_pair("state", state);
        }
    }
    // 302 Found, as Microsoft and Google answer.
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

pub async fn authorize(
    AxState(shared): AxState<Shared>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let Some(redirect_uri) = q
        .redirect_uri
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
    else {
        return (StatusCode::BAD_REQUEST, "redirect_uri missing or invalid").into_response();
    };
    let state = q.state.as_deref();
    let invalid = |why: &str| {
        back_to(
            &redirect_uri,
            state,
            &[("error", "invalid_request"), ("error_description", why)],
        )
    };
    if q.response_type.as_deref() != Some("code") {
        return invalid("AADSTS900144: response_type must be code");
    }
    let Some(client_id) = q.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return invalid(
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(challenge) = q.code_challenge.as_deref().filter(|c| c.len() >= 43) else {
        return invalid("AADSTS9002325: Proof Key for Code Exchange is required.");
    };
    if q.code_challenge_method.as_deref() != Some("S256") {
        return invalid("AADSTS501491: code_challenge_method must be S256");
    }
    let user = q
        .login_hint
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_USER.to_owned());
    if user.starts_with("deny") {
        return back_to(
            &redirect_uri,
            state,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "AADSTS65004: User declined to consent to access the app.",
                ),
            ],
        );
    }
    let requested = q.scope.clone().unwrap_or_default();
    let offline = requested.split(' ').any(|s| s == "offline_access")
        || q.access_type.as_deref() == Some("offline");
    let code = super::state::random_token("code", 40);
    {
        let mut s = lock(&shared);
        s.stats.authorize_requests += 1;
        let scope = s.settings.scope.clone().unwrap_or(requested);
        s.codes.insert(
            code.clone(),
            PendingCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_string(),
                code_challenge: challenge.to_owned(),
                scope,
                user,
                offline,
                expires_at: now() + 600,
            },
        );
    }
    back_to(&redirect_uri, state, &[("code", &code)])
}

/// An OAuth error answer shaped like Microsoft's.
fn oauth_error(status: StatusCode, error: &str, description: &str, code: u64) -> Response {
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": now(),
    });
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// The client credentials from `client_secret_basic` or `client_secret_post`.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = STANDARD.decode(basic.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        // RFC 6749 2.3.1: both parts are form-urlencoded before joining.
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return Some((decode(id)?, decode(secret)?));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

pub async fn token(
    AxState(shared): AxState<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let (delay, forced) = {
        let mut s = lock(&shared);
        *s.stats
            .token_requests
            .entry(grant_type.clone())
            .or_default() += 1;
        (
            s.settings.token_delay_ms,
            s.settings.token_endpoint_status.clone(),
        )
    };
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let mut s = lock(&shared);
    match forced {
        Some(ForcedStatus::Code(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            s.count_token_error(&format!("http_{code}"));
            return (
                status,
                "the token service is unavailable (forced by test settings)",
            )
                .into_response();
        }
        Some(ForcedStatus::Error(error)) if error == "invalid_client" => {
            s.count_token_error("invalid_client");
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "AADSTS7000222: The provided client secret keys for app are expired.",
                7000222,
            );
        }
        Some(ForcedStatus::Error(error)) => {
            s.count_token_error(&error);
            return oauth_error(
                StatusCode::BAD_REQUEST,
                &error,
                "forced by test settings",
                0,
            );
        }
        None => {}
    }
    let Some((client_id, secret)) = client_credentials(&headers, &form) else {
        s.count_token_error("invalid_client");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            7000218,
        );
    };
    if !s.client_secret_ok(&client_id, &secret) {
        s.count_token_error("invalid_client");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
            7000215,
        );
    }
    let result = match grant_type.as_str() {
        "authorization_code" => code_grant(&mut s, &client_id, &secret, &form),
        "refresh_token" => refresh_grant(&mut s, &client_id, &secret, &form),
        _ => Err((
            "unsupported_grant_type",
            "AADSTS70003: unsupported grant type",
            70003,
        )),
    };
    match result {
        Ok(body) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(body),
        )
            .into_response(),
        Err((error, description, code)) => {
            s.count_token_error(error);
            oauth_error(StatusCode::BAD_REQUEST, error, description, code)
        }
    }
}

type GrantResult = Result<Value, (&'static str, &'static str, u64)>;

fn code_grant(
    s: &mut State,
    client_id: &str,
    secret: &str,
    form: &HashMap<String, String>,
) -> GrantResult {
    const REDEEMED: (&str, &str, u64) = (
        "invalid_grant",
        "AADSTS54005: OAuth2 Authorization code was already redeemed or is unknown.",
        54005,
    );
    let code = form.get("code").ok_or(REDEEMED)?;
    // Single use: the code is gone whatever happens next.
    let pending = s.codes.remove(code).ok_or(REDEEMED)?;
    if pending.expires_at <= now() {
        return Err((
            "invalid_grant",
            "AADSTS70008: The provided authorization code has expired.",
            70008,
        ));
    }
    if pending.client_id != client_id {
        return Err((
            "invalid_grant",
            "AADSTS70000: The code was issued to another client.",
            70000,
        ));
    }
    if form.get("redirect_uri") != Some(&pending.redirect_uri) {
        return Err((
            "invalid_grant",
            "AADSTS50148: The redirect_uri does not match the authorization request.",
            50148,
        ));
    }
    let verifier = form
        .get("code_verifier")
        .map(String::as_str)
        .unwrap_or_default();
    if s256(verifier) != pending.code_challenge {
        return Err((
            "invalid_grant",
            "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            501481,
        ));
    }
    let with_refresh = pending.offline && !s.settings.omit_refresh_token;
    Ok(token_response(
        s,
        &pending.user,
        client_id,
        secret,
        &pending.scope,
        with_refresh,
    ))
}

fn refresh_grant(
    s: &mut State,
    client_id: &str,
    secret: &str,
    form: &HashMap<String, String>,
) -> GrantResult {
    let presented = form
        .get("refresh_token")
        .map(String::as_str)
        .unwrap_or_default();
    let Some(stored) = s.refresh_tokens.get(presented).cloned() else {
        return Err(match s.dead_refresh_tokens.get(presented) {
            Some(&"revoked") => (
                "invalid_grant",
                "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed.",
                50173,
            ),
            _ => (
                "invalid_grant",
                "AADSTS70000: The provided refresh token is invalid or was already used.",
                70000,
            ),
        });
    };
    if stored.client_id.as_deref().is_some_and(|c| c != client_id) {
        return Err((
            "invalid_grant",
            "AADSTS70000: The refresh token was issued to another client.",
            70000,
        ));
    }
    let rotate = s.settings.rotate_refresh_token;
    if rotate && !s.settings.keep_old_refresh_tokens {
        s.refresh_tokens.remove(presented);
        s.dead_refresh_tokens
            .insert(presented.to_owned(), "rotated");
    }
    Ok(token_response(
        s,
        &stored.user,
        client_id,
        secret,
        &stored.scope,
        rotate,
    ))
}

/// Issues tokens and builds the token endpoint's JSON answer.
fn token_response(
    s: &mut State,
    user: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
    with_refresh: bool,
) -> Value {
    let (len, expires_in) = (s.settings.access_token_len, s.settings.expires_in);
    let (access, refresh) = s.issue(user, Some(client_id), scope, len, expires_in, with_refresh);
    let mut body = json!({
        "token_type": "Bearer",
        "access_token": access,
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "scope": scope,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    if scope.split(' ').any(|s| s == "openid") {
        let claims = jwt::claims(&IdTokenClaims {
            base_url: &s.base_url,
            user,
            client_id,
            email_override: s.settings.id_token_email.as_deref(),
            lifetime: 3600,
        });
        body["id_token"] = json!(jwt::encode(&claims, secret));
    }
    body
}

/// The token to introspect: the form's `token` (Dovecot `introspection_mode = post`) or a bearer
/// header (`introspection_mode = auth`).
fn presented_token(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<String> {
    if let Some(token) = form.get("token") {
        return Some(token.clone());
    }
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
}

pub async fn introspect(
    AxState(shared): AxState<Shared>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = form.map(|f| f.0).unwrap_or_default();
    let mut s = lock(&shared);
    s.stats.introspect_requests += 1;
    let token = presented_token(&headers, &form).unwrap_or_default();
    let body = match s.access_tokens.get(&token) {
        Some(t) if t.expires_at > now() => json!({
            "active": true,
            "email": t.user,
            "username": t.user,
            "sub": subject(&t.user),
            "scope": t.scope,
            "client_id": t.client_id,
            "token_type": "Bearer",
            "exp": t.expires_at,
        }),
        _ => json!({"active": false}),
    };
    axum::Json(body).into_response()
}

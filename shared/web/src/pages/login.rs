//! Logging in with the API key and out again, the `/ui` entry point and the stylesheet.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::Page;
use super::html::{csrf_field, notice, page};
use super::session::{
    self, LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECONDS, cookie, cross_site, set_cookie,
};
use crate::AppState;
use crate::auth::key_matches;

const STYLE: &str = include_str!("style.css");

/// `GET /ui`: the accounts page, or the login page without a session.
pub async fn home() -> Redirect {
    Redirect::to("/ui/accounts")
}

/// `GET /ui/style.css`.
pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLE,
    )
        .into_response()
}

fn login_page(services: &AppState, status: StatusCode, message: Option<&str>) -> Response {
    // Double-submit token: the same random value in a SameSite=Strict cookie and in the form.
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>());
    let body = format!(
        "{}<form method=\"post\" action=\"/ui/login\" class=\"card\">{}\
         <label>API key <input type=\"password\" name=\"api_key\" autocomplete=\"current-password\" required autofocus></label>\
         <button>Log in</button></form>\
         <p class=\"hint\">The local host prints the key on its first start and keeps it in \
         <code>&lt;data dir&gt;/api-key</code>; in AWS it is <code>MAILROOM_API_KEY</code>.</p>",
        message.map(|m| notice("error", m)).unwrap_or_default(),
        csrf_field(&token),
    );
    let mut response = page(status, "Log in", None, &body);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(services, LOGIN_COOKIE, &token, 600),
    );
    response
}

/// `GET /ui/login`.
pub async fn show(State(services): State<AppState>) -> Response {
    login_page(&services, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/login`: a right key and a matching login token start a session.
pub async fn submit(
    State(services): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let token_ok: bool = !expected.is_empty()
        && bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes()))
        && !cross_site(&headers);
    if !token_ok {
        return session::forbidden();
    }
    if !key_matches(services.api_key.expose_secret(), form.api_key.trim()) {
        tracing::warn!("page login with a wrong API key");
        return login_page(
            &services,
            StatusCode::UNAUTHORIZED,
            Some("That is not the API key."),
        );
    }
    let token = session::issue(&services);
    let mut response = Redirect::to("/ui/accounts").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&services, SESSION_COOKIE, &token, SESSION_SECONDS),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&services, LOGIN_COOKIE, "", 0),
    );
    response
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: clears the session cookie.
pub async fn logout(
    State(services): State<AppState>,
    Page(session): Page,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if !session.csrf_ok(&form.csrf) {
        return session::forbidden();
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&services, SESSION_COOKIE, "", 0),
    );
    response
}

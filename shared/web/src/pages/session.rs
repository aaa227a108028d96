//! Page sessions: logging in with the API key sets an HttpOnly, SameSite=Strict cookie holding
//! a signed session token (never the key itself); every form carries a CSRF token bound to that
//! session. Tokens are `expiry.nonce.mac` with an HMAC-SHA256 key derived from the API key, so
//! any function instance can check them without a store read, and changing the API key ends
//! every session.

use aws_lc_rs::hmac;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailroom_core::time::now_unix;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::html::{esc, page};
use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mailroom_session";
/// The login form's double-submit cookie (there is no session to bind to yet).
pub const LOGIN_COOKIE: &str = "mailroom_login";
/// How long a session lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// A checked session, handed to page handlers as a request extension.
#[derive(Debug, Clone)]
pub struct Session {
    /// The CSRF token every form of this session must carry.
    pub csrf: String,
}

impl Session {
    /// Whether a submitted form's `csrf` field belongs to this session.
    pub fn csrf_ok(&self, presented: &str) -> bool {
        let a = mailroom_core::crypto::sha256(self.csrf.as_bytes());
        let b = mailroom_core::crypto::sha256(presented.as_bytes());
        a.ct_eq(&b).into()
    }
}

fn signing_key(services: &AppState) -> hmac::Key {
    let root = hmac::Key::new(
        hmac::HMAC_SHA256,
        services.api_key.expose_secret().as_bytes(),
    );
    let derived = hmac::sign(&root, b"mailroom pages session v1");
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

fn mac(key: &hmac::Key, parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(key, parts.join("|").as_bytes()).as_ref())
}

/// A new session token valid for [`SESSION_SECONDS`].
pub fn issue(services: &AppState) -> String {
    let key = signing_key(services);
    let expiry = (now_unix() + SESSION_SECONDS).to_string();
    let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>());
    let tag = mac(&key, &["session", &expiry, &nonce]);
    format!("{expiry}.{nonce}.{tag}")
}

/// The session a token stands for, if it is ours and not expired.
pub fn check(services: &AppState, token: &str) -> Option<Session> {
    let mut parts = token.split('.');
    let (expiry, nonce, tag) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let key = signing_key(services);
    let expected = URL_SAFE_NO_PAD.decode(tag).ok()?;
    hmac::verify(
        &key,
        ["session", expiry, nonce].join("|").as_bytes(),
        &expected,
    )
    .ok()?;
    if expiry.parse::<i64>().ok()? <= now_unix() {
        return None;
    }
    Some(Session {
        csrf: mac(&key, &["csrf", nonce]),
    })
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value; `Secure` when the host is served over HTTPS.
pub fn set_cookie(services: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if services.config.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    // Names and values are base64url and digits only.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether the browser says the request came from another site (a forged form post).
pub fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| matches!(site, "cross-site" | "same-site"))
}

/// Middleware for `Access::Session` routes: no session -> the login page (GET) or 401;
/// cross-site posts -> 403. The session goes to the handler as an extension.
pub async fn require_session(
    State(services): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let session = cookie(request.headers(), SESSION_COOKIE).and_then(|t| check(&services, t));
    let Some(session) = session else {
        if request.method() == Method::GET && cross_site(request.headers()) {
            return same_site_again(request.uri());
        }
        if request.method() == Method::GET {
            return Redirect::to("/ui/login").into_response();
        }
        return page(
            StatusCode::UNAUTHORIZED,
            "Logged out",
            None,
            "<p>Your session has ended. <a href=\"/ui/login\">Log in</a> again.</p>",
        );
    };
    if request.method() != Method::GET && cross_site(request.headers()) {
        return forbidden();
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Browsers leave SameSite=Strict cookies off a navigation that came from another site (the
/// provider's redirect back after connecting): reload the same page from our own page, which
/// sends the cookie; without a session that second load goes to the login page.
fn same_site_again(uri: &axum::http::Uri) -> Response {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| p.starts_with("/ui"))
        .unwrap_or("/ui");
    let mut response = page(
        StatusCode::OK,
        "Continue",
        None,
        &format!("<p><a href=\"{}\">Continue</a></p>", esc(target)),
    );
    let refresh = format!("0; url={target}");
    if let Ok(value) = HeaderValue::from_str(&refresh) {
        response.headers_mut().insert("refresh", value);
    }
    response
}

/// The answer to a form without a valid CSRF token: nothing was changed.
pub fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Request refused",
        None,
        &format!(
            "<p>{}</p><p><a href=\"/ui/accounts\">Back</a></p>",
            esc(
                "The form was not sent from this site's own page (missing or wrong CSRF token); nothing was changed."
            )
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("mailroom_session=x.y.z"),
        );
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("x.y.z"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}

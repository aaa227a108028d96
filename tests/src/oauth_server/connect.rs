//! Driving Mailroom's connect flow against the test provider the way a browser would: store a
//! provider, start, follow the authorize redirect, deliver the callback. Other tests use
//! [`connect_mailbox`] to get a connected account.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestOAuthServer;
use crate::app::{TEST_RETURN_ORIGIN, TestApp};

/// Where the test flows ask to be sent back to.
pub fn return_to() -> String {
    format!("{TEST_RETURN_ORIGIN}/connected")
}

/// Mail scopes the test providers request (Microsoft's Outlook resource scopes).
pub const TEST_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
];

/// Settings of an `oauth2` provider backed by the test server; IMAP/SMTP point at loopback ports
/// (pass the Dovecot ones when the mail side matters).
pub fn provider_settings(oauth: &TestOAuthServer, imap_port: u16, smtp_port: u16) -> Value {
    provider_settings_at(oauth.url(), imap_port, smtp_port)
}

/// The same for a provider at `base_url` (e.g. the external one at `MAILROOM_TEST_OAUTH_URL`
/// that Dovecot introspects against).
pub fn provider_settings_at(base_url: &str, imap_port: u16, smtp_port: u16) -> Value {
    let base_url = base_url.trim_end_matches('/');
    json!({
        "kind": "oauth2",
        "client_id": "mailroom-test",
        "client_secret": super::DEFAULT_CLIENT_SECRET,
        "authorize_url": format!("{base_url}/authorize"),
        "token_url": format!("{base_url}/token"),
        "scopes": TEST_SCOPES,
        "imap": {"host": "127.0.0.1", "port": imap_port, "tls": "implicit"},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "tls": "starttls"},
    })
}

/// `PUT /v1/providers/{id}`; panics unless it succeeds.
pub async fn put_provider(app: &TestApp, id: &str, settings: &Value) -> Value {
    let response = app
        .authed(Method::PUT, &format!("/v1/providers/{id}"))
        .json(settings)
        .send()
        .await
        .expect("PUT provider");
    let status = response.status();
    let body: Value = response.json().await.expect("provider body");
    assert!(status.is_success(), "PUT provider failed: {status} {body}");
    body
}

/// `POST /v1/oauth/{provider}/start`: the authorize URL.
pub async fn start(app: &TestApp, provider_id: &str, owner: &str, login_hint: &str) -> String {
    let response = app
        .authed(Method::POST, &format!("/v1/oauth/{provider_id}/start"))
        .json(&json!({"owner": owner, "return_to": return_to(), "login_hint": login_hint}))
        .send()
        .await
        .expect("POST start");
    let status = response.status();
    let body: Value = response.json().await.expect("start body");
    assert_eq!(status, StatusCode::OK, "start failed: {body}");
    body["authorize_url"]
        .as_str()
        .expect("authorize_url")
        .to_owned()
}

/// Follows the provider's authorize redirect: the callback URL it sends the browser to.
pub async fn authorize(app: &TestApp, authorize_url: &str) -> String {
    let response = app
        .client()
        .get(authorize_url)
        .send()
        .await
        .expect("GET authorize");
    assert_eq!(response.status(), StatusCode::FOUND, "authorize redirects");
    location(&response)
}

/// The `Location` header of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .expect("absolute URL")
        .query_pairs()
        .into_owned()
        .collect()
}

/// Delivers the callback as the browser would (not following Mailroom's redirect).
pub async fn deliver(app: &TestApp, callback_url: &str) -> reqwest::Response {
    app.client()
        .get(callback_url)
        .send()
        .await
        .expect("GET callback")
}

/// The whole flow for `email` under `owner`; returns the new account's id.
pub async fn connect_mailbox(app: &TestApp, provider_id: &str, owner: &str, email: &str) -> String {
    let authorize_url = start(app, provider_id, owner, email).await;
    let callback = authorize(app, &authorize_url).await;
    let response = deliver(app, &callback).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "callback redirects"
    );
    let back = query(&location(&response));
    assert_eq!(
        back.get("status").map(String::as_str),
        Some("active"),
        "connected: {back:?}"
    );
    back["account_id"].clone()
}

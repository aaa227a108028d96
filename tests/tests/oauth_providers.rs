//! Provider settings through the HTTP interface: defaults per kind, validation with field-level
//! problems and nothing stored, updates keeping the secret, and a secret never shown.

use mailroom_core::ExposeSecret;
use mailroom_tests::app::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "s3cret-value-never-shown";

async fn put(app: &TestApp, id: &str, body: &Value) -> (StatusCode, String) {
    let response = app
        .authed(Method::PUT, &format!("/v1/providers/{id}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = app.authed(Method::GET, path).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn microsoft_defaults_are_applied_and_the_secret_never_shown() {
    let app = TestApp::spawn().await;
    let (status, text) = put(
        &app,
        "ms",
        &json!({"kind": "microsoft", "client_id": "app-id", "client_secret": SECRET}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert!(!text.contains(SECRET));
    let (status, text) = get(&app, "/v1/providers/ms").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text.contains(SECRET));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["client_secret_set"], true);
    assert!(body.get("client_secret").is_none());
    assert_eq!(body["tenant"], "common");
    assert_eq!(body["cloud"], "global");
    assert_eq!(
        body["authorize_url"],
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    );
    assert_eq!(
        body["token_url"],
        "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    );
    assert_eq!(
        body["scopes"],
        json!([
            "openid",
            "profile",
            "email",
            "offline_access",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send"
        ])
    );
    assert_eq!(
        body["imap"],
        json!({"host": "outlook.office365.com", "port": 993, "tls": "implicit"})
    );
    assert_eq!(
        body["smtp"],
        json!({"host": "smtp.office365.com", "port": 587, "tls": "starttls"})
    );
    assert_eq!(body["status"], "ok");

    // Stored encrypted, readable by the service.
    let stored = app.services.repo.get_provider("ms").await.unwrap().unwrap();
    assert_eq!(stored.client_secret.expose_secret(), SECRET);

    let (_, list) = get(&app, "/v1/providers").await;
    assert!(!list.contains(SECRET));
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["providers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn national_clouds_and_tenants_choose_the_authority() {
    let app = TestApp::spawn().await;
    let (status, text) = put(
        &app,
        "gov",
        &json!({"kind": "microsoft", "client_id": "a", "client_secret": SECRET,
            "tenant": "contoso.onmicrosoft.us", "cloud": "us-gov"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["token_url"],
        "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token"
    );
}

#[tokio::test]
async fn google_defaults() {
    let app = TestApp::spawn().await;
    let (status, text) = put(
        &app,
        "google",
        &json!({"kind": "google", "client_id": "g", "client_secret": SECRET}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["authorize_url"],
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(body["token_url"], "https://oauth2.googleapis.com/token");
    assert_eq!(
        body["scopes"],
        json!(["openid", "email", "https://mail.google.com/"])
    );
    assert_eq!(
        body["smtp"],
        json!({"host": "smtp.gmail.com", "port": 465, "tls": "implicit"})
    );
    assert!(body["tenant"].is_null());

    // Google's authorize URL asks for offline access with consent, so a refresh token comes.
    let response = app
        .authed(Method::POST, "/v1/oauth/google/start")
        .json(&json!({"owner": "o"}))
        .send()
        .await
        .unwrap();
    let started: Value = response.json().await.unwrap();
    let url = started["authorize_url"].as_str().unwrap();
    assert!(url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"));
    assert!(url.contains("access_type=offline") && url.contains("prompt=consent"));
}

async fn assert_invalid(app: &TestApp, id: &str, body: Value, fields: &[&str]) {
    let response = app
        .authed(Method::PUT, &format!("/v1/providers/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{body}"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains(SECRET));
    let problem: Value = serde_json::from_str(&text).unwrap();
    let named: Vec<&str> = problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    for field in fields {
        assert!(named.contains(field), "{field} not reported in {problem}");
    }
}

#[tokio::test]
async fn invalid_settings_are_refused_field_by_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    assert_invalid(
        &app,
        "custom",
        json!({"kind": "oauth2", "client_id": "c", "client_secret": SECRET}),
        &["authorize_url", "token_url", "scopes", "imap", "smtp"],
    )
    .await;
    assert_invalid(
        &app,
        "p",
        json!({"client_secret": SECRET}),
        &["kind", "client_id"],
    )
    .await;
    assert_invalid(
        &app,
        "p",
        json!({"kind": "yahoo", "client_id": "c", "client_secret": SECRET}),
        &["kind"],
    )
    .await;
    assert_invalid(
        &app,
        "p",
        json!({"kind": "microsoft", "client_id": "c"}),
        &["client_secret"],
    )
    .await;
    assert_invalid(
        &app,
        "p",
        json!({"kind": "microsoft", "client_id": "c", "client_secret": SECRET, "cloud": "mars"}),
        &["cloud"],
    )
    .await;
    // Microsoft issues one resource per token: a Graph scope must not ride along.
    assert_invalid(
        &app,
        "p",
        json!({"kind": "microsoft", "client_id": "c", "client_secret": SECRET,
            "scopes": ["openid", "offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All", "User.Read"]}),
        &["scopes"],
    )
    .await;
    assert_invalid(
        &app,
        "p",
        json!({"kind": "google", "client_id": "c", "client_secret": SECRET, "tenant": "common",
            "token_url": "http://tokens.example.test/token",
            "imap": {"host": "imap.example.test", "port": 70000, "tls": "ssl"}}),
        &["tenant", "token_url", "imap.port", "imap.tls"],
    )
    .await;
    // Unknown fields are refused too (a typo must not silently fall back to a default).
    let response = app
        .authed(Method::PUT, "/v1/providers/p")
        .json(&json!({"kind": "google", "client_id": "c", "client_secret": SECRET, "scope": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A bad id.
    let (status, _) = put(
        &app,
        "bad.id",
        &json!({"kind": "google", "client_id": "c", "client_secret": SECRET}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert!(app.services.repo.list_providers().await.unwrap().is_empty());
    let (status, _) = get(&app, "/v1/providers/custom").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn updates_keep_the_secret_unless_given_and_delete_removes() {
    let app = TestApp::spawn().await;
    let base = json!({"kind": "google", "client_id": "g", "client_secret": SECRET});
    assert_eq!(put(&app, "g", &base).await.0, StatusCode::CREATED);
    let (status, text) = put(&app, "g", &json!({"kind": "google", "client_id": "g2"})).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let stored = app.services.repo.get_provider("g").await.unwrap().unwrap();
    assert_eq!(stored.client_id, "g2");
    assert_eq!(stored.client_secret.expose_secret(), SECRET);
    let (status, _) = put(
        &app,
        "g",
        &json!({"kind": "google", "client_id": "g2", "client_secret": "new-secret"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let stored = app.services.repo.get_provider("g").await.unwrap().unwrap();
    assert_eq!(stored.client_secret.expose_secret(), "new-secret");

    let response = app
        .authed(Method::DELETE, "/v1/providers/g")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(app.services.repo.get_provider("g").await.unwrap().is_none());
    let response = app
        .authed(Method::DELETE, "/v1/providers/g")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn provider_endpoints_need_the_api_key() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::GET, "/v1/providers"),
        (Method::GET, "/v1/providers/x"),
        (Method::PUT, "/v1/providers/x"),
        (Method::DELETE, "/v1/providers/x"),
        (Method::GET, "/v1/accounts"),
    ] {
        let response = app
            .client()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
}

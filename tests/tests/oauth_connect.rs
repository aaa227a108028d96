//! Connecting a mailbox through the public HTTP interface against the test OAuth provider:
//! the full flow, re-connect, and every way a callback must refuse.

use mailroom_core::domain::{MessageMeta, OAuthState};
use mailroom_core::records::MessageKey;
use mailroom_core::time::now_unix;
use mailroom_core::{ExposeSecret, SecretString};
use mailroom_tests::app::{TEST_RETURN_ORIGIN, TestApp};
use mailroom_tests::oauth_server::connect::{
    authorize, connect_mailbox, deliver, location, provider_settings, put_provider, query,
    return_to, start,
};
use mailroom_tests::oauth_server::{self, ForcedStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn setup() -> (TestApp, oauth_server::TestOAuthServer) {
    let app = TestApp::spawn().await;
    let oauth = oauth_server::spawn().await;
    put_provider(&app, "test", &provider_settings(&oauth, 993, 587)).await;
    (app, oauth)
}

async fn account_count(app: &TestApp) -> usize {
    let (accounts, _) = app
        .services
        .repo
        .list_accounts(None, None, 100)
        .await
        .expect("list accounts");
    accounts.len()
}

fn assert_callback_headers(response: &reqwest::Response) {
    let h = response.headers();
    assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
}

#[tokio::test]
async fn full_connect_flow_stores_an_active_account_with_sealed_tokens() {
    let (app, oauth) = setup().await;
    let authorize_url = start(&app, "test", "owner-1", "alice@example.test").await;

    // The authorize URL carries PKCE S256 and a state, never a secret.
    let q = query(&authorize_url);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 43);
    assert_eq!(q["login_hint"], "alice@example.test");
    assert_eq!(q["redirect_uri"], app.url("/v1/oauth/test/callback"));
    assert!(!authorize_url.contains("test-secret") && !authorize_url.contains("client_secret"));

    let callback = authorize(&app, &authorize_url).await;
    let response = deliver(&app, &callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_callback_headers(&response);
    let back_url = location(&response);
    assert!(back_url.starts_with(&return_to()));
    let back = query(&back_url);
    assert_eq!(back["status"], "active");
    let id = back["account_id"].clone();

    // What is stored: the tokens the provider issued, usable at the provider.
    let stored = app
        .services
        .repo
        .get_account(&id)
        .await
        .unwrap()
        .expect("account stored");
    assert_eq!(stored.email, "alice@example.test");
    assert_eq!(stored.owner, "owner-1");
    assert!(stored.identity.starts_with("tid:"));
    assert!(oauth.access_token_active(stored.tokens.access_token.expose_secret()));
    assert!(oauth.refresh_token_live(stored.tokens.refresh_token.expose_secret()));
    assert!(stored.tokens.access_expires_at > now_unix() + 3000);
    assert_eq!(oauth.token_requests("authorization_code"), 1);

    // The API shows the account, never its tokens.
    let response = app
        .authed(Method::GET, &format!("/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.contains(stored.tokens.access_token.expose_secret()));
    assert!(!text.contains(stored.tokens.refresh_token.expose_secret()));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["email"], "alice@example.test");
    assert_eq!(body["status"], "active");
    let list: Value = app
        .authed(Method::GET, "/v1/accounts?owner=owner-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["accounts"].as_array().unwrap().len(), 1);
    let other: Value = app
        .authed(Method::GET, "/v1/accounts?owner=someone-else")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(other["accounts"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn reconnecting_the_same_identity_updates_the_account() {
    let (app, oauth) = setup().await;
    let first = connect_mailbox(&app, "test", "owner-1", "bob@example.test").await;
    let before = app
        .services
        .repo
        .get_account(&first)
        .await
        .unwrap()
        .unwrap();
    let second = connect_mailbox(&app, "test", "owner-1", "bob@example.test").await;
    assert_eq!(first, second, "same identity, same account");
    let after = app
        .services
        .repo
        .get_account(&first)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        before.tokens.refresh_token.expose_secret(),
        after.tokens.refresh_token.expose_secret()
    );
    assert!(oauth.refresh_token_live(after.tokens.refresh_token.expose_secret()));
    assert_eq!(account_count(&app).await, 1);
}

#[tokio::test]
async fn a_state_works_once() {
    let (app, oauth) = setup().await;
    let callback = authorize(&app, &start(&app, "test", "o", "carol@example.test").await).await;
    assert_eq!(
        deliver(&app, &callback).await.status(),
        StatusCode::SEE_OTHER
    );
    let replay = deliver(&app, &callback).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_callback_headers(&replay);
    let page = replay.text().await.unwrap();
    assert!(page.contains("already completed"), "{page}");
    assert_eq!(
        oauth.token_requests("authorization_code"),
        1,
        "the replay never reached the provider"
    );
    assert_eq!(account_count(&app).await, 1);
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let (app, oauth) = setup().await;
    let now = now_unix();
    let state = OAuthState {
        state: "expired-state-value".into(),
        provider_id: "test".into(),
        owner: "o".into(),
        return_to: Some(return_to()),
        login_hint: None,
        pkce_verifier: SecretString::from("v".repeat(43)),
        redirect_uri: app.url("/v1/oauth/test/callback"),
        created_at: now - 700,
        expires_at: now - 100,
    };
    app.services.repo.put_oauth_state(&state).await.unwrap();
    let response = deliver(
        &app,
        &app.url("/v1/oauth/test/callback?code=abc&state=expired-state-value"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(oauth.token_requests("authorization_code"), 0);
    assert_eq!(account_count(&app).await, 0);
}

#[tokio::test]
async fn a_callback_at_another_providers_path_is_refused_and_burns_the_state() {
    let (app, oauth) = setup().await;
    put_provider(&app, "other", &provider_settings(&oauth, 993, 587)).await;
    let callback = authorize(&app, &start(&app, "test", "o", "dave@example.test").await).await;
    let wrong = callback.replace("/v1/oauth/test/callback", "/v1/oauth/other/callback");
    let response = deliver(&app, &wrong).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = query(&location(&response));
    assert_eq!(back["error"], "invalid_state");
    assert!(!back.contains_key("account_id"));
    // The state is spent: the right path no longer accepts it either.
    assert_eq!(
        deliver(&app, &callback).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(oauth.token_requests("authorization_code"), 0);
    assert_eq!(account_count(&app).await, 0);
}

#[tokio::test]
async fn denied_consent_reports_the_providers_error() {
    let (app, oauth) = setup().await;
    let callback = authorize(&app, &start(&app, "test", "o", "deny@example.test").await).await;
    assert_eq!(query(&callback)["error"], "access_denied");
    let response = deliver(&app, &callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = query(&location(&response));
    assert_eq!(back["error"], "access_denied");
    assert!(back["error_description"].contains("AADSTS65004"));
    assert_eq!(oauth.token_requests("authorization_code"), 0);
    assert_eq!(account_count(&app).await, 0);
}

async fn refused_with(app: &TestApp, email: &str) -> std::collections::HashMap<String, String> {
    let callback = authorize(app, &start(app, "test", "o", email).await).await;
    let response = deliver(app, &callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    query(&location(&response))
}

#[tokio::test]
async fn a_grant_without_refresh_token_is_refused() {
    let (app, oauth) = setup().await;
    oauth.configure(|s| s.omit_refresh_token = true);
    let back = refused_with(&app, "erin@example.test").await;
    assert_eq!(back["error"], "no_refresh_token");
    assert_eq!(oauth.token_requests("authorization_code"), 1);
    assert_eq!(account_count(&app).await, 0);
}

#[tokio::test]
async fn a_grant_without_the_mail_scopes_is_refused() {
    let (app, oauth) = setup().await;
    oauth.configure(|s| {
        s.scope = Some(
            "openid email offline_access https://outlook.office.com/IMAP.AccessAsUser.All".into(),
        )
    });
    let back = refused_with(&app, "frank@example.test").await;
    assert_eq!(back["error"], "insufficient_scope");
    assert!(back["error_description"].contains("SMTP.Send"));
    assert_eq!(account_count(&app).await, 0);
}

#[tokio::test]
async fn the_address_falls_back_to_preferred_username() {
    let (app, oauth) = setup().await;
    oauth.configure(|s| s.id_token_email = Some(String::new()));
    let id = connect_mailbox(&app, "test", "o", "grace@example.test").await;
    let stored = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(stored.email, "grace@example.test");
}

#[tokio::test]
async fn a_rejected_client_at_code_exchange_flags_the_provider() {
    let (app, oauth) = setup().await;
    oauth.configure(|s| {
        s.token_endpoint_status = Some(ForcedStatus::Error("invalid_client".into()))
    });
    let back = refused_with(&app, "heidi@example.test").await;
    assert_eq!(back["error"], "provider_needs_admin_action");
    let provider = app
        .services
        .repo
        .get_provider("test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        provider.status,
        mailroom_core::domain::ProviderStatus::NeedsAdminAction
    );
    assert!(provider.status_reason.unwrap().contains("AADSTS7000222"));
    // New connections are refused until an admin saves the settings again.
    let response = app
        .authed(Method::POST, "/v1/oauth/test/start")
        .json(&json!({"owner": "o"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn start_refuses_bad_requests_and_stores_nothing() {
    let (app, _oauth) = setup().await;
    let cases = [
        (
            "test",
            json!({"owner": "o", "return_to": "https://evil.test/x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "test",
            json!({"owner": "o", "return_to": format!("{TEST_RETURN_ORIGIN}.evil.test/x")}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "test",
            json!({"return_to": return_to()}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "test",
            json!({"owner": "o", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("missing", json!({"owner": "o"}), StatusCode::NOT_FOUND),
    ];
    for (provider, body, expected) in cases {
        let response = app
            .authed(Method::POST, &format!("/v1/oauth/{provider}/start"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let unauthenticated = app
        .client()
        .post(app.url("/v1/oauth/test/start"))
        .json(&json!({"owner": "o"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_callback_without_return_to_shows_a_page() {
    let (app, _oauth) = setup().await;
    let response = app
        .authed(Method::POST, "/v1/oauth/test/start")
        .json(&json!({"owner": "o", "login_hint": "ivan@example.test"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let callback = authorize(&app, body["authorize_url"].as_str().unwrap()).await;
    let response = deliver(&app, &callback).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_callback_headers(&response);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("ivan@example.test is connected")
    );
    assert_eq!(account_count(&app).await, 1);
}

#[tokio::test]
async fn deleting_an_account_removes_its_records() {
    let (app, oauth) = setup().await;
    let id = connect_mailbox(&app, "test", "o", "judy@example.test").await;
    // A synced message: metadata in the store, raw source in the blob store.
    let key = MessageKey::new("INBOX", 7, 42);
    let blob_key = key.blob_key(&id);
    let meta = MessageMeta {
        id: key.message_id(),
        account_id: id.clone(),
        folder: "INBOX".into(),
        uid_validity: 7,
        uid: 42,
        blob_key: blob_key.clone(),
        size: 5,
        ..Default::default()
    };
    app.services.repo.put_messages(&[meta]).await.unwrap();
    app.services
        .blobs
        .put(&blob_key, b"hello".to_vec().into())
        .await
        .unwrap();
    let response = app
        .authed(Method::DELETE, &format!("/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(app.services.repo.get_account(&id).await.unwrap().is_none());
    assert!(
        app.services
            .repo
            .get_message(&id, &key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(app.services.blobs.get(&blob_key).await.unwrap().is_none());
    let again = app
        .authed(Method::GET, &format!("/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    // The identity pointer went too: connecting again makes a new account.
    let new_id = connect_mailbox(&app, "test", "o", "judy@example.test").await;
    assert_ne!(new_id, id);
    assert_eq!(oauth.token_requests("authorization_code"), 2);
}

#[tokio::test]
async fn a_mailbox_connected_by_one_owner_is_refused_to_another() {
    let (app, _oauth) = setup().await;
    let id = connect_mailbox(&app, "test", "owner-a", "kim@example.test").await;
    let callback = authorize(
        &app,
        &start(&app, "test", "owner-b", "kim@example.test").await,
    )
    .await;
    let back = query(&location(&deliver(&app, &callback).await));
    assert_eq!(back["error"], "account_conflict");
    let stored = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(stored.owner, "owner-a");
    assert_eq!(account_count(&app).await, 1);
}

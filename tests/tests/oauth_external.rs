//! The test OAuth provider as the separate process `tests/run` starts (the one Dovecot
//! introspects against): its admin API, introspection, and a whole connect flow through it.

use mailroom_core::ExposeSecret;
use mailroom_core::ports::TokenError;
use mailroom_tests::app::TestApp;
use mailroom_tests::oauth_server::admin_client::OAuthAdmin;
use mailroom_tests::oauth_server::connect::{connect_mailbox, provider_settings_at, put_provider};
use serde_json::json;

/// An address no other test uses (the process is shared by parallel tests).
fn unique(name: &str) -> String {
    format!("{name}-{:08x}@example.test", rand::random::<u32>())
}

#[tokio::test]
async fn issued_tokens_introspect_until_expired_or_revoked() {
    let admin = OAuthAdmin::from_env();
    let email = unique("intro");
    let issued = admin
        .issue_with(json!({"email": email, "access_token_len": 5000}))
        .await;
    assert_eq!(
        issued.access_token.len(),
        5000,
        "long tokens, as Microsoft issues"
    );
    let active = admin.introspect(&issued.access_token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["email"], email.as_str());
    assert_eq!(active["username"], email.as_str());

    admin.expire(&email).await;
    assert_eq!(
        admin.introspect(&issued.access_token).await["active"],
        false
    );

    // Expired access, live refresh: a refresh works and its token is active.
    let http = reqwest::Client::new();
    let refreshed: serde_json::Value = http
        .post(format!("{}/token", admin.url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", issued.refresh_token.as_str()),
            ("client_id", "any-client"),
            ("client_secret", "test-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(admin.introspect(new_access).await["active"], true);

    admin.revoke(&email).await;
    assert_eq!(admin.introspect(new_access).await["active"], false);
    let refused = http
        .post(format!("{}/token", admin.url))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                refreshed["refresh_token"].as_str().unwrap(),
            ),
            ("client_id", "any-client"),
            ("client_secret", "test-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_codes"], json!([50173]));
}

#[tokio::test]
async fn a_mailbox_connects_through_the_external_provider() {
    let admin = OAuthAdmin::from_env();
    let app = TestApp::spawn().await;
    put_provider(&app, "ext", &provider_settings_at(&admin.url, 993, 587)).await;
    let email = unique("ext");
    let id = connect_mailbox(&app, "ext", "owner", &email).await;
    let grant = app.services.tokens.access_token(&id, false).await.unwrap();
    assert_eq!(grant.email, email);
    let introspected = admin.introspect(grant.access_token.expose_secret()).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["email"], email.as_str());

    admin.revoke(&email).await;
    let err = app
        .services
        .tokens
        .access_token(&id, true)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::ReauthRequired { .. }), "{err}");
}

//! The token source against the test OAuth provider: fresh tokens are reused, expiring ones are
//! refreshed with the rotated refresh token persisted, concurrent refreshes make one token call,
//! and each kind of failure lands on the right record. These run against an `oauth2` provider
//! (lease, every refresh stored); `oauth_token_policy.rs` covers the Microsoft and Google
//! policies and the counts.

use std::sync::Arc;

use mailroom_core::ExposeSecret;
use mailroom_core::domain::{AccountStatus, ProviderStatus};
use mailroom_core::ports::{TokenError, TokenSource};
use mailroom_oauth::OAuthTokenSource;
use mailroom_tests::app::TestApp;
use mailroom_tests::oauth_server::connect::{connect_mailbox, provider_settings, put_provider};
use mailroom_tests::oauth_server::{self, ForcedStatus, TestOAuthServer};
use reqwest::Method;
use serde_json::Value;

/// An app with provider `test` and one connected account whose access token lives `expires_in`.
async fn connected(expires_in: i64) -> (TestApp, TestOAuthServer, String) {
    let app = TestApp::spawn().await;
    let oauth = oauth_server::spawn().await;
    put_provider(&app, "test", &provider_settings(&oauth, 993, 587)).await;
    oauth.configure(|s| s.expires_in = expires_in);
    let id = connect_mailbox(&app, "test", "owner", "mia@example.test").await;
    oauth.configure(|s| s.expires_in = 3600);
    (app, oauth, id)
}

async fn account_json(app: &TestApp, id: &str) -> Value {
    app.authed(Method::GET, &format!("/v1/accounts/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fresh_token_is_handed_out_without_a_refresh() {
    let (app, oauth, id) = connected(3600).await;
    let stored = app.services.repo.get_account(&id).await.unwrap().unwrap();
    let grant = app.services.tokens.access_token(&id, false).await.unwrap();
    assert_eq!(grant.email, "mia@example.test");
    assert_eq!(
        grant.access_token.expose_secret(),
        stored.tokens.access_token.expose_secret()
    );
    assert_eq!(oauth.token_requests("refresh_token"), 0);
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_and_the_rotated_refresh_token_persisted() {
    // 30 s left is inside the 60 s margin.
    let (app, oauth, id) = connected(30).await;
    let before = app.services.repo.get_account(&id).await.unwrap().unwrap();
    let old_refresh = before.tokens.refresh_token.expose_secret().to_owned();

    let grant = app.services.tokens.access_token(&id, false).await.unwrap();
    assert_eq!(oauth.token_requests("refresh_token"), 1);
    assert_ne!(
        grant.access_token.expose_secret(),
        before.tokens.access_token.expose_secret()
    );
    assert!(oauth.access_token_active(grant.access_token.expose_secret()));

    let after = app.services.repo.get_account(&id).await.unwrap().unwrap();
    let new_refresh = after.tokens.refresh_token.expose_secret().to_owned();
    assert_ne!(
        new_refresh, old_refresh,
        "the rotated refresh token is stored"
    );
    assert!(oauth.refresh_token_live(&new_refresh));
    assert!(
        !oauth.refresh_token_live(&old_refresh),
        "the provider no longer accepts the old one"
    );
    assert_eq!(
        after.tokens.access_token.expose_secret(),
        grant.access_token.expose_secret()
    );
    assert!(after.tokens.access_expires_at > before.tokens.access_expires_at);

    // The stored token is fresh now: no second refresh.
    app.services.tokens.access_token(&id, false).await.unwrap();
    assert_eq!(oauth.token_requests("refresh_token"), 1);
}

#[tokio::test]
async fn force_refresh_replaces_a_rejected_token() {
    let (app, oauth, id) = connected(3600).await;
    let first = app.services.tokens.access_token(&id, false).await.unwrap();
    oauth.expire("mia@example.test");
    let second = app.services.tokens.access_token(&id, true).await.unwrap();
    assert_ne!(
        first.access_token.expose_secret(),
        second.access_token.expose_secret()
    );
    assert!(oauth.access_token_active(second.access_token.expose_secret()));
    assert_eq!(oauth.token_requests("refresh_token"), 1);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_account_make_one_token_request() {
    let (app, oauth, id) = connected(30).await;
    // Slow token endpoint, so both callers are in flight at once.
    oauth.configure(|s| s.token_delay_ms = 400);
    // Two token sources over the same store stand for two processes.
    let a = Arc::new(OAuthTokenSource::new(
        app.services.repo.clone(),
        app.services.http.clone(),
    ));
    let b = Arc::new(OAuthTokenSource::new(
        app.services.repo.clone(),
        app.services.http.clone(),
    ));
    let (ra, rb) = tokio::join!(a.access_token(&id, false), b.access_token(&id, false));
    let (ga, gb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(oauth.token_requests("refresh_token"), 1);
    assert_eq!(
        ga.access_token.expose_secret(),
        gb.access_token.expose_secret()
    );
    let stored = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert!(oauth.refresh_token_live(stored.tokens.refresh_token.expose_secret()));
}

#[tokio::test]
async fn a_revoked_refresh_token_marks_the_account_reauth_required() {
    let (app, oauth, id) = connected(30).await;
    oauth.revoke("mia@example.test");
    let err = app
        .services
        .tokens
        .access_token(&id, false)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::ReauthRequired { .. }), "{err}");
    assert!(!err.is_retryable());
    let stored = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, AccountStatus::ReauthRequired);
    let reason = stored.status_reason.unwrap();
    assert!(reason.starts_with("invalid_grant"), "{reason}");
    assert!(reason.contains("AADSTS50173"), "{reason}");
    let view = account_json(&app, &id).await;
    assert_eq!(view["status"], "reauth_required");
    // Known dead: later calls do not bother the provider again.
    let again = app
        .services
        .tokens
        .access_token(&id, false)
        .await
        .unwrap_err();
    assert!(matches!(again, TokenError::ReauthRequired { .. }));
    assert_eq!(oauth.token_requests("refresh_token"), 1);
}

#[tokio::test]
async fn a_rejected_client_marks_the_provider_not_the_account() {
    let (app, oauth, id) = connected(30).await;
    oauth.configure(|s| {
        s.token_endpoint_status = Some(ForcedStatus::Error("invalid_client".into()))
    });
    let err = app
        .services
        .tokens
        .access_token(&id, false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TokenError::AdminActionRequired { .. }),
        "{err}"
    );
    let provider = app
        .services
        .repo
        .get_provider("test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(provider.status, ProviderStatus::NeedsAdminAction);
    assert!(
        provider
            .status_reason
            .unwrap()
            .contains("client secret has expired")
    );
    let account = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(account.status, AccountStatus::Active);
    let view: Value = app
        .authed(Method::GET, "/v1/providers/test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "needs_admin_action");

    // An admin saving the settings again clears the flag and refreshes work again.
    oauth.configure(|s| s.token_endpoint_status = None);
    put_provider(&app, "test", &provider_settings(&oauth, 993, 587)).await;
    app.services.tokens.access_token(&id, false).await.unwrap();
    assert_eq!(oauth.token_requests("refresh_token"), 2);
}

#[tokio::test]
async fn provider_outages_change_nothing_and_are_retryable() {
    let (app, oauth, id) = connected(30).await;
    let before = app.services.repo.get_account(&id).await.unwrap().unwrap();
    oauth.configure(|s| s.token_endpoint_status = Some(ForcedStatus::Code(503)));
    let err = app
        .services
        .tokens
        .access_token(&id, false)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    let after = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(after.status, AccountStatus::Active);
    assert_eq!(after.version, before.version, "the account was not written");
    let provider = app
        .services
        .repo
        .get_provider("test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(provider.status, ProviderStatus::Ok);

    // An unreachable endpoint is transient too.
    drop(oauth);
    let err = app
        .services
        .tokens
        .access_token(&id, false)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let after = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(after.version, before.version);
}

#[tokio::test]
async fn unknown_accounts_are_not_found() {
    let app = TestApp::spawn().await;
    let err = app
        .services
        .tokens
        .access_token("acc_missing", false)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::NotFound { .. }));
}

#[tokio::test]
async fn reconnecting_after_reauth_required_makes_the_account_usable_again() {
    let (app, oauth, id) = connected(30).await;
    oauth.revoke("mia@example.test");
    app.services
        .tokens
        .access_token(&id, false)
        .await
        .unwrap_err();
    let again = connect_mailbox(&app, "test", "owner", "mia@example.test").await;
    assert_eq!(
        again, id,
        "the same identity comes back to the same account"
    );
    let stored = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, AccountStatus::Active);
    assert!(stored.status_reason.is_none());
    let grant = app.services.tokens.access_token(&id, false).await.unwrap();
    assert!(oauth.access_token_active(grant.access_token.expose_secret()));
}

#[tokio::test]
async fn a_provider_that_does_not_rotate_keeps_the_stored_refresh_token() {
    let (app, oauth, id) = connected(30).await;
    oauth.configure(|s| s.rotate_refresh_token = false);
    let before = app.services.repo.get_account(&id).await.unwrap().unwrap();
    let grant = app.services.tokens.access_token(&id, false).await.unwrap();
    assert!(oauth.access_token_active(grant.access_token.expose_secret()));
    let after = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(
        after.tokens.refresh_token.expose_secret(),
        before.tokens.refresh_token.expose_secret()
    );
    assert!(oauth.refresh_token_live(after.tokens.refresh_token.expose_secret()));
}

#[tokio::test]
async fn deleted_provider_settings_need_an_admin() {
    let (app, oauth, id) = connected(30).await;
    let response = app
        .authed(Method::DELETE, "/v1/providers/test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
    let err = app
        .services
        .tokens
        .access_token(&id, false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TokenError::AdminActionRequired { .. }),
        "{err}"
    );
    assert_eq!(oauth.token_requests("refresh_token"), 0);
    let account = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(account.status, AccountStatus::Active);
}

#[tokio::test]
async fn a_process_reads_its_provider_settings_once_for_many_refreshes() {
    let (app, counters) = TestApp::spawn_counting().await;
    let oauth = oauth_server::spawn().await;
    put_provider(&app, "test", &provider_settings(&oauth, 993, 587)).await;
    let id = connect_mailbox(&app, "test", "owner", "mia@example.test").await;

    let mut reads = Vec::new();
    for _ in 0..3 {
        let before = counters.snapshot();
        app.services.tokens.access_token(&id, true).await.unwrap();
        let spent = counters.snapshot().since(&before);
        reads.push(spent.store_reads + spent.store_stale_reads);
    }
    assert_eq!(oauth.token_requests("refresh_token"), 3);
    // The first refresh read the provider settings; the next ones use this process's copy.
    assert_eq!(reads[1] + 1, reads[0], "reads per refresh: {reads:?}");
    assert_eq!(reads[2], reads[1], "reads per refresh: {reads:?}");
}

#[tokio::test]
async fn a_rotated_client_secret_is_read_again_and_the_provider_is_not_flagged() {
    let (app, oauth, id) = connected(30).await;
    // This process refreshes once: it now holds the provider settings with the old secret.
    app.services.tokens.access_token(&id, false).await.unwrap();

    // The admin rotates the secret: the provider takes only the new one, the settings say it.
    oauth.register_client("mailroom-test", "rotated-secret");
    let mut settings = provider_settings(&oauth, 993, 587);
    settings["client_secret"] = "rotated-secret".into();
    put_provider(&app, "test", &settings).await;

    let grant = app.services.tokens.access_token(&id, true).await.unwrap();
    assert!(oauth.access_token_active(grant.access_token.expose_secret()));
    // The old secret was refused once, then the settings read again worked.
    assert_eq!(oauth.stats().token_errors.get("invalid_client"), Some(&1));
    assert_eq!(oauth.token_requests("refresh_token"), 3);
    let provider = app
        .services
        .repo
        .get_provider("test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(provider.status, ProviderStatus::Ok, "not flagged");
    let account = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(account.status, AccountStatus::Active);
}

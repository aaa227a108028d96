//! What keeping a mailbox's access token fresh costs, per provider kind, counted at the test
//! OAuth provider (token requests) and at the store (requests, through the counting decorator):
//! tokens are reused from memory within their lifetime, one process makes one refresh for many
//! callers, Microsoft's rotated refresh token is written at most once a day and still works
//! after a cold start, Google's only when it changes, and generic OAuth2 keeps storing every
//! rotation under its lease.

use std::sync::Arc;

use mailroom_core::ExposeSecret;
use mailroom_core::domain::AccountStatus;
use mailroom_core::ports::{TokenError, TokenSource};
use mailroom_core::records::{REFRESH_TOKEN_STORED_AT, refresh_token_stored_at};
use mailroom_core::time::now_unix;
use mailroom_oauth::{MICROSOFT_PERSIST_AFTER_SECONDS, OAuthTokenSource, RefreshPolicy};
use mailroom_tests::app::TestApp;
use mailroom_tests::counting::{Counters, Counts};
use mailroom_tests::oauth_server::connect::{connect_mailbox, put_provider};
use mailroom_tests::oauth_server::{self, DEFAULT_CLIENT_SECRET, TestOAuthServer};
use serde_json::{Value, json};

/// A Microsoft access token is over 4 KB since mid-2025.
const MICROSOFT_TOKEN_LEN: usize = 4200;

struct Setup {
    app: TestApp,
    oauth: TestOAuthServer,
    counters: Arc<Counters>,
    id: String,
}

impl Setup {
    /// An app over a counting store with provider `p` of `kind` at the test provider, and one
    /// connected account whose first access token lives `expires_in`.
    async fn new(kind: &str, expires_in: i64) -> Setup {
        let (app, counters) = TestApp::spawn_counting().await;
        let oauth = oauth_server::spawn().await;
        let url = oauth.url().to_owned();
        let settings = json!({
            "kind": kind,
            "client_id": "mailroom-test",
            "client_secret": DEFAULT_CLIENT_SECRET,
            "authorize_url": format!("{url}/authorize"),
            "token_url": format!("{url}/token"),
            "imap": {"host": "127.0.0.1", "port": 993, "tls": "implicit"},
            "smtp": {"host": "127.0.0.1", "port": 587, "tls": "starttls"},
        });
        let settings = if kind == "oauth2" {
            let mut s = settings;
            s["scopes"] = json!(oauth_server::connect::TEST_SCOPES);
            s
        } else {
            settings
        };
        put_provider(&app, "p", &settings).await;
        oauth.configure(|s| {
            s.expires_in = expires_in;
            if kind == "microsoft" {
                s.access_token_len = MICROSOFT_TOKEN_LEN;
                s.keep_old_refresh_tokens = true;
            }
            if kind == "google" {
                s.rotate_refresh_token = false;
            }
        });
        let id = connect_mailbox(&app, "p", "owner", "tom@example.test").await;
        oauth.configure(|s| s.expires_in = 3600);
        Setup {
            app,
            oauth,
            counters,
            id,
        }
    }

    /// A token source with no memory: a cold process.
    fn cold_source(&self) -> OAuthTokenSource {
        OAuthTokenSource::new(
            self.app.services.repo.clone(),
            self.app.services.http.clone(),
        )
    }

    fn counts(&self) -> Counts {
        self.counters.snapshot()
    }

    fn refreshes(&self) -> u64 {
        self.oauth.token_requests("refresh_token")
    }

    async fn stored(&self) -> mailroom_core::domain::Account {
        self.app
            .services
            .repo
            .get_account(&self.id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Bytes of the stored account item: attribute names and values, sealed fields, keys (what
    /// DynamoDB bills a write by, 1 WRU per started KB).
    async fn item_bytes(&self) -> usize {
        let key = mailroom_core::ports::ItemKey {
            pk: format!("ACCOUNT#{}", self.id),
            sk: "META".into(),
        };
        let item = self
            .app
            .services
            .repo
            .store()
            .get(&key)
            .await
            .unwrap()
            .unwrap();
        let attributes: usize = item
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.to_string().len())
            .sum();
        let sealed: usize = item.sealed.iter().map(|(k, v)| k.len() + v.len()).sum();
        attributes + sealed + key.pk.len() + key.sk.len()
    }

    /// Makes the stored refresh token look `age` seconds old (simulated time).
    async fn age_refresh_token(&self, age: i64) {
        let mut a = self.stored().await;
        a.extra
            .insert(REFRESH_TOKEN_STORED_AT.into(), json!(now_unix() - age));
        self.app.services.repo.update_account(&mut a).await.unwrap();
    }
}

async fn token(source: &OAuthTokenSource, id: &str, force: bool) -> String {
    source
        .access_token(id, force)
        .await
        .expect("an access token")
        .access_token
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn sequential_requests_within_the_lifetime_refresh_once_and_write_nothing() {
    for kind in ["microsoft", "google"] {
        // The connect flow's token is nearly expired: the first request refreshes.
        let s = Setup::new(kind, 30).await;
        let source = s.cold_source();
        let before = s.counts();
        let first = token(&source, &s.id, false).await;
        for _ in 0..10 {
            assert_eq!(token(&source, &s.id, false).await, first, "{kind}");
        }
        let used = s.counts().since(&before);
        assert_eq!(s.refreshes(), 1, "{kind}: one refresh");
        assert_eq!(used.store_writes, 0, "{kind}: nothing written");
        assert_eq!(
            used.store_reads, 2,
            "{kind}: the account and the provider, once"
        );
        assert!(s.oauth.access_token_active(&first));
    }
}

#[tokio::test]
async fn the_generic_kind_still_writes_every_refresh_under_its_lease() {
    let s = Setup::new("oauth2", 30).await;
    let source = s.cold_source();
    let before = s.counts();
    let first = token(&source, &s.id, false).await;
    for _ in 0..10 {
        assert_eq!(token(&source, &s.id, false).await, first);
    }
    assert_eq!(s.refreshes(), 1);
    // Lease put, account write, lease delete: once, not per request.
    assert_eq!(s.counts().since(&before).store_writes, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_in_one_process_make_one_refresh() {
    for kind in ["microsoft", "oauth2"] {
        let s = Setup::new(kind, 30).await;
        s.oauth.configure(|o| o.token_delay_ms = 300);
        let source = Arc::new(s.cold_source());
        let before = s.counts();
        let calls = (0..20).map(|_| {
            let (source, id) = (source.clone(), s.id.clone());
            async move { token(&source, &id, false).await }
        });
        let tokens = futures::future::join_all(calls).await;
        assert_eq!(s.refreshes(), 1, "{kind}: one token request");
        assert!(tokens.iter().all(|t| t == &tokens[0]), "{kind}: one token");
        let writes = s.counts().since(&before).store_writes;
        assert_eq!(writes, if kind == "microsoft" { 0 } else { 3 }, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_queued_behind_a_failed_refresh_share_its_error() {
    let s = Setup::new("microsoft", 30).await;
    s.oauth.configure(|o| {
        o.token_delay_ms = 300;
        o.token_endpoint_status = Some(oauth_server::ForcedStatus::Code(503));
    });
    let source = Arc::new(s.cold_source());
    let calls = (0..20).map(|_| {
        let (source, id) = (source.clone(), s.id.clone());
        async move { source.access_token(&id, false).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.is_retryable()))
    );
    assert_eq!(s.refreshes(), 1, "one token request for all of them");
    assert_eq!(s.stored().await.status, AccountStatus::Active);
    // Later callers try again.
    s.oauth.configure(|o| o.token_endpoint_status = None);
    token(&source, &s.id, false).await;
    assert_eq!(s.refreshes(), 2);
}

#[tokio::test]
async fn microsoft_stores_a_rotated_refresh_token_at_most_once_a_day() {
    let s = Setup::new("microsoft", 3600).await;
    let connected = s.stored().await;
    let source = s.cold_source();
    // The access token from the connect flow is reused; a rejected one is replaced (forced).
    assert_eq!(
        token(&source, &s.id, false).await,
        connected.tokens.access_token.expose_secret()
    );
    let before = s.counts();
    for _ in 0..3 {
        token(&source, &s.id, true).await;
    }
    assert_eq!(s.refreshes(), 3);
    assert_eq!(
        s.counts().since(&before).store_writes,
        0,
        "stored one is fresh"
    );
    assert_eq!(s.stored().await.version, connected.version);

    // A day later (simulated): the next rotation is stored, once.
    s.age_refresh_token(MICROSOFT_PERSIST_AFTER_SECONDS + 60)
        .await;
    let aged = s.stored().await;
    let before = s.counts();
    for _ in 0..3 {
        token(&source, &s.id, true).await;
    }
    assert_eq!(s.refreshes(), 6);
    assert_eq!(s.counts().since(&before).store_writes, 1, "one write a day");
    let after = s.stored().await;
    assert_eq!(after.version, aged.version + 1);
    assert_ne!(
        after.tokens.refresh_token.expose_secret(),
        aged.tokens.refresh_token.expose_secret()
    );
    assert!(refresh_token_stored_at(&after) >= now_unix() - 60);
    assert!(
        after.tokens.access_token.expose_secret().is_empty(),
        "the access token is not kept in the store"
    );

    // A cold process refreshes with the stored (older, still valid) refresh token.
    let cold = s.cold_source();
    let before = s.counts();
    let fresh = token(&cold, &s.id, false).await;
    assert!(s.oauth.access_token_active(&fresh));
    assert_eq!(s.refreshes(), 7);
    assert_eq!(s.counts().since(&before).store_writes, 0);
    assert_eq!(s.stored().await.status, AccountStatus::Active);
}

#[tokio::test]
async fn a_conflicting_write_leaves_the_stored_microsoft_token_working() {
    let s = Setup::new("microsoft", 30).await;
    s.age_refresh_token(MICROSOFT_PERSIST_AFTER_SECONDS + 60)
        .await;
    let aged = s.stored().await;
    // Another writer (a sync) changes the account while the token request is at the provider
    // (it is delayed there), after the token source read the account.
    s.oauth.configure(|o| o.token_delay_ms = 500);
    let source = s.cold_source();
    let (grant, ()) = tokio::join!(source.access_token(&s.id, false), async {
        for _ in 0..2000 {
            if s.refreshes() > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(s.refreshes(), 1, "the token request reached the provider");
        let mut a = s.stored().await;
        a.last_error = Some("a sync wrote meanwhile".into());
        s.app.services.repo.update_account(&mut a).await.unwrap();
    });
    assert!(
        s.oauth
            .access_token_active(grant.unwrap().access_token.expose_secret())
    );
    // The conditional write lost: the other writer's change stays, so does the aged refresh
    // token, which still works.
    let stored = s.stored().await;
    assert_eq!(stored.last_error.as_deref(), Some("a sync wrote meanwhile"));
    assert_eq!(stored.version, aged.version + 1);
    assert_eq!(
        stored.tokens.refresh_token.expose_secret(),
        aged.tokens.refresh_token.expose_secret()
    );
    s.oauth.configure(|o| o.token_delay_ms = 0);
    token(&s.cold_source(), &s.id, false).await;
    assert_eq!(s.refreshes(), 2);
    // That refresh found the stored token still old and stored its rotation.
    let after = s.stored().await;
    assert_eq!(after.version, stored.version + 1);
    assert!(
        s.oauth
            .refresh_token_live(after.tokens.refresh_token.expose_secret())
    );
}

#[tokio::test]
async fn google_stores_a_refresh_token_only_when_a_different_one_comes_back() {
    let s = Setup::new("google", 3600).await;
    let source = s.cold_source();
    let connected = s.stored().await;
    let before = s.counts();
    token(&source, &s.id, true).await;
    assert_eq!(
        s.counts().since(&before).store_writes,
        0,
        "no new refresh token"
    );
    s.oauth.configure(|o| o.rotate_refresh_token = true);
    token(&source, &s.id, true).await;
    let after = s.stored().await;
    assert_eq!(after.version, connected.version + 1);
    assert_ne!(
        after.tokens.refresh_token.expose_secret(),
        connected.tokens.refresh_token.expose_secret()
    );
    assert!(
        s.oauth
            .refresh_token_live(after.tokens.refresh_token.expose_secret())
    );
}

#[tokio::test]
async fn generic_oauth2_stores_every_rotation_and_the_old_one_dies() {
    let s = Setup::new("oauth2", 3600).await;
    let source = s.cold_source();
    for round in 1..=3 {
        let before = s.stored().await;
        token(&source, &s.id, true).await;
        let after = s.stored().await;
        assert_eq!(after.version, before.version + 1, "round {round}");
        let (old, new) = (
            before.tokens.refresh_token.expose_secret(),
            after.tokens.refresh_token.expose_secret(),
        );
        assert_ne!(old, new);
        assert!(!s.oauth.refresh_token_live(old), "rotated away");
        assert!(s.oauth.refresh_token_live(new));
    }
    token(&s.cold_source(), &s.id, true).await;
    assert_eq!(s.refreshes(), 4);
}

#[tokio::test]
async fn a_revoked_microsoft_grant_still_marks_the_account_reauth_required() {
    let s = Setup::new("microsoft", 3600).await;
    let source = s.cold_source();
    token(&source, &s.id, false).await;
    s.oauth.revoke("tom@example.test");
    let err = source.access_token(&s.id, true).await.unwrap_err();
    assert!(matches!(err, TokenError::ReauthRequired { .. }), "{err}");
    let stored = s.stored().await;
    assert_eq!(stored.status, AccountStatus::ReauthRequired);
    assert!(stored.status_reason.unwrap().starts_with("invalid_grant"));
    // Known dead: neither this process nor a cold one asks the provider again.
    for source in [&source, &s.cold_source()] {
        let again = source.access_token(&s.id, false).await.unwrap_err();
        assert!(matches!(again, TokenError::ReauthRequired { .. }));
    }
    assert_eq!(s.refreshes(), 1);
    assert!(
        !err.to_string()
            .contains(stored.tokens.refresh_token.expose_secret())
    );
}

/// Figures for COST.md: per refresh and per account-hour (12 polls at 5 minutes, a 60-minute
/// token), today's policies against the old behaviour (every refresh written, access token
/// included, under a lease: the `Invalidating` policy forced on a Microsoft-like provider).
#[tokio::test]
async fn measure_refresh_cost_per_account_hour() {
    let mut rows: Vec<Value> = Vec::new();
    for (name, kind, policy) in [
        (
            "before (lease + full write)",
            "microsoft",
            Some(RefreshPolicy::Invalidating),
        ),
        ("microsoft", "microsoft", None),
        ("google", "google", None),
        ("oauth2", "oauth2", None),
    ] {
        let s = Setup::new(kind, 30).await;
        let mut source = s.cold_source();
        if let Some(p) = policy {
            source = source.with_policy(p);
        }
        let bytes_connected = s.item_bytes().await;
        let before = s.counts();
        for _ in 0..12 {
            token(&source, &s.id, false).await;
        }
        let used = s.counts().since(&before);
        rows.push(json!({
            "policy": name,
            "token_requests": s.refreshes(),
            "store_writes": used.store_writes,
            "store_reads": used.store_reads,
            "account_item_bytes_at_connect": bytes_connected,
            "account_item_bytes_after": s.item_bytes().await,
        }));
        assert_eq!(s.refreshes(), 1, "{name}");
        if name == "microsoft" {
            // The once-a-day write of the rotated refresh token (simulated day).
            s.age_refresh_token(MICROSOFT_PERSIST_AFTER_SECONDS + 60)
                .await;
            let before = s.counts();
            token(&source, &s.id, true).await;
            let used = s.counts().since(&before);
            rows.push(json!({
                "policy": "microsoft, first refresh after a day",
                "token_requests": s.refreshes() - 1,
                "store_writes": used.store_writes,
                "store_reads": used.store_reads,
                "account_item_bytes_after": s.item_bytes().await,
            }));
            assert_eq!(used.store_writes, 1);
        }
    }
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&rows).unwrap_or_default()
    );
    assert_eq!(rows[0]["store_writes"], 3);
    assert_eq!(rows[1]["store_writes"], 0);
}

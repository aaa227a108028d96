//! Store and key-service faults, injected by decorators around the real embedded backends:
//! KMS unavailable, DynamoDB-style throttling, lost conditional races. Each ends with a clean,
//! retryable error; nothing half-written (no account without its pointers), no plaintext written
//! when encryption fails, and the rotated refresh token is never lost to a store hiccup.

use std::sync::{Arc, OnceLock};

use mailroom_core::ExposeSecret;
use mailroom_core::domain::AccountStatus;
use mailroom_tests::app::TestApp;
use mailroom_tests::faults::{BrokenKeys, BrokenStore, KeyFault, StoreErrorKind, StoreFault};
use mailroom_tests::oauth_server::connect::{
    authorize, connect_mailbox, deliver, location, provider_settings, put_provider, query, start,
};
use mailroom_tests::oauth_server::{self, TestOAuthServer};
use reqwest::Method;
use serde_json::Value;

struct Broken {
    app: TestApp,
    store: BrokenStore,
    keys: BrokenKeys,
    oauth: TestOAuthServer,
}

async fn broken() -> Broken {
    let slot: Arc<OnceLock<(BrokenStore, BrokenKeys)>> = Arc::default();
    let s = slot.clone();
    let app = TestApp::spawn_wrapped(&[("MAILROOM_DATA_KEY_CACHE_SECONDS", "1")], move |mut b| {
        let store = BrokenStore::new(b.store);
        let keys = BrokenKeys::new(b.keys);
        b.store = Arc::new(store.clone());
        b.keys = Arc::new(keys.clone());
        let _ = s.set((store, keys));
        b
    })
    .await;
    let (store, keys) = slot.get().expect("decorators installed").clone();
    let oauth = oauth_server::spawn().await;
    put_provider(&app, "test", &provider_settings(&oauth, 993, 587)).await;
    Broken {
        app,
        store,
        keys,
        oauth,
    }
}

async fn problem(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    (status, retry, response.json().await.unwrap())
}

async fn account_count(app: &TestApp) -> usize {
    app.services
        .repo
        .list_accounts(None, None, 100)
        .await
        .unwrap()
        .0
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_unavailable_refuses_writes_cleanly_and_writes_no_plaintext() {
    let b = broken().await;
    // A flow started before the outage (its state was sealed while KMS worked).
    b.keys.set(KeyFault::default());
    let authorize_url = start(&b.app, "test", "o", "kms@example.test").await;
    let callback = authorize(&b.app, &authorize_url).await;
    b.keys.set(KeyFault {
        generate: true,
        unwrap: false,
    });
    // One data key seals every record for MAILROOM_DATA_KEY_CACHE_SECONDS (1 s here): once the
    // key that sealed the flow's state has expired, sealing needs KMS again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let written_before = b.store.written().len();
    // A new provider's secret cannot be sealed: 503, nothing stored.
    let mut settings = provider_settings(&b.oauth, 993, 587);
    settings["client_secret"] = "plaintext-client-secret-42".into();
    let response = b
        .app
        .authed(Method::PUT, "/v1/providers/new-one")
        .json(&settings)
        .send()
        .await
        .unwrap();
    let (status, retry, body) = problem(response).await;
    assert_eq!((status, retry.as_deref()), (503, Some("2")), "{body}");
    assert_eq!(body["type"], "urn:mailroom:problem:unavailable");
    assert!(
        b.app
            .services
            .repo
            .get_provider("new-one")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(b.store.written().len(), written_before, "nothing written");

    // A connect whose tokens cannot be sealed: reported, and no account (or pointer) is left.
    let written_before = b.store.written().len();
    let response = deliver(&b.app, &callback).await;
    let back = query(&location(&response));
    assert_eq!(back["error"], "server_error", "{back:?}");
    assert_eq!(account_count(&b.app).await, 0);
    let written: Vec<_> = b.store.written()[written_before..].to_vec();
    assert!(
        written.is_empty(),
        "no half-written account: {:?}",
        written.iter().map(|i| &i.key).collect::<Vec<_>>()
    );

    // KMS back: the same requests work.
    b.keys.set(KeyFault::default());
    let response = b
        .app
        .authed(Method::PUT, "/v1/providers/new-one")
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = connect_mailbox(&b.app, "test", "o", "kms@example.test").await;
    assert!(
        b.app
            .services
            .repo
            .get_account(&id)
            .await
            .unwrap()
            .is_some()
    );
    for item in b.store.written() {
        let plain = serde_json::to_string(&item.attributes).unwrap();
        assert!(!plain.contains("plaintext-client-secret-42"));
        for sealed in item.sealed.values() {
            assert!(
                !sealed
                    .windows(26)
                    .any(|w| w == b"plaintext-client-secret-42")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_store_is_a_retryable_503_and_a_failed_create_leaves_nothing() {
    let b = broken().await;
    b.store.set(StoreFault::throttle_all());
    for path in ["/v1/accounts", "/v1/providers", "/v1/health"] {
        let (status, retry, body) =
            problem(b.app.authed(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(
            (status, retry.as_deref()),
            (503, Some("2")),
            "{path}: {body}"
        );
    }
    b.store.clear();

    // The account, its listing and its identity pointer are one atomic write: when it fails,
    // none of them exists.
    let authorize_url = start(&b.app, "test", "o", "atomic@example.test").await;
    let callback = authorize(&b.app, &authorize_url).await;
    let failed_before = b.store.failed_calls();
    b.store
        .set(StoreFault::on(&["write_atomic"], StoreErrorKind::Throttled).times(1));
    let back = query(&location(&deliver(&b.app, &callback).await));
    assert_eq!(back["error"], "server_error", "{back:?}");
    assert_eq!(b.store.failed_calls(), failed_before + 1);
    assert_eq!(account_count(&b.app).await, 0);
    assert!(
        b.store
            .written()
            .iter()
            .all(|i| !i.key.pk.starts_with("ACCOUNT") && !i.key.pk.starts_with("IDENTITY")),
        "nothing of the account was written"
    );
    // Connecting again works and creates exactly one account.
    connect_mailbox(&b.app, "test", "o", "atomic@example.test").await;
    assert_eq!(account_count(&b.app).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_hiccup_after_a_refresh_does_not_lose_the_rotated_token() {
    let b = broken().await;
    b.oauth.configure(|s| s.expires_in = 30);
    let id = connect_mailbox(&b.app, "test", "o", "rot@example.test").await;
    b.oauth.configure(|s| s.expires_in = 3600);
    // The provider rotates the refresh token; the first write of the refreshed account fails.
    b.store.set(
        StoreFault::on(&["put"], StoreErrorKind::Throttled)
            .under("ACCOUNT#")
            .sort_key("META")
            .times(1),
    );
    let grant = b.app.services.tokens.access_token(&id, false).await;
    assert_eq!(b.store.failed_calls(), 1, "the fault fired");
    let stored = b.app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert!(
        b.oauth
            .refresh_token_live(stored.tokens.refresh_token.expose_secret()),
        "the stored refresh token is the live, rotated one"
    );
    let grant = grant.expect("the refresh succeeded despite one failed write");
    assert_eq!(
        grant.access_token.expose_secret(),
        stored.tokens.access_token.expose_secret()
    );
    // And the account keeps working.
    let again = b.app.services.tokens.access_token(&id, true).await.unwrap();
    assert!(
        b.oauth
            .access_token_active(again.access_token.expose_secret())
    );
    assert_eq!(
        b.app
            .services
            .repo
            .get_account(&id)
            .await
            .unwrap()
            .unwrap()
            .status,
        AccountStatus::Active
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_that_fails_midway_can_be_retried_to_the_end() {
    let b = broken().await;
    let id = connect_mailbox(&b.app, "test", "o", "del@example.test").await;
    b.store
        .set(StoreFault::on(&["write_atomic"], StoreErrorKind::Unavailable).times(1));
    let response = b
        .app
        .authed(Method::DELETE, &format!("/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    let (status, _, _) = problem(response).await;
    assert_eq!(status, 503);
    // The account is still there and usable: the delete can be retried.
    let show = b
        .app
        .authed(Method::GET, &format!("/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(show.status(), 200);
    let response = b
        .app
        .authed(Method::DELETE, &format!("/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(
        b.app
            .services
            .repo
            .get_account(&id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.app
            .services
            .repo
            .find_account_by_identity("test", "x")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(account_count(&b.app).await, 0);
}

mod sync_support;

/// A sync whose message write is throttled mid-run stops with a store error (the job is
/// retried); the cursor never runs ahead of what is stored, and the next run is exact. Lost
/// conditional races on the account record are re-read and applied again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_during_a_sync_lose_and_duplicate_nothing() {
    use mailroom_mail::sync::{SyncError, SyncOutcome, SyncSettings};
    use std::collections::HashSet;
    use std::time::Duration;
    use sync_support::{Mailbox, deliver, message};

    let mbox = Mailbox::create(None, None, serde_json::json!({"sync_folders": ["INBOX"]})).await;
    let mail: Vec<_> = (0..30).map(|i| message("store", i, 3)).collect();
    deliver(&mbox.email, &mail).await;
    let store = BrokenStore::new(mbox.app.services.repo.store().clone());
    let settings = SyncSettings {
        batch_size: 5,
        ..SyncSettings::default()
    };
    let engine = mbox.engine_over(std::sync::Arc::new(store.clone()), settings, None);
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(60);

    // The third batch's metadata write is throttled.
    store.set(
        StoreFault::on(&["put_many"], StoreErrorKind::Throttled)
            .after(2)
            .times(1),
    );
    let result = engine.sync_account(&mbox.account_id, deadline()).await;
    assert!(
        matches!(result, Err(SyncError::Store(_))),
        "a store failure is a retry, not a recorded outcome: {result:?}"
    );
    let stored = mbox.stored("INBOX").await;
    assert!(
        !stored.is_empty() && stored.len() < 30,
        "stored {} before the fault",
        stored.len()
    );
    let uids: HashSet<u32> = stored.iter().map(|m| m.uid).collect();
    let cursors = mbox
        .app
        .services
        .repo
        .folder_cursors(&mbox.account_id)
        .await
        .unwrap();
    let cursor = cursors.first().expect("a cursor");
    // The backfill walks down from the top: everything from its cursor up is really stored.
    assert!(cursor.backfill_below > 0, "the backfill is unfinished");
    for uid in cursor.backfill_below..=30 {
        assert!(
            uids.contains(&uid),
            "UID {uid} is behind the cursor but not stored"
        );
    }

    // Two lost races on the account record when the outcome is written: re-read and applied.
    store.set(
        StoreFault::on(&["put"], StoreErrorKind::ConditionFailed)
            .under("ACCOUNT#")
            .sort_key("META")
            .times(2),
    );
    let outcome = engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Synced(r) if r.complete),
        "{outcome:?}"
    );
    let stored = mbox.stored("INBOX").await;
    let ids: HashSet<_> = stored.iter().map(|m| m.message_id_header.clone()).collect();
    assert_eq!((stored.len(), ids.len()), (30, 30), "none lost, none twice");
    let account = mbox.account().await;
    assert!(
        account.last_sync_at.is_some(),
        "the outcome was recorded despite the races"
    );
    assert_eq!(account.failure_count, 0);
}

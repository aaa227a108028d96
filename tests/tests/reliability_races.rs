//! Races: many concurrent token refreshes of one account across several processes, several sync
//! workers started on one account at once, and an account deleted while its sync is running.
//! (Concurrent sends with one idempotency key are proven in `send_idempotency.rs`.)

mod sync_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mailroom_core::ExposeSecret;
use mailroom_core::ports::{QueryRange, TokenSource};
use mailroom_core::records::{MessageKey, message_blob_prefix};
use mailroom_mail::sync::SyncOutcome;
use mailroom_oauth::OAuthTokenSource;
use mailroom_tests::app::TestApp;
use mailroom_tests::faults::{FaultProxy, Plan, Upstream, blob_files};
use mailroom_tests::oauth_server::connect::{connect_mailbox, provider_settings, put_provider};
use mailroom_tests::oauth_server::{self};
use reqwest::Method;
use serde_json::json;
use sync_support::{Mailbox, deadline, deliver, message, servers, settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_refreshes_make_one_token_request_and_persist_the_rotation() {
    let app = TestApp::spawn().await;
    let oauth = oauth_server::spawn().await;
    put_provider(&app, "test", &provider_settings(&oauth, 993, 587)).await;
    oauth.configure(|s| s.expires_in = 30);
    let id = connect_mailbox(&app, "test", "owner", "race@example.test").await;
    oauth.configure(|s| {
        s.expires_in = 3600;
        s.token_delay_ms = 300;
    });
    let before = app.services.repo.get_account(&id).await.unwrap().unwrap();

    // Four token sources over one store stand for four processes; five callers each.
    let sources: Vec<Arc<OAuthTokenSource>> = (0..4)
        .map(|_| {
            Arc::new(OAuthTokenSource::new(
                app.services.repo.clone(),
                app.services.http.clone(),
            ))
        })
        .collect();
    let calls = (0..20).map(|i| {
        let source = sources[i % 4].clone();
        let id = id.clone();
        async move { source.access_token(&id, false).await }
    });
    let grants = futures::future::join_all(calls).await;
    let tokens: HashSet<String> = grants
        .into_iter()
        .map(|g| {
            g.expect("every caller gets a token")
                .access_token
                .expose_secret()
                .to_owned()
        })
        .collect();
    assert_eq!(
        oauth.token_requests("refresh_token"),
        1,
        "one call at the token endpoint"
    );
    assert_eq!(tokens.len(), 1, "every caller got the same, new token");
    let token = tokens.into_iter().next().unwrap_or_default();
    assert!(oauth.access_token_active(&token));
    assert_ne!(token, before.tokens.access_token.expose_secret());
    let after = app.services.repo.get_account(&id).await.unwrap().unwrap();
    assert_eq!(after.tokens.access_token.expose_secret(), token);
    assert!(oauth.refresh_token_live(after.tokens.refresh_token.expose_secret()));
    assert!(
        !oauth.refresh_token_live(before.tokens.refresh_token.expose_secret()),
        "the provider rotated it: only the persisted one works"
    );
    // No refresh lease is left behind.
    let items = app
        .services
        .repo
        .store()
        .query(&format!("ACCOUNT#{id}"), QueryRange::default())
        .await
        .unwrap();
    assert!(items.items.iter().all(|i| !i.key.sk.starts_with("LEASE#")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_started_at_once_store_every_message_once() {
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    let mail: Vec<_> = (0..40).map(|i| message("four", i, 2)).collect();
    deliver(&mbox.email, &mail).await;
    let engines: Vec<_> = (0..4).map(|_| mbox.engine(settings(5), None)).collect();
    let runs = engines
        .iter()
        .map(|e| e.sync_account(&mbox.account_id, deadline()));
    let outcomes = futures::future::join_all(runs).await;
    // The lease is taken only once a worker's read-only check saw new mail, so a worker may
    // take it after the first released it: it then re-reads the cursors and fetches nothing.
    let mut fetched = Vec::new();
    for outcome in outcomes {
        match outcome.expect("sync") {
            SyncOutcome::Synced(report) => fetched.push(report.new_messages()),
            SyncOutcome::Busy => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(
        fetched.iter().sum::<u64>(),
        40,
        "the lease lets one worker at a time fetch, none twice: {fetched:?}"
    );
    let stored = mbox.stored("INBOX").await;
    assert_eq!(stored.len(), 40);
    let ids: HashSet<_> = stored.iter().map(|m| m.message_id_header.clone()).collect();
    assert_eq!(ids.len(), 40, "none twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_during_its_sync_leaves_nothing_behind() {
    let s = servers();
    let proxy = FaultProxy::start(s.imap_port, Upstream::ImplicitTls).await;
    // A slow server, so the delete lands in the middle of the sync.
    proxy.push(Plan::slow(Duration::from_millis(3), 256));
    let mbox = Mailbox::create(Some(proxy.port), None, json!({"sync_folders": ["INBOX"]})).await;
    let mail: Vec<_> = (0..60).map(|i| message("gone", i, 20)).collect();
    deliver(&mbox.email, &mail).await;
    let engine = mbox.engine(settings(5), None);
    let id = mbox.account_id.clone();
    let running = tokio::spawn(async move { engine.sync_account(&id, deadline()).await });
    // Wait until the sync has stored something, then delete the account.
    for _ in 0..600 {
        if !mbox.stored("INBOX").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = mbox.stored("INBOX").await;
    assert!(!stored.is_empty(), "the sync got going");
    let validity = stored[0].uid_validity;
    let response = mbox
        .app
        .authed(Method::DELETE, &format!("/v1/accounts/{}", mbox.account_id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let outcome = running.await.expect("join").expect("the sync ends cleanly");
    assert!(
        matches!(&outcome, SyncOutcome::Skipped(why) if why.contains("deleted")),
        "the sync noticed the deletion: {outcome:?}"
    );

    let repo = &mbox.app.services.repo;
    assert!(repo.get_account(&mbox.account_id).await.unwrap().is_none());
    let store = repo.store();
    for pk in [
        format!("ACCOUNT#{}", mbox.account_id),
        format!("MSGS#{}", mbox.account_id),
    ] {
        let left = store.query(&pk, QueryRange::default()).await.unwrap();
        let keys: Vec<_> = left.items.iter().map(|i| i.key.sk.clone()).collect();
        assert!(keys.is_empty(), "items left in {pk}: {keys:?}");
    }
    let blobs = blob_files(&mbox.app.data_dir.path().join("blobs"));
    let prefix = message_blob_prefix(&mbox.account_id);
    let left: Vec<_> = blobs.keys().filter(|k| k.contains(&prefix)).collect();
    assert!(left.is_empty(), "blobs left: {}", left.len());
    // The directory store packs blobs (file names say nothing of their keys): ask it for every
    // source the sync could have stored.
    for uid in 1..=60 {
        let key = MessageKey::new("INBOX", validity, uid).blob_key(&mbox.account_id);
        let left = mbox.app.services.blobs.get(&key).await.unwrap();
        assert!(left.is_none(), "the source of UID {uid} is left");
    }
}

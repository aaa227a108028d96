//! The token endpoint down or slow while a sync or a send needs a fresh access token: the sync
//! and the send fail with a retryable error, no account is marked `reauth_required` for a
//! network fault, the stored tokens stay as they were; a slow endpoint only makes them slower.

mod sync_support;

use std::time::Duration;

use mailroom_core::ExposeSecret;
use mailroom_core::domain::AccountStatus;
use mailroom_core::time::now_unix;
use mailroom_mail::sync::{SyncOutcome, SyncSettings};
use serde_json::{Value, json};
use sync_support::{Mailbox, deliver, message, servers};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A loopback port nothing listens on.
async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A plain TCP relay to `target` that waits `delay` before relaying each connection.
async fn slow_relay(target: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                let _ = client.shutdown().await;
            });
        }
    });
    port
}

/// Points the mailbox's provider at `token_url` and makes its access token due for a refresh.
async fn expire_with_token_url(mbox: &Mailbox, token_url: String) {
    let repo = &mbox.app.services.repo;
    let mut provider = repo.get_provider(&mbox.provider_id).await.unwrap().unwrap();
    let expected = provider.version;
    provider.token_url = token_url;
    provider.version += 1;
    repo.put_provider(&provider, Some(expected)).await.unwrap();
    let mut account = mbox.account().await;
    account.tokens.access_expires_at = now_unix();
    repo.update_account(&mut account).await.unwrap();
}

fn oauth_port() -> u16 {
    url::Url::parse(&servers().oauth_url)
        .unwrap()
        .port()
        .expect("the OAuth URL has a port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_down_fails_the_sync_retryably_and_marks_nothing() {
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    deliver(&mbox.email, &[message("down", 0, 2)]).await;
    expire_with_token_url(
        &mbox,
        format!("http://127.0.0.1:{}/token", dead_port().await),
    )
    .await;
    let before = mbox.account().await;
    let engine = mbox.engine(SyncSettings::default(), None);
    let outcome = engine
        .sync_account(&mbox.account_id, Instant::now() + Duration::from_secs(60))
        .await
        .expect("the sync records its outcome");
    assert!(
        matches!(&outcome, SyncOutcome::Failed { error, .. } if error.contains("token")),
        "{outcome:?}"
    );
    let after = mbox.account().await;
    assert_eq!(after.status, AccountStatus::Active, "not reauth_required");
    assert_eq!(after.failure_count, 1, "counted as a passing failure");
    assert_eq!(
        after.tokens.refresh_token.expose_secret(),
        before.tokens.refresh_token.expose_secret()
    );
    assert!(mbox.stored("INBOX").await.is_empty());

    // Back up (slowly): the next sync refreshes and stores the mail.
    let slow = slow_relay(oauth_port(), Duration::from_millis(1500)).await;
    expire_with_token_url(&mbox, format!("http://127.0.0.1:{slow}/token")).await;
    let outcome = engine
        .sync_account(&mbox.account_id, Instant::now() + Duration::from_secs(60))
        .await
        .expect("sync");
    assert!(matches!(outcome, SyncOutcome::Synced(_)), "{outcome:?}");
    assert_eq!(mbox.stored("INBOX").await.len(), 1);
    let after = mbox.account().await;
    assert_eq!(
        (after.status, after.failure_count),
        (AccountStatus::Active, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_down_fails_the_send_retryably_and_marks_nothing() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    expire_with_token_url(
        &mbox,
        format!("http://127.0.0.1:{}/token", dead_port().await),
    )
    .await;
    let response = mbox
        .app
        .authed(
            reqwest::Method::POST,
            &format!("/v1/accounts/{}/send", mbox.account_id),
        )
        .header("Idempotency-Key", "token-down")
        .json(&json!({"to": ["someone@example.test"], "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:mailroom:problem:unavailable",
        "{problem}"
    );
    assert_eq!(problem["send_status"], "failed");
    let account = mbox.account().await;
    assert_eq!(account.status, AccountStatus::Active, "not reauth_required");
}

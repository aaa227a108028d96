//! Sync and account health against the real Dovecot and test OAuth server: an access token the
//! provider expired is refreshed during the sync, a revoked one marks the account
//! `reauth_required`, a token over 4 KB logs in, repeated connection failures degrade the account
//! until a sync succeeds, a STARTTLS endpoint works, a refused login's error challenge is decoded,
//! Outlook-style throttling parks the account until the suggested time, and a failing account
//! backs off with one account write per failure (and leaves the due set until then).

mod sync_support;

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::domain::AccountStatus;
use mailroom_core::time::now_unix;
use mailroom_mail::sync::SyncOutcome;
use mailroom_tests::counting::{Counters, CountingStore as Counting};
use secrecy::ExposeSecret;
use serde_json::json;
use sync_support::{Mailbox, deadline, deliver, message, oauth_admin, settings, sync_ok};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_during_sync() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    deliver(
        &mbox.email,
        &[message("expiry", 0, 2), message("expiry", 1, 2)],
    )
    .await;
    let before = mbox.account().await.tokens;
    // The provider no longer accepts the stored access token, though it looks valid to us.
    oauth_admin("/admin/expire", json!({"email": mbox.email})).await;
    let engine = mbox.engine(settings(10), None);
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages(), 2);
    let account = mbox.account().await;
    assert_eq!(account.status, AccountStatus::Active);
    assert_ne!(
        account.tokens.access_token.expose_secret(),
        before.access_token.expose_secret()
    );
    assert_ne!(
        account.tokens.refresh_token.expose_secret(),
        before.refresh_token.expose_secret()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_marks_the_account_reauth_required() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    deliver(&mbox.email, &[message("revoked", 0, 2)]).await;
    oauth_admin("/admin/revoke", json!({"email": mbox.email})).await;
    let engine = mbox.engine(settings(10), None);
    match engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("sync")
    {
        SyncOutcome::Failed { .. } => {}
        other => panic!("expected a failed sync, got {other:?}"),
    }
    let account = mbox.account().await;
    assert_eq!(account.status, AccountStatus::ReauthRequired);
    assert!(mbox.stored("INBOX").await.is_empty());
    let due = mbox
        .app
        .services
        .repo
        .due_account_ids(now_unix() + 86_400 * 365, 1000)
        .await
        .expect("due");
    assert!(!due.contains(&mbox.account_id), "no longer scheduled");
    match engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("sync")
    {
        SyncOutcome::Skipped(_) => {}
        other => panic!("expected a skipped sync, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_over_4_kb_logs_in() {
    let mbox = Mailbox::create(None, Some(5_000), json!({})).await;
    assert!(
        mbox.account()
            .await
            .tokens
            .access_token
            .expose_secret()
            .len()
            > 4096
    );
    deliver(&mbox.email, &[message("long", 0, 2)]).await;
    let engine = mbox.engine(settings(10), None);
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_connection_failures_degrade_the_account_until_a_sync_succeeds() {
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let mbox = Mailbox::create(Some(closed), None, json!({})).await;
    deliver(&mbox.email, &[message("degraded", 0, 2)]).await;
    let engine = mbox.engine(settings(10), None);
    for _ in 0..3 {
        match engine
            .sync_account(&mbox.account_id, deadline())
            .await
            .expect("sync")
        {
            SyncOutcome::Failed { .. } => {}
            other => panic!("expected a failed sync, got {other:?}"),
        }
    }
    let account = mbox.account().await;
    assert_eq!(
        (account.status, account.failure_count),
        (AccountStatus::Degraded, 3)
    );
    assert!(
        account
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("connect"))
    );

    let repo = &mbox.app.services.repo;
    let mut provider = repo
        .get_provider(&mbox.provider_id)
        .await
        .expect("read")
        .expect("provider");
    provider.imap.port = sync_support::servers().imap_port;
    let version = provider.version;
    provider.version += 1;
    repo.put_provider(&provider, Some(version))
        .await
        .expect("fix the provider");
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages(), 1);
    let account = mbox.account().await;
    assert_eq!(
        (account.status, account.failure_count, account.last_error),
        (AccountStatus::Active, 0, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starttls_endpoint_syncs() {
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    let port: u16 = mailroom_tests::app::server_env("MAILROOM_TEST_IMAP_STARTTLS_PORT")
        .parse()
        .expect("a port");
    let repo = &mbox.app.services.repo;
    let mut provider = repo
        .get_provider(&mbox.provider_id)
        .await
        .expect("read")
        .expect("provider");
    provider.imap.port = port;
    provider.imap.tls = mailroom_core::domain::TlsMode::Starttls;
    let version = provider.version;
    provider.version += 1;
    repo.put_provider(&provider, Some(version))
        .await
        .expect("STARTTLS endpoint");
    deliver(&mbox.email, &[message("starttls", 0, 2)]).await;
    let engine = mbox.engine(settings(10), None);
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_reports_the_decoded_error_challenge() {
    use mailroom_mail::imap::{ImapConnector, ImapError, challenge_status};
    let s = sync_support::servers();
    let connector = ImapConnector::new(sync_support::test_tls(&s.ca), Duration::from_secs(30));
    let endpoint = mailroom_core::domain::MailEndpoint {
        host: "localhost".into(),
        port: s.imap_port,
        tls: mailroom_core::domain::TlsMode::Implicit,
    };
    let token = secrecy::SecretString::from("not-a-token-the-provider-knows");
    match connector
        .open_session(&endpoint, "nobody@example.test", &token)
        .await
    {
        Err(ImapError::Auth {
            challenge: Some(challenge),
            ..
        }) => assert_eq!(challenge_status(&challenge).as_deref(), Some("401")),
        Err(other) => panic!("expected an authentication failure, got {other}"),
        Ok(_) => panic!("an unknown token logged in"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_parks_the_account_until_the_suggested_time() {
    let tls_dir = format!(
        "{}/tls",
        mailroom_tests::app::server_env("MAILROOM_TEST_DOVECOT_DIR")
    );
    let server = sync_support::throttling::ThrottlingServer::start(&tls_dir, 120_000).await;
    let mbox = Mailbox::create(Some(server.port), None, json!({})).await;
    let engine = mbox.engine(settings(10), None);
    let before = now_unix();
    match engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("sync")
    {
        SyncOutcome::Failed { .. } => {}
        other => panic!("expected a throttled sync, got {other:?}"),
    }
    let account = mbox.account().await;
    assert!((before + 120..=now_unix() + 121).contains(&account.next_sync_at));
    assert_eq!(account.extra["parked_until"], json!(account.next_sync_at));
    // Throttling is not a failure of the account: no degraded count, still active.
    assert_eq!(
        (account.status, account.failure_count),
        (AccountStatus::Active, 0)
    );
    assert!(
        account
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("throttl"))
    );
    // Not due until then, and a requested sync waits too.
    let due = mbox
        .app
        .services
        .repo
        .due_account_ids(now_unix() + 60, 100)
        .await
        .expect("due");
    assert!(!due.contains(&mbox.account_id));
    match engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("sync")
    {
        SyncOutcome::Skipped(_) => {}
        other => panic!("expected the parked account to be skipped, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_account_backs_off_with_one_write_per_failure() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let mbox = Mailbox::create(Some(closed), None, json!({})).await;
    let counters = Arc::new(Counters::default());
    let engine = mbox.engine_over(
        Arc::new(Counting {
            inner: mbox.app.services.repo.store().clone(),
            counters: counters.clone(),
        }),
        settings(10),
        None,
    );
    let repo = &mbox.app.services.repo;
    let mut last_next = mbox.account().await.next_sync_at;
    for failures in 1..=2 {
        let before = counters.snapshot();
        match engine
            .sync_account(&mbox.account_id, deadline())
            .await
            .expect("sync")
        {
            SyncOutcome::Failed { .. } => {}
            other => panic!("expected a failed sync, got {other:?}"),
        }
        let counts = counters.snapshot().since(&before);
        // The failure is recorded once on the account: no lease, nothing else.
        assert_eq!(
            (counts.store_writes, counts.items_written),
            (1, 1),
            "{counts:?}"
        );
        let account = mbox.account().await;
        assert_eq!(account.failure_count, failures);
        let now = now_unix();
        assert!(account.next_sync_at > now && account.next_sync_at > last_next);
        last_next = account.next_sync_at;
        // Backing off: the scheduler does not enqueue it until then.
        let due = repo.due_account_ids(now, 1000).await.expect("due");
        assert!(!due.contains(&mbox.account_id));
        let due_later = repo
            .due_account_ids(account.next_sync_at, 1000)
            .await
            .expect("due");
        assert!(due_later.contains(&mbox.account_id));
    }
}

//! IMAP faults between Mailroom and the real Dovecot, through the TLS-terminating fault proxy:
//! the connection cut at many byte offsets (greeting, login, inside message literals, between
//! batches), `BAD ... throttled` and `BYE` injected, a slow server and a deadline that stops a
//! run between batches. After each, the next sync ends with exactly the mailbox's messages: none
//! lost, none twice, the cursor at the top.

mod sync_support;

use std::collections::HashSet;
use std::time::Duration;

use mailroom_core::domain::Account;
use mailroom_mail::sync::{SyncEngine, SyncOutcome, SyncSettings};
use mailroom_tests::faults::{Action, FaultProxy, Plan, Upstream};
use serde_json::json;
use sync_support::{Mailbox, deadline, deliver, message, servers, unique};
use tokio::time::Instant;

const MESSAGES: usize = 24;

fn settings() -> SyncSettings {
    SyncSettings {
        batch_size: 5,
        ..SyncSettings::default()
    }
}

/// A mailbox of `MESSAGES` messages reached through a fault proxy.
async fn setup(tag: &str) -> (FaultProxy, Mailbox, SyncEngine) {
    let proxy = FaultProxy::start(servers().imap_port, Upstream::ImplicitTls).await;
    let mbox = Mailbox::create(Some(proxy.port), None, json!({"sync_folders": ["INBOX"]})).await;
    let mail: Vec<_> = (0..MESSAGES).map(|i| message(tag, i, 12)).collect();
    deliver(&mbox.email, &mail).await;
    let engine = mbox.engine(settings(), None);
    (proxy, mbox, engine)
}

/// Another account of the same mailbox (a fresh sync from nothing), sharing its tokens.
async fn fresh_account(mbox: &Mailbox) -> String {
    let mut account: Account = mbox.account().await;
    account.id = unique("acct-");
    account.identity = format!("copy|{}", account.id);
    account.version = 1;
    mbox.app
        .services
        .repo
        .create_account(&account)
        .await
        .expect("create a copy of the account");
    account.id
}

/// The next sync must store exactly the mailbox: every message once, cursor at the top.
async fn assert_complete(mbox: &Mailbox, engine: &SyncEngine, account_id: &str, what: &str) {
    let outcome = engine
        .sync_account(account_id, deadline())
        .await
        .expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Synced(r) if r.complete),
        "{what}: the sync after the fault completes: {outcome:?}"
    );
    let repo = &mbox.app.services.repo;
    let mut stored = Vec::new();
    let mut cursor = None;
    loop {
        let page = repo
            .list_messages(account_id, "INBOX", cursor.as_deref(), 200)
            .await
            .expect("list");
        stored.extend(page.messages);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let ids: HashSet<_> = stored.iter().map(|m| m.message_id_header.clone()).collect();
    let uids: HashSet<_> = stored.iter().map(|m| m.uid).collect();
    assert_eq!(stored.len(), MESSAGES, "{what}: none lost, none twice");
    assert_eq!(
        (ids.len(), uids.len()),
        (MESSAGES, MESSAGES),
        "{what}: distinct messages"
    );
    let cursors = repo.folder_cursors(account_id).await.expect("cursors");
    let inbox = cursors
        .iter()
        .find(|c| c.folder == "INBOX")
        .expect("a cursor");
    assert_eq!(
        inbox.last_uid,
        *uids.iter().max().unwrap_or(&0),
        "{what}: cursor at the top"
    );
    assert_eq!(inbox.backfill_below, 0, "{what}: the backfill finished");
    for m in &stored {
        let raw = mbox
            .app
            .services
            .blobs
            .get(&m.blob_key)
            .await
            .expect("blob")
            .expect("raw source");
        assert_eq!(raw.len() as u64, m.size, "{what}: the raw source is whole");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_at_any_byte_loses_and_duplicates_nothing() {
    let (proxy, mbox, engine) = setup("cut").await;
    // A clean run shows where things are in the server's answers.
    let probe = fresh_account(&mbox).await;
    let before = proxy.accepted();
    assert_complete(&mbox, &engine, &probe, "clean run").await;
    let down = proxy.transcript(before).down;
    let text = String::from_utf8_lossy(&down).into_owned();
    let find_all =
        |needle: &str| -> Vec<usize> { text.match_indices(needle).map(|(i, _)| i).collect() };
    let literals = find_all("}\r\n");
    let fetch_done = find_all("OK Fetch completed");
    assert!(
        literals.len() >= MESSAGES,
        "the probe fetched {} literals",
        literals.len()
    );
    let mut offsets = vec![
        5,                                  // inside the greeting
        text.find("\r\n").unwrap_or(0) + 2, // right after the greeting
        find_all("OK")[1] + 1,              // inside the login answer
        literals[0] + 3,                    // the first literal's first byte
        literals[0] + 200,                  // inside the first literal
        literals[literals.len() / 2] + 100, // inside a middle literal
        literals[literals.len() - 1] + 50,  // inside the last literal
    ];
    for done in fetch_done.iter().take(3) {
        offsets.push(done + 25); // right after a batch's tagged OK: between batches
    }
    for k in 1..6 {
        offsets.push(down.len() * k / 6);
    }
    offsets.sort_unstable();
    offsets.dedup();
    for offset in offsets {
        let id = fresh_account(&mbox).await;
        let connection = proxy.accepted();
        proxy.push(Plan::cut_after(offset));
        let outcome = engine.sync_account(&id, deadline()).await.expect("sync");
        assert_eq!(
            proxy.transcript(connection).down.len(),
            offset,
            "the cut happened after exactly {offset} bytes"
        );
        assert!(
            matches!(outcome, SyncOutcome::Failed { .. }),
            "cut after {offset} bytes: {outcome:?}"
        );
        assert_complete(&mbox, &engine, &id, &format!("cut after {offset} bytes")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_bye_are_survived() {
    let (proxy, mbox, engine) = setup("inject").await;

    // Outlook-style throttling on the second batch: the account is parked, nothing duplicated.
    let id = fresh_account(&mbox).await;
    proxy.push(Plan::rule(
        "BODY.PEEK[]",
        Action::Reply(
            "{tag} BAD Request is throttled. Suggested Backoff Time: 1500 milliseconds".into(),
        ),
    ));
    let outcome = engine.sync_account(&id, deadline()).await.expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Failed { error, .. } if error.contains("throttl")),
        "{outcome:?}"
    );
    let account = mbox
        .app
        .services
        .repo
        .get_account(&id)
        .await
        .unwrap()
        .unwrap();
    assert!(account.extra.contains_key("parked_until"), "parked");
    assert_eq!(account.failure_count, 0, "throttling is not a failure");
    // Requested syncs honour the back-off too.
    let skipped = engine.sync_account(&id, deadline()).await.expect("sync");
    assert!(matches!(skipped, SyncOutcome::Skipped(_)), "{skipped:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_complete(&mbox, &engine, &id, "after throttling").await;

    // 8-bit text after a response code (a broken or hostile server): imap-proto panicked on
    // it, which aborted the worker; the read guard makes it harmless.
    let id = fresh_account(&mbox).await;
    proxy.push(Plan::rule(
        "UID SEARCH",
        Action::Inject("* OK [ALERT]\u{e9}\u{e9} Server says h\u{e9}llo".into()),
    ));
    let outcome = engine.sync_account(&id, deadline()).await.expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Synced(r) if r.complete),
        "{outcome:?}"
    );
    assert_complete(&mbox, &engine, &id, "after 8-bit server text").await;

    // The server says BYE in the middle of the fetch.
    let id = fresh_account(&mbox).await;
    proxy.push(Plan::rule(
        "BODY.PEEK[]",
        Action::ReplyThenClose("* BYE Server shutting down".into()),
    ));
    let outcome = engine.sync_account(&id, deadline()).await.expect("sync");
    assert!(matches!(outcome, SyncOutcome::Failed { .. }), "{outcome:?}");
    assert_complete(&mbox, &engine, &id, "after BYE").await;

    // Outlook's mid-session token expiry: refreshed once and finished in the same run.
    let id = fresh_account(&mbox).await;
    let token_before = mbox
        .app
        .services
        .repo
        .get_account(&id)
        .await
        .unwrap()
        .unwrap()
        .tokens;
    proxy.push(Plan::rule(
        "BODY.PEEK[]",
        Action::ReplyThenClose("* BYE Session invalidated - AccessTokenExpired".into()),
    ));
    let outcome = engine.sync_account(&id, deadline()).await.expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Synced(r) if r.complete),
        "{outcome:?}"
    );
    let after = mbox
        .app
        .services
        .repo
        .get_account(&id)
        .await
        .unwrap()
        .unwrap();
    use mailroom_core::ExposeSecret;
    assert_ne!(
        after.tokens.access_token.expose_secret(),
        token_before.access_token.expose_secret(),
        "the token was refreshed"
    );
    assert_complete(&mbox, &engine, &id, "after token expiry").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_and_a_short_deadline_resume_without_loss() {
    let (proxy, mbox, engine) = setup("slow").await;
    // Every 512 bytes of the answers wait 2 ms: slow, but the sync just takes longer.
    let id = fresh_account(&mbox).await;
    proxy.push(Plan::slow(Duration::from_millis(2), 512));
    assert_complete(&mbox, &engine, &id, "slow server").await;

    // A deadline that passes mid-run (the Lambda time limit) stops between batches; each next
    // run resumes where the last stopped.
    let id = fresh_account(&mbox).await;
    let mut runs = 0;
    loop {
        runs += 1;
        // The mailbox is about 24 KB, 47 chunks of 512 bytes: at 12 ms each a whole sync takes
        // longer than the deadline however fast the machine and the client are (at 4 ms a
        // sync with fewer round trips could finish in one run); each run still stores a batch.
        proxy.push(Plan::slow(Duration::from_millis(12), 512));
        let short = Instant::now() + Duration::from_millis(400);
        match engine.sync_account(&id, short).await.expect("sync") {
            SyncOutcome::Synced(r) if r.complete => break,
            SyncOutcome::Synced(_) => {}
            other => panic!("run {runs}: {other:?}"),
        }
        assert!(runs < 40, "the runs make progress");
    }
    assert!(runs > 1, "the deadline stopped at least one run");
    assert_complete(&mbox, &engine, &id, "after deadline-bounded runs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_login_failure_never_requires_reconnecting() {
    let (proxy, mbox, engine) = setup("unavailable").await;
    let id = fresh_account(&mbox).await;
    // RFC 5530 UNAVAILABLE: the server's authentication backend is down, the token is fine.
    let before = proxy.accepted();
    proxy.push(Plan::rule(
        "AUTHENTICATE",
        Action::Reply("{tag} NO [UNAVAILABLE] Temporary authentication failure.".into()),
    ));
    let outcome = engine.sync_account(&id, deadline()).await.expect("sync");
    assert!(matches!(outcome, SyncOutcome::Failed { .. }), "{outcome:?}");
    assert_eq!(
        proxy.accepted(),
        before + 1,
        "no token refresh and second login for it"
    );
    let account = mbox
        .app
        .services
        .repo
        .get_account(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account.status,
        mailroom_core::domain::AccountStatus::Active,
        "a passing server fault is not a revoked grant: {:?}",
        account.status_reason
    );
    assert_eq!(account.failure_count, 1);
    assert_complete(
        &mbox,
        &engine,
        &id,
        "after the server's auth backend recovered",
    )
    .await;
}

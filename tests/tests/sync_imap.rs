//! Sync against the real Dovecot (IMAP over TLS from the test CA, XOAUTH2 checked by the test
//! OAuth server's introspection): first sync, incremental sync, nothing-changed cost, CONDSTORE
//! flags, backfill limit, UIDVALIDITY change, a cut connection, a run cut short and resumed,
//! malformed MIME and two workers racing for one account.

mod sync_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mailroom_core::domain::AccountStatus;
use mailroom_core::time::now_unix;
use mailroom_mail::sync::{SyncOutcome, SyncSettings, delete_account_messages};
use mailroom_tests::counting::{Counters, CountingStore as Counting};
use serde_json::json;
use sync_support::{
    CommandLog, CountingStore, Mailbox, Proxy, ProxyMode, deadline, deliver, message, settings,
    sync_ok,
};
use tokio::sync::Notify;

fn assert_unique(metas: &[mailroom_core::domain::MessageMeta]) {
    let ids: HashSet<_> = metas.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids.len(), metas.len(), "duplicate message ids");
    let mids: HashSet<_> = metas.iter().map(|m| m.message_id_header.clone()).collect();
    assert_eq!(mids.len(), metas.len(), "a message was stored twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_then_only_new_mail_then_nothing_fetched() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    let mail: Vec<_> = (0..300).map(|i| message("first", i, 20)).collect();
    deliver(&mbox.email, &mail).await;
    let log = CommandLog::default();
    let engine = mbox.engine(settings(40), Some(log.wrapper()));

    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert!(report.complete);
    assert_eq!(report.new_messages(), 300);
    let stored = mbox.stored("INBOX").await;
    assert_eq!(stored.len(), 300);
    assert_unique(&stored);
    let uids: Vec<u32> = stored.iter().map(|m| m.uid).collect();
    assert!(uids.windows(2).all(|w| w[0] > w[1]), "listed newest first");
    let subjects: HashSet<_> = stored.iter().filter_map(|m| m.subject.clone()).collect();
    assert!((0..300).all(|i| subjects.contains(&format!("first {i}"))));
    for meta in stored.iter().step_by(37) {
        let blob = mbox
            .app
            .services
            .blobs
            .get(&meta.blob_key)
            .await
            .expect("blob read");
        let blob = blob.expect("the raw message is stored");
        let mid = meta.message_id_header.as_deref().expect("Message-ID");
        assert!(String::from_utf8_lossy(&blob).contains(mid));
        assert!(meta.parsed && meta.snippet.is_some() && meta.from.len() == 1);
    }
    let account = mbox.account().await;
    assert_eq!(account.status, AccountStatus::Active);
    assert!(account.last_sync_at.is_some());
    // A healthy account stays due: the scheduler enqueues it on every run without a write.
    assert!(account.next_sync_at <= now_unix());
    assert_eq!(account.extra["folders"]["INBOX"]["messages"], json!(300));
    assert_eq!(account.extra["folders"]["Sent"]["messages"], json!(0));

    // Incremental: only the new mail is fetched, in one batch.
    deliver(
        &mbox.email,
        &[
            message("second", 0, 3),
            message("second", 1, 3),
            message("second", 2, 3),
        ],
    )
    .await;
    log.clear();
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages(), 3);
    let stored = mbox.stored("INBOX").await;
    assert_eq!(stored.len(), 303);
    assert_unique(&stored);
    assert_eq!(stored[0].subject.as_deref(), Some("second 2"));
    let body_fetches: Vec<String> = log
        .lines()
        .into_iter()
        .filter(|l| l.contains("BODY.PEEK[]"))
        .collect();
    assert_eq!(body_fetches.len(), 1, "{:?}", log.commands());

    // Nothing changed: STATUS per folder, no SELECT, SEARCH or FETCH, whatever the mailbox size.
    log.clear();
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages(), 0);
    assert!(report.folders.iter().all(|f| f.unchanged));
    let commands = log.commands();
    assert!(
        !commands.iter().any(|c| c.contains("FETCH")
            || c.contains("SEARCH")
            || c == "SELECT"
            || c == "EXAMINE"),
        "{commands:?}"
    );
    assert_eq!(
        commands.iter().filter(|c| *c == "STATUS").count(),
        2,
        "{commands:?}"
    );
    assert!(commands.len() <= 8, "{commands:?}");
    // …and a constant, small number of store requests, the same on every such run.
    let counting = CountingStore::new(mbox.app.services.repo.store().clone());
    let counted = mbox.engine_over(counting.clone(), settings(40), None);
    let mut requests = Vec::new();
    for _ in 0..3 {
        let report = sync_ok(&counted, &mbox.account_id, "sync").await;
        assert!(report.folders.iter().all(|f| f.unchanged));
        requests.push(counting.take());
    }
    // (The first run also reads the provider, which the process then caches.)
    assert!(
        requests[0] <= 8 && requests[1] == requests[2],
        "{requests:?}"
    );
    // …none of them a write: no lease, no outcome (the account's health and counts are current).
    let counters = Arc::new(Counters::default());
    let counted = mbox.engine_over(
        Arc::new(Counting {
            inner: mbox.app.services.repo.store().clone(),
            counters: counters.clone(),
        }),
        settings(40),
        None,
    );
    let before = mbox.account().await;
    let report = sync_ok(&counted, &mbox.account_id, "sync").await;
    assert!(report.folders.iter().all(|f| f.unchanged));
    let counts = counters.snapshot();
    assert_eq!(counts.store_writes, 0, "{counts:?}");
    // The account with its folder cursors (one query), the provider (then cached by the process).
    assert!(counts.store_reads <= 2, "{counts:?}");
    let report = sync_ok(&counted, &mbox.account_id, "sync").await;
    assert!(report.folders.iter().all(|f| f.unchanged));
    let again = counters.snapshot().since(&counts);
    assert_eq!(
        (
            again.store_writes,
            again.store_reads,
            again.store_stale_reads
        ),
        (0, 1, 1),
        "warm: one eventually consistent query of the account's partition: {again:?}"
    );
    assert_eq!(mbox.account().await.version, before.version, "untouched");
    assert_eq!(mbox.stored("INBOX").await.len(), 303);

    // CONDSTORE: a flag changed on the server is applied to the stored message.
    let oldest = stored.last().expect("messages").clone();
    let mut admin = mbox.admin_session().await;
    admin.raw().select("INBOX").await.expect("SELECT");
    {
        use futures::TryStreamExt;
        let updates = admin
            .raw()
            .uid_store(oldest.uid.to_string(), "+FLAGS (\\Flagged)")
            .await
            .expect("STORE");
        let _: Vec<_> = updates.try_collect().await.expect("STORE responses");
    }
    admin.logout().await;
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.folders[0].flag_updates, 1);
    let key = mailroom_core::records::MessageKey::new("INBOX", oldest.uid_validity, oldest.uid);
    let flagged = mbox
        .app
        .services
        .repo
        .get_message(&mbox.account_id, &key)
        .await
        .expect("read")
        .expect("stored");
    assert!(
        flagged.flags.iter().any(|f| f == "\\Flagged"),
        "{:?}",
        flagged.flags
    );

    // Deleting the account's messages removes metadata and raw sources.
    let services = &mbox.app.services;
    let deleted =
        delete_account_messages(&services.repo, services.blobs.as_ref(), &mbox.account_id)
            .await
            .expect("delete messages");
    assert_eq!(deleted, 303);
    assert!(mbox.stored("INBOX").await.is_empty());
    assert!(
        services
            .blobs
            .get(&stored[0].blob_key)
            .await
            .expect("blob read")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_limit_keeps_the_newest_messages_and_missing_folders_are_skipped() {
    // "Gone" does not exist on the server: skipped, not a failure.
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX", "Gone"]})).await;
    let mail: Vec<_> = (0..30).map(|i| message("limit", i, 2)).collect();
    deliver(&mbox.email, &mail).await;
    let engine = mbox.engine(
        SyncSettings {
            backfill_limit: Some(12),
            ..settings(5)
        },
        None,
    );
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    let folders: Vec<&str> = report.folders.iter().map(|f| f.folder.as_str()).collect();
    assert_eq!(folders, ["INBOX"]);
    assert_eq!(mbox.account().await.failure_count, 0);
    let subjects: HashSet<_> = mbox
        .stored("INBOX")
        .await
        .into_iter()
        .filter_map(|m| m.subject)
        .collect();
    let expected: HashSet<_> = (18..30).map(|i| format!("limit {i}")).collect();
    assert_eq!(subjects, expected);

    // Polls after that write nothing: the missing folder is skipped by the read-only check
    // (it takes no lease on every poll).
    let counters = Arc::new(Counters::default());
    let counted = mbox.engine_over(
        Arc::new(Counting {
            inner: mbox.app.services.repo.store().clone(),
            counters: counters.clone(),
        }),
        settings(5),
        None,
    );
    let report = sync_ok(&counted, &mbox.account_id, "sync").await;
    assert!(report.folders.iter().all(|f| f.unchanged));
    let counts = counters.snapshot();
    assert_eq!(counts.store_writes, 0, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_change_is_reconciled_without_new_duplicates() {
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["Work"]})).await;
    let mut admin = mbox.admin_session().await;
    admin.raw().create("Work").await.expect("CREATE");
    for i in 0..5 {
        admin
            .raw()
            .append("Work", None, None, message("work", i, 2))
            .await
            .expect("APPEND");
    }
    let engine = mbox.engine(settings(2), None);
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages(), 5);
    let before = mbox.stored("Work").await;
    let old_validity = before[0].uid_validity;

    // The folder is recreated: same mail under a new UIDVALIDITY, plus one new message.
    admin.raw().rename("Work", "WorkOld").await.expect("RENAME");
    admin.raw().create("Work").await.expect("CREATE");
    admin.raw().select("WorkOld").await.expect("SELECT");
    admin.raw().uid_copy("1:*", "Work").await.expect("COPY");
    admin
        .raw()
        .append("Work", None, None, message("work", 5, 2))
        .await
        .expect("APPEND");
    admin.logout().await;

    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    let work = &report.folders[0];
    assert!(work.uid_validity_changed);
    assert_eq!((work.new_messages, work.reconciled), (1, 5));
    let after = mbox.stored("Work").await;
    assert_eq!(after.len(), 6);
    assert_unique(&after);
    assert!(after.iter().all(|m| m.uid_validity != old_validity));
    // Reconciled messages keep their raw source and first-seen time.
    for old in &before {
        let again = after
            .iter()
            .find(|m| m.message_id_header == old.message_id_header)
            .expect("the message is still stored");
        assert_eq!(
            (&again.blob_key, again.stored_at),
            (&old.blob_key, old.stored_at)
        );
    }
    assert_eq!(
        mbox.account().await.extra["folders"]["Work"]["messages"],
        json!(6)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_batch_resumes_without_loss_or_duplicates() {
    let imap_port = sync_support::servers().imap_port;
    let proxy = Proxy::start(imap_port, ProxyMode::CutFirstAfter(60_000)).await;
    let mbox = Mailbox::create(Some(proxy.port), None, json!({"sync_folders": ["INBOX"]})).await;
    let mail: Vec<_> = (0..100).map(|i| message("cut", i, 20)).collect();
    deliver(&mbox.email, &mail).await;
    let engine = mbox.engine(settings(10), None);

    match engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("sync")
    {
        SyncOutcome::Failed { .. } => {}
        other => panic!("the cut connection should fail the sync, got {other:?}"),
    }
    let partial = mbox.stored("INBOX").await.len();
    assert!(
        partial > 0 && partial < 100 && partial % 10 == 0,
        "stored {partial}: whole batches only"
    );
    let account = mbox.account().await;
    assert_eq!(account.failure_count, 1);
    assert!(account.last_error.is_some());

    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages() as usize, 100 - partial);
    let stored = mbox.stored("INBOX").await;
    assert_eq!(stored.len(), 100);
    assert_unique(&stored);
    let account = mbox.account().await;
    assert_eq!((account.failure_count, account.last_error), (0, None));
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mime_is_stored_raw() {
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    let garbage = b"this is not a mail message at all\r\nno headers, just text\r\n".to_vec();
    let mut admin = mbox.admin_session().await;
    admin
        .raw()
        .append("INBOX", None, None, &garbage)
        .await
        .expect("APPEND");
    admin
        .raw()
        .append("INBOX", None, None, message("fine", 0, 2))
        .await
        .expect("APPEND");
    admin.logout().await;
    let engine = mbox.engine(settings(10), None);
    sync_ok(&engine, &mbox.account_id, "sync").await;
    let stored = mbox.stored("INBOX").await;
    assert_eq!(stored.len(), 2);
    let bad = stored
        .iter()
        .find(|m| !m.parsed)
        .expect("the malformed message is stored");
    assert_eq!(
        (bad.subject.as_deref(), bad.size),
        (None, garbage.len() as u64)
    );
    let raw = mbox
        .app
        .services
        .blobs
        .get(&bad.blob_key)
        .await
        .expect("read")
        .expect("blob");
    assert_eq!(raw.as_ref(), garbage.as_slice());
    assert!(
        stored
            .iter()
            .any(|m| m.parsed && m.subject.as_deref() == Some("fine 0"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_account_only_one_syncs() {
    let gate = Arc::new(Notify::new());
    let imap_port = sync_support::servers().imap_port;
    let proxy = Proxy::start(imap_port, ProxyMode::HoldFirst(gate.clone())).await;
    let mbox = Mailbox::create(Some(proxy.port), None, json!({})).await;
    deliver(&mbox.email, &[message("race", 0, 2), message("race", 1, 2)]).await;
    let repo = &mbox.app.services.repo;

    // Another worker holds the sync lease: this one checks read-only, finds mail to fetch, and
    // leaves it to the holder (nothing stored, no health change written).
    let before = mbox.account().await;
    let held = repo
        .try_lease(&mbox.account_id, "sync", "other-worker", now_unix(), 600)
        .await
        .expect("lease")
        .expect("free");
    let blocked = mbox.engine(settings(10), None);
    let account_id = mbox.account_id.clone();
    let check = tokio::spawn(async move { blocked.sync_account(&account_id, deadline()).await });
    // (The proxy holds the first connection: let the check through.)
    while proxy.accepted.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.notify_one();
    match check.await.expect("join").expect("sync") {
        SyncOutcome::Busy => {}
        other => panic!("the lease holder's account should be busy, got {other:?}"),
    }
    assert!(mbox.stored("INBOX").await.is_empty());
    assert_eq!(mbox.account().await.version, before.version);
    repo.release_lease(&held).await.expect("release");

    // Two workers racing on new mail: both may check, one syncs under the lease, each message
    // is stored once.
    let first = mbox.engine(settings(10), None);
    let second = mbox.engine(settings(10), None);
    let (a, b) = tokio::join!(
        first.sync_account(&mbox.account_id, deadline()),
        second.sync_account(&mbox.account_id, deadline()),
    );
    let new: u64 = [a.expect("sync"), b.expect("sync")]
        .into_iter()
        .map(|outcome| match outcome {
            SyncOutcome::Synced(report) => report.new_messages(),
            SyncOutcome::Busy => 0,
            other => panic!("expected a sync or busy, got {other:?}"),
        })
        .sum();
    assert_eq!(new, 2);
    let stored = mbox.stored("INBOX").await;
    assert_eq!(stored.len(), 2);
    assert_unique(&stored);

    // One engine (one process) never runs two syncs of an account at once.
    deliver(&mbox.email, &[message("race", 2, 3)]).await;
    let (a, b) = tokio::join!(
        first.sync_account(&mbox.account_id, deadline()),
        first.sync_account(&mbox.account_id, deadline()),
    );
    let outcomes = [a.expect("sync"), b.expect("sync")];
    assert!(
        outcomes.iter().any(|o| matches!(o, SyncOutcome::Busy)),
        "{outcomes:?}"
    );
    assert_eq!(mbox.stored("INBOX").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cut_short_resumes_where_it_stopped() {
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    let mail: Vec<_> = (0..50).map(|i| message("resume", i, 2)).collect();
    deliver(&mbox.email, &mail).await;
    // Two batches per run stand in for the Lambda time limit.
    let engine = mbox.engine(
        SyncSettings {
            max_batches: Some(2),
            ..settings(10)
        },
        None,
    );
    let mut stored_after = Vec::new();
    for _ in 0..3 {
        let report = sync_ok(&engine, &mbox.account_id, "sync").await;
        stored_after.push((mbox.stored("INBOX").await.len(), report.complete));
        if !report.complete {
            // Due again at once, so the next scheduler run continues it.
            assert!(mbox.account().await.next_sync_at <= now_unix());
        }
    }
    assert_eq!(stored_after, vec![(20, false), (40, false), (50, true)]);
    let stored = mbox.stored("INBOX").await;
    assert_unique(&stored);
    let subjects: HashSet<_> = stored.iter().filter_map(|m| m.subject.clone()).collect();
    assert!((0..50).all(|i| subjects.contains(&format!("resume {i}"))));
}

//! The worker's per-process account cache against the real Dovecot and test OAuth server: a
//! warm poll of an unchanged account makes no store request at all, and every change re-reads
//! the store: new mail, a cursor another process advanced, an account changed (settings,
//! re-connection, re-authorization) or deleted. Jobs come from the real scheduler pass (their
//! versions from the due index) and run through the worker's job runner.

mod sync_support;

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::domain::AccountStatus;
use mailroom_core::ports::Job;
use mailroom_core::time::now_unix;
use mailroom_embedded::InProcessQueue;
use mailroom_mail::jobs::{JobResult, SchedulerSettings, run_job, schedule_due};
use mailroom_mail::sync::{SyncEngine, SyncOutcome, SyncSettings};
use mailroom_tests::counting::{Counters, CountingStore, Counts};
use serde_json::json;
use sync_support::{Mailbox, deadline, deliver, message};

/// A worker process: an engine whose store requests are counted.
fn worker(mbox: &Mailbox) -> (Arc<Counters>, SyncEngine) {
    let counters = Arc::new(Counters::default());
    let store = Arc::new(CountingStore {
        inner: mbox.app.services.repo.store().clone(),
        counters: counters.clone(),
    });
    let engine = mbox.engine_over(store, SyncSettings::default(), None);
    (counters, engine)
}

/// The job the scheduler enqueues for the mailbox's account now (`None`: not due).
async fn scheduled(mbox: &Mailbox) -> Option<Job> {
    let (queue, mut jobs) = InProcessQueue::new();
    let settings = SchedulerSettings {
        spread: Duration::ZERO,
        ..SchedulerSettings::default()
    };
    schedule_due(&mbox.app.services.repo, &queue, now_unix() + 60, &settings)
        .await
        .expect("scheduler pass");
    let mut found = None;
    while let Some(job) = jobs.try_recv() {
        if job.account_id == mbox.account_id {
            found = Some(job);
        }
    }
    found
}

/// Runs one job as the worker does; returns its outcome and the store requests it made.
async fn poll(engine: &SyncEngine, counters: &Counters, job: &Job) -> (SyncOutcome, Counts) {
    let before = counters.snapshot();
    let result = run_job(engine, job, deadline()).await;
    let used = counters.snapshot().since(&before);
    match result {
        JobResult::Done(Some(outcome)) => (outcome, used),
        other => panic!("the job did not finish: {other:?}"),
    }
}

fn new_messages(outcome: &SyncOutcome) -> u64 {
    match outcome {
        SyncOutcome::Synced(report) => report.new_messages(),
        other => panic!("expected a sync, got {other:?}"),
    }
}

/// A mailbox synced once, then polled once by `engine` (which fills its cache).
async fn warmed(engine: &SyncEngine, counters: &Counters, mbox: &Mailbox) -> Job {
    deliver(&mbox.email, &[message("cache", 0, 3)]).await;
    let first = engine
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("first sync");
    assert_eq!(new_messages(&first), 1);
    let job = scheduled(mbox).await.expect("a healthy account is due");
    assert!(job.version.is_some(), "the due index projects the version");
    let (outcome, used) = poll(engine, counters, &job).await;
    assert_eq!(new_messages(&outcome), 0);
    assert_eq!(used.store_reads, 1, "a first poll in a process reads once");
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_no_change_poll_makes_no_store_request() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    let (counters, engine) = worker(&mbox);
    warmed(&engine, &counters, &mbox).await;
    for _ in 0..3 {
        let job = scheduled(&mbox).await.expect("still due");
        let (outcome, used) = poll(&engine, &counters, &job).await;
        assert_eq!(new_messages(&outcome), 0);
        assert_eq!(
            (used.store_reads, used.store_writes),
            (0, 0),
            "a warm no-change poll"
        );
    }
    // A job without a version (an older scheduler) reads as before.
    let mut unversioned = scheduled(&mbox).await.expect("due");
    unversioned.version = None;
    let (_, used) = poll(&engine, &counters, &unversioned).await;
    assert_eq!(used.store_reads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_and_a_cursor_moved_by_another_process_are_read_again() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    let (counters, engine) = worker(&mbox);
    warmed(&engine, &counters, &mbox).await;

    // New mail: the cached cursor no longer matches STATUS; the lease path reads and fetches.
    deliver(&mbox.email, &[message("cache", 1, 3)]).await;
    let job = scheduled(&mbox).await.expect("due");
    let (outcome, used) = poll(&engine, &counters, &job).await;
    assert_eq!(new_messages(&outcome), 1);
    assert!(used.store_reads > 0 && used.store_writes > 0);
    // The run wrote: the next poll reads again, the one after is warm.
    let job = scheduled(&mbox).await.expect("due");
    assert_eq!(poll(&engine, &counters, &job).await.1.store_reads, 1);
    let job = scheduled(&mbox).await.expect("due");
    assert_eq!(poll(&engine, &counters, &job).await.1.store_reads, 0);

    // Another process fetches new mail and moves the cursor; this one's cached cursor is older.
    let (_, other) = worker(&mbox);
    deliver(&mbox.email, &[message("cache", 2, 3)]).await;
    let fetched = other
        .sync_account(&mbox.account_id, deadline())
        .await
        .expect("the other process syncs");
    assert_eq!(new_messages(&fetched), 1);
    // A job scheduled before that sync still carries the version this process cached: the
    // stale cursor makes the check see a change, the lease path re-reads and stores nothing twice.
    let (outcome, used) = poll(&engine, &counters, &job).await;
    assert_eq!(new_messages(&outcome), 0, "nothing fetched twice");
    assert!(
        used.store_reads > 0,
        "the stale cursor sent the poll to the store"
    );
    assert_eq!(mbox.stored("INBOX").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_deleted_account_is_read_again() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    let (counters, engine) = worker(&mbox);
    let old_job = warmed(&engine, &counters, &mbox).await;
    let repo = &mbox.app.services.repo;

    // Changed settings (any account write: also a re-connection) give a new version.
    let mut account = mbox.account().await;
    account
        .extra
        .insert("sync_folders".into(), json!(["INBOX"]));
    repo.update_account(&mut account).await.expect("update");
    let job = scheduled(&mbox).await.expect("due");
    assert_ne!(job.version, old_job.version);
    let (outcome, used) = poll(&engine, &counters, &job).await;
    assert_eq!(used.store_reads, 1, "the new version is read");
    match outcome {
        SyncOutcome::Synced(report) => {
            let folders: Vec<_> = report.folders.iter().map(|f| f.folder.as_str()).collect();
            assert_eq!(folders, ["INBOX"], "the new settings apply");
        }
        other => panic!("expected a sync, got {other:?}"),
    }
    // The new version is cached now.
    let job = scheduled(&mbox).await.expect("due");
    assert_eq!(poll(&engine, &counters, &job).await.1.store_reads, 0);

    // Re-authorization required: out of the due index, nothing is scheduled; a job queued
    // before (its old version still cached) with new mail fetches nothing.
    let mut account = mbox.account().await;
    account.status = AccountStatus::ReauthRequired;
    repo.update_account(&mut account).await.expect("update");
    assert!(scheduled(&mbox).await.is_none(), "not due any more");
    deliver(&mbox.email, &[message("cache", 1, 3)]).await;
    let (outcome, _) = poll(&engine, &counters, &job).await;
    assert!(
        matches!(outcome, SyncOutcome::Skipped(_)),
        "a queued job of a changed account: {outcome:?}"
    );
    assert_eq!(mbox.stored("INBOX").await.len(), 1, "nothing fetched");
    // The cache entry is gone: a requested sync or a later job reads the account.
    let (outcome, used) = poll(&engine, &counters, &job).await;
    assert!(used.store_reads > 0);
    assert!(matches!(outcome, SyncOutcome::Skipped(_)), "{outcome:?}");

    // Re-connected (active again, new version): scheduled again and read.
    let mut account = mbox.account().await;
    account.status = AccountStatus::Active;
    repo.update_account(&mut account).await.expect("update");
    let job = scheduled(&mbox).await.expect("due again");
    let (outcome, used) = poll(&engine, &counters, &job).await;
    assert!(used.store_reads > 0);
    assert_eq!(new_messages(&outcome), 1);
    let job = scheduled(&mbox).await.expect("due");
    assert_eq!(poll(&engine, &counters, &job).await.1.store_reads, 1);

    // Deleted: not scheduled; a job queued before, with new mail, stores nothing.
    let job = scheduled(&mbox).await.expect("due");
    assert_eq!(poll(&engine, &counters, &job).await.1.store_reads, 0);
    repo.delete_account_records(&mbox.account().await)
        .await
        .expect("delete");
    assert!(scheduled(&mbox).await.is_none());
    deliver(&mbox.email, &[message("cache", 2, 3)]).await;
    let (outcome, _) = poll(&engine, &counters, &job).await;
    assert!(matches!(outcome, SyncOutcome::Skipped(_)), "{outcome:?}");
    let (outcome, used) = poll(&engine, &counters, &job).await;
    assert_eq!(used.store_reads, 1, "read again, and found gone");
    assert!(matches!(outcome, SyncOutcome::Skipped(_)), "{outcome:?}");
}

//! The sync scheduler and worker handlers, and the messages API over what they stored: due
//! accounts are enqueued on every run without a store write, the worker syncs them, and the API pages, shows and serves the
//! raw messages; `POST /v1/accounts/{id}/sync` queues an immediate sync; a job that finds the
//! store down is handed back for delivery again.

mod sync_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mailroom_core::ports::{Job, JobKind};
use mailroom_core::records::Repository;
use mailroom_core::time::now_unix;
use mailroom_mail::jobs::{JobResult, SchedulerSettings, run_batch, run_job, schedule_due};
use mailroom_mail::sync::{SyncOutcome, SyncSettings};
use mailroom_tests::counting::{Counters, CountingStore as Counting};
use reqwest::Method;
use serde_json::{Value, json};
use sync_support::{CountingStore, Mailbox, deliver, message};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_sync_then_messages_api() {
    let mut mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    deliver(
        &mbox.email,
        &[
            message("api", 0, 3),
            message("api", 1, 3),
            message("api", 2, 3),
        ],
    )
    .await;
    let mut jobs = mbox.app.jobs.take().expect("the in-process queue");
    let services = mbox.app.services.clone();
    let scheduler = SchedulerSettings {
        spread: Duration::ZERO,
        ..SchedulerSettings::default()
    };

    // A scheduler run writes nothing: the account is found due through the index and
    // enqueued; it stays due, so the next run enqueues it again (still without a write).
    let counters = Arc::new(Counters::default());
    let counted = Repository::new(
        Arc::new(Counting {
            inner: services.repo.store().clone(),
            counters: counters.clone(),
        }),
        services.repo.sealer().clone(),
    );
    let before = mbox.account().await;
    let now = now_unix();
    for _ in 0..2 {
        let report = schedule_due(&counted, services.queue.as_ref(), now, &scheduler)
            .await
            .expect("schedule");
        assert!(report.enqueued >= 1, "{report:?}");
    }
    let counts = counters.snapshot();
    assert_eq!(counts.store_writes, 0, "{counts:?}");
    let after = mbox.account().await;
    assert_eq!(
        (after.version, after.next_sync_at),
        (before.version, before.next_sync_at)
    );

    let mut queued = Vec::new();
    while let Some(job) = jobs.try_recv() {
        queued.push(job);
    }
    let mine: Vec<&Job> = queued
        .iter()
        .filter(|j| j.account_id == mbox.account_id)
        .collect();
    assert_eq!(mine.len(), 2, "one job per run: {queued:?}");
    let job = mine[0].clone();
    assert_eq!(
        (job.account_id.as_str(), job.kind),
        (mbox.account_id.as_str(), JobKind::Sync)
    );
    let engine = mbox.engine(SyncSettings::default(), None);
    match run_job(&engine, &job, Instant::now() + Duration::from_secs(120)).await {
        JobResult::Done(Some(SyncOutcome::Synced(report))) => assert_eq!(report.new_messages(), 3),
        other => panic!("expected a synced job, got {other:?}"),
    }

    // The account shows the per-folder counts.
    let shown: Value = mbox
        .app
        .authed(Method::GET, &format!("/v1/accounts/{}", mbox.account_id))
        .send()
        .await
        .expect("account")
        .json()
        .await
        .expect("JSON");
    assert_eq!(shown["folders"]["INBOX"]["messages"], json!(3));
    assert!(shown["last_sync_at"].is_string());

    // Pages, newest first.
    let base = format!("/v1/accounts/{}/messages", mbox.account_id);
    let page1: Value = mbox
        .app
        .authed(Method::GET, &format!("{base}?folder=INBOX&limit=2"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    let first: Vec<Value> = page1["messages"].as_array().expect("messages").clone();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["subject"], json!("api 2"));
    let cursor = page1["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let page2: Value = mbox
        .app
        .authed(
            Method::GET,
            &format!("{base}?folder=INBOX&limit=2&cursor={cursor}"),
        )
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    let second = page2["messages"].as_array().expect("messages");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["subject"], json!("api 0"));
    let ids: HashSet<&str> = first
        .iter()
        .chain(second.iter())
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3);

    // One message with its bodies, and its raw source.
    let id = first[0]["id"].as_str().expect("id");
    let shown: Value = mbox
        .app
        .authed(Method::GET, &format!("{base}/{id}"))
        .send()
        .await
        .expect("show")
        .json()
        .await
        .expect("JSON");
    assert_eq!(shown["message_id"], json!("api-2@example.test"));
    assert!(
        shown["text"]
            .as_str()
            .expect("text body")
            .contains("api message 2, line 0")
    );
    assert_eq!(shown["html"], Value::Null);
    assert_eq!(shown["bodies_truncated"], json!(false));
    let raw = mbox
        .app
        .authed(Method::GET, &format!("{base}/{id}/raw"))
        .send()
        .await
        .expect("raw");
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.headers()["content-type"], "message/rfc822");
    let body = raw.bytes().await.expect("raw body");
    assert!(String::from_utf8_lossy(&body).contains("Message-ID: <api-2@example.test>"));

    // Bad input is refused, and nothing is invented.
    let status = |path: String| {
        let request = mbox.app.authed(Method::GET, &path);
        async move { request.send().await.expect("request").status().as_u16() }
    };
    assert_eq!(status(format!("{base}?cursor=not-a-cursor")).await, 400);
    assert_eq!(status(format!("{base}?limit=0")).await, 400);
    assert_eq!(status(format!("{base}/bm9wZQ")).await, 404);
    assert_eq!(status("/v1/accounts/nobody/messages".into()).await, 404);
    let unauthenticated = mbox
        .app
        .client()
        .get(mbox.app.url(&base))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthenticated.status(), 401);

    // Sync now: 202 and a SyncNow job.
    let queued = mbox
        .app
        .authed(
            Method::POST,
            &format!("/v1/accounts/{}/sync", mbox.account_id),
        )
        .send()
        .await
        .expect("sync now");
    assert_eq!(queued.status(), 202);
    let job = jobs.recv().await.expect("a job");
    assert_eq!(
        (job.account_id.as_str(), job.kind),
        (mbox.account_id.as_str(), JobKind::SyncNow)
    );
    let missing = mbox
        .app
        .authed(Method::POST, "/v1/accounts/nobody/sync")
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_delivered_again_when_the_store_is_down() {
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    deliver(&mbox.email, &[message("outage", 0, 2)]).await;
    let store = CountingStore::new(mbox.app.services.repo.store().clone());
    let engine = mbox.engine_over(store.clone(), SyncSettings::default(), None);
    let job = Job {
        account_id: mbox.account_id.clone(),
        kind: JobKind::Sync,
        delay_seconds: 0,
        version: None,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    store.set_down(true);
    assert_eq!(
        run_batch(&engine, std::slice::from_ref(&job), deadline, 2).await,
        vec![0]
    );
    assert!(mbox.stored("INBOX").await.is_empty());
    store.set_down(false);
    assert!(run_batch(&engine, &[job], deadline, 2).await.is_empty());
    assert_eq!(mbox.stored("INBOX").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_run_over_many_healthy_accounts_enqueues_each_and_writes_nothing() {
    let mut mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    let mut jobs = mbox.app.jobs.take().expect("the in-process queue");
    let services = mbox.app.services.clone();
    // 24 more healthy accounts (copies of the first under other ids), one of them backing off
    // and one waiting for re-authorization: neither of those two is due.
    let template = mbox.account().await;
    let mut healthy: HashSet<String> = HashSet::from([mbox.account_id.clone()]);
    let now = now_unix();
    for i in 0..24 {
        let mut account = template.clone();
        account.id = format!("{}-{i}", mbox.account_id);
        account.identity = format!("{}-{i}", template.identity);
        account.version = 1;
        match i {
            0 => account.next_sync_at = now + 600,
            1 => account.status = mailroom_core::domain::AccountStatus::ReauthRequired,
            _ => {
                healthy.insert(account.id.clone());
            }
        }
        services
            .repo
            .create_account(&account)
            .await
            .expect("create");
    }
    let counters = Arc::new(Counters::default());
    let counted = Repository::new(
        Arc::new(Counting {
            inner: services.repo.store().clone(),
            counters: counters.clone(),
        }),
        services.repo.sealer().clone(),
    );
    let scheduler = SchedulerSettings {
        spread: Duration::ZERO,
        page_size: 7,
        ..SchedulerSettings::default()
    };
    let report = schedule_due(&counted, services.queue.as_ref(), now, &scheduler)
        .await
        .expect("schedule");
    assert_eq!((report.due, report.enqueued), (23, 23), "{report:?}");
    let counts = counters.snapshot();
    // Index pages of 7 (the last one short), nothing else: no GetItem, no claim write.
    assert_eq!(
        (counts.store_reads, counts.store_writes),
        (4, 0),
        "{counts:?}"
    );
    let mut enqueued = HashSet::new();
    while let Some(job) = jobs.try_recv() {
        assert_eq!(job.kind, JobKind::Sync);
        assert!(
            enqueued.insert(job.account_id),
            "one job per account per run"
        );
    }
    assert_eq!(enqueued, healthy);
}

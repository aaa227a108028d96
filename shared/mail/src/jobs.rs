//! The sync scheduler and worker as plain library functions over core types: the Lambda
//! functions and the local host wire them to EventBridge/SQS or a timer and the in-process queue.
//! Neither writes to the store on a poll that finds nothing new (see `schedule_due` and the
//! `sync` module).

use std::time::Duration;

use futures::StreamExt;
use mailroom_core::ports::{JOBS_PER_MESSAGE, Job, JobKind, JobQueue, QueueError};
use mailroom_core::records::{RecordError, Repository};
use tokio::time::Instant;

use crate::sync::{SyncEngine, SyncOutcome};

/// How the scheduler hands out work.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// At most this many accounts per run (the rest, oldest `next_sync_at` last, wait for the
    /// next run).
    pub max_accounts: usize,
    /// Jobs are delayed by a random 0..spread so accounts do not all connect at once (SQS
    /// allows at most 900 s).
    pub spread: Duration,
    /// Due-index entries read per request (at most 1,000, the store's page cap).
    pub page_size: usize,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            max_accounts: 100_000,
            spread: Duration::from_secs(240),
            page_size: 1000,
        }
    }
}

/// What the scheduler could not do.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("could not read the due accounts: {0}")]
    Store(#[from] RecordError),
    #[error("could not enqueue sync jobs: {0}")]
    Queue(#[from] QueueError),
}

/// What one scheduler run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleReport {
    pub due: usize,
    pub enqueued: usize,
}

/// Finds the accounts due at `now` through the due index and enqueues one jittered job for each.
///
/// It writes nothing: healthy accounts stay due (their `next_sync_at` stays in the past), so
/// every run enqueues each of them once, and the run's cost is the index pages (keys and
/// version, about 120 bytes an account) and about one SendMessageBatch per 1,000 jobs
/// ([`JOBS_PER_MESSAGE`] jobs share a delay and a message). Each job carries the version the
/// index holds, so a warm worker can check its cached copy of the account instead of reading
/// it (`sync::cache`). Accounts backing off,
/// parked by the provider or waiting for re-authorization are not due (the worker moved their
/// `next_sync_at` or took them out of the index when their state changed). Two overlapping
/// runs, or a job still queued from the previous run, can give an account two jobs: the worker
/// checks read-only first and skips an account it is already syncing, so a duplicate costs one
/// read-only check, never a second sync; and the Lambda worker drops a scheduled poll that
/// waited more than two intervals (a backlog), so duplicates do not pile up.
pub async fn schedule_due(
    repo: &Repository,
    queue: &dyn JobQueue,
    now: i64,
    settings: &SchedulerSettings,
) -> Result<ScheduleReport, ScheduleError> {
    let spread = settings.spread.as_secs().min(900) as u32;
    let mut report = ScheduleReport::default();
    let mut start_after: Option<String> = None;
    while report.due < settings.max_accounts {
        let limit = (settings.max_accounts - report.due).min(settings.page_size.clamp(1, 1000));
        let (due, next) = repo
            .due_accounts_page(now, start_after.as_deref(), limit)
            .await?;
        report.due += due.len();
        // One delay per message's worth of jobs, so the queue packs each group into one message.
        let mut jobs: Vec<Job> = Vec::with_capacity(due.len());
        for group in due.chunks(JOBS_PER_MESSAGE) {
            let delay_seconds = if spread == 0 {
                0
            } else {
                rand::random_range(0..spread)
            };
            jobs.extend(group.iter().map(|account| Job {
                account_id: account.id.clone(),
                kind: JobKind::Sync,
                delay_seconds,
                version: account.version,
            }));
        }
        if !jobs.is_empty() {
            queue.enqueue(&jobs).await?;
            report.enqueued += jobs.len();
        }
        match next {
            Some(next) => start_after = Some(next),
            None => break,
        }
    }
    tracing::info!(
        due = report.due,
        enqueued = report.enqueued,
        "sync jobs scheduled"
    );
    Ok(report)
}

/// How a job ended, for the queue's partial-batch failure report.
#[derive(Debug)]
pub enum JobResult {
    /// Done (including "another worker is on it" and failures recorded on the account).
    Done(Option<SyncOutcome>),
    /// Nothing could be recorded (the store failed): deliver the job again.
    Retry(String),
}

/// Runs one job before `deadline` (the sync stops between batches and resumes next time).
pub async fn run_job(engine: &SyncEngine, job: &Job, deadline: Instant) -> JobResult {
    match job.kind {
        JobKind::Sync | JobKind::SyncNow => {
            let run = if job.kind == JobKind::SyncNow {
                engine
                    .sync_account_requested(&job.account_id, deadline)
                    .await
            } else {
                engine
                    .sync_account_at(&job.account_id, job.version, deadline)
                    .await
            };
            match run {
                Ok(outcome) => {
                    // A poll that found nothing is the common case: not worth a log line each.
                    if matches!(&outcome, SyncOutcome::Synced(r) if r.new_messages() == 0) {
                        tracing::debug!(account_id = %job.account_id, ?outcome, "sync job finished");
                    } else {
                        tracing::info!(account_id = %job.account_id, ?outcome, "sync job finished");
                    }
                    JobResult::Done(Some(outcome))
                }
                Err(e) => {
                    tracing::warn!(account_id = %job.account_id, error = %e, "sync job failed; it will be retried");
                    JobResult::Retry(e.to_string())
                }
            }
        }
        JobKind::Verify => {
            // Connect-time checks belong to the connect flow, not the sync worker.
            tracing::warn!(account_id = %job.account_id, "the sync worker does not run verify jobs");
            JobResult::Done(None)
        }
    }
}

/// Runs a batch of jobs (one SQS delivery), a few accounts at a time; returns the indexes of
/// the jobs to deliver again.
pub async fn run_batch(
    engine: &SyncEngine,
    jobs: &[Job],
    deadline: Instant,
    concurrency: usize,
) -> Vec<usize> {
    let results: Vec<(usize, JobResult)> = futures::stream::iter(jobs.iter().enumerate())
        .map(|(i, job)| async move { (i, run_job(engine, job, deadline).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut failed: Vec<usize> = results
        .into_iter()
        .filter_map(|(i, r)| matches!(r, JobResult::Retry(_)).then_some(i))
        .collect();
    failed.sort_unstable();
    failed
}

/// Queues an immediate sync of one account (`POST /v1/accounts/{id}/sync`).
pub async fn request_sync(queue: &dyn JobQueue, account_id: &str) -> Result<(), QueueError> {
    queue
        .enqueue(&[Job {
            account_id: account_id.to_owned(),
            kind: JobKind::SyncNow,
            delay_seconds: 0,
            version: None,
        }])
        .await
}

//! The sync scheduler and worker as plain library functions over core types: the Lambda
//! functions and the local host wire them to EventBridge/SQS or a timer and the in-process queue.

use std::time::Duration;

use futures::StreamExt;
use mailroom_core::ports::{Job, JobKind, JobQueue, QueueError};
use mailroom_core::records::{RecordError, Repository};
use tokio::time::Instant;

use crate::sync::{SyncEngine, SyncOutcome};

/// How the scheduler hands out work.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// At most this many accounts per run (the rest are due again on the next run).
    pub max_accounts: usize,
    /// Jobs are delayed by a random 0..spread so accounts do not all connect at once (SQS
    /// allows at most 900 s).
    pub spread: Duration,
    /// How far the scheduler pushes `next_sync_at` when it enqueues an account, so the next
    /// run does not enqueue it again; the worker sets the real next time when it finishes.
    pub claim_for: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            max_accounts: 1000,
            spread: Duration::from_secs(240),
            claim_for: Duration::from_secs(1800),
        }
    }
}

/// What the scheduler could not do.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("could not read or claim due accounts: {0}")]
    Store(#[from] RecordError),
    #[error("could not enqueue sync jobs: {0}")]
    Queue(#[from] QueueError),
}

/// What one scheduler run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleReport {
    pub due: usize,
    pub enqueued: usize,
    /// Due accounts another writer changed first (claimed by a concurrent run, reconnected…).
    pub skipped: usize,
}

/// Finds the accounts due at `now` through the due index, claims each by pushing its
/// `next_sync_at` (a conditional write: of two concurrent schedulers one wins), and enqueues
/// one jittered job per claimed account.
pub async fn schedule_due(
    repo: &Repository,
    queue: &dyn JobQueue,
    now: i64,
    settings: &SchedulerSettings,
) -> Result<ScheduleReport, ScheduleError> {
    let ids = repo.due_account_ids(now, settings.max_accounts).await?;
    let mut report = ScheduleReport {
        due: ids.len(),
        ..Default::default()
    };
    let spread = settings.spread.as_secs().min(900) as u32;
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(mut account) = repo.get_account(&id).await? else {
            report.skipped += 1;
            continue;
        };
        // The index may lag a write: re-check on the account itself.
        if account.next_sync_at > now {
            report.skipped += 1;
            continue;
        }
        account.next_sync_at = now + settings.claim_for.as_secs() as i64;
        match repo.update_account(&mut account).await {
            Ok(()) => {}
            Err(e) if e.is_conflict() => {
                report.skipped += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let delay_seconds = if spread == 0 {
            0
        } else {
            rand::random_range(0..spread)
        };
        jobs.push(Job {
            account_id: id,
            kind: JobKind::Sync,
            delay_seconds,
        });
    }
    if !jobs.is_empty() {
        queue.enqueue(&jobs).await?;
    }
    report.enqueued = jobs.len();
    tracing::info!(
        due = report.due,
        enqueued = report.enqueued,
        skipped = report.skipped,
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
            match engine.sync_account(&job.account_id, deadline).await {
                Ok(outcome) => {
                    tracing::info!(account_id = %job.account_id, ?outcome, "sync job finished");
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
        }])
        .await
}

//! Running the background work with the process's services: the scheduler's pass over due
//! accounts, and jobs (sync, sync now, connect-time verification) routed to their handlers.

use std::time::Duration;

use mailroom_core::ports::{Job, JobKind};
use mailroom_core::time::now_unix;
use mailroom_mail::imap::ImapConnector;
use mailroom_mail::jobs::{self, JobResult, ScheduleError, ScheduleReport, SchedulerSettings};
use mailroom_mail::smtp::preflight;
use mailroom_mail::sync::{SyncEngine, SyncSettings};
use tokio::time::Instant;

use crate::services::Services;

/// How long one IMAP connection step may take before it counts as failed.
const IMAP_TIMEOUT: Duration = Duration::from_secs(60);

/// The sync engine over the process's services and configuration.
pub fn sync_engine(services: &Services) -> SyncEngine {
    let config = &services.config;
    let settings = SyncSettings {
        interval: config.sync_interval,
        backfill_limit: config.backfill_limit,
        backfill_days: config.backfill_days,
        ..SyncSettings::default()
    };
    SyncEngine::new(
        services.repo.clone(),
        services.blobs.clone(),
        services.tokens.clone(),
        ImapConnector::new(services.tls.clone(), IMAP_TIMEOUT),
        settings,
    )
}

/// One scheduler pass: enqueue a job for every account that is due now, spread over the interval.
pub async fn schedule(services: &Services) -> Result<ScheduleReport, ScheduleError> {
    let interval = services.config.sync_interval;
    let settings = SchedulerSettings {
        // Spread starts over most of the interval (SQS caps delays at 15 minutes).
        spread: (interval * 4 / 5).min(Duration::from_secs(900)),
        ..SchedulerSettings::default()
    };
    jobs::schedule_due(
        &services.repo,
        services.queue.as_ref(),
        now_unix(),
        &settings,
    )
    .await
}

/// Runs a batch of jobs, a few accounts at a time, before `deadline`; returns the indexes of the
/// jobs that must be delivered again.
pub async fn run(
    services: &Services,
    engine: &SyncEngine,
    batch: &[Job],
    deadline: Instant,
) -> Vec<usize> {
    let (verify, sync): (Vec<_>, Vec<_>) = batch
        .iter()
        .enumerate()
        .partition(|(_, job)| job.kind == JobKind::Verify);
    let mut failed = Vec::new();
    for (index, job) in verify {
        if let Err(e) = preflight(
            &services.repo,
            services.tokens.as_ref(),
            services.tls.clone(),
            &job.account_id,
        )
        .await
        {
            tracing::warn!(account_id = %job.account_id, error = %e, "verification could not be recorded; it will be retried");
            failed.push(index);
        }
    }
    let (indexes, sync_jobs): (Vec<usize>, Vec<Job>) =
        sync.into_iter().map(|(i, job)| (i, job.clone())).unzip();
    let retry = jobs::run_batch(
        engine,
        &sync_jobs,
        deadline,
        services.config.worker_concurrency,
    )
    .await;
    failed.extend(retry.into_iter().map(|i| indexes[i]));
    failed.sort_unstable();
    failed
}

/// Runs one job (the local host's worker loop).
pub async fn run_one(
    services: &Services,
    engine: &SyncEngine,
    job: &Job,
    deadline: Instant,
) -> bool {
    if job.kind == JobKind::Verify {
        return preflight(
            &services.repo,
            services.tokens.as_ref(),
            services.tls.clone(),
            &job.account_id,
        )
        .await
        .is_ok();
    }
    !matches!(
        jobs::run_job(engine, job, deadline).await,
        JobResult::Retry(_)
    )
}

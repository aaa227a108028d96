//! The event-driven Lambda functions: the scheduler (EventBridge schedule) and the worker (SQS,
//! reporting partial batch failures so only the messages with a failed job are delivered again;
//! a scheduled poll that waited more than two intervals is dropped, a newer one covers it).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mailroom_core::ports::{Job, JobKind, JobMessage};
use serde_json::Value;
use tokio::time::Instant;

use crate::jobs;
use crate::services::Services;

/// Time kept back from the invocation's deadline to record progress and answer the runtime.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// Serves the scheduler: every invocation enqueues the accounts that are due.
pub async fn serve_scheduler() -> Result<(), Error> {
    let services = Services::start(crate::services::Role::Background)
        .await?
        .services;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<EventBridgeEvent<Value>>| {
            let services = services.clone();
            async move {
                let report = jobs::schedule(&services).await?;
                Ok::<_, Error>(
                    serde_json::json!({ "due": report.due, "enqueued": report.enqueued }),
                )
            }
        },
    ))
    .await
}

/// Serves the worker: every invocation runs one SQS batch of jobs.
pub async fn serve_worker() -> Result<(), Error> {
    let services = Services::start(crate::services::Role::Background)
        .await?
        .services;
    let engine = Arc::new(jobs::sync_engine(&services));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let services = services.clone();
        let engine = engine.clone();
        async move { Ok::<_, Error>(handle_batch(&services, &engine, event).await) }
    }))
    .await
}

async fn handle_batch(
    services: &Services,
    engine: &mailroom_mail::sync::SyncEngine,
    event: LambdaEvent<SqsEvent>,
) -> SqsBatchResponse {
    let deadline = deadline_of(event.context.deadline);
    let mut batch = Vec::new();
    // The message each job came in (a message carries one job or up to JOBS_PER_MESSAGE).
    let mut message_ids = Vec::new();
    let now_ms = unix_ms();
    let stale_after_ms = 2 * services.config.sync_interval.as_millis() as u64;
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let sent_ms = record
            .attributes
            .get("SentTimestamp")
            .and_then(|t| t.parse::<u64>().ok());
        match record.body.as_deref().map(JobMessage::decode) {
            Some(Ok(jobs)) => {
                let jobs: Vec<Job> = jobs
                    .into_iter()
                    .filter(|job| !is_stale(job, sent_ms, now_ms, stale_after_ms))
                    .collect();
                message_ids.extend(std::iter::repeat_n(id, jobs.len()));
                batch.extend(jobs);
            }
            // A job that cannot be read will never succeed: drop it (logged) instead of retrying it
            // until it lands in the dead-letter queue.
            _ => tracing::error!(message_id = %id, "dropping an unreadable job"),
        }
    }
    let failed = jobs::run(services, engine, &batch, deadline).await;
    failures(&message_ids, &failed)
}

/// Whether a scheduled poll waited so long (a backlog, an outage) that newer scheduler runs have
/// enqueued the account again since: it is dropped rather than run twice. Requested syncs and
/// other jobs never go stale.
fn is_stale(job: &Job, sent_ms: Option<u64>, now_ms: u64, stale_after_ms: u64) -> bool {
    let Some(sent_ms) = sent_ms else {
        return false;
    };
    let visible_ms = sent_ms + u64::from(job.delay_seconds) * 1000;
    let stale = job.kind == JobKind::Sync && now_ms.saturating_sub(visible_ms) > stale_after_ms;
    if stale {
        tracing::debug!(account_id = %job.account_id, "dropping a stale scheduled poll");
    }
    stale
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The partial batch failure report: each message with a failed job, once (SQS delivers the
/// whole message again).
fn failures(message_ids: &[String], failed_jobs: &[usize]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut reported = std::collections::HashSet::new();
    for &index in failed_jobs {
        let Some(id) = message_ids.get(index) else {
            continue;
        };
        if reported.insert(id.clone()) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.clone();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Converts the invocation deadline (Unix milliseconds) into an `Instant`, less a margin.
fn deadline_of(deadline_ms: u64) -> Instant {
    let now_ms = unix_ms();
    let left =
        Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(DEADLINE_MARGIN);
    Instant::now() + left
}

#[cfg(test)]
mod tests {
    use super::*;

    use mailroom_core::ports::JOBS_PER_MESSAGE;

    #[test]
    fn a_message_is_reported_once_when_any_of_its_jobs_failed() {
        let ids: Vec<String> = ["m1", "m1", "m1", "m2", "m3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let reported: Vec<String> = failures(&ids, &[1, 2, 4])
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(reported, vec!["m1".to_owned(), "m3".to_owned()]);
        assert!(failures(&ids, &[]).batch_item_failures.is_empty());
        // Two full messages: one failed job of the second returns that message alone, whole
        // (its other jobs run again; the first message is deleted).
        let full: Vec<String> = ["a", "b"]
            .iter()
            .flat_map(|id| std::iter::repeat_n(id.to_string(), JOBS_PER_MESSAGE))
            .collect();
        let reported: Vec<String> = failures(&full, &[JOBS_PER_MESSAGE + 57])
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(reported, vec!["b".to_owned()]);
    }

    #[test]
    fn only_scheduled_polls_long_past_their_time_are_stale() {
        let job = |kind, delay_seconds| Job {
            account_id: "a1".into(),
            kind,
            delay_seconds,
            version: None,
        };
        let minute = 60_000;
        let now = 100 * minute;
        let limit = 10 * minute;
        assert!(is_stale(
            &job(JobKind::Sync, 0),
            Some(now - 11 * minute),
            now,
            limit
        ));
        assert!(!is_stale(
            &job(JobKind::Sync, 0),
            Some(now - 9 * minute),
            now,
            limit
        ));
        // Visible only after its delay: counted from then.
        assert!(!is_stale(
            &job(JobKind::Sync, 240),
            Some(now - 13 * minute),
            now,
            limit
        ));
        assert!(!is_stale(&job(JobKind::SyncNow, 0), Some(0), now, limit));
        assert!(!is_stale(&job(JobKind::Sync, 0), None, now, limit));
    }
}

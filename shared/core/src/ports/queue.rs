//! The job queue port: sync and verification jobs (SQS, or an in-process queue).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What a job asks the worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A scheduled sync.
    Sync,
    /// A sync someone asked for now.
    SyncNow,
    /// A connect-time check of IMAP and SMTP login.
    Verify,
}

/// The longest delay a job may ask for (SQS's limit; the in-process queue keeps the same one).
pub const MAX_DELAY_SECONDS: u32 = 900;

/// One job for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub account_id: String,
    pub kind: JobKind,
    /// Delay before the job becomes visible (spreads scheduled syncs over the interval); at most
    /// [`MAX_DELAY_SECONDS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_seconds: u32,
    /// The account's version when the scheduler found it due (read from the due index): a
    /// worker that holds this very version of the account in memory checks it without reading
    /// the store. `None` (a requested sync, an older job) always reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// What the queue could not do.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
    #[error("the queue refused {failed} of the jobs: {reason}")]
    Rejected { failed: usize, reason: String },
}

impl Job {
    /// Refuses a batch in which any job asks for more than [`MAX_DELAY_SECONDS`], so adapters
    /// send all of a batch or none of it for this reason.
    pub fn check_delays(jobs: &[Job]) -> Result<(), QueueError> {
        let too_late = jobs
            .iter()
            .filter(|j| j.delay_seconds > MAX_DELAY_SECONDS)
            .count();
        if too_late == 0 {
            return Ok(());
        }
        Err(QueueError::Rejected {
            failed: too_late,
            reason: format!("delay_seconds may be at most {MAX_DELAY_SECONDS}"),
        })
    }
}

/// The most jobs one queue message carries.
///
/// SQS bills a request per 64 KB of payload, and a job is about 100 bytes (`acc_` and 32 hex
/// digits, kind, delay, version), so 100 jobs (about 10 KB) make one billed request to send,
/// receive or delete where ten made ten; a SendMessageBatch of ten such messages (about 100 KB)
/// stays well under its 256 KB limit (the SQS adapter also splits batches by size). Not more,
/// because a message's jobs share one delay (the scheduler's spread gets coarser: 1,000
/// accounts make ten starting times per run) and all run in one invocation, `SyncWorkerParallelSyncs`
/// (50) at a time: 100 idle polls are two rounds of about half a second, far inside the
/// 900 s invocation and the queue's 1,800 s visibility timeout. A message is deleted only when
/// every one of its jobs is done; one failed job (the store failing: nothing could be recorded)
/// makes the worker report the whole message failed, SQS delivers it again after the visibility
/// timeout, and its other jobs then run again as cheap read-only polls (idempotent).
pub const JOBS_PER_MESSAGE: usize = 100;

/// The body of one queue message: a job, or several jobs that share a delay. The scheduler's
/// polls go [`JOBS_PER_MESSAGE`] to a message, which makes a hundredth of the SQS requests to
/// send, receive and delete them. A message whose jobs are not all done is delivered again as a
/// whole, so the consumer reports it failed when any of its jobs failed (the others then run
/// again: a poll is idempotent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobMessage {
    One(Job),
    Many { jobs: Vec<Job> },
}

impl JobMessage {
    /// Packs jobs into messages in order: consecutive jobs with the same delay share a message,
    /// at most [`JOBS_PER_MESSAGE`] each; a job alone stays a plain job body.
    pub fn pack(jobs: &[Job]) -> Vec<JobMessage> {
        let mut out: Vec<Vec<Job>> = Vec::new();
        for job in jobs {
            match out.last_mut() {
                Some(group)
                    if group.len() < JOBS_PER_MESSAGE
                        && group[0].delay_seconds == job.delay_seconds =>
                {
                    group.push(job.clone())
                }
                _ => out.push(vec![job.clone()]),
            }
        }
        out.into_iter()
            .map(|mut group| match group.len() {
                1 => JobMessage::One(group.remove(0)),
                _ => JobMessage::Many { jobs: group },
            })
            .collect()
    }

    /// The delay every job of the message asked for.
    pub fn delay_seconds(&self) -> u32 {
        match self {
            JobMessage::One(job) => job.delay_seconds,
            JobMessage::Many { jobs } => jobs.first().map_or(0, |j| j.delay_seconds),
        }
    }

    /// The jobs of the message.
    pub fn jobs(&self) -> &[Job] {
        match self {
            JobMessage::One(job) => std::slice::from_ref(job),
            JobMessage::Many { jobs } => jobs,
        }
    }

    /// Reads a message body (either form).
    pub fn decode(body: &str) -> Result<Vec<Job>, serde_json::Error> {
        Ok(match serde_json::from_str(body)? {
            JobMessage::One(job) => vec![job],
            JobMessage::Many { jobs } => jobs,
        })
    }
}

/// Where jobs are sent; consumers are the Lambda SQS event source or the local host's worker loop.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues the jobs (batched by the adapter).
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, kind: JobKind, delay_seconds: u32) -> Job {
        Job {
            account_id: id.into(),
            kind,
            delay_seconds,
            version: None,
        }
    }

    #[test]
    fn packs_jobs_of_one_delay_a_hundred_to_a_message() {
        let mut jobs: Vec<Job> = (0..230)
            .map(|i| job(&format!("a{i}"), JobKind::Sync, 30))
            .collect();
        jobs.push(job("b", JobKind::Sync, 60));
        let messages = JobMessage::pack(&jobs);
        let sizes: Vec<usize> = messages.iter().map(|m| m.jobs().len()).collect();
        assert_eq!(sizes, vec![100, 100, 30, 1]);
        assert_eq!(messages[3], JobMessage::One(jobs[230].clone()));
        assert_eq!(messages[3].delay_seconds(), 60);
        assert_eq!(messages[0].delay_seconds(), 30);
        let mut back = Vec::new();
        for m in &messages {
            back.extend(JobMessage::decode(&serde_json::to_string(m).unwrap()).unwrap());
        }
        assert_eq!(back, jobs);
    }

    #[test]
    fn ten_full_messages_fit_a_send_batch_in_two_billed_requests() {
        let jobs: Vec<Job> = (0..JOBS_PER_MESSAGE)
            .map(|i| Job {
                version: Some(u64::MAX),
                ..job(&format!("acc_{i:032x}"), JobKind::Sync, MAX_DELAY_SECONDS)
            })
            .collect();
        let body = serde_json::to_string(&JobMessage::pack(&jobs)[0]).unwrap();
        // The longest job body: 32-hex-digit ids, the largest delay and version.
        assert!(10 * body.len() <= 2 * 64 * 1024, "{} bytes", body.len());
    }

    #[test]
    fn a_single_job_body_reads_as_before() {
        let body = r#"{"account_id":"a1","kind":"sync_now"}"#;
        assert_eq!(
            JobMessage::decode(body).unwrap(),
            vec![job("a1", JobKind::SyncNow, 0)]
        );
        assert!(JobMessage::decode(r#"{"jobs":[{"kind":"sync"}]}"#).is_err());
        assert!(JobMessage::decode("[]").is_err());
    }
}

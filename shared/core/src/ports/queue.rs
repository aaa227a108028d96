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

/// Where jobs are sent; consumers are the Lambda SQS event source or the local host's worker loop.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues the jobs (batched by the adapter).
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError>;
}

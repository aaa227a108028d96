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

/// One job for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub account_id: String,
    pub kind: JobKind,
    /// Delay before the job becomes visible (spreads scheduled syncs over the interval); at most 900.
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

/// Where jobs are sent; consumers are the Lambda SQS event source or the local host's worker loop.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues the jobs (batched by the adapter).
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError>;
}

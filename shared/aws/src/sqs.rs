//! [`SqsQueue`]: the job queue on SQS; jobs are packed into messages (consecutive jobs with one
//! delay share a message, up to ten: [`JobMessage`]), sent in SendMessageBatch calls of ten
//! messages, each with its DelaySeconds.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use mailroom_core::ports::{Job, JobMessage, JobQueue, QueueError};

use crate::error::describe;

/// SendMessageBatch's limit.
const CHUNK: usize = 10;

/// The job queue on one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// The queue at `queue_url`, using a client built once at start-up.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Sends up to ten messages; returns how many jobs SQS refused and the first refusal.
    async fn send_chunk(
        &self,
        messages: &[JobMessage],
    ) -> Result<Option<(usize, String)>, QueueError> {
        let mut entries = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            let body = serde_json::to_string(message)
                .map_err(|e| QueueError::Unavailable(format!("cannot encode a job: {e}")))?;
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .delay_seconds(i32::try_from(message.delay_seconds()).unwrap_or(i32::MAX))
                .build()
                .map_err(|e| QueueError::Unavailable(format!("cannot build a message: {e}")))?;
            entries.push(entry);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                QueueError::Unavailable(format!("SQS SendMessageBatch failed: {}", describe(&e)))
            })?;
        let refused_jobs: usize = out
            .failed
            .iter()
            .map(|f| {
                f.id.parse::<usize>()
                    .ok()
                    .and_then(|i| messages.get(i))
                    .map_or(1, |m| m.jobs().len())
            })
            .sum();
        Ok(out.failed.first().map(|first| {
            let reason = format!(
                "{}: {}",
                first.code,
                first.message.as_deref().unwrap_or("no message")
            );
            (refused_jobs, reason)
        }))
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        Job::check_delays(jobs)?;
        let mut failed = 0;
        let mut first_reason = None;
        for chunk in JobMessage::pack(jobs).chunks(CHUNK) {
            if let Some((count, reason)) = self.send_chunk(chunk).await? {
                failed += count;
                first_reason.get_or_insert(reason);
            }
        }
        match first_reason {
            Some(reason) => {
                tracing::warn!(failed, %reason, "SQS refused some jobs");
                Err(QueueError::Rejected { failed, reason })
            }
            None => Ok(()),
        }
    }
}

//! [`SqsQueue`]: the job queue on SQS; jobs are packed into messages (consecutive jobs with one
//! delay share a message, up to [`mailroom_core::ports::JOBS_PER_MESSAGE`]: [`JobMessage`]),
//! sent in SendMessageBatch calls of up to ten messages and 256 KB, each with its DelaySeconds.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use mailroom_core::ports::{Job, JobMessage, JobQueue, QueueError};

use crate::error::describe;

/// SendMessageBatch's limits: entries, and bytes of all bodies together.
const CHUNK: usize = 10;
const CHUNK_BYTES: usize = 256 * 1024;

/// Splits message bodies into SendMessageBatch calls: in order, at most [`CHUNK`] bodies and
/// [`CHUNK_BYTES`] each (a body larger than that alone goes alone; SQS refuses it).
fn batches(bodies: &[String]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == CHUNK || bytes + body.len() > CHUNK_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(start..bodies.len());
    }
    out
}

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

    /// Sends one batch of messages (bodies already encoded); returns how many jobs SQS refused
    /// and the first refusal.
    async fn send_chunk(
        &self,
        messages: &[JobMessage],
        bodies: &[String],
    ) -> Result<Option<(usize, String)>, QueueError> {
        let mut entries = Vec::with_capacity(messages.len());
        for (i, (message, body)) in messages.iter().zip(bodies).enumerate() {
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
        let messages = JobMessage::pack(jobs);
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueueError::Unavailable(format!("cannot encode a job: {e}")))?;
        for range in batches(&bodies) {
            let sent = self
                .send_chunk(&messages[range.clone()], &bodies[range])
                .await?;
            if let Some((count, reason)) = sent {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_ten_messages_and_256_kb_at_most() {
        let small = vec!["x".repeat(10_000); 23];
        assert_eq!(batches(&small), vec![0..10, 10..20, 20..23]);
        // 100 KB bodies: two fit in 256 KB, a third does not.
        let big = vec!["x".repeat(100 * 1024); 5];
        assert_eq!(batches(&big), vec![0..2, 2..4, 4..5]);
        let oversized = vec!["x".repeat(300 * 1024), "y".into()];
        assert_eq!(batches(&oversized), vec![0..1, 1..2]);
        assert!(batches(&[]).is_empty());
    }
}

//! [`InProcessQueue`]: the job queue of the local host, a tokio channel whose receiving end the
//! host's worker loop drains. Delayed jobs are held by a timer task until they are due; like
//! every queued job they live in memory only (the scheduler enqueues again on its next run).

use std::time::Duration;

use async_trait::async_trait;
use mailroom_core::ports::{Job, JobQueue, QueueError};
use tokio::sync::mpsc;

/// The sending half: a [`JobQueue`].
#[derive(Debug, Clone)]
pub struct InProcessQueue {
    tx: mpsc::UnboundedSender<Job>,
}

/// The receiving half, for the local host's worker loop.
#[derive(Debug)]
pub struct JobReceiver {
    rx: mpsc::UnboundedReceiver<Job>,
}

impl InProcessQueue {
    /// A new queue and the receiver of its jobs.
    pub fn new() -> (Self, JobReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, JobReceiver { rx })
    }
}

impl JobReceiver {
    /// The next due job; `None` once every queue handle (and pending delayed job) is gone.
    pub async fn recv(&mut self) -> Option<Job> {
        self.rx.recv().await
    }

    /// A job that is already due, without waiting; `None` when there is none right now.
    pub fn try_recv(&mut self) -> Option<Job> {
        self.rx.try_recv().ok()
    }
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        Job::check_delays(jobs)?;
        if self.tx.is_closed() {
            return Err(QueueError::Unavailable(
                "the job receiver has stopped".into(),
            ));
        }
        for job in jobs {
            if job.delay_seconds == 0 {
                self.tx
                    .send(job.clone())
                    .map_err(|_| QueueError::Unavailable("the job receiver has stopped".into()))?;
                continue;
            }
            let tx = self.tx.clone();
            let job = job.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(u64::from(job.delay_seconds))).await;
                if tx.send(job).is_err() {
                    tracing::warn!("a delayed job was dropped: the job receiver has stopped");
                }
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mailroom_core::ports::JobKind;

    use super::*;

    fn job(id: &str, delay_seconds: u32) -> Job {
        Job {
            account_id: id.into(),
            kind: JobKind::Sync,
            delay_seconds,
            version: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn delivers_due_jobs_first_and_delayed_ones_later() {
        let (queue, mut rx) = InProcessQueue::new();
        queue
            .enqueue(&[job("late", 60), job("now", 0)])
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap().account_id, "now");
        // With the clock paused, the runtime advances time to the timer when idle.
        assert_eq!(rx.recv().await.unwrap().account_id, "late");
    }

    #[tokio::test]
    async fn refuses_long_delays_and_a_stopped_receiver() {
        let (queue, rx) = InProcessQueue::new();
        let err = queue
            .enqueue(&[job("a", 0), job("b", 901)])
            .await
            .unwrap_err();
        assert!(matches!(err, QueueError::Rejected { failed: 1, .. }));
        drop(rx);
        assert!(matches!(
            queue.enqueue(&[job("a", 0)]).await,
            Err(QueueError::Unavailable(_))
        ));
    }
}

//! Lambda function `sync-scheduler`: Enqueues a sync job for every account that is due (EventBridge schedule).

// One thread: below 1,769 MB a Lambda function has less than one vCPU, and the multi-thread
// runtime's hand-offs between its threads cost CPU (about 30 % of a full sync's, BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    mailroom_runtime::lambda::serve_scheduler().await
}

//! Lambda function `sync-worker`: Syncs accounts and verifies new connections, one SQS batch per invocation.

// One thread: below 1,769 MB a Lambda function has less than one vCPU, and the multi-thread
// runtime's hand-offs between its threads cost CPU (about 30 % of a full sync's, BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    mailroom_runtime::lambda::serve_worker().await
}

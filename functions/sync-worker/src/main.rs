//! Lambda function `sync-worker`: Syncs accounts and verifies new connections, one SQS batch per invocation.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    mailroom_runtime::lambda::serve_worker().await
}

//! Lambda function `sync-scheduler`: Enqueues a sync job for every account that is due (EventBridge schedule).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    mailroom_runtime::lambda::serve_scheduler().await
}

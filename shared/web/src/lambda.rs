//! Serving a slice of the routing table as an AWS Lambda function behind API Gateway.

use mailroom_runtime::Services;

use crate::routes::{Function, router};

/// Starts the process (configuration, backends, logs) and serves `functions`' routes to the
/// Lambda runtime until it stops.
pub async fn serve(functions: &[Function]) -> Result<(), lambda_http::Error> {
    let started = Services::start(mailroom_runtime::Role::Http).await?;
    tracing::info!(functions = ?functions.iter().map(|f| f.name()).collect::<Vec<_>>(), "serving");
    lambda_http::run(router(started.services, functions)).await
}

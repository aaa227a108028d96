//! The baseline for the init benchmark (not a test): the smallest Rust `lambda_runtime` function,
//! which echoes its event. `bench-lambda` compares every Mailroom function's init and memory
//! with this binary built by the same profile.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}

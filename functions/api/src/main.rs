//! Lambda function `api`: Providers, accounts, messages, sync trigger and health endpoints.

use mailroom_web::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    mailroom_web::lambda::serve(&[Function::Api]).await
}

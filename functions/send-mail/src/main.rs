//! Lambda function `send-mail`: Sends mail as a connected account (POST /v1/accounts/{id}/send).

use mailroom_web::Function;

// One thread: below 1,769 MB a Lambda function has less than one vCPU, and the multi-thread
// runtime's hand-offs between its threads cost CPU (about 30 % of a full sync's, BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    mailroom_web::lambda::serve(&[Function::SendMail]).await
}

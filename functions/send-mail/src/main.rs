//! Lambda function `send-mail`: Sends mail as a connected account (POST /v1/accounts/{id}/send).

use mailroom_web::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    mailroom_web::lambda::serve(&[Function::SendMail]).await
}

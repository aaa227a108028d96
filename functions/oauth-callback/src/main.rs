//! Lambda function `oauth-callback`: The OAuth redirect target: exchanges the code and connects the mailbox.

use mailroom_web::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    mailroom_web::lambda::serve(&[Function::OAuthCallback]).await
}

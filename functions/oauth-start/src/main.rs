//! Lambda function `oauth-start`: Starts an OAuth authorization (POST /v1/oauth/{provider}/start).

use mailroom_web::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    mailroom_web::lambda::serve(&[Function::OAuthStart]).await
}

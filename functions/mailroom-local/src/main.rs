//! `mailroom-local`: the local host serving every function in one process (embedded store by
//! default; `MAILROOM_STORE=dynamodb` for the AWS adapters).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let started = match mailroom_runtime::Services::start(mailroom_runtime::Role::Http).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("mailroom-local could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match mailroom_web::local::run(started).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailroom-local stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

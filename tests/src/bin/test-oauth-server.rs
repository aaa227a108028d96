//! The test OAuth provider as a process (what Dovecot introspects against): listens on the
//! address given as the first argument or `MAILROOM_TEST_OAUTH_LISTEN` (default `127.0.0.1:0`)
//! and prints its base URL on the first line of standard output.

use std::io::Write;

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MAILROOM_TEST_OAUTH_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = TcpListener::bind(&listen).await?;
    let (_state, url, task) = mailroom_tests::oauth_server::serve(listener)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}")?;
        out.flush()?;
    }
    tokio::select! {
        _ = task => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

//! The local host: every function's routes on one server, with the sync scheduler on a timer and
//! the sync worker draining the in-process queue, stopped cleanly on Ctrl-C.

use std::future::Future;
use std::net::SocketAddr;

use mailroom_runtime::Started;
use tokio::net::TcpListener;

use crate::routes::{Function, router};

/// What stopped the local host.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("could not listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Binds `MAILROOM_LISTEN` and serves until Ctrl-C.
pub async fn run(started: Started) -> Result<(), LocalError> {
    let address = started.services.config.listen.clone();
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|source| LocalError::Listen { address, source })?;
    serve(listener, started, shutdown_signal()).await
}

/// Serves every route on `listener` until `shutdown` completes, with the background sync loops.
pub async fn serve(
    listener: TcpListener,
    started: Started,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    let local: Option<SocketAddr> = listener.local_addr().ok();
    let services = started.services;
    let config = &services.config;
    tracing::info!(
        url = %local.map(|a| format!("http://{a}")).unwrap_or_default(),
        public_url = %config.public_url,
        data_dir = %config.data_dir.display(),
        store = ?config.store,
        "mailroom is listening"
    );
    let app = router(services.clone(), &Function::ALL);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(LocalError::Serve)?;
    tracing::info!("mailroom stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a signal handler the server runs until killed, which is still safe.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

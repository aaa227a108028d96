//! The local host: every function's routes on one server, with the sync scheduler on a timer and
//! the sync worker draining the in-process queue on a thread of their own, stopped cleanly on
//! Ctrl-C.

use std::future::Future;
use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use mailroom_embedded::JobReceiver;
use mailroom_runtime::{Services, Started, jobs};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::routes::{Function, router};

/// How long one local job may run before its sync stops between batches (the next run resumes).
const LOCAL_JOB_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// How long a failed job waits before it is offered again.
const RETRY_DELAY_SECONDS: u32 = 60;

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
    #[error("could not start the sync thread: {0}")]
    SyncThread(std::io::Error),
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
    let api_key = if config.api_key.is_some() {
        "from MAILROOM_API_KEY".to_owned()
    } else {
        format!(
            "in {}",
            config
                .data_dir
                .join(mailroom_runtime::api_key::KEY_FILE)
                .display()
        )
    };
    tracing::info!(
        url = %local.map(|a| format!("http://{a}")).unwrap_or_default(),
        pages = %format!("{}/ui", config.public_url.as_str().trim_end_matches('/')),
        api_key = %api_key,
        public_url = %config.public_url,
        data_dir = %config.data_dir.display(),
        store = ?config.store,
        "mailroom is listening; open the pages and log in with the API key"
    );
    let sync_thread = match started.jobs {
        Some(jobs) => Some(SyncThread::start(services.clone(), jobs)?),
        None => None,
    };
    let app = router(services.clone(), &Function::ALL);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(sync_thread) = sync_thread {
        sync_thread.stop().await;
    }
    result.map_err(LocalError::Serve)?;
    tracing::info!("mailroom stopped");
    Ok(())
}

/// The scheduler and the worker on one OS thread with a current-thread runtime, as the Lambda
/// functions run them: a sync's reading, parsing and hashing then stay on one thread instead of
/// being handed between the HTTP server's workers (about 30 % of a full sync's CPU went to
/// those hand-offs, BENCHMARKS.md), and a long sync never competes with requests for a worker.
struct SyncThread {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl SyncThread {
    fn start(services: Arc<Services>, jobs: JobReceiver) -> Result<Self, LocalError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LocalError::SyncThread)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mailroom-sync".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        () = scheduler_loop(services.clone()) => {}
                        () = worker_loop(services, jobs) => {}
                    }
                });
                // An abandoned sync is safe: cursors move only after a batch is stored, and
                // leases expire. Blocking store calls still running finish on their own.
                runtime.shutdown_background();
            })
            .map_err(LocalError::SyncThread)?;
        Ok(Self { stop, thread })
    }

    /// Stops the loops and waits for the thread, off the async workers.
    async fn stop(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::warn!("the sync thread did not stop cleanly");
        }
    }
}

/// Runs the scheduler every minute (or every sync interval, if shorter).
async fn scheduler_loop(services: Arc<Services>) {
    let period = services.config.sync_interval.min(Duration::from_secs(60));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = jobs::schedule(&services).await {
            tracing::warn!(error = %e, "the scheduler run failed; it will run again");
        }
    }
}

/// Drains the in-process queue, a few jobs at a time; a failed job is offered again later.
async fn worker_loop(services: Arc<Services>, mut receiver: JobReceiver) {
    let engine = Arc::new(jobs::sync_engine(&services));
    let slots = Arc::new(Semaphore::new(services.config.worker_concurrency));
    while let Some(mut job) = receiver.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (services, engine) = (services.clone(), engine.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + LOCAL_JOB_DEADLINE;
            if !jobs::run_one(&services, &engine, &job, deadline).await {
                job.delay_seconds = RETRY_DELAY_SECONDS;
                if let Err(e) = services.queue.enqueue(std::slice::from_ref(&job)).await {
                    tracing::warn!(account_id = %job.account_id, error = %e, "could not queue the job again");
                }
            }
            drop(slot);
        });
    }
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

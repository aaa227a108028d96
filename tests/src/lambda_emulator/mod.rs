//! A local AWS Lambda Runtime API for benchmarks: the four endpoints a custom runtime talks to
//! (`invocation/next`, `{id}/response`, `{id}/error`, `init/error`) on 127.0.0.1, so a function
//! binary runs here exactly as it starts in Lambda. It records when the runtime first polls for
//! work (the end of its init) and times each invocation from hand-over to answer.

pub mod events;
pub mod functions;
pub mod run;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot, watch};

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
}

struct Invocation {
    id: String,
    payload: Vec<u8>,
    reply: oneshot::Sender<Outcome>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_poll: watch::Sender<Option<Instant>>,
    init_error: Mutex<Option<String>>,
}

/// A running Runtime API. Dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    tx: mpsc::Sender<Invocation>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(Instant::now());
            return true;
        }
        false
    });
    let Some(invocation) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    lock(&shared.pending).insert(invocation.id.clone(), invocation.reply);
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64 + 900_000)
        .unwrap_or(0);
    let mut response = invocation.payload.into_response();
    let headers = response.headers_mut();
    let pairs = [
        ("lambda-runtime-aws-request-id", invocation.id),
        ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match lock(&shared.pending).remove(id) {
        Some(reply) => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answer(&shared, &id, Outcome::Response(body.to_vec()))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answer(&shared, &id, Outcome::Error(body.to_vec()))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *lock(&shared.init_error) = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

impl Emulator {
    /// Serves the Runtime API on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            first_poll: watch::channel(None).0,
            init_error: Mutex::new(None),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            tx,
            shared,
            next_id: AtomicU64::new(1),
            server,
        })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for a function served by this emulator.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// When the runtime first asked for work, once it has.
    pub async fn first_poll(&self) -> Instant {
        let mut rx = self.shared.first_poll.subscribe();
        loop {
            if let Some(at) = *rx.borrow_and_update() {
                return at;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `shared`, which outlives this call.
                std::future::pending::<()>().await;
            }
        }
    }

    /// What the function reported through `init/error`, if anything.
    pub fn init_error(&self) -> Option<String> {
        lock(&self.shared.init_error).clone()
    }

    /// Hands `payload` to the function and waits for its answer; returns it with the time from
    /// hand-over to answer.
    pub async fn invoke(&self, payload: Vec<u8>) -> Result<(Outcome, Duration), String> {
        let id = format!("bench-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (reply, answered) = oneshot::channel();
        let started = Instant::now();
        self.tx
            .send(Invocation { id, payload, reply })
            .await
            .map_err(|_| "the emulator stopped".to_owned())?;
        let outcome = answered
            .await
            .map_err(|_| "the invocation was dropped".to_owned())?;
        Ok((outcome, started.elapsed()))
    }
}

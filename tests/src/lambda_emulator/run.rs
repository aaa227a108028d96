//! Runs one function binary under a fresh emulator: exec, wait for its first `next` poll (init),
//! feed it events one at a time, then read its peak RSS (`VmHWM`) before stopping it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Emulator, Outcome};

/// What one cold start and its invocations measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// exec to the first `invocation/next` poll.
    pub init: Duration,
    /// Hand-over to answer, per invocation, in order (the first one is the cold one).
    pub invocations: Vec<Duration>,
    /// Peak resident memory after the invocations, kilobytes.
    pub peak_rss_kb: u64,
    /// Summary of the first answer (HTTP status, failed items, or an error).
    pub first_answer: String,
}

/// How to start a function: its binary, its environment (the process starts with only this and
/// the Lambda variables), where its logs go.
pub struct Function<'a> {
    pub name: &'a str,
    pub binary: &'a Path,
    pub env: &'a [(String, String)],
    pub log: &'a Path,
}

/// `VmHWM` of a live process, kilobytes.
pub fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Starts `function`, measures its init, sends `events` in order, reads its peak RSS and stops it.
pub async fn cold_start(function: &Function<'_>, events: &[Vec<u8>]) -> Result<Measured, String> {
    let emulator = Emulator::start().await.map_err(|e| e.to_string())?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(function.log)
        .map_err(|e| format!("cannot open {}: {e}", function.log.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(function.binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api())
        .env("AWS_LAMBDA_FUNCTION_NAME", function.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", function.name),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("TZ", ":UTC")
        .envs(function.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", function.binary.display()))?;
    let pid = child.id().unwrap_or(0);
    let polled = tokio::select! {
        at = emulator.first_poll() => at,
        status = child.wait() => {
            return Err(format!(
                "{} exited during init ({status:?}): {} (log: {})",
                function.name,
                emulator.init_error().unwrap_or_default(),
                function.log.display()
            ));
        }
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            return Err(format!("{} did not poll within 30 s", function.name));
        }
    };
    let init = polled.saturating_duration_since(started);
    let mut invocations = Vec::with_capacity(events.len());
    let mut first_answer = String::new();
    for event in events {
        let (outcome, took) =
            tokio::time::timeout(Duration::from_secs(60), emulator.invoke(event.clone()))
                .await
                .map_err(|_| format!("{} did not answer within 60 s", function.name))??;
        if first_answer.is_empty() {
            first_answer = match outcome {
                Outcome::Response(body) => super::events::summary(&body),
                Outcome::Error(body) => format!("error: {}", String::from_utf8_lossy(&body)),
            };
        }
        invocations.push(took);
    }
    let peak_rss_kb = peak_rss_kb(pid);
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(Measured {
        init,
        invocations,
        peak_rss_kb,
        first_answer,
    })
}

/// The median of `values` (sorted copy); zero when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

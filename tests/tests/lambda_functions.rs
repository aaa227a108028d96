//! Every Lambda function binary, built as `tests/run` builds it (one `cargo build -p <function>`
//! each, so each links only its own adapters), started under our Lambda Runtime API emulator with
//! the environment Lambda gives and a store on moto, answers a real event of its trigger: API
//! Gateway v2 requests, an EventBridge schedule, an SQS batch. Catches a function that no longer
//! starts (a runtime, feature or configuration regression) where the in-process tests cannot.

use std::path::PathBuf;

use mailroom_tests::lambda_emulator::functions::{backend_env, event};
use mailroom_tests::lambda_emulator::run::{Function, cold_start};

/// Where `cargo build -p <function>` put the binaries of the dev profile.
fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug").join(name)
}

/// Each function, and the summary of its answer to its event (see `functions::event`): the API's
/// account list; 404/400 from handlers that looked up the bench's unknown provider, account and
/// OAuth state in the store; the scheduler's pass over an empty table; the worker's batch with a
/// job for a missing account, reported as no failed items (the job is dropped, not retried).
const EXPECTED: [(&str, &str); 6] = [
    ("api", "HTTP 200"),
    ("oauth-start", "HTTP 404"),
    ("oauth-callback", "HTTP 400"),
    ("send-mail", "HTTP 404"),
    ("sync-scheduler", r#"{"due":0,"enqueued":0}"#),
    ("sync-worker", "0 failed items"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_binary_starts_and_answers_its_event_under_the_runtime_api() {
    let data = tempfile::tempdir().expect("temporary directory");
    let env = backend_env("dynamodb", data.path())
        .await
        .expect("moto environment (is tests/servers/moto.sh running?)");
    for (name, expected) in EXPECTED {
        let binary = binary(name);
        assert!(
            binary.is_file(),
            "{} is missing: tests/run builds it with `cargo build -p {name}`",
            binary.display()
        );
        let log = data.path().join(format!("{name}.log"));
        let payload = serde_json::to_vec(&event(name)).expect("event JSON");
        let function = Function {
            name,
            binary: &binary,
            env: &env,
            log: &log,
        };
        let measured = cold_start(&function, &[payload.clone(), payload])
            .await
            .unwrap_or_else(|e| {
                let logged = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("{name} did not run: {e}\n--- its log ---\n{logged}")
            });
        assert_eq!(
            measured.first_answer,
            expected,
            "{name} answered {:?}; its log:\n{}",
            measured.first_answer,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert_eq!(
            measured.invocations.len(),
            2,
            "{name}: a warm invocation too"
        );
    }
}

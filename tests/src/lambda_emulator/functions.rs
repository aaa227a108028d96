//! What each Mailroom function binary gets under the emulator: the environment of a store
//! (`dynamodb` on moto, `aws-init` as on AWS, `embedded`) and one event per function that
//! reaches its store. Shared by `bench-lambda` and the `lambda_functions` test.

use std::path::Path;

use super::events;

/// The API key every function is started with.
pub const API_KEY: &str = "bench-api-key-0123456789abcdef0123456789";

/// The event each function gets: a cheap request that still reaches its store.
pub fn event(function: &str) -> serde_json::Value {
    match function {
        "api" => events::http("GET", "/v1/accounts", "", Some(API_KEY), None),
        "oauth-start" => events::http(
            "POST",
            "/v1/oauth/bench/start",
            "",
            Some(API_KEY),
            Some(r#"{"owner":"bench"}"#),
        ),
        "oauth-callback" => events::http(
            "GET",
            "/v1/oauth/bench/callback",
            "code=bench&state=bench",
            None,
            None,
        ),
        "send-mail" => events::http(
            "GET",
            "/v1/accounts/bench/sends/bench",
            "",
            Some(API_KEY),
            None,
        ),
        "sync-scheduler" => events::schedule(),
        "sync-worker" => {
            events::sqs(&[r#"{"account_id":"bench-missing","kind":"sync"}"#.to_owned()])
        }
        _ => serde_json::json!({ "hello": "world" }),
    }
}

/// The environment of `store` for a function process (which starts with nothing else but
/// the Lambda variables); `dynamodb` provisions a fresh table, bucket, queue and key on moto.
pub async fn backend_env(
    store: &str,
    data_dir: &Path,
) -> Result<Vec<(String, String)>, Box<dyn std::error::Error + Send + Sync>> {
    let mut env = vec![
        ("MAILROOM_API_KEY".to_owned(), API_KEY.to_owned()),
        (
            "MAILROOM_PUBLIC_URL".to_owned(),
            "https://api.example.test".to_owned(),
        ),
        ("RUST_LOG".to_owned(), "info".to_owned()),
    ];
    match store {
        "embedded" => {
            env.push(("MAILROOM_STORE".into(), "embedded".into()));
            env.push(("MAILROOM_DATA_DIR".into(), data_dir.display().to_string()));
        }
        "aws-init" => {
            for (k, v) in [
                ("MAILROOM_STORE", "dynamodb"),
                ("MAILROOM_KMS_KEY_ID", "alias/mailroom-bench"),
                (
                    "MAILROOM_QUEUE_URL",
                    "https://sqs.us-east-1.amazonaws.com/123456789012/mailroom-sync",
                ),
                ("AWS_ACCESS_KEY_ID", "bench"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
            ] {
                env.push((k.to_owned(), v.to_owned()));
            }
        }
        "dynamodb" => {
            let moto = crate::contract::backends::moto("lambda").await;
            let endpoint = std::env::var("MAILROOM_TEST_AWS_ENDPOINT")?;
            for (k, v) in [
                ("MAILROOM_STORE", "dynamodb".to_owned()),
                ("MAILROOM_TABLE", moto.settings.table.clone()),
                ("MAILROOM_BUCKET", moto.settings.bucket.clone()),
                (
                    "MAILROOM_KMS_KEY_ID",
                    moto.backends.provisioned.kms_key_id.clone(),
                ),
                (
                    "MAILROOM_QUEUE_URL",
                    moto.backends.provisioned.queue_url.clone(),
                ),
                ("AWS_ENDPOINT_URL", endpoint),
                ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ("AWS_SESSION_TOKEN", "test".to_owned()),
            ] {
                env.push((k.to_owned(), v));
            }
        }
        other => {
            return Err(
                format!("--store must be dynamodb, aws-init or embedded, not {other}").into(),
            );
        }
    }
    Ok(env)
}

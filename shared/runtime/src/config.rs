//! Configuration from environment variables, validated at start with messages that name the
//! variable and what is wrong with it.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// Which adapters back the store, keys, blobs and queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    /// redb file, local key file, local directory, in-process queue (the default).
    Embedded,
    /// DynamoDB, KMS, S3 and SQS.
    Dynamodb,
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required when {when}")]
    Missing {
        name: &'static str,
        when: &'static str,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Everything Mailroom reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreBackend,
    pub data_dir: PathBuf,
    pub table: String,
    pub kms_key_id: Option<String>,
    pub bucket: String,
    pub queue_url: Option<String>,
    pub queue_name: String,
    pub auto_create: bool,
    /// Path-style S3 addressing (local S3 servers need it); on by default with `AWS_ENDPOINT_URL`.
    pub s3_force_path_style: bool,
    pub public_url: Url,
    pub listen: String,
    pub api_key: Option<SecretString>,
    /// Origins (`scheme://host[:port]`) that OAuth `return_to` URLs may point at.
    pub return_to_allowlist: Vec<String>,
    pub sync_interval: Duration,
    pub data_key_cache: Duration,
    /// First sync: at most this many messages per folder (`None`: no count limit).
    pub backfill_limit: Option<u32>,
    /// First sync: only messages of the last this many days.
    pub backfill_days: Option<u32>,
    /// Accounts one worker syncs at the same time.
    pub worker_concurrency: usize,
    /// Largest total size of a send's decoded attachments (`MAILROOM_SEND_MAX_ATTACHMENT_BYTES`).
    pub send_max_attachment_bytes: u64,
    /// Whether the process runs inside AWS Lambda (JSON logs, no local key generation).
    pub in_lambda: bool,
}

/// Reads environment variables through a function, so tests can supply their own.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

fn parse_bool(name: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            name,
            reason: format!("expected 1/0/true/false, got {other:?}"),
        }),
    }
}

fn parse_seconds(
    name: &'static str,
    value: Option<String>,
    default: u64,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| ConfigError::Invalid {
                name,
                reason: format!("expected a positive number of seconds, got {v:?}"),
            }),
    }
}

fn parse_bytes(
    name: &'static str,
    value: Option<String>,
    default: u64,
) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::Invalid {
                name,
                reason: format!("expected a positive number of bytes, got {v:?}"),
            }),
    }
}

/// A positive count; `0` or `none` means no limit.
fn parse_optional_count(
    name: &'static str,
    value: Option<String>,
    default: Option<u32>,
) -> Result<Option<u32>, ConfigError> {
    match value.as_deref().map(str::trim) {
        None => Ok(default),
        Some("0" | "none") => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ConfigError::Invalid {
                name,
                reason: format!("expected a whole number, got {v:?}"),
            }),
    }
}

/// Normalises an origin (`https://app.example.com`) and rejects anything else.
pub fn parse_origin(name: &'static str, text: &str) -> Result<String, ConfigError> {
    let url = Url::parse(text.trim()).map_err(|e| ConfigError::Invalid {
        name,
        reason: format!("{text:?} is not a URL: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("{text:?} is not an http(s) origin"),
        });
    }
    Ok(url.origin().ascii_serialization())
}

impl Config {
    /// Reads and validates the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&ProcessEnv)
    }

    /// Reads and validates the configuration from `env`.
    pub fn from(env: &dyn Env) -> Result<Self, ConfigError> {
        let store = match env.var("MAILROOM_STORE").as_deref() {
            None | Some("embedded") => StoreBackend::Embedded,
            Some("dynamodb") => StoreBackend::Dynamodb,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "MAILROOM_STORE",
                    reason: format!("expected embedded or dynamodb, got {other:?}"),
                });
            }
        };
        let listen = env
            .var("MAILROOM_LISTEN")
            .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
        let public_url_text = env
            .var("MAILROOM_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{listen}"));
        let public_url = Url::parse(public_url_text.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| ConfigError::Invalid {
                name: "MAILROOM_PUBLIC_URL",
                reason: format!("{public_url_text:?} is not an http(s) URL"),
            })?;
        let api_key = match env.var("MAILROOM_API_KEY") {
            Some(key) if key.len() < 32 => {
                return Err(ConfigError::Invalid {
                    name: "MAILROOM_API_KEY",
                    reason: "must be at least 32 characters".into(),
                });
            }
            other => other.map(SecretString::from),
        };
        let mut return_to_allowlist: Vec<String> = env
            .var("MAILROOM_RETURN_TO_ALLOWLIST")
            .map(|list| {
                list.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|o| parse_origin("MAILROOM_RETURN_TO_ALLOWLIST", o))
                    .collect()
            })
            .transpose()?
            .unwrap_or_default();
        // The host's own pages start the connect flow and come back to it: its origin is always
        // allowed.
        let own_origin = public_url.origin().ascii_serialization();
        if !return_to_allowlist.contains(&own_origin) {
            return_to_allowlist.push(own_origin);
        }
        let in_lambda = env.var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let config = Config {
            store,
            data_dir: PathBuf::from(
                env.var("MAILROOM_DATA_DIR")
                    .unwrap_or_else(|| ".mailroom".to_owned()),
            ),
            table: env
                .var("MAILROOM_TABLE")
                .unwrap_or_else(|| "mailroom".to_owned()),
            kms_key_id: env.var("MAILROOM_KMS_KEY_ID"),
            bucket: env
                .var("MAILROOM_BUCKET")
                .unwrap_or_else(|| "mailroom-raw".to_owned()),
            queue_url: env.var("MAILROOM_QUEUE_URL"),
            queue_name: env
                .var("MAILROOM_QUEUE_NAME")
                .unwrap_or_else(|| "mailroom-sync".to_owned()),
            auto_create: parse_bool("MAILROOM_AUTO_CREATE", env.var("MAILROOM_AUTO_CREATE"))?,
            s3_force_path_style: match env.var("MAILROOM_S3_FORCE_PATH_STYLE") {
                Some(v) => parse_bool("MAILROOM_S3_FORCE_PATH_STYLE", Some(v))?,
                None => env.var("AWS_ENDPOINT_URL").is_some(),
            },
            public_url,
            listen,
            api_key,
            return_to_allowlist,
            sync_interval: parse_seconds(
                "MAILROOM_SYNC_INTERVAL_SECONDS",
                env.var("MAILROOM_SYNC_INTERVAL_SECONDS"),
                300,
            )?,
            // A day: the longest the sealer reuses one data key (see mailroom_core::crypto).
            data_key_cache: parse_seconds(
                "MAILROOM_DATA_KEY_CACHE_SECONDS",
                env.var("MAILROOM_DATA_KEY_CACHE_SECONDS"),
                86_400,
            )?,
            send_max_attachment_bytes: parse_bytes(
                "MAILROOM_SEND_MAX_ATTACHMENT_BYTES",
                env.var("MAILROOM_SEND_MAX_ATTACHMENT_BYTES"),
                25 * 1024 * 1024,
            )?,
            backfill_limit: parse_optional_count(
                "MAILROOM_BACKFILL_LIMIT",
                env.var("MAILROOM_BACKFILL_LIMIT"),
                Some(10_000),
            )?,
            backfill_days: parse_optional_count(
                "MAILROOM_BACKFILL_DAYS",
                env.var("MAILROOM_BACKFILL_DAYS"),
                None,
            )?,
            worker_concurrency: parse_optional_count(
                "MAILROOM_WORKER_CONCURRENCY",
                env.var("MAILROOM_WORKER_CONCURRENCY"),
                Some(4),
            )?
            .unwrap_or(4)
            // One sync is one IMAP session mostly waiting on the network: Lambda runs dozens.
            .clamp(1, 200) as usize,
            in_lambda,
        };
        config.check_backend()?;
        Ok(config)
    }

    fn check_backend(&self) -> Result<(), ConfigError> {
        if self.store != StoreBackend::Dynamodb || self.auto_create {
            return Ok(());
        }
        const WHEN: &str = "MAILROOM_STORE=dynamodb without MAILROOM_AUTO_CREATE=1";
        if self.kms_key_id.is_none() {
            return Err(ConfigError::Missing {
                name: "MAILROOM_KMS_KEY_ID",
                when: WHEN,
            });
        }
        if self.queue_url.is_none() {
            return Err(ConfigError::Missing {
                name: "MAILROOM_QUEUE_URL",
                when: WHEN,
            });
        }
        Ok(())
    }

    /// The OAuth redirect URI registered for a provider.
    pub fn redirect_uri(&self, provider_id: &str) -> String {
        format!(
            "{}/v1/oauth/{provider_id}/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from(&move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_local_and_embedded() {
        let c = config(&[]).unwrap();
        assert_eq!(c.store, StoreBackend::Embedded);
        assert_eq!(c.listen, "127.0.0.1:3000");
        assert_eq!(
            c.redirect_uri("ms"),
            "http://127.0.0.1:3000/v1/oauth/ms/callback"
        );
        assert_eq!(c.sync_interval, Duration::from_secs(300));
    }

    #[test]
    fn rejects_bad_values_with_the_variable_named() {
        let err = config(&[("MAILROOM_STORE", "postgres")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("MAILROOM_STORE"), "{err}");
        let err = config(&[("MAILROOM_API_KEY", "short")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 32"), "{err}");
        assert!(
            !err.contains("short"),
            "the key itself must not be echoed: {err}"
        );
        let err = config(&[("MAILROOM_STORE", "dynamodb")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("MAILROOM_KMS_KEY_ID"), "{err}");
        let err = config(&[("MAILROOM_RETURN_TO_ALLOWLIST", "javascript:alert(1)")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("origin"), "{err}");
    }

    #[test]
    fn allowlist_entries_become_origins() {
        let c = config(&[(
            "MAILROOM_RETURN_TO_ALLOWLIST",
            "https://app.example.com/path, http://localhost:8080",
        )])
        .unwrap();
        assert_eq!(
            c.return_to_allowlist,
            vec![
                "https://app.example.com",
                "http://localhost:8080",
                "http://127.0.0.1:3000"
            ]
        );
    }
}

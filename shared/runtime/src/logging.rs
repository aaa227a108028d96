//! Logging: JSON lines in Lambda (CloudWatch), human-readable lines locally; `RUST_LOG` filters.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter `RUST_LOG` asks for: comma-separated `target=level` directives and an optional bare
/// default level (`info`, `mailroom_mail=debug,warn`); `info` when unset or unreadable. A
/// `Targets` filter rather than `EnvFilter`: EnvFilter's span and field-value directives bring a
/// regex engine that was ~0.4 MB of every function binary.
fn filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| Targets::from_str(&value).ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// Starts the tracing subscriber once; later calls do nothing.
pub fn init(json: bool) {
    let builder = tracing_subscriber::fmt().with_target(true);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .finish()
            .with(filter())
            .try_init()
    } else {
        builder.finish().with(filter()).try_init()
    };
}

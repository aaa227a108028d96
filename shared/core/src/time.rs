//! Time helpers: the store keeps instants as Unix seconds, the API shows them as RFC 3339.

use chrono::{DateTime, Utc};

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    Utc::now().timestamp()
}

/// Formats Unix seconds as RFC 3339 (UTC) for API responses.
pub fn to_rfc3339(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

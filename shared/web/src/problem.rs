//! RFC 9457 problem details: every error the HTTP edge returns, with a stable `type`, a `title`,
//! the `status` and a `detail` that helps the caller and never carries a secret.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailroom_core::crypto::CryptoError;
use mailroom_core::ports::StoreError;
use mailroom_core::records::RecordError;
use serde_json::{Map, Value, json};

/// The media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem response.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable machine-readable kind, e.g. `invalid-request`; `type` is `urn:mailroom:problem:<kind>`.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Extra members (for example `errors` listing invalid fields).
    pub extra: Map<String, Value>,
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "The request is invalid",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub fn unavailable(detail: impl Into<String>, retry_after: u64) -> Self {
        let mut p = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporarily unavailable",
            detail,
        );
        p.retry_after = Some(retry_after);
        p
    }

    /// An unexpected failure: the caller gets a generic detail, the log gets the cause.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request could not be completed; see the server log",
        )
    }

    /// Adds an extra member to the body.
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": format!("urn:mailroom:problem:{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(map) = body.as_object_mut() {
            map.extend(self.extra.clone());
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConditionFailed { .. } => {
                Problem::conflict("the record was changed by another request; retry")
            }
            StoreError::Throttled | StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "store unavailable");
                Problem::unavailable("storage is temporarily unavailable; retry shortly", 2)
            }
            other => Problem::internal(&other),
        }
    }
}

impl From<CryptoError> for Problem {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Key(mailroom_core::ports::KeyError::Unavailable(_)) => {
                tracing::warn!(error = %e, "key service unavailable");
                Problem::unavailable(
                    "the key service is temporarily unavailable; retry shortly",
                    2,
                )
            }
            other => Problem::internal(&other),
        }
    }
}

impl From<RecordError> for Problem {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Store(e) => e.into(),
            RecordError::Crypto(e) => e.into(),
        }
    }
}

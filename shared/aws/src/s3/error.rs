//! What can go wrong talking to S3, which of it is worth another attempt (as the SDK's standard
//! retry mode decides), and reading S3's XML error body. No message carries a credential, a
//! signature or a header: only the operation, the status, S3's code and message, or the
//! transport's reason.

use super::Operation;
use super::xml;

/// Error codes S3 answers that another attempt may clear (throttling and transient errors).
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "TooManyRequestsException",
];

/// A failed S3 call.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// S3 answered with an error status.
    #[error("S3 {operation:?} was refused ({status}): {code}: {message}")]
    Service {
        operation: Operation,
        status: u16,
        code: String,
        message: String,
    },
    /// The request could not be sent or its answer not read (connection, TLS, timeout).
    #[error("S3 {operation:?} could not be completed: {reason}")]
    Transport {
        operation: Operation,
        reason: String,
        /// Whether it timed out (else: a connection or protocol failure).
        timeout: bool,
    },
    /// S3 answered 2xx with a body this adapter cannot read.
    #[error("S3 {operation:?} answered something unreadable: {reason}")]
    Response {
        operation: Operation,
        reason: String,
    },
    #[error("cannot get AWS credentials for S3: {0}")]
    Credentials(String),
    #[error("cannot sign the S3 request: {0}")]
    Signing(String),
    #[error("no AWS region is configured for S3 (set AWS_REGION)")]
    NoRegion,
    #[error("cannot set up the HTTPS client for S3: {0}")]
    Client(String),
}

impl S3Error {
    /// The error of a non-2xx answer: S3's `<Error><Code>…<Message>` when the body has them,
    /// else the status (HEAD answers have no body).
    pub(crate) fn from_answer(operation: Operation, status: u16, body: &[u8]) -> Self {
        let (code, message) = xml::error_body(body).unwrap_or_else(|| {
            let code = match status {
                404 => "NotFound",
                403 => "Forbidden",
                429 => "TooManyRequests",
                s if s >= 500 => "ServerError",
                _ => "BadRequest",
            };
            (code.to_owned(), "no error body".to_owned())
        });
        Self::Service {
            operation,
            status,
            code,
            message,
        }
    }

    /// S3's error code, when S3 answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when S3 answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether another attempt may succeed: transport failures and timeouts, 5xx, 429 and the
    /// throttling and transient codes; never a refusal (4xx) or a local failure.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Service { status, code, .. } => {
                *status >= 500 || *status == 429 || RETRYABLE_CODES.contains(&code.as_str())
            }
            _ => false,
        }
    }
}

/// The transport error of `e`: its message and the chain of its causes (without the URL; reqwest
/// never prints headers).
pub(crate) fn transport(operation: Operation, e: reqwest::Error) -> S3Error {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    S3Error::Transport {
        operation,
        reason,
        timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_code_and_message_and_decide_retries() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate &amp; retry.</Message><RequestId>1</RequestId></Error>"#;
        let e = S3Error::from_answer(Operation::PutObject, 503, body);
        assert_eq!(e.code(), Some("SlowDown"));
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "S3 PutObject was refused (503): SlowDown: Please reduce your request rate & retry."
        );
        let missing = S3Error::from_answer(
            Operation::GetObject,
            404,
            b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        );
        assert_eq!(missing.code(), Some("NoSuchKey"));
        assert!(!missing.is_retryable());
        let head = S3Error::from_answer(Operation::GetObject, 404, b"");
        assert_eq!(head.code(), Some("NotFound"));
        let timeout = S3Error::from_answer(
            Operation::GetObject,
            400,
            b"<Error><Code>RequestTimeout</Code><Message>idle</Message></Error>",
        );
        assert!(timeout.is_retryable());
        assert!(!S3Error::from_answer(Operation::GetObject, 403, b"").is_retryable());
        assert!(S3Error::from_answer(Operation::GetObject, 429, b"").is_retryable());
    }
}

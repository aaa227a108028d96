//! IMAP errors, classified by what the caller should do: refresh the token, back off, retry
//! later, or give up on the server's answer.

use std::time::Duration;

/// What kind of failure an [`ImapError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server refused the credentials (or the session's token expired).
    Auth,
    /// The server asked us to slow down.
    Throttled,
    /// The network, TLS or the server's availability failed; worth retrying later.
    Connection,
    /// The server answered something we cannot work with.
    Protocol,
}

/// What the IMAP client could not do. Messages never contain tokens.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("could not connect to the IMAP server {server}: {reason}")]
    Connect { server: String, reason: String },
    #[error("the IMAP connection failed during {during}: {reason}")]
    Connection { during: String, reason: String },
    #[error("the IMAP server did not answer {during} in time")]
    Timeout { during: String },
    #[error("the IMAP server refused the XOAUTH2 login: {reason}")]
    Auth {
        reason: String,
        /// The decoded error challenge (Gmail-style JSON), when the server sent one.
        challenge: Option<String>,
    },
    #[error("the IMAP server is throttling us (retry after {} s): {reason}", .retry_after.as_secs())]
    Throttled {
        retry_after: Duration,
        reason: String,
    },
    #[error("the IMAP server rejected {during}: {reason}")]
    Protocol { during: String, reason: String },
}

/// Used when a server says it throttles without saying for how long.
const DEFAULT_BACKOFF: Duration = Duration::from_secs(300);

impl ImapError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImapError::Auth { .. } => ErrorKind::Auth,
            ImapError::Throttled { .. } => ErrorKind::Throttled,
            ImapError::Connect { .. }
            | ImapError::Connection { .. }
            | ImapError::Timeout { .. } => ErrorKind::Connection,
            ImapError::Protocol { .. } => ErrorKind::Protocol,
        }
    }

    /// Whether the server said the folder does not exist (a configured folder was removed).
    pub fn is_missing_folder(&self) -> bool {
        let ImapError::Protocol { reason, .. } = self else {
            return false;
        };
        let lower = reason.to_ascii_lowercase();
        [
            "nonexistent",
            "doesn't exist",
            "does not exist",
            "no such mailbox",
            "unknown mailbox",
        ]
        .iter()
        .any(|p| lower.contains(p))
    }

    /// Classifies a failed command from async-imap.
    pub(crate) fn from_imap(during: &str, err: async_imap::error::Error) -> Self {
        use async_imap::error::Error as E;
        match err {
            E::Io(e) => connection(during, e.to_string()),
            E::ConnectionLost => connection(during, "the server closed the connection".into()),
            E::Bad(text) | E::No(text) => classify_text(during, &text),
            other => ImapError::Protocol {
                during: during.to_owned(),
                reason: short(&other.to_string()),
            },
        }
    }
}

pub(crate) fn connection(during: &str, reason: String) -> ImapError {
    // A BYE may carry throttling or token expiry; the text decides.
    match classify_text(during, &reason) {
        ImapError::Protocol { .. } => ImapError::Connection {
            during: during.to_owned(),
            reason: short(&reason),
        },
        other => other,
    }
}

/// Keeps server text short in errors and logs (a parse error may quote a whole message).
pub(crate) fn short(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Reads a server's status text: throttling (Outlook's `Suggested Backoff Time: N
/// milliseconds`), token expiry, authentication failure, or a plain refusal.
pub(crate) fn classify_text(during: &str, text: &str) -> ImapError {
    let lower = text.to_ascii_lowercase();
    if let Some(retry_after) = suggested_backoff(text) {
        return ImapError::Throttled {
            retry_after,
            reason: short(text),
        };
    }
    if lower.contains("throttl") {
        return ImapError::Throttled {
            retry_after: DEFAULT_BACKOFF,
            reason: short(text),
        };
    }
    if lower.contains("authenticationfailed")
        || lower.contains("accesstokenexpired")
        || lower.contains("session invalidated")
        || lower.contains("authenticate failed")
    {
        return ImapError::Auth {
            reason: short(text),
            challenge: None,
        };
    }
    ImapError::Protocol {
        during: during.to_owned(),
        reason: short(text),
    }
}

/// Parses `Suggested Backoff Time: N milliseconds`.
pub(crate) fn suggested_backoff(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("suggested backoff time:")? + "suggested backoff time:".len();
    let digits: String = lower[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let ms: u64 = digits.parse().ok()?;
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_outlook_throttling() {
        let e = classify_text(
            "FETCH",
            "outcome: Request is throttled. Suggested Backoff Time: 299951 milliseconds",
        );
        match e {
            ImapError::Throttled { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_millis(299_951))
            }
            other => panic!("not throttled: {other:?}"),
        }
    }

    #[test]
    fn classifies_expiry_and_refusals() {
        let bye = connection(
            "FETCH",
            "BYE Session invalidated - AccessTokenExpired".into(),
        );
        assert_eq!(bye.kind(), ErrorKind::Auth);
        assert_eq!(
            classify_text("SELECT", "Mailbox doesn't exist").kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            connection("FETCH", "broken pipe".into()).kind(),
            ErrorKind::Connection
        );
    }
}

//! SMTP errors, classified by what the caller should do: tell an administrator to enable SMTP
//! AUTH, refresh the token, retry later, or report the server's refusal as it was worded.

use std::time::Duration;

/// What Microsoft 365 answers when SMTP AUTH is off for the tenant or mailbox (Security Defaults
/// or `SmtpClientAuthenticationDisabled`); OAuth does not bypass it.
pub const AUTH_DISABLED_CODE: &str = "5.7.139";

/// The fix an Exchange Online administrator applies for [`AUTH_DISABLED_CODE`].
pub const AUTH_DISABLED_FIX: &str = "SMTP AUTH is disabled for this Microsoft 365 tenant or mailbox. \
An Exchange administrator can enable it for the tenant with \
`Set-TransportConfig -SmtpClientAuthenticationDisabled $false`, or for this mailbox only with \
`Set-CASMailbox -Identity <address> -SmtpClientAuthenticationDisabled $false` \
(Security Defaults, when on, also block it).";

/// What the SMTP client could not do. Messages carry the server's text, never a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SmtpError {
    #[error("could not connect to the SMTP server {server}: {reason}")]
    Connect { server: String, reason: String },
    #[error("the SMTP server did not answer {during} in time")]
    Timeout { during: String },
    #[error("the SMTP connection failed during {during}: {reason}")]
    Connection { during: String, reason: String },
    #[error("the SMTP server does not offer STARTTLS; refusing to authenticate in plain text")]
    NoStartTls,
    #[error("the SMTP server does not offer AUTH XOAUTH2")]
    NoXoauth2,
    /// `535 5.7.139`: the token is fine, the tenant forbids SMTP AUTH.
    #[error("SMTP AUTH is disabled for the tenant: {reply}")]
    AuthDisabled { reply: String },
    /// The server refused the token (expired, revoked, wrong audience or user).
    #[error("the SMTP server refused the XOAUTH2 login: {reply}")]
    AuthRejected {
        reply: String,
        /// The decoded error challenge (Gmail-style JSON), when the server sent one.
        challenge: Option<String>,
    },
    /// A 4xx reply (421 closing, 432/451/452 limits): worth retrying later.
    #[error("the SMTP server answered {during} with a temporary failure: {code} {reply}")]
    Transient {
        during: String,
        code: u16,
        reply: String,
    },
    /// A 5xx reply to MAIL, DATA or the message itself.
    #[error("the SMTP server refused {during}: {code} {reply}")]
    Rejected {
        during: String,
        code: u16,
        reply: String,
    },
    #[error("the SMTP server answered {during} unexpectedly: {reason}")]
    Protocol { during: String, reason: String },
}

impl SmtpError {
    /// How long to wait before retrying, for failures that may pass on their own.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SmtpError::Transient { code: 421, .. } => Some(Duration::from_secs(60)),
            SmtpError::Transient { reply, .. } if reply.contains("4.3.2") => {
                // Exchange: too many concurrent connections for the mailbox.
                Some(Duration::from_secs(30))
            }
            SmtpError::Transient { .. } => Some(Duration::from_secs(60)),
            SmtpError::Connect { .. }
            | SmtpError::Timeout { .. }
            | SmtpError::Connection { .. } => Some(Duration::from_secs(30)),
            _ => None,
        }
    }

    /// Builds the error for a negative reply to `during`.
    pub(crate) fn from_reply(during: &str, code: u16, reply: String) -> Self {
        let during = during.to_owned();
        match code {
            400..=499 => SmtpError::Transient {
                during,
                code,
                reply,
            },
            _ => SmtpError::Rejected {
                during,
                code,
                reply,
            },
        }
    }

    /// Classifies a lettre error from a command: a negative reply keeps its code and text;
    /// anything else is the connection failing.
    pub(crate) fn from_lettre(during: &str, e: &lettre::transport::smtp::Error) -> Self {
        match reply_of(e) {
            Some((code, text)) => Self::from_reply(during, code, text),
            None if e.is_timeout() => SmtpError::Timeout {
                during: during.to_owned(),
            },
            None if e.is_response() => SmtpError::Protocol {
                during: during.to_owned(),
                reason: short(&e.to_string()),
            },
            None => SmtpError::Connection {
                during: during.to_owned(),
                reason: short(&e.to_string()),
            },
        }
    }
}

/// The reply code and text of a lettre error caused by a negative reply.
pub(crate) fn reply_of(e: &lettre::transport::smtp::Error) -> Option<(u16, String)> {
    let code: u16 = e.status()?.to_string().parse().ok()?;
    let text = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    Some((code, short(&text)))
}

/// Whether a refused AUTH means "SMTP AUTH is disabled" rather than "bad token".
pub(crate) fn is_auth_disabled(code: u16, text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    code == 535
        && (text.contains(AUTH_DISABLED_CODE)
            || lower.contains("smtpclientauthentication is disabled"))
}

/// Keeps server text short in errors, records and logs.
pub(crate) fn short(text: &str) -> String {
    const MAX: usize = 300;
    let one_line = text.replace(['\r', '\n'], " ");
    match one_line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_microsofts_auth_disabled_reply() {
        assert!(is_auth_disabled(
            535,
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."
        ));
        assert!(!is_auth_disabled(535, "5.7.3 Authentication unsuccessful"));
        assert!(!is_auth_disabled(454, "4.7.0 5.7.139 lookalike"));
    }

    #[test]
    fn temporary_failures_say_when_to_retry() {
        let e = SmtpError::from_reply("MAIL", 421, "4.3.2 Service not available".into());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        let e = SmtpError::from_reply(
            "RCPT",
            432,
            "4.3.2 Concurrent connections limit exceeded".into(),
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
        let e = SmtpError::from_reply("DATA", 554, "5.6.0 Message rejected".into());
        assert_eq!(e.retry_after(), None);
    }
}

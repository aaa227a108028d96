//! SASL XOAUTH2 login. The client response is
//! `base64("user=" address "\x01auth=Bearer " token "\x01\x01")`. Multi-kilobyte tokens go in the
//! two-step form (`AUTHENTICATE XOAUTH2`, `+`, response) because some servers refuse long command
//! lines; if a server refuses one form, the other is tried. A server that rejects the token sends
//! an error challenge (Gmail: base64 JSON `{"status":"401",...}`), answered with an empty line.

use async_imap::{Authenticator, Client, Session};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::connect::{BoxedIo, ImapConnector};
use super::error::{ImapError, short};

/// Command lines longer than this use the two-step form (Gmail rejects over-long lines).
const MAX_INITIAL_RESPONSE_LINE: usize = 1000;

struct XOAuth2 {
    payload: Zeroizing<Vec<u8>>,
    sent: bool,
    error_challenge: Option<String>,
}

impl Authenticator for &mut XOAuth2 {
    type Response = Zeroizing<Vec<u8>>;

    fn process(&mut self, challenge: &[u8]) -> Self::Response {
        // The first continuation asks for the credentials (some servers put text in it).
        if !self.sent {
            self.sent = true;
            return self.payload.clone();
        }
        // Anything after our response is the server's error report: keep it, answer empty so
        // the server finishes with a tagged NO.
        self.error_challenge = Some(short(&String::from_utf8_lossy(challenge)));
        Zeroizing::new(Vec::new())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    TwoStep,
    InitialResponse,
}

fn payload(user: &str, token: &SecretString) -> Zeroizing<Vec<u8>> {
    let mut p = Zeroizing::new(Vec::with_capacity(
        token.expose_secret().len() + user.len() + 20,
    ));
    p.extend_from_slice(b"user=");
    p.extend_from_slice(user.as_bytes());
    p.extend_from_slice(b"\x01auth=Bearer ");
    p.extend_from_slice(token.expose_secret().as_bytes());
    p.extend_from_slice(b"\x01\x01");
    p
}

/// Logs in with XOAUTH2; on success the session is authenticated. `greeting` holds the
/// capabilities the greeting announced, if it did.
pub(crate) async fn login(
    connector: &ImapConnector,
    client: Client<BoxedIo>,
    user: &str,
    token: &SecretString,
    greeting: Option<&[String]>,
) -> Result<Session<BoxedIo>, ImapError> {
    // Base64 grows by 4/3; the rest of the line is the tag and `AUTHENTICATE XOAUTH2 `.
    let line_len = payload(user, token).len().div_ceil(3) * 4 + 30;
    // A greeting that lists capabilities without SASL-IR says the one-line form would be refused.
    let sasl_ir = greeting.is_none_or(|caps| caps.iter().any(|c| c == "SASL-IR"));
    let first = if sasl_ir && line_len <= MAX_INITIAL_RESPONSE_LINE {
        Form::InitialResponse
    } else {
        Form::TwoStep
    };
    let second = match first {
        Form::TwoStep => Form::InitialResponse,
        Form::InitialResponse => Form::TwoStep,
    };
    match attempt(connector, client, user, token, first).await {
        Ok(session) => Ok(session),
        // A BAD (not a NO) means the server refused the form, not the token: try the other.
        Err((Some(client), ImapError::Protocol { .. })) => {
            tracing::debug!(?first, "XOAUTH2 form refused; trying the other form");
            attempt(connector, client, user, token, second)
                .await
                .map_err(|(_, e)| e)
        }
        Err((_, e)) => Err(e),
    }
}

async fn attempt(
    connector: &ImapConnector,
    client: Client<BoxedIo>,
    user: &str,
    token: &SecretString,
    form: Form,
) -> Result<Session<BoxedIo>, (Option<Client<BoxedIo>>, ImapError)> {
    let mut auth = XOAuth2 {
        payload: payload(user, token),
        sent: false,
        error_challenge: None,
    };
    let command = match form {
        Form::TwoStep => Zeroizing::new("XOAUTH2".to_owned()),
        Form::InitialResponse => {
            auth.sent = true;
            Zeroizing::new(format!("XOAUTH2 {}", STANDARD.encode(&auth.payload)))
        }
    };
    let result = connector
        .within(
            "AUTHENTICATE",
            client.authenticate(command.as_str(), &mut auth),
        )
        .await;
    match result {
        Err(timeout) => Err((None, timeout)),
        Ok(Ok(session)) => Ok(session),
        Ok(Err((err, client))) => {
            let challenge = auth.error_challenge.take().map(|c| decode_challenge(&c));
            Err(match err {
                // RFC 5530 UNAVAILABLE: the server's authentication backend is down; the token
                // may be fine, so this must not end as "connect the mailbox again".
                async_imap::error::Error::No(text) if temporary(&text) => (
                    None,
                    ImapError::Connection {
                        during: "AUTHENTICATE".into(),
                        reason: short(&text),
                    },
                ),
                async_imap::error::Error::No(text) => (
                    None,
                    ImapError::Auth {
                        reason: short(&text),
                        challenge,
                    },
                ),
                async_imap::error::Error::Bad(text) if challenge.is_none() => (
                    Some(client),
                    ImapError::Protocol {
                        during: "AUTHENTICATE".into(),
                        reason: short(&text),
                    },
                ),
                async_imap::error::Error::Bad(text) => (
                    None,
                    ImapError::Auth {
                        reason: short(&text),
                        challenge,
                    },
                ),
                other => (None, ImapError::from_imap("AUTHENTICATE", other)),
            })
        }
    }
}

/// Whether a refused login says the failure is temporary (a server-side outage, not the token).
fn temporary(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("unavailable") || lower.contains("temporary") || lower.contains("try again")
}

/// Error challenges arrive base64-decoded already; keep them readable (JSON when it is JSON).
fn decode_challenge(raw: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(json) => json.to_string(),
        Err(_) => raw.to_owned(),
    }
}

/// What an XOAUTH2 error challenge says: `401` means the token is invalid or expired; `400`
/// a malformed request or wrong user.
pub fn challenge_status(challenge: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(challenge).ok()?;
    json.get("status").and_then(|s| {
        s.as_str()
            .map(str::to_owned)
            .or_else(|| Some(s.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_xoauth2_shape() {
        let p = payload("a@example.test", &SecretString::from("tok"));
        assert_eq!(&p[..], b"user=a@example.test\x01auth=Bearer tok\x01\x01");
    }

    #[test]
    fn temporary_refusals_are_told_apart() {
        assert!(temporary(
            "code: None, info: Some(\"[UNAVAILABLE] Temporary authentication failure.\")"
        ));
        assert!(!temporary(
            "code: None, info: Some(\"[AUTHENTICATIONFAILED] Invalid\")"
        ));
    }

    #[test]
    fn reads_the_challenge_status() {
        let c = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        assert_eq!(challenge_status(c).as_deref(), Some("401"));
        assert_eq!(challenge_status("not json"), None);
    }
}

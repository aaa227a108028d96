//! An SMTP session over lettre's async client: XOAUTH2 login (one-step or two-step, with the
//! error challenge answered), and delivery driven command by command so we know, for each
//! recipient, what the server said, and whether any message data left us before a failure —
//! the line between "failed, safe to retry" and "uncertain, never re-send".

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lettre::Address;
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::connect::SmtpConnector;
use super::error::{SmtpError, is_auth_disabled, reply_of, short};

/// `AUTH XOAUTH2 <response>` lines longer than this use the two-step form: Dovecot's
/// submission-login and some Gmail front ends refuse long command lines, and access tokens of
/// more than 4 KB exist.
const MAX_INITIAL_RESPONSE_LINE: usize = 1000;

/// A recipient the server refused, with its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub recipient: String,
    pub code: u16,
    pub reply: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.recipient, self.code, self.reply)
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    /// The server took responsibility for the message (250 after the data).
    Sent { reply: String },
    /// Nothing of the message reached the server, or the server refused it explicitly:
    /// retrying may send it (once).
    NotSent(SmtpError),
    /// Message data was transmitted but no final reply arrived: it may have gone out.
    Uncertain(SmtpError),
}

/// The result of [`SmtpSession::deliver`].
#[derive(Debug, Clone)]
pub struct Delivery {
    pub accepted: Vec<String>,
    pub rejected: Vec<Rejection>,
    pub outcome: DeliveryOutcome,
}

/// A connected, encrypted SMTP session.
pub struct SmtpSession {
    conn: AsyncSmtpConnection,
    connector: SmtpConnector,
}

impl fmt::Debug for SmtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSession").finish_non_exhaustive()
    }
}

/// A line holding a token, wiped from memory when dropped. lettre formats the command into a
/// short-lived string of its own before writing it; its `tracing` feature would also log command
/// lines, so that feature stays off in this workspace.
struct SecretLine(Zeroizing<String>);

impl fmt::Display for SecretLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn xoauth2_response(user: &str, token: &SecretString) -> Zeroizing<String> {
    let raw = Zeroizing::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose_secret()
    ));
    Zeroizing::new(STANDARD.encode(raw.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    InitialResponse,
    TwoStep,
}

impl SmtpSession {
    pub(crate) fn new(conn: AsyncSmtpConnection, connector: SmtpConnector) -> Self {
        Self { conn, connector }
    }

    /// Whether the server advertised XOAUTH2 after EHLO.
    pub fn offers_xoauth2(&self) -> bool {
        self.conn
            .server_info()
            .supports_auth_mechanism(Mechanism::Xoauth2)
    }

    /// Logs in with SASL XOAUTH2 as `user`.
    pub async fn authenticate(
        &mut self,
        user: &str,
        token: &SecretString,
    ) -> Result<(), SmtpError> {
        if !self.offers_xoauth2() {
            return Err(SmtpError::NoXoauth2);
        }
        let response = xoauth2_response(user, token);
        let first = if response.len() + "AUTH XOAUTH2 \r\n".len() <= MAX_INITIAL_RESPONSE_LINE {
            Form::InitialResponse
        } else {
            Form::TwoStep
        };
        match self.auth_once(&response, first).await {
            // 500/501/504: the server refused the form of the command, not the token.
            Err(SmtpError::Rejected {
                code: 500 | 501 | 504,
                ..
            }) => {
                let second = match first {
                    Form::InitialResponse => Form::TwoStep,
                    Form::TwoStep => Form::InitialResponse,
                };
                tracing::debug!(?first, "AUTH XOAUTH2 form refused; trying the other form");
                self.auth_once(&response, second).await
            }
            other => other,
        }
    }

    async fn auth_once(
        &mut self,
        response: &Zeroizing<String>,
        form: Form,
    ) -> Result<(), SmtpError> {
        let first_line = match form {
            Form::InitialResponse => SecretLine(Zeroizing::new(format!(
                "AUTH XOAUTH2 {}\r\n",
                response.as_str()
            ))),
            Form::TwoStep => SecretLine(Zeroizing::new("AUTH XOAUTH2\r\n".to_owned())),
        };
        let mut reply = self.auth_step(first_line).await?;
        let mut answered = form == Form::InitialResponse;
        let mut challenge = None;
        // At most: the prompt for our response, then one error challenge.
        for _ in 0..3 {
            if reply.0 != 334 {
                break;
            }
            let line = if answered {
                // An error challenge (base64 JSON): answer empty so the server finishes with 535.
                challenge = STANDARD
                    .decode(reply.1.trim())
                    .ok()
                    .map(|b| short(&String::from_utf8_lossy(&b)));
                SecretLine(Zeroizing::new("\r\n".to_owned()))
            } else {
                answered = true;
                SecretLine(Zeroizing::new(format!("{}\r\n", response.as_str())))
            };
            reply = self.auth_step(line).await?;
        }
        match reply.0 {
            235 => Ok(()),
            code if is_auth_disabled(code, &reply.1) => {
                Err(SmtpError::AuthDisabled { reply: reply.1 })
            }
            code @ (500 | 501 | 504) if challenge.is_none() => {
                Err(SmtpError::from_reply("AUTH", code, reply.1))
            }
            code @ 400..=499 => Err(SmtpError::from_reply("AUTH", code, reply.1)),
            334 => Err(SmtpError::Protocol {
                during: "AUTH".into(),
                reason: "the server kept sending challenges".into(),
            }),
            _ => Err(SmtpError::AuthRejected {
                reply: format!("{} {}", reply.0, reply.1),
                challenge,
            }),
        }
    }

    /// Sends one AUTH line; returns the reply code and text, positive or not.
    async fn auth_step(&mut self, line: SecretLine) -> Result<(u16, String), SmtpError> {
        match self
            .connector
            .within("AUTH", self.conn.command(line))
            .await?
        {
            Ok(response) => {
                let code = response.code().to_string().parse().unwrap_or(0);
                let text = response.message().collect::<Vec<_>>().join(" ");
                Ok((code, short(&text)))
            }
            Err(e) => match reply_of(&e) {
                Some(reply) => Ok(reply),
                None => Err(SmtpError::from_lettre("AUTH", &e)),
            },
        }
    }

    /// Sends one message: MAIL FROM, one RCPT per recipient (refusals are collected, not fatal
    /// while one recipient is accepted), DATA and the data.
    pub async fn deliver(&mut self, from: &str, recipients: &[String], message: &[u8]) -> Delivery {
        let mut delivery = Delivery {
            accepted: Vec::new(),
            rejected: Vec::new(),
            outcome: DeliveryOutcome::NotSent(SmtpError::Protocol {
                during: "MAIL".into(),
                reason: "not started".into(),
            }),
        };
        let not_sent = |mut d: Delivery, e: SmtpError| {
            d.outcome = DeliveryOutcome::NotSent(e);
            d
        };
        let sender: Address = match from.parse() {
            Ok(a) => a,
            Err(e) => {
                return not_sent(
                    delivery,
                    SmtpError::Protocol {
                        during: "MAIL".into(),
                        reason: format!("the sender {from:?} is not an address: {e}"),
                    },
                );
            }
        };
        let mut params = Vec::new();
        // Internationalized addresses need SMTPUTF8 (RFC 6531); never send them without it.
        if !from.is_ascii() || recipients.iter().any(|r| !r.is_ascii()) {
            if !self
                .conn
                .server_info()
                .supports_feature(Extension::SmtpUtfEight)
            {
                return not_sent(
                    delivery,
                    SmtpError::Protocol {
                        during: "MAIL".into(),
                        reason: "an address is not ASCII and the server lacks SMTPUTF8".into(),
                    },
                );
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() {
            if !self
                .conn
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return not_sent(
                    delivery,
                    SmtpError::Protocol {
                        during: "MAIL".into(),
                        reason: "the message has 8-bit data and the server lacks 8BITMIME".into(),
                    },
                );
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if let Err(e) = self.command("MAIL", Mail::new(Some(sender), params)).await {
            return not_sent(delivery, e);
        }
        for recipient in recipients {
            let address: Address = match recipient.parse() {
                Ok(a) => a,
                Err(_) => {
                    delivery.rejected.push(Rejection {
                        recipient: recipient.clone(),
                        code: 0,
                        reply: "not an address".into(),
                    });
                    continue;
                }
            };
            match self.command("RCPT", Rcpt::new(address, Vec::new())).await {
                Ok(()) => delivery.accepted.push(recipient.clone()),
                Err(
                    SmtpError::Transient { code, reply, .. }
                    | SmtpError::Rejected { code, reply, .. },
                ) => delivery.rejected.push(Rejection {
                    recipient: recipient.clone(),
                    code,
                    reply,
                }),
                Err(e) => return not_sent(delivery, e),
            }
        }
        if delivery.accepted.is_empty() {
            let error = recipients_refused(&delivery.rejected);
            // Leave the server in a clean state for QUIT; the reply does not matter.
            let _ = self
                .command("RSET", lettre::transport::smtp::commands::Rset)
                .await;
            return not_sent(delivery, error);
        }
        if let Err(e) = self.command("DATA", Data).await {
            return not_sent(delivery, e);
        }
        // From here on, bytes of the message are on the wire: a failure without a reply from
        // the server leaves the send uncertain.
        delivery.outcome = match self
            .connector
            .within("the message data", self.conn.message(message))
            .await
        {
            Ok(Ok(response)) => DeliveryOutcome::Sent {
                reply: short(&response.message().collect::<Vec<_>>().join(" ")),
            },
            Ok(Err(e)) => match reply_of(&e) {
                Some((code, text)) => {
                    DeliveryOutcome::NotSent(SmtpError::from_reply("the message data", code, text))
                }
                None => DeliveryOutcome::Uncertain(SmtpError::from_lettre("the message data", &e)),
            },
            Err(timeout) => DeliveryOutcome::Uncertain(timeout),
        };
        delivery
    }

    async fn command<C: fmt::Display>(
        &mut self,
        during: &str,
        command: C,
    ) -> Result<(), SmtpError> {
        match self
            .connector
            .within(during, self.conn.command(command))
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) => Err(SmtpError::from_lettre(during, &e)),
        }
    }

    /// Ends the session politely; failures do not matter any more.
    pub async fn quit(mut self) {
        let _ = self.connector.within("QUIT", self.conn.quit()).await;
    }
}

/// The error for a message every recipient of which was refused: temporary if any refusal was.
fn recipients_refused(rejected: &[Rejection]) -> SmtpError {
    let reply = short(
        &rejected
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    );
    match rejected.iter().find(|r| (400..500).contains(&r.code)) {
        Some(r) => SmtpError::Transient {
            during: "RCPT".into(),
            code: r.code,
            reply,
        },
        None => SmtpError::Rejected {
            during: "RCPT".into(),
            code: rejected.first().map_or(550, |r| r.code),
            reply,
        },
    }
}

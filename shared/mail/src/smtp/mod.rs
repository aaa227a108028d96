//! Sending mail: SMTP over rustls (implicit TLS or STARTTLS) with lettre's async client, SASL
//! XOAUTH2 with tokens from the [`TokenSource`](mailroom_core::ports::TokenSource), exactly-once
//! delivery per idempotency key, and the connect-time preflight of IMAP and SMTP login.

mod connect;
mod error;
mod outcome;
mod preflight;
mod send;
mod session;

pub use connect::SmtpConnector;
pub use error::{AUTH_DISABLED_CODE, AUTH_DISABLED_FIX, SmtpError};
pub use outcome::{STALE_PENDING_SECONDS, SendError, SendFailure, SendResult};
pub use preflight::{PREFLIGHT_KEY, PreflightError, PreflightReport, preflight};
pub use send::{DEFAULT_SMTP_TIMEOUT, Mailer};
pub use session::{Delivery, DeliveryOutcome, Rejection, SmtpSession};

//! Mailroom's mail protocols: an IMAP client (async-imap over tokio-rustls, SASL XOAUTH2), the
//! incremental, exactly-once sync engine built on it, MIME parsing, and the sync scheduler and
//! worker handlers.

pub mod compose;
pub mod imap;
pub mod jobs;
pub mod mime;
pub mod smtp;
pub mod sync;

//! Mailroom's core: domain types, the ports adapters implement, envelope encryption and the
//! services built on them. Nothing here knows of Lambda, HTTP frameworks or AWS.

pub mod crypto;
pub mod domain;
pub mod ports;
pub mod records;
pub mod time;

pub use secrecy::{ExposeSecret, SecretString};

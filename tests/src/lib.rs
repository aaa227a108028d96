//! Test support.

pub mod oauth_server;

//! Test support.

pub mod app;
pub mod oauth_server;

//! Test support.

pub mod app;
pub mod contract;
pub mod oauth_server;

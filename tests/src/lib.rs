//! Test support.

pub mod app;
pub mod contract;
pub mod faults;
pub mod oauth_server;

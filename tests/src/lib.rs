//! Test support.

pub mod app;
pub mod contract;
pub mod counting;
pub mod faults;
pub mod fixtures;
pub mod lambda_emulator;
pub mod oauth_server;
pub mod process;

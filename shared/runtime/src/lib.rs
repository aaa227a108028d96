//! Mailroom's wiring: configuration from the environment, the services container every handler
//! receives, TLS trust, the API key and logging. Lambda functions and the local host both start here.

pub mod api_key;
pub mod backends;
pub mod config;
pub mod jobs;
pub mod lambda;
pub mod logging;
pub mod services;
pub mod tls;

pub use config::{Config, ConfigError, StoreBackend};
pub use services::{Role, Services, StartError, Started};

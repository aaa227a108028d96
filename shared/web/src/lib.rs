//! Mailroom's HTTP edge: one routing table served by the Lambda functions (each its own slice of
//! it) and by the local host (all of it), with problem+json errors and API-key authentication.

pub mod auth;
pub mod extract;
pub mod lambda;
#[cfg(feature = "local")]
pub mod local;
pub mod pages;
pub mod problem;
pub mod routes;

use std::sync::Arc;

pub use problem::Problem;
pub use routes::{Access, Function, RouteSpec, router, specs};

/// What every handler receives.
pub type AppState = Arc<mailroom_runtime::Services>;

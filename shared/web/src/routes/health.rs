//! `GET /v1/health`: liveness plus a cheap store read, for load balancers and the local host.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use mailroom_core::ports::ItemKey;
use serde_json::{Value, json};

use super::{Access, Function, Route, route};
use crate::AppState;
use crate::problem::Problem;

pub(super) fn routes() -> Vec<Route> {
    vec![route(
        Function::Api,
        "GET",
        "/v1/health",
        Access::Public,
        get(health),
    )]
}

async fn health(State(services): State<AppState>) -> Result<Json<Value>, Problem> {
    services
        .repo
        .store()
        .get(&ItemKey::new("HEALTH", "HEALTH"))
        .await?;
    Ok(Json(
        json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
    ))
}

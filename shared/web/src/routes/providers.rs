//! Provider settings (the admin's OAuth apps): `PUT/GET/DELETE /v1/providers/{id}` and
//! `GET /v1/providers`. Responses never contain the client secret, only whether one is set.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use mailroom_core::time::now_unix;
use mailroom_oauth::{ProviderSettingsInput, public_view, validate};
use serde_json::json;

use super::{Access, Function, Route, route};
use crate::AppState;
use crate::extract::{Ids, JsonBody};
use crate::problem::Problem;

pub(super) fn routes() -> Vec<Route> {
    let p = "/v1/providers/{id}";
    vec![
        route(
            Function::Api,
            "GET",
            "/v1/providers",
            Access::ApiKey,
            get(list),
        ),
        route(Function::Api, "PUT", p, Access::ApiKey, put(save)),
        route(Function::Api, "GET", p, Access::ApiKey, get(show)),
        route(Function::Api, "DELETE", p, Access::ApiKey, delete(remove)),
    ]
}

async fn list(State(services): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    let providers = services.repo.list_providers().await?;
    let views: Vec<_> = providers.iter().map(public_view).collect();
    Ok(Json(json!({ "providers": views })))
}

async fn show(State(services): State<AppState>, Ids(id): Ids<String>) -> Result<Response, Problem> {
    match services.repo.get_provider(&id).await? {
        Some(p) => Ok(Json(public_view(&p)).into_response()),
        None => Err(Problem::not_found(format!("provider {id} does not exist"))),
    }
}

/// Creates or replaces settings; validation errors name each field and store nothing.
async fn save(
    State(services): State<AppState>,
    Ids(id): Ids<String>,
    JsonBody(input): JsonBody<ProviderSettingsInput>,
) -> Result<Response, Problem> {
    let existing = services.repo.get_provider(&id).await?;
    let settings = validate(&id, input, existing.as_ref(), now_unix()).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "The provider settings are invalid",
            e.to_string(),
        )
        .with("errors", json!(e.errors))
    })?;
    services
        .repo
        .put_provider(&settings, existing.as_ref().map(|e| e.version))
        .await?;
    tracing::info!(provider_id = %id, created = existing.is_none(), "provider settings saved");
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(public_view(&settings))).into_response())
}

async fn remove(
    State(services): State<AppState>,
    Ids(id): Ids<String>,
) -> Result<StatusCode, Problem> {
    if services.repo.delete_provider(&id).await? {
        tracing::info!(provider_id = %id, "provider settings deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("provider {id} does not exist")))
    }
}

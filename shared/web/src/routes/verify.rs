//! `POST /v1/accounts/{id}/verify`: runs the connect-time preflight (IMAP and SMTP login, no mail
//! sent) now, stores the result on the account and returns it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use mailroom_mail::smtp::{PreflightError, preflight};
use serde_json::{Value, json};

use super::{Access, Function, Route, route};
use crate::AppState;
use crate::extract::Ids;
use crate::problem::Problem;

pub(super) fn routes() -> Vec<Route> {
    vec![route(
        Function::Api,
        "POST",
        "/v1/accounts/{id}/verify",
        Access::ApiKey,
        post(verify),
    )]
}

async fn verify(
    State(services): State<AppState>,
    Ids(account_id): Ids<String>,
) -> Result<Json<Value>, Problem> {
    match preflight(
        &services.repo,
        services.tokens.as_ref(),
        services.tls.clone(),
        &account_id,
    )
    .await
    {
        Ok(report) => Ok(Json(
            json!({ "account_id": account_id, "preflight": report }),
        )),
        Err(PreflightError::AccountNotFound(_)) => Err(Problem::not_found("no such account")),
        Err(e @ PreflightError::ProviderMissing(_)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "provider-missing",
            "The account's provider is not configured",
            e.to_string(),
        )),
        Err(e @ PreflightError::Transient { .. }) => {
            tracing::warn!(error = %e, "preflight could not run");
            Err(Problem::unavailable(e.to_string(), 30))
        }
        Err(PreflightError::Store(e)) => Err(e.into()),
    }
}

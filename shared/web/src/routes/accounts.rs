//! Connected mailboxes: `GET /v1/accounts?owner=`, `GET /v1/accounts/{id}` and
//! `DELETE /v1/accounts/{id}` (which removes the tokens and everything stored for the account).
//! Responses never contain tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use mailroom_core::domain::Account;
use mailroom_core::time::to_rfc3339;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Access, Function, Route, route};
use crate::AppState;
use crate::extract::{Ids, QueryParams};
use crate::problem::Problem;

pub(super) fn routes() -> Vec<Route> {
    let one = "/v1/accounts/{id}";
    vec![
        route(
            Function::Api,
            "GET",
            "/v1/accounts",
            Access::ApiKey,
            get(list),
        ),
        route(Function::Api, "GET", one, Access::ApiKey, get(show)),
        route(Function::Api, "DELETE", one, Access::ApiKey, delete(remove)),
    ]
}

/// An account as the API shows it.
pub fn account_view(a: &Account) -> Value {
    json!({
        "id": a.id,
        "owner": a.owner,
        "provider_id": a.provider_id,
        "email": a.email,
        "status": a.status,
        "status_reason": a.status_reason,
        "granted_scopes": a.granted_scopes,
        "access_token_expires_at": to_rfc3339(a.tokens.access_expires_at),
        "created_at": to_rfc3339(a.created_at),
        "updated_at": to_rfc3339(a.updated_at),
        "next_sync_at": to_rfc3339(a.next_sync_at),
        "last_sync_at": a.last_sync_at.map(to_rfc3339),
        "last_error": a.last_error,
        "failure_count": a.failure_count,
        "preflight": a.extra.get("preflight"),
        // Written by the sync engine: per-folder message counts and a provider back-off.
        "folders": a.extra.get("folders"),
        "parked_until": a.extra.get("parked_until").and_then(|v| v.as_i64()).map(to_rfc3339),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    owner: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(services): State<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 200"));
    }
    if q.owner
        .as_deref()
        .is_some_and(|o| o.is_empty() || o.len() > 256)
    {
        return Err(Problem::bad_request("owner must be 1 to 256 characters"));
    }
    let (accounts, next) = services
        .repo
        .list_accounts(q.owner.as_deref(), q.cursor, limit)
        .await
        .map_err(|e| match e {
            // The store refuses a cursor from another listing: the caller's mistake, not ours.
            mailroom_core::records::RecordError::Store(
                mailroom_core::ports::StoreError::Invalid(_),
            ) => Problem::bad_request("cursor is not a page cursor of this listing"),
            other => other.into(),
        })?;
    let views: Vec<Value> = accounts.iter().map(account_view).collect();
    Ok(Json(json!({ "accounts": views, "next_cursor": next })))
}

async fn load(services: &AppState, id: &str) -> Result<Account, Problem> {
    services
        .repo
        .get_account(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("account {id} does not exist")))
}

async fn show(
    State(services): State<AppState>,
    Ids(id): Ids<String>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(account_view(&load(&services, &id).await?)))
}

/// Removes what the account owns outside its own records: synced message metadata and raw
/// blobs. It runs before the records are removed, so a failure leaves the account in place and
/// the DELETE can be retried.
pub(crate) async fn remove_account_content(
    services: &AppState,
    account: &Account,
) -> Result<(), Problem> {
    use mailroom_mail::sync::{SyncError, delete_account_messages};
    match delete_account_messages(&services.repo, services.blobs.as_ref(), &account.id).await {
        Ok(deleted) => {
            tracing::info!(account_id = %account.id, deleted, "account messages deleted");
            Ok(())
        }
        Err(SyncError::Store(e)) => Err(e.into()),
        Err(SyncError::Blob(e)) => {
            tracing::warn!(account_id = %account.id, error = %e, "blob store unavailable");
            Err(Problem::unavailable(
                "the message store is temporarily unavailable; retry the delete",
                2,
            ))
        }
        Err(other) => Err(Problem::internal(&other)),
    }
}

async fn remove(
    State(services): State<AppState>,
    Ids(id): Ids<String>,
) -> Result<StatusCode, Problem> {
    let account = load(&services, &id).await?;
    remove_account_content(&services, &account).await?;
    services.repo.delete_account_records(&account).await?;
    tracing::info!(account_id = %id, "account deleted with its tokens and records");
    Ok(StatusCode::NO_CONTENT)
}

//! Synced messages: `GET /v1/accounts/{id}/messages?folder=&limit=&cursor=` (newest first),
//! `GET /v1/accounts/{id}/messages/{message_id}` (metadata with text and HTML bodies, each cut
//! at a million characters), `GET /v1/accounts/{id}/messages/{message_id}/raw`
//! (`message/rfc822`; in Lambda at most 4 MB, the response size limit), and
//! `POST /v1/accounts/{id}/sync` (queues an immediate sync, `202`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailroom_core::domain::MessageMeta;
use mailroom_core::records::MessageKey;
use mailroom_core::time::to_rfc3339;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Access, Function, Route, route};
use crate::AppState;
use crate::extract::{Ids, QueryParams, is_valid_id};
use crate::problem::Problem;

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Function::Api,
            "GET",
            "/v1/accounts/{id}/messages",
            Access::ApiKey,
            get(list),
        ),
        route(
            Function::Api,
            "GET",
            "/v1/accounts/{id}/messages/{message_id}",
            Access::ApiKey,
            get(show),
        ),
        route(
            Function::Api,
            "GET",
            "/v1/accounts/{id}/messages/{message_id}/raw",
            Access::ApiKey,
            get(raw),
        ),
        route(
            Function::Api,
            "POST",
            "/v1/accounts/{id}/sync",
            Access::ApiKey,
            post(sync_now),
        ),
    ]
}

/// A message's metadata as the API shows it.
pub fn message_view(m: &MessageMeta) -> Value {
    json!({
        "id": m.id,
        "folder": m.folder,
        "uid": m.uid,
        "uid_validity": m.uid_validity,
        "message_id": m.message_id_header,
        "in_reply_to": m.in_reply_to,
        "references": m.references,
        "thread_key": m.thread_key,
        "from": m.from,
        "to": m.to,
        "cc": m.cc,
        "subject": m.subject,
        "date": m.date.map(to_rfc3339),
        "size": m.size,
        "flags": m.flags,
        "snippet": m.snippet,
        "attachments": m.attachments,
        "provider_message_id": m.provider_message_id,
        "parsed": m.parsed,
        "stored_at": to_rfc3339(m.stored_at),
    })
}

async fn require_account(services: &AppState, id: &str) -> Result<(), Problem> {
    match services.repo.get_account(id).await? {
        Some(_) => Ok(()),
        None => Err(Problem::not_found(format!("account {id} does not exist"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    folder: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(services): State<AppState>,
    Ids(id): Ids<String>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 200"));
    }
    let folder = q.folder.unwrap_or_else(|| "INBOX".to_owned());
    if folder.is_empty() || folder.len() > 512 {
        return Err(Problem::bad_request("folder must be 1 to 512 characters"));
    }
    if let Some(cursor) = &q.cursor
        && MessageKey::from_message_id(cursor).is_none_or(|k| k.folder != folder)
    {
        return Err(Problem::bad_request(
            "cursor is not a page cursor of this folder",
        ));
    }
    require_account(&services, &id).await?;
    let page = services
        .repo
        .list_messages(&id, &folder, q.cursor.as_deref(), limit)
        .await?;
    let views: Vec<Value> = page.messages.iter().map(message_view).collect();
    Ok(Json(json!({
        "folder": folder,
        "messages": views,
        "next_cursor": page.next,
    })))
}

/// Reads a message's metadata, answering 404 for ids that are not ours or not stored.
async fn load(
    services: &AppState,
    account_id: &str,
    message_id: &str,
) -> Result<MessageMeta, Problem> {
    if !is_valid_id(account_id) {
        return Err(Problem::bad_request(
            "ids are 1 to 64 characters of letters, digits, `-` and `_`",
        ));
    }
    let missing = || Problem::not_found(format!("message {message_id} does not exist"));
    let key = MessageKey::from_message_id(message_id).ok_or_else(missing)?;
    require_account(services, account_id).await?;
    services
        .repo
        .get_message(account_id, &key)
        .await?
        .ok_or_else(missing)
}

async fn read_blob(services: &AppState, meta: &MessageMeta) -> Result<bytes::Bytes, Problem> {
    match services.blobs.get(&meta.blob_key).await {
        Ok(Some(raw)) => Ok(raw),
        Ok(None) => Err(Problem::not_found(format!(
            "the raw source of message {} is missing",
            meta.id
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "blob store unavailable");
            Err(Problem::unavailable(
                "the message store is temporarily unavailable; retry shortly",
                2,
            ))
        }
    }
}

/// Bodies longer than this are cut in `show` (the whole source stays available from `/raw`).
const MAX_BODY_CHARS: usize = 1_000_000;

/// Lambda responses carry at most 6 MB, and binary bodies travel base64-encoded.
const MAX_LAMBDA_RAW_BYTES: usize = 4 * 1024 * 1024;

/// Cuts a body at a character boundary; says whether it did.
fn cut(body: Option<String>) -> (Option<String>, bool) {
    match body {
        Some(text) => match text.char_indices().nth(MAX_BODY_CHARS) {
            Some((at, _)) => (Some(text[..at].to_owned()), true),
            None => (Some(text), false),
        },
        None => (None, false),
    }
}

async fn show(
    State(services): State<AppState>,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let meta = load(&services, &id, &message_id).await?;
    let raw = read_blob(&services, &meta).await?;
    // Parsing can take a while for a large message: keep it off the async workers.
    let (text, html) = tokio::task::spawn_blocking(move || mailroom_mail::mime::parse_bodies(&raw))
        .await
        .map_err(|e| Problem::internal(&e))?;
    let ((text, text_cut), (html, html_cut)) = (cut(text), cut(html));
    let mut view = message_view(&meta);
    view["text"] = json!(text);
    view["html"] = json!(html);
    view["bodies_truncated"] = json!(text_cut || html_cut);
    Ok(Json(view))
}

async fn raw(
    State(services): State<AppState>,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let meta = load(&services, &id, &message_id).await?;
    if services.config.in_lambda && meta.size as usize > MAX_LAMBDA_RAW_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Message too large for this endpoint",
            format!(
                "the message is {} bytes; a Lambda response carries at most {MAX_LAMBDA_RAW_BYTES}",
                meta.size
            ),
        ));
    }
    let raw = read_blob(&services, &meta).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        raw,
    )
        .into_response())
}

async fn sync_now(
    State(services): State<AppState>,
    Ids(id): Ids<String>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let account = services
        .repo
        .get_account(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("account {id} does not exist")))?;
    if let Err(e) = mailroom_mail::jobs::request_sync(services.queue.as_ref(), &account.id).await {
        tracing::warn!(account_id = %id, error = %e, "could not queue a sync");
        return Err(Problem::unavailable(
            "the job queue is temporarily unavailable; retry shortly",
            2,
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "account_id": account.id, "status": account.status, "queued": true })),
    ))
}

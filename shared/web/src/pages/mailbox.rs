//! The mailbox pages: an account's messages newest first (paginated, per folder), one message
//! (headers, text, attachment list) and its HTML body, served on its own route with a CSP that
//! sandboxes it (no scripts, no remote content, no forms) for a sandboxed iframe.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailroom_core::domain::{Account, MessageMeta};
use mailroom_core::records::MessageKey;

use super::html::{esc, page, url_part, when};
use super::{Page, PageError};
use crate::AppState;
use crate::extract::{Ids, is_valid_id};
use crate::problem::Problem;

/// The CSP of a message's HTML body: nothing runs, nothing loads from the network (inline
/// images only), and only our own pages may frame it.
pub const BODY_CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
font-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox";

const PAGE_SIZE: usize = 25;

pub(super) async fn account(services: &AppState, id: &str) -> Result<Account, PageError> {
    if !is_valid_id(id) {
        return Err(Problem::bad_request("not an account id").into());
    }
    Ok(services
        .repo
        .get_account(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("account {id} does not exist")))?)
}

/// A stored message of the account, or a 404.
pub(super) async fn message(
    services: &AppState,
    account_id: &str,
    message_id: &str,
) -> Result<MessageMeta, PageError> {
    let missing = || Problem::not_found("no such message");
    let key = MessageKey::from_message_id(message_id).ok_or_else(missing)?;
    Ok(services
        .repo
        .get_message(account_id, &key)
        .await?
        .ok_or_else(missing)?)
}

/// `GET /ui/accounts/{id}/messages?folder=&cursor=`.
pub async fn list(
    State(services): State<AppState>,
    Page(s): Page,
    Ids(id): Ids<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let a = account(&services, &id).await?;
    let folder = q
        .get("folder")
        .filter(|f| !f.is_empty() && f.len() <= 512)
        .cloned()
        .unwrap_or_else(|| "INBOX".to_owned());
    let cursor = q
        .get("cursor")
        .filter(|c| MessageKey::from_message_id(c).is_some_and(|k| k.folder == folder));
    let listed = services
        .repo
        .list_messages(&a.id, &folder, cursor.map(String::as_str), PAGE_SIZE)
        .await?;
    let base = format!("/ui/accounts/{}", url_part(&a.id));
    let folders: String = a
        .extra
        .get("folders")
        .and_then(|f| f.as_object())
        .map(|f| {
            f.keys()
                .map(|name| {
                    format!(
                        "<a href=\"{base}/messages?folder={}\">{}</a>",
                        url_part(name),
                        esc(name)
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default();
    let rows: String = listed
        .messages
        .iter()
        .map(|m| {
            format!(
                "<tr class=\"message\"><td>{date}</td><td>{from}</td><td><a href=\"{base}/messages/{id}\">{subject}</a>\
                 <br><span class=\"hint\">{snippet}</span></td><td>{att}</td></tr>",
                date = esc(&when(m.date)),
                from = esc(&m.from.join(", ")),
                id = url_part(&m.id),
                subject = esc(m.subject.as_deref().unwrap_or("(no subject)")),
                snippet = esc(m.snippet.as_deref().unwrap_or("")),
                att = if m.attachments.is_empty() { String::new() } else { format!("{} attachment(s)", m.attachments.len()) },
            )
        })
        .collect();
    let next = listed
        .next
        .map(|c| {
            format!(
                "<p><a class=\"next\" href=\"{base}/messages?folder={}&amp;cursor={}\">Older messages</a></p>",
                url_part(&folder),
                url_part(&c)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p><a href=\"/ui/accounts\">Accounts</a> · <a href=\"{base}/compose\">Compose</a> · folder <strong>{}</strong> {}</p>\
         <p class=\"hint\">Last sync: {}</p>{}{next}",
        esc(&folder),
        if folders.is_empty() {
            String::new()
        } else {
            format!("(folders: {folders})")
        },
        esc(&when(a.last_sync_at)),
        if rows.is_empty() {
            "<p>No messages in this folder yet.</p>".to_owned()
        } else {
            format!(
                "<table id=\"messages\"><tr><th>Date</th><th>From</th><th>Subject</th><th></th></tr>{rows}</table>"
            )
        },
    );
    Ok(page(StatusCode::OK, &a.email, Some(&s.csrf), &body))
}

async fn bodies(
    services: &AppState,
    m: &MessageMeta,
) -> Result<(Option<String>, Option<String>), PageError> {
    let raw = match services.blobs.get(&m.blob_key).await {
        Ok(Some(raw)) => raw,
        Ok(None) => {
            return Err(Problem::not_found("the raw source of this message is missing").into());
        }
        Err(e) => {
            tracing::warn!(error = %e, "blob store unavailable");
            return Err(
                Problem::unavailable("the message store is temporarily unavailable", 2).into(),
            );
        }
    };
    let parsed = tokio::task::spawn_blocking(move || mailroom_mail::mime::parse_bodies(&raw))
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(parsed)
}

/// `GET /ui/accounts/{id}/messages/{message_id}`.
pub async fn show(
    State(services): State<AppState>,
    Page(s): Page,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let a = account(&services, &id).await?;
    let m = message(&services, &a.id, &message_id).await?;
    let (text, html) = bodies(&services, &m).await?;
    let base = format!("/ui/accounts/{}", url_part(&a.id));
    let attachments: String = m
        .attachments
        .iter()
        .map(|at| {
            format!(
                "<li>{} <span class=\"hint\">{} · {} bytes</span></li>",
                esc(at.filename.as_deref().unwrap_or("(unnamed)")),
                esc(&at.content_type),
                at.size
            )
        })
        .collect();
    let content = match (html.is_some(), text) {
        // The HTML part runs in a sandboxed frame from its own route: no scripts, no remote loads.
        (true, _) => format!(
            "<iframe class=\"body\" sandbox title=\"message body\" src=\"{base}/messages/{}/body\"></iframe>",
            url_part(&m.id)
        ),
        (false, Some(text)) => format!("<pre class=\"body\">{}</pre>", esc(&text)),
        (false, None) => "<p class=\"muted\">(no readable body)</p>".to_owned(),
    };
    let body = format!(
        "<p><a href=\"{base}/messages?folder={folder}\">Back to {folder_text}</a> · \
         <a class=\"reply\" href=\"{base}/compose?reply={mid}\">Reply</a></p>\
         <table class=\"headers\"><tr><th>From</th><td class=\"from\">{from}</td></tr>\
         <tr><th>To</th><td>{to}</td></tr><tr><th>Cc</th><td>{cc}</td></tr>\
         <tr><th>Date</th><td>{date}</td></tr></table>{att}{content}",
        folder = url_part(&m.folder),
        folder_text = esc(&m.folder),
        mid = url_part(&m.id),
        from = esc(&m.from.join(", ")),
        to = esc(&m.to.join(", ")),
        cc = esc(&m.cc.join(", ")),
        date = esc(&when(m.date)),
        att = if attachments.is_empty() {
            String::new()
        } else {
            format!("<h2>Attachments</h2><ul class=\"attachments\">{attachments}</ul>")
        },
    );
    let title = m.subject.as_deref().unwrap_or("(no subject)");
    Ok(page(StatusCode::OK, title, Some(&s.csrf), &body))
}

/// `GET /ui/accounts/{id}/messages/{message_id}/body`: the HTML part under [`BODY_CSP`].
pub async fn body(
    State(services): State<AppState>,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let a = account(&services, &id).await?;
    let m = message(&services, &a.id, &message_id).await?;
    let (_, html) = bodies(&services, &m).await?;
    let html = html.unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, BODY_CSP),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        html,
    )
        .into_response())
}

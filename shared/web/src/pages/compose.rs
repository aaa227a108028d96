//! The compose page: to, cc, subject, body and attachments, or a reply to a stored message; sent
//! through the same [`Mailer`](mailroom_mail::smtp::Mailer) as `POST /v1/accounts/{id}/send`,
//! with an idempotency key minted with the form so a double submit sends once.

use std::collections::HashMap;

use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mailroom_core::domain::Account;
use mailroom_mail::compose::{AddressInput, AttachmentInput, SendRequest};

use super::html::{csrf_field, esc, notice, page, url_part};
use super::mailbox::{account, message};
use super::{Page, PageError, session};
use crate::AppState;
use crate::extract::Ids;
use crate::problem::Problem;

/// What the form shows (a fresh form, a reply, or a submission to correct).
#[derive(Default)]
struct Draft {
    to: String,
    cc: String,
    subject: String,
    body: String,
    reply: String,
}

fn new_key() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
}

fn form_page(
    a: &Account,
    csrf: &str,
    d: &Draft,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let base = format!("/ui/accounts/{}", url_part(&a.id));
    let body = format!(
        "{error}<p>From <strong>{from}</strong> · <a href=\"{base}/messages\">Messages</a></p>\
         <form method=\"post\" action=\"{base}/send\" enctype=\"multipart/form-data\" class=\"card\" id=\"compose\">\
         {csrf}<input type=\"hidden\" name=\"key\" value=\"{key}\"><input type=\"hidden\" name=\"reply\" value=\"{reply}\">\
         <label>To <input type=\"text\" name=\"to\" value=\"{to}\" required></label>\
         <label>Cc <input type=\"text\" name=\"cc\" value=\"{cc}\"></label>\
         <label>Subject <input type=\"text\" name=\"subject\" value=\"{subject}\"></label>\
         <label>Message <textarea name=\"body\">{text}</textarea></label>\
         <label>Attachments <input type=\"file\" name=\"attachments\" multiple></label>\
         <button>Send</button></form><p class=\"hint\">Separate several addresses with commas.</p>",
        error = error.map(|e| notice("error", e)).unwrap_or_default(),
        from = esc(&a.email),
        csrf = csrf_field(csrf),
        key = new_key(),
        reply = esc(&d.reply),
        to = esc(&d.to),
        cc = esc(&d.cc),
        subject = esc(&d.subject),
        text = esc(&d.body),
    );
    page(status, "Compose", Some(csrf), &body)
}

/// `GET /ui/accounts/{id}/compose[?reply=<message id>]`.
pub async fn form(
    State(services): State<AppState>,
    Page(s): Page,
    Ids(id): Ids<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let a = account(&services, &id).await?;
    let mut draft = Draft::default();
    if let Some(reply) = q.get("reply") {
        let m = message(&services, &a.id, reply).await?;
        draft.to = m.from.join(", ");
        let subject = m.subject.unwrap_or_default();
        draft.subject = if subject
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("re:"))
        {
            subject
        } else {
            format!("Re: {subject}")
        };
        draft.reply = m.id;
    }
    Ok(form_page(&a, &s.csrf, &draft, None, StatusCode::OK))
}

fn addresses(text: &str) -> Vec<AddressInput> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| AddressInput::Text(t.to_owned()))
        .collect()
}

/// The submitted fields and files.
async fn read(
    mut multipart: Multipart,
) -> Result<(HashMap<String, String>, Vec<AttachmentInput>), PageError> {
    let mut fields = HashMap::new();
    let mut files = Vec::new();
    let bad = |e: axum::extract::multipart::MultipartError| {
        Problem::bad_request(format!("the form could not be read: {}", e.body_text()))
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "attachments" {
            let filename = field.file_name().unwrap_or_default().to_owned();
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let data = field.bytes().await.map_err(bad)?;
            // A file input with nothing chosen still sends an empty, unnamed part.
            if !filename.is_empty() || !data.is_empty() {
                files.push(AttachmentInput {
                    filename,
                    content_type,
                    content_base64: STANDARD.encode(&data),
                    content_id: None,
                });
            }
        } else {
            fields.insert(name, field.text().await.map_err(bad)?);
        }
    }
    Ok((fields, files))
}

/// `POST /ui/accounts/{id}/send`.
pub async fn send(
    State(services): State<AppState>,
    Page(s): Page,
    Ids(id): Ids<String>,
    multipart: Multipart,
) -> Result<Response, PageError> {
    let (fields, attachments) = read(multipart).await?;
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    if !s.csrf_ok(&get("csrf")) {
        return Ok(session::forbidden());
    }
    let a = account(&services, &id).await?;
    let draft = Draft {
        to: get("to"),
        cc: get("cc"),
        subject: get("subject"),
        body: get("body"),
        reply: get("reply"),
    };
    let request = SendRequest {
        to: addresses(&draft.to),
        cc: addresses(&draft.cc),
        subject: Some(draft.subject.clone()).filter(|t| !t.trim().is_empty()),
        text: Some(draft.body.replace("\r\n", "\n")),
        in_reply_to_message_id: Some(draft.reply.clone()).filter(|r| !r.is_empty()),
        attachments,
        ..SendRequest::default()
    };
    let key = get("key");
    if !crate::extract::is_valid_id(&key) {
        return Err(Problem::bad_request(
            "the form's send key is missing; open the compose page again",
        )
        .into());
    }
    match crate::routes::send::mailer(&services)
        .send(&a.id, &key, &request)
        .await
    {
        Ok(result) => {
            let r = result.record;
            let base = format!("/ui/accounts/{}", url_part(&a.id));
            let body = format!(
                "{}<p>Message id <code>{}</code>; accepted: {}.</p><p><a href=\"{base}/messages\">Messages</a> · \
                 <a href=\"{base}/compose\">Write another</a></p>",
                notice(
                    "ok",
                    &format!(
                        "The message was {}.",
                        serde_json::to_value(r.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    )
                ),
                esc(r.message_id.as_deref().unwrap_or("")),
                esc(&r.accepted.join(", ")),
            );
            Ok(page(StatusCode::OK, "Message sent", Some(&s.csrf), &body))
        }
        Err(e) => {
            let problem = crate::routes::send::send_problem(e);
            let message = format!("{}: {}", problem.title, problem.detail);
            Ok(form_page(
                &a,
                &s.csrf,
                &draft,
                Some(&message),
                problem.status,
            ))
        }
    }
}

//! Sending mail (the `send-mail` function): `POST /v1/accounts/{id}/send` with a required
//! `Idempotency-Key`, and `GET /v1/accounts/{id}/sends/{key}` for the stored record. The
//! exactly-once rule lives in [`mailroom_mail::smtp::Mailer`]; this module maps its outcomes to
//! HTTP: a replay carries `Idempotent-Replay: true`, an uncertain send is a 200 that says so.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailroom_core::domain::{SendRecord, SendStatus};
use mailroom_core::time::to_rfc3339;
use mailroom_mail::compose::{ComposeError, Limits, SendRequest};
use mailroom_mail::smtp::{
    AUTH_DISABLED_FIX, DEFAULT_SMTP_TIMEOUT, Mailer, SendError, SendFailure, SmtpConnector,
    SmtpError,
};
use serde_json::{Value, json};

use super::{Access, Function, Route, route};
use crate::AppState;
use crate::extract::{Ids, JsonBody, is_valid_id};
use crate::problem::Problem;

/// The header carrying the caller's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on responses that repeat an earlier request's result.
pub const IDEMPOTENT_REPLAY: &str = "idempotent-replay";

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Function::SendMail,
            "POST",
            "/v1/accounts/{id}/send",
            Access::ApiKey,
            post(send),
        ),
        route(
            Function::SendMail,
            "GET",
            "/v1/accounts/{id}/sends/{key}",
            Access::ApiKey,
            get(show),
        ),
    ]
}

pub(crate) fn mailer(services: &AppState) -> Mailer {
    Mailer::new(
        services.repo.clone(),
        services.tokens.clone(),
        SmtpConnector::new(services.tls.clone(), DEFAULT_SMTP_TIMEOUT),
        Limits {
            max_attachment_bytes: services.config.send_max_attachment_bytes,
            ..Limits::default()
        },
    )
}

fn key_problem() -> Problem {
    Problem::bad_request(
        "send an `Idempotency-Key` header of 1 to 64 letters, digits, `-` and `_` (a UUID works)",
    )
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or_else(key_problem)?;
    if is_valid_id(key) {
        Ok(key.to_owned())
    } else {
        Err(key_problem())
    }
}

/// A send record as the API shows it.
pub fn record_view(r: &SendRecord) -> Value {
    let mut view = json!({
        "idempotency_key": r.idempotency_key,
        "message_id": r.message_id,
        "status": r.status,
        "accepted": r.accepted,
        "rejected": r.rejected,
        "error": r.error,
        "created_at": to_rfc3339(r.created_at),
        "updated_at": to_rfc3339(r.updated_at),
    });
    if r.status == SendStatus::Uncertain
        && let Some(map) = view.as_object_mut()
    {
        map.insert(
            "detail".into(),
            json!("the connection broke after the message data was sent: it may have been delivered; it will not be sent again with this idempotency key"),
        );
    }
    view
}

async fn send(
    State(services): State<AppState>,
    Ids(account_id): Ids<String>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SendRequest>,
) -> Result<Response, Problem> {
    let key = idempotency_key(&headers)?;
    match mailer(&services).send(&account_id, &key, &request).await {
        Ok(result) => {
            let mut response = (StatusCode::OK, Json(record_view(&result.record))).into_response();
            if result.replay {
                response
                    .headers_mut()
                    .insert(IDEMPOTENT_REPLAY, HeaderValue::from_static("true"));
            }
            Ok(response)
        }
        Err(e) => Err(send_problem(e)),
    }
}

async fn show(
    State(services): State<AppState>,
    Ids((account_id, key)): Ids<(String, String)>,
) -> Result<Json<Value>, Problem> {
    match mailer(&services).record(&account_id, &key).await? {
        Some(record) => Ok(Json(record_view(&record))),
        None => Err(Problem::not_found(
            "no send with this idempotency key is stored for this account",
        )),
    }
}

pub(crate) fn send_problem(e: SendError) -> Problem {
    match e {
        SendError::AccountNotFound(_) => Problem::not_found("no such account"),
        SendError::AccountInactive { status, reason, .. } => Problem::new(
            StatusCode::CONFLICT,
            "account-inactive",
            "The account cannot send",
            format!("the account is {status}: {reason}"),
        )
        .with("account_status", json!(status)),
        SendError::ProviderMissing(id) => Problem::new(
            StatusCode::CONFLICT,
            "provider-missing",
            "The account's provider is not configured",
            format!(
                "the provider settings {id:?} were deleted; an administrator must restore them"
            ),
        ),
        SendError::Compose(ComposeError::Invalid(errors)) => {
            let detail = errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; ");
            Problem::bad_request(detail).with("errors", json!(errors))
        }
        SendError::Compose(ComposeError::TooLarge { total, limit }) => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Attachments too large",
            format!("the attachments hold {total} bytes; at most {limit} are allowed"),
        ),
        SendError::Compose(e @ ComposeError::Build(_)) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot-compose",
            "The message could not be built",
            e.to_string(),
        ),
        SendError::ReplyTarget { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-reply-target",
            "The message to reply to cannot be used",
            e.to_string(),
        ),
        SendError::KeyReused => Problem::new(
            StatusCode::CONFLICT,
            "idempotency-key-reused",
            "Idempotency key reused",
            "this idempotency key was already used for a different request body",
        ),
        SendError::InProgress => {
            let mut p = Problem::new(
                StatusCode::CONFLICT,
                "send-in-progress",
                "Send in progress",
                "a request with this idempotency key is being sent; ask again shortly",
            );
            p.retry_after = Some(5);
            p
        }
        SendError::Failed { record, failure } => failure_problem(failure)
            .with("idempotency_key", json!(record.idempotency_key))
            .with("send_status", json!(record.status)),
        SendError::Store(e) => e.into(),
    }
}

fn failure_problem(failure: SendFailure) -> Problem {
    match failure {
        SendFailure::ReauthRequired { reason, .. } => Problem::new(
            StatusCode::CONFLICT,
            "reauth-required",
            "The mailbox must be connected again",
            format!("the sign-in is no longer valid: {reason}"),
        )
        .with("account_status", json!("reauth_required")),
        SendFailure::AdminActionRequired { reason, .. } => Problem::new(
            StatusCode::CONFLICT,
            "provider-needs-admin",
            "The OAuth app needs an administrator",
            format!("the provider rejected the OAuth app: {reason}"),
        ),
        SendFailure::TokenUnavailable(reason) => Problem::unavailable(
            format!("no access token could be obtained now; retry later ({reason})"),
            30,
        ),
        SendFailure::Smtp(e) => smtp_problem(e),
    }
}

fn smtp_problem(e: SmtpError) -> Problem {
    let retry_after = e.retry_after().map(|d| d.as_secs());
    match e {
        SmtpError::AuthDisabled { reply } => Problem::new(
            StatusCode::CONFLICT,
            "smtp-auth-disabled",
            "SMTP AUTH is disabled for the tenant",
            AUTH_DISABLED_FIX,
        )
        .with("fix", json!(AUTH_DISABLED_FIX))
        .with("server_reply", json!(reply)),
        SmtpError::AuthRejected { reply, .. } => Problem::new(
            StatusCode::CONFLICT,
            "reauth-required",
            "The mailbox must be connected again",
            format!("the SMTP server refused the login: {reply}"),
        ),
        SmtpError::Rejected {
            ref during,
            code,
            ref reply,
        } => {
            let (kind, title) = if during == "RCPT" {
                ("recipients-rejected", "The server refused the recipients")
            } else {
                ("message-rejected", "The server refused the message")
            };
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, kind, title, e.to_string())
                .with("server_code", json!(code))
                .with("server_reply", json!(reply))
        }
        SmtpError::Transient {
            code, ref reply, ..
        } => {
            let detail = e.to_string();
            let reply = reply.clone();
            Problem::unavailable(detail, retry_after.unwrap_or(60))
                .with("server_code", json!(code))
                .with("server_reply", json!(reply))
        }
        SmtpError::Connect { .. } | SmtpError::Timeout { .. } | SmtpError::Connection { .. } => {
            Problem::unavailable(e.to_string(), retry_after.unwrap_or(30))
        }
        SmtpError::NoStartTls | SmtpError::NoXoauth2 | SmtpError::Protocol { .. } => Problem::new(
            StatusCode::BAD_GATEWAY,
            "smtp-server-error",
            "The SMTP server cannot be used",
            e.to_string(),
        ),
    }
}

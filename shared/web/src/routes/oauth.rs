//! The connect flow's two functions: `POST /v1/oauth/{provider_id}/start` (API key) and the
//! public `GET /v1/oauth/{provider_id}/callback` the provider sends the browser back to.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use mailroom_core::ports::{Job, JobKind};
use mailroom_oauth::{CallbackOutcome, CallbackParams, StartError, StartRequest, Started};
use serde_json::json;

use super::{Access, Function, Route, route};
use crate::AppState;
use crate::extract::{Ids, JsonBody, QueryParams};
use crate::problem::Problem;

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Function::OAuthStart,
            "POST",
            "/v1/oauth/{provider_id}/start",
            Access::ApiKey,
            post(start),
        ),
        route(
            Function::OAuthCallback,
            "GET",
            "/v1/oauth/{provider_id}/callback",
            Access::Public,
            get(callback),
        ),
    ]
}

fn start_problem(e: StartError) -> Problem {
    match e {
        StartError::Invalid { field, .. } => Problem::bad_request(e.to_string()).with(
            "errors",
            json!([{ "field": field, "message": e.to_string() }]),
        ),
        StartError::ReturnToNotAllowed => Problem::bad_request(e.to_string()),
        StartError::UnknownProvider(_) => Problem::not_found(e.to_string()),
        StartError::ProviderNeedsAdmin { .. } | StartError::Settings(_) => {
            Problem::conflict(e.to_string())
        }
        StartError::Store(e) => e.into(),
    }
}

async fn start(
    State(services): State<AppState>,
    Ids(provider_id): Ids<String>,
    JsonBody(req): JsonBody<StartRequest>,
) -> Result<Json<Started>, Problem> {
    services
        .oauth
        .start(&provider_id, req)
        .await
        .map(Json)
        .map_err(start_problem)
}

/// Escapes text for an HTML element body or attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    )
}

/// `return_to` with the outcome added to its query.
fn report_url(return_to: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(return_to).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Some(url.into())
}

async fn callback(
    State(services): State<AppState>,
    Ids(provider_id): Ids<String>,
    QueryParams(params): QueryParams<CallbackParams>,
) -> Response {
    let CallbackOutcome { return_to, result } = services.oauth.callback(&provider_id, params).await;
    if let Ok(c) = &result {
        // The connect-time preflight (IMAP and SMTP login) runs in the worker; a lost job only
        // means the check waits for `POST /v1/accounts/{id}/verify`, so the sign-in still succeeds.
        let job = Job {
            account_id: c.account_id.clone(),
            kind: JobKind::Verify,
            delay_seconds: 0,
            version: None,
        };
        if let Err(e) = services.queue.enqueue(&[job]).await {
            tracing::warn!(account_id = %c.account_id, error = %e, "could not queue the preflight");
        }
    }
    let (status_code, pairs, title, message) = match &result {
        Ok(c) => (
            StatusCode::OK,
            vec![
                ("account_id", c.account_id.clone()),
                (
                    "status",
                    json!(c.status).as_str().unwrap_or("active").to_owned(),
                ),
            ],
            "Mailbox connected",
            format!("{} is connected. You can close this window.", c.email),
        ),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            vec![
                ("error", e.code().to_owned()),
                ("error_description", e.to_string()),
            ],
            "The mailbox was not connected",
            e.to_string(),
        ),
    };
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // return_to was checked against the allow-list when the flow started.
    let mut response = match return_to.as_deref().and_then(|r| report_url(r, &pairs)) {
        Some(location) => match HeaderValue::from_str(&location) {
            Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            Err(_) => (status_code, Html(page(title, &message))).into_response(),
        },
        None => (status_code, Html(page(title, &message))).into_response(),
    };
    let headers = response.headers_mut();
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

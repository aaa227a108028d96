//! The accounts page: "Connect" per provider (the OAuth start, coming back here through the
//! callback), each account's address, status, preflight, last sync and message counts, and the
//! "Sync now", "Check", "Reconnect" and "Disconnect" actions.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mailroom_core::domain::{Account, AccountStatus};
use mailroom_oauth::StartRequest;

use super::html::{button, csp_with_form_targets, csrf_field, esc, notice, page, url_part, when};
use super::{Page, PageError, session};
use crate::AppState;
use crate::extract::Ids;
use crate::problem::Problem;

/// The owner recorded for accounts connected from the pages.
pub const PAGE_OWNER: &str = "local";

fn status_name(s: AccountStatus) -> &'static str {
    match s {
        AccountStatus::Active => "active",
        AccountStatus::ReauthRequired => "reauth_required",
        AccountStatus::Degraded => "degraded",
    }
}

/// `(total, per-folder text)` from what the sync stored in `extra.folders`.
fn counts(a: &Account) -> (u64, String) {
    let Some(folders) = a.extra.get("folders").and_then(|f| f.as_object()) else {
        return (0, String::new());
    };
    let mut total = 0;
    let mut parts = Vec::new();
    for (name, f) in folders {
        let n = f["messages"].as_u64().unwrap_or(0);
        total += n;
        parts.push(format!("{name}: {n}"));
    }
    (total, parts.join(", "))
}

fn preflight(a: &Account) -> String {
    let Some(p) = a.extra.get("preflight") else {
        return "<span class=\"muted\">not checked yet</span>".to_owned();
    };
    let text = |k: &str| p[k].as_str().unwrap_or("").to_owned();
    let mut out = format!(
        "IMAP <strong>{}</strong>, SMTP <strong>{}</strong>",
        esc(&text("imap")),
        esc(&text("smtp"))
    );
    for k in ["imap_detail", "smtp_detail", "fix"] {
        if !text(k).is_empty() {
            out.push_str(&format!(
                "<br><span class=\"hint\">{}</span>",
                esc(&text(k))
            ));
        }
    }
    out
}

fn row(a: &Account, csrf: &str) -> String {
    let base = format!("/ui/accounts/{}", url_part(&a.id));
    let status = status_name(a.status);
    let mut state = format!("<span class=\"status-{status}\">{status}</span>");
    if let Some(reason) = &a.status_reason {
        state.push_str(&format!("<br><span class=\"hint\">{}</span>", esc(reason)));
    }
    if a.status == AccountStatus::Degraded
        && let Some(e) = &a.last_error
    {
        state.push_str(&format!(
            "<br><span class=\"hint\">last error: {}</span>",
            esc(e)
        ));
    }
    let reconnect = if a.status == AccountStatus::ReauthRequired {
        format!(
            "<form method=\"post\" action=\"/ui/accounts/connect\" class=\"inline\">{}\
             <input type=\"hidden\" name=\"provider_id\" value=\"{}\">\
             <input type=\"hidden\" name=\"login_hint\" value=\"{}\"><button>Reconnect</button></form> ",
            csrf_field(csrf),
            esc(&a.provider_id),
            esc(&a.email)
        )
    } else {
        String::new()
    };
    let (total, per_folder) = counts(a);
    format!(
        "<tr class=\"account\" data-email=\"{email}\"><td><a href=\"{base}/messages\">{email}</a><br>\
         <span class=\"hint\">{provider} · owner {owner}</span></td><td>{state}</td><td>{preflight}</td>\
         <td>{last}</td><td title=\"{per_folder}\">{total}<br><span class=\"hint\">{per_folder}</span></td>\
         <td>{reconnect}{sync} {check} <a href=\"{base}/compose\">Compose</a> {delete}</td></tr>",
        email = esc(&a.email),
        provider = esc(&a.provider_id),
        owner = esc(&a.owner),
        preflight = preflight(a),
        last = esc(&when(a.last_sync_at)),
        per_folder = esc(&per_folder),
        sync = button(&format!("{base}/sync"), "Sync now", csrf, ""),
        check = button(&format!("{base}/verify"), "Check", csrf, ""),
        delete = button(&format!("{base}/delete"), "Disconnect", csrf, "danger"),
    )
}

/// `GET /ui/accounts`, with the callback's report (`account_id`/`status` or `error`) if any.
pub async fn list(
    State(services): State<AppState>,
    Page(s): Page,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let mut body = String::new();
    if let Some(e) = q.get("error") {
        let detail = q.get("error_description").unwrap_or(e);
        body.push_str(&notice(
            "error",
            &format!("The mailbox was not connected: {detail}"),
        ));
    } else if let Some(status) = q.get("status") {
        body.push_str(&notice("ok", &format!("Mailbox connected ({status}).")));
    }
    // Only fixed texts: a crafted link cannot make the page say anything else.
    let done = match q.get("done").map(String::as_str) {
        Some("sync") => Some(("ok", "A sync was queued; reload to see it finish.")),
        Some("verify") => Some(("ok", "The mailbox was checked: see its preflight below.")),
        Some("verify_later") => Some((
            "error",
            "The mailbox could not be checked now (see the server log); try again later.",
        )),
        Some("disconnect") => Some(("ok", "The mailbox was disconnected.")),
        _ => None,
    };
    if let Some((kind, text)) = done {
        body.push_str(&notice(kind, text));
    }
    let providers = services.repo.list_providers().await?;
    if providers.is_empty() {
        body.push_str("<p>No provider is configured: add one on the <a href=\"/ui/settings\">settings page</a> first.</p>");
    } else {
        let options: String = providers
            .iter()
            .map(|p| format!("<option value=\"{0}\">{0}</option>", esc(&p.id)))
            .collect();
        body.push_str(&format!(
            "<form method=\"post\" action=\"/ui/accounts/connect\" class=\"card\" id=\"connect\">{}\
             <label>Provider <select name=\"provider_id\">{options}</select></label>\
             <label>Mailbox address (optional hint) <input type=\"email\" name=\"login_hint\"></label>\
             <button>Connect a mailbox</button></form>",
            csrf_field(&s.csrf)
        ));
    }
    let (accounts, _) = services.repo.list_accounts(None, None, 200).await?;
    if accounts.is_empty() {
        body.push_str("<p>No mailbox is connected yet.</p>");
    } else {
        let rows: String = accounts.iter().map(|a| row(a, &s.csrf)).collect();
        body.push_str(&format!(
            "<table id=\"accounts\"><tr><th>Mailbox</th><th>Status</th><th>Preflight</th>\
             <th>Last sync</th><th>Messages</th><th></th></tr>{rows}</table>"
        ));
    }
    let origins: Vec<String> = providers
        .iter()
        .filter_map(|p| url::Url::parse(&p.authorize_url).ok())
        .map(|u| u.origin().ascii_serialization())
        .collect();
    let mut response = page(StatusCode::OK, "Accounts", Some(&s.csrf), &body);
    if let Ok(csp) = HeaderValue::from_str(&csp_with_form_targets(&origins)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    Ok(response)
}

fn csrf_checked(s: &session::Session, form: &HashMap<String, String>) -> bool {
    s.csrf_ok(form.get("csrf").map(String::as_str).unwrap_or(""))
}

fn back(done: &'static str) -> Response {
    Redirect::to(&format!("/ui/accounts?done={done}")).into_response()
}

/// `POST /ui/accounts/connect`: starts the OAuth flow and sends the browser to the provider.
pub async fn connect(
    State(services): State<AppState>,
    Page(s): Page,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    if !csrf_checked(&s, &form) {
        return Ok(session::forbidden());
    }
    let provider_id = form.get("provider_id").cloned().unwrap_or_default();
    let login_hint = form
        .get("login_hint")
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    let return_to = format!(
        "{}/ui/accounts",
        services.config.public_url.as_str().trim_end_matches('/')
    );
    let request = StartRequest {
        owner: Some(PAGE_OWNER.to_owned()),
        return_to: Some(return_to),
        login_hint,
    };
    match services.oauth.start(&provider_id, request).await {
        Ok(started) => Ok(Redirect::to(&started.authorize_url).into_response()),
        Err(mailroom_oauth::StartError::Store(e)) => Err(Problem::from(e).into()),
        Err(e) => Err(Problem::bad_request(e.to_string()).into()),
    }
}

async fn account(services: &AppState, id: &str) -> Result<Account, PageError> {
    Ok(services
        .repo
        .get_account(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("account {id} does not exist")))?)
}

/// `POST /ui/accounts/{id}/sync`: queues an immediate sync.
pub async fn sync_now(
    State(services): State<AppState>,
    Page(s): Page,
    Ids(id): Ids<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    if !csrf_checked(&s, &form) {
        return Ok(session::forbidden());
    }
    let a = account(&services, &id).await?;
    if let Err(e) = mailroom_mail::jobs::request_sync(services.queue.as_ref(), &a.id).await {
        tracing::warn!(account_id = %id, error = %e, "could not queue a sync");
        return Err(Problem::unavailable(
            "the job queue is temporarily unavailable; retry shortly",
            2,
        )
        .into());
    }
    Ok(back("sync"))
}

/// `POST /ui/accounts/{id}/verify`: runs the preflight now (result shown in the table).
pub async fn verify(
    State(services): State<AppState>,
    Page(s): Page,
    Ids(id): Ids<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    if !csrf_checked(&s, &form) {
        return Ok(session::forbidden());
    }
    let a = account(&services, &id).await?;
    let done = match mailroom_mail::smtp::preflight(
        &services.repo,
        services.tokens.as_ref(),
        services.tls.clone(),
        &a.id,
    )
    .await
    {
        Ok(_) => "verify",
        Err(e) => {
            tracing::warn!(account_id = %a.id, error = %e, "the preflight could not run");
            "verify_later"
        }
    };
    Ok(back(done))
}

/// `POST /ui/accounts/{id}/delete`: removes the account with its tokens and stored mail.
pub async fn disconnect(
    State(services): State<AppState>,
    Page(s): Page,
    Ids(id): Ids<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    if !csrf_checked(&s, &form) {
        return Ok(session::forbidden());
    }
    let a = account(&services, &id).await?;
    crate::routes::accounts::remove_account_content(&services, &a).await?;
    services.repo.delete_account_records(&a).await?;
    tracing::info!(account_id = %id, "account disconnected from the accounts page");
    Ok(back("disconnect"))
}

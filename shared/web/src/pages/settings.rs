//! The settings page: OAuth providers (Microsoft, Google, custom OAuth2) listed with the redirect
//! URI to register, Microsoft's delegated permissions and admin-consent link; add, edit, delete.
//! Saving goes through the same validation as `PUT /v1/providers/{id}`.

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mailroom_core::domain::{Cloud, ProviderKind, ProviderSettings};
use mailroom_core::time::now_unix;
use mailroom_oauth::settings::EndpointInput;
use mailroom_oauth::{ProviderSettingsInput, validate};
use secrecy::SecretString;

use super::html::{button, csrf_field, esc, notice, page, url_part};
use super::{Page, PageError, session};
use crate::AppState;
use crate::extract::Ids;

/// The delegated permissions a Microsoft app registration needs (granted in the portal).
pub const MICROSOFT_PERMISSIONS: &[&str] = &[
    "email",
    "offline_access",
    "IMAP.AccessAsUser.All",
    "SMTP.Send",
    "User.Read",
];

fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Microsoft => "microsoft",
        ProviderKind::Google => "google",
        ProviderKind::OAuth2 => "oauth2",
    }
}

fn cloud_name(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Global => "global",
        Cloud::UsGov => "us-gov",
        Cloud::China => "china",
    }
}

/// Microsoft's admin-consent URL for an app, in its cloud and tenant.
pub fn admin_consent_url(p: &ProviderSettings, redirect_uri: &str) -> String {
    let host = match p.cloud.unwrap_or_default() {
        Cloud::Global => "login.microsoftonline.com",
        Cloud::UsGov => "login.microsoftonline.us",
        Cloud::China => "login.chinacloudapi.cn",
    };
    let tenant = p.tenant.as_deref().unwrap_or("common");
    format!(
        "https://{host}/{}/adminconsent?client_id={}&redirect_uri={}",
        url_part(tenant),
        url_part(&p.client_id),
        url_part(redirect_uri)
    )
}

fn provider_card(services: &AppState, p: &ProviderSettings, csrf: &str) -> String {
    let redirect = services.oauth.redirect_uri(&p.id);
    let mut out = format!(
        "<section class=\"card provider\" id=\"provider-{id}\"><h2>{id} <span class=\"muted\">({kind})</span></h2>\
         <p>Client ID <code>{client}</code> · status <strong>{status}</strong>{reason}</p>\
         <p>Redirect URI to register (platform <em>Web</em>): <code class=\"redirect-uri\">{redirect}</code></p>",
        id = esc(&p.id),
        kind = kind_name(p.kind),
        client = esc(&p.client_id),
        status = esc(&format!("{:?}", p.status)),
        reason = p
            .status_reason
            .as_deref()
            .map(|r| format!(": {}", esc(r)))
            .unwrap_or_default(),
        redirect = esc(&redirect),
    );
    if p.kind == ProviderKind::Microsoft {
        let perms: String = MICROSOFT_PERMISSIONS
            .iter()
            .map(|s| format!("<li><code>{s}</code></li>"))
            .collect();
        out.push_str(&format!(
            "<p>Tenant <code>{}</code>, cloud <code>{}</code>. Delegated permissions to add \
             (Microsoft Graph list in the portal):</p><ul class=\"permissions\">{perms}</ul>\
             <p><a class=\"admin-consent\" href=\"{}\" rel=\"noreferrer\">Admin consent link</a></p>",
            esc(p.tenant.as_deref().unwrap_or("common")),
            cloud_name(p.cloud.unwrap_or_default()),
            esc(&admin_consent_url(p, &redirect)),
        ));
    }
    if p.kind == ProviderKind::Google {
        out.push_str("<p>Scope to add on the consent screen: <code>https://mail.google.com/</code>. \
                      While the app is in <em>Testing</em>, refresh tokens expire after 7 days.</p>");
    }
    out.push_str(&format!(
        "<p><a href=\"/ui/settings/{}\">Edit</a> {}</p></section>",
        url_part(&p.id),
        button(
            &format!("/ui/settings/{}/delete", url_part(&p.id)),
            "Delete",
            csrf,
            "danger"
        )
    ));
    out
}

fn select(name: &str, options: &[&str], current: &str) -> String {
    let opts: String = options
        .iter()
        .map(|o| {
            let sel = if *o == current { " selected" } else { "" };
            format!("<option value=\"{o}\"{sel}>{o}</option>")
        })
        .collect();
    format!("<select name=\"{name}\">{opts}</select>")
}

fn field(label: &str, name: &str, value: &str, hint: &str) -> String {
    format!(
        "<label>{} <input type=\"text\" name=\"{}\" value=\"{}\"></label>{}",
        esc(label),
        esc(name),
        esc(value),
        if hint.is_empty() {
            String::new()
        } else {
            format!("<span class=\"hint\">{}</span>", esc(hint))
        }
    )
}

/// The add/edit form, prefilled from `v` (form field name -> value).
fn form(v: &HashMap<String, String>, editing: bool, csrf: &str) -> String {
    let get = |k: &str| v.get(k).map(String::as_str).unwrap_or("");
    let id_input = if editing {
        format!(
            "<input type=\"hidden\" name=\"id\" value=\"{0}\"><p>Provider <code>{0}</code></p>",
            esc(get("id"))
        )
    } else {
        field(
            "Provider id (appears in the redirect URI)",
            "id",
            get("id"),
            "letters, digits, - and _",
        )
    };
    let secret_hint = if editing {
        "leave empty to keep the stored secret"
    } else {
        ""
    };
    format!(
        "<form method=\"post\" action=\"/ui/settings\" class=\"card\" id=\"provider-form\">{csrf}{id_input}\
         <label>Kind {kind}</label>{client_id}\
         <label>Client secret <input type=\"password\" name=\"client_secret\" autocomplete=\"off\"></label><span class=\"hint\">{secret_hint}</span>\
         <fieldset><legend>Microsoft only</legend>{tenant}<label>Cloud {cloud}</label></fieldset>\
         <fieldset><legend>Overrides (empty: the kind's defaults; required for custom OAuth2)</legend>\
         {authorize}{token}{scopes}{imap_host}{imap_port}<label>IMAP TLS {imap_tls}</label>\
         {smtp_host}{smtp_port}<label>SMTP TLS {smtp_tls}</label></fieldset>\
         <button>Save provider</button></form>",
        csrf = csrf_field(csrf),
        kind = select("kind", &["microsoft", "google", "oauth2"], get("kind")),
        client_id = field("Client ID", "client_id", get("client_id"), ""),
        tenant = field(
            "Tenant",
            "tenant",
            get("tenant"),
            "common, organizations, consumers, a tenant id or domain"
        ),
        cloud = select("cloud", &["global", "us-gov", "china"], get("cloud")),
        authorize = field("Authorize URL", "authorize_url", get("authorize_url"), ""),
        token = field("Token URL", "token_url", get("token_url"), ""),
        scopes = field("Scopes (space-separated)", "scopes", get("scopes"), ""),
        imap_host = field("IMAP host", "imap_host", get("imap_host"), ""),
        imap_port = field("IMAP port", "imap_port", get("imap_port"), ""),
        imap_tls = select("imap_tls", &["", "implicit", "starttls"], get("imap_tls")),
        smtp_host = field("SMTP host", "smtp_host", get("smtp_host"), ""),
        smtp_port = field("SMTP port", "smtp_port", get("smtp_port"), ""),
        smtp_tls = select("smtp_tls", &["", "implicit", "starttls"], get("smtp_tls")),
    )
}

async fn render(
    services: &AppState,
    csrf: &str,
    status: StatusCode,
    message: Option<String>,
    values: &HashMap<String, String>,
) -> Result<Response, PageError> {
    let providers = services.repo.list_providers().await?;
    let cards: String = providers
        .iter()
        .map(|p| provider_card(services, p, csrf))
        .collect();
    let body = format!(
        "{}{}<h2>Add a provider</h2>{}",
        message.map(|m| notice("error", &m)).unwrap_or_default(),
        if cards.is_empty() {
            "<p>No provider yet: add your Microsoft, Google or custom OAuth2 app below.</p>"
                .to_owned()
        } else {
            cards
        },
        form(values, false, csrf),
    );
    Ok(page(status, "Settings", Some(csrf), &body))
}

/// `GET /ui/settings`.
pub async fn list(State(services): State<AppState>, Page(s): Page) -> Result<Response, PageError> {
    render(&services, &s.csrf, StatusCode::OK, None, &HashMap::new()).await
}

/// `GET /ui/settings/{id}`: the edit form, overrides shown only where they differ from defaults.
pub async fn edit(
    State(services): State<AppState>,
    Page(s): Page,
    Ids(id): Ids<String>,
) -> Result<Response, PageError> {
    let p = services
        .repo
        .get_provider(&id)
        .await?
        .ok_or_else(|| crate::Problem::not_found(format!("provider {id} does not exist")))?;
    let defaults = match p.kind {
        ProviderKind::Microsoft => Some(mailroom_oauth::defaults::microsoft(
            p.cloud.unwrap_or_default(),
            p.tenant.as_deref().unwrap_or("common"),
        )),
        ProviderKind::Google => Some(mailroom_oauth::defaults::google()),
        ProviderKind::OAuth2 => None,
    };
    let mut v = HashMap::from([
        ("id".to_owned(), p.id.clone()),
        ("kind".to_owned(), kind_name(p.kind).to_owned()),
        ("client_id".to_owned(), p.client_id.clone()),
        ("tenant".to_owned(), p.tenant.clone().unwrap_or_default()),
        (
            "cloud".to_owned(),
            cloud_name(p.cloud.unwrap_or_default()).to_owned(),
        ),
    ]);
    let d = defaults.as_ref();
    let tls = |t| {
        serde_json::to_value(t)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    let mut put = |k: &str, val: String, same: bool| {
        if !same {
            v.insert(k.to_owned(), val);
        }
    };
    put(
        "authorize_url",
        p.authorize_url.clone(),
        d.is_some_and(|d| d.authorize_url == p.authorize_url),
    );
    put(
        "token_url",
        p.token_url.clone(),
        d.is_some_and(|d| d.token_url == p.token_url),
    );
    put(
        "scopes",
        p.scopes.join(" "),
        d.is_some_and(|d| d.scopes == p.scopes),
    );
    if d.is_none_or(|d| d.imap != p.imap) {
        put("imap_host", p.imap.host.clone(), false);
        put("imap_port", p.imap.port.to_string(), false);
        put("imap_tls", tls(p.imap.tls).unwrap_or_default(), false);
    }
    if d.is_none_or(|d| d.smtp != p.smtp) {
        put("smtp_host", p.smtp.host.clone(), false);
        put("smtp_port", p.smtp.port.to_string(), false);
        put("smtp_tls", tls(p.smtp.tls).unwrap_or_default(), false);
    }
    let body = format!(
        "<p><a href=\"/ui/settings\">All providers</a></p>{}",
        form(&v, true, &s.csrf)
    );
    Ok(page(
        StatusCode::OK,
        &format!("Edit {id}"),
        Some(&s.csrf),
        &body,
    ))
}

fn nonempty(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn endpoint(form: &HashMap<String, String>, prefix: &str) -> Result<Option<EndpointInput>, String> {
    let host = nonempty(form, &format!("{prefix}_host"));
    let port = nonempty(form, &format!("{prefix}_port"));
    let tls = nonempty(form, &format!("{prefix}_tls"));
    if host.is_none() && port.is_none() && tls.is_none() {
        return Ok(None);
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u32>()
                .map_err(|_| format!("{prefix}.port: must be a number"))?,
        ),
        None => None,
    };
    Ok(Some(EndpointInput { host, port, tls }))
}

/// The submitted form as the API's settings input (empty fields: not given).
fn input(form: &HashMap<String, String>) -> Result<ProviderSettingsInput, String> {
    let kind = nonempty(form, "kind");
    let microsoft = kind.as_deref() == Some("microsoft");
    Ok(ProviderSettingsInput {
        client_id: nonempty(form, "client_id"),
        client_secret: nonempty(form, "client_secret").map(SecretString::from),
        tenant: nonempty(form, "tenant").filter(|_| microsoft),
        cloud: nonempty(form, "cloud").filter(|_| microsoft),
        authorize_url: nonempty(form, "authorize_url"),
        token_url: nonempty(form, "token_url"),
        scopes: nonempty(form, "scopes").map(|s| s.split_whitespace().map(str::to_owned).collect()),
        imap: endpoint(form, "imap")?,
        smtp: endpoint(form, "smtp")?,
        kind,
    })
}

/// `POST /ui/settings`: creates or updates a provider; errors re-show the form (never the secret).
pub async fn save(
    State(services): State<AppState>,
    Page(s): Page,
    Form(mut form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    if !s.csrf_ok(form.get("csrf").map(String::as_str).unwrap_or("")) {
        return Ok(session::forbidden());
    }
    let id = nonempty(&form, "id").unwrap_or_default();
    let result = match input(&form) {
        Ok(input) => {
            let existing = services.repo.get_provider(&id).await?;
            match validate(&id, input, existing.as_ref(), now_unix()) {
                Ok(settings) => {
                    services
                        .repo
                        .put_provider(&settings, existing.as_ref().map(|e| e.version))
                        .await?;
                    tracing::info!(provider_id = %id, created = existing.is_none(), "provider settings saved from the settings page");
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            Ok(Redirect::to(&format!("/ui/settings#provider-{}", url_part(&id))).into_response())
        }
        Err(message) => {
            form.remove("client_secret");
            render(
                &services,
                &s.csrf,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(message),
                &form,
            )
            .await
        }
    }
}

/// `POST /ui/settings/{id}/delete`.
pub async fn remove(
    State(services): State<AppState>,
    Page(s): Page,
    Ids(id): Ids<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    if !s.csrf_ok(form.get("csrf").map(String::as_str).unwrap_or("")) {
        return Ok(session::forbidden());
    }
    if services.repo.delete_provider(&id).await? {
        tracing::info!(provider_id = %id, "provider settings deleted from the settings page");
    }
    Ok(Redirect::to("/ui/settings").into_response())
}

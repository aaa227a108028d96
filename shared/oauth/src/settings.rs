//! Provider settings as an admin submits them, validated field by field into core
//! [`ProviderSettings`] with the kind's defaults applied.

use mailroom_core::SecretString;
use mailroom_core::domain::{
    Cloud, MailEndpoint, ProviderKind, ProviderSettings, ProviderStatus, TlsMode,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::defaults::{self, Defaults, MICROSOFT_DEFAULT_TENANT, OIDC_SCOPES};

/// An IMAP or SMTP host as submitted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    pub host: Option<String>,
    pub port: Option<u32>,
    pub tls: Option<String>,
}

/// The body of `PUT /v1/providers/{id}`. Enumerations arrive as text so a wrong value gets a
/// field-level error rather than a generic parse failure.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettingsInput {
    pub kind: Option<String>,
    pub client_id: Option<String>,
    /// Required when creating; when updating, absent keeps the stored secret.
    pub client_secret: Option<SecretString>,
    pub tenant: Option<String>,
    pub cloud: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub imap: Option<EndpointInput>,
    pub smtp: Option<EndpointInput>,
}

/// One rejected field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why submitted settings were refused; nothing was stored.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the provider settings are invalid: {}", summary(.errors))]
pub struct ValidationError {
    pub errors: Vec<FieldError>,
}

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }
}

/// Whether `id` can name a provider (it appears in the redirect URI path and in store keys).
pub fn valid_provider_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn text(errors: &mut Errors, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    let value = value?.trim();
    if value.is_empty() {
        errors.add(field, "must not be empty");
        None
    } else if value.len() > max {
        errors.add(field, format!("must be at most {max} characters"));
        None
    } else if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        errors.add(field, "must not contain spaces or control characters");
        None
    } else {
        Some(value.to_owned())
    }
}

/// An absolute https URL; plain http only for loopback hosts (local development and tests).
fn endpoint_url(errors: &mut Errors, field: &str, value: Option<&str>) -> Option<String> {
    let value = text(errors, field, value, 2048)?;
    let Ok(url) = url::Url::parse(&value) else {
        errors.add(field, "must be an absolute URL");
        return None;
    };
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        errors.add(field, "must use https (http only for loopback hosts)");
        return None;
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        errors.add(field, "must not contain a fragment or credentials");
        return None;
    }
    Some(value)
}

fn mail_endpoint(
    errors: &mut Errors,
    field: &str,
    input: Option<&EndpointInput>,
    default: Option<&MailEndpoint>,
) -> Option<MailEndpoint> {
    let Some(input) = input else {
        if default.is_none() {
            errors.add(field, "is required for kind oauth2 ({host, port, tls})");
        }
        return default.cloned();
    };
    let host = text(errors, &format!("{field}.host"), input.host.as_deref(), 253);
    let valid_host = host.as_deref().is_some_and(|h| {
        h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    });
    if input.host.is_none() {
        errors.add(&format!("{field}.host"), "is required");
    } else if host.is_some() && !valid_host {
        errors.add(
            &format!("{field}.host"),
            "must be a host name or IP address",
        );
    }
    let port = match input.port {
        Some(p @ 1..=65535) => u16::try_from(p).ok(),
        Some(_) => {
            errors.add(&format!("{field}.port"), "must be between 1 and 65535");
            None
        }
        None => {
            errors.add(&format!("{field}.port"), "is required");
            None
        }
    };
    let tls = match input.tls.as_deref() {
        Some("implicit") => Some(TlsMode::Implicit),
        Some("starttls") => Some(TlsMode::Starttls),
        _ => {
            errors.add(&format!("{field}.tls"), "must be implicit or starttls");
            None
        }
    };
    Some(MailEndpoint {
        host: host.filter(|_| valid_host)?,
        port: port?,
        tls: tls?,
    })
}

fn scopes(
    errors: &mut Errors,
    kind: ProviderKind,
    cloud: Cloud,
    input: Option<&[String]>,
) -> Option<Vec<String>> {
    let list = input?;
    if list.is_empty() {
        errors.add("scopes", "must list at least one scope");
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    for scope in list {
        match text(errors, "scopes", Some(scope), 512) {
            Some(s) if !out.contains(&s) => out.push(s),
            _ => {}
        }
    }
    if kind == ProviderKind::Microsoft {
        // One token = one resource: every mail scope must name the same resource URL (bare names
        // such as `User.Read` belong to Graph). Outlook has two documented spellings
        // (outlook.office.com and outlook.office365.com), so the host is not fixed here.
        let mail: Vec<&String> = out
            .iter()
            .filter(|s| !OIDC_SCOPES.contains(&s.as_str()))
            .collect();
        let resources: Vec<Option<String>> = mail.iter().map(|s| scope_resource(s)).collect();
        let mut distinct: Vec<&Option<String>> = resources.iter().collect();
        distinct.sort();
        distinct.dedup();
        if resources.iter().any(Option::is_none) || distinct.len() > 1 {
            let list: Vec<&str> = mail.iter().map(|s| s.as_str()).collect();
            errors.add(
                "scopes",
                format!(
                    "Microsoft issues a token for one resource per request: besides the OIDC scopes, use only scopes of one resource such as {}/IMAP.AccessAsUser.All (found {})",
                    defaults::microsoft_outlook_resource(cloud),
                    list.join(", ")
                ),
            );
        }
    }
    Some(out)
}

/// The resource (`https://host`) a scope belongs to; `None` for bare names (Graph scopes).
fn scope_resource(scope: &str) -> Option<String> {
    let url = url::Url::parse(scope).ok()?;
    match url.origin() {
        o @ url::Origin::Tuple(..) => Some(o.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Validates `input` for provider `id`. `existing` is the stored version when updating (its
/// secret is kept when none is given; its creation time and id stay). Nothing is stored here.
pub fn validate(
    id: &str,
    input: ProviderSettingsInput,
    existing: Option<&ProviderSettings>,
    now: i64,
) -> Result<ProviderSettings, ValidationError> {
    let mut errors = Errors::default();
    if !valid_provider_id(id) {
        errors.add("id", "must be 1 to 64 letters, digits, '-' or '_'");
    }
    let kind = match input.kind.as_deref() {
        Some("microsoft") => Some(ProviderKind::Microsoft),
        Some("google") => Some(ProviderKind::Google),
        Some("oauth2") => Some(ProviderKind::OAuth2),
        Some(_) => {
            errors.add("kind", "must be microsoft, google or oauth2");
            None
        }
        None => {
            errors.add("kind", "is required (microsoft, google or oauth2)");
            None
        }
    };
    let client_id = text(&mut errors, "client_id", input.client_id.as_deref(), 256);
    if input.client_id.is_none() {
        errors.add("client_id", "is required");
    }
    let client_secret = match (&input.client_secret, existing) {
        (Some(s), _) if s.expose_secret().trim().is_empty() => {
            errors.add("client_secret", "must not be empty");
            None
        }
        (Some(s), _) if s.expose_secret().len() > 1024 => {
            errors.add("client_secret", "must be at most 1024 characters");
            None
        }
        (Some(s), _) => Some(s.clone()),
        (None, Some(e)) => Some(e.client_secret.clone()),
        (None, None) => {
            errors.add("client_secret", "is required");
            None
        }
    };
    let microsoft = kind == Some(ProviderKind::Microsoft);
    if !microsoft && kind.is_some() {
        for (field, given) in [
            ("tenant", input.tenant.is_some()),
            ("cloud", input.cloud.is_some()),
        ] {
            if given {
                errors.add(field, "applies only to kind microsoft");
            }
        }
    }
    let cloud = match input.cloud.as_deref() {
        None | Some("global") => Cloud::Global,
        Some("us-gov") => Cloud::UsGov,
        Some("china") => Cloud::China,
        Some(_) => {
            errors.add("cloud", "must be global, us-gov or china");
            Cloud::Global
        }
    };
    let tenant = match input.tenant.as_deref() {
        None => Some(MICROSOFT_DEFAULT_TENANT.to_owned()),
        Some(t) => text(&mut errors, "tenant", Some(t), 128).filter(|t| {
            let ok = t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
            if !ok {
                errors.add(
                    "tenant",
                    "must be common, organizations, consumers, a tenant id or a domain",
                );
            }
            ok
        }),
    };
    let defaults: Option<Defaults> = match kind {
        Some(ProviderKind::Microsoft) => Some(defaults::microsoft(
            cloud,
            tenant.as_deref().unwrap_or(MICROSOFT_DEFAULT_TENANT),
        )),
        Some(ProviderKind::Google) => Some(defaults::google()),
        _ => None,
    };
    let oauth2 = kind == Some(ProviderKind::OAuth2);
    let mut url_or_default =
        |field: &str, given: Option<&str>, default: Option<&String>| match (given, default) {
            (Some(_), _) => endpoint_url(&mut errors, field, given),
            (None, Some(d)) => Some(d.clone()),
            (None, None) => {
                if oauth2 {
                    errors.add(field, "is required for kind oauth2");
                }
                None
            }
        };
    let authorize_url = url_or_default(
        "authorize_url",
        input.authorize_url.as_deref(),
        defaults.as_ref().map(|d| &d.authorize_url),
    );
    let token_url = url_or_default(
        "token_url",
        input.token_url.as_deref(),
        defaults.as_ref().map(|d| &d.token_url),
    );
    let scopes = match scopes(
        &mut errors,
        kind.unwrap_or(ProviderKind::OAuth2),
        cloud,
        input.scopes.as_deref(),
    ) {
        Some(s) => Some(s),
        None if input.scopes.is_some() => None,
        None => {
            if oauth2 {
                errors.add("scopes", "is required for kind oauth2");
            }
            defaults.as_ref().map(|d| d.scopes.clone())
        }
    };
    let imap = mail_endpoint(
        &mut errors,
        "imap",
        input.imap.as_ref(),
        defaults.as_ref().map(|d| &d.imap),
    );
    let smtp = mail_endpoint(
        &mut errors,
        "smtp",
        input.smtp.as_ref(),
        defaults.as_ref().map(|d| &d.smtp),
    );
    if !errors.0.is_empty() {
        return Err(ValidationError { errors: errors.0 });
    }
    let (
        Some(kind),
        Some(client_id),
        Some(client_secret),
        Some(authorize_url),
        Some(token_url),
        Some(scopes),
        Some(imap),
        Some(smtp),
    ) = (
        kind,
        client_id,
        client_secret,
        authorize_url,
        token_url,
        scopes,
        imap,
        smtp,
    )
    else {
        // Every None above recorded an error; this is only reached if that invariant breaks.
        return Err(ValidationError {
            errors: vec![FieldError {
                field: "body".into(),
                message: "incomplete settings".into(),
            }],
        });
    };
    Ok(ProviderSettings {
        id: id.to_owned(),
        kind,
        client_id,
        client_secret,
        tenant: if microsoft { tenant } else { None },
        cloud: microsoft.then_some(cloud),
        authorize_url,
        token_url,
        scopes,
        imap,
        smtp,
        // Saving settings is how an admin fixes a rejected app: start over as ok.
        status: ProviderStatus::Ok,
        status_reason: None,
        created_at: existing.map_or(now, |e| e.created_at),
        updated_at: now,
        version: existing.map_or(1, |e| e.version + 1),
    })
}

/// The settings as the API shows them: everything but the secret.
pub fn public_view(p: &ProviderSettings) -> serde_json::Value {
    serde_json::json!({
        "id": p.id,
        "kind": p.kind,
        "client_id": p.client_id,
        "client_secret_set": !p.client_secret.expose_secret().is_empty(),
        "tenant": p.tenant,
        "cloud": p.cloud,
        "authorize_url": p.authorize_url,
        "token_url": p.token_url,
        "scopes": p.scopes,
        "imap": p.imap,
        "smtp": p.smtp,
        "status": p.status,
        "status_reason": p.status_reason,
        "created_at": mailroom_core::time::to_rfc3339(p.created_at),
        "updated_at": mailroom_core::time::to_rfc3339(p.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn microsoft(scopes: &[&str]) -> Result<ProviderSettings, ValidationError> {
        let input = ProviderSettingsInput {
            kind: Some("microsoft".into()),
            client_id: Some("c".into()),
            client_secret: Some(SecretString::from("s")),
            scopes: Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
            ..Default::default()
        };
        validate("ms", input, None, 0)
    }

    #[test]
    fn microsoft_scopes_must_name_one_resource() {
        assert!(
            microsoft(&[
                "openid",
                "offline_access",
                "https://outlook.office365.com/IMAP.AccessAsUser.All",
                "https://outlook.office365.com/SMTP.Send"
            ])
            .is_ok()
        );
        let graph = microsoft(&[
            "openid",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "User.Read",
        ]);
        assert_eq!(graph.unwrap_err().errors[0].field, "scopes");
        let two = microsoft(&[
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://graph.microsoft.com/Mail.Send",
        ]);
        assert!(two.is_err());
    }
}

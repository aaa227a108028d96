//! Built-in provider defaults, from the providers' own documentation (see the provider notes):
//! endpoints, scopes and mail hosts for Microsoft (per national cloud) and Google. Every value
//! can be overridden in the provider settings.

use mailroom_core::domain::{Cloud, MailEndpoint, TlsMode};

/// OpenID Connect scopes that providers often leave out of the granted `scope` and that say
/// nothing about mail access.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Microsoft's default tenant: work/school and personal accounts.
pub const MICROSOFT_DEFAULT_TENANT: &str = "common";

/// Google's only scope that IMAP and SMTP accept.
pub const GOOGLE_MAIL_SCOPE: &str = "https://mail.google.com/";

/// What one kind of provider uses unless the settings say otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub authorize_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub imap: MailEndpoint,
    pub smtp: MailEndpoint,
}

/// Hosts of one Microsoft cloud.
struct MicrosoftCloud {
    /// The Entra ID authority host.
    login: &'static str,
    /// The Outlook resource the IMAP and SMTP scopes belong to.
    outlook_resource: &'static str,
    imap: &'static str,
    smtp: &'static str,
}

fn microsoft_cloud(cloud: Cloud) -> MicrosoftCloud {
    match cloud {
        Cloud::Global => MicrosoftCloud {
            login: "login.microsoftonline.com",
            outlook_resource: "https://outlook.office.com",
            imap: "outlook.office365.com",
            smtp: "smtp.office365.com",
        },
        // GCC High / DoD: Exchange Online is served from office365.us.
        Cloud::UsGov => MicrosoftCloud {
            login: "login.microsoftonline.us",
            outlook_resource: "https://outlook.office365.us",
            imap: "outlook.office365.us",
            smtp: "smtp.office365.us",
        },
        // Operated by 21Vianet.
        Cloud::China => MicrosoftCloud {
            login: "login.chinacloudapi.cn",
            outlook_resource: "https://partner.outlook.cn",
            imap: "partner.outlook.cn",
            smtp: "smtp.partner.outlook.cn",
        },
    }
}

/// The Outlook resource (`https://host`) whose scopes IMAP and SMTP need in `cloud`.
pub fn microsoft_outlook_resource(cloud: Cloud) -> &'static str {
    microsoft_cloud(cloud).outlook_resource
}

/// Microsoft defaults for a cloud and tenant. Only Outlook resource scopes are requested:
/// Microsoft issues one token per resource, so a Graph scope such as `User.Read` in the same
/// request fails (AADSTS28000) or yields a token IMAP rejects.
pub fn microsoft(cloud: Cloud, tenant: &str) -> Defaults {
    let c = microsoft_cloud(cloud);
    let authority = format!("https://{}/{tenant}/oauth2/v2.0", c.login);
    let mut scopes: Vec<String> = OIDC_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    scopes.push(format!("{}/IMAP.AccessAsUser.All", c.outlook_resource));
    scopes.push(format!("{}/SMTP.Send", c.outlook_resource));
    Defaults {
        authorize_url: format!("{authority}/authorize"),
        token_url: format!("{authority}/token"),
        scopes,
        imap: MailEndpoint {
            host: c.imap.to_owned(),
            port: 993,
            tls: TlsMode::Implicit,
        },
        smtp: MailEndpoint {
            host: c.smtp.to_owned(),
            port: 587,
            tls: TlsMode::Starttls,
        },
    }
}

/// Google defaults (`access_type=offline` and `prompt=consent` are added by the flow).
pub fn google() -> Defaults {
    Defaults {
        authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
        token_url: "https://oauth2.googleapis.com/token".to_owned(),
        scopes: vec![
            "openid".to_owned(),
            "email".to_owned(),
            GOOGLE_MAIL_SCOPE.to_owned(),
        ],
        imap: MailEndpoint {
            host: "imap.gmail.com".to_owned(),
            port: 993,
            tls: TlsMode::Implicit,
        },
        smtp: MailEndpoint {
            host: "smtp.gmail.com".to_owned(),
            port: 465,
            tls: TlsMode::Implicit,
        },
    }
}

/// The scopes that matter for mail access (the requested ones minus the OIDC ones): the granted
/// scopes must cover all of them.
pub fn mail_scopes(requested: &[String]) -> Vec<&str> {
    requested
        .iter()
        .map(String::as_str)
        .filter(|s| !OIDC_SCOPES.contains(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_global_defaults_follow_the_documentation() {
        let d = microsoft(Cloud::Global, "common");
        assert_eq!(
            d.authorize_url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
        );
        assert_eq!(
            d.token_url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert_eq!(
            d.scopes.join(" "),
            "openid profile email offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send"
        );
        assert_eq!(
            (d.imap.host.as_str(), d.imap.port),
            ("outlook.office365.com", 993)
        );
        assert_eq!(d.imap.tls, TlsMode::Implicit);
        assert_eq!(
            (d.smtp.host.as_str(), d.smtp.port),
            ("smtp.office365.com", 587)
        );
        assert_eq!(d.smtp.tls, TlsMode::Starttls);
    }

    #[test]
    fn national_clouds_use_their_own_authority() {
        let gov = microsoft(Cloud::UsGov, "contoso.onmicrosoft.us");
        assert!(
            gov.authorize_url
                .starts_with("https://login.microsoftonline.us/contoso.onmicrosoft.us/")
        );
        let china = microsoft(Cloud::China, "organizations");
        assert!(
            china
                .token_url
                .starts_with("https://login.chinacloudapi.cn/organizations/")
        );
    }

    #[test]
    fn google_defaults() {
        let d = google();
        assert_eq!(d.scopes.join(" "), "openid email https://mail.google.com/");
        assert_eq!(
            (d.smtp.host.as_str(), d.smtp.port, d.smtp.tls),
            ("smtp.gmail.com", 465, TlsMode::Implicit)
        );
        assert_eq!(mail_scopes(&d.scopes), vec![GOOGLE_MAIL_SCOPE]);
    }
}

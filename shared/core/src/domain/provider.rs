//! Provider settings: an admin's OAuth app and the mail hosts its accounts use.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Which kind of provider an OAuth app belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Microsoft,
    Google,
    #[serde(rename = "oauth2")]
    OAuth2,
}

/// Microsoft national cloud: picks the authority host and the Outlook resource host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    #[default]
    Global,
    UsGov,
    China,
}

/// How a mail connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    Implicit,
    /// Plain connect, then STARTTLS (SMTP 587).
    Starttls,
}

/// An IMAP or SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailEndpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
}

/// Whether the app's credentials work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    #[default]
    Ok,
    /// The token endpoint rejected the client (expired or wrong secret): every account of this
    /// app is affected until an admin fixes the settings.
    NeedsAdminAction,
}

/// An admin's OAuth app, with every endpoint resolved (defaults already applied).
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub id: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Microsoft only: `common`, `organizations`, `consumers` or a tenant id/domain.
    pub tenant: Option<String>,
    /// Microsoft only.
    pub cloud: Option<Cloud>,
    pub authorize_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub imap: MailEndpoint,
    pub smtp: MailEndpoint,
    pub status: ProviderStatus,
    pub status_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: u64,
}

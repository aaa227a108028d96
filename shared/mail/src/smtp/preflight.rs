//! The connect-time preflight: IMAP XOAUTH2 login + SELECT INBOX + LOGOUT, and SMTP EHLO +
//! AUTH XOAUTH2 + QUIT (nothing is sent). The result is kept on the account
//! (`extra.preflight`), so a user learns that sending will fail (for example because SMTP AUTH
//! is disabled for the tenant) before the first send does. The worker runs it for `Verify` jobs
//! and `POST /v1/accounts/{id}/verify` runs it on demand.

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::domain::ProviderSettings;
use mailroom_core::ports::{AccessGrant, TokenError, TokenSource};
use mailroom_core::records::{RecordError, Repository};
use mailroom_core::time::{now_unix, to_rfc3339};
use rustls::ClientConfig;
use serde::Serialize;

use super::connect::SmtpConnector;
use super::error::{AUTH_DISABLED_FIX, SmtpError};
use crate::imap::{ErrorKind, ImapConnector, ImapError};

/// Key of the result in `Account.extra`.
pub const PREFLIGHT_KEY: &str = "preflight";

const TIMEOUT: Duration = Duration::from_secs(20);
const REAUTH_FIX: &str = "Connect the mailbox again (the sign-in was revoked or has expired).";

/// What the preflight found; stored as JSON under `extra.preflight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightReport {
    /// `ok`, `auth_failed`, `unreachable`, `throttled`, `error` or `reauth_required`.
    pub imap: String,
    /// `ok`, `auth_disabled_for_tenant`, `auth_failed`, `unreachable`, `no_xoauth2`,
    /// `no_starttls`, `error` or `reauth_required`.
    pub smtp: String,
    pub checked_at: String,
    /// What an administrator or the user must do, when something needs doing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imap_detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_detail: Option<String>,
}

/// Why the preflight could not run (its findings about the servers are not errors).
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("account {0} does not exist")]
    AccountNotFound(String),
    #[error("the provider settings {0} of the account are missing")]
    ProviderMissing(String),
    /// No token could be had for now (network, provider outage): run it again later.
    #[error("could not check account {account_id} now: {reason}")]
    Transient { account_id: String, reason: String },
    #[error(transparent)]
    Store(#[from] RecordError),
}

struct Check {
    status: &'static str,
    detail: Option<String>,
}

impl Check {
    fn ok() -> Self {
        Self {
            status: "ok",
            detail: None,
        }
    }
    fn failed(status: &'static str, detail: String) -> Self {
        Self {
            status,
            detail: Some(detail),
        }
    }
}

fn imap_check(e: &ImapError) -> Check {
    let status = match e.kind() {
        ErrorKind::Auth => "auth_failed",
        ErrorKind::Throttled => "throttled",
        ErrorKind::Connection => "unreachable",
        ErrorKind::Protocol => "error",
    };
    Check::failed(status, e.to_string())
}

fn smtp_check(e: &SmtpError) -> Check {
    let status = match e {
        SmtpError::AuthDisabled { .. } => "auth_disabled_for_tenant",
        SmtpError::AuthRejected { .. } => "auth_failed",
        SmtpError::NoXoauth2 => "no_xoauth2",
        SmtpError::NoStartTls => "no_starttls",
        SmtpError::Connect { .. } | SmtpError::Connection { .. } | SmtpError::Timeout { .. } => {
            "unreachable"
        }
        _ => "error",
    };
    Check::failed(status, e.to_string())
}

struct Preflight<'a> {
    tokens: &'a dyn TokenSource,
    imap: ImapConnector,
    smtp: SmtpConnector,
    account_id: &'a str,
}

impl Preflight<'_> {
    async fn token(&self, force: bool) -> Result<AccessGrant, TokenError> {
        self.tokens.access_token(self.account_id, force).await
    }

    async fn imap_once(
        &self,
        provider: &ProviderSettings,
        grant: &AccessGrant,
    ) -> Result<(), ImapError> {
        let mut session = self
            .imap
            .open_session(&provider.imap, &grant.email, &grant.access_token)
            .await?;
        let selected = session.open("INBOX").await;
        session.logout().await;
        selected.map(|_| ())
    }

    async fn smtp_once(
        &self,
        provider: &ProviderSettings,
        grant: &AccessGrant,
    ) -> Result<(), SmtpError> {
        let mut session = self.smtp.connect(&provider.smtp).await?;
        let result = session
            .authenticate(&grant.email, &grant.access_token)
            .await;
        session.quit().await;
        result
    }

    /// IMAP, with one forced refresh when the server refuses the token.
    async fn imap(
        &self,
        provider: &ProviderSettings,
        grant: &AccessGrant,
    ) -> Result<Check, TokenError> {
        match self.imap_once(provider, grant).await {
            Ok(()) => Ok(Check::ok()),
            Err(e) if e.kind() == ErrorKind::Auth => {
                let fresh = self.token(true).await?;
                Ok(match self.imap_once(provider, &fresh).await {
                    Ok(()) => Check::ok(),
                    Err(e) => imap_check(&e),
                })
            }
            Err(e) => Ok(imap_check(&e)),
        }
    }

    /// SMTP, with one forced refresh when the server refuses the token.
    async fn smtp(
        &self,
        provider: &ProviderSettings,
        grant: &AccessGrant,
    ) -> Result<Check, TokenError> {
        match self.smtp_once(provider, grant).await {
            Ok(()) => Ok(Check::ok()),
            Err(SmtpError::AuthRejected { .. }) => {
                let fresh = self.token(true).await?;
                Ok(match self.smtp_once(provider, &fresh).await {
                    Ok(()) => Check::ok(),
                    Err(e) => smtp_check(&e),
                })
            }
            Err(e) => Ok(smtp_check(&e)),
        }
    }
}

fn report(imap: Check, smtp: Check) -> PreflightReport {
    let fix = match (imap.status, smtp.status) {
        ("reauth_required", _) | (_, "reauth_required") => Some(REAUTH_FIX.to_owned()),
        (_, "auth_disabled_for_tenant") => Some(AUTH_DISABLED_FIX.to_owned()),
        _ => None,
    };
    PreflightReport {
        imap: imap.status.to_owned(),
        smtp: smtp.status.to_owned(),
        checked_at: to_rfc3339(now_unix()),
        fix,
        imap_detail: imap.detail,
        smtp_detail: smtp.detail,
    }
}

/// Checks IMAP and SMTP login for an account and stores the report on it. `tls` is the
/// runtime's client configuration.
pub async fn preflight(
    repo: &Repository,
    tokens: &dyn TokenSource,
    tls: Arc<ClientConfig>,
    account_id: &str,
) -> Result<PreflightReport, PreflightError> {
    let account = repo
        .get_account(account_id)
        .await?
        .ok_or_else(|| PreflightError::AccountNotFound(account_id.to_owned()))?;
    let provider = repo
        .get_provider(&account.provider_id)
        .await?
        .ok_or_else(|| PreflightError::ProviderMissing(account.provider_id.clone()))?;
    let check = Preflight {
        tokens,
        imap: ImapConnector::new(tls.clone(), TIMEOUT),
        smtp: SmtpConnector::new(tls, TIMEOUT),
        account_id,
    };
    let outcome = async {
        let grant = check.token(false).await?;
        let imap = check.imap(&provider, &grant).await?;
        let smtp = check.smtp(&provider, &grant).await?;
        Ok::<_, TokenError>(report(imap, smtp))
    }
    .await;
    let report = match outcome {
        Ok(report) => report,
        Err(TokenError::ReauthRequired { reason, .. }) => report(
            Check::failed("reauth_required", reason.clone()),
            Check::failed("reauth_required", reason),
        ),
        Err(TokenError::AdminActionRequired { reason, .. }) => {
            let detail = format!("the OAuth app needs an administrator: {reason}");
            report(
                Check::failed("error", detail.clone()),
                Check::failed("error", detail),
            )
        }
        Err(e @ (TokenError::Transient { .. } | TokenError::NotFound { .. })) => {
            return Err(PreflightError::Transient {
                account_id: account_id.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    store(repo, account_id, &report).await?;
    tracing::info!(account_id, imap = %report.imap, smtp = %report.smtp, "preflight finished");
    Ok(report)
}

/// Puts the report on the account, re-reading it when another writer got there first.
async fn store(
    repo: &Repository,
    account_id: &str,
    report: &PreflightReport,
) -> Result<(), PreflightError> {
    let value = serde_json::to_value(report).unwrap_or_default();
    // Each conflict means another writer (a sync, a token refresh) just saved the account:
    // re-reading settles it within a few rounds.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut account = repo
            .get_account(account_id)
            .await?
            .ok_or_else(|| PreflightError::AccountNotFound(account_id.to_owned()))?;
        account
            .extra
            .insert(PREFLIGHT_KEY.to_owned(), value.clone());
        account.updated_at = now_unix();
        match repo.update_account(&mut account).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_conflict() && attempts < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

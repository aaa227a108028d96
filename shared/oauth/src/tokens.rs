//! The [`TokenSource`] over the store and the token endpoint: hands out the stored access token
//! while it has more than a minute left, else refreshes it. Refreshes of one account are
//! serialized across processes with a store lease, so concurrent callers cause one token request;
//! the rotated refresh token is always persisted.

use std::time::Duration;

use async_trait::async_trait;
use mailroom_core::domain::{Account, AccountStatus, ProviderStatus};
use mailroom_core::ports::{AccessGrant, TokenError, TokenSource};
use mailroom_core::records::{RecordError, Repository};
use mailroom_core::time::now_unix;
use secrecy::ExposeSecret;

use crate::endpoint::{self, EndpointError, Granted};

/// A token with less than this left is refreshed before it is handed out.
pub const REFRESH_MARGIN_SECONDS: i64 = 60;
/// Lease purpose of refreshes.
const LEASE_PURPOSE: &str = "refresh";
/// How long a refresh lease holds (longer than one token request may take).
const LEASE_SECONDS: i64 = 30;
/// How long a caller waits for another process's refresh before giving up for now.
const WAIT_LIMIT: Duration = Duration::from_secs(35);
const POLL: Duration = Duration::from_millis(150);
/// Retries of a failed write of refreshed tokens (back-off 0.2 s doubling, about 6 s in all,
/// well inside the refresh lease).
const SAVE_RETRIES: u32 = 5;

/// Whether a store or key-service failure may pass on its own (throttling, unavailability).
fn passing(e: &RecordError) -> bool {
    use mailroom_core::crypto::CryptoError;
    use mailroom_core::ports::{KeyError, StoreError};
    matches!(
        e,
        RecordError::Store(StoreError::Throttled | StoreError::Unavailable(_))
            | RecordError::Crypto(CryptoError::Key(KeyError::Unavailable(_)))
    )
}

/// Token source backed by the repository and the providers' token endpoints.
#[derive(Clone)]
pub struct OAuthTokenSource {
    repo: Repository,
    http: reqwest::Client,
    /// Names this process in leases (for diagnosis only).
    holder: String,
}

fn grant(a: &Account) -> AccessGrant {
    AccessGrant {
        account_id: a.id.clone(),
        email: a.email.clone(),
        access_token: a.tokens.access_token.clone(),
        expires_at: a.tokens.access_expires_at,
    }
}

fn transient(account_id: &str, reason: impl ToString) -> TokenError {
    TokenError::Transient {
        account_id: account_id.to_owned(),
        reason: reason.to_string(),
    }
}

/// Marks provider settings `needs_admin_action` (best effort: the caller's error says the same).
pub(crate) async fn mark_provider_needs_admin(repo: &Repository, provider_id: &str, reason: &str) {
    for _ in 0..3 {
        let mut p = match repo.get_provider(provider_id).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(provider_id, error = %e, "could not read provider settings to flag them");
                return;
            }
        };
        let expected = p.version;
        p.status = ProviderStatus::NeedsAdminAction;
        p.status_reason = Some(reason.to_owned());
        p.updated_at = now_unix();
        p.version = expected + 1;
        match repo.put_provider(&p, Some(expected)).await {
            Ok(()) => {
                tracing::error!(
                    provider_id,
                    reason,
                    "provider rejected the OAuth app; admin action needed"
                );
                return;
            }
            Err(e) if e.is_conflict() => continue,
            Err(e) => {
                tracing::warn!(provider_id, error = %e, "could not flag provider settings");
                return;
            }
        }
    }
}

impl OAuthTokenSource {
    pub fn new(repo: Repository, http: reqwest::Client) -> Self {
        let n: u64 = rand::random();
        Self {
            repo,
            http,
            holder: format!("token-source-{n:016x}"),
        }
    }

    async fn load(&self, account_id: &str) -> Result<Account, TokenError> {
        match self.repo.get_account(account_id).await {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(TokenError::NotFound {
                account_id: account_id.to_owned(),
            }),
            Err(e) => Err(transient(account_id, e)),
        }
    }

    /// The stored token is usable: enough time left, and (when the caller saw it rejected) not
    /// the token that was rejected.
    fn usable(a: &Account, rejected: Option<&str>) -> Result<Option<AccessGrant>, TokenError> {
        if a.status == AccountStatus::ReauthRequired {
            return Err(TokenError::ReauthRequired {
                account_id: a.id.clone(),
                reason: a
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| "the grant was revoked".into()),
            });
        }
        let fresh = a.tokens.access_expires_at - now_unix() > REFRESH_MARGIN_SECONDS;
        let not_rejected = rejected.is_none_or(|r| r != a.tokens.access_token.expose_secret());
        Ok((fresh && not_rejected).then(|| grant(a)))
    }

    /// Applies a change to the stored account, re-reading it when another writer got there first
    /// (a sync may update its fields meanwhile; the new tokens must never be lost).
    async fn save(
        &self,
        mut account: Account,
        change: impl Fn(&mut Account),
    ) -> Result<Account, RecordError> {
        let mut retries = 0u32;
        loop {
            change(&mut account);
            match self.repo.update_account(&mut account).await {
                Ok(()) => return Ok(account),
                Err(e) if e.is_conflict() => match self.repo.get_account(&account.id).await? {
                    Some(fresh) => account = fresh,
                    None => return Err(e),
                },
                // The provider may already have rotated the refresh token: losing the new one to
                // a passing store or key-service hiccup would force the user to connect again.
                Err(e) if passing(&e) && retries < SAVE_RETRIES => {
                    retries += 1;
                    tracing::warn!(account_id = %account.id, error = %e, retries, "could not store the account; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << retries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Calls the token endpoint for an account whose refresh lease we hold.
    async fn refresh(&self, account: Account) -> Result<AccessGrant, TokenError> {
        let id = account.id.clone();
        let provider = match self.repo.get_provider(&account.provider_id).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Err(TokenError::AdminActionRequired {
                    provider_id: account.provider_id.clone(),
                    reason: "the provider settings were deleted".into(),
                });
            }
            Err(e) => return Err(transient(&id, e)),
        };
        if provider.status == ProviderStatus::NeedsAdminAction {
            // The app is known to be rejected: asking again would only repeat the failure.
            return Err(TokenError::AdminActionRequired {
                provider_id: provider.id,
                reason: provider.status_reason.unwrap_or_default(),
            });
        }
        match endpoint::refresh(&self.http, &provider, &account.tokens.refresh_token).await {
            Ok(granted) => {
                let now = now_unix();
                let Granted {
                    access_token,
                    refresh_token,
                    expires_in,
                    scopes,
                    ..
                } = granted;
                let lifetime =
                    expires_in.map_or(3600, |d| i64::try_from(d.as_secs()).unwrap_or(3600));
                let saved = self
                    .save(account, |a| {
                        a.tokens.access_token = access_token.clone();
                        // Providers that rotate send a new one; others keep the old one valid.
                        if let Some(rt) = &refresh_token {
                            a.tokens.refresh_token = rt.clone();
                        }
                        a.tokens.access_expires_at = now + lifetime;
                        if let Some(s) = &scopes {
                            a.granted_scopes = s.clone();
                        }
                        a.updated_at = now;
                    })
                    .await
                    .map_err(|e| {
                        tracing::error!(account_id = %id, error = %e, "refreshed tokens could not be stored");
                        transient(&id, format!("the refreshed tokens could not be stored: {e}"))
                    })?;
                tracing::info!(account_id = %id, rotated = refresh_token.is_some(), "access token refreshed");
                Ok(grant(&saved))
            }
            Err(EndpointError::Grant(reason)) => {
                let now = now_unix();
                let r = reason.clone();
                if let Err(e) = self
                    .save(account, |a| {
                        a.status = AccountStatus::ReauthRequired;
                        a.status_reason = Some(r.clone());
                        a.updated_at = now;
                    })
                    .await
                {
                    tracing::warn!(account_id = %id, error = %e, "could not mark the account reauth_required");
                }
                tracing::warn!(account_id = %id, reason = %reason, "refresh token refused; re-connect needed");
                Err(TokenError::ReauthRequired {
                    account_id: id,
                    reason,
                })
            }
            Err(EndpointError::Client(reason)) | Err(EndpointError::Settings(reason)) => {
                mark_provider_needs_admin(&self.repo, &provider.id, &reason).await;
                Err(TokenError::AdminActionRequired {
                    provider_id: provider.id,
                    reason,
                })
            }
            Err(EndpointError::Transient(reason)) => {
                tracing::warn!(account_id = %id, reason = %reason, "token refresh failed for now");
                Err(transient(&id, reason))
            }
        }
    }
}

#[async_trait]
impl TokenSource for OAuthTokenSource {
    async fn access_token(
        &self,
        account_id: &str,
        force_refresh: bool,
    ) -> Result<AccessGrant, TokenError> {
        let account = self.load(account_id).await?;
        // With force_refresh the caller saw this token rejected: any other token will do.
        let rejected =
            force_refresh.then(|| account.tokens.access_token.expose_secret().to_owned());
        if let Some(g) = Self::usable(&account, rejected.as_deref())? {
            return Ok(g);
        }
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let lease = self
                .repo
                .try_lease(
                    account_id,
                    LEASE_PURPOSE,
                    &self.holder,
                    now_unix(),
                    LEASE_SECONDS,
                )
                .await
                .map_err(|e| transient(account_id, e))?;
            if let Some(lease) = lease {
                // Someone may have refreshed between our read and the lease.
                let result = match self.load(account_id).await {
                    Ok(account) => match Self::usable(&account, rejected.as_deref()) {
                        Ok(Some(g)) => Ok(g),
                        Ok(None) => self.refresh(account).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                if let Err(e) = self.repo.release_lease(&lease).await {
                    // The lease expires on its own; only the next refresh waits a little longer.
                    tracing::warn!(account_id, error = %e, "could not release the refresh lease");
                }
                return result;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(transient(
                    account_id,
                    "another refresh of this account is taking too long",
                ));
            }
            tokio::time::sleep(POLL).await;
            let account = self.load(account_id).await?;
            if let Some(g) = Self::usable(&account, rejected.as_deref())? {
                return Ok(g);
            }
        }
    }
}

//! The [`TokenSource`] over the store and the token endpoint. Access tokens are kept in this
//! process's memory per account until a minute before they expire, so a warm function reads
//! and writes nothing to hand one out; concurrent callers in one process share one refresh
//! (single-flight). What a refresh writes, and whether refreshes are serialized across processes
//! by a store lease, is the provider kind's [`RefreshPolicy`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mailroom_core::domain::{Account, AccountStatus, ProviderSettings, ProviderStatus};
use mailroom_core::ports::{AccessGrant, TokenError, TokenSource};
use mailroom_core::records::Repository;
use mailroom_core::time::now_unix;
use secrecy::ExposeSecret;

use crate::cache::GrantCache;
use crate::policy::RefreshPolicy;
use crate::providers::ProviderCache;
use crate::refresh::{self, stored_grant, transient};

/// A token with less than this left is refreshed before it is handed out.
pub const REFRESH_MARGIN_SECONDS: i64 = 60;
/// Lease purpose of refreshes.
const LEASE_PURPOSE: &str = "refresh";
/// How long a refresh lease holds (longer than one token request may take).
const LEASE_SECONDS: i64 = 30;
/// How long a caller waits for another process's refresh before giving up for now.
const WAIT_LIMIT: Duration = Duration::from_secs(35);
const POLL: Duration = Duration::from_millis(150);

/// Marks provider settings `needs_admin_action` (best effort: the caller's error says the same),
/// unless they changed since the caller read them at `used_version`: an admin who saved new
/// settings (a rotated secret) meanwhile must not find them flagged for the old ones' failure.
pub(crate) async fn mark_provider_needs_admin(
    repo: &Repository,
    provider_id: &str,
    used_version: u64,
    reason: &str,
) {
    for _ in 0..3 {
        let mut p = match repo.get_provider(provider_id).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(provider_id, error = %e, "could not read provider settings to flag them");
                return;
            }
        };
        if p.version != used_version {
            tracing::info!(
                provider_id,
                "provider settings changed since the refused request; not flagging them"
            );
            return;
        }
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

/// Token source backed by the repository and the providers' token endpoints. Clones share one
/// memory of tokens: build one per process.
#[derive(Clone)]
pub struct OAuthTokenSource {
    repo: Repository,
    http: reqwest::Client,
    /// Names this process in leases (for diagnosis only).
    holder: String,
    cache: Arc<GrantCache>,
    /// Provider settings read lately (`providers.rs`).
    providers: Arc<ProviderCache>,
    /// Replaces the provider kind's policy (tests and measurements).
    policy_override: Option<RefreshPolicy>,
}

impl OAuthTokenSource {
    pub fn new(repo: Repository, http: reqwest::Client) -> Self {
        let n: u64 = rand::random();
        Self {
            repo,
            http,
            holder: format!("token-source-{n:016x}"),
            cache: Arc::default(),
            providers: Arc::default(),
            policy_override: None,
        }
    }

    /// The same source with `policy` for every provider instead of each kind's own (for tests
    /// that shorten Microsoft's persistence bound).
    pub fn with_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy_override = Some(policy);
        self
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

    /// The account, possibly a moment stale (half the price on DynamoDB): enough to hand out a
    /// stored token or to refresh with the stored refresh token, because every write that
    /// follows is conditional on the version or re-reads (and the lease path re-reads). A dead
    /// account is confirmed by a consistent read (it may just have been connected again).
    async fn load_stale(&self, account_id: &str) -> Result<Account, TokenError> {
        match self.repo.get_account_stale(account_id).await {
            Ok(Some(a)) if a.status != AccountStatus::ReauthRequired => Ok(a),
            Ok(_) => self.load(account_id).await,
            Err(e) => Err(transient(account_id, e)),
        }
    }

    /// The account's provider settings, and whether they came from this process's memory
    /// instead of the store (`fresh` always reads).
    async fn provider(
        &self,
        account: &Account,
        fresh: bool,
    ) -> Result<(ProviderSettings, bool), TokenError> {
        if !fresh && let Some(p) = self.providers.get(&account.provider_id) {
            return Ok((p, true));
        }
        let provider = match self.repo.get_provider(&account.provider_id).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Err(TokenError::AdminActionRequired {
                    provider_id: account.provider_id.clone(),
                    reason: "the provider settings were deleted".into(),
                });
            }
            Err(e) => return Err(transient(&account.id, e)),
        };
        if provider.status == ProviderStatus::NeedsAdminAction {
            // The app is known to be rejected: asking again would only repeat the failure.
            return Err(TokenError::AdminActionRequired {
                provider_id: provider.id,
                reason: provider.status_reason.unwrap_or_default(),
            });
        }
        self.providers.put(&provider);
        Ok((provider, false))
    }

    /// The stored token is usable: the account is not dead, the token has enough time left,
    /// expires after `held_until` (else it is older than the one this process holds) and
    /// (when the caller saw one rejected) is not the rejected one.
    fn usable(
        a: &Account,
        rejected: Option<&str>,
        held_until: Option<i64>,
    ) -> Result<Option<AccessGrant>, TokenError> {
        if a.status == AccountStatus::ReauthRequired {
            return Err(TokenError::ReauthRequired {
                account_id: a.id.clone(),
                reason: a
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| "the grant was revoked".into()),
            });
        }
        let fresh = a.tokens.access_expires_at - now_unix() > REFRESH_MARGIN_SECONDS
            && held_until.is_none_or(|t| a.tokens.access_expires_at > t)
            && !a.tokens.access_token.expose_secret().is_empty();
        let not_rejected = rejected.is_none_or(|r| r != a.tokens.access_token.expose_secret());
        Ok((fresh && not_rejected).then(|| stored_grant(a)))
    }

    /// Runs under this process's gate of the account: the store's token if usable, else a
    /// refresh as the provider's policy says.
    async fn obtain(
        &self,
        account_id: &str,
        rejected: Option<&str>,
        force_refresh: bool,
    ) -> Result<AccessGrant, TokenError> {
        // Another caller of this process may have refreshed while we waited at the gate.
        if (!force_refresh || rejected.is_some())
            && let Some(g) =
                self.cache
                    .fresh(account_id, now_unix(), REFRESH_MARGIN_SECONDS, rejected)
        {
            return Ok(g);
        }
        let account = self.load_stale(account_id).await?;
        // Nothing handed out here before: the caller saw the stored token rejected.
        let stored_rejected = force_refresh
            .then(|| account.tokens.access_token.expose_secret().to_owned())
            .filter(|_| rejected.is_none());
        let rejected = rejected.or(stored_rejected.as_deref());
        let held_until = self.cache.expires_at(account_id);
        if let Some(g) = Self::usable(&account, rejected, held_until)? {
            return Ok(g);
        }
        let (provider, cached) = self.provider(&account, false).await?;
        let result = self
            .refresh_with(&provider, account.clone(), rejected, held_until)
            .await;
        match result {
            // Refused as a client with settings from memory: an admin may have saved new ones
            // (a rotated secret) since. Read them again and, if they changed, try once more.
            Err(TokenError::AdminActionRequired { .. }) if cached => {
                self.providers.forget(&provider.id);
                let (current, _) = self.provider(&account, true).await?;
                if current.version == provider.version {
                    return result;
                }
                self.refresh_with(&current, account, rejected, held_until)
                    .await
            }
            // Any other failure: the next refresh reads the settings again, so an admin's fix
            // (a token URL, a tenant) shows as soon as it is needed.
            Err(_) => {
                self.providers.forget(&provider.id);
                result
            }
            Ok(grant) => Ok(grant),
        }
    }

    /// Refreshes `account`'s token with `provider`'s settings as its policy says.
    async fn refresh_with(
        &self,
        provider: &ProviderSettings,
        account: Account,
        rejected: Option<&str>,
        held_until: Option<i64>,
    ) -> Result<AccessGrant, TokenError> {
        let policy = self
            .policy_override
            .unwrap_or_else(|| RefreshPolicy::for_kind(provider.kind));
        if policy.needs_lease() {
            self.refresh_leased(provider, policy, &account.id, rejected, held_until)
                .await
        } else {
            refresh::refresh(&self.repo, &self.http, provider, policy, account).await
        }
    }

    /// Refreshes under the account's store lease, so that processes refreshing at once make one
    /// token request and nobody presents a refresh token the provider already rotated away.
    async fn refresh_leased(
        &self,
        provider: &ProviderSettings,
        policy: RefreshPolicy,
        account_id: &str,
        rejected: Option<&str>,
        held_until: Option<i64>,
    ) -> Result<AccessGrant, TokenError> {
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
                    Ok(account) => match Self::usable(&account, rejected, held_until) {
                        Ok(Some(g)) => Ok(g),
                        Ok(None) => {
                            refresh::refresh(&self.repo, &self.http, provider, policy, account)
                                .await
                        }
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
            if let Some(g) = Self::usable(&account, rejected, held_until)? {
                return Ok(g);
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
        // With force_refresh the caller saw the token we handed out rejected: any other will do.
        let rejected = if force_refresh {
            self.cache.token(account_id)
        } else {
            if let Some(g) = self
                .cache
                .fresh(account_id, now_unix(), REFRESH_MARGIN_SECONDS, None)
            {
                return Ok(g);
            }
            None
        };
        let gate = self.cache.gate(account_id);
        let queued_at = tokio::time::Instant::now();
        let result = {
            let mut last_failure = gate.lock().await;
            match last_failure.as_ref() {
                // The refresh we queued behind failed: share its outcome.
                Some((at, e)) if *at >= queued_at => Err(e.clone()),
                _ => {
                    let result = self
                        .obtain(account_id, rejected.as_deref(), force_refresh)
                        .await;
                    // Remembered before the gate opens, so that the callers queued behind
                    // find the new token (or the failure) instead of refreshing again.
                    match &result {
                        Ok(g) => {
                            self.cache.put(g.clone(), now_unix());
                            *last_failure = None;
                        }
                        Err(e) => {
                            if matches!(
                                e,
                                TokenError::ReauthRequired { .. } | TokenError::NotFound { .. }
                            ) {
                                self.cache.forget(account_id);
                            }
                            *last_failure = Some((tokio::time::Instant::now(), e.clone()));
                        }
                    }
                    result
                }
            }
        };
        self.cache.release_gate(account_id, &gate);
        result
    }
}

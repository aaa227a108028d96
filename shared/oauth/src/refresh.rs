//! One refresh of one account at the token endpoint, and what its answer changes in the store:
//! the rotated refresh token written as the provider's [`RefreshPolicy`] requires, a dead grant
//! marked `reauth_required`, a rejected app marked `needs_admin_action`.

use std::time::Duration;

use mailroom_core::domain::{Account, AccountStatus, ProviderSettings};
use mailroom_core::ports::{AccessGrant, TokenError};
use mailroom_core::records::{
    RecordError, Repository, refresh_token_stored_at, set_refresh_token_stored_at,
};
use mailroom_core::time::now_unix;
use secrecy::{ExposeSecret, SecretString};

use crate::endpoint::{self, EndpointError, Granted};
use crate::policy::RefreshPolicy;
use crate::tokens::mark_provider_needs_admin;

/// Retries of a failed write of refreshed tokens (back-off 0.2 s doubling, about 6 s in all,
/// well inside the refresh lease).
const SAVE_RETRIES: u32 = 5;
/// Lifetime assumed when the token endpoint does not say.
const DEFAULT_LIFETIME_SECONDS: i64 = 3600;

pub(crate) fn transient(account_id: &str, reason: impl ToString) -> TokenError {
    TokenError::Transient {
        account_id: account_id.to_owned(),
        reason: reason.to_string(),
    }
}

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

/// The grant an account's stored access token makes.
pub(crate) fn stored_grant(a: &Account) -> AccessGrant {
    AccessGrant {
        account_id: a.id.clone(),
        email: a.email.clone(),
        access_token: a.tokens.access_token.clone(),
        expires_at: a.tokens.access_expires_at,
    }
}

/// Applies a change to the stored account, re-reading it when another writer got there first
/// (a sync may update its fields meanwhile; a new refresh token must never be lost).
pub(crate) async fn save(
    repo: &Repository,
    mut account: Account,
    change: impl Fn(&mut Account),
) -> Result<Account, RecordError> {
    let mut retries = 0u32;
    loop {
        change(&mut account);
        match repo.update_account(&mut account).await {
            Ok(()) => return Ok(account),
            Err(e) if e.is_conflict() => match repo.get_account(&account.id).await? {
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

/// Refreshes `account` (whose lease the caller holds when the policy needs one) and writes what
/// `policy` requires. The returned grant is for the caller's memory.
pub(crate) async fn refresh(
    repo: &Repository,
    http: &reqwest::Client,
    provider: &ProviderSettings,
    policy: RefreshPolicy,
    account: Account,
) -> Result<AccessGrant, TokenError> {
    let id = account.id.clone();
    let mut answer = endpoint::refresh(http, provider, &account.tokens.refresh_token).await;
    let mut account = account;
    if matches!(answer, Err(EndpointError::Grant(_))) && !policy.needs_lease() {
        // Without a lease another process may have stored a newer refresh token since we read
        // the account: try that one before calling the grant dead.
        if let Ok(Some(fresh)) = repo.get_account(&id).await
            && fresh.tokens.refresh_token.expose_secret()
                != account.tokens.refresh_token.expose_secret()
        {
            answer = endpoint::refresh(http, provider, &fresh.tokens.refresh_token).await;
            account = fresh;
        }
    }
    match answer {
        Ok(granted) => Ok(store_granted(repo, policy, account, granted).await?),
        Err(EndpointError::Grant(reason)) => {
            let now = now_unix();
            let r = reason.clone();
            if let Err(e) = save(repo, account, |a| {
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
            mark_provider_needs_admin(repo, &provider.id, provider.version, &reason).await;
            Err(TokenError::AdminActionRequired {
                provider_id: provider.id.clone(),
                reason,
            })
        }
        Err(EndpointError::Transient(reason)) => {
            tracing::warn!(account_id = %id, reason = %reason, "token refresh failed for now");
            Err(transient(&id, reason))
        }
    }
}

/// Writes what the policy requires of a successful refresh; the grant to hand out.
async fn store_granted(
    repo: &Repository,
    policy: RefreshPolicy,
    account: Account,
    granted: Granted,
) -> Result<AccessGrant, TokenError> {
    let id = account.id.clone();
    let now = now_unix();
    let Granted {
        access_token,
        refresh_token,
        expires_in,
        scopes,
        ..
    } = granted;
    let lifetime = expires_in.map_or(DEFAULT_LIFETIME_SECONDS, |d| {
        i64::try_from(d.as_secs()).unwrap_or(DEFAULT_LIFETIME_SECONDS)
    });
    let grant = AccessGrant {
        account_id: id.clone(),
        email: account.email.clone(),
        access_token: access_token.clone(),
        expires_at: now + lifetime,
    };
    // Providers that rotate send a new one; others keep the old one valid.
    let rotated = refresh_token
        .as_ref()
        .filter(|rt| rt.expose_secret() != account.tokens.refresh_token.expose_secret());
    let age = now - refresh_token_stored_at(&account);
    if !policy.must_store(rotated.is_some(), age) {
        tracing::info!(account_id = %id, rotated = rotated.is_some(), stored = false, "access token refreshed");
        return Ok(grant);
    }
    let new_refresh: SecretString = rotated
        .cloned()
        .unwrap_or_else(|| account.tokens.refresh_token.clone());
    // The lease holder's waiters read the access token from the store; elsewhere it lives in
    // memory only, and the stored one (from the connect flow) is dropped so that every later
    // write of the account item stays small (a Microsoft token is over 4 KB).
    let keep_access = policy.needs_lease();
    // A refresh token stored meanwhile by someone else (a re-connect: a new grant) is newer
    // than ours and stays.
    let presented = account.tokens.refresh_token.expose_secret().to_owned();
    let change = |a: &mut Account| {
        if keep_access {
            a.tokens.access_token = access_token.clone();
            a.tokens.access_expires_at = now + lifetime;
        } else {
            a.tokens.access_token = SecretString::from(String::new());
            a.tokens.access_expires_at = 0;
        }
        if a.tokens.refresh_token.expose_secret() == presented {
            a.tokens.refresh_token = new_refresh.clone();
            set_refresh_token_stored_at(a, now);
        }
        if let Some(s) = &scopes {
            a.granted_scopes = s.clone();
        }
        a.updated_at = now;
    };
    let written = match policy {
        RefreshPolicy::KeepsOldTokens { .. } => {
            // The stored refresh token still works: one conditional write, and a conflict means
            // another writer was first (maybe another refresh); the next refresh tries again.
            let mut account = account;
            change(&mut account);
            match repo.update_account(&mut account).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!(account_id = %id, conflict = e.is_conflict(), error = %e, "rotated refresh token not stored this time; the stored one stays valid");
                    false
                }
            }
        }
        RefreshPolicy::RarelyRotates | RefreshPolicy::Invalidating => {
            save(repo, account, change).await.map_err(|e| {
                tracing::error!(account_id = %id, error = %e, "refreshed tokens could not be stored");
                transient(&id, format!("the refreshed tokens could not be stored: {e}"))
            })?;
            true
        }
    };
    tracing::info!(account_id = %id, rotated = rotated.is_some(), stored = written, "access token refreshed");
    Ok(grant)
}

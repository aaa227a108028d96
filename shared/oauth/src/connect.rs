//! Turning a successful code exchange into an account: read the id_token, check the granted
//! scopes and the refresh token, then create the account or update the one already connected
//! with the same stable identity.

use mailroom_core::domain::{Account, AccountStatus, OAuthState, ProviderSettings, Tokens};
use mailroom_core::records::{Repository, set_refresh_token_stored_at};
use mailroom_core::time::now_unix;
use serde::Serialize;

use crate::defaults::mail_scopes;
use crate::endpoint::Granted;
use crate::errors::CallbackError;
use crate::id_token::Claims;

/// Lifetime assumed when the token endpoint does not say (`expires_in` is only recommended).
const DEFAULT_LIFETIME_SECONDS: i64 = 3600;

/// A connected mailbox, as the callback reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Connected {
    pub account_id: String,
    pub email: String,
    pub status: AccountStatus,
    /// Whether an existing account was connected again.
    pub reconnected: bool,
}

/// Whether `granted` covers `required`: exactly, or (Microsoft sometimes answers scopes without
/// the resource prefix) by the part after the resource URL.
fn covers(granted: &[String], required: &str) -> bool {
    let short = required
        .rsplit_once('/')
        .map(|(_, s)| s)
        .filter(|s| !s.is_empty());
    granted.iter().any(|g| {
        g.eq_ignore_ascii_case(required) || short.is_some_and(|s| g.eq_ignore_ascii_case(s))
    })
}

/// The mail scopes the grant lacks.
pub fn missing_scopes(requested: &[String], granted: &[String]) -> Vec<String> {
    mail_scopes(requested)
        .into_iter()
        .filter(|r| !covers(granted, r))
        .map(str::to_owned)
        .collect()
}

fn new_account_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("acc_{hex}")
}

/// Creates or updates the account for a completed sign-in.
pub async fn connect(
    repo: &Repository,
    provider: &ProviderSettings,
    state: &OAuthState,
    granted: Granted,
) -> Result<Connected, CallbackError> {
    let id_token = granted.id_token.as_deref().ok_or(CallbackError::IdToken(
        crate::id_token::IdTokenError::Malformed,
    ))?;
    let claims = Claims::read(id_token, &provider.client_id)?;
    let email = claims.address()?;
    let identity = claims.identity()?;
    let granted_scopes = granted
        .scopes
        .clone()
        .unwrap_or_else(|| provider.scopes.clone());
    let missing = missing_scopes(&provider.scopes, &granted_scopes);
    if !missing.is_empty() {
        return Err(CallbackError::InsufficientScope { missing });
    }
    let refresh_token = granted
        .refresh_token
        .clone()
        .ok_or(CallbackError::NoRefreshToken)?;
    let now = now_unix();
    let lifetime = granted.expires_in.map_or(DEFAULT_LIFETIME_SECONDS, |d| {
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
    });
    let tokens = Tokens {
        access_token: granted.access_token.clone(),
        refresh_token,
        access_expires_at: now + lifetime,
    };
    let store_err = |e: mailroom_core::records::RecordError| CallbackError::Store(e.to_string());
    // A concurrent writer (a sync updating its cursor, a second callback) may win a race; re-read
    // and apply again a few times rather than lose the fresh tokens.
    for _ in 0..5 {
        let existing = repo
            .find_account_by_identity(&provider.id, &identity)
            .await
            .map_err(store_err)?;
        let result = match existing {
            Some(mut account) => {
                if account.owner != state.owner {
                    return Err(CallbackError::OwnerConflict);
                }
                account.email = email.clone();
                account.tokens = tokens.clone();
                set_refresh_token_stored_at(&mut account, now);
                account.granted_scopes = granted_scopes.clone();
                account.status = AccountStatus::Active;
                account.status_reason = None;
                account.updated_at = now;
                account.next_sync_at = now;
                repo.update_account(&mut account).await.map(|()| Connected {
                    account_id: account.id.clone(),
                    email: email.clone(),
                    status: account.status,
                    reconnected: true,
                })
            }
            None => {
                let mut account = Account {
                    id: new_account_id(),
                    owner: state.owner.clone(),
                    provider_id: provider.id.clone(),
                    email: email.clone(),
                    identity: identity.clone(),
                    status: AccountStatus::Active,
                    status_reason: None,
                    tokens: tokens.clone(),
                    granted_scopes: granted_scopes.clone(),
                    created_at: now,
                    updated_at: now,
                    next_sync_at: now,
                    last_sync_at: None,
                    last_error: None,
                    failure_count: 0,
                    extra: Default::default(),
                    version: 1,
                };
                set_refresh_token_stored_at(&mut account, now);
                repo.create_account(&account).await.map(|()| Connected {
                    account_id: account.id.clone(),
                    email: email.clone(),
                    status: account.status,
                    reconnected: false,
                })
            }
        };
        match result {
            Ok(connected) => return Ok(connected),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(store_err(e)),
        }
    }
    Err(CallbackError::Store(
        "the account kept changing while it was being connected".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn scope_coverage_ignores_oidc_scopes_and_accepts_short_forms() {
        let requested = list(
            "openid profile email offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send",
        );
        assert!(missing_scopes(&requested, &list("https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send")).is_empty());
        assert!(
            missing_scopes(&requested, &list("IMAP.AccessAsUser.All SMTP.Send openid")).is_empty()
        );
        assert_eq!(
            missing_scopes(
                &requested,
                &list("openid https://outlook.office.com/IMAP.AccessAsUser.All")
            ),
            vec!["https://outlook.office.com/SMTP.Send".to_owned()]
        );
        let google = list("openid email https://mail.google.com/");
        assert_eq!(
            missing_scopes(&google, &list("openid email")),
            vec!["https://mail.google.com/".to_owned()]
        );
    }
}

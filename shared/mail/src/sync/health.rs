//! How a sync's outcome changes an account's health: success clears errors and sets the next
//! sync; throttling parks the account until the server's suggested time; a login refused after a
//! token refresh requires re-authorization; other failures count toward `degraded` and back off.

use mailroom_core::domain::{Account, AccountStatus};
use mailroom_core::ports::TokenError;
use mailroom_core::time::now_unix;
use serde_json::json;

use super::account::{FailureKind, SyncReport};
use super::{SyncError, SyncSettings};
use crate::imap::{ErrorKind, ImapError};

pub(crate) fn failure_kind(e: &SyncError) -> FailureKind {
    match e {
        SyncError::Imap(i) if i.kind() == ErrorKind::Throttled => FailureKind::Throttled,
        SyncError::Imap(i) if i.kind() == ErrorKind::Auth => FailureKind::ReauthRequired,
        SyncError::Token(TokenError::ReauthRequired { .. }) => FailureKind::ReauthRequired,
        SyncError::Token(TokenError::AdminActionRequired { .. }) => {
            FailureKind::AdminActionRequired
        }
        _ => FailureKind::Transient,
    }
}

pub(crate) fn apply(
    account: &mut Account,
    result: &Result<SyncReport, SyncError>,
    settings: &SyncSettings,
) {
    let now = now_unix();
    let interval = settings.interval.as_secs() as i64;
    account.updated_at = now;
    match result {
        Ok(report) => {
            account.last_sync_at = Some(now);
            // An unfinished run continues as soon as the scheduler looks again.
            account.next_sync_at = if report.complete { now + interval } else { now };
            account.failure_count = 0;
            account.last_error = None;
            if account.status == AccountStatus::Degraded {
                account.status = AccountStatus::Active;
                account.status_reason = None;
            }
            account.extra.remove("parked_until");
            let mut folders = account
                .extra
                .get("folders")
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            for f in &report.folders {
                folders.insert(
                    f.folder.clone(),
                    json!({ "messages": f.message_count, "synced_at": now }),
                );
            }
            account.extra.insert("folders".into(), json!(folders));
        }
        Err(e) => {
            account.last_error = Some(e.to_string());
            match failure_kind(e) {
                FailureKind::Throttled => {
                    let wait = match e {
                        SyncError::Imap(ImapError::Throttled { retry_after, .. }) => {
                            retry_after.as_secs_f64().ceil() as i64
                        }
                        _ => interval,
                    };
                    account.next_sync_at = now + wait.max(1);
                    account
                        .extra
                        .insert("parked_until".into(), json!(account.next_sync_at));
                }
                FailureKind::ReauthRequired => {
                    account.status = AccountStatus::ReauthRequired;
                    account.status_reason = Some(e.to_string());
                }
                FailureKind::AdminActionRequired => {
                    account.next_sync_at = now + interval;
                }
                FailureKind::Transient => {
                    account.failure_count = account.failure_count.saturating_add(1);
                    if account.failure_count >= settings.degraded_after {
                        account.status = AccountStatus::Degraded;
                        account.status_reason = Some(e.to_string());
                    }
                    // Back off with the failures, at most an hour.
                    let factor = i64::from(account.failure_count.min(12));
                    account.next_sync_at = now + (interval * factor).min(3600).max(interval);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mailroom_core::domain::Tokens;
    use secrecy::SecretString;

    use super::*;

    fn account() -> Account {
        Account {
            id: "a1".into(),
            owner: "o".into(),
            provider_id: "p".into(),
            email: "a@example.test".into(),
            identity: "i".into(),
            status: AccountStatus::Active,
            status_reason: None,
            tokens: Tokens {
                access_token: SecretString::from("x"),
                refresh_token: SecretString::from("y"),
                access_expires_at: 0,
            },
            granted_scopes: vec![],
            created_at: 0,
            updated_at: 0,
            next_sync_at: 0,
            last_sync_at: None,
            last_error: None,
            failure_count: 0,
            extra: Default::default(),
            version: 1,
        }
    }

    #[test]
    fn throttling_parks_the_account_until_the_suggested_time() {
        let mut a = account();
        let err = Err(SyncError::Imap(ImapError::Throttled {
            retry_after: Duration::from_millis(299_951),
            reason: "Request is throttled".into(),
        }));
        apply(&mut a, &err, &SyncSettings::default());
        let now = now_unix();
        assert!((now + 299..=now + 301).contains(&a.next_sync_at));
        assert_eq!(a.extra["parked_until"], json!(a.next_sync_at));
        assert_eq!((a.status, a.failure_count), (AccountStatus::Active, 0));
    }

    #[test]
    fn repeated_connection_failures_degrade_and_success_clears() {
        let mut a = account();
        let settings = SyncSettings::default();
        let err = Err(SyncError::Imap(ImapError::Connect {
            server: "imap.example.test:993".into(),
            reason: "connection refused".into(),
        }));
        for expected in 1..=3 {
            apply(&mut a, &err, &settings);
            assert_eq!(a.failure_count, expected);
        }
        assert_eq!(a.status, AccountStatus::Degraded);
        assert!(
            a.last_error
                .as_deref()
                .is_some_and(|e| e.contains("refused"))
        );
        apply(
            &mut a,
            &Ok(SyncReport {
                folders: vec![],
                complete: true,
            }),
            &settings,
        );
        assert_eq!(
            (a.status, a.failure_count, a.last_error.clone()),
            (AccountStatus::Active, 0, None)
        );
        assert!(a.last_sync_at.is_some());
    }

    #[test]
    fn a_login_refused_after_refresh_requires_reauth() {
        let mut a = account();
        let err = Err(SyncError::Imap(ImapError::Auth {
            reason: "AUTHENTICATIONFAILED".into(),
            challenge: None,
        }));
        apply(&mut a, &err, &SyncSettings::default());
        assert_eq!(a.status, AccountStatus::ReauthRequired);
        assert!(a.status_reason.is_some());
    }
}

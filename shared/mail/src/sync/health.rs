//! How a sync's outcome changes an account's health: success clears errors and leaves the
//! account due (healthy accounts keep `next_sync_at` in the past, so the scheduler finds them
//! without a write per poll); throttling parks the account until the server's suggested time; a
//! login refused after a token refresh requires re-authorization; other failures count toward
//! `degraded` and back off. [`needs_record`] tells a poll whose outcome changes nothing, which
//! is then not written at all.

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

/// Whether recording `result` would change the account: false only for a complete check that
/// found every folder unchanged on a healthy, due account whose folder counts are current and
/// whose `last_sync_at` is younger than `touch_after`.
pub(crate) fn needs_record(
    account: &Account,
    result: &Result<SyncReport, SyncError>,
    settings: &SyncSettings,
    now: i64,
) -> bool {
    let Ok(report) = result else {
        return true;
    };
    if !report.complete || report.folders.iter().any(|f| !f.unchanged) {
        return true;
    }
    let healthy = account.status == AccountStatus::Active
        && account.failure_count == 0
        && account.last_error.is_none()
        && !account.extra.contains_key("parked_until")
        && account.next_sync_at <= now;
    let touch_after = settings.touch_after.as_secs() as i64;
    let fresh = account
        .last_sync_at
        .is_some_and(|at| now.saturating_sub(at) < touch_after);
    let counts = account.extra.get("folders");
    let counts_current = report.folders.iter().all(|f| {
        counts
            .and_then(|c| c.get(&f.folder))
            .and_then(|c| c.get("messages"))
            .and_then(|m| m.as_u64())
            == Some(f.message_count)
    });
    !(healthy && fresh && counts_current)
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
            // Due again at once: the scheduler enqueues healthy accounts on every run, and an
            // unfinished run continues there. A time already past is kept, so the due-index key
            // (and its index copy) is rewritten only when a back-off ends.
            account.next_sync_at = account.next_sync_at.min(now);
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

    use super::super::folder::FolderReport;
    use super::*;

    fn account() -> Account {
        super::super::test_account()
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

    fn unchanged_inbox(messages: u64) -> Result<SyncReport, SyncError> {
        Ok(SyncReport {
            folders: vec![FolderReport {
                folder: "INBOX".into(),
                unchanged: true,
                message_count: messages,
                ..Default::default()
            }],
            complete: true,
        })
    }

    #[test]
    fn a_check_that_changes_nothing_is_not_recorded() {
        let settings = SyncSettings::default();
        let mut a = account();
        // The first success records counts and last_sync_at; afterwards nothing needs writing.
        assert!(needs_record(&a, &unchanged_inbox(3), &settings, now_unix()));
        apply(&mut a, &unchanged_inbox(3), &settings);
        let now = now_unix();
        assert!(a.next_sync_at <= now, "a healthy account stays due");
        assert!(!needs_record(&a, &unchanged_inbox(3), &settings, now));
        // Changed counts, a stale last_sync_at, new mail, a failure, an unfinished run: written.
        assert!(needs_record(&a, &unchanged_inbox(4), &settings, now));
        let later = now + settings.touch_after.as_secs() as i64;
        assert!(needs_record(&a, &unchanged_inbox(3), &settings, later));
        let mut fetched = unchanged_inbox(3);
        if let Ok(r) = &mut fetched {
            r.folders[0].unchanged = false;
        }
        assert!(needs_record(&a, &fetched, &settings, now));
        let mut unfinished = unchanged_inbox(3);
        if let Ok(r) = &mut unfinished {
            r.complete = false;
        }
        assert!(needs_record(&a, &unfinished, &settings, now));
        let failed = Err(SyncError::Internal("x".into()));
        assert!(needs_record(&a, &failed, &settings, now));
        // A degraded or backed-off account is written on its first good check.
        let mut degraded = a.clone();
        degraded.failure_count = 1;
        assert!(needs_record(&degraded, &unchanged_inbox(3), &settings, now));
        let mut later_due = a.clone();
        later_due.next_sync_at = now + 60;
        assert!(needs_record(
            &later_due,
            &unchanged_inbox(3),
            &settings,
            now
        ));
    }

    #[test]
    fn success_keeps_a_past_next_sync_and_ends_a_back_off() {
        let settings = SyncSettings::default();
        let mut a = account();
        a.next_sync_at = 1_000;
        apply(&mut a, &unchanged_inbox(0), &settings);
        assert_eq!(a.next_sync_at, 1_000, "the due-index key is not rewritten");
        a.next_sync_at = now_unix() + 3_600;
        apply(&mut a, &unchanged_inbox(0), &settings);
        assert!(a.next_sync_at <= now_unix());
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

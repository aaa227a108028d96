//! The process-wide memory of access tokens, per account, and the per-account gates that make
//! concurrent callers in one process share one refresh (single-flight).
//!
//! A warm function keeps handing out the token it got until shortly before it expires, without
//! reading or writing the store; only a cold process (or an expiring token) costs a refresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mailroom_core::ports::{AccessGrant, TokenError};
use secrecy::ExposeSecret;
use tokio::time::Instant;

/// One account's refresh gate: held while refreshing; keeps the last failure and when it
/// happened, so that callers who queued behind a failed refresh share its error instead of
/// repeating it one after another.
pub(crate) type Gate = Arc<tokio::sync::Mutex<Option<(Instant, TokenError)>>>;

/// Above this many entries, inserting also drops the expired ones (the map never holds more
/// than the accounts this process served within a token lifetime).
const SWEEP_ABOVE: usize = 256;

pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold plain data: a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Access tokens by account id, and the refresh gates.
#[derive(Default)]
pub(crate) struct GrantCache {
    grants: Mutex<HashMap<String, AccessGrant>>,
    gates: Mutex<HashMap<String, Gate>>,
}

impl GrantCache {
    /// The cached grant for `account_id` if it has more than `margin` seconds left at `now` and
    /// is not the token `rejected`.
    pub(crate) fn fresh(
        &self,
        account_id: &str,
        now: i64,
        margin: i64,
        rejected: Option<&str>,
    ) -> Option<AccessGrant> {
        let grants = locked(&self.grants);
        let g = grants.get(account_id)?;
        let usable = g.expires_at - now > margin
            && rejected.is_none_or(|r| r != g.access_token.expose_secret());
        usable.then(|| g.clone())
    }

    /// The cached token of `account_id`, whatever its age (what a caller was handed out).
    pub(crate) fn token(&self, account_id: &str) -> Option<String> {
        locked(&self.grants)
            .get(account_id)
            .map(|g| g.access_token.expose_secret().to_owned())
    }

    /// When the token this process holds for `account_id` expires (a stored token that does
    /// not expire later is older than it, and is not handed out instead).
    pub(crate) fn expires_at(&self, account_id: &str) -> Option<i64> {
        locked(&self.grants).get(account_id).map(|g| g.expires_at)
    }

    pub(crate) fn put(&self, grant: AccessGrant, now: i64) {
        let mut grants = locked(&self.grants);
        if grants.len() > SWEEP_ABOVE {
            grants.retain(|_, g| g.expires_at > now);
        }
        grants.insert(grant.account_id.clone(), grant);
    }

    pub(crate) fn forget(&self, account_id: &str) {
        locked(&self.grants).remove(account_id);
    }

    /// The gate of `account_id`: hold its lock while refreshing.
    pub(crate) fn gate(&self, account_id: &str) -> Gate {
        locked(&self.gates)
            .entry(account_id.to_owned())
            .or_default()
            .clone()
    }

    /// Drops the gate of `account_id` when nobody but the caller (holding `gate`) uses it.
    pub(crate) fn release_gate(&self, account_id: &str, gate: &Gate) {
        let mut gates = locked(&self.gates);
        // The map's reference and the caller's: nobody else is waiting.
        if gates.get(account_id).is_some_and(|g| Arc::ptr_eq(g, gate))
            && Arc::strong_count(gate) <= 2
        {
            gates.remove(account_id);
        }
    }
}

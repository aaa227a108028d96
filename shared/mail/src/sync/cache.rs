//! A worker process's copy of the accounts it checked lately, with their folder cursors, so a
//! warm poll of an unchanged account reads nothing from the store.
//!
//! An entry is used only for a job that carries the very version it holds: the scheduler reads
//! each account's version from the due index, and every account write (a delete, a
//! re-authorization, a re-connection, changed settings, a recorded outcome, a rotated refresh
//! token) changes or removes it, so a changed account misses and is read again. The cursors may
//! be older than the stored ones (another process synced new mail): a stale cursor can only make
//! the check see a change, and the lease path then re-reads the cursors and the account
//! consistently. Entries are dropped after any run that took the lease, wrote, or failed; they
//! hold no tokens, expire after [`CACHE_TTL`] and are capped at [`CACHE_CAPACITY`] (the oldest
//! go first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mailroom_core::domain::{Account, FolderCursor, Tokens};
use secrecy::SecretString;
use tokio::time::Instant;

/// The most accounts one process keeps: an entry is about 1.5 KB (the account without tokens and
/// two cursors), so at most about 15 MB of a 256 MB worker.
pub(crate) const CACHE_CAPACITY: usize = 10_000;

/// How long an entry is trusted at most. Versions already catch every change; this only bounds
/// how long an account that stopped being polled (or a job without a version) keeps memory.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(6 * 3600);

/// An account as a check last found it, and the folder cursors that check compared against.
#[derive(Clone)]
pub(crate) struct Cached {
    pub(crate) account: Account,
    pub(crate) cursors: Vec<FolderCursor>,
}

/// The cache shared by the clones of one engine.
#[derive(Clone)]
pub(crate) struct AccountCache {
    entries: Arc<Mutex<HashMap<String, (Instant, Cached)>>>,
    capacity: usize,
}

impl Default for AccountCache {
    fn default() -> Self {
        Self::with_capacity(CACHE_CAPACITY)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic elsewhere cannot leave the map half-updated.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AccountCache {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// The cached account and cursors if the entry holds exactly `version` and is younger than
    /// [`CACHE_TTL`]; any other entry of the account is dropped (it can never match again).
    pub(crate) fn get(&self, account_id: &str, version: u64) -> Option<Cached> {
        let mut entries = lock(&self.entries);
        let (at, cached) = entries.get(account_id)?;
        if cached.account.version == version && at.elapsed() < CACHE_TTL {
            return Some(cached.clone());
        }
        entries.remove(account_id);
        None
    }

    /// Keeps an account (without its tokens: the token source has its own) and the cursors a
    /// check just proved current.
    pub(crate) fn put(&self, account: &Account, cursors: Vec<FolderCursor>) {
        self.insert(Instant::now(), account, cursors);
    }

    fn insert(&self, checked_at: Instant, account: &Account, cursors: Vec<FolderCursor>) {
        let mut account = account.clone();
        account.tokens = Tokens {
            access_token: SecretString::from(String::new()),
            refresh_token: SecretString::from(String::new()),
            access_expires_at: 0,
        };
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity && !entries.contains_key(&account.id) {
            entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            // Still full: the entry checked longest ago goes (a linear scan, only on a miss of a
            // full cache).
            if entries.len() >= self.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(id, _)| id.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            account.id.clone(),
            (checked_at, Cached { account, cursors }),
        );
    }

    pub(crate) fn forget(&self, account_id: &str) {
        lock(&self.entries).remove(account_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn account(id: &str, version: u64) -> Account {
        Account {
            id: id.into(),
            version,
            tokens: Tokens {
                access_token: SecretString::from("access"),
                refresh_token: SecretString::from("refresh"),
                access_expires_at: 1,
            },
            ..crate::sync::test_account()
        }
    }

    #[test]
    fn only_the_same_version_is_served_and_a_mismatch_drops_the_entry() {
        let cache = AccountCache::default();
        cache.put(&account("a1", 3), vec![]);
        assert!(cache.get("a1", 4).is_none(), "a newer version misses");
        assert!(cache.get("a1", 3).is_none(), "the stale entry is gone");
        cache.put(&account("a1", 4), vec![]);
        let hit = cache.get("a1", 4).map(|c| c.account);
        assert_eq!(hit.as_ref().map(|a| a.version), Some(4));
        assert_eq!(
            hit.map(|a| a.tokens.access_token.expose_secret().to_owned()),
            Some(String::new()),
            "no tokens are kept"
        );
        cache.forget("a1");
        assert!(cache.get("a1", 4).is_none());
    }

    #[test]
    fn the_oldest_entry_goes_when_full() {
        let cache = AccountCache::with_capacity(2);
        let now = Instant::now();
        cache.insert(now, &account("a2", 1), vec![]);
        cache.insert(now + Duration::from_secs(1), &account("a1", 1), vec![]);
        cache.insert(now + Duration::from_secs(2), &account("a3", 1), vec![]);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a2", 1).is_none(), "the oldest was evicted");
        assert!(cache.get("a1", 1).is_some() && cache.get("a3", 1).is_some());
        // Updating a cached account in a full cache evicts nothing.
        cache.insert(now + Duration::from_secs(3), &account("a1", 1), vec![]);
        assert!(cache.get("a3", 1).is_some());
    }
}

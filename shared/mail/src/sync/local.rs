//! What a worker process keeps between jobs: the accounts it is syncing right now (so two jobs
//! for one account never run at once in one process), the providers' IMAP settings for a
//! short while (read once per process and minute instead of once per poll; forgotten after a
//! failed session, so a fixed setting applies on the next try) and the accounts it checked
//! lately (`cache.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mailroom_core::domain::MailEndpoint;
use tokio::time::Instant;

/// How long a provider's IMAP settings are reused before they are read again: an admin's change
/// reaches running workers within this time.
pub(crate) const PROVIDER_TTL: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The sets hold plain data: a panic elsewhere cannot leave them half-updated.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Per-process state shared by the clones of one engine.
#[derive(Clone, Default)]
pub(crate) struct LocalState {
    running: Arc<Mutex<HashSet<String>>>,
    endpoints: Arc<Mutex<HashMap<String, (Instant, MailEndpoint)>>>,
    pub(crate) accounts: super::cache::AccountCache,
}

/// Marks an account as being synced by this process until dropped.
pub(crate) struct Running {
    running: Arc<Mutex<HashSet<String>>>,
    account_id: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        lock(&self.running).remove(&self.account_id);
    }
}

impl LocalState {
    /// Claims the account for this process; `None` while another job of this process runs it.
    pub(crate) fn enter(&self, account_id: &str) -> Option<Running> {
        lock(&self.running)
            .insert(account_id.to_owned())
            .then(|| Running {
                running: self.running.clone(),
                account_id: account_id.to_owned(),
            })
    }

    /// The provider's IMAP settings if read less than [`PROVIDER_TTL`] ago.
    pub(crate) fn endpoint(&self, provider_id: &str) -> Option<MailEndpoint> {
        let cache = lock(&self.endpoints);
        cache
            .get(provider_id)
            .filter(|(at, _)| at.elapsed() < PROVIDER_TTL)
            .map(|(_, endpoint)| endpoint.clone())
    }

    /// Drops a provider's cached settings (after a failed session: an admin may just have
    /// fixed them).
    pub(crate) fn forget_endpoint(&self, provider_id: &str) {
        lock(&self.endpoints).remove(provider_id);
    }

    pub(crate) fn remember_endpoint(&self, provider_id: &str, endpoint: &MailEndpoint) {
        lock(&self.endpoints).insert(provider_id.to_owned(), (Instant::now(), endpoint.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_per_account_at_a_time() {
        let state = LocalState::default();
        let first = state.enter("a1");
        assert!(first.is_some());
        assert!(state.enter("a1").is_none());
        assert!(state.enter("a2").is_some());
        drop(first);
        assert!(state.enter("a1").is_some());
    }
}

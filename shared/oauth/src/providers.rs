//! The provider settings a process last read for refreshes, kept a few minutes: a warm worker
//! refreshing many accounts' tokens reads its provider once instead of once a refresh (a
//! consistent read each, most of what refreshes cost the store: COST.md). A settings change
//! reaches a working process within [`PROVIDER_TTL`], and at once where it matters: a failed
//! refresh drops the copy (the next one reads the settings again), and one the provider refuses
//! as coming from a bad client is retried at once with settings read again (`tokens.rs`), so a
//! rotated client secret never flags the provider.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use mailroom_core::domain::ProviderSettings;
use tokio::time::Instant;

use crate::cache::locked;

/// How long settings are reused without reading them again.
pub(crate) const PROVIDER_TTL: Duration = Duration::from_secs(300);

/// Provider settings by provider id, with when they were read.
#[derive(Default)]
pub(crate) struct ProviderCache {
    entries: Mutex<HashMap<String, (Instant, ProviderSettings)>>,
}

impl ProviderCache {
    /// The settings read less than [`PROVIDER_TTL`] ago, if any.
    pub(crate) fn get(&self, provider_id: &str) -> Option<ProviderSettings> {
        let entries = locked(&self.entries);
        let (at, settings) = entries.get(provider_id)?;
        (at.elapsed() < PROVIDER_TTL).then(|| settings.clone())
    }

    /// Keeps settings just read (the caller keeps only usable ones: flagged settings fail the
    /// refresh before it, so an admin's fix shows at once).
    pub(crate) fn put(&self, settings: &ProviderSettings) {
        locked(&self.entries).insert(settings.id.clone(), (Instant::now(), settings.clone()));
    }

    pub(crate) fn forget(&self, provider_id: &str) {
        locked(&self.entries).remove(provider_id);
    }
}

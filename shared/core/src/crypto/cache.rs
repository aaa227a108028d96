//! The in-memory cache of unwrapped data keys, kept across invocations of a warm function.
//!
//! Entries are keyed by a digest of the key-service context and the wrapped key, so a format-1
//! key is only ever reused for the record it was unwrapped for, and the shared keys of format 2
//! are reused for every record. An entry is a once-cell: concurrent opens of values under the same
//! wrapped key make one key-service call between them, not one each. Entries live at most the
//! sealer's maximum key age and the least recently used one makes room when the cache is full.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, RandomizedNonceKey};
use aws_lc_rs::digest::{Context, SHA256};
use tokio::sync::OnceCell;

use crate::ports::KeyContext;

/// A usable data key and its wrapped form (which goes into every ciphertext made with it).
pub(crate) struct CachedKey {
    pub(crate) key: RandomizedNonceKey,
    pub(crate) wrapped: Vec<u8>,
    pub(crate) created: Instant,
}

impl CachedKey {
    /// `None` when `plaintext` is not an AES-256 key.
    pub(crate) fn new(plaintext: &[u8], wrapped: Vec<u8>) -> Option<Self> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, plaintext).ok()?;
        Some(Self {
            key,
            wrapped,
            created: Instant::now(),
        })
    }
}

pub(crate) type Slot = Arc<OnceCell<Arc<CachedKey>>>;

/// Identifies a wrapped key under its context.
pub(crate) type KeyId = [u8; 32];

pub(crate) fn key_id(context: &KeyContext, wrapped: &[u8]) -> KeyId {
    let mut hasher = Context::new(&SHA256);
    for (name, value) in context.pairs() {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(&(value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.update(wrapped);
    let mut out = [0u8; 32];
    out.copy_from_slice(hasher.finish().as_ref());
    out
}

struct Entry {
    slot: Slot,
    last_used: u64,
}

/// Unwrapped keys by [`KeyId`], bounded in count and age.
pub(crate) struct KeyCache {
    entries: HashMap<KeyId, Entry>,
    capacity: usize,
    max_age: Duration,
    tick: u64,
}

impl KeyCache {
    pub(crate) fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            max_age,
            tick: 0,
        }
    }

    /// The slot for `id`: filled when the key is cached and young enough, empty (to be filled by
    /// the caller, once) otherwise.
    pub(crate) fn slot(&mut self, id: KeyId) -> Slot {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.entries.get_mut(&id) {
            let expired = entry
                .slot
                .get()
                .is_some_and(|key| key.created.elapsed() >= self.max_age);
            if !expired {
                entry.last_used = tick;
                return entry.slot.clone();
            }
        }
        self.insert(id, Slot::default())
    }

    /// Caches a key the caller already holds (a freshly generated sealing key).
    pub(crate) fn remember(&mut self, id: KeyId, key: Arc<CachedKey>) {
        self.tick += 1;
        self.insert(id, Arc::new(OnceCell::new_with(Some(key))));
    }

    fn insert(&mut self, id: KeyId, slot: Slot) -> Slot {
        if !self.entries.contains_key(&id) && self.entries.len() >= self.capacity {
            // A linear scan is fine: it only runs when the cache is full, and holds few entries.
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        let entry = Entry {
            slot: slot.clone(),
            last_used: self.tick,
        };
        self.entries.insert(id, entry);
        slot
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(wrapped: u8) -> Arc<CachedKey> {
        Arc::new(CachedKey::new(&[wrapped; 32], vec![wrapped]).unwrap())
    }

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let mut cache = KeyCache::new(2, Duration::from_secs(60));
        let ids: Vec<KeyId> = (1..=3)
            .map(|i| key_id(&KeyContext::shared(), &[i]))
            .collect();
        cache.remember(ids[0], key(1));
        cache.remember(ids[1], key(2));
        assert!(cache.slot(ids[0]).initialized(), "touches the first");
        cache.remember(ids[2], key(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.slot(ids[0]).initialized(), "recently used: kept");
        assert!(
            !cache.slot(ids[1]).initialized(),
            "least recently used: gone"
        );
    }

    #[test]
    fn expired_keys_are_not_served() {
        let mut cache = KeyCache::new(4, Duration::ZERO);
        let id = key_id(&KeyContext::shared(), &[1]);
        cache.remember(id, key(1));
        assert!(!cache.slot(id).initialized());
    }

    #[test]
    fn the_context_is_part_of_the_id() {
        let wrapped = [9u8; 40];
        let a = key_id(&KeyContext::new("account", "a"), &wrapped);
        let b = key_id(&KeyContext::new("account", "b"), &wrapped);
        let shared = key_id(&KeyContext::shared(), &wrapped);
        assert_ne!(a, b);
        assert_ne!(a, shared);
        assert_eq!(shared, key_id(&KeyContext::shared(), &wrapped));
    }
}

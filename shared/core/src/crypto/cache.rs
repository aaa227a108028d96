//! A small in-memory cache of unwrapped data keys, so one invocation (and a warm function's next
//! ones) does not call the key service per field.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::RandomizedNonceKey;
use sha2::{Digest, Sha256};

use crate::ports::KeyContext;

/// A usable data key and its wrapped form (which goes into every ciphertext made with it).
pub(crate) struct CachedKey {
    pub(crate) key: RandomizedNonceKey,
    pub(crate) wrapped: Vec<u8>,
}

const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub(crate) struct KeyCache {
    for_sealing: HashMap<KeyContext, (Arc<CachedKey>, Instant)>,
    for_opening: HashMap<[u8; 32], (Arc<CachedKey>, Instant)>,
}

fn fingerprint(wrapped: &[u8], context: &KeyContext) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (name, value) in context.pairs() {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.update(wrapped);
    hasher.finalize().into()
}

impl KeyCache {
    pub(crate) fn sealing_key(
        &self,
        context: &KeyContext,
        ttl: Duration,
    ) -> Option<Arc<CachedKey>> {
        self.for_sealing
            .get(context)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(key, _)| key.clone())
    }

    pub(crate) fn opening_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
        ttl: Duration,
    ) -> Option<Arc<CachedKey>> {
        self.for_opening
            .get(&fingerprint(wrapped, context))
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(key, _)| key.clone())
    }

    pub(crate) fn remember(
        &mut self,
        context: &KeyContext,
        key: Arc<CachedKey>,
        for_sealing: bool,
        ttl: Duration,
    ) {
        if self.for_sealing.len() + self.for_opening.len() >= MAX_ENTRIES {
            self.for_sealing.retain(|_, (_, at)| at.elapsed() < ttl);
            self.for_opening.retain(|_, (_, at)| at.elapsed() < ttl);
            if self.for_sealing.len() + self.for_opening.len() >= MAX_ENTRIES {
                self.for_sealing.clear();
                self.for_opening.clear();
            }
        }
        let now = Instant::now();
        self.for_opening
            .insert(fingerprint(&key.wrapped, context), (key.clone(), now));
        if for_sealing {
            self.for_sealing.insert(context.clone(), (key, now));
        }
    }
}

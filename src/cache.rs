//! The verified-token cache: exact token bytes → the signer's kid and decoded claims, for
//! tokens whose signature already verified. Bounded in entries (and so in memory, as
//! tokens are capped in size); positive results only. A hit skips the signature check and
//! nothing else: time, revocation and key status are checked on every use.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::token::Claims;

const SHARDS: usize = 16;

type Shard = Mutex<HashMap<Box<[u8]>, Entry>>;

/// A bounded, sharded map from token bytes to verified contents.
#[derive(Debug)]
pub struct TokenCache {
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a hit returns.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key whose signature verified.
    pub kid: String,
    /// The decoded claims.
    pub claims: Claims,
}

impl TokenCache {
    /// A cache of at most `capacity` entries (rounded up to a multiple of 16).
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
            hasher: RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, token: &[u8]) -> &Shard {
        // A keyed hash: an attacker cannot aim tokens at one shard.
        let h = self.hasher.hash_one(token);
        &self.shards[(h as usize) % SHARDS]
    }

    /// The entry for exactly these bytes.
    pub fn get(&self, token: &[u8]) -> Option<Entry> {
        let hit = self
            .shard(token)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned();
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Records a token whose signature verified.
    pub fn insert(&self, token: &[u8], entry: Entry) {
        let mut shard = self.shard(token).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(token) {
            // Evict an arbitrary entry; the map's keyed hashing makes the choice
            // unpredictable to a client.
            if let Some(victim) = shard.keys().next().cloned() {
                shard.remove(&victim);
            }
        }
        shard.insert(token.into(), entry);
    }

    /// Keeps only entries whose kid satisfies `keep` (used when the ring changes).
    pub fn retain_kids(&self, keep: impl Fn(&str) -> bool) {
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, e| keep(&e.kid));
        }
    }

    /// Moves every entry that `keep` accepts into `other`.
    pub fn transfer_to(&self, other: &TokenCache, keep: impl Fn(&str) -> bool) {
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for (token, entry) in shard.iter().filter(|(_, e)| keep(&e.kid)) {
                other.insert(token, entry.clone());
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries held.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kid: &str) -> Entry {
        Entry {
            kid: kid.into(),
            claims: Claims {
                iss: "i".into(),
                aud: "a".into(),
                iat: 0,
                nbf: 0,
                exp: None,
                jti: "j".into(),
                name: None,
            },
        }
    }

    #[test]
    fn bounded_and_filterable() {
        let c = TokenCache::new(32);
        for i in 0..1000u32 {
            c.insert(&i.to_be_bytes(), entry(if i % 2 == 0 { "a" } else { "b" }));
        }
        assert!(c.len() <= c.capacity() && c.capacity() == 32);
        c.retain_kids(|k| k == "a");
        assert!(!c.is_empty());
        let other = TokenCache::new(1000);
        c.transfer_to(&other, |_| true);
        assert_eq!(other.len(), c.len());
        assert!(c.get(&998u32.to_be_bytes()).is_none_or(|e| e.kid == "a"));
        assert!(c.get(&999u32.to_be_bytes()).is_none());
    }
}

//! The verified-token cache: exact token bytes → the verified result, for tokens whose
//! signature already verified. Positive results only, bounded both in entries and in
//! (estimated) bytes. A hit skips the signature check and nothing else: time, revocation
//! and key status are checked on every use.
//!
//! Each of the 16 shards is a hash table keyed by one hash of the token bytes (computed
//! once per call, with a per-process random seed), compared byte for byte on a match, and
//! evicted in insertion order. Only tokens that verified are ever inserted, so a client
//! cannot choose what the tables hold; a lookup costs one hash, one lock and one compare.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashTable;

use crate::verify::Verified;

const SHARDS: usize = 16;
/// Bytes of a token that its hash covers, from its end.
const HASHED_TAIL: usize = 64;

/// A bounded, sharded map from token bytes to verified contents.
#[derive(Debug)]
pub struct TokenCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    entries_per_shard: usize,
    bytes_per_shard: usize,
}

#[derive(Debug, Default)]
struct Shard {
    table: HashTable<Slot>,
    /// (sequence number, hash) of every entry, oldest first.
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
    bytes: usize,
    /// Lookups answered and not, counted under the shard's lock.
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Slot {
    hash: u64,
    seq: u64,
    cost: usize,
    token: Box<[u8]>,
    verified: Arc<Verified>,
}

impl TokenCache {
    /// A cache of at most `entries` entries (rounded up to a multiple of 16) and about
    /// `bytes` bytes of memory, whichever bound is reached first.
    pub fn new(entries: usize, bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            entries_per_shard: entries.div_ceil(SHARDS).max(1),
            bytes_per_shard: (bytes / SHARDS).max(1),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The hash of an entry: of the token's last 64 bytes (its signature, for a token
    /// that verified), which tell one verified token from another as well as the whole
    /// token would: only tokens that verified are inserted, and no one but the key's
    /// holder can make two of them share a signature. Lookups compare every byte.
    fn hash(&self, token: &[u8]) -> u64 {
        self.hasher
            .hash_one(&token[token.len().saturating_sub(HASHED_TAIL)..])
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // Bits the tables do not use for buckets or tags pick the shard.
        let i = (hash >> 32) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The verified result for exactly these bytes.
    pub fn get(&self, token: &[u8]) -> Option<Arc<Verified>> {
        let hash = self.hash(token);
        let mut shard = self.shard(hash);
        let hit = shard
            .table
            .find(hash, |s| s.hash == hash && *s.token == *token)
            .map(|s| Arc::clone(&s.verified));
        if hit.is_some() {
            shard.hits += 1;
        } else {
            shard.misses += 1;
        }
        hit
    }

    /// Records a token whose signature verified, evicting the oldest entries of its shard
    /// as needed to stay within both bounds.
    pub fn insert(&self, token: &[u8], verified: Arc<Verified>) {
        let cost = cost(token, &verified);
        if cost > self.bytes_per_shard {
            return;
        }
        let hash = self.hash(token);
        let mut shard = self.shard(hash);
        if shard
            .table
            .find(hash, |s| s.hash == hash && *s.token == *token)
            .is_some()
        {
            return;
        }
        while shard.table.len() >= self.entries_per_shard
            || shard.bytes + cost > self.bytes_per_shard
        {
            if !shard.evict_oldest() {
                break;
            }
        }
        let seq = shard.next_seq;
        shard.next_seq += 1;
        shard.bytes += cost;
        shard.order.push_back((seq, hash));
        shard.table.insert_unique(
            hash,
            Slot {
                hash,
                seq,
                cost,
                token: token.into(),
                verified,
            },
            |s| s.hash,
        );
    }

    /// Keeps only entries whose kid satisfies `keep` (used when the ring changes).
    pub fn retain_kids(&self, keep: impl Fn(&str) -> bool) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|s| keep(&s.verified.kid));
        }
    }

    /// Copies every entry that `keep` accepts into `other`, oldest first.
    pub fn transfer_to(&self, other: &TokenCache, keep: impl Fn(&str) -> bool) {
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for &(seq, hash) in &shard.order {
                if let Some(s) = shard.table.find(hash, |s| s.seq == seq)
                    && keep(&s.verified.kid)
                {
                    other.insert(&s.token, Arc::clone(&s.verified));
                }
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).table.len())
            .sum()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries held.
    pub fn capacity(&self) -> usize {
        self.entries_per_shard * SHARDS
    }

    /// The estimated bytes held by entries now.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).bytes)
            .sum()
    }

    /// The most bytes held (estimated).
    pub fn byte_capacity(&self) -> usize {
        self.bytes_per_shard * SHARDS
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        self.shards.iter().fold((0, 0), |(h, m), s| {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            (h + s.hits, m + s.misses)
        })
    }
}

impl Shard {
    /// Removes the oldest entry; false if there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some((seq, hash)) = self.order.pop_front() else {
            return false;
        };
        if let Ok(entry) = self.table.find_entry(hash, |s| s.seq == seq) {
            let (slot, _) = entry.remove();
            self.bytes -= slot.cost;
        }
        true
    }

    fn retain(&mut self, mut keep: impl FnMut(&Slot) -> bool) {
        let mut freed = 0;
        self.table.retain(|s| {
            let k = keep(s);
            if !k {
                freed += s.cost;
            }
            k
        });
        self.bytes -= freed;
        let table = &self.table;
        self.order
            .retain(|&(seq, hash)| table.find(hash, |s| s.seq == seq).is_some());
    }
}

/// What an entry costs in memory, estimated: its table slot (twice over, for the load
/// factor and growth), its place in the eviction queue, and every heap block it owns
/// with a block header each.
fn cost(token: &[u8], v: &Verified) -> usize {
    const BLOCK: usize = 16;
    let c = &v.claims;
    let strings = [
        v.kid.len(),
        c.iss.len(),
        c.aud.len(),
        c.jti.len(),
        c.name.as_ref().map_or(0, String::len),
    ];
    2 * (size_of::<Slot>() + 1)
        + size_of::<(u64, u64)>()
        + token.len()
        + BLOCK
        + size_of::<Verified>()
        + 2 * size_of::<usize>()
        + BLOCK
        + strings
            .iter()
            .map(|n| n.next_multiple_of(8) + BLOCK)
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Claims;

    fn verified(kid: &str) -> Arc<Verified> {
        Arc::new(Verified {
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
        })
    }

    #[test]
    fn bounded_in_entries_and_filterable() {
        let c = TokenCache::new(32, usize::MAX / 2);
        for i in 0..1000u32 {
            c.insert(
                &i.to_be_bytes(),
                verified(if i % 2 == 0 { "a" } else { "b" }),
            );
        }
        assert!(c.len() <= c.capacity() && c.capacity() == 32);
        c.retain_kids(|k| k == "a");
        assert!(!c.is_empty());
        let other = TokenCache::new(1000, usize::MAX / 2);
        c.transfer_to(&other, |_| true);
        assert_eq!(other.len(), c.len());
        assert_eq!(other.bytes(), c.bytes());
        assert!(c.get(&998u32.to_be_bytes()).is_none_or(|e| e.kid == "a"));
        assert!(c.get(&999u32.to_be_bytes()).is_none());
    }

    #[test]
    fn bounded_in_bytes() {
        let one = cost(&[0; 300], &verified("k"));
        let c = TokenCache::new(1_000_000, 100 * one * SHARDS);
        for i in 0..100_000u32 {
            // Tokens differ in their last bytes, as signatures do.
            let mut token = [0u8; 300];
            token[296..].copy_from_slice(&i.to_be_bytes());
            c.insert(&token, verified("k"));
            assert!(c.bytes() <= c.byte_capacity());
        }
        assert!(
            c.len() <= 100 * SHARDS && c.len() >= 50 * SHARDS,
            "{}",
            c.len()
        );
        // An entry larger than a shard's budget is simply not kept.
        let tiny = TokenCache::new(10, 8);
        tiny.insert(b"token", verified("k"));
        assert!(tiny.is_empty());
    }

    #[test]
    fn tokens_alike_in_their_hashed_tail_are_still_told_apart() {
        let c = TokenCache::new(1000, usize::MAX / 2);
        let mut a = [7u8; 300];
        let mut b = a;
        a[0] = 1;
        b[0] = 2;
        c.insert(&a, verified("a"));
        assert!(c.get(&b).is_none(), "same tail, different bytes: a miss");
        c.insert(&b, verified("b"));
        assert_eq!(c.get(&a).unwrap().kid, "a");
        assert_eq!(c.get(&b).unwrap().kid, "b");
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn oldest_entries_go_first_and_bytes_are_accounted() {
        let c = TokenCache::new(SHARDS, usize::MAX / 2);
        // One entry per shard at most: the newest insert of a shard always survives.
        for i in 0..10_000u32 {
            let token = i.to_be_bytes();
            c.insert(&token, verified("k"));
            assert!(c.get(&token).is_some(), "just inserted");
        }
        assert!(c.len() <= SHARDS);
        let expected: usize = c.len() * cost(&[0; 4], &verified("k"));
        assert_eq!(c.bytes(), expected);
        c.retain_kids(|_| false);
        assert_eq!((c.len(), c.bytes()), (0, 0));
        // Inserting the same bytes twice keeps one entry.
        c.insert(b"same", verified("k"));
        c.insert(b"same", verified("k"));
        assert_eq!(c.len(), 1);
        let (hits, misses) = c.stats();
        assert_eq!((hits, misses), (10_000, 0));
    }
}

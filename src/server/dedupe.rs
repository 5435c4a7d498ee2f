//! A bounded set of recently seen keys (webhook event ids, signatures) with a
//! time to live: Telnyx retries a webhook with the same `data.id`, and a
//! signature must not be reused for another body. A key can be remembered
//! with a digest of what came with it, to tell a repeat from a reuse.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A key as kept: 128 bits of a keyed hash of the string (random keys per
/// set), so an entry costs the same whatever the key's length, and the
/// table never reallocates or copies strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key(u64, u64);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// Most entries allocated up front; beyond this the table grows on demand.
const PREALLOCATE: usize = 1 << 20;

/// Remembers keys for `ttl`, at most `capacity` of them (oldest forgotten first).
///
/// The table is sized for `capacity` (up to a million) when created, so it
/// never rehashes while webhooks wait on its lock; untouched buckets cost
/// address space, not memory.
#[derive(Debug)]
pub struct RecentSet {
    inner: Mutex<Inner>,
    ttl: Duration,
    capacity: usize,
    keys: [RandomState; 2],
}

#[derive(Debug, Default)]
struct Inner {
    /// When each key was remembered, and the digest of what came with it.
    seen: HashMap<Key, (Instant, u64), BuildHasherDefault<FirstWord>>,
    order: VecDeque<(Instant, Key)>,
}

/// How a key remembered with a digest had been seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not within the time to live.
    New,
    /// With the same bytes.
    Same,
    /// With other bytes.
    Other,
}

/// Keys are already keyed hashes: the table uses their first word as is.
#[derive(Debug, Default)]
struct FirstWord(u64);

impl Hasher for FirstWord {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `Key` is hashed here, through `write_u64`; anything else still works.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl RecentSet {
    /// A set that remembers keys for `ttl`, at most `capacity` keys.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let room = capacity.min(PREALLOCATE);
        let inner = Inner {
            seen: HashMap::with_capacity_and_hasher(room, BuildHasherDefault::default()),
            order: VecDeque::with_capacity(room),
        };
        Self { inner: Mutex::new(inner), ttl, capacity, keys: [RandomState::new(), RandomState::new()] }
    }

    fn key(&self, s: &str) -> Key {
        Key(self.keys[0].hash_one(s), self.keys[1].hash_one(s))
    }

    /// Inserts `key`; returns false when it was already there (a repeat).
    pub fn insert(&self, key: &str, now: Instant) -> bool {
        self.remember(key, &[], now) == Seen::New
    }

    /// How `key` was seen before (compared by the bytes that came with it),
    /// without remembering it.
    pub fn check(&self, key: &str, with: &[u8], now: Instant) -> Seen {
        let (key, digest) = (self.key(key), self.keys[1].hash_one(with));
        let Ok(g) = self.inner.lock() else { return Seen::New };
        match g.seen.get(&key) {
            Some(&(t, d)) if now.duration_since(t) < self.ttl => {
                if d == digest {
                    Seen::Same
                } else {
                    Seen::Other
                }
            }
            _ => Seen::New,
        }
    }

    /// Remembers `key` with a digest of `with`; says how it was seen before
    /// (a key seen before keeps its first digest).
    pub fn remember(&self, key: &str, with: &[u8], now: Instant) -> Seen {
        let (key, digest) = (self.key(key), self.keys[1].hash_one(with));
        let Ok(mut g) = self.inner.lock() else { return Seen::New };
        while let Some((t, _)) = g.order.front() {
            if now.duration_since(*t) < self.ttl && g.order.len() < self.capacity {
                break;
            }
            if let Some((t, k)) = g.order.pop_front() {
                if g.seen.get(&k).map(|e| e.0) == Some(t) {
                    g.seen.remove(&k);
                }
            }
        }
        if let Some(&(_, d)) = g.seen.get(&key) {
            return if d == digest { Seen::Same } else { Seen::Other };
        }
        g.seen.insert(key, (now, digest));
        g.order.push_back((now, key));
        Seen::New
    }

    /// Forgets `key` (a webhook that could not be handled may be retried).
    pub fn remove(&self, key: &str) {
        let key = self.key(key);
        if let Ok(mut g) = self.inner.lock() {
            g.seen.remove(&key);
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.seen.len()).unwrap_or(0)
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_caught_until_they_expire() {
        let s = RecentSet::new(Duration::from_secs(10), 100);
        let t = Instant::now();
        assert!(s.insert("a", t));
        assert!(!s.insert("a", t + Duration::from_secs(5)));
        assert!(s.insert("a", t + Duration::from_secs(11)));
    }

    #[test]
    fn a_key_remembered_with_bytes_tells_a_repeat_from_a_reuse() {
        let s = RecentSet::new(Duration::from_secs(10), 100);
        let t = Instant::now();
        assert_eq!(s.check("sig", b"body", t), Seen::New, "checking remembers nothing");
        assert_eq!(s.remember("sig", b"body", t), Seen::New);
        assert_eq!(s.check("sig", b"body", t), Seen::Same);
        assert_eq!(s.check("sig", b"other body", t), Seen::Other);
        assert_eq!(s.remember("sig", b"other body", t), Seen::Other);
        assert_eq!(s.remember("sig", b"body", t), Seen::Same, "the first bytes are kept");
        assert_eq!(s.check("sig", b"other body", t + Duration::from_secs(11)), Seen::New, "expired");
        assert_eq!(s.remember("sig", b"other body", t + Duration::from_secs(11)), Seen::New);
    }

    #[test]
    fn capacity_is_bounded() {
        let s = RecentSet::new(Duration::from_secs(3600), 3);
        let t = Instant::now();
        for k in ["a", "b", "c", "d"] {
            assert!(s.insert(k, t));
        }
        assert!(s.len() <= 3);
        assert!(s.insert("a", t), "the oldest key was forgotten");
        s.remove("d");
        assert!(s.insert("d", t));
    }

    #[test]
    fn keys_of_any_length_are_told_apart() {
        let s = RecentSet::new(Duration::from_secs(60), 100_000);
        let t = Instant::now();
        let long = "x".repeat(10_000);
        for k in ["", "a", "b", "ab", "ba", long.as_str()] {
            assert!(s.insert(k, t), "{k:?}");
        }
        for i in 0..50_000 {
            assert!(s.insert(&format!("0ccc7b54-4df3-4bca-a65a-{i:012}"), t));
        }
        assert!(!s.insert("ab", t) && !s.insert(&long, t));
        assert!(!s.insert("0ccc7b54-4df3-4bca-a65a-000000049999", t));
        assert_eq!(s.len(), 50_006);
    }
}

//! A bounded set of recently seen keys (webhook event ids, signatures) with a
//! time to live: Telnyx retries a webhook with the same `data.id`, and a replayed
//! signature must be refused.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers keys for `ttl`, at most `capacity` of them (oldest forgotten first).
#[derive(Debug)]
pub struct RecentSet {
    inner: Mutex<Inner>,
    ttl: Duration,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl RecentSet {
    /// A set that remembers keys for `ttl`, at most `capacity` keys.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), ttl, capacity: capacity.max(1) }
    }

    /// Inserts `key`; returns false when it was already there (a repeat).
    pub fn insert(&self, key: &str, now: Instant) -> bool {
        let Ok(mut g) = self.inner.lock() else { return true };
        while let Some((t, _)) = g.order.front() {
            if now.duration_since(*t) < self.ttl && g.order.len() < self.capacity {
                break;
            }
            if let Some((t, k)) = g.order.pop_front() {
                if g.seen.get(&k) == Some(&t) {
                    g.seen.remove(&k);
                }
            }
        }
        if g.seen.contains_key(key) {
            return false;
        }
        g.seen.insert(key.to_string(), now);
        g.order.push_back((now, key.to_string()));
        true
    }

    /// Forgets `key` (a webhook that could not be handled may be retried).
    pub fn remove(&self, key: &str) {
        if let Ok(mut g) = self.inner.lock() {
            g.seen.remove(key);
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
}

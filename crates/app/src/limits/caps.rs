//! Caps on how many of something are open at once (sockets per user,
//! unauthenticated sockets per IP). A count, not a rate: a [`Slot`] holds one
//! unit and gives it back when dropped, so a count is released however its
//! holder ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// At most `max` open at once per key.
pub struct Cap<K: Hash + Eq + Clone> {
    inner: Arc<Counts<K>>,
}

struct Counts<K> {
    max: u32,
    open: Mutex<HashMap<K, u32>>,
}

impl<K> Counts<K> {
    /// The counts; a panic elsewhere while holding the lock leaves them
    /// consistent (each change is one map operation), so poison is ignored.
    fn lock(&self) -> MutexGuard<'_, HashMap<K, u32>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Hash + Eq + Clone> Cap<K> {
    /// A cap of `max` per key.
    pub fn new(max: u32) -> Self {
        Self {
            inner: Arc::new(Counts {
                max,
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Takes a slot for `key`, or `None` when `key` already holds `max`.
    pub fn try_acquire(&self, key: &K) -> Option<Slot<K>> {
        let mut open = self.inner.lock();
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.inner.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: self.inner.clone(),
            key: key.clone(),
        })
    }

    /// How many slots `key` holds now.
    pub fn open(&self, key: &K) -> u32 {
        self.inner.lock().get(key).copied().unwrap_or(0)
    }

    /// How many keys hold a slot (keys at zero are removed).
    pub fn keys(&self) -> usize {
        self.inner.lock().len()
    }
}

/// One unit of a [`Cap`], given back on drop.
pub struct Slot<K: Hash + Eq + Clone> {
    counts: Arc<Counts<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Slot<K> {
    /// The key this slot counts against.
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut open = self.counts.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_max_slots_and_dropping_one_frees_it() {
        let cap = Cap::new(2);
        let first = cap.try_acquire(&"a").unwrap();
        let _second = cap.try_acquire(&"a").unwrap();
        assert!(cap.try_acquire(&"a").is_none());
        assert!(cap.try_acquire(&"b").is_some(), "keys are counted apart");
        drop(first);
        assert_eq!(cap.open(&"a"), 1);
        assert!(cap.try_acquire(&"a").is_some());
    }

    #[test]
    fn keys_at_zero_are_removed() {
        let cap = Cap::new(1);
        let slot = cap.try_acquire(&"a").unwrap();
        assert!(cap.try_acquire(&"a").is_none());
        assert_eq!(cap.keys(), 1);
        drop(slot);
        assert_eq!(cap.keys(), 0);
        assert_eq!(cap.open(&"a"), 0);
    }
}

//! Bounded counts per key (connections per source address, sessions per login). A taken
//! [`Slot`] is given back when dropped, so that no path (error, panic, disconnect) leaks one.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Counts per key, released by dropping a [`Slot`].
#[derive(Debug)]
pub struct Counters<K: Hash + Eq + Clone> {
    counts: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> Default for Counters<K> {
    fn default() -> Self {
        Self { counts: Mutex::new(HashMap::new()) }
    }
}

/// One counted use of a key; dropping it gives the use back.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq + Clone + Send + 'static> {
    counters: Arc<Counters<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone + Send + 'static> Counters<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A slot for `key`, or `None` when `max` are already taken.
    pub fn try_take(self: &Arc<Self>, key: K, max: usize) -> Option<Slot<K>> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot { counters: Arc::clone(self), key })
    }

    /// How many slots of `key` are taken.
    pub fn taken(&self, key: &K) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counters.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_at_most_max_slots_and_a_dropped_slot_is_given_back() {
        let counters = Arc::new(Counters::new());
        let first = counters.try_take("10.0.0.1", 2).expect("first");
        let _second = counters.try_take("10.0.0.1", 2).expect("second");
        assert!(counters.try_take("10.0.0.1", 2).is_none());
        assert!(counters.try_take("10.0.0.2", 2).is_some(), "another key counts apart");
        drop(first);
        assert_eq!(counters.taken(&"10.0.0.1"), 1);
        assert!(counters.try_take("10.0.0.1", 2).is_some());
    }

    #[test]
    fn a_key_with_no_slot_left_is_forgotten() {
        let counters = Arc::new(Counters::new());
        drop(counters.try_take(7u32, 1));
        assert!(counters.counts.lock().unwrap().is_empty());
    }
}

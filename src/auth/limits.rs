//! Bounded counts per key (connections per source address, sessions per login), the budget
//! of connections that have not logged in yet (OpenSSH's `MaxStartups`), and the rate of new
//! connections per address. A taken [`Slot`] is given back when dropped, so that no path
//! (error, panic, disconnect) leaks one. Pure: the caller passes the time and the dice.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// OpenSSH's `MaxStartups start:rate:full`: below `start` connections waiting to log in, a new
/// one is always let in; from `start` on it is dropped with a probability that rises from
/// `rate` % to 100 % at `full`; at `full` and beyond, always dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxStartups {
    pub start: usize,
    pub rate_percent: u8,
    pub full: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("max_startups {0:?}: write start:rate:full with start < full and rate at most 100, such as 64:30:256")]
pub struct InvalidMaxStartups(pub String);

impl MaxStartups {
    pub fn parse(text: &str) -> Result<Self, InvalidMaxStartups> {
        let invalid = || InvalidMaxStartups(text.to_string());
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let [start, rate, full] = parts.as_slice() else { return Err(invalid()) };
        let start: usize = start.parse().map_err(|_| invalid())?;
        let rate_percent: u8 = rate.parse().map_err(|_| invalid())?;
        let full: usize = full.parse().map_err(|_| invalid())?;
        if start == 0 || start >= full || rate_percent > 100 {
            return Err(invalid());
        }
        Ok(Self { start, rate_percent, full })
    }

    /// Whether a new connection gets in while `waiting` others have not logged in yet;
    /// `draw` is a random number in 0..100.
    pub fn admits(&self, waiting: usize, draw: u8) -> bool {
        if waiting < self.start {
            return true;
        }
        if waiting >= self.full {
            return false;
        }
        let rate = usize::from(self.rate_percent);
        let drop_percent = rate + (100 - rate) * (waiting - self.start) / (self.full - self.start);
        usize::from(draw) >= drop_percent
    }
}

/// New connections per source address: a token bucket that holds `burst` connections and
/// refills at `per_minute`.
#[derive(Debug)]
pub struct ConnectionRate {
    per_minute: u32,
    burst: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl ConnectionRate {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst: burst.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one connection from `address`'s bucket at `now`; false when it is empty.
    pub fn allow(&self, address: IpAddr, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // Forget addresses whose bucket is full again: the table cannot grow without bound.
        if buckets.len() > 10_000 {
            let refill = self.refill_time();
            buckets.retain(|_, (_, at)| now.saturating_duration_since(*at) < refill);
        }
        let per_second = f64::from(self.per_minute) / 60.0;
        let burst = f64::from(self.burst);
        let (tokens, at) = buckets.entry(address).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * per_second).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst) * 60.0 / f64::from(self.per_minute.max(1)))
    }
}

/// Connections refused before login, counted per source address and reason, so that an
/// attacker's refused connections cannot fill the audit trail: the first of a window is
/// reported at once, the others in one summary when the window ends.
#[derive(Debug, Default)]
pub struct RefusedConnections {
    counts: Mutex<HashMap<(IpAddr, &'static str), u64>>,
}

impl RefusedConnections {
    /// Counts one refusal; true when it is the first of its address and reason in this window.
    pub fn record(&self, address: IpAddr, reason: &'static str) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry((address, reason)).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Ends the window: per address and reason, the refusals not yet reported.
    pub fn end_window(&self) -> Vec<(IpAddr, &'static str, u64)> {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()));
        let mut unreported: Vec<_> =
            counts.into_iter().filter(|(_, count)| *count > 1).map(|((a, r), count)| (a, r, count - 1)).collect();
        unreported.sort();
        unreported
    }
}

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
    fn max_startups_lets_in_below_start_drops_more_and_more_then_all() {
        let budget = MaxStartups::parse("10:30:100").unwrap();
        assert!((0..100).all(|draw| budget.admits(9, draw)));
        assert!(!budget.admits(10, 29) && budget.admits(10, 30), "30 % dropped at start");
        let admitted_at = |waiting| (0..100).filter(|draw| budget.admits(waiting, *draw)).count();
        assert!(admitted_at(55) < admitted_at(10) && admitted_at(55) > 0);
        assert_eq!(admitted_at(100), 0);
        assert_eq!(admitted_at(1000), 0);
        for wrong in ["10:30", "0:30:100", "100:30:100", "10:101:100", "a:b:c"] {
            assert!(MaxStartups::parse(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn refusals_are_reported_once_then_summed_per_window() {
        let refused = RefusedConnections::default();
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(refused.record(one, "max-startups"));
        assert!(!refused.record(one, "max-startups"));
        assert!(!refused.record(one, "max-startups"));
        assert!(refused.record(one, "connection-rate"), "another reason is reported apart");
        assert_eq!(refused.end_window(), vec![(one, "max-startups", 2)]);
        assert!(refused.record(one, "max-startups"), "a new window reports its first again");
    }

    #[test]
    fn an_address_gets_its_burst_then_connections_at_the_refill_rate() {
        let rate = ConnectionRate::new(60, 3);
        let at = Instant::now();
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| rate.allow(one, at)));
        assert!(!rate.allow(one, at), "the burst is used up");
        assert!(rate.allow(other, at), "each address has its own bucket");
        assert!(!rate.allow(one, at + Duration::from_millis(500)));
        assert!(rate.allow(one, at + Duration::from_millis(1600)), "one a second comes back");
    }

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

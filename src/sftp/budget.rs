//! The bytes a session may hold in flight: requests read but not yet handled, data waiting in
//! an upload's buffer, answers not yet written to the channel. A [`Reservation`] gives its
//! bytes back when dropped, so that no path (an answer sent, a request dropped at the end of
//! the session, an error) can forget to.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One session's budget; cheap to clone.
#[derive(Debug, Clone)]
pub struct Budget {
    used: Arc<AtomicUsize>,
    max: usize,
}

/// Bytes taken from a [`Budget`] until dropped.
#[derive(Debug)]
#[must_use = "dropping a reservation gives its bytes back at once"]
pub struct Reservation {
    used: Arc<AtomicUsize>,
    len: usize,
}

impl Budget {
    pub fn new(max: usize) -> Self {
        Self { used: Arc::new(AtomicUsize::new(0)), max }
    }

    /// `len` bytes, or `None` when they would pass the budget (nothing is taken then).
    pub fn try_reserve(&self, len: usize) -> Option<Reservation> {
        let previous = self.used.fetch_add(len, Ordering::AcqRel);
        if previous.saturating_add(len) > self.max {
            self.used.fetch_sub(len, Ordering::AcqRel);
            return None;
        }
        Some(Reservation { used: Arc::clone(&self.used), len })
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.used.fetch_sub(self.len, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_holds_its_bytes_until_dropped() {
        let budget = Budget::new(100);
        let first = budget.try_reserve(60).expect("within the budget");
        assert_eq!(budget.in_use(), 60);
        assert!(budget.try_reserve(41).is_none(), "past the budget");
        assert_eq!(budget.in_use(), 60, "a refused reservation takes nothing");
        let second = budget.try_reserve(40).expect("exactly the budget");
        drop(first);
        assert_eq!(budget.in_use(), 40);
        drop(second);
        assert_eq!(budget.in_use(), 0);
    }
}

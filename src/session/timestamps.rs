//! Client-side write timestamps: every request gets one, microseconds
//! since the epoch, strictly increasing within the session even when the
//! clock steps back or many requests share a microsecond, so a session's
//! writes to one cell apply in the order it sent them (what the DataStax
//! and Scylla drivers do by default). A statement's own timestamp wins.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Running ahead of the clock by more than this is logged (once a second).
const DRIFT_WARNING: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct MonotonicTimestamps {
    last: AtomicI64,
    last_warning: AtomicI64,
}

impl MonotonicTimestamps {
    /// The next timestamp: the clock, or one more than the last one given.
    pub fn next(&self) -> i64 {
        let now = now_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    if next - now > DRIFT_WARNING.as_micros() as i64 {
                        self.warn_drift(now, next);
                    }
                    return next;
                }
                Err(seen) => last = seen,
            }
        }
    }

    fn warn_drift(&self, now: i64, next: i64) {
        let warned = self.last_warning.load(Ordering::Relaxed);
        if now - warned > 1_000_000
            && self
                .last_warning
                .compare_exchange(warned, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                ahead_us = next - now,
                "write timestamps run ahead of the clock (it stepped back, or more than a million writes a second)"
            );
        }
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_increase_strictly_and_follow_the_clock() {
        let t = MonotonicTimestamps::default();
        let first = t.next();
        assert!((first - now_micros()).abs() < 1_000_000);
        let mut previous = first;
        for _ in 0..100_000 {
            let next = t.next();
            assert!(next > previous);
            previous = next;
        }
        // A clock behind what was handed out: still increasing.
        t.last.store(now_micros() + 10_000_000, Ordering::Relaxed);
        let ahead = t.last.load(Ordering::Relaxed);
        assert_eq!(t.next(), ahead + 1);
    }

    #[test]
    fn concurrent_callers_never_share_a_timestamp() {
        let t = std::sync::Arc::new(MonotonicTimestamps::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..10_000).map(|_| t.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}

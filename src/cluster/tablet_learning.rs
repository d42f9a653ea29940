//! Learning tablets under concurrency: one request per unknown tablet
//! learns, the requests behind it wait for its answer.
//!
//! A tablet table's replicas are learned from the `tablets-routing-v1`
//! payload a misrouted request brings back. Sent blindly, every request in
//! flight before the first payload returns is misrouted: 256 requests in
//! flight on 8 unknown tablets cost about 220 misroutes. Here, a request
//! for a token the map cannot route (no entry, or an unconfirmed one)
//! becomes the *probe* of the region around its token, unless a probe of
//! that region is already in flight; then it waits for that probe's
//! answer, at most [`TabletLearning::hold_limit`] (about eight of the
//! probes' recent round trips, within its own deadline), and routes by
//! what the map says afterwards. A region is the gap between known
//! entries, narrowed to one tablet once an entry shows Scylla's layout
//! (`2^k` equal tablets), so the tablets of a table are learned in
//! parallel: about one misroute per tablet touched, at any concurrency,
//! and one round trip of waiting for the requests behind a probe.
//!
//! Requests whose tablet the map trusts never come here: no lock, no wait,
//! no allocation on that path. A request that waited too long goes out as
//! it would have without this (possibly misrouted): the hold bounds
//! latency, never correctness.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::tablets::Region;

/// Requests one probe may hold back; beyond, they go out unheld.
const MAX_WAITERS: usize = 4096;
/// Shortest and longest hold, whatever the round trips. The floor is
/// generous because a burst queues its probes behind the requests ahead
/// of them (a busy host stretches one round trip many times over), and a
/// waiter is usually woken by the answer long before it.
const HOLD_MIN: Duration = Duration::from_millis(100);
const HOLD_MAX: Duration = Duration::from_millis(500);
/// Hold before any probe completed (no round trip known yet).
const HOLD_INITIAL: Duration = Duration::from_millis(200);

/// One request learning one region.
#[derive(Debug)]
pub struct Probe {
    region: Region,
    done: AtomicBool,
    wake: Notify,
    waiters: AtomicUsize,
}

impl Probe {
    /// Waits until the probe answered or `until`; whether it answered.
    pub async fn wait(&self, until: Instant) -> bool {
        let notified = self.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.done.load(Ordering::Acquire) {
            return true;
        }
        tokio::time::timeout_at(until.into(), notified)
            .await
            .is_ok()
    }
}

/// What a request that cannot route by the map should do.
pub enum Admission {
    /// Go now and learn the region; finish the ticket once answered.
    Probe(LearningTicket),
    /// Wait for this probe, then look again.
    Wait(Arc<Probe>),
}

/// Held by a probing request; finishing (or dropping) it wakes the
/// requests waiting for it.
pub struct LearningTicket {
    learning: Arc<Tables>,
    key: (String, String),
    probe: Arc<Probe>,
    started: Instant,
    rtt_us: Arc<AtomicU64>,
}

impl LearningTicket {
    /// The probe answered (the map already holds what it taught).
    pub fn finish(self) {
        let us = self.started.elapsed().as_micros().min(u128::from(u32::MAX)) as u64;
        // Exponentially weighted, 1/4 per sample: follows load within a
        // few probes without one slow answer dominating.
        let old = self.rtt_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (3 * old + us) / 4 };
        self.rtt_us.store(new.max(1), Ordering::Relaxed);
        // Drop wakes the waiters.
    }
}

impl Drop for LearningTicket {
    fn drop(&mut self) {
        self.probe.done.store(true, Ordering::Release);
        self.probe.wake.notify_waiters();
        let mut tables = self.learning.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(probes) = tables.get_mut(&self.key) {
            probes.retain(|p| !Arc::ptr_eq(p, &self.probe));
            if probes.is_empty() {
                tables.remove(&self.key);
            }
        }
    }
}

type Tables = Mutex<HashMap<(String, String), Vec<Arc<Probe>>>>;

/// The probes in flight, per table.
#[derive(Default)]
pub struct TabletLearning {
    tables: Arc<Tables>,
    /// Smoothed round trip of finished probes, in microseconds (0: none).
    rtt_us: Arc<AtomicU64>,
    /// Probes started and requests that waited for one, ever.
    probes: AtomicU64,
    held: AtomicU64,
}

impl TabletLearning {
    /// Admits a request for `token` of `keyspace.table` whose tablet the
    /// map cannot route, `region` being the range around it that one
    /// probe would learn.
    pub fn admit(&self, keyspace: &str, table: &str, token: i64, region: Region) -> Admission {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let key = (keyspace.to_owned(), table.to_owned());
        let probes = tables.entry(key.clone()).or_default();
        let running = probes.iter().find(|p| {
            p.region.contains(token)
                && !p.done.load(Ordering::Acquire)
                && p.waiters.load(Ordering::Relaxed) < MAX_WAITERS
        });
        if let Some(probe) = running {
            probe.waiters.fetch_add(1, Ordering::Relaxed);
            self.held.fetch_add(1, Ordering::Relaxed);
            return Admission::Wait(probe.clone());
        }
        self.probes.fetch_add(1, Ordering::Relaxed);
        let probe = Arc::new(Probe {
            region,
            done: AtomicBool::new(false),
            wake: Notify::new(),
            waiters: AtomicUsize::new(0),
        });
        probes.push(probe.clone());
        Admission::Probe(LearningTicket {
            learning: self.tables.clone(),
            key,
            probe,
            started: Instant::now(),
            rtt_us: self.rtt_us.clone(),
        })
    }

    /// How long a request may wait for a probe: eight smoothed probe round
    /// trips, within [`HOLD_MIN`, `HOLD_MAX`].
    pub fn hold_limit(&self) -> Duration {
        match self.rtt_us.load(Ordering::Relaxed) {
            0 => HOLD_INITIAL,
            us => Duration::from_micros(us.saturating_mul(8)).clamp(HOLD_MIN, HOLD_MAX),
        }
    }

    /// Probes started so far.
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Requests that waited for a probe so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Probes in flight (for tests and metrics).
    pub fn probes_in_flight(&self) -> usize {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(first: i64, last: i64) -> Region {
        Region { first, last }
    }

    #[tokio::test]
    async fn one_probe_per_region_and_waiters_wake_when_it_answers() {
        let learning = TabletLearning::default();
        let Admission::Probe(ticket) = learning.admit("ks", "t", 5, region(0, 10)) else {
            panic!("first request probes");
        };
        // Same region: wait. Another region: a probe of its own.
        let Admission::Wait(probe) = learning.admit("ks", "t", 7, region(0, 10)) else {
            panic!("second request waits");
        };
        let Admission::Probe(other) = learning.admit("ks", "t", 50, region(10, 100)) else {
            panic!("another region probes in parallel");
        };
        let Admission::Probe(table2) = learning.admit("ks", "u", 5, region(0, 10)) else {
            panic!("another table probes in parallel");
        };
        assert_eq!(learning.probes_in_flight(), 3);
        let waiter =
            tokio::spawn(async move { probe.wait(Instant::now() + Duration::from_secs(10)).await });
        tokio::task::yield_now().await;
        ticket.finish();
        assert!(waiter.await.unwrap(), "woken by the answer");
        assert_eq!(learning.probes_in_flight(), 2);
        // A dropped ticket (the request failed) wakes its waiters too.
        let Admission::Wait(probe) = learning.admit("ks", "t", 60, region(10, 100)) else {
            panic!("waits for the other probe");
        };
        drop(other);
        assert!(probe.wait(Instant::now() + Duration::from_secs(10)).await);
        drop(table2);
        assert_eq!(learning.probes_in_flight(), 0);
        assert!(learning.hold_limit() >= HOLD_MIN && learning.hold_limit() <= HOLD_MAX);
    }

    #[tokio::test]
    async fn a_probe_that_never_answers_holds_only_until_the_limit() {
        let learning = TabletLearning::default();
        assert_eq!(learning.hold_limit(), HOLD_INITIAL);
        let Admission::Probe(_ticket) = learning.admit("ks", "t", 5, Region::RING) else {
            panic!("probe");
        };
        let Admission::Wait(probe) = learning.admit("ks", "t", -5, Region::RING) else {
            panic!("wait");
        };
        let started = Instant::now();
        assert!(!probe.wait(Instant::now() + Duration::from_millis(30)).await);
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn the_hold_follows_probe_round_trips() {
        let learning = TabletLearning::default();
        learning.rtt_us.store(1_000, Ordering::Relaxed);
        assert_eq!(learning.hold_limit(), HOLD_MIN);
        learning.rtt_us.store(50_000, Ordering::Relaxed);
        assert_eq!(learning.hold_limit(), Duration::from_millis(400));
        learning.rtt_us.store(10_000_000, Ordering::Relaxed);
        assert_eq!(learning.hold_limit(), HOLD_MAX);
    }
}

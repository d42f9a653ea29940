//! The tablet map: which (host, shard) replicas own a token range of a
//! tablet table, learned lazily from `tablets-routing-v1` payloads.
//!
//! Readers load an immutable snapshot (no lock, one atomic load) and
//! binary-search it; writers (rare: only misrouted requests bring payloads)
//! copy the one affected table, edit it and publish a new snapshot. Replicas
//! are kept as host ids, not node indexes, so they stay valid across
//! topology refreshes and resolve once an unknown host appears.
//!
//! **Ordering.** `tablets-routing-v1` carries no version, so payloads are
//! ordered by the send sequence of the request that brought them: an entry
//! remembers the sequence it was learned (or last confirmed) at, and a
//! payload from a request sent before that, arriving late, is ignored
//! instead of undoing newer information. The window this leaves: two
//! coordinators that disagree (one has not applied a migration yet) are
//! believed in the order their requests were *sent*, so the older view can
//! win until the next misroute corrects it (one misroute, then a payload
//! from the up-to-date coordinator); nothing better exists before
//! `TABLETS_ROUTING_V2`'s versions.
//!
//! **Trust.** An entry is *trusted* (requests route by it at once, without
//! a lock or a wait) while responses keep confirming it: every answer
//! without payload from one of its replicas refreshes it. An entry nothing
//! confirmed for the trust window (1 s by default), or one put in doubt, is
//! *suspect*: requests still go by it, but one at a time per tablet until a
//! response confirms or corrects it (see `tablet_learning.rs`). So a
//! migration during an idle moment costs one misroute per moved tablet, not
//! one per request of the next burst; under steady load, entries never
//! lapse and requests never wait.
//!
//! **Doubt.** A payload that contradicts an entry (the tablet moved, split
//! or merged) shows that the table's layout changed: the table's entries
//! no response confirmed since the contradicting request was sent are put
//! in doubt, and only a request sent after that can confirm them again.
//!
//! **What one answer vouches for.** A suspect entry is trusted again only
//! once each of its replicas answered (a migration moves one replica, the
//! others stay, so one replica's answer says nothing of the others; the
//! check asks the replicas no answer vouched for, one at a time). And
//! since Scylla splits tablets silently, both halves staying put until one
//! moves, the first answer for a suspect entry vouches only for the half
//! holding its token, unless a recent payload shows the table's tablets
//! are that wide; the other half is checked by a request of its own, and
//! halves that agree are joined again. Splits and merges then cost about
//! one misroute per moved tablet, as moves do (tests/tablets_resize.rs).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::name_hash::NameMap;

pub use super::tablet_learning::{Admission, LearningTicket, Probe, TabletLearning};
use crate::protocol::tablets_payload::TabletRoutingInfo;

/// How long an entry stays trusted without a confirming response.
pub const DEFAULT_TRUST_WINDOW: Duration = Duration::from_secs(1);

/// Milliseconds on the process's monotonic clock, never 0.
fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    base.elapsed().as_millis() as u64 + 1
}

/// What responses said about an entry lately. Atomics, so a confirmation
/// refreshes the published snapshot in place instead of copying it.
#[derive(Debug, Default)]
struct Trust {
    /// Send sequence of the request whose answer taught or last confirmed
    /// the entry (orders payloads).
    learned: AtomicU64,
    /// The map's sequence when that answer arrived.
    known_at: AtomicU64,
    /// Non-zero: in doubt since the map's sequence was this; only a request
    /// sent after can confirm it.
    doubted_at: AtomicU64,
    /// When an answer last confirmed it ([`now_ms`]; 0: never).
    confirmed_ms: AtomicU64,
    /// Bit `i`: replica `i` answered since the entry became suspect. All
    /// bits set: every replica is vouched for (a payload names them all),
    /// or, on a suspect entry, no check has started yet. One replica's
    /// answer vouches only for itself: a migration moves one replica
    /// while the others stay.
    verified: AtomicU64,
    /// The half of a suspect entry that its other half's answer split off
    /// ([`TableTablets::confirm_suspect`]): it is not halved again before
    /// it is confirmed.
    split_off: AtomicBool,
}

impl Clone for Trust {
    fn clone(&self) -> Trust {
        let copy = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        Trust {
            learned: copy(&self.learned),
            known_at: copy(&self.known_at),
            doubted_at: copy(&self.doubted_at),
            confirmed_ms: copy(&self.confirmed_ms),
            verified: copy(&self.verified),
            split_off: AtomicBool::new(self.split_off.load(Ordering::Relaxed)),
        }
    }
}

impl Trust {
    fn taught(learned: u64, arrival: u64, now: u64) -> Trust {
        Trust {
            learned: AtomicU64::new(learned),
            known_at: AtomicU64::new(arrival),
            doubted_at: AtomicU64::new(0),
            confirmed_ms: AtomicU64::new(now),
            verified: AtomicU64::new(u64::MAX),
            split_off: AtomicBool::new(false),
        }
    }

    /// Only requests sent after `since` may confirm the entry, each
    /// replica again.
    fn doubt(&self, since: u64) {
        self.doubted_at.fetch_max(since, Ordering::Relaxed);
        self.verified.store(u64::MAX, Ordering::Relaxed);
    }

    fn doubted(&self) -> bool {
        self.doubted_at.load(Ordering::Relaxed) != 0
    }
}

/// One tablet: tokens in `(first, last]` and their replicas in payload
/// order (the order LWT keeps).
#[derive(Debug, Clone)]
pub struct Tablet {
    /// Exclusive lower bound.
    pub first: i64,
    /// Inclusive upper bound.
    pub last: i64,
    pub replicas: Vec<([u8; 16], u16)>,
    trust: Trust,
}

impl PartialEq for Tablet {
    fn eq(&self, other: &Tablet) -> bool {
        (self.first, self.last, &self.replicas) == (other.first, other.last, &other.replicas)
    }
}

impl Eq for Tablet {}

impl Tablet {
    /// Converts a decoded payload; `None` when a shard does not fit a u16
    /// or the range is empty.
    pub fn from_payload(info: &TabletRoutingInfo) -> Option<Tablet> {
        let replicas = info
            .replicas
            .iter()
            .map(|&(host, shard)| Some((host, u16::try_from(shard).ok()?)))
            .collect::<Option<Vec<_>>>()?;
        (info.first_token < info.last_token).then_some(Tablet {
            first: info.first_token,
            last: info.last_token,
            replicas,
            trust: Trust::default(),
        })
    }

    fn contains(&self, token: i64) -> bool {
        self.first < token && token <= self.last
    }

    /// Send sequence of the request that taught or last confirmed it.
    pub fn learned(&self) -> u64 {
        self.trust.learned.load(Ordering::Relaxed)
    }

    /// The bits of [`Trust::verified`] that stand for all its replicas.
    fn all_replicas(&self) -> u64 {
        match self.replicas.len() {
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        }
    }

    /// Whether a request sent at `sequence` left before the entry's doubt
    /// (its answer may describe the old layout).
    fn sent_before_doubt(&self, sequence: u64) -> bool {
        let doubted_at = self.trust.doubted_at.load(Ordering::Relaxed);
        doubted_at != 0 && sequence <= doubted_at
    }

    fn every_replica_verified(&self) -> bool {
        let all = self.all_replicas();
        self.trust.verified.load(Ordering::Relaxed) & all == all
    }

    /// Whether requests may route by it without waiting: not in doubt,
    /// confirmed within `window_ms` before `now`, and by every replica
    /// since it was last suspect.
    fn trusted(&self, now: u64, window_ms: u64) -> bool {
        let confirmed = self.trust.confirmed_ms.load(Ordering::Relaxed);
        !self.trust.doubted()
            && confirmed != 0
            && now.saturating_sub(confirmed) < window_ms
            && self.every_replica_verified()
    }

    /// The replica a check of this suspect entry should ask: the first
    /// one no answer vouched for since it became suspect (`None`: none
    /// has been asked yet, any will do).
    pub fn unverified_replica(&self) -> Option<usize> {
        let verified = self.trust.verified.load(Ordering::Relaxed);
        let all = self.all_replicas();
        if verified & all == all {
            return None;
        }
        (0..self.replicas.len().min(64)).find(|i| verified & (1 << i) == 0)
    }

    /// An answer without payload from one of its replicas (or a payload
    /// repeating it). Writes only when it changes something or the last
    /// refresh is `refresh_ms` old, so busy tablets do not bounce a cache
    /// line on every response.
    fn confirm(&self, answer: Confirmation, refresh_ms: u64, window_ms: u64) -> bool {
        let trust = &self.trust;
        let doubted_at = trust.doubted_at.load(Ordering::Relaxed);
        if self.sent_before_doubt(answer.sequence) {
            return false;
        }
        let trusted = self.trusted(answer.now, window_ms);
        let confirmed = trust.confirmed_ms.load(Ordering::Relaxed);
        if trusted && answer.now.saturating_sub(confirmed) < refresh_ms {
            return false;
        }
        let all = self.all_replicas();
        let verified = trust.verified.load(Ordering::Relaxed);
        let replica = match answer.replica {
            Some(i) if i < 64 => 1 << i,
            _ => all,
        };
        let verified = if !trusted && verified & all == all {
            // The first answer since it became suspect.
            replica
        } else {
            verified | replica
        };
        trust.verified.store(verified, Ordering::Relaxed);
        trust.learned.fetch_max(answer.sequence, Ordering::Relaxed);
        trust.known_at.fetch_max(answer.arrival, Ordering::Relaxed);
        trust.confirmed_ms.store(answer.now, Ordering::Relaxed);
        if verified & all == all {
            trust.split_off.store(false, Ordering::Relaxed);
            if doubted_at != 0 {
                // A doubt raised meanwhile stays.
                let _ = trust.doubted_at.compare_exchange(
                    doubted_at,
                    0,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
        true
    }
}

/// An answer that vouches for an entry.
#[derive(Debug, Clone, Copy)]
struct Confirmation {
    /// Send sequence of the request.
    sequence: u64,
    /// The map's sequence when the answer arrived.
    arrival: u64,
    now: u64,
    /// Which of the entry's replicas answered; `None`: a payload that
    /// repeated the entry, naming them all.
    replica: Option<usize>,
}

/// What applying one payload did to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Filled a range the map knew nothing about.
    Learned,
    /// Said what the map already knew (the entry is confirmed).
    Confirmed,
    /// Contradicted entries: they were replaced (kept parts in doubt) and
    /// the table's entries older than the request were put in doubt.
    Replaced,
    /// From a request sent before the overlapping entries were learned:
    /// older than what the map holds, ignored.
    Stale,
}

/// A range of a table without a trusted entry, where requests should learn
/// before they all guess (see `tablet_learning.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Exclusive lower bound.
    pub first: i64,
    /// Inclusive upper bound.
    pub last: i64,
}

impl Region {
    pub const RING: Region = Region {
        first: i64::MIN,
        last: i64::MAX,
    };

    pub fn contains(&self, token: i64) -> bool {
        self.first < token && token <= self.last
    }
}

/// Largest tablet count inferred from an entry's width (larger tables are
/// not laid out in equal power-of-two tablets by any Scylla version).
const MAX_INFERRED_TABLETS: u64 = 1 << 24;

/// Tablets of one table, sorted by token, never overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableTablets {
    tablets: Vec<Tablet>,
    /// The tablet count the newest payload's range shows (Scylla lays a
    /// table out in `2^k` equal tablets) and when it arrived ([`now_ms`]).
    layout: Option<(usize, u64)>,
}

impl TableTablets {
    /// The tablet holding `token`, in O(log n).
    pub fn find(&self, token: i64) -> Option<&Tablet> {
        let i = self.tablets.partition_point(|t| t.last < token);
        self.tablets.get(i).filter(|t| t.contains(token))
    }

    /// Inserts `tablet`, dropping every entry it overlaps: the newest
    /// feedback wins, which also covers tablet splits and merges.
    pub fn insert(&mut self, tablet: Tablet) {
        let run = self.overlapping(&tablet);
        self.tablets.splice(run, std::iter::once(tablet));
    }

    /// The contiguous run of entries overlapping `tablet` (sorted and
    /// disjoint, so both bounds grow monotonically).
    fn overlapping(&self, tablet: &Tablet) -> std::ops::Range<usize> {
        let start = self.tablets.partition_point(|t| t.last <= tablet.first);
        let end = self.tablets.partition_point(|t| t.first < tablet.last);
        start..end.max(start)
    }

    /// Applies a payload that answered a request sent at `sequence` and
    /// arrived at map sequence `arrival`.
    ///
    /// Entries it overlaps are replaced; the parts of them outside its
    /// range are kept, in doubt (a split's other half usually stays where
    /// it was). Nothing changes if an overlapping entry was learned from a
    /// request sent later (a late, older payload).
    fn apply(&mut self, tablet: Tablet, sequence: u64, arrival: u64, now: u64) -> Applied {
        let run = self.overlapping(&tablet);
        let overlapping = &self.tablets[run.clone()];
        // A later answer that named other replicas wins; one that named
        // the same ones agrees (a merged tablet's payload arriving after
        // its sibling's entry was confirmed is no older than it).
        if overlapping
            .iter()
            .any(|t| t.learned() > sequence && t.replicas != tablet.replicas)
        {
            return Applied::Stale;
        }
        if let [known] = overlapping {
            if *known == tablet {
                let repeated = Confirmation {
                    sequence,
                    arrival,
                    now,
                    replica: None,
                };
                known.confirm(repeated, 0, u64::MAX);
                return Applied::Confirmed;
            }
        }
        let learned = overlapping
            .iter()
            .map(Tablet::learned)
            .fold(sequence, u64::max);
        let fresh = Tablet {
            trust: Trust::taught(learned, arrival, now),
            ..tablet
        };
        if let Some(count) = layout_count(&fresh) {
            self.layout = Some((count, now));
        }
        if overlapping.is_empty() {
            self.tablets.insert(run.start, fresh);
            return Applied::Learned;
        }
        let mut replacement = Vec::with_capacity(3);
        if let Some(left) = overlapping.first().filter(|l| l.first < fresh.first) {
            let left = Tablet {
                last: fresh.first,
                ..left.clone()
            };
            left.trust.doubt(arrival);
            replacement.push(left);
        }
        let right = overlapping
            .last()
            .filter(|r| r.last > fresh.last)
            .map(|r| Tablet {
                first: fresh.last,
                ..r.clone()
            });
        replacement.push(fresh);
        if let Some(right) = right {
            right.trust.doubt(arrival);
            replacement.push(right);
        }
        self.tablets.splice(run, replacement);
        // The layout changed under the map: what no answer confirmed since
        // this request left may be as outdated as what it contradicted.
        for t in &self.tablets {
            if t.trust.known_at.load(Ordering::Relaxed) < sequence {
                t.trust.doubt(arrival);
            }
        }
        Applied::Replaced
    }

    /// An answer without payload from one of the replicas of the entry
    /// holding `token`, when that entry was suspect (lapsed or in doubt).
    /// It shows the replica owns `token`, not that the entry is still one
    /// tablet: Scylla splits tablets silently (both halves stay where they
    /// were) and may move a half later, so an entry that predates a split
    /// would be confirmed whole by its unmoved half and misroute every
    /// request to the moved one until a payload came back (measured: 39-50
    /// misroutes for 16 tablets at 256 in flight). So, unless a recent
    /// payload shows the table's tablets are no narrower than the entry,
    /// the first answer confirms only the half holding `token`; the other
    /// half keeps the replicas as a hint, in doubt, and one request checks
    /// it. Once both halves are confirmed with the same replicas they are
    /// one entry again, so an unsplit table's map does not grow.
    fn confirm_suspect(&mut self, token: i64, answer: Confirmation, window_ms: u64) {
        let i = self.tablets.partition_point(|t| t.last < token);
        let Some(entry) = self.tablets.get(i).filter(|t| t.contains(token)) else {
            return;
        };
        let first_answer = !entry.trusted(answer.now, window_ms)
            && !entry.sent_before_doubt(answer.sequence)
            && entry.every_replica_verified()
            && !entry.trust.split_off.load(Ordering::Relaxed);
        let count = layout_count(entry);
        let known_layout = |count: usize| {
            self.layout.is_some_and(|(tablets, at)| {
                tablets <= count && answer.now.saturating_sub(at) < window_ms
            })
        };
        // The halves as Scylla's layout of twice as many tablets has them.
        let halves = count
            .filter(|&c| first_answer && c < MAX_INFERRED_TABLETS as usize && !known_layout(c))
            .and_then(|c| {
                Some((
                    layout_tablet(entry.first.saturating_add(1), c * 2)?,
                    layout_tablet(entry.last, c * 2)?,
                ))
            });
        let Some((low, high)) = halves else {
            if entry.confirm(answer, 0, window_ms) && entry.trusted(answer.now, window_ms) {
                self.merge_siblings(i, answer.arrival, answer.now, window_ms);
            }
            return;
        };
        let (kept, other) = if low.contains(token) {
            (low, high)
        } else {
            (high, low)
        };
        let kept = Tablet {
            first: kept.first,
            last: kept.last,
            ..entry.clone()
        };
        kept.confirm(answer, 0, window_ms);
        let other = Tablet {
            first: other.first,
            last: other.last,
            ..entry.clone()
        };
        other.trust.doubt(answer.arrival);
        other.trust.split_off.store(true, Ordering::Relaxed);
        let mut pair = [kept, other];
        pair.sort_by_key(|t| t.first);
        self.tablets.splice(i..=i, pair);
    }

    /// The entry at `i` (one of `count` tablets) and, if the map holds it
    /// whole, its aligned sibling: the left one first.
    fn siblings(&self, i: usize, count: usize) -> Option<(usize, usize)> {
        let entry = self.tablets.get(i)?;
        let parent = layout_tablet(entry.last, count / 2).filter(|_| count >= 2)?;
        let (left, right) = if entry.first == parent.first {
            (i, i + 1)
        } else {
            (i.checked_sub(1)?, i)
        };
        let (l, r) = (self.tablets.get(left)?, self.tablets.get(right)?);
        (l.first == parent.first && l.last == r.first && r.last == parent.last)
            .then_some((left, right))
    }

    /// Joins the entry at `i` with its aligned sibling, and so on upwards,
    /// while both are trusted and name the same replicas (they route
    /// alike, and a wider entry halves again when it is next suspect).
    fn merge_siblings(&mut self, mut i: usize, arrival: u64, now: u64, window_ms: u64) {
        loop {
            let Some(count) = self.tablets.get(i).and_then(layout_count) else {
                return;
            };
            let Some((left, right)) = self.siblings(i, count) else {
                return;
            };
            let (l, r) = (&self.tablets[left], &self.tablets[right]);
            if l.replicas != r.replicas || !l.trusted(now, window_ms) || !r.trusted(now, window_ms)
            {
                return;
            }
            let joined = Tablet {
                first: l.first,
                last: r.last,
                replicas: l.replicas.clone(),
                trust: Trust::taught(l.learned().max(r.learned()), arrival, now),
            };
            self.tablets.splice(left..=right, std::iter::once(joined));
            i = left;
        }
    }

    /// The range around `token` (which no entry holds) that one learning
    /// request covers: the gap between the neighbouring entries, narrowed
    /// to one tablet when the known entries show Scylla's layout of equal,
    /// power-of-two-many tablets.
    pub fn region_of(&self, token: i64) -> Region {
        let i = self.tablets.partition_point(|t| t.last < token);
        let gap = Region {
            first: i.checked_sub(1).map_or(i64::MIN, |p| self.tablets[p].last),
            last: self.tablets.get(i).map_or(i64::MAX, |n| n.first),
        };
        let Some(sample) = self.tablets.get(i).or_else(|| self.tablets.last()) else {
            return gap;
        };
        match aligned_tablet(sample, token) {
            Some(guess) => Region {
                first: guess.first.max(gap.first),
                last: guess.last.min(gap.last),
            },
            None => gap,
        }
    }

    pub fn len(&self) -> usize {
        self.tablets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tablets.is_empty()
    }

    pub fn tablets(&self) -> &[Tablet] {
        &self.tablets
    }
}

/// The tablet holding `token` in the layout `sample` belongs to, if
/// `sample` is one of `2^k` equal tablets aligned as Scylla lays them out.
fn aligned_tablet(sample: &Tablet, token: i64) -> Option<Region> {
    layout_tablet(token, layout_count(sample)?)
}

/// Tablet `token` falls in when the table has `count` tablets.
fn layout_tablet(token: i64, count: usize) -> Option<Region> {
    use crate::routing::tablets::{
        tablet_first_token_exclusive, tablet_index_of, tablet_last_token,
    };
    let index = tablet_index_of(token, count)?;
    Some(Region {
        first: tablet_first_token_exclusive(index, count)?,
        last: tablet_last_token(index, count)?,
    })
}

/// How many tablets the table had when `sample` was one of them, if it is
/// one of `2^k` equal tablets aligned as Scylla lays them out.
fn layout_count(sample: &Tablet) -> Option<usize> {
    let width = (sample.last as u64).wrapping_sub(sample.first as u64);
    // The first tablet's exclusive bound is i64::MIN, so it is one token
    // narrower than the others: width 2^n - 1.
    let width = if sample.first == i64::MIN {
        width.wrapping_add(1)
    } else {
        width
    };
    let count = if width == 0 {
        1
    } else if width >= 2 && width.is_power_of_two() {
        (1u64 << 63) / (width / 2)
    } else {
        return None;
    };
    if count > MAX_INFERRED_TABLETS {
        return None;
    }
    let count = usize::try_from(count).ok()?;
    let own = layout_tablet(sample.last, count)?;
    (own.first == sample.first && own.last == sample.last).then_some(count)
}

/// keyspace -> table -> tablets. Two levels so a lookup by `&str` needs no
/// allocation.
type Snapshot = NameMap<String, NameMap<String, Arc<TableTablets>>>;

/// Counts shown in the session metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TabletStats {
    pub tables: usize,
    pub tablets: usize,
    /// Entries requests route by without waiting right now.
    pub trusted: usize,
    pub payloads_received: u64,
    /// Requests that learned a region or checked a suspect entry for the
    /// requests behind them.
    pub probes: u64,
    /// Requests that waited for a probe's answer.
    pub requests_held: u64,
}

/// What the map says about one token of a tablet table.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// Route by it.
    Trusted(&'a Tablet),
    /// Probably right, but one request must confirm it first.
    Unconfirmed(&'a Tablet),
    /// No entry: the range one learning request would cover.
    Unknown(Region),
}

/// The session-wide tablet map.
pub struct TabletMap {
    snapshot: ArcSwap<Snapshot>,
    /// Serialises writers so no update is lost between load and store.
    write: Mutex<()>,
    payloads: AtomicU64,
    /// Send sequence of tablet-routed requests (orders their payloads).
    sequence: AtomicU64,
    trust_window_ms: u64,
    /// Who is learning which range right now.
    pub learning: TabletLearning,
}

impl Default for TabletMap {
    fn default() -> TabletMap {
        TabletMap::with_trust_window(DEFAULT_TRUST_WINDOW)
    }
}

impl TabletMap {
    pub fn new() -> TabletMap {
        TabletMap::default()
    }

    /// A map whose entries stay trusted for `window` after the last
    /// response that confirmed them.
    pub fn with_trust_window(window: Duration) -> TabletMap {
        TabletMap {
            snapshot: ArcSwap::default(),
            write: Mutex::new(()),
            payloads: AtomicU64::new(0),
            sequence: AtomicU64::new(0),
            trust_window_ms: (window.as_millis() as u64).max(1),
            learning: TabletLearning::default(),
        }
    }

    /// The tablets of one table, if any payload was seen for it.
    pub fn table(&self, keyspace: &str, table: &str) -> Option<Arc<TableTablets>> {
        self.snapshot.load().get(keyspace)?.get(table).cloned()
    }

    /// Calls `f` with the tablet holding `token`, without cloning anything.
    pub fn with_tablet<R>(
        &self,
        keyspace: &str,
        table: &str,
        token: i64,
        f: impl FnOnce(&Tablet) -> R,
    ) -> Option<R> {
        let snapshot = self.snapshot.load();
        let tablet = snapshot.get(keyspace)?.get(table)?.find(token)?;
        Some(f(tablet))
    }

    /// Calls `f` with what the map knows about `token`, without cloning
    /// anything.
    pub fn lookup<R>(
        &self,
        keyspace: &str,
        table: &str,
        token: i64,
        f: impl FnOnce(Lookup<'_>) -> R,
    ) -> R {
        let snapshot = self.snapshot.load();
        let Some(tablets) = snapshot.get(keyspace).and_then(|t| t.get(table)) else {
            return f(Lookup::Unknown(Region::RING));
        };
        match tablets.find(token) {
            Some(t) if t.trusted(now_ms(), self.trust_window_ms) => f(Lookup::Trusted(t)),
            Some(t) => f(Lookup::Unconfirmed(t)),
            None => f(Lookup::Unknown(tablets.region_of(token))),
        }
    }

    /// The send sequence of a tablet-routed request about to be sent.
    pub fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records one decoded payload for `keyspace.table`, as if from a
    /// request sent now.
    pub fn record(&self, keyspace: &str, table: &str, info: &TabletRoutingInfo) {
        let sequence = self.next_sequence();
        self.record_at(keyspace, table, info, sequence);
    }

    /// Records one decoded payload for `keyspace.table` that answered a
    /// request sent at `sequence`; `None` if it was unusable.
    pub fn record_at(
        &self,
        keyspace: &str,
        table: &str,
        info: &TabletRoutingInfo,
        sequence: u64,
    ) -> Option<Applied> {
        self.payloads.fetch_add(1, Ordering::Relaxed);
        let Some(tablet) = Tablet::from_payload(info) else {
            tracing::warn!(
                keyspace,
                table,
                "tablet payload with an unusable shard or range ignored"
            );
            return None;
        };
        let mut applied = Applied::Stale;
        self.update(|map| {
            let tables = map.entry(keyspace.to_owned()).or_default();
            let entry = tables.entry(table.to_owned()).or_default();
            let arrival = self.sequence.load(Ordering::Relaxed);
            applied = Arc::make_mut(entry).apply(tablet, sequence, arrival, now_ms());
        });
        if applied == Applied::Stale {
            tracing::debug!(
                keyspace,
                table,
                sequence,
                "late tablet payload older than the map ignored"
            );
        }
        Some(applied)
    }

    /// An answer without payload, from one of the replicas the entry
    /// holding `token` names, to a request sent at `sequence`: the entry is
    /// right (cheap: no copy, usually no write).
    pub fn confirm(
        &self,
        keyspace: &str,
        table: &str,
        token: i64,
        sequence: u64,
        replica: ([u8; 16], u16),
    ) {
        let snapshot = self.snapshot.load();
        let Some(tablet) = snapshot
            .get(keyspace)
            .and_then(|t| t.get(table))
            .and_then(|t| t.find(token))
        else {
            return;
        };
        let Some(index) = tablet.replicas.iter().position(|&r| r == replica) else {
            return;
        };
        let answer = Confirmation {
            sequence,
            arrival: self.sequence.load(Ordering::Relaxed),
            now: now_ms(),
            replica: Some(index),
        };
        let window = self.trust_window_ms;
        if tablet.trusted(answer.now, window) || tablet.sent_before_doubt(sequence) {
            tablet.confirm(answer, window / 4, window);
            return;
        }
        // A suspect entry: its first answer confirms only half of it (a
        // copy of the table, rare).
        drop(snapshot);
        self.update(|map| {
            if let Some(table) = map.get_mut(keyspace).and_then(|t| t.get_mut(table)) {
                Arc::make_mut(table).confirm_suspect(token, answer, window);
            }
        });
    }

    /// Forgets one table (dropped or altered).
    pub fn remove_table(&self, keyspace: &str, table: &str) {
        if self.table(keyspace, table).is_none() {
            return;
        }
        self.update(|map| {
            if let Some(tables) = map.get_mut(keyspace) {
                tables.remove(table);
                if tables.is_empty() {
                    map.remove(keyspace);
                }
            }
        });
    }

    /// Puts every entry in doubt: the topology changed (a node joined or
    /// left), and tablets migrate after that, so every entry may be stale.
    /// Requests still go by them, one per tablet until an answer to a
    /// request sent from now on confirms or corrects it, which bounds the
    /// misroutes a migration costs under load to about one per moved
    /// tablet, instead of one per request in flight until the trust
    /// window lapses. No copy: trust is atomic.
    pub fn doubt_all(&self) {
        let since = self.sequence.load(Ordering::Relaxed).max(1);
        for tables in self.snapshot.load().values() {
            for table in tables.values() {
                for tablet in table.tablets.iter() {
                    tablet.trust.doubt(since);
                }
            }
        }
    }

    /// Forgets every tablet with a replica on one of `hosts` (nodes that
    /// left the cluster): its replica set has changed, and the next request
    /// on it brings a fresh payload. Other tablets stay.
    pub fn forget_hosts(&self, hosts: &[[u8; 16]]) {
        let on_host = |t: &Tablet| t.replicas.iter().any(|(h, _)| hosts.contains(h));
        let affected = self
            .snapshot
            .load()
            .values()
            .flat_map(|tables| tables.values())
            .any(|table| table.tablets.iter().any(on_host));
        if !affected {
            return;
        }
        self.update(|map| {
            for tables in map.values_mut() {
                for table in tables.values_mut() {
                    if table.tablets.iter().any(on_host) {
                        Arc::make_mut(table).tablets.retain(|t| !on_host(t));
                    }
                }
                tables.retain(|_, t| !t.is_empty());
            }
            map.retain(|_, tables| !tables.is_empty());
        });
    }

    /// Keeps only the keyspaces for which `keep` holds (called after each
    /// schema refresh with "still exists and uses tablets").
    pub fn retain_keyspaces(&self, keep: impl Fn(&str) -> bool) {
        if self.snapshot.load().keys().all(|k| keep(k)) {
            return;
        }
        self.update(|map| map.retain(|k, _| keep(k)));
    }

    pub fn stats(&self) -> TabletStats {
        let snapshot = self.snapshot.load();
        let now = now_ms();
        let mut stats = TabletStats {
            payloads_received: self.payloads.load(Ordering::Relaxed),
            probes: self.learning.probes(),
            requests_held: self.learning.held(),
            ..TabletStats::default()
        };
        for table in snapshot.values().flat_map(|t| t.values()) {
            stats.tables += 1;
            stats.tablets += table.len();
            stats.trusted += table
                .tablets
                .iter()
                .filter(|t| t.trusted(now, self.trust_window_ms))
                .count();
        }
        stats
    }

    fn update(&self, edit: impl FnOnce(&mut Snapshot)) {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Snapshot::clone(&self.snapshot.load());
        edit(&mut next);
        self.snapshot.store(Arc::new(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 10_000;
    const WINDOW: u64 = 1_000;

    /// An answer from the entry's first replica.
    fn vouch(entry: &Tablet, sequence: u64, arrival: u64, now: u64, refresh_ms: u64) -> bool {
        let answer = Confirmation {
            sequence,
            arrival,
            now,
            replica: Some(0),
        };
        entry.confirm(answer, refresh_ms, WINDOW)
    }

    fn tablet(first: i64, last: i64, host: u8) -> Tablet {
        Tablet {
            first,
            last,
            replicas: vec![([host; 16], host as u16)],
            trust: Trust::default(),
        }
    }

    /// Applies the payload of a request sent at `at`, arriving at once.
    fn apply(t: &mut TableTablets, first: i64, last: i64, host: u8, at: u64) -> Applied {
        t.apply(tablet(first, last, host), at, at, NOW)
    }

    fn doubted(t: &TableTablets) -> Vec<bool> {
        t.tablets().iter().map(|t| t.trust.doubted()).collect()
    }

    /// Scylla's layout: tablet `i` of `n`.
    fn scylla(i: usize, n: usize) -> (i64, i64) {
        use crate::routing::tablets::{tablet_first_token_exclusive, tablet_last_token};
        (
            tablet_first_token_exclusive(i, n).unwrap(),
            tablet_last_token(i, n).unwrap(),
        )
    }

    fn region((first, last): (i64, i64)) -> Region {
        Region { first, last }
    }

    #[test]
    fn payloads_apply_in_send_order_not_arrival_order() {
        let mut t = TableTablets::default();
        assert_eq!(apply(&mut t, 0, 10, 1, 5), Applied::Learned);
        // The tablet moved; a request sent later says so.
        assert_eq!(apply(&mut t, 0, 10, 2, 9), Applied::Replaced);
        // A request sent before that answers late with the old placement:
        // ignored, whether it says the same range or a wider one.
        assert_eq!(apply(&mut t, 0, 10, 1, 7), Applied::Stale);
        assert_eq!(apply(&mut t, -10, 20, 3, 8), Applied::Stale);
        assert_eq!(t.find(5).unwrap().replicas[0].0, [2; 16]);
        // The same information again confirms and advances the entry.
        assert_eq!(apply(&mut t, 0, 10, 2, 12), Applied::Confirmed);
        assert_eq!(t.find(5).unwrap().learned(), 12);
        // A confirmation orders like a payload: older ones lose to it.
        assert!(vouch(t.find(5).unwrap(), 20, 20, NOW, 0));
        assert_eq!(apply(&mut t, 0, 10, 4, 15), Applied::Stale);
    }

    #[test]
    fn a_contradiction_doubts_what_no_answer_confirmed_since() {
        let mut t = TableTablets::default();
        for (i, (a, b)) in [(0, 10), (10, 20), (20, 30), (30, 40)].iter().enumerate() {
            apply(&mut t, *a, *b, i as u8, 1);
        }
        // (30, 40] was confirmed by an answer that arrived at 6.
        assert!(vouch(&t.tablets()[3], 5, 6, NOW, 0));
        assert_eq!(doubted(&t), [false; 4]);
        // A request sent at 4 says (10, 20] moved: what was known before 4
        // is in doubt, the entry confirmed at 6 is not.
        assert_eq!(t.apply(tablet(10, 20, 7), 4, 8, NOW), Applied::Replaced);
        assert_eq!(doubted(&t), [true, false, true, false]);
        // Only a request sent after the doubt (at 8) lifts it.
        assert!(
            !vouch(&t.tablets()[0], 8, 9, NOW, 0),
            "sent before the doubt"
        );
        assert!(vouch(&t.tablets()[0], 9, 10, NOW, 0));
        assert_eq!(doubted(&t), [false, false, true, false]);
        // A busy entry is not rewritten on every answer.
        assert!(!vouch(&t.tablets()[0], 11, 11, NOW + 10, 100));
        assert!(vouch(&t.tablets()[0], 12, 12, NOW + 200, 100));
    }

    #[test]
    fn entries_lapse_without_confirmation() {
        let mut t = TableTablets::default();
        apply(&mut t, 0, 10, 1, 1);
        let entry = t.find(5).unwrap();
        assert!(entry.trusted(NOW + 999, 1000));
        assert!(
            !entry.trusted(NOW + 1000, 1000),
            "nothing confirmed it for the window"
        );
        assert!(vouch(entry, 2, 2, NOW + 1000, 250));
        assert!(entry.trusted(NOW + 1999, 1000));
    }

    /// An answer to a request sent at `sequence` from replica `replica`
    /// of the entry holding `token`, at `now`.
    fn answer_at(t: &mut TableTablets, token: i64, sequence: u64, replica: usize, now: u64) {
        let answer = Confirmation {
            sequence,
            arrival: sequence,
            now,
            replica: Some(replica),
        };
        t.confirm_suspect(token, answer, WINDOW);
    }

    /// Scylla's 4 tablets, tablet `i` on host `i + 1`, learned at 1.
    fn four_tablets() -> TableTablets {
        let mut t = TableTablets::default();
        for i in 0..4 {
            let (first, last) = scylla(i, 4);
            apply(&mut t, first, last, i as u8 + 1, 1);
        }
        t
    }

    fn trusted_at(t: &TableTablets, now: u64) -> Vec<bool> {
        t.tablets().iter().map(|e| e.trusted(now, WINDOW)).collect()
    }

    #[test]
    fn a_suspect_entry_is_confirmed_a_half_at_a_time_and_joins_again() {
        let mut t = four_tablets();
        let later = NOW + WINDOW;
        assert_eq!(trusted_at(&t, later), [false; 4], "lapsed");
        // An answer from entry 1's upper half vouches for that half only:
        // the table may have split, and the lower half moved.
        let (_, upper_half) = scylla(3, 8);
        answer_at(&mut t, upper_half, 5, 0, later);
        let (first, last) = (scylla(2, 8), scylla(3, 8));
        assert_eq!(
            bounds(&t),
            [scylla(0, 4), first, last, scylla(2, 4), scylla(3, 4)]
        );
        assert_eq!(trusted_at(&t, later), [false, false, true, false, false]);
        assert!(t.tablets()[1].trust.split_off.load(Ordering::Relaxed));
        // A request sent before the halving says nothing about the lower
        // half; one sent after confirms it, and the halves join again.
        answer_at(&mut t, first.1, 4, 0, later + 1);
        assert_eq!(t.len(), 5);
        // (Split off, it is not halved again.)
        answer_at(&mut t, first.1, 6, 0, later + 1);
        assert_eq!(bounds(&t)[1], scylla(1, 4), "joined");
        assert_eq!(trusted_at(&t, later + 1), [false, true, false, false]);
    }

    #[test]
    fn a_recent_payload_of_the_same_width_confirms_entries_whole() {
        let mut t = four_tablets();
        // Tablet 0 moved: the others are in doubt, but the payload shows
        // the table still has 4 tablets, so an answer vouches for a whole
        // entry.
        let (first, last) = scylla(0, 4);
        assert_eq!(apply(&mut t, first, last, 9, 2), Applied::Replaced);
        assert_eq!(doubted(&t), [false, true, true, true]);
        answer_at(&mut t, scylla(2, 4).1, 3, 0, NOW + 1);
        assert_eq!(t.len(), 4);
        assert_eq!(trusted_at(&t, NOW + 1), [true, false, true, false]);
    }

    #[test]
    fn each_replica_vouches_only_for_itself() {
        let mut t = TableTablets::default();
        // Not one of Scylla's aligned tablets, so never halved.
        let three = Tablet {
            replicas: vec![([1; 16], 1), ([2; 16], 2), ([3; 16], 3)],
            ..tablet(0, 100, 1)
        };
        t.apply(three, 1, 1, NOW);
        let later = NOW + WINDOW;
        let entry = |t: &TableTablets| t.find(50).unwrap().clone();
        assert_eq!(entry(&t).unverified_replica(), None, "not checked yet");
        // One replica answered: a migration may have moved another one, so
        // requests wait for a check of each before going by all three.
        answer_at(&mut t, 50, 2, 1, later);
        assert!(!entry(&t).trusted(later, WINDOW));
        assert_eq!(entry(&t).unverified_replica(), Some(0));
        answer_at(&mut t, 50, 3, 0, later);
        assert_eq!(entry(&t).unverified_replica(), Some(2));
        answer_at(&mut t, 50, 4, 2, later);
        assert!(entry(&t).trusted(later, WINDOW));
        // A doubt starts the checks over.
        t.find(50).unwrap().trust.doubt(5);
        assert_eq!(t.find(50).unwrap().unverified_replica(), None);
        assert!(!t.find(50).unwrap().trusted(later, WINDOW));
    }

    #[test]
    fn a_later_entry_that_agrees_does_not_make_a_payload_stale() {
        let mut t = TableTablets::default();
        apply(&mut t, 0, 50, 1, 10);
        apply(&mut t, 50, 100, 2, 5);
        // The two merged onto host 1: the payload of a request sent at 8
        // agrees with the entry learned at 10, and replaces both.
        assert_eq!(apply(&mut t, 0, 100, 1, 8), Applied::Replaced);
        assert_eq!(bounds(&t), [(0, 100)]);
        assert_eq!(t.find(75).unwrap().replicas[0].0, [1; 16]);
        assert_eq!(t.find(75).unwrap().learned(), 10, "keeps the newest order");
        // One that disagrees still wins.
        apply(&mut t, 0, 50, 3, 20);
        assert_eq!(apply(&mut t, 0, 100, 4, 15), Applied::Stale);
    }

    #[test]
    fn splits_keep_the_other_half_in_doubt_and_merges_replace_both() {
        let mut t = TableTablets::default();
        apply(&mut t, 0, 100, 1, 1);
        // A split whose right half moved: the left half keeps its old
        // replicas, to be confirmed.
        assert_eq!(apply(&mut t, 50, 100, 2, 2), Applied::Replaced);
        assert_eq!(bounds(&t), [(0, 50), (50, 100)]);
        assert_eq!(doubted(&t), [true, false]);
        assert_eq!(t.find(10).unwrap().replicas[0].0, [1; 16]);
        // A split inside one entry keeps both sides.
        apply(&mut t, 10, 20, 3, 3);
        assert_eq!(bounds(&t), [(0, 10), (10, 20), (20, 50), (50, 100)]);
        // A merge over all of them replaces every one.
        assert_eq!(apply(&mut t, 0, 100, 4, 4), Applied::Replaced);
        assert_eq!(bounds(&t), [(0, 100)]);
        assert_eq!(doubted(&t), [false]);
    }

    #[test]
    fn regions_follow_scylla_layouts_and_gaps_otherwise() {
        let mut t = TableTablets::default();
        assert_eq!(t.region_of(0), Region::RING);
        // One of 8 equal tablets known: every other tablet's bounds follow.
        let (a, b) = scylla(3, 8);
        apply(&mut t, a, b, 1, 1);
        for (i, token) in [(0, i64::MIN + 1), (5, scylla(5, 8).1), (7, i64::MAX)] {
            assert_eq!(t.region_of(token), region(scylla(i, 8)), "tablet {i}");
        }
        // The first tablet (one token narrower) is a sample too.
        let mut t = TableTablets::default();
        let (a, b) = scylla(0, 64);
        apply(&mut t, a, b, 1, 1);
        let want = scylla(40, 64);
        assert_eq!(t.region_of(want.1 - 5), region(want));
        // A single tablet covering the ring.
        let mut t = TableTablets::default();
        let (a, b) = scylla(0, 1);
        apply(&mut t, a, b, 1, 1);
        assert!(t.find(0).is_some());
        // Not a Scylla layout: the gap between neighbours.
        let mut t = TableTablets::default();
        apply(&mut t, 0, 10, 1, 1);
        apply(&mut t, 30, 77, 1, 1);
        assert_eq!(
            t.region_of(20),
            Region {
                first: 10,
                last: 30
            }
        );
        assert_eq!(
            t.region_of(-5),
            Region {
                first: i64::MIN,
                last: 0
            }
        );
        assert_eq!(
            t.region_of(100),
            Region {
                first: 77,
                last: i64::MAX
            }
        );
        // A guess never crosses a known neighbour.
        let mut t = TableTablets::default();
        let (a, b) = scylla(2, 4);
        apply(&mut t, a, b, 1, 1);
        let first = scylla(1, 4).0;
        apply(&mut t, first, first + 100, 2, 2);
        assert_eq!(t.region_of(first + 101).first, first + 100);
    }

    fn bounds(t: &TableTablets) -> Vec<(i64, i64)> {
        t.tablets().iter().map(|t| (t.first, t.last)).collect()
    }

    #[test]
    fn forgetting_a_host_drops_only_its_tablets() {
        let map = TabletMap::new();
        let payload = |first, last, host: u8| TabletRoutingInfo {
            first_token: first,
            last_token: last,
            replicas: vec![([host; 16], 0), ([9; 16], 1)],
        };
        map.record("ks", "a", &payload(i64::MIN, 0, 1));
        map.record("ks", "a", &payload(0, i64::MAX, 2));
        map.record("ks", "b", &payload(i64::MIN, i64::MAX, 1));
        map.forget_hosts(&[[3; 16]]);
        assert_eq!(map.stats().tablets, 3);
        map.forget_hosts(&[[1; 16]]);
        assert_eq!(map.stats().tables, 1);
        assert_eq!(map.stats().tablets, 1);
        assert!(map.with_tablet("ks", "a", 5, |_| ()).is_some());
        assert!(map.with_tablet("ks", "a", -5, |_| ()).is_none());
        map.forget_hosts(&[[9; 16]]);
        assert_eq!(map.stats().tablets, 0);
    }

    #[test]
    fn find_uses_exclusive_first_and_inclusive_last() {
        let mut t = TableTablets::default();
        t.insert(tablet(i64::MIN, -10, 1));
        t.insert(tablet(-10, 10, 2));
        assert_eq!(t.find(-10).unwrap().replicas[0].1, 1);
        assert_eq!(t.find(-9).unwrap().replicas[0].1, 2);
        assert_eq!(t.find(10).unwrap().replicas[0].1, 2);
        assert!(t.find(11).is_none());
        assert_eq!(t.find(i64::MIN + 1).unwrap().replicas[0].1, 1);
    }

    #[test]
    fn insert_replaces_every_overlapping_entry() {
        let mut t = TableTablets::default();
        for (i, (a, b)) in [(0, 10), (10, 20), (20, 30), (40, 50)].iter().enumerate() {
            t.insert(tablet(*a, *b, i as u8));
        }
        // A merge covering two and a half tablets.
        t.insert(tablet(5, 25, 9));
        assert_eq!(bounds(&t), vec![(5, 25), (40, 50)]);
        // Adjacent, not overlapping: both kept.
        t.insert(tablet(25, 40, 7));
        assert_eq!(bounds(&t), vec![(5, 25), (25, 40), (40, 50)]);
        // A split of the first.
        t.insert(tablet(5, 15, 3));
        assert_eq!(bounds(&t), vec![(5, 15), (25, 40), (40, 50)]);
        // Same range again: replaced in place.
        t.insert(tablet(25, 40, 8));
        assert_eq!(t.len(), 3);
        assert_eq!(t.find(30).unwrap().replicas[0].1, 8);
        // Before everything and after everything.
        t.insert(tablet(i64::MIN, -100, 1));
        t.insert(tablet(100, i64::MAX, 2));
        assert_eq!(t.len(), 5);
        assert_eq!(t.find(i64::MAX).unwrap().replicas[0].1, 2);
    }

    #[test]
    fn map_records_removes_and_counts() {
        let map = TabletMap::new();
        let info = TabletRoutingInfo {
            first_token: -5,
            last_token: 5,
            replicas: vec![([1; 16], 3)],
        };
        map.record("ks", "t", &info);
        assert_eq!(
            map.with_tablet("ks", "t", 0, |t| t.replicas.clone()),
            Some(vec![([1; 16], 3)])
        );
        assert_eq!(map.with_tablet("ks", "t", 6, |_| ()), None);
        let bad = TabletRoutingInfo {
            first_token: 0,
            last_token: 1,
            replicas: vec![([1; 16], 70_000)],
        };
        map.record("ks", "t", &bad);
        let stats = map.stats();
        assert_eq!(
            (stats.tables, stats.tablets, stats.payloads_received),
            (1, 1, 2)
        );
        map.retain_keyspaces(|k| k != "ks");
        assert_eq!(map.stats().tables, 0);
        map.record("ks", "t", &info);
        map.remove_table("ks", "t");
        assert!(map.table("ks", "t").is_none());
    }
}

//! The tablet map: which (host, shard) replicas own a token range of a
//! tablet table, learned lazily from `tablets-routing-v1` payloads.
//!
//! Readers load an immutable snapshot (no lock, one atomic load) and
//! binary-search it; writers (rare: only misrouted requests bring payloads)
//! copy the one affected table, edit it and publish a new snapshot. Replicas
//! are kept as host ids, not node indexes, so they stay valid across
//! topology refreshes and resolve once an unknown host appears.
//!
//! Payloads are ordered by the send sequence of the request that brought
//! them (`tablets-routing-v1` carries no version): an entry remembers the
//! sequence it was learned (or last confirmed) at, and a payload from a
//! request sent before that, arriving late, is ignored instead of undoing
//! newer information. The window this leaves: two coordinators that
//! disagree (one has not seen a migration yet) answer in the order their
//! requests were sent, so the older view can win until the next misroute
//! corrects it; the protocol offers nothing better before
//! `TABLETS_ROUTING_V2`'s versions.
//!
//! A payload that contradicts an entry (the tablet moved, split or merged)
//! is evidence that the table's layout changed: the table's other entries
//! become *unconfirmed*. Requests still route by them, but only one at a
//! time per tablet until a response confirms it (see `tablet_learning.rs`),
//! so a migration costs about one misroute per tablet, not one per request
//! in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

pub use super::tablet_learning::{Admission, LearningTicket, Probe, TabletLearning};
use crate::protocol::tablets_payload::TabletRoutingInfo;

/// One tablet: tokens in `(first, last]` and their replicas in payload
/// order (the order LWT keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablet {
    /// Exclusive lower bound.
    pub first: i64,
    /// Inclusive upper bound.
    pub last: i64,
    pub replicas: Vec<([u8; 16], u16)>,
    /// Send sequence of the request whose response taught (or last
    /// confirmed) this entry.
    pub learned: u64,
    /// The table's layout changed since this entry was learned: probably
    /// right, but to be confirmed by one request before trusted by all.
    pub unconfirmed: bool,
}

impl Tablet {
    /// Converts a decoded payload; `None` when a shard does not fit a u16.
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
            learned: 0,
            unconfirmed: false,
        })
    }

    fn contains(&self, token: i64) -> bool {
        self.first < token && token <= self.last
    }
}

/// What applying one payload did to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Filled a range the map knew nothing about.
    Learned,
    /// Said what the map already knew (the entry is confirmed).
    Confirmed,
    /// Contradicted entries: they were replaced (kept parts unconfirmed)
    /// and the table's other entries became unconfirmed.
    Replaced,
    /// From a request sent before the overlapping entries were learned:
    /// older than what the map holds, ignored.
    Stale,
}

/// A range of a table without a confirmed entry, where requests should
/// learn before they all guess (see `tablet_learning.rs`).
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

    /// Applies a payload learned from a request sent at `tablet.learned`.
    ///
    /// Entries it overlaps are replaced; the parts of them outside its
    /// range are kept, unconfirmed (a split's other half usually stays
    /// where it was). Nothing changes if an overlapping entry was learned
    /// from a request sent later (a late, older payload).
    pub fn apply(&mut self, tablet: Tablet) -> Applied {
        let run = self.overlapping(&tablet);
        let overlapping = &self.tablets[run.clone()];
        if overlapping.iter().any(|t| t.learned > tablet.learned) {
            return Applied::Stale;
        }
        if let [known] = overlapping {
            if (known.first, known.last, &known.replicas)
                == (tablet.first, tablet.last, &tablet.replicas)
            {
                let i = run.start;
                self.tablets[i].unconfirmed = false;
                self.tablets[i].learned = tablet.learned;
                return Applied::Confirmed;
            }
        }
        if overlapping.is_empty() {
            self.tablets.insert(run.start, tablet);
            return Applied::Learned;
        }
        let mut replacement = Vec::with_capacity(3);
        if let Some(left) = overlapping.first().filter(|l| l.first < tablet.first) {
            replacement.push(Tablet {
                last: tablet.first,
                unconfirmed: true,
                ..left.clone()
            });
        }
        let right = overlapping
            .last()
            .filter(|r| r.last > tablet.last)
            .map(|r| Tablet {
                first: tablet.last,
                unconfirmed: true,
                ..r.clone()
            });
        replacement.push(tablet);
        replacement.extend(right);
        let start = run.start;
        let added = replacement.len();
        self.tablets.splice(run, replacement);
        // The layout changed under the map: trust no other entry blindly.
        for (i, t) in self.tablets.iter_mut().enumerate() {
            if !(start..start + added).contains(&i) {
                t.unconfirmed = true;
            }
        }
        Applied::Replaced
    }

    /// Marks the entry holding `token` confirmed by a response to a
    /// request sent at `sequence`; false if there was nothing to do.
    pub fn confirm(&mut self, token: i64, sequence: u64) -> bool {
        let i = self.tablets.partition_point(|t| t.last < token);
        match self.tablets.get_mut(i).filter(|t| t.contains(token)) {
            Some(t) if t.unconfirmed => {
                t.unconfirmed = false;
                t.learned = t.learned.max(sequence);
                true
            }
            _ => false,
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
    use crate::routing::tablets::{tablet_first_token_exclusive, tablet_index_of, tablet_last_token};
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
    let index = tablet_index_of(sample.last, count)?;
    if tablet_first_token_exclusive(index, count)? != sample.first
        || tablet_last_token(index, count)? != sample.last
    {
        return None;
    }
    let index = tablet_index_of(token, count)?;
    Some(Region {
        first: tablet_first_token_exclusive(index, count)?,
        last: tablet_last_token(index, count)?,
    })
}

/// keyspace -> table -> tablets. Two levels so a lookup by `&str` needs no
/// allocation.
type Snapshot = HashMap<String, HashMap<String, Arc<TableTablets>>>;

/// Counts shown in the session metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TabletStats {
    pub tables: usize,
    pub tablets: usize,
    pub payloads_received: u64,
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
#[derive(Default)]
pub struct TabletMap {
    snapshot: ArcSwap<Snapshot>,
    /// Serialises writers so no update is lost between load and store.
    write: Mutex<()>,
    payloads: AtomicU64,
    /// Send sequence of tablet-routed requests (orders their payloads).
    sequence: AtomicU64,
    /// Who is learning which range right now.
    pub learning: TabletLearning,
}

impl TabletMap {
    pub fn new() -> TabletMap {
        TabletMap::default()
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
            Some(t) if t.unconfirmed => f(Lookup::Unconfirmed(t)),
            Some(t) => f(Lookup::Trusted(t)),
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
                "tablet payload with an unusable shard ignored"
            );
            return None;
        };
        let tablet = Tablet {
            learned: sequence,
            ..tablet
        };
        let mut applied = Applied::Stale;
        self.update(|map| {
            let tables = map.entry(keyspace.to_owned()).or_default();
            let entry = tables.entry(table.to_owned()).or_default();
            applied = Arc::make_mut(entry).apply(tablet);
        });
        if applied == Applied::Stale {
            tracing::debug!(keyspace, table, sequence, "late tablet payload older than the map ignored");
        }
        Some(applied)
    }

    /// A response without payload to a request sent at `sequence` and
    /// routed by the entry holding `token`: the entry is right.
    pub fn confirm(&self, keyspace: &str, table: &str, token: i64, sequence: u64) {
        let unconfirmed = self.lookup(keyspace, table, token, |l| {
            matches!(l, Lookup::Unconfirmed(_))
        });
        if !unconfirmed {
            return;
        }
        self.update(|map| {
            if let Some(entry) = map.get_mut(keyspace).and_then(|t| t.get_mut(table)) {
                if entry.find(token).is_some_and(|t| t.unconfirmed) {
                    Arc::make_mut(entry).confirm(token, sequence);
                }
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
        let (tables, tablets) = snapshot
            .values()
            .flat_map(|t| t.values())
            .fold((0, 0), |(n, m), t| (n + 1, m + t.len()));
        TabletStats {
            tables,
            tablets,
            payloads_received: self.payloads.load(Ordering::Relaxed),
        }
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

    fn tablet(first: i64, last: i64, host: u8) -> Tablet {
        Tablet {
            first,
            last,
            replicas: vec![([host; 16], host as u16)],
            learned: 0,
            unconfirmed: false,
        }
    }

    fn learned(first: i64, last: i64, host: u8, at: u64) -> Tablet {
        Tablet {
            learned: at,
            ..tablet(first, last, host)
        }
    }

    fn unconfirmed(t: &TableTablets) -> Vec<bool> {
        t.tablets().iter().map(|t| t.unconfirmed).collect()
    }

    /// Scylla's layout: tablet `i` of `n`.
    fn scylla(i: usize, n: usize, host: u8, at: u64) -> Tablet {
        use crate::routing::tablets::{tablet_first_token_exclusive, tablet_last_token};
        learned(
            tablet_first_token_exclusive(i, n).unwrap(),
            tablet_last_token(i, n).unwrap(),
            host,
            at,
        )
    }

    #[test]
    fn payloads_apply_in_send_order_not_arrival_order() {
        let mut t = TableTablets::default();
        assert_eq!(t.apply(learned(0, 10, 1, 5)), Applied::Learned);
        // The tablet moved; a request sent later says so.
        assert_eq!(t.apply(learned(0, 10, 2, 9)), Applied::Replaced);
        // A request sent before that answers late with the old placement:
        // ignored, whether it says the same range or a wider one.
        assert_eq!(t.apply(learned(0, 10, 1, 7)), Applied::Stale);
        assert_eq!(t.apply(learned(-10, 20, 3, 8)), Applied::Stale);
        assert_eq!(t.find(5).unwrap().replicas[0].0, [2; 16]);
        // The same information again confirms and advances the entry.
        assert_eq!(t.apply(learned(0, 10, 2, 12)), Applied::Confirmed);
        assert_eq!(t.find(5).unwrap().learned, 12);
    }

    #[test]
    fn a_contradicted_layout_leaves_the_rest_unconfirmed() {
        let mut t = TableTablets::default();
        for (i, (a, b)) in [(0, 10), (10, 20), (20, 30)].iter().enumerate() {
            t.apply(learned(*a, *b, i as u8, 1));
        }
        assert_eq!(unconfirmed(&t), [false, false, false]);
        // Tablet (10, 20] moved: the other two are now in doubt.
        assert_eq!(t.apply(learned(10, 20, 7, 2)), Applied::Replaced);
        assert_eq!(unconfirmed(&t), [true, false, true]);
        assert!(t.confirm(5, 3));
        assert!(!t.confirm(5, 4), "already confirmed");
        assert!(!t.confirm(15, 4), "trusted already");
        assert!(!t.confirm(99, 4), "no entry");
        assert_eq!(unconfirmed(&t), [false, false, true]);
        assert_eq!(t.find(5).unwrap().learned, 3);
    }

    #[test]
    fn splits_keep_the_other_half_unconfirmed_and_merges_replace_both() {
        let mut t = TableTablets::default();
        t.apply(learned(0, 100, 1, 1));
        // A split whose right half moved: the left half keeps its old
        // replicas, to be confirmed.
        assert_eq!(t.apply(learned(50, 100, 2, 2)), Applied::Replaced);
        assert_eq!(bounds(&t), [(0, 50), (50, 100)]);
        assert_eq!(unconfirmed(&t), [true, false]);
        assert_eq!(t.find(10).unwrap().replicas[0].0, [1; 16]);
        // A split inside one entry keeps both sides.
        t.apply(learned(10, 20, 3, 3));
        assert_eq!(bounds(&t), [(0, 10), (10, 20), (20, 50), (50, 100)]);
        // A merge over all of them replaces every one.
        assert_eq!(t.apply(learned(0, 100, 4, 4)), Applied::Replaced);
        assert_eq!(bounds(&t), [(0, 100)]);
        assert_eq!(unconfirmed(&t), [false]);
    }

    #[test]
    fn regions_follow_scylla_layouts_and_gaps_otherwise() {
        let mut t = TableTablets::default();
        assert_eq!(t.region_of(0), Region::RING);
        // One of 8 equal tablets known: every other tablet's bounds follow.
        t.apply(scylla(3, 8, 1, 1));
        for (i, token) in [(0, i64::MIN + 1), (5, scylla(5, 8, 0, 0).last), (7, i64::MAX)] {
            let want = scylla(i, 8, 0, 0);
            assert_eq!(
                t.region_of(token),
                Region { first: want.first, last: want.last },
                "tablet {i}"
            );
        }
        // The first tablet (one token narrower) is a sample too.
        let mut t = TableTablets::default();
        t.apply(scylla(0, 64, 1, 1));
        let want = scylla(40, 64, 0, 0);
        assert_eq!(t.region_of(want.last - 5), Region { first: want.first, last: want.last });
        // A single tablet covering the ring.
        let mut t = TableTablets::default();
        t.apply(scylla(0, 1, 1, 1));
        assert!(t.find(0).is_some());
        // Not a Scylla layout: the gap between neighbours.
        let mut t = TableTablets::default();
        t.apply(learned(0, 10, 1, 1));
        t.apply(learned(30, 77, 1, 1));
        assert_eq!(t.region_of(20), Region { first: 10, last: 30 });
        assert_eq!(t.region_of(-5), Region { first: i64::MIN, last: 0 });
        assert_eq!(t.region_of(100), Region { first: 77, last: i64::MAX });
        // A guess never crosses a known neighbour.
        let mut t = TableTablets::default();
        t.apply(scylla(2, 4, 1, 1));
        let narrow = learned(scylla(1, 4, 0, 0).first, scylla(1, 4, 0, 0).first + 100, 2, 2);
        t.apply(narrow.clone());
        let region = t.region_of(narrow.last + 1);
        assert_eq!(region.first, narrow.last);
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

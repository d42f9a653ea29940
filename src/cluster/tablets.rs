//! The tablet map: which (host, shard) replicas own a token range of a
//! tablet table, learned lazily from `tablets-routing-v1` payloads.
//!
//! Readers load an immutable snapshot (no lock, one atomic load) and
//! binary-search it; writers (rare: only misrouted requests bring payloads)
//! copy the one affected table, edit it and publish a new snapshot. Replicas
//! are kept as host ids, not node indexes, so they stay valid across
//! topology refreshes and resolve once an unknown host appears.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

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
        })
    }

    fn contains(&self, token: i64) -> bool {
        self.first < token && token <= self.last
    }
}

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
        // Sorted and disjoint, so both bounds grow monotonically and the
        // overlapping entries form one contiguous run.
        let start = self.tablets.partition_point(|t| t.last <= tablet.first);
        let end = self.tablets.partition_point(|t| t.first < tablet.last);
        let end = end.max(start);
        self.tablets.splice(start..end, std::iter::once(tablet));
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

/// The session-wide tablet map.
#[derive(Default)]
pub struct TabletMap {
    snapshot: ArcSwap<Snapshot>,
    /// Serialises writers so no update is lost between load and store.
    write: Mutex<()>,
    payloads: AtomicU64,
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

    /// Records one decoded payload for `keyspace.table`.
    pub fn record(&self, keyspace: &str, table: &str, info: &TabletRoutingInfo) {
        self.payloads.fetch_add(1, Ordering::Relaxed);
        let Some(tablet) = Tablet::from_payload(info) else {
            tracing::warn!(
                keyspace,
                table,
                "tablet payload with an unusable shard ignored"
            );
            return;
        };
        self.update(|map| {
            let tables = map.entry(keyspace.to_owned()).or_default();
            let entry = tables.entry(table.to_owned()).or_default();
            Arc::make_mut(entry).insert(tablet);
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
        }
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

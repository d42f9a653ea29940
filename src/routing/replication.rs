//! Replica placement for vnode (token-ring) keyspaces.
//!
//! Shared by the driver (to pick a replica as coordinator) and the emulator
//! (to decide what a correctly routed request is), so both sides agree by
//! construction. Tablet keyspaces do not use this: their replicas come from
//! the `tablets-routing-v1` payload.

use std::collections::{BTreeMap, HashMap};

use crate::routing::token::Token;

/// A keyspace's replication strategy, as far as routing cares.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReplicationStrategy {
    /// `rf` consecutive distinct nodes along the ring.
    Simple { rf: usize },
    /// Rack-aware placement per datacenter; replica lists are concatenated
    /// in the order of `per_dc`.
    NetworkTopology { per_dc: Vec<(String, usize)> },
    /// Node-local data (system keyspaces): no replica is better than another,
    /// so routing just uses the primary owner.
    Local,
    /// Every node holds everything.
    Everywhere,
    /// Unrecognised class or unparsable options; routed like `Local`.
    Other,
}

/// Parses a replication factor, accepting Cassandra's `"total/transient"`
/// form by keeping the total.
fn parse_rf(value: &str) -> Option<usize> {
    let value = value.trim();
    let total = value.split_once('/').map_or(value, |(total, _)| total);
    total.trim().parse().ok()
}

/// Options of Scylla's NTS map that are not datacenter names.
fn is_nts_non_dc_option(key: &str) -> bool {
    matches!(key, "class" | "replication_factor" | "initial_tablets")
}

impl ReplicationStrategy {
    /// Interprets a `system_schema.keyspaces.replication` map.
    ///
    /// The class may be short (`SimpleStrategy`) or package-qualified
    /// (`org.apache.cassandra.locator.SimpleStrategy`). NTS datacenters are
    /// sorted by name (the order a CQL map is serialized in) so the result
    /// does not depend on the caller's map iteration order; datacenters with
    /// RF 0 or an unparsable RF are left out. A `replication_factor` key is
    /// ignored for NTS, because Scylla expands it into per-DC entries when the
    /// keyspace is created. Anything unusable yields [`Other`](Self::Other).
    pub fn from_replication_map<I, K, V>(entries: I) -> ReplicationStrategy
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut options: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in entries {
            options.insert(k.as_ref().to_owned(), v.as_ref().to_owned());
        }
        let Some(class) = options.get("class") else {
            return ReplicationStrategy::Other;
        };
        let short = class.rsplit('.').next().unwrap_or(class);
        match short {
            "SimpleStrategy" => options
                .get("replication_factor")
                .and_then(|v| parse_rf(v))
                .map_or(ReplicationStrategy::Other, |rf| {
                    ReplicationStrategy::Simple { rf }
                }),
            "NetworkTopologyStrategy" => {
                let per_dc = options
                    .iter()
                    .filter(|(k, _)| !is_nts_non_dc_option(k))
                    .filter_map(|(dc, v)| Some((dc.clone(), parse_rf(v)?)))
                    .filter(|&(_, rf)| rf > 0)
                    .collect();
                ReplicationStrategy::NetworkTopology { per_dc }
            }
            "LocalStrategy" => ReplicationStrategy::Local,
            "EverywhereStrategy" => ReplicationStrategy::Everywhere,
            _ => ReplicationStrategy::Other,
        }
    }

    /// Convenience for the common map type.
    pub fn from_map(map: &HashMap<String, String>) -> ReplicationStrategy {
        ReplicationStrategy::from_replication_map(map)
    }
}

/// A node as the ring needs it. Its index in the slice given to
/// [`TokenRing::new`] is the node id used in every replica list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingNode {
    pub dc: String,
    pub rack: String,
    pub tokens: Vec<Token>,
}

/// One datacenter's slice of the ring, so NTS walks skip foreign nodes.
#[derive(Clone, Debug)]
struct DcRing {
    entries: Vec<(Token, usize)>,
    /// Distinct nodes of the DC that own at least one token.
    node_count: usize,
    /// Distinct racks among those nodes.
    rack_count: usize,
}

/// Reusable marks for de-duplicating nodes and racks during a walk; they are
/// reset after each walk by undoing only what was marked.
struct Scratch {
    node_seen: Vec<bool>,
    rack_seen: Vec<bool>,
}

/// The token ring: every `(token, node)` sorted by token.
///
/// A token `t` belongs to the first entry whose token is `>= t`, wrapping to
/// the first entry past the largest token.
#[derive(Clone, Debug)]
pub struct TokenRing {
    entries: Vec<(Token, usize)>,
    node_count: usize,
    /// Distinct nodes owning at least one token.
    ring_node_count: usize,
    /// Globally interned (dc, rack) id of each node.
    node_rack: Vec<usize>,
    rack_count: usize,
    dcs: Vec<DcRing>,
    dc_index: HashMap<String, usize>,
}

/// Index of the first entry with token `>= token`, wrapping to 0.
fn lower_bound(entries: &[(Token, usize)], token: Token) -> usize {
    let i = entries.partition_point(|&(t, _)| t < token);
    if i == entries.len() {
        0
    } else {
        i
    }
}

/// Entries from `start` to the end, then from the beginning up to `start`.
fn rotated(entries: &[(Token, usize)], start: usize) -> impl Iterator<Item = usize> + '_ {
    let (head, tail) = entries.split_at(start);
    tail.iter().chain(head).map(|&(_, node)| node)
}

impl TokenRing {
    /// Builds the ring. Nodes without tokens are known but own nothing.
    pub fn new(nodes: &[RingNode]) -> TokenRing {
        let mut dc_index: HashMap<String, usize> = HashMap::new();
        let mut rack_ids: HashMap<(usize, &str), usize> = HashMap::new();
        let mut node_dc = Vec::with_capacity(nodes.len());
        let mut node_rack = Vec::with_capacity(nodes.len());
        for node in nodes {
            let next_dc = dc_index.len();
            let dc = *dc_index.entry(node.dc.clone()).or_insert(next_dc);
            let next_rack = rack_ids.len();
            let rack = *rack_ids
                .entry((dc, node.rack.as_str()))
                .or_insert(next_rack);
            node_dc.push(dc);
            node_rack.push(rack);
        }

        let mut entries: Vec<(Token, usize)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.tokens.iter().map(move |&t| (t, i)))
            .collect();
        entries.sort_unstable();

        let mut dcs: Vec<DcRing> = (0..dc_index.len())
            .map(|_| DcRing {
                entries: Vec::new(),
                node_count: 0,
                rack_count: 0,
            })
            .collect();
        for &(t, node) in &entries {
            dcs[node_dc[node]].entries.push((t, node));
        }
        let mut rack_counted = vec![false; rack_ids.len()];
        let mut ring_node_count = 0;
        for (i, node) in nodes.iter().enumerate() {
            if node.tokens.is_empty() {
                continue;
            }
            ring_node_count += 1;
            let dc = &mut dcs[node_dc[i]];
            dc.node_count += 1;
            if !rack_counted[node_rack[i]] {
                rack_counted[node_rack[i]] = true;
                dc.rack_count += 1;
            }
        }

        TokenRing {
            entries,
            node_count: nodes.len(),
            ring_node_count,
            node_rack,
            rack_count: rack_ids.len(),
            dcs,
            dc_index,
        }
    }

    /// All `(token, node)` entries, sorted.
    pub fn entries(&self) -> &[(Token, usize)] {
        &self.entries
    }

    /// Number of ring entries (tokens).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no node owns any token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of nodes given to [`TokenRing::new`], with or without tokens.
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// The node owning `token` (the primary replica), if the ring is non-empty.
    pub fn primary(&self, token: Token) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        Some(self.entries[lower_bound(&self.entries, token)].1)
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            node_seen: vec![false; self.node_count],
            rack_seen: vec![false; self.rack_count],
        }
    }

    /// Replicas of `token`, primary first. Unknown NTS datacenters add none.
    pub fn replicas(&self, strategy: &ReplicationStrategy, token: Token) -> Vec<usize> {
        let mut out = Vec::new();
        self.replicas_into(strategy, token, &mut out);
        out
    }

    /// Like [`replicas`](Self::replicas) but reuses `out` (cleared first).
    pub fn replicas_into(
        &self,
        strategy: &ReplicationStrategy,
        token: Token,
        out: &mut Vec<usize>,
    ) {
        out.clear();
        let mut scratch = self.scratch();
        self.compute(strategy, token, &mut scratch, out);
    }

    fn compute(
        &self,
        strategy: &ReplicationStrategy,
        token: Token,
        scratch: &mut Scratch,
        out: &mut Vec<usize>,
    ) {
        if self.entries.is_empty() {
            return;
        }
        let start = lower_bound(&self.entries, token);
        match strategy {
            ReplicationStrategy::Simple { rf } => self.walk_distinct(start, *rf, scratch, out),
            ReplicationStrategy::Local | ReplicationStrategy::Other => {
                self.walk_distinct(start, 1, scratch, out)
            }
            ReplicationStrategy::Everywhere => {
                self.walk_distinct(start, self.ring_node_count, scratch, out)
            }
            ReplicationStrategy::NetworkTopology { per_dc } => {
                for (dc, rf) in per_dc {
                    if let Some(&dc) = self.dc_index.get(dc) {
                        self.walk_dc(&self.dcs[dc], token, *rf, scratch, out);
                    }
                }
            }
        }
    }

    /// SimpleStrategy: the first `want` distinct nodes from `start` onwards.
    fn walk_distinct(
        &self,
        start: usize,
        want: usize,
        scratch: &mut Scratch,
        out: &mut Vec<usize>,
    ) {
        let want = want.min(self.ring_node_count);
        let base = out.len();
        if want == 0 {
            return;
        }
        for node in rotated(&self.entries, start) {
            if scratch.node_seen[node] {
                continue;
            }
            scratch.node_seen[node] = true;
            out.push(node);
            if out.len() - base == want {
                break;
            }
        }
        for &node in &out[base..] {
            scratch.node_seen[node] = false;
        }
    }

    /// NetworkTopologyStrategy within one DC, following Scylla's
    /// `natural_endpoints_tracker`: a node on a rack not used yet is always
    /// taken; a node on an already used rack only while `rf - racks` repeats
    /// remain (racks beat ring order while there are enough of them).
    fn walk_dc(
        &self,
        dc: &DcRing,
        token: Token,
        rf: usize,
        scratch: &mut Scratch,
        out: &mut Vec<usize>,
    ) {
        let want = rf.min(dc.node_count);
        let base = out.len();
        if want == 0 {
            return;
        }
        let mut repeats_left = rf.saturating_sub(dc.rack_count);
        for node in rotated(&dc.entries, lower_bound(&dc.entries, token)) {
            let rack = self.node_rack[node];
            if !scratch.rack_seen[rack] {
                scratch.rack_seen[rack] = true;
            } else if repeats_left > 0 && !scratch.node_seen[node] {
                repeats_left -= 1;
            } else {
                continue;
            }
            scratch.node_seen[node] = true;
            out.push(node);
            if out.len() - base == want {
                break;
            }
        }
        for &node in &out[base..] {
            scratch.node_seen[node] = false;
            scratch.rack_seen[self.node_rack[node]] = false;
        }
    }
}

/// Handle to one strategy's table in [`PrecomputedReplicas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StrategyId {
    table: usize,
    /// Replica lists are cut to this length (SimpleStrategy-like strategies
    /// share one table, since each RF's list is a prefix of a larger RF's).
    limit: usize,
}

/// Replica lists of every ring entry, flattened. Consecutive entries with
/// equal lists share one span, which makes long runs of one node's tokens
/// (and rings with few nodes) cheap.
#[derive(Clone, Debug, Default)]
struct ReplicaTable {
    spans: Vec<(usize, usize)>,
    data: Vec<usize>,
}

impl ReplicaTable {
    fn push(&mut self, list: &[usize]) {
        if let Some(&(s, e)) = self.spans.last() {
            if self.data[s..e] == *list {
                self.spans.push((s, e));
                return;
            }
        }
        let s = self.data.len();
        self.data.extend_from_slice(list);
        self.spans.push((s, self.data.len()));
    }
}

/// Replica lists precomputed per ring entry for a fixed set of strategies,
/// so the request path costs one binary search and a slice, no allocation.
///
/// Rebuild whenever the ring or the set of keyspace strategies changes.
#[derive(Clone, Debug)]
pub struct PrecomputedReplicas {
    tokens: Vec<Token>,
    ids: Vec<(ReplicationStrategy, StrategyId)>,
    tables: Vec<ReplicaTable>,
}

impl PrecomputedReplicas {
    /// Default cap on stored replica ids per table (32 MiB of `usize`s).
    ///
    /// Full-ring lists (EverywhereStrategy, or an RF near the node count) need
    /// `entries x nodes` ids: 300 nodes with 256 vnodes would take ~180 MiB,
    /// and real Scylla clusters do have an Everywhere keyspace
    /// (`system_distributed_everywhere`).
    pub const DEFAULT_MAX_IDS_PER_TABLE: usize = 1 << 22;

    /// Precomputes `strategies` (duplicates are fine) over `ring`, within
    /// [`DEFAULT_MAX_IDS_PER_TABLE`](Self::DEFAULT_MAX_IDS_PER_TABLE).
    pub fn new<'a, I>(ring: &TokenRing, strategies: I) -> PrecomputedReplicas
    where
        I: IntoIterator<Item = &'a ReplicationStrategy>,
    {
        Self::with_budget(ring, strategies, Self::DEFAULT_MAX_IDS_PER_TABLE)
    }

    /// Like [`new`](Self::new), but a strategy whose table could need more
    /// than `max_ids_per_table` ids (ring entries x replicas per entry) is
    /// left out: [`strategy_id`](Self::strategy_id) returns `None` for it and
    /// the caller falls back to [`TokenRing::replicas`].
    pub fn with_budget<'a, I>(
        ring: &TokenRing,
        strategies: I,
        max_ids_per_table: usize,
    ) -> PrecomputedReplicas
    where
        I: IntoIterator<Item = &'a ReplicationStrategy>,
    {
        let mut distinct: Vec<ReplicationStrategy> = Vec::new();
        for s in strategies {
            if !distinct.contains(s) {
                distinct.push(s.clone());
            }
        }

        let entries = ring.entries.len();
        let fits = |per_entry: usize| entries.saturating_mul(per_entry) <= max_ids_per_table;
        // Replicas per entry of SimpleStrategy-like strategies; each is a
        // prefix of the deepest one, so they share table 0.
        let simple_limit = |s: &ReplicationStrategy| match s {
            ReplicationStrategy::Simple { rf } => Some((*rf).min(ring.ring_node_count)),
            ReplicationStrategy::Local | ReplicationStrategy::Other => {
                Some(1.min(ring.ring_node_count))
            }
            ReplicationStrategy::Everywhere => Some(ring.ring_node_count),
            ReplicationStrategy::NetworkTopology { .. } => None,
        };
        let nts_size = |s: &ReplicationStrategy| match s {
            ReplicationStrategy::NetworkTopology { per_dc } => per_dc
                .iter()
                .filter_map(|(dc, rf)| {
                    let dc = &ring.dcs[*ring.dc_index.get(dc)?];
                    Some((*rf).min(dc.node_count))
                })
                .fold(0usize, usize::saturating_add),
            _ => 0,
        };

        let mut tables = Vec::new();
        let mut ids = Vec::with_capacity(distinct.len());
        let simple_depth = distinct
            .iter()
            .filter_map(simple_limit)
            .filter(|&limit| fits(limit))
            .max();
        if let Some(depth) = simple_depth {
            tables.push(Self::simple_table(ring, depth));
        }
        for s in distinct {
            let id = match simple_limit(&s) {
                Some(limit) if fits(limit) => StrategyId { table: 0, limit },
                Some(_) => continue,
                None if fits(nts_size(&s)) => {
                    tables.push(Self::nts_table(ring, &s));
                    StrategyId {
                        table: tables.len() - 1,
                        limit: usize::MAX,
                    }
                }
                None => continue,
            };
            ids.push((s, id));
        }

        PrecomputedReplicas {
            tokens: ring.entries.iter().map(|&(t, _)| t).collect(),
            ids,
            tables,
        }
    }

    /// Distinct-node prefixes of length `depth` for every entry.
    fn simple_table(ring: &TokenRing, depth: usize) -> ReplicaTable {
        let n = ring.entries.len();
        let mut table = ReplicaTable::default();
        if n == 0 {
            return table;
        }
        let mut scratch = ring.scratch();
        let mut list = Vec::new();
        if depth < ring.ring_node_count {
            for i in 0..n {
                list.clear();
                ring.walk_distinct(i, depth, &mut scratch, &mut list);
                table.push(&list);
            }
            return table;
        }
        // Full lists: walking from every entry would cost O(entries^2).
        // Instead, the list of entry i is the list of entry i+1 with node(i)
        // moved to the front, so sweep backwards from entry 0's list.
        ring.walk_distinct(0, depth, &mut scratch, &mut list);
        table.spans = vec![(0, 0); n];
        table.data.extend_from_slice(&list);
        table.spans[0] = (0, list.len());
        let mut last_span = table.spans[0];
        for i in (1..n).rev() {
            let node = ring.entries[i].1;
            let pos = list
                .iter()
                .position(|&x| x == node)
                .expect("every ring node is in a full replica list");
            if pos != 0 {
                list[..=pos].rotate_right(1);
                let s = table.data.len();
                table.data.extend_from_slice(&list);
                last_span = (s, table.data.len());
            }
            table.spans[i] = last_span;
        }
        table
    }

    fn nts_table(ring: &TokenRing, strategy: &ReplicationStrategy) -> ReplicaTable {
        let mut table = ReplicaTable::default();
        let mut scratch = ring.scratch();
        let mut list = Vec::new();
        for &(token, _) in &ring.entries {
            list.clear();
            ring.compute(strategy, token, &mut scratch, &mut list);
            table.push(&list);
        }
        table
    }

    /// Id of a precomputed strategy; cache it per keyspace to skip the
    /// comparison on every request.
    pub fn strategy_id(&self, strategy: &ReplicationStrategy) -> Option<StrategyId> {
        self.ids
            .iter()
            .find(|(s, _)| s == strategy)
            .map(|&(_, id)| id)
    }

    /// Replicas of `token` under a precomputed strategy, primary first.
    pub fn replicas_by_id(&self, id: StrategyId, token: Token) -> &[usize] {
        if self.tokens.is_empty() {
            return &[];
        }
        let i = self.tokens.partition_point(|&t| t < token);
        let i = if i == self.tokens.len() { 0 } else { i };
        let table = &self.tables[id.table];
        let (s, e) = table.spans[i];
        let list = &table.data[s..e];
        &list[..list.len().min(id.limit)]
    }

    /// Replicas of `token`, or `None` if `strategy` was not precomputed.
    pub fn replicas(&self, strategy: &ReplicationStrategy, token: Token) -> Option<&[usize]> {
        let id = self.strategy_id(strategy)?;
        Some(self.replicas_by_id(id, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(dc: &str, rack: &str, tokens: &[i64]) -> RingNode {
        RingNode {
            dc: dc.to_owned(),
            rack: rack.to_owned(),
            tokens: tokens.iter().map(|&t| Token::new(t)).collect(),
        }
    }

    fn t(v: i64) -> Token {
        Token::new(v)
    }

    fn simple(rf: usize) -> ReplicationStrategy {
        ReplicationStrategy::Simple { rf }
    }

    fn nts(per_dc: &[(&str, usize)]) -> ReplicationStrategy {
        ReplicationStrategy::NetworkTopology {
            per_dc: per_dc.iter().map(|&(d, r)| (d.to_owned(), r)).collect(),
        }
    }

    #[test]
    fn parse_replication_maps() {
        let map = |pairs: &[(&str, &str)]| -> ReplicationStrategy {
            ReplicationStrategy::from_replication_map(pairs.iter().copied())
        };
        assert_eq!(
            map(&[("class", "SimpleStrategy"), ("replication_factor", "3")]),
            simple(3)
        );
        assert_eq!(
            map(&[
                ("class", "org.apache.cassandra.locator.SimpleStrategy"),
                ("replication_factor", " 2 ")
            ]),
            simple(2)
        );
        assert_eq!(
            map(&[("class", "SimpleStrategy"), ("replication_factor", "3/1")]),
            simple(3)
        );
        assert_eq!(
            map(&[("class", "SimpleStrategy")]),
            ReplicationStrategy::Other
        );
        assert_eq!(
            map(&[("class", "SimpleStrategy"), ("replication_factor", "x")]),
            ReplicationStrategy::Other
        );
        assert_eq!(
            map(&[
                (
                    "class",
                    "org.apache.cassandra.locator.NetworkTopologyStrategy"
                ),
                ("dc2", "2"),
                ("dc1", "3"),
                ("dc0", "0"),
                ("initial_tablets", "8"),
                ("replication_factor", "3"),
                ("bad", "many"),
            ]),
            nts(&[("dc1", 3), ("dc2", 2)])
        );
        assert_eq!(
            map(&[("class", "LocalStrategy")]),
            ReplicationStrategy::Local
        );
        assert_eq!(
            map(&[("class", "org.apache.cassandra.locator.LocalStrategy")]),
            ReplicationStrategy::Local
        );
        assert_eq!(
            map(&[("class", "org.apache.cassandra.locator.EverywhereStrategy")]),
            ReplicationStrategy::Everywhere
        );
        assert_eq!(
            map(&[("class", "EverywhereStrategy")]),
            ReplicationStrategy::Everywhere
        );
        assert_eq!(
            map(&[("class", "com.example.CustomStrategy")]),
            ReplicationStrategy::Other
        );
        assert_eq!(map(&[]), ReplicationStrategy::Other);

        let mut hm = HashMap::new();
        hm.insert("class".to_owned(), "NetworkTopologyStrategy".to_owned());
        hm.insert("b".to_owned(), "1".to_owned());
        hm.insert("a".to_owned(), "2".to_owned());
        assert_eq!(
            ReplicationStrategy::from_map(&hm),
            nts(&[("a", 2), ("b", 1)])
        );
        assert_eq!(
            ReplicationStrategy::from_replication_map(&hm),
            nts(&[("a", 2), ("b", 1)])
        );
    }

    /// A=0 owns -100 and 200, B=1 owns 0 and 300, C=2 owns 100.
    fn abc_ring() -> TokenRing {
        TokenRing::new(&[
            node("dc", "r", &[200, -100]),
            node("dc", "r", &[300, 0]),
            node("dc", "r", &[100]),
        ])
    }

    #[test]
    fn simple_strategy_with_vnodes() {
        let ring = abc_ring();
        assert_eq!(ring.len(), 5);
        assert_eq!(ring.node_count(), 3);
        assert_eq!(ring.primary(t(-200)), Some(0));

        assert_eq!(ring.replicas(&simple(1), t(-200)), vec![0]);
        assert_eq!(ring.replicas(&simple(2), t(-200)), vec![0, 1]);
        assert_eq!(ring.replicas(&simple(3), t(-200)), vec![0, 1, 2]);
        assert_eq!(ring.replicas(&simple(5), t(-200)), vec![0, 1, 2]);
        assert_eq!(ring.replicas(&simple(0), t(-200)), Vec::<usize>::new());

        // Exactly on a token: that entry owns it.
        assert_eq!(ring.replicas(&simple(3), t(0)), vec![1, 2, 0]);
        assert_eq!(ring.replicas(&simple(3), t(1)), vec![2, 0, 1]);
        // 200 (A), 300 (B), wrap.
        assert_eq!(ring.replicas(&simple(2), t(150)), vec![0, 1]);
        // 300 (B), -100 (A, after wrapping), 0 (B again, skipped), 100 (C).
        assert_eq!(ring.replicas(&simple(3), t(250)), vec![1, 0, 2]);
        // Past the largest token wraps to the smallest.
        assert_eq!(ring.replicas(&simple(2), t(301)), vec![0, 1]);
        assert_eq!(ring.replicas(&simple(2), Token::MAX), vec![0, 1]);
        assert_eq!(ring.replicas(&simple(2), Token::MIN), vec![0, 1]);
    }

    #[test]
    fn local_other_everywhere() {
        let ring = abc_ring();
        assert_eq!(ring.replicas(&ReplicationStrategy::Local, t(250)), vec![1]);
        assert_eq!(ring.replicas(&ReplicationStrategy::Other, t(50)), vec![2]);
        assert_eq!(
            ring.replicas(&ReplicationStrategy::Everywhere, t(250)),
            vec![1, 0, 2]
        );
        assert_eq!(
            ring.replicas(&ReplicationStrategy::Everywhere, t(50)),
            vec![2, 0, 1]
        );
    }

    #[test]
    fn empty_ring_and_tokenless_nodes() {
        let empty = TokenRing::new(&[]);
        assert!(empty.is_empty());
        assert_eq!(empty.primary(t(0)), None);
        assert!(empty.replicas(&simple(3), t(0)).is_empty());
        let pre = PrecomputedReplicas::new(&empty, [&simple(3), &nts(&[("dc", 1)])]);
        assert_eq!(pre.replicas(&simple(3), t(0)), Some(&[][..]));

        // Node 1 has no tokens: it is never a replica and does not count.
        let ring = TokenRing::new(&[node("dc", "r1", &[10]), node("dc", "r2", &[])]);
        assert_eq!(ring.replicas(&simple(3), t(0)), vec![0]);
        assert_eq!(ring.replicas(&nts(&[("dc", 3)]), t(0)), vec![0]);
        assert_eq!(
            ring.replicas(&ReplicationStrategy::Everywhere, t(0)),
            vec![0]
        );
    }

    /// dc1: n0 (r1), n1 (r1), n2 (r2); dc2: n3 (rA), n4 (rB), n5 (rB).
    /// Ring: 10 n0, 20 n1, 30 n3, 40 n2, 50 n5, 60 n4, 70 n1.
    fn two_dc_ring() -> TokenRing {
        TokenRing::new(&[
            node("dc1", "r1", &[10]),
            node("dc1", "r1", &[20, 70]),
            node("dc1", "r2", &[40]),
            node("dc2", "rA", &[30]),
            node("dc2", "rB", &[60]),
            node("dc2", "rB", &[50]),
        ])
    }

    #[test]
    fn nts_two_dcs_two_racks() {
        let ring = two_dc_ring();
        // rf == racks: one node per rack, ring order otherwise.
        assert_eq!(
            ring.replicas(&nts(&[("dc1", 2), ("dc2", 2)]), t(5)),
            vec![0, 2, 3, 5]
        );
        // The order of `per_dc` decides the concatenation order.
        assert_eq!(
            ring.replicas(&nts(&[("dc2", 2), ("dc1", 2)]), t(5)),
            vec![3, 5, 0, 2]
        );
        // Starting at n1 (20): n1 r1, n2 r2.
        assert_eq!(
            ring.replicas(&nts(&[("dc1", 2), ("dc2", 1)]), t(15)),
            vec![1, 2, 3]
        );
        // rf 1 per DC: the first node of the DC at or after the token.
        assert_eq!(
            ring.replicas(&nts(&[("dc1", 1), ("dc2", 1)]), t(45)),
            vec![1, 5]
        );
    }

    #[test]
    fn nts_rf_above_racks() {
        let ring = two_dc_ring();
        // One repeat allowed (3 - 2): n0 r1, n1 r1 (repeat), n2 r2.
        assert_eq!(ring.replicas(&nts(&[("dc1", 3)]), t(5)), vec![0, 1, 2]);
        // From 15: n1 r1, n2 r2, n1 again (same node), n0 r1 (repeat).
        assert_eq!(ring.replicas(&nts(&[("dc1", 3)]), t(15)), vec![1, 2, 0]);
        // dc2 from 30: n3 rA, n5 rB, n4 rB (repeat).
        assert_eq!(ring.replicas(&nts(&[("dc2", 3)]), t(15)), vec![3, 5, 4]);
    }

    #[test]
    fn nts_rack_repeats_are_limited() {
        // Scylla's own example: with RF 3 and 2 racks, IP3 (third node of
        // rack 1) must be skipped in favour of IP4 (rack 2).
        let ring = TokenRing::new(&[
            node("dc", "r1", &[1]),
            node("dc", "r1", &[2]),
            node("dc", "r1", &[3]),
            node("dc", "r2", &[4]),
        ]);
        assert_eq!(ring.replicas(&nts(&[("dc", 3)]), t(0)), vec![0, 1, 3]);
        assert_eq!(ring.replicas(&nts(&[("dc", 2)]), t(0)), vec![0, 3]);
        assert_eq!(ring.replicas(&nts(&[("dc", 4)]), t(0)), vec![0, 1, 2, 3]);
        // Three racks, RF 2: distinct racks only.
        let ring = TokenRing::new(&[
            node("dc", "a", &[1]),
            node("dc", "a", &[2]),
            node("dc", "b", &[3]),
            node("dc", "c", &[4]),
        ]);
        assert_eq!(ring.replicas(&nts(&[("dc", 2)]), t(0)), vec![0, 2]);
        assert_eq!(ring.replicas(&nts(&[("dc", 3)]), t(0)), vec![0, 2, 3]);
    }

    #[test]
    fn nts_rf_above_nodes_and_unknown_dc() {
        let ring = two_dc_ring();
        assert_eq!(ring.replicas(&nts(&[("dc1", 5)]), t(5)), vec![0, 1, 2]);
        assert_eq!(ring.replicas(&nts(&[("dc2", 9)]), t(65)), vec![3, 5, 4]);
        assert!(ring.replicas(&nts(&[("dc3", 3)]), t(5)).is_empty());
        assert!(ring.replicas(&nts(&[]), t(5)).is_empty());
        assert_eq!(
            ring.replicas(&nts(&[("dc3", 3), ("dc1", 1)]), t(5)),
            vec![0]
        );
        assert!(ring.replicas(&nts(&[("dc1", 0)]), t(5)).is_empty());
    }

    #[test]
    fn same_rack_name_in_two_dcs_is_two_racks() {
        let ring = TokenRing::new(&[
            node("dc1", "r", &[1]),
            node("dc2", "r", &[2]),
            node("dc1", "q", &[3]),
        ]);
        assert_eq!(
            ring.replicas(&nts(&[("dc1", 2), ("dc2", 1)]), t(0)),
            vec![0, 2, 1]
        );
    }

    #[test]
    fn replicas_into_reuses_buffer() {
        let ring = abc_ring();
        let mut out = vec![42, 43];
        ring.replicas_into(&simple(2), t(250), &mut out);
        assert_eq!(out, vec![1, 0]);
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_ring(rng: &mut XorShift, nodes: usize, vnodes: usize) -> Vec<RingNode> {
        let dcs = ["dc1", "dc2", "dc3"];
        let racks = ["r1", "r2", "r3"];
        (0..nodes)
            .map(|_| {
                let dc = dcs[rng.below(3) as usize];
                let rack = racks[rng.below(3) as usize];
                let count = rng.below(vnodes as u64 + 1) as usize;
                let tokens: Vec<i64> = (0..count).map(|_| rng.next() as i64).collect();
                node(dc, rack, &tokens)
            })
            .collect()
    }

    fn all_strategies() -> Vec<ReplicationStrategy> {
        vec![
            simple(0),
            simple(1),
            simple(2),
            simple(3),
            simple(7),
            simple(100),
            ReplicationStrategy::Local,
            ReplicationStrategy::Other,
            ReplicationStrategy::Everywhere,
            nts(&[("dc1", 1)]),
            nts(&[("dc1", 3), ("dc2", 2)]),
            nts(&[("dc2", 4), ("dc1", 2), ("dc3", 1)]),
            nts(&[("dc3", 10), ("nowhere", 2)]),
        ]
    }

    fn check_precomputed(nodes: &[RingNode], rng: &mut XorShift, probes: usize) {
        let ring = TokenRing::new(nodes);
        let strategies = all_strategies();
        let pre = PrecomputedReplicas::new(&ring, &strategies);
        let mut tokens: Vec<Token> = vec![Token::MIN, Token::MAX, t(0)];
        for &(tok, _) in ring.entries() {
            tokens.push(tok);
            tokens.push(Token::new(tok.value().wrapping_add(1)));
        }
        tokens.extend((0..probes).map(|_| Token::new(rng.next() as i64)));
        for s in &strategies {
            let id = pre.strategy_id(s).unwrap();
            for &tok in &tokens {
                let want = ring.replicas(s, tok);
                assert_eq!(pre.replicas_by_id(id, tok), &want[..], "{s:?} {tok:?}");
                // Sanity: no duplicates.
                let mut sorted = want.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), want.len());
            }
        }
        assert_eq!(pre.replicas(&simple(4), t(0)), None);
    }

    #[test]
    fn precomputed_matches_on_the_fly() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        check_precomputed(&random_ring(&mut rng, 0, 4), &mut rng, 10);
        check_precomputed(&random_ring(&mut rng, 1, 4), &mut rng, 10);
        for _ in 0..30 {
            let nodes = 2 + rng.below(12) as usize;
            let vnodes = 1 + rng.below(8) as usize;
            let ring = random_ring(&mut rng, nodes, vnodes);
            check_precomputed(&ring, &mut rng, 200);
        }
        let big = random_ring(&mut rng, 40, 32);
        check_precomputed(&big, &mut rng, 2000);
    }

    #[test]
    fn precomputed_contiguous_blocks() {
        // Each node's tokens are contiguous, as a naive emulator might assign.
        let nodes: Vec<RingNode> = (0..6)
            .map(|i| {
                let tokens: Vec<i64> = (0..50).map(|j| i * 1000 + j).collect();
                node(if i % 2 == 0 { "dc1" } else { "dc2" }, "r", &tokens)
            })
            .collect();
        let mut rng = XorShift(7);
        check_precomputed(&nodes, &mut rng, 500);
    }

    #[test]
    fn simple_strategies_share_one_table() {
        let ring = abc_ring();
        let strategies = [
            simple(1),
            simple(2),
            ReplicationStrategy::Local,
            simple(2),
            nts(&[("dc", 2)]),
        ];
        let pre = PrecomputedReplicas::new(&ring, &strategies);
        assert_eq!(pre.tables.len(), 2);
        assert_eq!(pre.ids.len(), 4);
        assert_eq!(pre.replicas(&simple(2), t(250)), Some(&[1, 0][..]));
        assert_eq!(pre.replicas(&simple(1), t(250)), Some(&[1][..]));
        assert_eq!(pre.replicas(&nts(&[("dc", 2)]), t(250)), Some(&[1, 0][..]));
    }

    #[test]
    fn budget_leaves_out_large_tables() {
        let ring = abc_ring(); // 5 entries, 3 nodes
        let strategies = [
            simple(1),
            simple(2),
            ReplicationStrategy::Everywhere,
            nts(&[("dc", 1)]),
            nts(&[("dc", 3)]),
        ];
        // 5 entries x 2 replicas = 10 ids fit; 5 x 3 do not.
        let pre = PrecomputedReplicas::with_budget(&ring, &strategies, 10);
        assert_eq!(pre.replicas(&simple(2), t(250)), Some(&[1, 0][..]));
        assert_eq!(pre.replicas(&simple(1), t(250)), Some(&[1][..]));
        assert_eq!(pre.replicas(&nts(&[("dc", 1)]), t(250)), Some(&[1][..]));
        assert_eq!(pre.strategy_id(&ReplicationStrategy::Everywhere), None);
        assert_eq!(pre.strategy_id(&nts(&[("dc", 3)])), None);
        // The default budget takes all of them.
        let pre = PrecomputedReplicas::new(&ring, &strategies);
        assert_eq!(
            pre.replicas(&ReplicationStrategy::Everywhere, t(250)),
            Some(&[1, 0, 2][..])
        );
    }
}

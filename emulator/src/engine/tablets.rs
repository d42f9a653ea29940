//! The emulator's own tablet placement: for each table of a tablet keyspace,
//! a power-of-two list of tablets, each with (node, shard) replicas. This is
//! the truth a driver learns lazily from `tablets-routing-v1` payloads.

use scylla_shard::protocol::tablets_payload::TabletRoutingInfo;
use scylla_shard::routing::tablets::{
    tablet_first_token_exclusive, tablet_index_of, tablet_last_token,
};

use crate::topology::{splitmix64, NodeInfo};

/// Most tablets a table may be split into.
pub const MAX_TABLETS: usize = 1 << 16;

/// One replica of a tablet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TabletReplica {
    pub node: usize,
    pub shard: u16,
}

#[derive(Debug, Clone)]
pub struct TabletLayout {
    /// Replicas of each tablet, indexed by tablet number.
    pub tablets: Vec<Vec<TabletReplica>>,
    /// How many times the layout was shuffled (changes placement).
    pub moves: u64,
    seed: u64,
    shards: u16,
}

impl TabletLayout {
    /// Places `count` tablets: per datacenter, `rf` distinct nodes starting
    /// at a rotating offset, and a pseudo-random shard on each.
    pub fn new(
        count: u32,
        per_dc_rf: &[(String, usize)],
        nodes: &[NodeInfo],
        shards: u16,
        seed: u64,
    ) -> TabletLayout {
        let mut layout = TabletLayout {
            tablets: Vec::new(),
            moves: 0,
            seed,
            shards,
        };
        layout.place(count as usize, per_dc_rf, nodes);
        layout
    }

    fn place(&mut self, count: usize, per_dc_rf: &[(String, usize)], nodes: &[NodeInfo]) {
        self.tablets = (0..count)
            .map(|tablet| {
                let mut replicas = Vec::new();
                for (dc, rf) in per_dc_rf {
                    let dc_nodes: Vec<usize> = nodes
                        .iter()
                        .filter(|n| &n.datacenter == dc)
                        .map(|n| n.index)
                        .collect();
                    if dc_nodes.is_empty() {
                        continue;
                    }
                    let start =
                        (tablet + self.moves as usize + (self.seed as usize % dc_nodes.len()))
                            % dc_nodes.len();
                    for i in 0..(*rf).min(dc_nodes.len()) {
                        let node = dc_nodes[(start + i) % dc_nodes.len()];
                        let shard = self.shard_for(tablet, node);
                        replicas.push(TabletReplica { node, shard });
                    }
                }
                replicas
            })
            .collect();
    }

    /// Moves every tablet: to the next nodes where the datacenter has more
    /// nodes than replicas, and always to another shard.
    pub fn shuffle(&mut self, per_dc_rf: &[(String, usize)], nodes: &[NodeInfo]) {
        self.moves += 1;
        let count = self.tablets.len();
        self.place(count, per_dc_rf, nodes);
    }

    /// Moves replicas to match a changed membership, as Scylla's tablet
    /// load balancer does after a bootstrap or a decommission: replicas on
    /// nodes that left go to the least-loaded members of their
    /// datacenter, then, per datacenter, one replica at a time moves from
    /// the most- to the least-loaded node until they differ by at most
    /// one. Returns the replicas moved.
    pub fn rebalance(&mut self, per_dc_rf: &[(String, usize)], members: &[NodeInfo]) -> usize {
        let mut moved = 0;
        for (dc, rf) in per_dc_rf {
            let dc_nodes: Vec<usize> = members
                .iter()
                .filter(|n| &n.datacenter == dc)
                .map(|n| n.index)
                .collect();
            let in_dc = |node: usize| dc_nodes.contains(&node);
            let load = |tablets: &[Vec<TabletReplica>], node: usize| {
                tablets
                    .iter()
                    .filter(|r| r.iter().any(|r| r.node == node))
                    .count()
            };
            let is_member = |node: usize| members.iter().any(|n| n.index == node);
            for tablet in 0..self.tablets.len() {
                // A replica that left is dropped (counted once), then the
                // datacenter short of replicas gets a new one below.
                let before = self.tablets[tablet].len();
                self.tablets[tablet].retain(|r| is_member(r.node));
                moved += before - self.tablets[tablet].len();
                let want = (*rf).min(dc_nodes.len());
                while self.tablets[tablet]
                    .iter()
                    .filter(|r| in_dc(r.node))
                    .count()
                    < want
                {
                    let Some(&target) = dc_nodes
                        .iter()
                        .filter(|&&n| !self.tablets[tablet].iter().any(|r| r.node == n))
                        .min_by_key(|&&n| (load(&self.tablets, n), n))
                    else {
                        break;
                    };
                    let shard = self.shard_for(tablet, target);
                    self.tablets[tablet].push(TabletReplica {
                        node: target,
                        shard,
                    });
                }
            }
            // Even out the load within the datacenter.
            loop {
                let loads: Vec<(usize, usize)> = dc_nodes
                    .iter()
                    .map(|&n| (load(&self.tablets, n), n))
                    .collect();
                let (Some(&(max, from)), Some(&(min, to))) =
                    (loads.iter().max(), loads.iter().min())
                else {
                    break;
                };
                if max <= min + 1 {
                    break;
                }
                let Some(tablet) = (0..self.tablets.len()).find(|&t| {
                    let r = &self.tablets[t];
                    r.iter().any(|r| r.node == from) && !r.iter().any(|r| r.node == to)
                }) else {
                    break;
                };
                let shard = self.shard_for(tablet, to);
                for r in self.tablets[tablet].iter_mut().filter(|r| r.node == from) {
                    *r = TabletReplica { node: to, shard };
                }
                moved += 1;
            }
        }
        moved
    }

    /// Splits every tablet in two (admin `tablets/split`), as Scylla does
    /// when tablets grow: both halves keep the replicas and shards of the
    /// tablet they come from, so a client's wider entries still route
    /// right. False when the count is at its ceiling.
    pub fn split(&mut self) -> bool {
        if self.tablets.len() >= MAX_TABLETS {
            return false;
        }
        self.tablets = self
            .tablets
            .drain(..)
            .flat_map(|replicas| [replicas.clone(), replicas])
            .collect();
        true
    }

    /// Merges sibling tablets `2i` and `2i + 1` (admin `tablets/merge`).
    /// Scylla first co-locates the siblings, then merges them: here the
    /// odd sibling moves to the even one's replicas. False at one tablet.
    pub fn merge(&mut self) -> bool {
        if self.tablets.len() <= 1 {
            return false;
        }
        self.tablets = self
            .tablets
            .chunks(2)
            .map(|siblings| siblings[0].clone())
            .collect();
        true
    }

    /// The shard a replica of `tablet` placed on `node` gets.
    fn shard_for(&self, tablet: usize, node: usize) -> u16 {
        let mix = splitmix64(self.seed ^ ((tablet as u64) << 20) ^ ((node as u64) << 8));
        ((mix + self.moves) % u64::from(self.shards)) as u16
    }

    pub fn count(&self) -> usize {
        self.tablets.len()
    }

    pub fn tablet_of(&self, token: i64) -> usize {
        tablet_index_of(token, self.count()).unwrap_or(0)
    }

    /// The routing payload describing tablet `index`.
    pub fn routing_info(&self, index: usize, nodes: &[NodeInfo]) -> TabletRoutingInfo {
        let count = self.count();
        TabletRoutingInfo {
            first_token: tablet_first_token_exclusive(index, count).unwrap_or(i64::MIN),
            last_token: tablet_last_token(index, count).unwrap_or(i64::MAX),
            replicas: self.tablets[index]
                .iter()
                .map(|r| (nodes[r.node].host_id, i32::from(r.shard)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::topology::build_nodes;

    #[test]
    fn split_keeps_replicas_and_merge_takes_the_even_siblings() {
        let nodes = build_nodes(&Config::default());
        let rf = vec![("datacenter1".to_owned(), 1)];
        let mut layout = TabletLayout::new(4, &rf, &nodes, 4, 7);
        let before = layout.tablets.clone();
        assert!(layout.split());
        assert_eq!(layout.count(), 8);
        for (i, replicas) in layout.tablets.iter().enumerate() {
            assert_eq!(replicas, &before[i / 2]);
        }
        assert!(layout.merge() && layout.merge());
        assert_eq!(layout.count(), 2);
        assert_eq!(layout.tablets, vec![before[0].clone(), before[2].clone()]);
        assert!(layout.merge() && !layout.merge());
    }

    #[test]
    fn rebalance_fills_a_new_node_and_empties_a_removed_one() {
        let config = Config::default();
        let mut nodes = build_nodes(&config);
        let rf = vec![("datacenter1".to_owned(), 2)];
        let mut layout = TabletLayout::new(16, &rf, &nodes, 4, 3);
        nodes.push(crate::topology::joining_node(&config, 3, None, None));
        let moved = layout.rebalance(&rf, &nodes);
        let load = |layout: &TabletLayout, n: usize| {
            layout
                .tablets
                .iter()
                .filter(|r| r.iter().any(|r| r.node == n))
                .count()
        };
        // 32 replicas over 4 nodes: 8 each.
        assert!(moved >= 8, "{moved}");
        for n in 0..4 {
            assert_eq!(load(&layout, n), 8, "node {n}");
        }
        nodes.remove(1);
        layout.rebalance(&rf, &nodes);
        assert_eq!(load(&layout, 1), 0);
        for replicas in &layout.tablets {
            assert_eq!(replicas.len(), 2);
            assert_ne!(replicas[0].node, replicas[1].node);
        }
        for n in [0, 2, 3] {
            let l = load(&layout, n);
            assert!((10..=11).contains(&l), "node {n}: {l}");
        }
    }

    #[test]
    fn placement_and_shuffle_move_tablets() {
        let nodes = build_nodes(&Config::default());
        let rf = vec![("datacenter1".to_owned(), 1)];
        let mut layout = TabletLayout::new(8, &rf, &nodes, 4, 42);
        assert_eq!(layout.count(), 8);
        let before = layout.tablets.clone();
        assert!(before.iter().all(|r| r.len() == 1));
        layout.shuffle(&rf, &nodes);
        for (old, new) in before.iter().zip(&layout.tablets) {
            assert_ne!(old, new, "every tablet moves");
        }
        let info = layout.routing_info(0, &nodes);
        assert_eq!(info.first_token, i64::MIN);
        assert_eq!(layout.tablet_of(i64::MAX), 7);
    }
}

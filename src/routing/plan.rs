//! The load-balancing plan: the ordered targets one request tries.
//!
//! Replicas come first (local datacenter, local rack first when configured),
//! spread by a per-request rotation so load evens out, except for LWT
//! statements which keep the replica order (primary first) so that Paxos
//! rounds on one partition do not contend. Other nodes follow, local
//! datacenter first, as fallbacks.

/// What the plan needs to know about one node.
pub trait PlanNode {
    fn datacenter(&self) -> &str;
    fn rack(&self) -> &str;
    /// Whether requests may go to the node now.
    fn usable(&self) -> bool;
}

/// A node to try, and the shard that owns the data there when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub node: usize,
    pub shard: Option<u16>,
}

/// Datacenter and rack preferences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancing {
    /// Replicas and nodes of this datacenter go first.
    pub local_dc: Option<String>,
    /// Within the local datacenter, replicas of this rack go first.
    pub local_rack: Option<String>,
    /// Whether nodes of other datacenters may be tried at all.
    pub permit_dc_failover: bool,
}

/// Node group of a target, in plan order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    LocalRack,
    LocalDc,
    Remote,
}

impl LoadBalancing {
    fn tier(&self, node: &impl PlanNode) -> Option<Tier> {
        match &self.local_dc {
            None => Some(Tier::LocalDc),
            Some(dc) if dc == node.datacenter() => match &self.local_rack {
                Some(rack) if rack == node.rack() => Some(Tier::LocalRack),
                _ => Some(Tier::LocalDc),
            },
            Some(_) if self.permit_dc_failover => Some(Tier::Remote),
            Some(_) => None,
        }
    }

    /// Writes the plan into `out` (cleared first). `replicas` are in ring
    /// (or tablet) order, primary first; `rotation` is a per-request
    /// pseudo-random number used to spread load.
    pub fn plan(
        &self,
        nodes: &[impl PlanNode],
        replicas: &[Target],
        is_lwt: bool,
        rotation: u64,
        out: &mut Vec<Target>,
    ) {
        out.clear();
        // Replicas, grouped by tier; within a tier rotated unless LWT.
        for tier in [Tier::LocalRack, Tier::LocalDc, Tier::Remote] {
            let start = out.len();
            for r in replicas {
                let Some(node) = nodes.get(r.node) else {
                    continue;
                };
                if node.usable()
                    && self.tier(node) == Some(tier)
                    && !out[start..].iter().any(|t| t.node == r.node)
                {
                    out.push(*r);
                }
            }
            if !is_lwt {
                rotate(&mut out[start..], rotation);
            }
        }
        // Every other live node, local datacenter first, rotated.
        let replica_count = out.len();
        for tier in [Tier::LocalRack, Tier::LocalDc, Tier::Remote] {
            let start = out.len();
            for (index, node) in nodes.iter().enumerate() {
                let wanted = match self.tier(node) {
                    Some(Tier::LocalRack) => tier == Tier::LocalRack,
                    Some(t) => t == tier,
                    None => false,
                };
                if node.usable() && wanted && !out[..replica_count].iter().any(|t| t.node == index)
                {
                    out.push(Target {
                        node: index,
                        shard: None,
                    });
                }
            }
            rotate(&mut out[start..], rotation);
        }
    }
}

fn rotate(targets: &mut [Target], rotation: u64) {
    if targets.len() > 1 {
        let by = (rotation % targets.len() as u64) as usize;
        targets.rotate_left(by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's facts on their own (the tests' nodes).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct NodeFacts<'a> {
        datacenter: &'a str,
        rack: &'a str,
        up: bool,
    }

    impl PlanNode for NodeFacts<'_> {
        fn datacenter(&self) -> &str {
            self.datacenter
        }
        fn rack(&self) -> &str {
            self.rack
        }
        fn usable(&self) -> bool {
            self.up
        }
    }

    fn nodes() -> Vec<NodeFacts<'static>> {
        vec![
            NodeFacts {
                datacenter: "dc1",
                rack: "r1",
                up: true,
            },
            NodeFacts {
                datacenter: "dc1",
                rack: "r2",
                up: true,
            },
            NodeFacts {
                datacenter: "dc2",
                rack: "r1",
                up: true,
            },
            NodeFacts {
                datacenter: "dc1",
                rack: "r1",
                up: false,
            },
            NodeFacts {
                datacenter: "dc2",
                rack: "r2",
                up: true,
            },
        ]
    }

    fn target(node: usize, shard: u16) -> Target {
        Target {
            node,
            shard: Some(shard),
        }
    }

    #[test]
    fn replicas_first_local_dc_first_and_down_nodes_skipped() {
        let lb = LoadBalancing {
            local_dc: Some("dc1".into()),
            local_rack: None,
            permit_dc_failover: true,
        };
        let replicas = [target(2, 0), target(1, 3), target(3, 1)];
        let mut out = Vec::new();
        lb.plan(&nodes(), &replicas, false, 0, &mut out);
        let order: Vec<usize> = out.iter().map(|t| t.node).collect();
        assert_eq!(order, vec![1, 2, 0, 4]);
        assert_eq!(out[0].shard, Some(3));
        assert_eq!(out[2].shard, None);
    }

    #[test]
    fn lwt_keeps_primary_first_and_others_rotate() {
        let lb = LoadBalancing::default();
        let replicas = [target(1, 0), target(0, 0), target(4, 2)];
        let mut out = Vec::new();
        for rotation in 0..6 {
            lb.plan(&nodes(), &replicas, true, rotation, &mut out);
            assert_eq!(out[0].node, 1);
            assert_eq!(out[1].node, 0);
        }
        let mut firsts = std::collections::HashSet::new();
        for rotation in 0..6 {
            lb.plan(&nodes(), &replicas, false, rotation, &mut out);
            firsts.insert(out[0].node);
            assert_eq!(out.len(), 4, "every live node once");
        }
        assert_eq!(firsts.len(), 3, "non-LWT load spreads over all replicas");
    }

    #[test]
    fn rack_preference_and_no_failover() {
        let lb = LoadBalancing {
            local_dc: Some("dc1".into()),
            local_rack: Some("r2".into()),
            permit_dc_failover: false,
        };
        let replicas = [target(0, 0), target(1, 1), target(2, 2)];
        let mut out = Vec::new();
        lb.plan(&nodes(), &replicas, false, 7, &mut out);
        let order: Vec<usize> = out.iter().map(|t| t.node).collect();
        assert_eq!(order, vec![1, 0]);
    }
}

//! `ClusterState`: an immutable snapshot of what the driver knows about the
//! cluster (nodes, keyspaces, the token ring and precomputed replicas),
//! replaced as a whole whenever something changes.
//!
//! Requests load the current snapshot with one atomic operation and never
//! wait for a refresh; a refresh builds the next snapshot off to the side.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::name_hash::NameMap;
use super::node::NodeRuntime;
use super::schema::KeyspaceInfo;
use crate::pool::NodePool;
use crate::routing::plan::PlanNode;
use crate::routing::replication::{
    PrecomputedReplicas, ReplicationStrategy, RingNode, StrategyId, TokenRing,
};
use crate::routing::token::Token;

/// One node as of this snapshot. Its index in [`ClusterState::nodes`] is
/// the node id used by the ring and the load-balancing plan.
#[derive(Clone)]
pub struct Node {
    pub host_id: [u8; 16],
    pub address: SocketAddr,
    pub datacenter: String,
    pub rack: String,
    pub tokens: Vec<Token>,
    /// False after a STATUS_CHANGE DOWN until the node is seen UP again.
    pub up: bool,
    /// Excluded by the host filter: kept for the token ring (replicas
    /// stay right), but no pool and never in a plan.
    pub filtered_out: bool,
    runtime: Option<Arc<NodeRuntime>>,
}

impl PlanNode for Node {
    fn datacenter(&self) -> &str {
        &self.datacenter
    }
    fn rack(&self) -> &str {
        &self.rack
    }
    fn usable(&self) -> bool {
        self.is_usable()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("host_id", &crate::cluster::format_uuid(&self.host_id))
            .field("address", &self.address)
            .field("datacenter", &self.datacenter)
            .field("rack", &self.rack)
            .field("tokens", &self.tokens.len())
            .field("up", &self.up)
            .field("filtered_out", &self.filtered_out)
            .field("has_pool", &self.runtime.is_some())
            .finish()
    }
}

impl Node {
    pub fn new(
        info: crate::cluster::topology::PeerInfo,
        up: bool,
        runtime: Option<Arc<NodeRuntime>>,
    ) -> Node {
        Node {
            host_id: info.host_id,
            address: info.address,
            datacenter: info.datacenter,
            rack: info.rack,
            tokens: info.tokens,
            up,
            filtered_out: false,
            runtime,
        }
    }

    /// A node the host filter excludes: no pool, never a target.
    pub fn filtered_out(info: crate::cluster::topology::PeerInfo, up: bool) -> Node {
        Node {
            filtered_out: true,
            ..Node::new(info, up, None)
        }
    }

    /// Whether requests may go to this node (up and not filtered out).
    pub fn is_usable(&self) -> bool {
        self.up && !self.filtered_out
    }

    /// The node's connection pool (absent only in metadata-only states).
    pub fn pool(&self) -> Option<&NodePool> {
        self.runtime.as_ref().map(|r| &r.pool)
    }

    pub fn runtime(&self) -> Option<&Arc<NodeRuntime>> {
        self.runtime.as_ref()
    }
}

/// The ring and the replica tables built from it; shared between
/// snapshots that only differ in node status.
struct Routing {
    ring: TokenRing,
    replicas: PrecomputedReplicas,
    /// Precomputed strategy of every vnode keyspace.
    strategy_ids: NameMap<String, StrategyId>,
}

/// Everything routing needs, frozen at one moment.
pub struct ClusterState {
    nodes: Vec<Node>,
    by_host_id: NameMap<[u8; 16], usize>,
    keyspaces: NameMap<String, KeyspaceInfo>,
    routing: Arc<Routing>,
    /// Increases with every published snapshot.
    generation: u64,
}

impl std::fmt::Debug for ClusterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterState")
            .field("generation", &self.generation)
            .field("nodes", &self.nodes)
            .field("keyspaces", &self.keyspaces.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ClusterState {
    /// A state with no nodes, before the first metadata fetch.
    pub fn empty() -> ClusterState {
        ClusterState::build(Vec::new(), HashMap::new(), 0)
    }

    /// Builds the ring and the replica tables of every strategy used by a
    /// vnode keyspace (tablet keyspaces route by the tablet map instead).
    pub fn build(
        nodes: Vec<Node>,
        keyspaces: HashMap<String, KeyspaceInfo>,
        generation: u64,
    ) -> ClusterState {
        let keyspaces: NameMap<String, KeyspaceInfo> = keyspaces.into_iter().collect();
        let ring_nodes: Vec<RingNode> = nodes
            .iter()
            .map(|n| RingNode {
                dc: n.datacenter.clone(),
                rack: n.rack.clone(),
                tokens: n.tokens.clone(),
            })
            .collect();
        let ring = TokenRing::new(&ring_nodes);
        let vnode_keyspaces = || keyspaces.iter().filter(|(_, k)| !k.uses_tablets);
        let replicas = PrecomputedReplicas::new(&ring, vnode_keyspaces().map(|(_, k)| &k.strategy));
        let strategy_ids = vnode_keyspaces()
            .filter_map(|(name, k)| Some((name.clone(), replicas.strategy_id(&k.strategy)?)))
            .collect();
        let by_host_id = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.host_id, i))
            .collect();
        ClusterState {
            nodes,
            by_host_id,
            keyspaces,
            routing: Arc::new(Routing {
                ring,
                replicas,
                strategy_ids,
            }),
            generation,
        }
    }

    /// A copy with node statuses changed by `update`, sharing the ring.
    pub fn with_status(&self, generation: u64, mut update: impl FnMut(&mut Node)) -> ClusterState {
        let mut nodes = self.nodes.clone();
        nodes.iter_mut().for_each(&mut update);
        ClusterState {
            nodes,
            by_host_id: self.by_host_id.clone(),
            keyspaces: self.keyspaces.clone(),
            routing: self.routing.clone(),
            generation,
        }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, index: usize) -> Option<&Node> {
        self.nodes.get(index)
    }

    pub fn node_index_by_host_id(&self, host_id: &[u8; 16]) -> Option<usize> {
        self.by_host_id.get(host_id).copied()
    }

    /// The node at `ip` (events name nodes by address).
    pub fn node_index_by_ip(&self, ip: IpAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.address.ip() == ip)
    }

    pub fn keyspace(&self, name: &str) -> Option<&KeyspaceInfo> {
        self.keyspaces.get(name)
    }

    pub fn keyspaces(&self) -> &NameMap<String, KeyspaceInfo> {
        &self.keyspaces
    }

    pub fn ring(&self) -> &TokenRing {
        &self.routing.ring
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Replica node indexes of `token` in a vnode keyspace, primary first.
    /// Empty for unknown or tablet keyspaces. Allocation-free unless the
    /// strategy was too large to precompute.
    pub fn vnode_replicas(&self, keyspace: &str, token: Token) -> Cow<'_, [usize]> {
        let routing = &*self.routing;
        if let Some(&id) = routing.strategy_ids.get(keyspace) {
            return Cow::Borrowed(routing.replicas.replicas_by_id(id, token));
        }
        match self.keyspaces.get(keyspace) {
            Some(k) if !k.uses_tablets => Cow::Owned(routing.ring.replicas(&k.strategy, token)),
            _ => Cow::Borrowed(&[]),
        }
    }

    /// Replicas of `token` under an explicit strategy (for callers that
    /// know the strategy but not a keyspace).
    pub fn replicas_for_strategy(
        &self,
        strategy: &ReplicationStrategy,
        token: Token,
    ) -> Vec<usize> {
        match self.routing.replicas.replicas(strategy, token) {
            Some(r) => r.to_vec(),
            None => self.routing.ring.replicas(strategy, token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::PeerInfo;

    fn peer(i: u8, tokens: &[i64]) -> Node {
        Node::new(
            PeerInfo {
                host_id: [i; 16],
                address: SocketAddr::new([127, 0, 0, i].into(), 9042),
                datacenter: "dc1".into(),
                rack: "r1".into(),
                tokens: tokens.iter().map(|&t| Token::new(t)).collect(),
            },
            true,
            None,
        )
    }

    #[test]
    fn vnode_replicas_follow_the_keyspace_strategy() {
        let nodes = vec![peer(1, &[-100, 100]), peer(2, &[0]), peer(3, &[200])];
        let mut keyspaces = HashMap::new();
        keyspaces.insert(
            "simple".to_owned(),
            KeyspaceInfo {
                strategy: ReplicationStrategy::Simple { rf: 2 },
                uses_tablets: false,
                schema: Default::default(),
            },
        );
        keyspaces.insert(
            "tab".to_owned(),
            KeyspaceInfo {
                strategy: ReplicationStrategy::NetworkTopology {
                    per_dc: vec![("dc1".into(), 1)],
                },
                uses_tablets: true,
                schema: Default::default(),
            },
        );
        let state = ClusterState::build(nodes, keyspaces, 1);
        assert_eq!(&*state.vnode_replicas("simple", Token::new(-5)), &[1, 0]);
        assert_eq!(&*state.vnode_replicas("simple", Token::new(150)), &[2, 0]);
        assert_eq!(&*state.vnode_replicas("simple", Token::new(300)), &[0, 1]);
        assert!(state.vnode_replicas("tab", Token::new(0)).is_empty());
        assert!(state.vnode_replicas("nope", Token::new(0)).is_empty());
        assert_eq!(state.node_index_by_host_id(&[3; 16]), Some(2));
        assert_eq!(state.node_index_by_ip([127, 0, 0, 2].into()), Some(1));

        let down = state.with_status(2, |n| n.up = n.host_id != [2; 16]);
        assert!(!down.nodes()[1].up && down.nodes()[0].up);
        assert_eq!(&*down.vnode_replicas("simple", Token::new(-5)), &[1, 0]);
    }
}

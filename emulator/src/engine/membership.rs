//! Who is in the ring and who is alive: the engine's view of topology
//! changes (`/admin/nodes/add`, `/admin/nodes/{n}/remove`) and of nodes
//! that are down (`/admin/restart`, `/admin/stop`).
//!
//! Nodes keep their index for life: a removed node stays in `nodes` with
//! no tokens (it owns nothing and is never a tablet replica), so tablet
//! replicas, metrics and ring ids never need renumbering.

use scylla_shard::routing::replication::{RingNode, TokenRing};
use scylla_shard::routing::token::Token;

use crate::topology::NodeInfo;

/// One consistent view of the ring.
pub struct Membership {
    /// Every node ever in the cluster, by index.
    pub nodes: Vec<NodeInfo>,
    /// Whether node `i` is (still) a member of the ring.
    pub members: Vec<bool>,
    /// Ring over all nodes; removed nodes have no tokens in it.
    pub ring: TokenRing,
}

impl Membership {
    pub fn new(nodes: Vec<NodeInfo>, members: Vec<bool>) -> Membership {
        let ring_nodes: Vec<RingNode> = nodes
            .iter()
            .zip(&members)
            .map(|(n, &member)| RingNode {
                dc: n.datacenter.clone(),
                rack: n.rack.clone(),
                tokens: if member {
                    n.tokens.iter().map(|t| Token::new(*t)).collect()
                } else {
                    Vec::new()
                },
            })
            .collect();
        Membership {
            ring: TokenRing::new(&ring_nodes),
            nodes,
            members,
        }
    }

    /// The nodes in the ring now.
    pub fn member_nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes
            .iter()
            .zip(&self.members)
            .filter(|(_, &m)| m)
            .map(|(n, _)| n)
    }

    pub fn is_member(&self, index: usize) -> bool {
        self.members.get(index).copied().unwrap_or(false)
    }

    /// The same ring with `node` joined.
    pub fn with_node(&self, node: NodeInfo) -> Membership {
        let mut nodes = self.nodes.clone();
        let mut members = self.members.clone();
        debug_assert_eq!(node.index, nodes.len());
        nodes.push(node);
        members.push(true);
        Membership::new(nodes, members)
    }

    /// The same ring without node `index`.
    pub fn without_node(&self, index: usize) -> Membership {
        let mut members = self.members.clone();
        if let Some(m) = members.get_mut(index) {
            *m = false;
        }
        Membership::new(self.nodes.clone(), members)
    }
}

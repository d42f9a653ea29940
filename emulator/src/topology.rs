//! The emulated nodes: addresses, datacenters, racks, host ids, vnode tokens.

use std::net::Ipv4Addr;

use crate::config::Config;

/// The fixed facts of one node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub index: usize,
    /// Where the node listens.
    pub ip: Ipv4Addr,
    /// The address it names itself by to clients (system tables, events).
    pub advertised_ip: Ipv4Addr,
    pub host_id: [u8; 16],
    pub datacenter: String,
    pub rack: String,
    /// Vnode tokens, sorted.
    pub tokens: Vec<i64>,
}

/// Host id of node `index`: `00000000-0000-4000-8000-<index+1 as 12 hex>`.
pub fn host_id(index: usize) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[6] = 0x40;
    id[8] = 0x80;
    id[10..].copy_from_slice(&((index as u64 + 1).to_be_bytes()[2..]));
    id
}

/// Canonical text form of a uuid.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// splitmix64: a tiny deterministic generator for token jitter.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds every node. Nodes are dealt round-robin over datacenters, then
/// over racks within a datacenter. Tokens interleave evenly around the ring
/// (every node owns about the same share) with a deterministic jitter.
pub fn build_nodes(config: &Config) -> Vec<NodeInfo> {
    let n = config.nodes as u64;
    let v = config.vnodes as u64;
    let total = n * v;
    let step = u64::MAX / total;
    let dcs = config.datacenters.len();
    (0..config.nodes)
        .map(|index| {
            let mut tokens: Vec<i64> = (0..v)
                .map(|vnode| {
                    let slot = vnode * n + index as u64;
                    let jitter = splitmix64(slot) % (step / 4 + 1);
                    (slot.wrapping_mul(step).wrapping_add(jitter) as i64)
                        .wrapping_add(i64::MIN)
                        .max(i64::MIN + 1)
                })
                .collect();
            tokens.sort_unstable();
            tokens.dedup();
            NodeInfo {
                index,
                ip: config.node_ip(index),
                advertised_ip: config.advertised_ip(index),
                host_id: host_id(index),
                datacenter: config.datacenters[index % dcs].clone(),
                rack: format!("rack{}", (index / dcs) % config.racks + 1),
                tokens,
            }
        })
        .collect()
}

/// A node joining a running cluster (`/admin/nodes/add`): the next
/// address, a new host id, and `vnodes` tokens drawn at random (seeded by
/// its index) as a bootstrapping node picks them, so it takes about
/// 1/(n+1) of the ring from the others. Datacenter and rack default to
/// the round-robin deal of the initial nodes.
pub fn joining_node(
    config: &Config,
    index: usize,
    datacenter: Option<String>,
    rack: Option<String>,
) -> NodeInfo {
    let dcs = config.datacenters.len();
    let mut tokens: Vec<i64> = (0..config.vnodes as u64)
        .map(|vnode| {
            let draw = splitmix64(((index as u64) << 32) ^ vnode ^ 0x5eed_0000_0000);
            (draw as i64).max(i64::MIN + 1)
        })
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    NodeInfo {
        index,
        ip: config.node_ip(index),
        advertised_ip: config.advertised_ip(index),
        host_id: host_id(index),
        datacenter: datacenter.unwrap_or_else(|| config.datacenters[index % dcs].clone()),
        rack: rack.unwrap_or_else(|| format!("rack{}", (index / dcs) % config.racks + 1)),
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_deterministic_and_spread() {
        let config = Config {
            nodes: 4,
            vnodes: 8,
            datacenters: vec!["dc1".into(), "dc2".into()],
            racks: 2,
            ..Config::default()
        };
        let nodes = build_nodes(&config);
        assert_eq!(nodes.len(), 4);
        assert_eq!(
            format_uuid(&nodes[0].host_id),
            "00000000-0000-4000-8000-000000000001"
        );
        assert_eq!(nodes[1].datacenter, "dc2");
        assert_eq!(nodes[2].rack, "rack2");
        let mut all: Vec<i64> = nodes.iter().flat_map(|n| n.tokens.clone()).collect();
        assert_eq!(all.len(), 32);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 32);
        assert_eq!(build_nodes(&config)[3].tokens, nodes[3].tokens);
    }
}

//! What a user can observe about a session: per node connections and
//! requests per shard, tablet map size, and request totals. Counting is
//! atomic adds only, so it costs the request path no lock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cluster::{ClusterState, TabletStats};

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMetrics {
    pub address: SocketAddr,
    pub host_id: [u8; 16],
    pub datacenter: String,
    pub rack: String,
    /// As far as the driver knows (STATUS_CHANGE events).
    pub up: bool,
    /// Known once a connection reported the node's sharding.
    pub nr_shards: Option<u16>,
    /// Live connections per shard (one entry for servers without shards).
    pub connections_per_shard: Vec<usize>,
    /// Requests sent per shard (each attempt counts).
    pub requests_per_shard: Vec<u64>,
    /// Requests sent on connections whose shard was unknown.
    pub requests_other: u64,
    /// Whether new connections to this node use the shard-aware port.
    pub shard_aware_port_in_use: bool,
}

/// A session's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMetrics {
    pub nodes: Vec<NodeMetrics>,
    pub tablets: TabletStats,
    /// Requests (execute, batch, prepare) accepted from the caller.
    pub requests: u64,
    /// Of those, the ones that failed.
    pub errors: u64,
    /// Extra attempts beyond the first of each request.
    pub retries: u64,
    /// Requests that failed with a client-side timeout.
    pub timeouts: u64,
    /// Prepared statements the session's cache keeps alive.
    pub prepared_cached: usize,
}

/// Session-wide totals.
#[derive(Debug, Default)]
pub struct Totals {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub retries: AtomicU64,
    pub timeouts: AtomicU64,
}

impl Totals {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Gathers the metrics from the state's node runtimes.
pub fn collect(state: &ClusterState, tablets: TabletStats, totals: &Totals) -> SessionMetrics {
    let nodes = state
        .nodes()
        .iter()
        .map(|node| {
            let (connections_per_shard, nr_shards, shard_aware_port_in_use) = node
                .pool()
                .map(|p| {
                    (
                        p.connection_counts(),
                        p.nr_shards(),
                        p.shard_aware_port_in_use(),
                    )
                })
                .unwrap_or_default();
            let (mut requests_per_shard, requests_other) = node
                .runtime()
                .map(|r| r.requests.snapshot())
                .unwrap_or_default();
            if let Some(n) = nr_shards {
                requests_per_shard.resize(usize::from(n).max(requests_per_shard.len()), 0);
            }
            NodeMetrics {
                address: node.address,
                host_id: node.host_id,
                datacenter: node.datacenter.clone(),
                rack: node.rack.clone(),
                up: node.up,
                nr_shards,
                connections_per_shard,
                requests_per_shard,
                requests_other,
                shard_aware_port_in_use,
            }
        })
        .collect();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    SessionMetrics {
        nodes,
        tablets,
        requests: get(&totals.requests),
        errors: get(&totals.errors),
        retries: get(&totals.retries),
        timeouts: get(&totals.timeouts),
        prepared_cached: 0,
    }
}

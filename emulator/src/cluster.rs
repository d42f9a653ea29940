//! Shared state of the emulated cluster: its nodes and their run-time state.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use scylla_shard::protocol::response::Event;
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::engine::{Database, PreparedStatement};
use crate::metrics::NodeMetrics;
use crate::topology::{build_nodes, NodeInfo};

/// Nodes an emulator may have over its life, added ones included (the
/// last octet of a loopback block).
pub const MAX_NODES: usize = 250;

/// One row of `system.clients`.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub address: IpAddr,
    pub port: u16,
    pub shard: u16,
    pub connection_stage: String,
    pub driver_name: Option<String>,
    pub driver_version: Option<String>,
    pub username: Option<String>,
}

/// A node: fixed facts plus what changes while it runs.
pub struct Node {
    pub info: NodeInfo,
    pub metrics: NodeMetrics,
    /// Incremented on every restart; `up` says whether CQL is served.
    pub lifecycle: watch::Sender<Lifecycle>,
    /// Prepared statements by id; cleared by a restart, as on a real node.
    pub prepared: Mutex<HashMap<Vec<u8>, Arc<PreparedStatement>>>,
    /// Events for this node's connections that REGISTERed.
    pub events: broadcast::Sender<Event>,
    /// Extra latency added to every response (admin `delay`).
    pub delay_us: AtomicU64,
    /// Errors to answer instead of serving (admin `fail`).
    pub faults: crate::fault::Faults,
    pub clients: Mutex<BTreeMap<u64, ClientInfo>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub up: bool,
    pub generation: u64,
    /// Decommissioned: down for good, its listeners gone.
    pub removed: bool,
}

impl Node {
    pub fn is_up(&self) -> bool {
        self.lifecycle.borrow().up
    }

    pub fn is_removed(&self) -> bool {
        self.lifecycle.borrow().removed
    }

    fn new(info: NodeInfo, shards: u16) -> Node {
        let (lifecycle, _) = watch::channel(Lifecycle {
            up: true,
            generation: 0,
            removed: false,
        });
        Node {
            metrics: NodeMetrics::new(shards),
            info,
            lifecycle,
            prepared: Mutex::new(HashMap::new()),
            events: broadcast::channel(1024).0,
            delay_us: AtomicU64::new(0),
            faults: Default::default(),
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets whether CQL is served; a new generation each time.
    pub fn set_up(&self, up: bool) -> u64 {
        let mut generation = 0;
        self.lifecycle.send_modify(|l| {
            l.generation += 1;
            l.up = up && !l.removed;
            generation = l.generation;
        });
        generation
    }

    pub fn delay_us(&self) -> u64 {
        self.delay_us.load(Ordering::Relaxed)
    }

    pub fn address(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.info.ip), port)
    }
}

pub struct Cluster {
    pub config: Config,
    /// Every node ever in the cluster, by index (removed ones stay, down
    /// for good, so indexes and their counters remain).
    nodes: RwLock<Vec<Arc<Node>>>,
    pub db: Database,
    /// Serializes topology changes (add, remove).
    pub topology_change: tokio::sync::Mutex<()>,
    next_connection_id: AtomicU64,
}

impl Cluster {
    pub fn new(config: Config) -> Arc<Cluster> {
        let infos = build_nodes(&config);
        let db = Database::new(&config, &infos);
        let nodes = infos
            .into_iter()
            .map(|info| Arc::new(Node::new(info, config.shards)))
            .collect();
        Arc::new(Cluster {
            config,
            nodes: RwLock::new(nodes),
            db,
            topology_change: tokio::sync::Mutex::new(()),
            next_connection_id: AtomicU64::new(1),
        })
    }

    pub fn connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Every node ever in the cluster, removed ones included.
    pub fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.read().unwrap().clone()
    }

    pub fn node(&self, index: usize) -> Option<Arc<Node>> {
        self.nodes.read().unwrap().get(index).cloned()
    }

    /// Index the next added node gets.
    pub fn next_index(&self) -> usize {
        self.nodes.read().unwrap().len()
    }

    /// Creates the run-time state of a node joining the cluster (its
    /// listeners are started by the caller).
    pub fn push_node(&self, info: NodeInfo) -> Arc<Node> {
        let node = Arc::new(Node::new(info, self.config.shards));
        self.nodes.write().unwrap().push(node.clone());
        node
    }

    /// Sends an event to the registered clients of every node that is up,
    /// except `skip` (a node does not announce itself going down).
    pub fn broadcast(&self, event: Event, skip: Option<usize>) {
        for node in self.nodes() {
            if Some(node.info.index) != skip && node.is_up() {
                // No receivers is fine: nobody registered.
                let _ = node.events.send(event.clone());
            }
        }
    }
}

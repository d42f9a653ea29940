//! Shared state of the emulated cluster: its nodes and their run-time state.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use scylla_shard::protocol::response::Event;
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::engine::{Database, PreparedStatement};
use crate::metrics::NodeMetrics;
use crate::topology::{build_nodes, NodeInfo};

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
}

impl Node {
    pub fn is_up(&self) -> bool {
        self.lifecycle.borrow().up
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
    pub nodes: Vec<Arc<Node>>,
    pub db: Database,
    next_connection_id: AtomicU64,
}

impl Cluster {
    pub fn new(config: Config) -> Arc<Cluster> {
        let infos = build_nodes(&config);
        let db = Database::new(&config, &infos);
        let nodes = infos
            .into_iter()
            .map(|info| {
                let (lifecycle, _) = watch::channel(Lifecycle {
                    up: true,
                    generation: 0,
                });
                Arc::new(Node {
                    metrics: NodeMetrics::new(config.shards),
                    info,
                    lifecycle,
                    prepared: Mutex::new(HashMap::new()),
                    events: broadcast::channel(1024).0,
                    delay_us: AtomicU64::new(0),
                    faults: Default::default(),
                    clients: Mutex::new(BTreeMap::new()),
                })
            })
            .collect();
        Arc::new(Cluster {
            config,
            nodes,
            db,
            next_connection_id: AtomicU64::new(1),
        })
    }

    pub fn connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends an event to the registered clients of every node that is up,
    /// except `skip` (a node does not announce itself going down).
    pub fn broadcast(&self, event: Event, skip: Option<usize>) {
        for node in &self.nodes {
            if Some(node.info.index) != skip && node.is_up() {
                // No receivers is fine: nobody registered.
                let _ = node.events.send(event.clone());
            }
        }
    }
}

//! A cluster of one endpoint: the communicator (a local daemon that holds
//! the real, shard-aware session and looks like a single node).
//!
//! There is no control connection and no topology: the state names one
//! node with no tokens, so no request is routed and every request goes to
//! its pool, which keeps one connection (the daemon advertises no shards)
//! and reopens it with backoff when the daemon restarts. Metadata refreshes
//! have nothing to read and succeed at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::node::NodeRuntime;
use super::state::{ClusterState, Node};
use super::tablets::TabletMap;
use super::topology::PeerInfo;
use super::worker::{Cluster, Command, Shared};
use crate::pool::{NodePool, PoolConfig};

/// Host id of the one node (the daemon's own id is not needed: nothing
/// routes by it).
const ENDPOINT_HOST_ID: [u8; 16] = [0; 16];

impl Cluster {
    /// The cluster of one endpoint at `address` (a placeholder when the
    /// pool's connections go to a Unix socket, see
    /// `ConnectionConfig::unix_socket`). Returns at once; the pool opens
    /// its connection in the background.
    pub fn single_endpoint(address: SocketAddr, mut pool: PoolConfig) -> Cluster {
        // The daemon picks shards itself; one connection carries 32768 streams.
        pool.shard_aware_port = false;
        pool.connections_per_shard = 1;
        pool.connection.tablets_routing = false;
        let keyspace = pool.connection.keyspace.clone();
        let runtime = Arc::new(NodeRuntime::new(NodePool::new(address, Arc::new(pool))));
        let node = Node::new(
            PeerInfo {
                host_id: ENDPOINT_HOST_ID,
                address,
                datacenter: String::new(),
                rack: String::new(),
                tokens: Vec::new(),
            },
            true,
            Some(runtime.clone()),
        );
        let state = ClusterState::build(vec![node], HashMap::new(), 1);
        let shared = Arc::new(Shared::new(state, Arc::new(TabletMap::new())));
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(serve(rx, runtime));
        Cluster {
            shared,
            commands,
            keyspace: Arc::new(Mutex::new(keyspace)),
        }
    }
}

/// The endpoint's worker: refreshes succeed (nothing to read), shutdown
/// closes the pool.
async fn serve(mut commands: mpsc::UnboundedReceiver<Command>, runtime: Arc<NodeRuntime>) {
    while let Some(command) = commands.recv().await {
        match command {
            Command::Refresh(reply) => {
                let _ = reply.send(true);
            }
            Command::Shutdown(reply) => {
                runtime.pool.close().await;
                let _ = reply.send(());
                return;
            }
        }
    }
    runtime.pool.close().await;
}

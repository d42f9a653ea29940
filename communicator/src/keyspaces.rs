//! Connections bound to a keyspace, for clients that switched to one with
//! `USE` and send statements with unqualified table names.
//!
//! The daemon's pools are shared by every client, so they never follow a
//! client's `USE`. A QUERY, PREPARE or BATCH of such a client first goes
//! through the pools (routed like any other) when they have no keyspace
//! themselves: an unqualified name then fails with "No keyspace has been
//! specified" and nothing ran, and only then is the statement sent on a
//! connection opened in the client's keyspace (one per keyspace, to a live
//! node, at most `limits.keyspace_connections` of them). Prepared
//! statements carry their keyspace, so an EXECUTE always takes the pools.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use scylla_shard::connection::{open, Connection, ConnectionConfig};
use scylla_shard::protocol::response::error_code;
use scylla_shard::protocol::ErrorBody;
use scylla_shard::session::{DriverError, Session};

/// What the server says when a statement names no keyspace and the
/// connection is in none (Scylla and Cassandra alike).
const NO_KEYSPACE: &str = "No keyspace has been specified";

/// Whether `error` means the statement needs its client's keyspace.
pub fn needs_keyspace(error: &DriverError) -> bool {
    matches!(error, DriverError::Server(e) if e.code == error_code::INVALID && e.message.contains(NO_KEYSPACE))
}

pub struct KeyspaceConnections {
    config: ConnectionConfig,
    limit: usize,
    open: Mutex<HashMap<String, Connection>>,
    opened: AtomicU64,
    rotation: AtomicU64,
}

impl KeyspaceConnections {
    pub fn new(mut config: ConnectionConfig, limit: usize) -> KeyspaceConnections {
        config.tablets_routing = false;
        KeyspaceConnections {
            config,
            limit,
            open: Mutex::new(HashMap::new()),
            opened: AtomicU64::new(0),
            rotation: AtomicU64::new(0),
        }
    }

    /// A live connection in `keyspace`, opened if needed.
    pub async fn get(&self, session: &Session, keyspace: &str) -> Result<Connection, DriverError> {
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            match open.get(keyspace) {
                Some(conn) if !conn.is_broken() => return Ok(conn.clone()),
                Some(_) => {
                    open.remove(keyspace);
                }
                None => {}
            }
            open.retain(|_, c| !c.is_broken());
            if open.len() >= self.limit {
                return Err(DriverError::Server(ErrorBody::new(
                    error_code::OVERLOADED,
                    format!(
                        "the communicator already keeps connections for {} keyspaces used with USE \
                         (limits.keyspace_connections); qualify table names with their keyspace",
                        self.limit
                    ),
                )));
            }
        }
        let state = session.cluster_state();
        let mut nodes: Vec<_> = state
            .nodes()
            .iter()
            .filter(|n| n.up)
            .map(|n| n.address)
            .collect();
        if nodes.is_empty() {
            nodes = state.nodes().iter().map(|n| n.address).collect();
        }
        if !nodes.is_empty() {
            let by = self.rotation.fetch_add(1, Ordering::Relaxed) as usize % nodes.len();
            nodes.rotate_left(by);
        }
        let mut config = self.config.clone();
        config.keyspace = Some(keyspace.to_owned());
        let mut reasons = Vec::new();
        for address in nodes {
            match open(address, None, &config).await {
                Ok((conn, _)) => {
                    self.opened.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%address, keyspace, "opened a connection for USE {keyspace}");
                    let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                    let kept = open.entry(keyspace.to_owned()).or_insert(conn);
                    return Ok(kept.clone());
                }
                Err(scylla_shard::connection::ConnectionError::Server(e)) => {
                    return Err(DriverError::Server(e))
                }
                Err(e) => reasons.push(format!("{address}: {e}")),
            }
        }
        Err(DriverError::NoHostAvailable(reasons))
    }

    /// (connections open now, opened in all).
    #[allow(dead_code)] // read by the metrics endpoint (next commit)
    pub fn counts(&self) -> (usize, u64) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (
            open.values().filter(|c| !c.is_broken()).count(),
            self.opened.load(Ordering::Relaxed),
        )
    }

    pub async fn close(&self) {
        let all: Vec<Connection> = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.drain().map(|(_, c)| c).collect()
        };
        for conn in all {
            conn.close().await;
        }
    }
}

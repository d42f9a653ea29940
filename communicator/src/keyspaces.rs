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
use std::net::SocketAddr;
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
    /// keyspace -> node -> its connection in that keyspace.
    open: Mutex<HashMap<String, HashMap<SocketAddr, Connection>>>,
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

    /// A live connection in `keyspace` (any node), opened if needed.
    pub async fn get(&self, session: &Session, keyspace: &str) -> Result<Connection, DriverError> {
        if let Some(conn) = self.live(keyspace, None)? {
            return Ok(conn);
        }
        let mut nodes = up_nodes(session);
        if !nodes.is_empty() {
            let by = self.rotation.fetch_add(1, Ordering::Relaxed) as usize % nodes.len();
            nodes.rotate_left(by);
        }
        let mut reasons = Vec::new();
        for address in nodes {
            match self.open_on(keyspace, address).await {
                Ok(conn) => return Ok(conn),
                Err(DriverError::Server(e)) => return Err(DriverError::Server(e)),
                Err(e) => reasons.push(format!("{address}: {e}")),
            }
        }
        Err(DriverError::NoHostAvailable(reasons))
    }

    /// A connection in `keyspace` to every node that is up (at least one):
    /// where an unqualified statement is prepared, since an EXECUTE of it
    /// goes to its replicas and a node cannot re-prepare it without the
    /// keyspace (protocol v4 has no keyspace per request).
    pub async fn on_every_node(
        &self,
        session: &Session,
        keyspace: &str,
    ) -> Result<Vec<Connection>, DriverError> {
        let mut conns = Vec::new();
        let mut reasons = Vec::new();
        for address in up_nodes(session) {
            let conn = match self.live(keyspace, Some(address))? {
                Some(conn) => Ok(conn),
                None => self.open_on(keyspace, address).await,
            };
            match conn {
                Ok(conn) => conns.push(conn),
                Err(DriverError::Server(e)) => return Err(DriverError::Server(e)),
                Err(e) => reasons.push(format!("{address}: {e}")),
            }
        }
        if conns.is_empty() {
            return Err(DriverError::NoHostAvailable(reasons));
        }
        Ok(conns)
    }

    /// A live cached connection (to `node`, or any); refuses a keyspace
    /// past the limit.
    fn live(
        &self,
        keyspace: &str,
        node: Option<SocketAddr>,
    ) -> Result<Option<Connection>, DriverError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(by_node) = open.get_mut(keyspace) {
            by_node.retain(|_, c| !c.is_broken());
            let found = match node {
                Some(address) => by_node.get(&address),
                None => by_node.values().next(),
            };
            if let Some(conn) = found {
                return Ok(Some(conn.clone()));
            }
            return Ok(None);
        }
        open.retain(|_, by_node| {
            by_node.retain(|_, c| !c.is_broken());
            !by_node.is_empty()
        });
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
        Ok(None)
    }

    async fn open_on(
        &self,
        keyspace: &str,
        address: SocketAddr,
    ) -> Result<Connection, DriverError> {
        let mut config = self.config.clone();
        config.keyspace = Some(keyspace.to_owned());
        match open(address, None, &config).await {
            Ok((conn, _)) => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%address, keyspace, "opened a connection for USE {keyspace}");
                let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                let kept = open
                    .entry(keyspace.to_owned())
                    .or_default()
                    .entry(address)
                    .or_insert(conn);
                Ok(kept.clone())
            }
            Err(scylla_shard::connection::ConnectionError::Server(e)) => {
                Err(DriverError::Server(e))
            }
            Err(e) => Err(DriverError::ConnectionBroken(e.to_string())),
        }
    }

    /// (connections open now, opened in all).
    pub fn counts(&self) -> (usize, u64) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (
            open.values()
                .flat_map(|by_node| by_node.values())
                .filter(|c| !c.is_broken())
                .count(),
            self.opened.load(Ordering::Relaxed),
        )
    }

    pub async fn close(&self) {
        let all: Vec<Connection> = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.drain()
                .flat_map(|(_, by_node)| by_node.into_values())
                .collect()
        };
        for conn in all {
            conn.close().await;
        }
    }
}

/// The nodes that are up (all of them when none is).
fn up_nodes(session: &Session) -> Vec<SocketAddr> {
    let state = session.cluster_state();
    let up: Vec<_> = state
        .nodes()
        .iter()
        .filter(|n| n.up)
        .map(|n| n.address)
        .collect();
    if up.is_empty() {
        return state.nodes().iter().map(|n| n.address).collect();
    }
    up
}

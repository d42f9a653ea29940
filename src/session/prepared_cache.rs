//! Prepared statements: a per-session cache keyed by (keyspace, text), and
//! preparing on one connection of every node, as the drivers do, so that
//! any coordinator can execute the id without an UNPREPARED round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::types::{DriverError, Prepared};
use crate::cluster::ClusterState;
use crate::connection::{Connection, ConnectionConfig, RequestError};
use crate::protocol::response::ResultBody;
use crate::protocol::{Request, Response};

type Key = (Option<String>, String);

/// Statements prepared by this session.
#[derive(Default)]
pub struct PreparedCache {
    map: Mutex<HashMap<Key, Arc<Prepared>>>,
}

impl PreparedCache {
    pub fn get(&self, keyspace: Option<&str>, query: &str) -> Option<Arc<Prepared>> {
        let key = (keyspace.map(str::to_owned), query.to_owned());
        self.lock().get(&key).cloned()
    }

    pub fn insert(&self, prepared: Arc<Prepared>) -> Arc<Prepared> {
        let key = (prepared.keyspace.clone(), prepared.query.clone());
        self.lock().entry(key).or_insert(prepared).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Prepared>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One PREPARE on one connection.
pub async fn prepare_on(
    conn: &Connection,
    query: &str,
    timeout: Duration,
) -> Result<crate::protocol::response::Prepared, DriverError> {
    let request = Request::Prepare {
        query: query.to_owned(),
    };
    let frame = conn
        .send_with_timeout(&request, &Default::default(), timeout)
        .await
        .map_err(|e| request_error(e, timeout))?;
    match frame.response {
        Response::Result(ResultBody::Prepared(p)) => Ok(p),
        Response::Error(e) => Err(DriverError::Server(e)),
        other => Err(DriverError::Protocol(format!(
            "PREPARE answered with {:?}",
            other.opcode()
        ))),
    }
}

/// Prepares `query` on one connection of every node that has one, all at
/// once. The first answer gives the metadata; every node must agree on the
/// id. Fails only if no node prepared it.
pub async fn prepare_everywhere(
    state: &ClusterState,
    query: &str,
    keyspace: Option<String>,
    timeout: Duration,
) -> Result<Prepared, DriverError> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut reasons = Vec::new();
    for node in state.nodes() {
        match node.pool().and_then(|p| p.connection(None)) {
            Some(conn) => {
                let query = query.to_owned();
                let address = node.address;
                tasks.spawn(async move { (address, prepare_on(&conn, &query, timeout).await) });
            }
            None => reasons.push(format!("{}: no connection", node.address)),
        }
    }
    let mut first: Option<crate::protocol::response::Prepared> = None;
    let mut server_error = None;
    while let Some(joined) = tasks.join_next().await {
        let Ok((address, outcome)) = joined else {
            continue;
        };
        match outcome {
            Ok(p) => match &first {
                Some(f) if f.id != p.id => {
                    return Err(DriverError::Protocol(format!(
                        "nodes disagree on the prepared id of `{query}` ({address} differs)"
                    )))
                }
                Some(_) => {}
                None => first = Some(p),
            },
            Err(DriverError::Server(e)) => {
                reasons.push(format!("{address}: {}", e.message));
                server_error.get_or_insert(DriverError::Server(e));
            }
            Err(e) => reasons.push(format!("{address}: {e}")),
        }
    }
    match (first, server_error) {
        (Some(p), _) => Ok(Prepared {
            id: p.id,
            query: query.to_owned(),
            keyspace,
            metadata: p.metadata,
            result_metadata: p.result_metadata,
        }),
        (None, Some(e)) => Err(e),
        (None, None) => Err(DriverError::NoHostAvailable(reasons)),
    }
}

/// Prepares `prepared` again on `conn`'s node (after UNPREPARED); the
/// server must hand back the same id, or executing it there would run
/// something else.
///
/// The id depends on the keyspace the connection is in, and v4 PREPARE
/// cannot name one: a connection switched by a later `USE` gives another
/// id. The statement is then prepared on a short-lived connection to the
/// same node opened in the statement's own keyspace (Scylla prepares on
/// every shard of the node at once), so an UNPREPARED never becomes a
/// lasting failure.
pub async fn reprepare(
    conn: &Connection,
    prepared: &Prepared,
    config: &ConnectionConfig,
    timeout: Duration,
) -> Result<(), DriverError> {
    let fresh = prepare_on(conn, &prepared.query, timeout).await?;
    if fresh.id == prepared.id {
        return Ok(());
    }
    tracing::debug!(
        node = %conn.peer_addr(),
        keyspace = ?prepared.keyspace,
        "re-preparing in the statement's keyspace on a separate connection"
    );
    let mut config = config.clone();
    config.keyspace = prepared.keyspace.clone();
    config.tablets_routing = false;
    config.connect_timeout = config.connect_timeout.min(timeout);
    let (side, _) = crate::connection::open(conn.peer_addr(), None, &config)
        .await
        .map_err(|e| DriverError::ConnectionBroken(format!("re-preparing: {e}")))?;
    let outcome = prepare_on(&side, &prepared.query, timeout).await;
    side.close().await;
    if outcome?.id != prepared.id {
        return Err(DriverError::Protocol(format!(
            "re-preparing `{}` on {} gave another id",
            prepared.query,
            conn.peer_addr()
        )));
    }
    Ok(())
}

/// A connection-level failure as a `DriverError`.
pub fn request_error(error: RequestError, budget: Duration) -> DriverError {
    match error {
        RequestError::Timeout(_) => DriverError::Timeout(budget),
        RequestError::ConnectionBroken(reason) | RequestError::NotSent(reason) => {
            DriverError::ConnectionBroken(reason.to_string())
        }
        RequestError::Encode(e) => DriverError::InvalidArgument(e.to_string()),
        RequestError::Protocol(e) => DriverError::Protocol(e.to_string()),
        e @ (RequestError::Closing | RequestError::StreamIdsExhausted) => {
            DriverError::NoHostAvailable(vec![e.to_string()])
        }
    }
}

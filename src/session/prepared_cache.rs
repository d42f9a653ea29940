//! Prepared statements: a per-session cache keyed by (keyspace, text), and
//! preparing on one connection of every node, as the drivers do, so that
//! any coordinator can execute the id without an UNPREPARED round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::types::{DriverError, Prepared};
use crate::cluster::ClusterState;
use crate::connection::{Connection, ConnectionConfig, RequestError};
use crate::protocol::response::ResultBody;
use crate::protocol::{Request, Response};

type Key = (Option<String>, String);

/// Statements the cache keeps by default (`SessionConfig::prepared_cache_size`).
pub const DEFAULT_CAPACITY: usize = 1024;

/// Entries beyond twice the capacity that trigger forgetting the dead ones.
const PURGE_SLACK: usize = 16;

struct Entry {
    /// Kept alive by the cache while the entry is among the `capacity`
    /// most recently used.
    strong: Option<Arc<Prepared>>,
    /// Still found while any caller holds the statement.
    weak: Weak<Prepared>,
    last_used: u64,
}

/// Statements prepared by this session, by (keyspace, text). At most
/// `capacity` are kept alive by the cache, the least recently used given
/// up first; a statement given up stays found while a caller holds it, so
/// preparing it again returns the same one. Handles are never invalidated:
/// the cache only lets go of its own reference.
pub struct PreparedCache {
    capacity: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    map: HashMap<Key, Entry>,
    /// Entries with a strong reference.
    strong: usize,
    clock: u64,
}

impl PreparedCache {
    pub fn new(capacity: usize) -> PreparedCache {
        PreparedCache {
            capacity,
            state: Mutex::default(),
        }
    }

    pub fn get(&self, keyspace: Option<&str>, query: &str) -> Option<Arc<Prepared>> {
        let key = (keyspace.map(str::to_owned), query.to_owned());
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let entry = state.map.get_mut(&key)?;
        let hit = entry.strong.clone().or_else(|| entry.weak.upgrade())?;
        entry.last_used = now;
        let promoted = entry.strong.is_none() && self.capacity > 0;
        if promoted {
            entry.strong = Some(hit.clone());
            state.strong += 1;
            self.shrink(&mut state);
        }
        Some(hit)
    }

    /// Adds `prepared` (or returns the one already cached for its key).
    pub fn insert(&self, prepared: Arc<Prepared>) -> Arc<Prepared> {
        let key = (prepared.keyspace.clone(), prepared.query.clone());
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        if let Some(entry) = state.map.get_mut(&key) {
            if let Some(existing) = entry.strong.clone().or_else(|| entry.weak.upgrade()) {
                entry.last_used = now;
                return existing;
            }
        }
        let keep = self.capacity > 0;
        let old = state.map.insert(
            key,
            Entry {
                strong: keep.then(|| prepared.clone()),
                weak: Arc::downgrade(&prepared),
                last_used: now,
            },
        );
        state.strong -= old.is_some_and(|o| o.strong.is_some()) as usize;
        state.strong += keep as usize;
        self.shrink(&mut state);
        prepared
    }

    /// Statements the cache keeps alive, and entries it knows in all.
    pub fn sizes(&self) -> (usize, usize) {
        let state = self.lock();
        (state.strong, state.map.len())
    }

    /// Gives up the least recently used strong references past the
    /// capacity, and forgets entries nobody holds any more.
    fn shrink(&self, state: &mut CacheState) {
        // Entries nobody holds are forgotten in passes, once they are as many
        // as the capacity (plus a few): the map stays within twice that.
        if state.strong <= self.capacity && state.map.len() <= 2 * self.capacity + PURGE_SLACK {
            return;
        }
        state
            .map
            .retain(|_, e| e.strong.is_some() || e.weak.strong_count() > 0);
        let excess = state.strong.saturating_sub(self.capacity);
        if excess > 0 {
            let mut uses: Vec<u64> = state
                .map
                .values()
                .filter(|e| e.strong.is_some())
                .map(|e| e.last_used)
                .collect();
            uses.sort_unstable();
            let cutoff = uses[excess - 1];
            for entry in state.map.values_mut() {
                if entry.strong.is_some() && entry.last_used <= cutoff {
                    entry.strong = None;
                }
            }
            state.strong -= excess;
            state
                .map
                .retain(|_, e| e.strong.is_some() || e.weak.strong_count() > 0);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
    // Filtered-out nodes have no pool and are never asked.
    for node in state.nodes().iter().filter(|n| !n.filtered_out) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::response::{PreparedMetadata, ResultMetadata};

    fn prepared(query: &str) -> Arc<Prepared> {
        Arc::new(Prepared {
            id: query.as_bytes().to_vec(),
            query: query.to_owned(),
            keyspace: None,
            metadata: PreparedMetadata::default(),
            result_metadata: ResultMetadata::default(),
        })
    }

    #[test]
    fn the_cache_keeps_its_capacity_and_never_drops_what_callers_hold() {
        let cache = PreparedCache::new(10);
        let held: Vec<_> = (0..5)
            .map(|i| cache.insert(prepared(&format!("held {i}"))))
            .collect();
        for i in 0..5000 {
            drop(cache.insert(prepared(&format!("q {i}"))));
        }
        let (strong, entries) = cache.sizes();
        assert_eq!(strong, 10);
        // The 10 kept plus the 5 callers hold, nothing else.
        assert_eq!(entries, 15);
        for (i, h) in held.iter().enumerate() {
            let again = cache.get(None, &format!("held {i}")).unwrap();
            assert!(Arc::ptr_eq(h, &again));
        }
        // The most recent ones are kept.
        assert!(cache.get(None, "q 4999").is_some());
        assert!(cache.get(None, "q 0").is_none());
        assert_eq!(cache.sizes().0, 10);
        drop(held);
        for i in 0..100 {
            drop(cache.insert(prepared(&format!("r {i}"))));
        }
        assert_eq!(cache.sizes(), (10, 10));
    }

    #[test]
    fn capacity_zero_keeps_only_what_callers_hold() {
        let cache = PreparedCache::new(0);
        let held = cache.insert(prepared("a"));
        for i in 0..100 {
            drop(cache.insert(prepared(&format!("q {i}"))));
        }
        assert!(Arc::ptr_eq(&held, &cache.get(None, "a").unwrap()));
        let (strong, entries) = cache.sizes();
        assert_eq!(strong, 0);
        assert!(entries <= 1 + PURGE_SLACK, "{entries} entries");
    }
}

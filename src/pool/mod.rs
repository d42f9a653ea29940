//! Connections to one node: one (or `connections_per_shard`) per shard,
//! opened through the shard-aware port, refilled with backoff.
//!
//! A [`NodePool`] is a cheap handle. The request path only reads an
//! immutable snapshot of the live connections under a short read lock;
//! everything that changes the pool (opening, accepting, discarding,
//! removing broken connections, NAT and port fallbacks, backoff) happens in
//! one background task per node, the refiller (see `refiller.rs`), which
//! owns the mutable state and publishes a new snapshot after each change.
//!
//! Filling follows the rules in DESIGN.md: the first connection goes to the
//! regular port to learn the sharding; the missing shards are then opened in
//! parallel through the shard-aware port from source ports that select their
//! shard; a connection that lands on another shard than asked means NAT, and
//! the shard-aware port is avoided for `nat_block`; an unreachable
//! shard-aware port falls back to the regular port, where the server picks
//! the shard and the pool keeps, parks or closes what it gets.

mod backoff;
mod port_state;
mod refiller;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::connection::{Connection, ConnectionConfig, ConnectionError, RequestError};
use crate::routing::sharder::{ShardAwarePortRange, Sharder};

pub use backoff::Backoff;
use port_state::PortState;

/// How a [`NodePool`] opens and keeps its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections per shard (per node for servers without shards). Zero is
    /// treated as one.
    pub connections_per_shard: usize,
    /// Open connections to the missing shards through the node's
    /// shard-aware port (one attempt per shard instead of blind retries).
    pub shard_aware_port: bool,
    /// Local ports the shard-aware connections are bound to.
    pub local_port_range: ShardAwarePortRange,
    /// Settings of every connection. Its `keyspace` is the pool's initial
    /// keyspace.
    pub connection: ConnectionConfig,
    /// How long a node whose shard-aware port misplaced a connection (NAT)
    /// or could not be reached avoids that port.
    pub nat_block: Duration,
    /// First reconnection delay after a failure; doubles per failure.
    pub reconnect_base: Duration,
    /// Upper bound of the reconnection delay.
    pub reconnect_max: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            connections_per_shard: 1,
            shard_aware_port: true,
            local_port_range: ShardAwarePortRange::default(),
            connection: ConnectionConfig::default(),
            nat_block: Duration::from_secs(300),
            reconnect_base: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
        }
    }
}

impl PoolConfig {
    /// The per-shard target, never zero.
    fn target(&self) -> usize {
        self.connections_per_shard.max(1)
    }
}

/// What the pool did so far; counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connection attempts started (each may try several source ports).
    pub attempts: u64,
    /// Attempts that failed and counted towards the backoff.
    pub failed_attempts: u64,
    /// Connections established (handshake done), whether kept or not.
    pub connections_opened: u64,
    /// Of those, through the shard-aware port.
    pub opened_shard_aware: u64,
    /// Of those, through the regular port.
    pub opened_regular: u64,
    /// Established connections closed at once because their shard was
    /// already full (or the parking cap was reached).
    pub connections_discarded: u64,
    /// Pooled connections that broke (not counting ones the pool closed).
    pub connections_broken: u64,
    /// Shard-aware connections that landed on another shard than asked.
    pub nat_detections: u64,
    /// Shard-aware attempts that could not connect (refused, timed out, no
    /// free source port); retried through the shard-aware port unless the
    /// port is judged unreachable (see `port_state.rs`).
    pub shard_aware_failures: u64,
    /// Times the node reported a different sharding and the pool started
    /// over.
    pub reshards: u64,
}

#[derive(Default)]
struct Counters {
    attempts: AtomicU64,
    failed_attempts: AtomicU64,
    connections_opened: AtomicU64,
    opened_shard_aware: AtomicU64,
    opened_regular: AtomicU64,
    connections_discarded: AtomicU64,
    connections_broken: AtomicU64,
    nat_detections: AtomicU64,
    shard_aware_failures: AtomicU64,
    reshards: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> PoolStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PoolStats {
            attempts: get(&self.attempts),
            failed_attempts: get(&self.failed_attempts),
            connections_opened: get(&self.connections_opened),
            opened_shard_aware: get(&self.opened_shard_aware),
            opened_regular: get(&self.opened_regular),
            connections_discarded: get(&self.connections_discarded),
            connections_broken: get(&self.connections_broken),
            nat_detections: get(&self.nat_detections),
            shard_aware_failures: get(&self.shard_aware_failures),
            reshards: get(&self.reshards),
        }
    }
}

/// What request paths read: replaced as a whole by the refiller.
#[derive(Default)]
struct Snapshot {
    /// Known once a connection reported sharding info.
    sharder: Option<Sharder>,
    /// Advertised by the node's last accepted connection.
    shard_aware_port: Option<u16>,
    /// Live connections by shard; one bucket for servers without shards;
    /// empty until the first connection.
    buckets: Vec<Vec<Connection>>,
}

/// State shared by the handles and the refiller.
struct Shared {
    address: SocketAddr,
    config: Arc<PoolConfig>,
    snapshot: RwLock<Snapshot>,
    /// Rotates the starting point among equally loaded connections.
    next: AtomicUsize,
    port_state: Mutex<PortState>,
    /// The keyspace new connections `USE`, and a generation that changes
    /// with it so a connection opened under an older one is set again.
    keyspace: Mutex<(Option<Arc<str>>, u64)>,
    counters: Counters,
    /// Bumped after every new snapshot, for `wait_filled` / `wait_any`.
    published: watch::Sender<u64>,
    /// Set by the refiller once it stopped and closed everything.
    done: watch::Sender<bool>,
    /// Cuts a running reconnection backoff short (the node came back).
    reconnect_now: tokio::sync::Notify,
}

impl Shared {
    fn port_state(&self) -> PortState {
        *self
            .port_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_port_state(&self, state: PortState) {
        *self
            .port_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = state;
    }

    fn keyspace(&self) -> (Option<Arc<str>>, u64) {
        self.keyspace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn keyspace_generation(&self) -> u64 {
        self.keyspace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Swaps in a new snapshot (the old one is dropped outside the lock)
    /// and wakes the waiters.
    fn publish(&self, snapshot: Snapshot) {
        let old = std::mem::replace(
            &mut *self
                .snapshot
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            snapshot,
        );
        drop(old);
        self.published.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Closes the pool when the last handle goes away.
struct Handle {
    shared: Arc<Shared>,
    close: watch::Sender<bool>,
    /// Serialises `use_keyspace` calls so their USEs cannot interleave.
    keyspace_lock: tokio::sync::Mutex<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.close.send(true);
    }
}

/// The connections to one node. Clones share the pool; the last one to be
/// dropped stops the refiller and closes the connections.
#[derive(Clone)]
pub struct NodePool {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for NodePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePool")
            .field("address", &self.address())
            .field("connections", &self.connection_counts())
            .finish()
    }
}

impl NodePool {
    /// Retries missing connections now instead of after the backoff, e.g.
    /// when the cluster announces that the node is UP again.
    pub fn reconnect_now(&self) {
        self.handle.shared.reconnect_now.notify_one();
    }

    /// Creates the pool and starts filling it in the background. Must be
    /// called inside a tokio runtime.
    pub fn new(address: SocketAddr, config: Arc<PoolConfig>) -> NodePool {
        let keyspace = config.connection.keyspace.clone();
        let shared = Arc::new(Shared {
            address,
            config,
            snapshot: RwLock::new(Snapshot::default()),
            next: AtomicUsize::new(0),
            port_state: Mutex::new(PortState::FRESH),
            keyspace: Mutex::new((keyspace.map(Arc::from), 0)),
            counters: Counters::default(),
            published: watch::Sender::new(0),
            done: watch::Sender::new(false),
            reconnect_now: tokio::sync::Notify::new(),
        });
        let (close, close_rx) = watch::channel(false);
        refiller::spawn(shared.clone(), close_rx);
        NodePool {
            handle: Arc::new(Handle {
                shared,
                close,
                keyspace_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.handle.shared.address
    }

    /// A live connection for `shard`: the least busy of that shard's, or,
    /// if it has none (or `shard` is `None`), the least busy of all. `None`
    /// when the pool has no live connection.
    ///
    /// This is the request hot path: a short read lock, no allocation, no
    /// await.
    pub fn connection(&self, shard: Option<u16>) -> Option<Connection> {
        let shared = &self.handle.shared;
        let snapshot = shared.read();
        let buckets = &snapshot.buckets;
        if let Some(bucket) = shard.and_then(|s| buckets.get(usize::from(s))) {
            let start = if bucket.len() > 1 {
                shared.next.fetch_add(1, Ordering::Relaxed)
            } else {
                0
            };
            if let Some(found) = least_busy(bucket, start) {
                return Some(found.clone());
            }
        }
        if buckets.is_empty() {
            return None;
        }
        // Any shard: rotate where the scan starts so ties spread out.
        let start = shared.next.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<&Connection> = None;
        for i in 0..buckets.len() {
            let bucket = &buckets[(start + i) % buckets.len()];
            if let Some(c) = least_busy(bucket, start) {
                if best.is_none_or(|b| c.in_flight() < b.in_flight()) {
                    best = Some(c);
                }
            }
        }
        best.cloned()
    }

    /// The node's token-to-shard function, once a connection reported it.
    pub fn sharder(&self) -> Option<Sharder> {
        self.handle.shared.read().sharder
    }

    pub fn nr_shards(&self) -> Option<u16> {
        self.sharder().map(|s| s.nr_shards().get())
    }

    /// Whether the node reported sharding info (it is a Scylla node).
    pub fn is_shard_aware(&self) -> bool {
        self.sharder().is_some()
    }

    /// Live connections per shard (one entry for servers without shards;
    /// empty before the first connection).
    pub fn connection_counts(&self) -> Vec<usize> {
        self.handle
            .shared
            .read()
            .buckets
            .iter()
            .map(|b| b.iter().filter(|c| is_live(c)).count())
            .collect()
    }

    /// Whether new connections to missing shards would go through the
    /// shard-aware port: false when disabled, not advertised, NAT-blocked
    /// or found unreachable.
    pub fn shard_aware_port_in_use(&self) -> bool {
        let shared = &self.handle.shared;
        if !shared.config.shard_aware_port {
            return false;
        }
        let advertised = {
            let snapshot = shared.read();
            snapshot.shard_aware_port.is_some()
                && snapshot.sharder.is_some_and(|s| s.nr_shards().get() > 1)
        };
        advertised && shared.port_state().usable(Instant::now())
    }

    /// Waits until every shard has `connections_per_shard` live
    /// connections; false if that did not happen within `timeout`.
    pub async fn wait_filled(&self, timeout: Duration) -> bool {
        let target = self.handle.shared.config.target();
        self.wait_for(timeout, |buckets| {
            !buckets.is_empty()
                && buckets
                    .iter()
                    .all(|b| b.iter().filter(|c| is_live(c)).count() >= target)
        })
        .await
    }

    /// Waits until the pool has at least one live connection.
    pub async fn wait_any(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |buckets| buckets.iter().flatten().any(is_live))
            .await
    }

    /// Checks the published connections (so ones that broke but are not
    /// removed yet do not count) after every publication.
    async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Vec<Connection>]) -> bool) -> bool {
        let shared = &self.handle.shared;
        let mut published = shared.published.subscribe();
        let wait = async {
            loop {
                published.borrow_and_update();
                if done(&shared.read().buckets) {
                    return true;
                }
                if published.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// `USE keyspace` on every live connection; connections opened later
    /// use it too. The keyspace is first tried on one connection, so a
    /// keyspace the server rejects leaves the pool unchanged.
    pub async fn use_keyspace(&self, keyspace: &str) -> Result<(), ConnectionError> {
        let _serial = self.handle.keyspace_lock.lock().await;
        let shared = &self.handle.shared;
        let limit = shared.config.connection.connect_timeout;
        let bounded_use = |conn: Connection, keyspace: Arc<str>| async move {
            tokio::time::timeout(limit, conn.use_keyspace(&keyspace))
                .await
                .unwrap_or(Err(ConnectionError::Timeout(limit)))
        };
        let keyspace: Arc<str> = Arc::from(keyspace);
        // Validate on one connection: a server error stops here.
        for conn in self.live_connections() {
            match bounded_use(conn, keyspace.clone()).await {
                Ok(()) => break,
                Err(e) if is_connection_gone(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        {
            let mut current = shared
                .keyspace
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            current.0 = Some(keyspace.clone());
            current.1 += 1;
        }
        // Taken after the change: connections accepted before it are here,
        // connections accepted after it are set by the refiller.
        let mut uses = tokio::task::JoinSet::new();
        for conn in self.live_connections() {
            uses.spawn(bounded_use(conn, keyspace.clone()));
        }
        let mut first_error = None;
        while let Some(joined) = uses.join_next().await {
            match joined {
                Ok(Err(e)) if !is_connection_gone(&e) => {
                    first_error.get_or_insert(e);
                }
                _ => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn live_connections(&self) -> Vec<Connection> {
        self.handle
            .shared
            .read()
            .buckets
            .iter()
            .flatten()
            .filter(|c| is_live(c))
            .cloned()
            .collect()
    }

    pub fn stats(&self) -> PoolStats {
        self.handle.shared.counters.snapshot()
    }

    /// Stops refilling and closes every connection, letting in-flight
    /// requests finish (within the connection's close grace).
    pub async fn close(&self) {
        let mut done = self.handle.shared.done.subscribe();
        let _ = self.handle.close.send(true);
        // An Err means the refiller is gone already.
        let _ = done.wait_for(|d| *d).await;
    }
}

fn is_live(conn: &Connection) -> bool {
    !conn.is_broken() && !conn.is_closing()
}

/// The live connection of `bucket` with the fewest requests in flight,
/// scanning from `start` so that ties rotate.
fn least_busy(bucket: &[Connection], start: usize) -> Option<&Connection> {
    let len = bucket.len();
    let mut best: Option<(&Connection, usize)> = None;
    for i in 0..len {
        let c = &bucket[(start + i) % len];
        if !is_live(c) {
            continue;
        }
        let load = c.in_flight();
        if load == 0 {
            return Some(c);
        }
        if best.is_none_or(|(_, l)| load < l) {
            best = Some((c, load));
        }
    }
    best.map(|(c, _)| c)
}

/// The connection died under the request: not the keyspace's fault.
fn is_connection_gone(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::Request(
            RequestError::ConnectionBroken(_) | RequestError::NotSent(_) | RequestError::Closing,
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = PoolConfig::default();
        assert_eq!(c.connections_per_shard, 1);
        assert!(c.shard_aware_port);
        assert_eq!(c.local_port_range.start(), 49152);
        assert_eq!(c.local_port_range.end(), 65535);
        assert_eq!(c.nat_block, Duration::from_secs(300));
        assert_eq!(c.reconnect_base, Duration::from_millis(100));
        assert_eq!(c.reconnect_max, Duration::from_secs(10));
        assert_eq!(
            PoolConfig {
                connections_per_shard: 0,
                ..c
            }
            .target(),
            1
        );
    }

    #[test]
    fn pool_is_send_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<NodePool>();
    }
}

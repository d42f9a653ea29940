//! The background task that owns a node pool's mutable state: it opens
//! connections, decides which to keep, removes broken ones, falls back from
//! the shard-aware port, backs off, and publishes snapshots.
//!
//! Everything runs on one task driven by a `select!` over: the close
//! signal, connection attempts finishing, pooled connections closing, and
//! the backoff timer. No lock is held across an await.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{Id, JoinError, JoinSet};
use tracing::{debug, warn};

use super::backoff::{Backoff, Rng};
use super::port_state::PortMode;
use super::{Counters, Shared, Snapshot};
use crate::connection::{open, Connection, ConnectionConfig, ConnectionError, ServerFeatures};
use crate::routing::sharder::{ShardAwarePortRange, Sharder};

/// Connection attempts one pool has in flight at most. Bounds the burst a
/// node sees when every client reconnects to it at once (a restart), so
/// its accept queue and handshakes keep up instead of timing attempts out;
/// a handshake takes a round trip or two, so filling 30 shards this way
/// costs a few round trips more than all at once.
const MAX_ATTEMPTS_IN_FLIGHT: usize = 8;

/// Regular-port connections that landed on an already full shard and are
/// parked (per shard of the node). The server gives new connections to its
/// least loaded shard, so holding them pushes later ones onto the missing
/// shards; past the cap they are closed and the pool backs off.
const PARKED_PER_SHARD: usize = 2;

/// Starts the refiller of `shared`; it stops when `close` turns true or its
/// sender is dropped.
pub(super) fn spawn(shared: Arc<Shared>, close: watch::Receiver<bool>) {
    tokio::spawn(Refiller::new(shared).run(close));
}

/// Which port an attempt uses.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// The regular port: the server picks the shard.
    Regular,
    /// The shard-aware `port`, from a source port that selects `shard`
    /// under `sharder`. A `probe` is the single attempt made while the
    /// port is suspect (see `port_state.rs`).
    ShardAware {
        shard: u16,
        sharder: Sharder,
        port: u16,
        probe: bool,
    },
}

/// A finished attempt: the connection and the keyspace generation it was
/// set to.
struct Outcome {
    route: Route,
    result: Result<(Connection, u64), ConnectionError>,
}

struct Refiller {
    shared: Arc<Shared>,
    /// The pool's connection settings without the keyspace: the refiller
    /// sets the pool's current keyspace itself.
    open_config: Arc<ConnectionConfig>,
    /// `None` until the first connection; then the node's sharder (`None`
    /// inside for a server without shards).
    layout: Option<Option<Sharder>>,
    /// Live connections by shard (one bucket without shards).
    buckets: Vec<Vec<Connection>>,
    /// Parked regular-port connections (see [`PARKED_PER_SHARD`]).
    parked: Vec<Connection>,
    pending_regular: usize,
    /// Shard-aware attempts in flight, by requested shard.
    pending_shard: Vec<usize>,
    attempts: JoinSet<Outcome>,
    /// Route of every attempt task, to account for one that panicked.
    routes: HashMap<Id, Route>,
    /// One task per held connection, finishing when it closes: wakes the
    /// loop so the connection is removed and replaced.
    watchers: JoinSet<()>,
    backoff: Backoff,
    /// No attempt starts before this, after a failure.
    retry_at: Option<Instant>,
    rng: Rng,
    /// The node's shard-aware port, as its last connection advertised it.
    shard_aware_port: Option<u16>,
}

impl Refiller {
    fn new(shared: Arc<Shared>) -> Refiller {
        let config = &shared.config;
        let open_config = Arc::new(ConnectionConfig {
            keyspace: None,
            ..config.connection.clone()
        });
        let backoff = Backoff::new(config.reconnect_base, config.reconnect_max);
        Refiller {
            open_config,
            layout: None,
            buckets: Vec::new(),
            parked: Vec::new(),
            pending_regular: 0,
            pending_shard: Vec::new(),
            attempts: JoinSet::new(),
            routes: HashMap::new(),
            watchers: JoinSet::new(),
            backoff,
            retry_at: None,
            rng: Rng::new(),
            shard_aware_port: None,
            shared,
        }
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    async fn run(mut self, mut close: watch::Receiver<bool>) {
        loop {
            let wake = self.fill();
            tokio::select! {
                biased;
                // Err: every handle is gone, which also means close.
                _ = close.wait_for(|c| *c) => break,
                Some(_) = self.watchers.join_next(), if !self.watchers.is_empty() => {}
                Some(joined) = self.attempts.join_next_with_id(), if !self.attempts.is_empty() => {
                    self.on_joined(joined);
                }
                _ = sleep_until(wake), if wake.is_some() => {}
                _ = self.shared.reconnect_now.notified() => {
                    self.retry_at = None;
                    self.backoff.reset();
                }
            }
        }
        self.shutdown().await;
    }

    /// Removes dead connections, then starts the attempts the pool is
    /// missing. Returns when to wake up if the backoff holds them back.
    fn fill(&mut self) -> Option<Instant> {
        self.sweep();
        let now = Instant::now();
        let pending = self.pending_regular + self.pending_shard.iter().sum::<usize>();
        let held_back = self.retry_at.filter(|t| *t > now);
        let live: usize = self.buckets.iter().map(Vec::len).sum();
        if self.layout.is_none() || live == 0 {
            // First connection (again): the regular port, one at a time, to
            // learn (or re-learn, after a restart) the node's sharding.
            if pending > 0 {
                return None;
            }
            if held_back.is_some() {
                return held_back;
            }
            self.launch(Route::Regular);
            return None;
        }
        let target = self.shared.config.target();
        let missing: usize = self
            .buckets
            .iter()
            .map(|b| target.saturating_sub(b.len()))
            .sum();
        if missing == 0 {
            self.close_parked();
            return None;
        }
        if pending >= missing.min(MAX_ATTEMPTS_IN_FLIGHT) {
            return None;
        }
        if held_back.is_some() {
            return held_back;
        }
        // At most one outstanding attempt per missing connection, and a
        // bounded number in all.
        let mut budget = (missing - pending).min(MAX_ATTEMPTS_IN_FLIGHT - pending);
        match self.shard_aware_route(now) {
            Some((sharder, port, probing)) => {
                if probing {
                    // One probe at a time; the rest wait for its answer.
                    if pending > 0 {
                        return None;
                    }
                    budget = 1;
                }
                // Start at a random shard so probes and capped rounds do
                // not always serve the same shards first.
                let shards = self.buckets.len();
                let first = (self.rng.next_u64() % shards as u64) as usize;
                for shard in (0..shards).map(|i| (first + i) % shards) {
                    let want = target
                        .saturating_sub(self.buckets[shard].len())
                        .saturating_sub(self.pending_shard[shard])
                        .min(budget);
                    budget -= want;
                    for _ in 0..want {
                        self.launch(Route::ShardAware {
                            shard: shard as u16,
                            sharder,
                            port,
                            probe: probing,
                        });
                    }
                }
            }
            None => {
                for _ in 0..budget {
                    self.launch(Route::Regular);
                }
            }
        }
        None
    }

    /// The sharder and port to use for shard-aware attempts, if allowed,
    /// and whether only a probe may go.
    fn shard_aware_route(&self, now: Instant) -> Option<(Sharder, u16, bool)> {
        if !self.shared.config.shard_aware_port {
            return None;
        }
        let sharder = self.layout.flatten()?;
        let state = self.shared.port_state();
        if sharder.nr_shards().get() < 2 || !state.usable(now) {
            return None;
        }
        Some((sharder, self.shard_aware_port?, state.probing(now)))
    }

    /// Drops connections that broke or are closing from the buckets (so
    /// they are replaced) and from the parked ones.
    fn sweep(&mut self) {
        let mut removed = 0u64;
        for bucket in &mut self.buckets {
            let before = bucket.len();
            bucket.retain(super::is_live);
            removed += (before - bucket.len()) as u64;
        }
        self.parked.retain(super::is_live);
        if removed > 0 {
            self.counters()
                .connections_broken
                .fetch_add(removed, std::sync::atomic::Ordering::Relaxed);
            debug!(node = %self.shared.address, removed, "removed broken connections");
            self.publish();
            // Replaced after a backoff delay, not at once: a node that is
            // going down breaks its connections one by one, and a
            // replacement opened in between would land on the dying node
            // (or be refused and taken for a bad shard-aware port).
            self.back_off();
        }
    }

    fn launch(&mut self, route: Route) {
        Counters::bump(&self.counters().attempts);
        let random = self.rng.next_u64();
        let task = attempt(
            self.shared.clone(),
            self.open_config.clone(),
            route,
            self.shared.config.local_port_range,
            random,
        );
        self.track(route, task);
    }

    /// Runs `task` as an attempt of `route`, counted as pending until it
    /// comes back.
    fn track(
        &mut self,
        route: Route,
        task: impl std::future::Future<Output = Outcome> + Send + 'static,
    ) {
        match route {
            Route::Regular => self.pending_regular += 1,
            Route::ShardAware { shard, .. } => {
                if let Some(p) = self.pending_shard.get_mut(usize::from(shard)) {
                    *p += 1;
                }
            }
        }
        let handle = self.attempts.spawn(task);
        self.routes.insert(handle.id(), route);
    }

    fn release(&mut self, route: Route) {
        match route {
            Route::Regular => self.pending_regular = self.pending_regular.saturating_sub(1),
            Route::ShardAware { shard, .. } => {
                if let Some(p) = self.pending_shard.get_mut(usize::from(shard)) {
                    *p = p.saturating_sub(1);
                }
            }
        }
    }

    fn on_joined(&mut self, joined: Result<(Id, Outcome), JoinError>) {
        match joined {
            Ok((id, outcome)) => {
                self.routes.remove(&id);
                self.release(outcome.route);
                match outcome.result {
                    Ok((conn, generation)) => self.on_opened(outcome.route, conn, generation),
                    Err(e) => self.on_failed(outcome.route, e),
                }
            }
            Err(e) => {
                // Only a panic gets here (attempts are never aborted while
                // the loop runs): account for it as a failed attempt.
                if let Some(route) = self.routes.remove(&e.id()) {
                    self.release(route);
                }
                warn!(node = %self.shared.address, error = %e, "connection attempt task failed");
                Counters::bump(&self.counters().failed_attempts);
                self.back_off();
            }
        }
    }

    fn on_failed(&mut self, route: Route, e: ConnectionError) {
        let address = self.shared.address;
        Counters::bump(&self.counters().failed_attempts);
        if let Route::ShardAware {
            shard, port, probe, ..
        } = route
        {
            Counters::bump(&self.counters().shard_aware_failures);
            // A busy local port is this machine's problem, not the port's.
            if reaches_port(&e) {
                let now = Instant::now();
                let node_answers = self.buckets.iter().flatten().any(super::is_live);
                let state = self.shared.port_state();
                let next = state.shard_aware_failed(
                    now,
                    probe,
                    node_answers,
                    self.shared.config.nat_block,
                );
                self.shared.set_port_state(next);
                if let (false, PortMode::Blocked(until)) = (state.is_blocked(now), next.mode) {
                    warn!(node = %address, block = ?until.saturating_duration_since(now),
                        "not using the shard-aware port for a while: it cannot be reached \
                         while the regular port can");
                }
            }
            debug!(node = %address, shard, port, probe, error = %e, "shard-aware attempt failed");
        } else {
            debug!(node = %address, error = %e, "connection attempt failed");
        }
        self.back_off();
    }

    /// Holds back further attempts by the next backoff delay, unless a
    /// delay is already running (failures of one round count once).
    fn back_off(&mut self) {
        let now = Instant::now();
        if self.retry_at.is_none_or(|t| now >= t) {
            let delay = self.backoff.next_delay();
            self.retry_at = Some(now + delay);
            debug!(node = %self.shared.address, ?delay, "backing off");
        }
    }

    fn on_opened(&mut self, route: Route, conn: Connection, generation: u64) {
        if generation != self.shared.keyspace_generation() {
            // `use_keyspace` ran while this one was opening: set it again
            // before it can serve a request.
            self.track(route, set_keyspace(self.shared.clone(), conn, route));
            return;
        }
        let counters = &self.shared.counters;
        Counters::bump(&counters.connections_opened);
        Counters::bump(match route {
            Route::Regular => &counters.opened_regular,
            Route::ShardAware { .. } => &counters.opened_shard_aware,
        });
        let features = conn.features();
        let sharder = features.sharding.and_then(|s| s.sharder().ok());
        self.adopt_layout(sharder);
        if sharder.is_some() {
            self.shard_aware_port = features.shard_aware_port;
        }
        let shard = features.shard().map_or(0, usize::from);
        if let Route::ShardAware {
            shard: wanted,
            sharder: used,
            ..
        } = route
        {
            // Same sharder: the port was right, so the network moved it.
            if usize::from(wanted) != shard && Some(used) == sharder {
                self.nat_detected(wanted, shard);
            }
        }
        if let Route::ShardAware { shard: wanted, .. } = route {
            if usize::from(wanted) == shard {
                let state = self.shared.port_state();
                self.shared
                    .set_port_state(state.shard_aware_worked(Instant::now()));
            }
        }
        let target = self.shared.config.target();
        let shards = self.buckets.len();
        let bucket = shard.min(shards - 1);
        if self.buckets[bucket].len() < target {
            self.watch(&conn);
            self.buckets[bucket].push(conn);
            self.backoff.reset();
            self.publish();
        } else if matches!(route, Route::Regular) && self.parked.len() < PARKED_PER_SHARD * shards {
            debug!(node = %self.shared.address, shard, "parking a connection of a full shard");
            self.watch(&conn);
            self.parked.push(conn);
        } else {
            if matches!(route, Route::Regular) {
                // The server keeps choosing full shards: stop pushing.
                debug!(node = %self.shared.address, shard, "too many misplaced connections; backing off");
                self.close_parked();
                self.back_off();
            }
            Counters::bump(&self.counters().connections_discarded);
            close_in_background(conn);
        }
    }

    /// Takes the sharding of a new connection; a change from what the pool
    /// knew (the node was resharded or replaced) starts the pool over.
    fn adopt_layout(&mut self, sharder: Option<Sharder>) {
        if self.layout == Some(sharder) {
            return;
        }
        if self.layout.is_some() {
            warn!(node = %self.shared.address, ?sharder, "node changed its sharding; reopening its connections");
            Counters::bump(&self.counters().reshards);
            for conn in self.buckets.drain(..).flatten() {
                close_in_background(conn);
            }
            self.close_parked();
        }
        let shards = sharder.map_or(1, |s| usize::from(s.nr_shards().get()));
        self.layout = Some(sharder);
        self.buckets = (0..shards).map(|_| Vec::new()).collect();
        self.pending_shard = vec![0; shards];
        self.publish();
    }

    fn nat_detected(&mut self, wanted: u16, got: usize) {
        Counters::bump(&self.counters().nat_detections);
        debug!(node = %self.shared.address, wanted, got, "shard-aware connection landed on another shard");
        let now = Instant::now();
        let state = self.shared.port_state();
        let block = self.shared.config.nat_block;
        let next = state.nat_detected(now, block);
        if next != state {
            warn!(node = %self.shared.address, ?block,
                "not using the shard-aware port: connections land on other shards than their \
                 source port selects (NAT or a proxy rewriting source ports?); disable the \
                 shard-aware port if this persists");
            self.shared.set_port_state(next);
        }
    }

    /// Spawns the task that wakes the loop when `conn` closes.
    fn watch(&mut self, conn: &Connection) {
        let conn = conn.clone();
        self.watchers.spawn(async move {
            conn.closed().await;
        });
    }

    fn close_parked(&mut self) {
        for conn in self.parked.drain(..) {
            Counters::bump(&self.shared.counters.connections_discarded);
            close_in_background(conn);
        }
    }

    /// Publishes the buckets to the request path and the fill waiters.
    fn publish(&self) {
        self.shared.publish(Snapshot {
            sharder: self.layout.flatten(),
            shard_aware_port: self.shard_aware_port,
            buckets: self.buckets.clone(),
        });
    }

    /// Stops every attempt and closes every connection, letting in-flight
    /// requests finish.
    async fn shutdown(mut self) {
        self.attempts.shutdown().await;
        self.watchers.abort_all();
        let conns: Vec<Connection> = self
            .buckets
            .iter_mut()
            .flat_map(std::mem::take)
            .chain(self.parked.drain(..))
            .collect();
        self.publish();
        let mut closing = JoinSet::new();
        for conn in conns {
            closing.spawn(async move { conn.close().await });
        }
        while closing.join_next().await.is_some() {}
        debug!(node = %self.shared.address, "pool closed");
        self.shared.done.send_replace(true);
    }
}

/// Failures that say something about the remote shard-aware port (it
/// refused or did not answer), as opposed to the local machine running out
/// of source ports.
fn reaches_port(e: &ConnectionError) -> bool {
    matches!(e, ConnectionError::Io(_) | ConnectionError::Timeout(_))
}

fn close_in_background(conn: Connection) {
    tokio::spawn(async move { conn.close().await });
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// One connection attempt: open through `route`, then set the keyspace.
async fn attempt(
    shared: Arc<Shared>,
    config: Arc<ConnectionConfig>,
    route: Route,
    range: ShardAwarePortRange,
    random: u64,
) -> Outcome {
    let opened = match route {
        Route::Regular => open(shared.address, None, &config).await,
        Route::ShardAware {
            shard,
            sharder,
            port,
            ..
        } => {
            let target = SocketAddr::new(shared.address.ip(), port);
            open_shard_aware(target, shard, sharder, range, random, &config).await
        }
    };
    match opened {
        Ok((conn, _)) => set_keyspace(shared, conn, route).await,
        Err(e) => Outcome {
            route,
            result: Err(e),
        },
    }
}

/// Connects to the shard-aware port from source ports that select `shard`,
/// moving to the next port only when the current one cannot be used. Every
/// candidate is tried: a clash costs one failed system call.
async fn open_shard_aware(
    target: SocketAddr,
    shard: u16,
    sharder: Sharder,
    range: ShardAwarePortRange,
    random: u64,
    config: &ConnectionConfig,
) -> Result<(Connection, ServerFeatures), ConnectionError> {
    let mut last = None;
    for port in sharder.source_ports_for_shard(range, shard, random) {
        match open(target, Some(port), config).await {
            Err(e) if e.is_address_unavailable() => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| ConnectionError::AddressUnavailable {
        port: 0,
        source: io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("no local port in {range:?} selects shard {shard}"),
        ),
    }))
}

/// `USE` the pool's current keyspace on a new connection (closing it if
/// the connection fails); the outcome carries the generation that was set.
async fn set_keyspace(shared: Arc<Shared>, conn: Connection, route: Route) -> Outcome {
    let (keyspace, generation) = shared.keyspace();
    let result = match keyspace {
        None => Ok((conn, generation)),
        Some(keyspace) => {
            let limit = shared.config.connection.connect_timeout;
            let used = tokio::time::timeout(limit, conn.use_keyspace(&keyspace))
                .await
                .unwrap_or(Err(ConnectionError::Timeout(limit)));
            match used {
                Ok(()) => Ok((conn, generation)),
                // The node refuses the keyspace (dropped since?): keep the
                // connection, whose requests will report that, rather than
                // leave the node without connections.
                Err(ConnectionError::Server(e)) => {
                    warn!(node = %shared.address, %keyspace, error = %e.message,
                        "new connection could not USE the pool's keyspace");
                    Ok((conn, generation))
                }
                Err(e) => {
                    conn.close_within(Duration::ZERO).await;
                    Err(e)
                }
            }
        }
    };
    Outcome { route, result }
}

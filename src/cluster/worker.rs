//! The cluster worker: one background task that owns the control
//! connection, reacts to server events, refreshes metadata (debounced after
//! events, and periodically), keeps one pool per node and publishes each new
//! [`ClusterState`] for the request path.
//!
//! Everything that changes the state happens here, one change at a time,
//! so readers only ever see complete snapshots.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::control::{ControlConnection, Metadata, MetadataError, OpenFailure};
use super::host_policy::HostPolicy;
use super::node::NodeRuntime;
use super::state::{ClusterState, Node};
use super::tablets::TabletMap;
use crate::connection::ConnectionConfig;
use crate::pool::{Backoff, NodePool, PoolConfig};
use crate::protocol::response::Event;

/// Settings of the cluster layer.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Addresses to open the control connection to, in order.
    pub contact_points: Vec<SocketAddr>,
    /// Settings of the control connection.
    pub connection: ConnectionConfig,
    /// Settings of every node pool.
    pub pool: PoolConfig,
    /// Full metadata refresh even without events.
    pub refresh_interval: Duration,
    /// Quiet time after an event before refreshing, so a burst of events
    /// (a multi-table DDL, a rolling restart) costs one refresh.
    pub event_debounce: Duration,
    /// Longest a refresh is postponed by a continuous stream of events.
    pub event_debounce_max: Duration,
    /// Which nodes are used, and where the advertised addresses lead.
    pub hosts: HostPolicy,
}

impl ClusterConfig {
    pub fn new(contact_points: Vec<SocketAddr>) -> ClusterConfig {
        ClusterConfig {
            contact_points,
            connection: ConnectionConfig::default(),
            pool: PoolConfig::default(),
            refresh_interval: Duration::from_secs(60),
            event_debounce: Duration::from_millis(200),
            event_debounce_max: Duration::from_secs(1),
            hosts: HostPolicy::default(),
        }
    }
}

/// Delay between rounds of control-connection attempts, doubling with
/// jitter. The ceiling is low on purpose: while no node accepts the
/// control connection, the session learns of a node coming back only by
/// trying (no control connection, no UP event), so the ceiling is how late
/// it may notice; a round costs one refused connect per known node.
/// Whole cluster down for 3 s, then one node back (tests/availability.rs):
/// first success 0.15-3.5 s after it answered with a 5 s ceiling,
/// 0.08-0.5 s with this one.
const RECONNECT_BASE: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_millis(500);
/// Bound on closing pools and the control connection at shutdown.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

pub(super) enum Command {
    /// Refresh now; answers whether it succeeded.
    Refresh(oneshot::Sender<bool>),
    Shutdown(oneshot::Sender<()>),
}

/// Server events a [`Cluster`] keeps for its subscribers before the
/// slowest misses the oldest.
const EVENT_BROADCAST: usize = 256;

/// What readers share with the worker.
pub(super) struct Shared {
    pub(super) state: ArcSwap<ClusterState>,
    pub(super) tablets: Arc<TabletMap>,
    /// Every server event the control connection receives.
    pub(super) events: tokio::sync::broadcast::Sender<Event>,
}

impl Shared {
    pub(super) fn new(state: ClusterState, tablets: Arc<TabletMap>) -> Shared {
        Shared {
            state: ArcSwap::from_pointee(state),
            tablets,
            events: tokio::sync::broadcast::channel(EVENT_BROADCAST).0,
        }
    }
}

/// Handle to the cluster layer; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pub(super) shared: Arc<Shared>,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    /// Keyspace of pools created from now on (read by the worker).
    pub(super) keyspace: Arc<Mutex<Option<String>>>,
}

impl Cluster {
    /// Opens the control connection (first contact point that answers and
    /// serves metadata), reads the metadata, creates a pool per node,
    /// publishes the first state and starts the worker.
    pub async fn connect(
        config: ClusterConfig,
        tablets: Arc<TabletMap>,
    ) -> Result<Cluster, Vec<OpenFailure>> {
        let candidates = contact_order(&config.contact_points, &config.hosts);
        let (control, events, metadata) = open_control(&candidates, &config).await?;
        tracing::debug!(control = %control.address(), nodes = metadata.nodes.len(), "control connection ready");
        let keyspace = Arc::new(Mutex::new(config.pool.connection.keyspace.clone()));
        let shared = Arc::new(Shared::new(ClusterState::empty(), tablets));
        let (tx, rx) = mpsc::unbounded_channel();
        let mut worker = Worker {
            shared: shared.clone(),
            config,
            control: Some(control),
            events: Some(events),
            runtimes: HashMap::new(),
            keyspace: keyspace.clone(),
            generation: 0,
            commands: rx,
        };
        worker.apply(metadata, true).await;
        tokio::spawn(worker.run());
        Ok(Cluster {
            shared,
            commands: tx,
            keyspace,
        })
    }

    /// The current snapshot, for the request path: one atomic load.
    pub fn state(&self) -> arc_swap::Guard<Arc<ClusterState>> {
        self.shared.state.load()
    }

    /// The current snapshot, owned.
    pub fn state_full(&self) -> Arc<ClusterState> {
        self.shared.state.load_full()
    }

    pub fn tablets(&self) -> &Arc<TabletMap> {
        &self.shared.tablets
    }

    /// Server events (topology, status, schema) from now on, as the
    /// control connection receives them. A receiver that falls more than
    /// 256 events behind misses the oldest.
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Refreshes metadata now and waits (at most `timeout`) for the new
    /// state to be published. False if it failed or took too long.
    pub async fn refresh(&self, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Refresh(tx)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(true)))
    }

    /// Makes pools created from now on start in `keyspace` (existing pools
    /// are switched by the caller).
    pub fn set_keyspace(&self, keyspace: Option<String>) {
        *self.keyspace.lock().unwrap_or_else(|p| p.into_inner()) = keyspace;
    }

    /// Stops the worker, closes the control connection and every pool.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(CLOSE_BOUND * 2, rx).await;
        }
    }
}

/// What woke the worker up.
enum Wake {
    Command(Option<Command>),
    Event(Option<Event>),
    ControlBroken,
    Debounced,
    Periodic,
}

struct Worker {
    shared: Arc<Shared>,
    config: ClusterConfig,
    control: Option<ControlConnection>,
    events: Option<mpsc::Receiver<Event>>,
    /// Pool and counters of every known node, by host id.
    runtimes: HashMap<[u8; 16], Arc<NodeRuntime>>,
    keyspace: Arc<Mutex<Option<String>>>,
    generation: u64,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl Worker {
    async fn run(mut self) {
        let mut periodic = tokio::time::interval_at(
            Instant::now() + self.config.refresh_interval,
            self.config.refresh_interval,
        );
        periodic.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // (first event of the burst, refresh deadline)
        let mut pending: Option<(Instant, Instant)> = None;
        let mut waiting: Vec<oneshot::Sender<bool>> = Vec::new();
        loop {
            if self.control.is_none() {
                match self.reconnect(&mut waiting).await {
                    Some(()) => {
                        pending = None;
                        continue;
                    }
                    None => return,
                }
            }
            let wake = {
                let control = self.control.as_ref().expect("checked above");
                let events = self.events.as_mut().expect("set with control");
                let deadline = pending.map(|(_, d)| d);
                tokio::select! {
                    cmd = self.commands.recv() => Wake::Command(cmd),
                    ev = events.recv() => Wake::Event(ev),
                    _ = control.closed() => Wake::ControlBroken,
                    _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Wake::Debounced,
                    _ = periodic.tick() => Wake::Periodic,
                }
            };
            match wake {
                Wake::Command(Some(Command::Refresh(reply))) => {
                    if self.refresh().await {
                        let _ = reply.send(true);
                        pending = None;
                    } else {
                        // Answered after the reconnect's refresh.
                        waiting.push(reply);
                    }
                }
                Wake::Command(Some(Command::Shutdown(reply))) => {
                    self.shutdown().await;
                    let _ = reply.send(());
                    return;
                }
                Wake::Command(None) => {
                    self.shutdown().await;
                    return;
                }
                Wake::Event(Some(event)) => {
                    // Nobody subscribed is not an error.
                    let _ = self.shared.events.send(event.clone());
                    if self.on_event(event) {
                        let now = Instant::now();
                        let first = pending.map_or(now, |(first, _)| first);
                        let deadline = (now + self.config.event_debounce)
                            .min(first + self.config.event_debounce_max);
                        pending = Some((first, deadline));
                    }
                }
                Wake::Event(None) | Wake::ControlBroken => {
                    self.drop_control("connection broke").await
                }
                Wake::Debounced | Wake::Periodic => {
                    if self.refresh().await {
                        pending = None;
                    }
                }
            }
        }
    }

    /// Full refresh over the control connection; a failure drops the
    /// control connection so the next loop opens another.
    async fn refresh(&mut self) -> bool {
        let Some(control) = &self.control else {
            return false;
        };
        match fetch_resolved(control, &self.config.hosts).await {
            Ok(metadata) => {
                self.apply(metadata, false).await;
                true
            }
            Err(e) => {
                tracing::warn!(control = %control.address(), error = %e, "metadata refresh failed");
                self.drop_control("metadata refresh failed").await;
                false
            }
        }
    }

    async fn drop_control(&mut self, why: &str) {
        if let Some(control) = self.control.take() {
            tracing::info!(control = %control.address(), why, "control connection lost");
            control.close().await;
        }
        self.events = None;
    }

    /// Opens a new control connection to any known node or contact point,
    /// retrying with backoff, then refreshes. Commands keep being served;
    /// refresh requests are answered once the refresh ran. `None` = shut
    /// down.
    async fn reconnect(&mut self, waiting: &mut Vec<oneshot::Sender<bool>>) -> Option<()> {
        let mut backoff = Backoff::new(RECONNECT_BASE, RECONNECT_MAX);
        loop {
            let candidates = self.candidates();
            match open_control(&candidates, &self.config).await {
                Ok((control, events, metadata)) => {
                    tracing::info!(control = %control.address(), "control connection reopened");
                    self.control = Some(control);
                    self.events = Some(events);
                    // Events may have been missed: trust the pools again.
                    self.apply(metadata, true).await;
                    // A node answers again, and UP events sent while
                    // no control connection listened are lost: every
                    // pool retries now, not after its own backoff.
                    for runtime in self.runtimes.values() {
                        runtime.pool.reconnect_now();
                    }
                    for reply in waiting.drain(..) {
                        let _ = reply.send(true);
                    }
                    return Some(());
                }
                Err(failures) => {
                    tracing::warn!(?failures, "no node accepted the control connection");
                }
            }
            let wake = Instant::now() + backoff.next_delay();
            loop {
                tokio::select! {
                    cmd = self.commands.recv() => match cmd {
                        Some(Command::Refresh(reply)) => waiting.push(reply),
                        Some(Command::Shutdown(reply)) => {
                            self.shutdown().await;
                            let _ = reply.send(());
                            return None;
                        }
                        None => {
                            self.shutdown().await;
                            return None;
                        }
                    },
                    _ = tokio::time::sleep_until(wake) => break,
                }
            }
        }
    }

    /// Known nodes the filter lets through (up ones first, rotated so
    /// reconnects spread), then the contact points (those the filter
    /// excludes last: only to rediscover the cluster).
    fn candidates(&self) -> Vec<SocketAddr> {
        let state = self.shared.state.load();
        let mut nodes: Vec<&Node> = state.nodes().iter().filter(|n| !n.filtered_out).collect();
        nodes.sort_by_key(|n| !n.up);
        let up = nodes.iter().filter(|n| n.up).count();
        if up > 1 {
            let by = (state.generation() as usize) % up;
            nodes[..up].rotate_left(by);
        }
        let mut out: Vec<SocketAddr> = nodes.iter().map(|n| n.address).collect();
        for c in contact_order(&self.config.contact_points, &self.config.hosts) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Handles one event; returns whether it calls for a refresh.
    fn on_event(&mut self, event: Event) -> bool {
        tracing::debug!(?event, "cluster event");
        match event {
            Event::StatusChange { change, address } => {
                let address = self.config.hosts.reachable(address);
                let up = change.eq_ignore_ascii_case("UP");
                let state = self.shared.state.load();
                let Some(index) = state.node_index_by_ip(address.ip()) else {
                    // A node we do not know yet: the topology changed.
                    return up;
                };
                if up {
                    if let Some(pool) = state.nodes()[index].pool() {
                        pool.reconnect_now();
                    }
                }
                if state.nodes()[index].up != up {
                    self.generation += 1;
                    let next = state.with_status(self.generation, |n| {
                        if n.address.ip() == address.ip() {
                            n.up = up;
                        }
                    });
                    self.shared.state.store(Arc::new(next));
                }
                false
            }
            Event::TopologyChange { .. } => {
                // Tablets migrate after a node joins or leaves.
                self.shared.tablets.doubt_all();
                true
            }
            Event::SchemaChange(change) => {
                if change.change == "DROPPED" {
                    match (change.target.as_str(), &change.name) {
                        ("TABLE", Some(table)) => {
                            self.shared.tablets.remove_table(&change.keyspace, table)
                        }
                        ("KEYSPACE", _) => {
                            let dropped = change.keyspace.clone();
                            self.shared.tablets.retain_keyspaces(|k| k != dropped);
                        }
                        _ => {}
                    }
                }
                matches!(change.target.as_str(), "KEYSPACE" | "TABLE")
            }
        }
    }

    /// Publishes a state built from `metadata`: nodes keep their pool while
    /// their address is unchanged, new nodes get one, removed nodes lose
    /// theirs. With `reset_status` every node starts up (after a reconnect
    /// events may have been missed; a node whose pool is empty is skipped
    /// by the request path anyway).
    async fn apply(&mut self, metadata: Metadata, reset_status: bool) {
        let previous = self.shared.state.load_full();
        let keyspace = self.current_keyspace();
        let mut created = Vec::new();
        let mut pool_config: Option<Arc<PoolConfig>> = None;
        let mut retired = Vec::new();
        let mut nodes = Vec::with_capacity(metadata.nodes.len());
        for info in metadata.nodes {
            let up = reset_status
                || previous
                    .node_index_by_host_id(&info.host_id)
                    .and_then(|i| previous.node(i))
                    .is_none_or(|n| n.up);
            if !self
                .config
                .hosts
                .filter
                .accepts(info.address.ip(), &info.datacenter)
            {
                // No pool, no connection; a pool it had goes (it can only
                // have had one under another address that passed).
                if let Some(old) = self.runtimes.remove(&info.host_id) {
                    retired.push(old);
                }
                nodes.push(Node::filtered_out(info, up));
                continue;
            }
            let runtime = match self.runtimes.get(&info.host_id) {
                Some(r) if r.pool.address() == info.address => r.clone(),
                existing => {
                    if let Some(old) = existing {
                        retired.push(old.clone());
                    }
                    let config = pool_config.get_or_insert_with(|| {
                        let mut config = self.config.pool.clone();
                        config.connection.keyspace = keyspace.clone();
                        Arc::new(config)
                    });
                    tracing::debug!(address = %info.address, "new node pool");
                    let runtime = Arc::new(NodeRuntime::new(NodePool::new(
                        info.address,
                        config.clone(),
                    )));
                    self.runtimes.insert(info.host_id, runtime.clone());
                    created.push(runtime.pool.clone());
                    runtime
                }
            };
            nodes.push(Node::new(info, up, Some(runtime)));
        }
        let joined = !previous.nodes().is_empty()
            && nodes
                .iter()
                .any(|n| previous.node_index_by_host_id(&n.host_id).is_none());
        if joined {
            // A node found without its NEW_NODE event (missed while the
            // control connection was away): its tablets are moving too.
            self.shared.tablets.doubt_all();
        }
        let mut removed_hosts = Vec::new();
        self.runtimes.retain(|host_id, runtime| {
            let keep = nodes
                .iter()
                .any(|n| &n.host_id == host_id && !n.filtered_out);
            if !keep {
                retired.push(runtime.clone());
                removed_hosts.push(*host_id);
            }
            keep
        });
        self.shared.tablets.forget_hosts(&removed_hosts);
        self.generation += 1;
        let generation = self.generation;
        let keyspaces = metadata.keyspaces;
        let state =
            tokio::task::spawn_blocking(move || ClusterState::build(nodes, keyspaces, generation))
                .await
                .expect("building the cluster state does not panic");
        self.shared
            .tablets
            .retain_keyspaces(|k| state.keyspace(k).is_some_and(|k| k.uses_tablets));
        self.shared.state.store(Arc::new(state));
        // The session may have switched keyspace after we read it but before
        // it could see the new pools: bring those pools along.
        match self.current_keyspace() {
            Some(now) if keyspace.as_ref() != Some(&now) => {
                for pool in created {
                    let now = now.clone();
                    tokio::spawn(async move {
                        if let Err(e) = pool.use_keyspace(&now).await {
                            tracing::warn!(address = %pool.address(), error = %e, "USE on a new pool failed");
                        }
                    });
                }
            }
            _ => {}
        }
        for runtime in retired {
            tracing::info!(address = %runtime.pool.address(), "node removed: closing its pool");
            tokio::spawn(async move {
                let _ = tokio::time::timeout(CLOSE_BOUND, runtime.pool.close()).await;
            });
        }
    }

    fn current_keyspace(&self) -> Option<String> {
        self.keyspace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn shutdown(&mut self) {
        self.drop_control("shutdown").await;
        let mut closing = tokio::task::JoinSet::new();
        for (_, runtime) in self.runtimes.drain() {
            closing.spawn(async move {
                let _ = tokio::time::timeout(CLOSE_BOUND, runtime.pool.close()).await;
            });
        }
        while closing.join_next().await.is_some() {}
    }
}

/// Contact points in the order to try them: those the address lists let
/// through first; the others only serve to discover the cluster (the
/// control connection then moves to a node the filter lets through).
fn contact_order(contact_points: &[SocketAddr], hosts: &HostPolicy) -> Vec<SocketAddr> {
    let (mut first, last): (Vec<SocketAddr>, Vec<SocketAddr>) = contact_points
        .iter()
        .partition(|c| hosts.filter.accepts_address(c.ip()));
    first.extend(last);
    first
}

/// The topology and schema, with every peer's advertised address
/// translated to where the driver reaches it.
async fn fetch_resolved(
    control: &ControlConnection,
    hosts: &HostPolicy,
) -> Result<Metadata, MetadataError> {
    let mut metadata = control.fetch().await?;
    if hosts.translates() {
        // The control node (first) is already where we reached it.
        for peer in metadata.nodes.iter_mut().skip(1) {
            peer.address = hosts.reachable(peer.address);
        }
    }
    Ok(metadata)
}

/// Opens the control connection to the first of `candidates` that answers
/// and serves metadata, on a node the host filter lets through: when the
/// node reached is filtered out, its peers that pass are tried next (and
/// the connection to it closed). Fails with one reason per node tried, or
/// at once when the filter excludes every node of the cluster.
async fn open_control(
    candidates: &[SocketAddr],
    config: &ClusterConfig,
) -> Result<(ControlConnection, mpsc::Receiver<Event>, Metadata), Vec<OpenFailure>> {
    let filter = &config.hosts.filter;
    let mut queue: Vec<SocketAddr> = candidates.to_vec();
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut failures = Vec::new();
    let mut next = 0;
    while let Some(&address) = queue.get(next) {
        next += 1;
        if tried.contains(&address) {
            continue;
        }
        tried.push(address);
        let (control, events) = match ControlConnection::open(&[address], &config.connection).await
        {
            Ok(opened) => opened,
            Err(why) => {
                failures.extend(why);
                continue;
            }
        };
        let metadata = match fetch_resolved(&control, &config.hosts).await {
            Ok(metadata) => metadata,
            Err(e) => {
                failures.push(OpenFailure {
                    address,
                    reason: e.to_string(),
                    server_error: match &e {
                        MetadataError::Server(body) => Some(body.clone()),
                        _ => None,
                    },
                    tls_error: None,
                });
                control.close().await;
                continue;
            }
        };
        let passes = |n: &super::topology::PeerInfo| filter.accepts(n.address.ip(), &n.datacenter);
        if metadata.nodes.first().is_some_and(passes) {
            return Ok((control, events, metadata));
        }
        control.close().await;
        let allowed: Vec<SocketAddr> = metadata
            .nodes
            .iter()
            .filter(|n| passes(n))
            .map(|n| n.address)
            .collect();
        if allowed.is_empty() {
            let nodes: Vec<String> = metadata
                .nodes
                .iter()
                .map(|n| format!("{} ({})", n.address.ip(), n.datacenter))
                .collect();
            failures.push(OpenFailure {
                address,
                reason: format!(
                    "the host filter excludes every node of the cluster: {}",
                    nodes.join(", ")
                ),
                server_error: None,
                tls_error: None,
            });
            return Err(failures);
        }
        tracing::debug!(%address, ?allowed, "control node filtered out; moving to an allowed node");
        for (i, a) in allowed.into_iter().enumerate() {
            queue.insert(next + i, a);
        }
    }
    Err(failures)
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;

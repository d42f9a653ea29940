//! What a user can observe about a session: request totals and errors by
//! kind, latency percentiles overall and per node, connections and
//! requests per node and shard, and the tablet map. Counting is atomic
//! adds only, so it costs the request path no lock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::latency::{LatencyHistogram, LatencySummary};
use super::retry::Decision;
use super::types::DriverError;
use crate::cluster::{ClusterState, TabletStats};
use crate::pool::PoolStats;
use crate::protocol::response::error_code;

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMetrics {
    pub address: SocketAddr,
    pub host_id: [u8; 16],
    pub datacenter: String,
    pub rack: String,
    /// As far as the driver knows (STATUS_CHANGE events).
    pub up: bool,
    /// Known once a connection reported the node's sharding.
    pub nr_shards: Option<u16>,
    /// Live connections per shard (one entry for servers without shards).
    pub connections_per_shard: Vec<usize>,
    /// Requests sent per shard (each attempt counts).
    pub requests_per_shard: Vec<u64>,
    /// Requests sent on connections whose shard was unknown.
    pub requests_other: u64,
    /// Attempts on this node that failed (server error, broken connection,
    /// timeout), whatever happened to the request after.
    pub errors: u64,
    /// Attempts' latencies on this node.
    pub latency: LatencySummary,
    /// Whether new connections to this node use the shard-aware port.
    pub shard_aware_port_in_use: bool,
    /// How the node's connections were made (shard-aware port use, NAT
    /// detections, fallbacks to the regular port).
    pub pool: PoolStats,
}

impl NodeMetrics {
    pub fn connections(&self) -> usize {
        self.connections_per_shard.iter().sum()
    }

    pub fn requests(&self) -> u64 {
        self.requests_per_shard.iter().sum::<u64>() + self.requests_other
    }
}

/// Failed requests by what went wrong (each failed request counts once,
/// by its final error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// The client-side timeout expired.
    pub client_timeouts: u64,
    /// READ_TIMEOUT or WRITE_TIMEOUT from the server.
    pub server_timeouts: u64,
    /// UNAVAILABLE from the server.
    pub unavailable: u64,
    /// OVERLOADED, IS_BOOTSTRAPPING or RATE_LIMIT_REACHED.
    pub overloaded: u64,
    /// Every other server error (syntax, invalid, unauthorized, failures).
    pub other_server: u64,
    /// The connection broke or the server broke the protocol.
    pub connection: u64,
    /// No node could be tried.
    pub no_host: u64,
    /// Refused by the client: bad arguments, session closed.
    pub client: u64,
}

/// A session's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMetrics {
    pub nodes: Vec<NodeMetrics>,
    pub tablets: TabletStats,
    /// Requests (execute, batch, prepare) accepted from the caller.
    pub requests: u64,
    /// Of those, the ones that failed.
    pub errors: u64,
    pub errors_by_kind: ErrorCounts,
    /// Extra attempts beyond the first of each request.
    pub retries: u64,
    /// What the retry policies decided after failed attempts.
    pub retry_decisions: RetryDecisionCounts,
    /// Attempts started while an earlier one of the same request was
    /// still running (speculative execution).
    pub speculative_executions: u64,
    /// Requests a speculative execution answered first.
    pub speculative_wins: u64,
    /// Requests admitted and not yet completed.
    pub in_flight: u64,
    /// Latency of caller requests, from admission to completion.
    pub latency: LatencySummary,
    /// Prepared statements the session's cache keeps alive.
    pub prepared_cached: usize,
}

impl SessionMetrics {
    pub fn connections(&self) -> usize {
        self.nodes.iter().map(NodeMetrics::connections).sum()
    }
}

/// Retry decisions after failed attempts, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryDecisionCounts {
    /// Sent again to the same node and shard.
    pub same_target: u64,
    /// Sent to the next node of the plan.
    pub next_target: u64,
    /// Sent again to the same node at a lower consistency.
    pub downgraded: u64,
    /// Write timeouts reported as success (some replica took the write).
    pub ignored: u64,
    /// Errors a policy could have retried and returned instead.
    pub rethrown: u64,
}

/// The counters behind [`RetryDecisionCounts`].
#[derive(Debug, Default)]
pub struct RetryDecisionCounters {
    same_target: AtomicU64,
    next_target: AtomicU64,
    downgraded: AtomicU64,
    ignored: AtomicU64,
    rethrown: AtomicU64,
}

impl RetryDecisionCounters {
    /// Counts one decision (re-preparing and plain failures are not retry
    /// decisions).
    pub fn count(&self, decision: Decision) {
        let counter = match decision {
            Decision::SameTarget => &self.same_target,
            Decision::NextTarget => &self.next_target,
            Decision::Downgrade(_) => &self.downgraded,
            Decision::Ignore => &self.ignored,
            Decision::Rethrow => &self.rethrown,
            Decision::Reprepare | Decision::Fail => return,
        };
        Totals::bump(counter);
    }

    fn counts(&self) -> RetryDecisionCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RetryDecisionCounts {
            same_target: get(&self.same_target),
            next_target: get(&self.next_target),
            downgraded: get(&self.downgraded),
            ignored: get(&self.ignored),
            rethrown: get(&self.rethrown),
        }
    }
}

/// Session-wide totals.
#[derive(Debug, Default)]
pub struct Totals {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub retry_decisions: RetryDecisionCounters,
    pub speculative_executions: AtomicU64,
    pub speculative_wins: AtomicU64,
    pub latency: LatencyHistogram,
    errors: ErrorCounters,
}

#[derive(Debug, Default)]
struct ErrorCounters {
    client_timeouts: AtomicU64,
    server_timeouts: AtomicU64,
    unavailable: AtomicU64,
    overloaded: AtomicU64,
    other_server: AtomicU64,
    connection: AtomicU64,
    no_host: AtomicU64,
    client: AtomicU64,
}

impl Totals {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one failed request by the kind of its error.
    pub fn count_error(&self, error: &DriverError) {
        let e = &self.errors;
        let counter = match error {
            DriverError::Timeout(_) => &e.client_timeouts,
            DriverError::Server(body) => match body.code {
                error_code::READ_TIMEOUT | error_code::WRITE_TIMEOUT => &e.server_timeouts,
                error_code::UNAVAILABLE => &e.unavailable,
                error_code::OVERLOADED
                | error_code::IS_BOOTSTRAPPING
                | error_code::RATE_LIMIT_REACHED => &e.overloaded,
                _ => &e.other_server,
            },
            DriverError::ConnectionBroken(_) | DriverError::Protocol(_) | DriverError::Tls(_) => {
                &e.connection
            }
            DriverError::NoHostAvailable(_) => &e.no_host,
            DriverError::InvalidArgument(_)
            | DriverError::UnknownExecutionProfile(_)
            | DriverError::Closed => &e.client,
        };
        Totals::bump(counter);
    }

    fn error_counts(&self) -> ErrorCounts {
        let e = &self.errors;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ErrorCounts {
            client_timeouts: get(&e.client_timeouts),
            server_timeouts: get(&e.server_timeouts),
            unavailable: get(&e.unavailable),
            overloaded: get(&e.overloaded),
            other_server: get(&e.other_server),
            connection: get(&e.connection),
            no_host: get(&e.no_host),
            client: get(&e.client),
        }
    }
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.client_timeouts
            + self.server_timeouts
            + self.unavailable
            + self.overloaded
            + self.other_server
            + self.connection
            + self.no_host
            + self.client
    }
}

/// Gathers the metrics from the state's node runtimes.
pub fn collect(
    state: &ClusterState,
    tablets: TabletStats,
    totals: &Totals,
    in_flight: usize,
) -> SessionMetrics {
    let nodes = state
        .nodes()
        .iter()
        // Filtered-out nodes have no pool and get no request: not listed.
        .filter(|node| !node.filtered_out)
        .map(|node| {
            let (connections_per_shard, nr_shards, shard_aware_port_in_use, pool) = node
                .pool()
                .map(|p| {
                    (
                        p.connection_counts(),
                        p.nr_shards(),
                        p.shard_aware_port_in_use(),
                        p.stats(),
                    )
                })
                .unwrap_or_default();
            let runtime = node.runtime();
            let (mut requests_per_shard, requests_other) =
                runtime.map(|r| r.requests.snapshot()).unwrap_or_default();
            if let Some(n) = nr_shards {
                requests_per_shard.resize(usize::from(n).max(requests_per_shard.len()), 0);
            }
            NodeMetrics {
                address: node.address,
                host_id: node.host_id,
                datacenter: node.datacenter.clone(),
                rack: node.rack.clone(),
                up: node.up,
                nr_shards,
                connections_per_shard,
                requests_per_shard,
                requests_other,
                errors: runtime.map_or(0, |r| r.errors.load(Ordering::Relaxed)),
                latency: runtime.map(|r| r.latency.summary()).unwrap_or_default(),
                shard_aware_port_in_use,
                pool,
            }
        })
        .collect();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let errors_by_kind = totals.error_counts();
    SessionMetrics {
        nodes,
        tablets,
        requests: get(&totals.requests),
        errors: errors_by_kind.total(),
        errors_by_kind,
        retries: get(&totals.retries),
        retry_decisions: totals.retry_decisions.counts(),
        speculative_executions: get(&totals.speculative_executions),
        speculative_wins: get(&totals.speculative_wins),
        in_flight: in_flight as u64,
        latency: totals.latency.summary(),
        prepared_cached: 0,
    }
}

//! The request pipeline: replicas -> plan -> connection per target ->
//! send within the remaining budget -> retry decision.

use std::cell::Cell;
use std::time::Duration;

use tokio::time::Instant;

use super::metrics::Totals;
use super::prepared_cache::{reprepare, request_error};
use super::request::{query_result, EncodedRequest};
use super::retry::{Decision, RetryPolicy, RetryState};
use super::route::{self, RoutingInfo};
use super::types::{DriverError, Prepared, Query, QueryResult, Statement};
use super::Inner;
use crate::connection::Connection;
use crate::protocol::response::{ErrorBody, ErrorDetails};
use crate::protocol::{Opcode, Response};
use crate::routing::plan::NodeFacts;

/// One request, ready to send.
pub struct Job<'a> {
    pub request: EncodedRequest,
    pub routing: Option<RoutingInfo<'a>>,
    /// Keep replica order (primary first) instead of spreading.
    pub is_lwt: bool,
    pub idempotent: bool,
    pub retry_policy: RetryPolicy,
    /// End-to-end budget, all attempts included.
    pub timeout: Duration,
    /// Statements an UNPREPARED error may refer to.
    pub statements: &'a [Statement],
}

impl Job<'_> {
    fn prepared_with_id(&self, id: &[u8]) -> Option<&Prepared> {
        self.statements.iter().find_map(|s| match &s.query {
            Query::Prepared(p) if p.id == id => Some(&**p),
            _ => None,
        })
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish() | 1
}

/// A cheap per-thread pseudo-random number to rotate plans (xorshift64*).
fn rotation() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

impl Inner {
    /// Runs `job` along its plan until it succeeds or the retry rules say
    /// stop.
    pub(crate) async fn run(&self, job: &Job<'_>) -> Result<QueryResult, DriverError> {
        let deadline = Instant::now() + job.timeout;
        let state = self.cluster.state_full();
        let tablets = self.cluster.tablets();
        let tablet_aware = self.config.tablet_awareness;
        let mut replicas = Vec::new();
        let mut learning = route::Learning::default();
        if let Some(info) = &job.routing {
            let resolution = route::replicas(&state, tablets, tablet_aware, info, &mut replicas);
            learning = match resolution {
                route::Resolution::Learn { .. } => {
                    // Boxed: only requests whose tablet is unknown or
                    // suspect wait here.
                    let until = deadline.into_std();
                    Box::pin(route::learn(&state, tablets, info, &mut replicas, until)).await
                }
                resolution => route::Learning::routed(resolution),
            };
        }
        let mut plan = Vec::with_capacity(state.nodes().len() + replicas.len());
        {
            let facts: Vec<NodeFacts<'_>> = state
                .nodes()
                .iter()
                .map(|n| NodeFacts {
                    datacenter: &n.datacenter,
                    rack: &n.rack,
                    up: n.up,
                })
                .collect();
            self.load_balancing
                .plan(&facts, &replicas, job.is_lwt, rotation(), &mut plan);
        }

        let mut retry = RetryState::new(job.retry_policy);
        // The request at a lower level, once the policy downgraded it.
        let mut downgraded = None;
        let mut reasons = Vec::new();
        let mut last_server_error = None;
        let mut attempts = 0u32;
        let mut next = 0;
        while let Some(&target) = plan.get(next) {
            let node = &state.nodes()[target.node];
            let Some(runtime) = node.runtime() else {
                next += 1;
                continue;
            };
            let Some(conn) = runtime.pool.connection(target.shard) else {
                reasons.push(format!("{}: no connection", node.address));
                next += 1;
                continue;
            };
            let sent = Instant::now();
            let remaining = deadline.saturating_duration_since(sent);
            if remaining.is_zero() {
                return Err(DriverError::Timeout(job.timeout));
            }
            if attempts > 0 {
                Totals::bump(&self.totals.retries);
            }
            attempts += 1;
            runtime
                .requests
                .count(conn.shard(), || runtime.pool.nr_shards());
            let sequence = match &job.routing {
                Some(info) if tablet_aware && info.learns => tablets.next_sequence(),
                _ => 0,
            };

            let request = downgraded.as_ref().unwrap_or(&job.request);
            let answer = conn
                .send_encoded_with_timeout(request.raw(), remaining)
                .await;
            runtime.latency.record(sent.elapsed());
            if !matches!(&answer, Ok(frame) if matches!(frame.response, Response::Result(_))) {
                Totals::bump(&runtime.errors);
            }
            let (decision, error) = match answer {
                Ok(frame) => {
                    if let Some(info) = job.routing.as_ref().filter(|i| tablet_aware && i.learns) {
                        let taught =
                            route::learn_tablet(tablets, info, &frame.extensions, sequence);
                        let by_map = learning.by_map && replicas.contains(&target);
                        if !taught && by_map && matches!(frame.response, Response::Result(_)) {
                            tablets.confirm(
                                info.keyspace,
                                info.table,
                                info.token.value(),
                                sequence,
                            );
                        }
                        // Whatever it taught is in the map: wake the waiters.
                        if let Some(ticket) = learning.ticket.take() {
                            ticket.finish();
                        }
                    }
                    match frame.response {
                        Response::Result(body) => {
                            return Ok(query_result(
                                body,
                                frame.extensions,
                                node.address,
                                conn.shard(),
                            ))
                        }
                        Response::Error(e) => match retry.on_error(&e, job.idempotent) {
                            Decision::Reprepare => {
                                // Boxed: rare, and inline it would triple the size of every
                                // request's future.
                                match Box::pin(self.reprepare(job, &e, &conn, remaining)).await {
                                    // Same node and shard again.
                                    Ok(()) => continue,
                                    Err(err @ DriverError::Server(_)) => (Decision::Fail, err),
                                    // The EXECUTE was not sent again: safe anywhere.
                                    Err(err) => (Decision::NextTarget, err),
                                }
                            }
                            decision => (decision, DriverError::Server(e)),
                        },
                        other => (
                            Decision::Fail,
                            DriverError::Protocol(format!(
                                "unexpected {:?} response",
                                other.opcode()
                            )),
                        ),
                    }
                }
                Err(e) => (
                    retry.on_request_error(&e, job.idempotent),
                    request_error(e, job.timeout),
                ),
            };
            self.totals.retry_decisions.count(decision);
            match decision {
                Decision::Downgrade(consistency) => {
                    tracing::debug!(node = %node.address, error = %error, %consistency, "retrying at a lower consistency");
                    match job.request.with_consistency(consistency) {
                        Some(request) => downgraded = Some(request),
                        None => return Err(error),
                    }
                }
                Decision::Ignore => {
                    tracing::debug!(node = %node.address, error = %error, "ignoring the write timeout");
                    return Ok(QueryResult {
                        coordinator: Some(node.address),
                        shard: conn.shard(),
                        ..QueryResult::default()
                    });
                }
                Decision::NextTarget => {
                    tracing::debug!(node = %node.address, error = %error, "trying the next target");
                    reasons.push(format!("{}: {error}", node.address));
                    if matches!(error, DriverError::Server(_)) {
                        last_server_error = Some(error);
                    }
                    next += 1;
                }
                Decision::SameTarget => {
                    tracing::debug!(node = %node.address, error = %error, "retrying on the same target");
                }
                Decision::Fail | Decision::Rethrow | Decision::Reprepare => return Err(error),
            }
        }
        Err(last_server_error.unwrap_or(DriverError::NoHostAvailable(reasons)))
    }

    /// Re-prepares the statement an UNPREPARED error names, on the
    /// connection that reported it.
    async fn reprepare(
        &self,
        job: &Job<'_>,
        error: &ErrorBody,
        conn: &Connection,
        budget: Duration,
    ) -> Result<(), DriverError> {
        let prepared = match &error.details {
            ErrorDetails::Unprepared { id } => job.prepared_with_id(id),
            _ => None,
        }
        .or_else(|| match (job.request.opcode, job.statements) {
            // The EXECUTE of the job's one statement.
            (Opcode::Execute, [statement]) => match &statement.query {
                Query::Prepared(p) => Some(&**p),
                Query::Simple(_) => None,
            },
            _ => None,
        })
        .ok_or_else(|| DriverError::Server(error.clone()))?;
        tracing::debug!(node = %conn.peer_addr(), query = %prepared.query, "re-preparing after UNPREPARED");
        reprepare(conn, prepared, &self.config.connection, budget).await
    }
}

//! The request pipeline: replicas -> plan -> connection per target ->
//! send within the remaining budget -> retry decision.

use std::cell::Cell;
use std::time::Duration;

use tokio::time::Instant;

use super::metrics::Totals;
use super::prepared_cache::{reprepare, request_error};
use super::request::{self, query_result};
use super::retry::{Decision, RetryPolicy, RetryState};
use super::route::{self, RoutingInfo};
use super::types::{DriverError, Prepared, Query, QueryResult, Statement};
use super::Inner;
use std::net::SocketAddr;

use crate::connection::{Connection, RawRequest, RawResponse, RequestError};
use crate::protocol::response::{ErrorBody, ErrorDetails};
use crate::protocol::{Opcode, Response, ResponseExtensions};
use crate::routing::plan::NodeFacts;

/// One request, ready to send.
pub struct Job<'a> {
    pub request: RawRequest<'a>,
    pub routing: Option<RoutingInfo<'a>>,
    /// Keep replica order (primary first) instead of spreading.
    pub is_lwt: bool,
    pub idempotent: bool,
    pub retry_policy: RetryPolicy,
    /// Where the body's consistency is, for a retry at a lower level
    /// (`None`: the request cannot be downgraded).
    pub consistency_at: Option<usize>,
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

/// What one attempt's response means for the request.
pub(crate) enum Answer<T> {
    /// Done: the caller's result.
    Done(T),
    /// A server ERROR, for the retry rules.
    Error(ErrorBody),
    /// A response that makes no sense here: give up.
    Fail(DriverError),
}

impl Inner {
    /// Runs `job` along its plan until it succeeds or the retry rules say
    /// stop, decoding the result.
    pub(crate) async fn run(&self, job: &Job<'_>) -> Result<QueryResult, DriverError> {
        let ignored = |coordinator, shard| {
            Some(QueryResult {
                coordinator: Some(coordinator),
                shard,
                ..QueryResult::default()
            })
        };
        self.run_with(job, ignored, |raw, conn, coordinator, learn| {
            let frame = conn.decode(&raw)?;
            learn(
                &frame.extensions,
                matches!(frame.response, Response::Result(_)),
            );
            match frame.response {
                Response::Result(body) => Ok(Answer::Done(query_result(
                    body,
                    frame.extensions,
                    coordinator,
                    conn.shard(),
                ))),
                Response::Error(e) => Ok(Answer::Error(e)),
                other => Ok(Answer::Fail(DriverError::Protocol(format!(
                    "unexpected {:?} response",
                    other.opcode()
                )))),
            }
        })
        .await
    }

    /// The request loop: `accept` turns each response into an answer (and
    /// calls `learn` with the frame's extensions and whether it is a
    /// RESULT, which records or confirms tablets); `ignored` is the answer
    /// for a write timeout the retry policy ignores (`None`: returned as
    /// the error instead).
    pub(crate) async fn run_with<T>(
        &self,
        job: &Job<'_>,
        ignored: impl Fn(SocketAddr, Option<u16>) -> Option<T>,
        accept: impl Fn(
            RawResponse,
            &Connection,
            SocketAddr,
            &dyn Fn(&ResponseExtensions, bool),
        ) -> Result<Answer<T>, RequestError>,
    ) -> Result<T, DriverError> {
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
                    up: n.is_usable(),
                })
                .collect();
            self.load_balancing
                .plan(&facts, &replicas, job.is_lwt, rotation(), &mut plan);
        }

        let mut retry = RetryState::new(job.retry_policy);
        // The body at a lower level, once the policy downgraded it.
        let mut downgraded: Option<Vec<u8>> = None;
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

            let learns = job.routing.as_ref().filter(|i| tablet_aware && i.learns);
            let by_map = learning.by_map && replicas.contains(&target);
            let learn = |extensions: &ResponseExtensions, is_result: bool| {
                if let Some(info) = learns {
                    let taught = route::learn_tablet(tablets, info, extensions, sequence);
                    if !taught && by_map && is_result {
                        tablets.confirm(info.keyspace, info.table, info.token.value(), sequence);
                    }
                }
            };
            let request = match &downgraded {
                Some(body) => RawRequest {
                    body,
                    ..job.request
                },
                None => job.request,
            };
            let answer = match conn.send_raw_with_timeout(request, remaining).await {
                Ok(raw) => {
                    let answer = accept(raw, &conn, node.address, &learn);
                    // Whatever the response taught is in the map: wake the waiters.
                    if learns.is_some() {
                        if let Some(ticket) = learning.ticket.take() {
                            ticket.finish();
                        }
                    }
                    answer
                }
                Err(e) => Err(e),
            };
            runtime.latency.record(sent.elapsed());
            if !matches!(answer, Ok(Answer::Done(_))) {
                Totals::bump(&runtime.errors);
            }
            let (decision, error) = match answer {
                Ok(Answer::Done(done)) => return Ok(done),
                Ok(Answer::Error(e)) => match retry.on_error(&e, job.idempotent) {
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
                Ok(Answer::Fail(e)) => (Decision::Fail, e),
                Err(e) => (
                    retry.on_request_error(&e, job.idempotent),
                    request_error(e, job.timeout),
                ),
            };
            self.totals.retry_decisions.count(decision);
            match decision {
                Decision::Downgrade(consistency) => {
                    tracing::debug!(node = %node.address, error = %error, %consistency, "retrying at a lower consistency");
                    let body = job.consistency_at.and_then(|at| {
                        request::with_consistency(job.request.body, at, consistency)
                    });
                    match body {
                        Some(body) => downgraded = Some(body),
                        None => return Err(error),
                    }
                }
                Decision::Ignore => {
                    tracing::debug!(node = %node.address, error = %error, "ignoring the write timeout");
                    return ignored(node.address, conn.shard()).ok_or(error);
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

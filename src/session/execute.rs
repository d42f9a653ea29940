//! The request pipeline: replicas -> plan -> connection per target ->
//! send within the remaining budget -> retry decision.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::metrics::Totals;
use super::prepared_cache::{reprepare, request_error};
use super::request::{self, query_result};
use super::retry::{Decision, RetryPolicy, RetryState};
use super::route::{self, RoutingInfo};
use super::speculation::SpeculativeExecution;
use super::types::{DriverError, Prepared, Query, QueryResult, Statement};
use super::Inner;
use std::net::SocketAddr;

use crate::cluster::{ClusterState, LearningTicket, TabletMap};
use crate::connection::{Connection, RawRequest, RawResponse, RequestError};
use crate::protocol::response::{ErrorBody, ErrorDetails};
use crate::protocol::{Opcode, Response, ResponseExtensions};
use crate::routing::plan::{LoadBalancing, Target};

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
    /// Whether to send again meanwhile (idempotent jobs only).
    pub speculation: SpeculativeExecution,
    /// Datacenter and rack preferences (the session's or a profile's).
    pub load_balancing: &'a LoadBalancing,
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

/// How one execution ended.
enum Ended<T> {
    Done(T),
    /// An error the retry rules give up on.
    Failed(DriverError),
    /// Every target of the plan was taken.
    Exhausted,
}

/// Why targets were passed over, for the error when none answered.
#[derive(Default)]
struct Failures {
    reasons: Vec<String>,
    last_server_error: Option<DriverError>,
}

/// One request's plan and what its executions share.
struct Run<'a, 'j> {
    job: &'a Job<'j>,
    state: &'a ClusterState,
    tablets: &'a TabletMap,
    /// The routing info when responses teach the tablet map.
    learns: Option<&'a RoutingInfo<'j>>,
    plan: &'a [Target],
    replicas: &'a [Target],
    /// The replicas came from the tablet map (see `route::Learning`).
    by_map: bool,
    /// The probe ticket of the request's tablet region, if it holds one.
    has_ticket: bool,
    ticket: Mutex<Option<LearningTicket>>,
    /// The plan index the next execution or retry takes.
    next: AtomicUsize,
    deadline: Instant,
    failures: Mutex<Failures>,
}

impl Run<'_, '_> {
    fn take_target(&self) -> Option<Target> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        self.plan.get(index).copied()
    }

    fn has_target(&self) -> bool {
        self.next.load(Ordering::Relaxed) < self.plan.len()
    }

    fn failed(&self, reason: String, server_error: Option<DriverError>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.reasons.push(reason);
        if server_error.is_some() {
            failures.last_server_error = server_error;
        }
    }

    /// The error of a request whose plan ran out.
    fn exhausted(&self) -> DriverError {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let reasons = std::mem::take(&mut failures.reasons);
        failures
            .last_server_error
            .take()
            .unwrap_or(DriverError::NoHostAvailable(reasons))
    }
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

/// Turns one response into an answer, given the connection and node it
/// came from and `learn` (called with the frame's extensions and whether it
/// is a RESULT, which records or confirms tablets).
pub(crate) trait Accept<T>:
    Fn(
    RawResponse,
    &Connection,
    SocketAddr,
    &dyn Fn(&ResponseExtensions, bool),
) -> Result<Answer<T>, RequestError>
{
}

impl<T, F> Accept<T> for F where
    F: Fn(
        RawResponse,
        &Connection,
        SocketAddr,
        &dyn Fn(&ResponseExtensions, bool),
    ) -> Result<Answer<T>, RequestError>
{
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

    /// The request loop: `accept` turns each response into an answer;
    /// `ignored` is the answer for a write timeout the retry policy ignores
    /// (`None`: returned as the error instead). An idempotent job whose
    /// speculative execution policy says so runs several executions along
    /// its plan at once.
    pub(crate) async fn run_with<T>(
        &self,
        job: &Job<'_>,
        ignored: impl Fn(SocketAddr, Option<u16>) -> Option<T>,
        accept: impl Accept<T>,
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
        job.load_balancing
            .plan(state.nodes(), &replicas, job.is_lwt, rotation(), &mut plan);
        let run = Run {
            job,
            state: &state,
            tablets,
            learns: job.routing.as_ref().filter(|i| tablet_aware && i.learns),
            plan: &plan,
            replicas: &replicas,
            by_map: learning.by_map,
            has_ticket: learning.ticket.is_some(),
            ticket: Mutex::new(learning.ticket),
            next: AtomicUsize::new(0),
            deadline,
            failures: Mutex::new(Failures::default()),
        };
        let schedule = if job.idempotent {
            job.speculation.schedule(&self.totals.latency)
        } else {
            None
        };
        let ended = match schedule {
            None => self.execution(&run, &ignored, &accept).await,
            // Boxed: only speculating requests carry several executions.
            Some((delay, max_attempts)) => {
                Box::pin(self.speculate(&run, &ignored, &accept, delay, max_attempts)).await
            }
        };
        match ended {
            Ended::Done(done) => Ok(done),
            Ended::Failed(error) => Err(error),
            Ended::Exhausted => Err(run.exhausted()),
        }
    }

    /// Runs executions of `run` side by side: the first now, another
    /// after each `delay` without an answer while the plan has targets
    /// left, `max_attempts` at most. The first answer wins; dropping the
    /// others cancels their attempts. A failed execution ends the request
    /// only when no other one is still running.
    async fn speculate<T>(
        &self,
        run: &Run<'_, '_>,
        ignored: &impl Fn(SocketAddr, Option<u16>) -> Option<T>,
        accept: &impl Accept<T>,
        delay: Duration,
        max_attempts: u32,
    ) -> Ended<T> {
        let mut running = Vec::with_capacity(max_attempts as usize);
        running.push((0u32, Box::pin(self.execution(run, ignored, accept))));
        let mut started = 1;
        let mut timer = Box::pin(tokio::time::sleep(delay));
        let mut failed = None;
        std::future::poll_fn(|cx| loop {
            let mut i = 0;
            while i < running.len() {
                match running[i].1.as_mut().poll(cx) {
                    Poll::Pending => i += 1,
                    Poll::Ready(Ended::Done(done)) => {
                        if running[i].0 > 0 {
                            Totals::bump(&self.totals.speculative_wins);
                        }
                        return Poll::Ready(Ended::Done(done));
                    }
                    Poll::Ready(ended) => {
                        if let Ended::Failed(error) = ended {
                            failed = Some(error);
                        }
                        drop(running.swap_remove(i));
                    }
                }
            }
            if running.is_empty() {
                return Poll::Ready(failed.take().map_or(Ended::Exhausted, Ended::Failed));
            }
            let more = started < max_attempts && run.has_target() && Instant::now() < run.deadline;
            if !more || timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            Totals::bump(&self.totals.speculative_executions);
            tracing::debug!(
                execution = started,
                ?delay,
                "starting a speculative execution"
            );
            running.push((started, Box::pin(self.execution(run, ignored, accept))));
            started += 1;
            timer.as_mut().reset(Instant::now() + delay);
        })
        .await
    }

    /// One execution: attempts along the shared plan (each target taken
    /// by one execution only) until one answers, the retry rules stop, or
    /// the plan runs out.
    async fn execution<T>(
        &self,
        run: &Run<'_, '_>,
        ignored: &impl Fn(SocketAddr, Option<u16>) -> Option<T>,
        accept: &impl Accept<T>,
    ) -> Ended<T> {
        let job = run.job;
        let tablets = run.tablets;
        let mut retry = RetryState::new(job.retry_policy);
        // The body at a lower level, once the policy downgraded it.
        let mut downgraded: Option<Vec<u8>> = None;
        let mut attempts = 0u32;
        let Some(mut target) = run.take_target() else {
            return Ended::Exhausted;
        };
        loop {
            let node = &run.state.nodes()[target.node];
            let Some(runtime) = node.runtime() else {
                match run.take_target() {
                    Some(next) => target = next,
                    None => return Ended::Exhausted,
                }
                continue;
            };
            let Some(conn) = runtime.pool.connection(target.shard) else {
                run.failed(format!("{}: no connection", node.address), None);
                match run.take_target() {
                    Some(next) => target = next,
                    None => return Ended::Exhausted,
                }
                continue;
            };
            let sent = Instant::now();
            let remaining = run.deadline.saturating_duration_since(sent);
            if remaining.is_zero() {
                return Ended::Failed(DriverError::Timeout(job.timeout));
            }
            if attempts > 0 {
                Totals::bump(&self.totals.retries);
            }
            attempts += 1;
            runtime
                .requests
                .count(conn.shard(), || runtime.pool.nr_shards());
            let sequence = match run.learns {
                Some(_) => tablets.next_sequence(),
                None => 0,
            };

            let learns = run.learns;
            let by_map = run.by_map && run.replicas.contains(&target);
            let learn = |extensions: &ResponseExtensions, is_result: bool| {
                if let Some(info) = learns {
                    let taught = route::learn_tablet(tablets, info, extensions, sequence);
                    if !taught && by_map && is_result {
                        // The replica that answered, as tablet payloads name it.
                        let replica = (node.host_id, conn.shard().unwrap_or(0));
                        let token = info.token.value();
                        tablets.confirm(info.keyspace, info.table, token, sequence, replica);
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
                    if learns.is_some() && run.has_ticket {
                        let ticket = run.ticket.lock().unwrap_or_else(|p| p.into_inner()).take();
                        if let Some(ticket) = ticket {
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
                Ok(Answer::Done(done)) => return Ended::Done(done),
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
                        None => return Ended::Failed(error),
                    }
                }
                Decision::Ignore => {
                    tracing::debug!(node = %node.address, error = %error, "ignoring the write timeout");
                    return match ignored(node.address, conn.shard()) {
                        Some(done) => Ended::Done(done),
                        None => Ended::Failed(error),
                    };
                }
                Decision::NextTarget => {
                    tracing::debug!(node = %node.address, error = %error, "trying the next target");
                    let reason = format!("{}: {error}", node.address);
                    let server = matches!(error, DriverError::Server(_)).then_some(error);
                    run.failed(reason, server);
                    match run.take_target() {
                        Some(next) => target = next,
                        None => return Ended::Exhausted,
                    }
                }
                Decision::SameTarget => {
                    tracing::debug!(node = %node.address, error = %error, "retrying on the same target");
                }
                Decision::Fail | Decision::Rethrow | Decision::Reprepare => {
                    return Ended::Failed(error)
                }
            }
        }
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

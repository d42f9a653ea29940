//! The session: the driver's public Rust API (connect, prepare, execute,
//! batch, paging, close), on top of the pools, cluster metadata and routing.
//!
//! A request reads the current cluster snapshot (one atomic load), computes
//! its token and replicas, asks the load-balancing plan for targets and
//! sends to the owning shard's connection, retrying by the rules in
//! `retry.rs`. Nothing on that path takes a lock held across I/O.

mod binding;
mod connect;
mod execute;
mod forward;
mod gate;
pub mod hints;
mod latency;
mod metrics;
mod paging;
mod prepared_cache;
mod profile;
mod prometheus;
mod request;
mod retry;
mod route;
mod routing_key;
mod schema_agreement;
mod speculation;
mod timestamps;
mod types;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, ClusterState};
use crate::routing::plan::LoadBalancing;

use execute::Job;
use gate::Gate;
use metrics::Totals;
use prepared_cache::PreparedCache;
use profile::Profiles;
use timestamps::MonotonicTimestamps;

pub use binding::MAX_VALUES;
pub use forward::{Forward, Forwarded};
pub use latency::{LatencyHistogram, LatencySummary};
pub use metrics::{ErrorCounts, NodeMetrics, RetryDecisionCounts, SessionMetrics};
pub use paging::Pager;
pub use profile::{ExecutionProfile, ProfileName};
pub use retry::RetryPolicy;
pub use route::RoutingInfo;
pub use speculation::{SpeculativeExecution, MAX_SPECULATIVE_ATTEMPTS, PERCENTILE_MIN_SAMPLES};
pub use types::{
    Batch, DriverError, Prepared, Query, QueryResult, RoutingKey, SessionConfig, Statement,
    StatementRouting,
};

/// How long `close` waits for requests in flight beyond the request
/// timeout (a request past its timeout is failing by then).
const CLOSE_SLACK: Duration = Duration::from_secs(5);
/// Bound on the metadata refresh that follows a schema change.
const SCHEMA_REFRESH_BOUND: Duration = Duration::from_secs(5);

/// A connected session. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("keyspace", &self.inner.keyspace())
            .field("closed", &self.inner.gate.is_closed())
            .finish()
    }
}

pub(crate) struct Inner {
    config: SessionConfig,
    cluster: Cluster,
    load_balancing: LoadBalancing,
    /// The config's execution profiles.
    profiles: Profiles,
    prepared: PreparedCache,
    totals: Totals,
    gate: Gate,
    /// The keyspace of `USE`, part of the prepared-cache key.
    keyspace: Mutex<Option<String>>,
    timestamps: MonotonicTimestamps,
}

impl Inner {
    /// A client-side timestamp for the next request, if the session gives
    /// them.
    fn timestamp(&self) -> Option<i64> {
        self.config
            .client_timestamps
            .then(|| self.timestamps.next())
    }

    /// The profile a statement or batch names, if any.
    fn profile(&self, name: Option<ProfileName>) -> Result<Option<&ExecutionProfile>, DriverError> {
        match name {
            None => Ok(None),
            Some(name) => self
                .profiles
                .get(name)
                .map(Some)
                .ok_or_else(|| DriverError::UnknownExecutionProfile(name.to_string())),
        }
    }

    /// The load-balancing preferences under `profile`.
    fn load_balancing_of<'a>(&'a self, profile: Option<&'a ExecutionProfile>) -> &'a LoadBalancing {
        profile
            .and_then(|p| p.load_balancing.as_ref())
            .unwrap_or(&self.load_balancing)
    }

    fn keyspace(&self) -> Option<String> {
        self.keyspace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts one caller request, its latency since `started` and its
    /// outcome.
    fn account<T>(
        &self,
        started: Instant,
        outcome: Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        Totals::bump(&self.totals.requests);
        self.totals.latency.record(started.elapsed());
        if let Err(e) = &outcome {
            self.totals.count_error(e);
        }
        outcome
    }
}

impl Session {
    /// Opens the control connection, reads the metadata, creates a pool per
    /// node, and returns once a pool has a connection (after waiting a
    /// bounded time for the contact node's pool to fill).
    pub async fn connect(config: SessionConfig) -> Result<Session, DriverError> {
        connect::connect(config).await
    }

    /// Admits one request now (so a `close` that follows waits for it), or
    /// refuses with [`DriverError::Closed`] once closing started. The
    /// request runs later through the admission's methods.
    pub fn admit(&self) -> Result<Admission, DriverError> {
        if self.inner.gate.try_enter() {
            Ok(Admission {
                session: self.clone(),
            })
        } else {
            Err(DriverError::Closed)
        }
    }

    /// Prepares `query` on every node (cached per session by keyspace and
    /// text).
    pub async fn prepare(&self, query: &str) -> Result<Arc<Prepared>, DriverError> {
        self.admit()?.prepare(query).await
    }

    async fn prepare_admitted(&self, query: &str) -> Result<Arc<Prepared>, DriverError> {
        let inner = &self.inner;
        let keyspace = inner.keyspace();
        if let Some(hit) = inner.prepared.get(keyspace.as_deref(), query) {
            return Ok(hit);
        }
        let timeout = inner.config.request_timeout;
        let started = Instant::now();
        let state = inner.cluster.state_full();
        let outcome = tokio::time::timeout(
            timeout,
            prepared_cache::prepare_everywhere(&state, query, keyspace, timeout),
        )
        .await
        .unwrap_or(Err(DriverError::Timeout(timeout)));
        let prepared = inner.account(started, outcome)?;
        Ok(inner.prepared.insert(Arc::new(prepared)))
    }

    /// Runs one statement (one page of it, if it pages).
    pub async fn execute(&self, statement: &Statement) -> Result<QueryResult, DriverError> {
        self.admit()?.execute(statement).await
    }

    /// `started`: when the caller's request was admitted (its timeout
    /// counts from there).
    async fn execute_admitted(
        &self,
        statement: &Statement,
        started: Instant,
    ) -> Result<QueryResult, DriverError> {
        let inner = &self.inner;
        let profile = inner.profile(statement.execution_profile)?;
        let own = (
            statement.consistency,
            statement.serial_consistency,
            statement.timeout,
        );
        let levels = request::Levels::of(own, profile, &inner.config);
        let request =
            request::statement_request(statement, &inner.config, &levels, inner.timestamp())?;
        let use_keyspace = statement
            .routing
            .as_ref()
            .filter(|r| r.keyspace.is_none())
            .and_then(|_| inner.keyspace());
        let routing =
            routing_key::routing_of(statement, use_keyspace.as_deref(), &inner.cluster.state());
        let is_lwt = matches!(&statement.query, Query::Prepared(p) if p.is_lwt());
        let timeout = levels.timeout;
        let job = Job {
            request: request.raw(),
            consistency_at: request.consistency_at,
            routing,
            is_lwt: is_lwt || levels.consistency.is_serial(),
            idempotent: statement.idempotent,
            retry_policy: statement
                .retry_policy
                .or(profile.and_then(|p| p.retry_policy))
                .unwrap_or(inner.config.default_retry_policy),
            timeout,
            statements: std::slice::from_ref(statement),
            speculation: statement
                .speculative_execution
                .or(profile.and_then(|p| p.speculative_execution))
                .unwrap_or(inner.config.default_speculative_execution),
            load_balancing: inner.load_balancing_of(profile),
        };
        let mut result = inner.run(&job).await?;
        self.after(&mut result, timeout.saturating_sub(started.elapsed()))
            .await?;
        Ok(result)
    }

    /// Runs a batch. It is routed by its first statement whose partition is
    /// known (a prepared one with a complete key, or a routing key), as the
    /// drivers do.
    pub async fn batch(&self, batch: &Batch) -> Result<QueryResult, DriverError> {
        self.admit()?.batch(batch).await
    }

    async fn batch_admitted(&self, batch: &Batch) -> Result<QueryResult, DriverError> {
        let inner = &self.inner;
        let started = Instant::now();
        let outcome = async {
            let profile = inner.profile(batch.execution_profile)?;
            let own = (batch.consistency, batch.serial_consistency, batch.timeout);
            let levels = request::Levels::of(own, profile, &inner.config);
            let request = request::batch_request(batch, &inner.config, &levels, inner.timestamp())?;
            let use_keyspace = batch
                .statements
                .iter()
                .any(|s| s.routing.as_ref().is_some_and(|r| r.keyspace.is_none()))
                .then(|| inner.keyspace())
                .flatten();
            let state = inner.cluster.state();
            // Batches never bring tablet payloads: route, don't learn.
            let routing = batch
                .statements
                .iter()
                .find_map(|s| routing_key::routing_of(s, use_keyspace.as_deref(), &state))
                .map(|r| route::RoutingInfo { learns: false, ..r });
            let is_lwt = batch
                .statements
                .iter()
                .any(|s| matches!(&s.query, Query::Prepared(p) if p.is_lwt()));
            let job = Job {
                request: request.raw(),
                consistency_at: request.consistency_at,
                routing,
                is_lwt,
                idempotent: batch.idempotent,
                retry_policy: batch
                    .retry_policy
                    .or(profile.and_then(|p| p.retry_policy))
                    .unwrap_or(inner.config.default_retry_policy),
                timeout: levels.timeout,
                statements: &batch.statements,
                speculation: batch
                    .speculative_execution
                    .or(profile.and_then(|p| p.speculative_execution))
                    .unwrap_or(inner.config.default_speculative_execution),
                load_balancing: inner.load_balancing_of(profile),
            };
            inner.run(&job).await
        }
        .await;
        inner.account(started, outcome)
    }

    /// `USE keyspace` on every pool; new connections start in it too.
    /// `keyspace` is the exact, case-sensitive name.
    pub async fn use_keyspace(&self, keyspace: &str) -> Result<(), DriverError> {
        self.admit()?.use_keyspace(keyspace).await
    }

    /// What a result implies for the session: `USE` switches every pool,
    /// DDL refreshes the metadata so the next request routes by it (waiting
    /// at most what is left of the request's budget).
    async fn after(&self, result: &mut QueryResult, budget: Duration) -> Result<(), DriverError> {
        if let Some(keyspace) = &result.keyspace {
            self.switch_keyspace(keyspace).await?;
        }
        if result.schema_change.is_some() {
            result.schema_in_agreement = Some(self.settle_schema(budget).await);
        }
        Ok(())
    }

    /// After a schema change: waits (bounded) for the nodes to agree and
    /// refreshes the metadata, so the next request finds and routes by the
    /// new keyspace or table. Whether the nodes agreed.
    async fn settle_schema(&self, budget: Duration) -> bool {
        let wait = self.inner.config.schema_agreement_timeout;
        let agreed =
            wait.is_zero() || schema_agreement::wait(&self.inner.cluster.state_full(), wait).await;
        if !agreed {
            tracing::warn!(?wait, "nodes still disagree on the schema");
        }
        let bound = budget.min(SCHEMA_REFRESH_BOUND);
        if !self.inner.cluster.refresh(bound).await {
            tracing::warn!(
                ?bound,
                "metadata refresh after a schema change not done in time"
            );
        }
        agreed
    }

    async fn switch_keyspace(&self, keyspace: &str) -> Result<(), DriverError> {
        let inner = &self.inner;
        *inner.keyspace.lock().unwrap_or_else(|p| p.into_inner()) = Some(keyspace.to_owned());
        inner.cluster.set_keyspace(Some(keyspace.to_owned()));
        let state = inner.cluster.state_full();
        let mut uses = tokio::task::JoinSet::new();
        for pool in state.nodes().iter().filter_map(|n| n.pool()) {
            let (pool, keyspace) = (pool.clone(), keyspace.to_owned());
            uses.spawn(async move { pool.use_keyspace(&keyspace).await });
        }
        let mut first_error = None;
        while let Some(joined) = uses.join_next().await {
            if let Ok(Err(crate::connection::ConnectionError::Server(e))) = joined {
                first_error.get_or_insert(DriverError::Server(e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Refuses new requests (they get [`DriverError::Closed`]), waits for
    /// those admitted before (at most the request timeout plus 5 s), then
    /// closes the pools and the control connection.
    pub async fn close(&self) {
        let bound = self.inner.config.request_timeout + CLOSE_SLACK;
        if !self.inner.gate.close(bound).await {
            tracing::warn!(?bound, "closing with requests still in flight");
        }
        self.inner.cluster.close().await;
    }

    /// Refuses new requests from now on (synchronously; [`Session::close`]
    /// does it too, when it starts running).
    pub fn refuse_new(&self) {
        self.inner.gate.refuse_new();
    }

    /// Requests admitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.inner.gate.in_flight()
    }

    /// True once any node reported Scylla sharding (requests go to shards).
    pub fn is_shard_aware(&self) -> bool {
        self.inner
            .cluster
            .state()
            .nodes()
            .iter()
            .filter_map(|n| n.pool())
            .any(|p| p.is_shard_aware())
    }

    pub fn metrics(&self) -> SessionMetrics {
        let inner = &self.inner;
        let state = inner.cluster.state();
        let mut metrics = metrics::collect(
            &state,
            inner.cluster.tablets().stats(),
            &inner.totals,
            inner.gate.in_flight(),
        );
        metrics.prepared_cached = inner.prepared.sizes().0;
        metrics
    }

    /// Server events (topology, status, schema) the control connection
    /// receives from now on (none in communicator mode).
    pub fn subscribe_events(
        &self,
    ) -> tokio::sync::broadcast::Receiver<crate::protocol::response::Event> {
        self.inner.cluster.subscribe_events()
    }

    /// The current metadata snapshot.
    pub fn cluster_state(&self) -> Arc<ClusterState> {
        self.inner.cluster.state_full()
    }

    /// The keyspace of the last `USE`.
    pub fn keyspace(&self) -> Option<String> {
        self.inner.keyspace()
    }

    /// Re-reads topology and schema now; false if that failed within
    /// `timeout`.
    pub async fn refresh_metadata(&self, timeout: Duration) -> bool {
        self.inner.cluster.refresh(timeout).await
    }

    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }
}

/// One admitted request (see [`Session::admit`]): counted until it is
/// dropped, and run by one of its methods.
pub struct Admission {
    session: Session,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.session.inner.gate.leave();
    }
}

impl Admission {
    pub fn session(&self) -> &Session {
        &self.session
    }

    pub async fn prepare(&self, query: &str) -> Result<Arc<Prepared>, DriverError> {
        self.session.prepare_admitted(query).await
    }

    pub async fn execute(&self, statement: &Statement) -> Result<QueryResult, DriverError> {
        let started = Instant::now();
        let outcome = self.session.execute_admitted(statement, started).await;
        self.session.inner.account(started, outcome)
    }

    pub async fn batch(&self, batch: &Batch) -> Result<QueryResult, DriverError> {
        self.session.batch_admitted(batch).await
    }

    pub async fn use_keyspace(&self, keyspace: &str) -> Result<(), DriverError> {
        let mut statement = Statement::simple(request::use_statement(keyspace));
        statement.idempotent = true;
        self.execute(&statement).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn session_is_send_sync_and_cheap_to_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<super::Session>();
    }
}

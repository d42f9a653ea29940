//! Helpers shared by the `session_*` integration tests: sessions against
//! the emulator, value encoding, and the emulator's routing counters.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{wait_until, Emulator};
use scylla_shard::protocol::response::Rows;
use scylla_shard::protocol::{CqlValue, Value};
use scylla_shard::session::{
    DriverError, Prepared, QueryResult, Session, SessionConfig, Statement,
};

/// Bound on any single step of a test.
pub const STEP: Duration = Duration::from_secs(20);

/// A session config pointing at node 0 of `emulator`.
pub fn config(emulator: &Emulator) -> SessionConfig {
    SessionConfig {
        contact_points: vec![emulator.addr(0).to_string()],
        port: emulator.port,
        ..SessionConfig::default()
    }
}

pub async fn connect_with(emulator: &Emulator, config: SessionConfig) -> Session {
    match tokio::time::timeout(STEP, Session::connect(config)).await {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => panic!("connect: {e}; emulator stderr: {}", emulator.stderr()),
        Err(_) => panic!("connect did not finish within {STEP:?}"),
    }
}

pub async fn connect(emulator: &Emulator) -> Session {
    connect_with(emulator, config(emulator)).await
}

/// Waits until every node's pool has a connection on every shard.
pub async fn wait_pools_filled(session: &Session, shards: u16) {
    wait_until("every pool filled", STEP, || {
        let m = session.metrics();
        !m.nodes.is_empty()
            && m.nodes.iter().all(|n| {
                n.nr_shards == Some(shards)
                    && n.connections_per_shard.len() == usize::from(shards)
                    && n.connections_per_shard.iter().all(|&c| c >= 1)
            })
    })
    .await;
}

/// Runs CQL text, bounded; panics on failure.
pub async fn run(session: &Session, text: &str) -> QueryResult {
    try_run(session, text)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub async fn try_run(session: &Session, text: &str) -> Result<QueryResult, DriverError> {
    tokio::time::timeout(STEP, session.execute(&Statement::simple(text)))
        .await
        .unwrap_or_else(|_| panic!("{text}: no answer within {STEP:?}"))
}

pub fn int(v: i32) -> Value {
    Value::Set(v.to_be_bytes().to_vec())
}

pub fn text(s: &str) -> Value {
    Value::Set(s.as_bytes().to_vec())
}

/// The cells of `rows` decoded by their column types.
pub fn decode(rows: &Rows) -> Vec<Vec<Option<CqlValue>>> {
    (0..rows.len())
        .map(|row| {
            rows.row(row)
                .zip(&rows.metadata.columns)
                .map(|(cell, col)| {
                    cell.map(|b| CqlValue::deserialize(&col.ty, b).expect("decodable cell"))
                })
                .collect()
        })
        .collect()
}

/// Routing counters of the whole emulator cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Routing {
    pub routable: f64,
    pub misrouted_node: f64,
    pub misrouted_shard: f64,
}

impl Routing {
    pub fn misrouted(&self) -> f64 {
        self.misrouted_node + self.misrouted_shard
    }

    pub fn since(&self, before: &Routing) -> Routing {
        Routing {
            routable: self.routable - before.routable,
            misrouted_node: self.misrouted_node - before.misrouted_node,
            misrouted_shard: self.misrouted_shard - before.misrouted_shard,
        }
    }
}

/// Sum of a metric over every label set of one node.
fn sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Routing counters summed over every node (a node that is down is
/// skipped: its counters never reset, so it is read again later).
pub fn routing(emulator: &Emulator) -> Routing {
    let mut total = Routing::default();
    for i in 0..emulator.nodes {
        let metrics = emulator.metrics(i);
        total.routable += sum(&metrics, "emulator_routable_requests_total");
        total.misrouted_node += sum(&metrics, "emulator_misrouted_node_total");
        total.misrouted_shard += sum(&metrics, "emulator_misrouted_shard_total");
    }
    total
}

/// Creates keyspace `ks` with `replication` and table `ks.t` with a
/// composite partition key `(a, b)`, clustering `c`, value `v`.
pub async fn create_schema(session: &Session, ks: &str, replication: &str) {
    run(session, &format!("CREATE KEYSPACE {ks} WITH {replication}")).await;
    run(
        session,
        &format!("CREATE TABLE {ks}.t (a int, b text, c int, v text, PRIMARY KEY ((a, b), c))"),
    )
    .await;
}

pub const SIMPLE_RF1: &str = "replication = {'class': 'SimpleStrategy', 'replication_factor': 1}";
pub const TABLETS_RF1: &str = "replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1} AND tablets = {'enabled': true, 'initial': 8}";

/// An idempotent write of key `k` with value `k` through `prepared`
/// (`INSERT INTO ... (k, v) VALUES (?, ?)`).
pub fn insert_key(prepared: &Arc<Prepared>, k: i32) -> Statement {
    let mut st = Statement::prepared(prepared.clone());
    st.values = vec![int(k), int(k)];
    st.idempotent = true;
    st
}

/// Writes keys `first..first + count` through `prepared`, `in_flight` at a
/// time (every worker's first request leaves at once); every write must
/// succeed, all within 120 s.
pub async fn write_keys(
    session: &Session,
    prepared: &Arc<Prepared>,
    first: i32,
    count: usize,
    in_flight: usize,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (session, prepared, next) = (session.clone(), prepared.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return;
                }
                let k = first + i as i32;
                session
                    .execute(&insert_key(&prepared, k))
                    .await
                    .unwrap_or_else(|e| panic!("insert {k}: {e}"));
            }
        });
    }
    let all = async {
        while let Some(done) = workers.join_next().await {
            done.expect("worker");
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("writes within 120 s");
}

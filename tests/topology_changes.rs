//! Topology that changes under load: the emulator adds a node
//! (`POST /admin/nodes/add`) or decommissions one
//! (`POST /admin/nodes/{n}/remove`) while 256 requests are in flight.
//!
//! The session must follow: a new node gets a pool (one connection per
//! shard, all but the first through the shard-aware port) and requests
//! within one refresh; a removed node's pool closes; replicas are
//! recomputed, so once the change settled no request is misrouted; during
//! the change no idempotent request fails, and the others either succeed or
//! fail cleanly with a connection error.

mod common;
mod session_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{wait_until, Emulator};
use scylla_shard::session::{DriverError, Prepared, Session, Statement};
use session_support::*;

const IN_FLIGHT: usize = 256;
const SHARDS: u16 = 4;

/// Sum of one sample family on node `i` (every label set).
fn node_sum(emulator: &Emulator, i: usize, name: &str) -> f64 {
    emulator
        .metrics(i)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn node_sample(emulator: &Emulator, i: usize, name: &str, port: u16) -> f64 {
    let prefix = format!("{name}{{port=\"{port}\",");
    emulator
        .metrics(i)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What a background load saw.
#[derive(Debug, Default)]
struct LoadReport {
    ok: u64,
    /// Failures of idempotent requests (must stay 0).
    idempotent_failures: Vec<String>,
    /// Failures of non-idempotent requests, all of them connection errors.
    other_failures: Vec<String>,
    /// Failures of non-idempotent requests that were not connection errors.
    unclean_failures: Vec<String>,
}

/// `IN_FLIGHT` workers writing keys until `stop` is set; every other
/// worker marks its writes non-idempotent.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    report: Arc<Mutex<LoadReport>>,
    workers: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(session: &Session, prepared: &Arc<Prepared>, mixed: bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..IN_FLIGHT {
            let (session, prepared) = (session.clone(), prepared.clone());
            let (stop, sent, report) = (stop.clone(), sent.clone(), report.clone());
            let idempotent = !mixed || worker % 2 == 0;
            workers.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let k = sent.fetch_add(1, Ordering::Relaxed) as i32;
                    let mut st = Statement::prepared(prepared.clone());
                    st.values = vec![int(k), int(k)];
                    st.idempotent = idempotent;
                    let outcome = tokio::time::timeout(STEP, session.execute(&st)).await;
                    let mut r = report.lock().unwrap();
                    match outcome {
                        Ok(Ok(_)) => r.ok += 1,
                        Ok(Err(e)) if idempotent => r.idempotent_failures.push(e.to_string()),
                        Ok(Err(e @ DriverError::ConnectionBroken(_))) => {
                            r.other_failures.push(e.to_string())
                        }
                        Ok(Err(e)) => r.unclean_failures.push(e.to_string()),
                        Err(_) => r.unclean_failures.push(format!("key {k}: no answer")),
                    }
                }
            });
        }
        Load {
            stop,
            sent,
            report,
            workers,
        }
    }

    /// Waits until `more` further requests were sent.
    async fn run_for(&self, more: u64) {
        let target = self.sent.load(Ordering::Relaxed) + more;
        let sent = self.sent.clone();
        wait_until("load progressing", STEP, move || {
            sent.load(Ordering::Relaxed) >= target
        })
        .await;
    }

    async fn finish(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(done) = self.workers.join_next().await {
            done.expect("load worker");
        }
        std::mem::take(&mut *self.report.lock().unwrap())
    }
}

/// Keyspace `ks` (SimpleStrategy RF 1, vnodes) with `ks.kv`, and the
/// prepared insert.
async fn schema(session: &Session) -> Arc<Prepared> {
    run(
        session,
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
    .await;
    run(session, "CREATE TABLE ks.kv (k int PRIMARY KEY, v int)").await;
    session
        .prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)")
        .await
        .expect("prepare")
}

/// Routing counters over nodes `0..nodes` (removed ones still answer).
fn routing_of(emulator: &Emulator, nodes: usize) -> Routing {
    let mut total = Routing::default();
    for i in 0..nodes {
        total.routable += node_sum(emulator, i, "emulator_routable_requests_total");
        total.misrouted_node += node_sum(emulator, i, "emulator_misrouted_node_total");
        total.misrouted_shard += node_sum(emulator, i, "emulator_misrouted_shard_total");
    }
    total
}

/// Sends `count` idempotent writes, `IN_FLIGHT` at a time, and returns the
/// routing counters they moved; every write must succeed.
async fn settled_pass(
    emulator: &Emulator,
    nodes: usize,
    session: &Session,
    prepared: &Arc<Prepared>,
    count: usize,
) -> Routing {
    let before = routing_of(emulator, nodes);
    let load = Load::start(session, prepared, false);
    load.run_for(count as u64).await;
    let report = load.finish().await;
    assert!(
        report.idempotent_failures.is_empty() && report.unclean_failures.is_empty(),
        "{report:?}"
    );
    let moved = routing_of(emulator, nodes).since(&before);
    assert_eq!(moved.routable, report.ok as f64, "{moved:?}");
    moved
}

fn known_addresses(session: &Session) -> Vec<std::net::SocketAddr> {
    session.metrics().nodes.iter().map(|n| n.address).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_node_gets_a_pool_and_requests_and_routing_settles() {
    let emulator = Emulator::start(3, SHARDS, &[]);
    let session = connect(&emulator).await;
    let prepared = schema(&session).await;
    wait_pools_filled(&session, SHARDS).await;

    let load = Load::start(&session, &prepared, false);
    load.run_for(1_000).await;
    let answer = emulator.admin(0, "/admin/nodes/add");
    assert!(answer.starts_with("added node 3 "), "{answer}");
    let new_node = emulator.addr(3);
    // Within one refresh (debounce 200 ms, at most 1 s): a pool, full.
    wait_until("the new node's pool filled", STEP, || {
        session.metrics().nodes.iter().any(|n| {
            n.address == new_node
                && n.connections_per_shard.len() == usize::from(SHARDS)
                && n.connections_per_shard.iter().all(|&c| c == 1)
        })
    })
    .await;
    wait_until("the new node serving requests", STEP, || {
        node_sum(&emulator, 3, "emulator_requests_total") > 0.0
    })
    .await;
    load.run_for(1_000).await;
    let report = load.finish().await;
    assert!(
        report.idempotent_failures.is_empty() && report.unclean_failures.is_empty(),
        "{report:?}"
    );

    // One connection per shard: the first through the regular port (to
    // learn the sharding), the others through the shard-aware port.
    assert_eq!(
        node_sample(
            &emulator,
            3,
            "emulator_connections_accepted_total",
            emulator.port
        ),
        1.0
    );
    assert_eq!(
        node_sample(
            &emulator,
            3,
            "emulator_connections_accepted_total",
            emulator.shard_aware_port
        ),
        f64::from(SHARDS - 1)
    );
    assert_eq!(known_addresses(&session).len(), 4);

    // Settled: the ring the session computed is the emulator's.
    let moved = settled_pass(&emulator, 4, &session, &prepared, 2_000).await;
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");
    let owned = node_sum(&emulator, 3, "emulator_routable_requests_total");
    assert!(owned > 0.0, "the new node owns part of the ring");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_loses_its_pool_and_no_request_is_lost() {
    let emulator = Emulator::start(4, SHARDS, &[]);
    let session = connect(&emulator).await;
    let prepared = schema(&session).await;
    wait_pools_filled(&session, SHARDS).await;

    let load = Load::start(&session, &prepared, true);
    load.run_for(1_000).await;
    let answer = emulator.admin(0, "/admin/nodes/2/remove");
    assert!(answer.starts_with("removed node 2 "), "{answer}");
    let removed = emulator.addr(2);
    wait_until("the removed node's pool gone", STEP, || {
        !known_addresses(&session).contains(&removed)
    })
    .await;
    load.run_for(1_000).await;
    let report = load.finish().await;
    eprintln!(
        "remove under load: {} ok, {} non-idempotent failed cleanly",
        report.ok,
        report.other_failures.len()
    );
    assert!(
        report.idempotent_failures.is_empty() && report.unclean_failures.is_empty(),
        "{report:?}"
    );
    // Only requests in flight on the removed node's connections can fail.
    assert!(
        report.other_failures.len() <= IN_FLIGHT,
        "{}",
        report.other_failures.len()
    );
    wait_until("the removed node's connections closed", STEP, || {
        node_sum(&emulator, 2, "emulator_connections_current") == 0.0
    })
    .await;
    // It is gone from system.peers of every other node.
    let peers = run(&session, "SELECT peer FROM system.peers").await;
    assert_eq!(peers.rows.as_ref().map(|r| r.len()), Some(2));

    let removed_before = node_sum(&emulator, 2, "emulator_requests_total");
    let moved = settled_pass(&emulator, 4, &session, &prepared, 2_000).await;
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");
    assert_eq!(
        node_sum(&emulator, 2, "emulator_requests_total"),
        removed_before,
        "nothing reaches the removed node"
    );
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_control_connections_node_moves_the_control_connection() {
    let emulator = Emulator::start(3, SHARDS, &[]);
    // The contact point is node 0: the control connection is there.
    let session = connect(&emulator).await;
    let prepared = schema(&session).await;
    wait_pools_filled(&session, SHARDS).await;
    let registered = |i: usize| node_sum(&emulator, i, "emulator_connections_registered_total");
    assert!(registered(0) >= 1.0, "control connection on node 0");

    let load = Load::start(&session, &prepared, false);
    load.run_for(1_000).await;
    emulator.admin(1, "/admin/nodes/0/remove");
    wait_until("node 0 forgotten", STEP, || {
        !known_addresses(&session).contains(&emulator.addr(0))
    })
    .await;
    load.run_for(1_000).await;
    let report = load.finish().await;
    assert!(
        report.idempotent_failures.is_empty() && report.unclean_failures.is_empty(),
        "{report:?}"
    );
    let moved = settled_pass(&emulator, 3, &session, &prepared, 2_000).await;
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");

    // The new control connection hears events: a node added now is found
    // without any refresh asked for.
    emulator.admin(1, "/admin/nodes/add");
    wait_until("the node added after the move", STEP, || {
        session.metrics().nodes.iter().any(|n| {
            n.address == emulator.addr(3)
                && n.connections_per_shard.len() == usize::from(SHARDS)
                && n.connections_per_shard.iter().all(|&c| c == 1)
        })
    })
    .await;
    let moved = settled_pass(&emulator, 4, &session, &prepared, 2_000).await;
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tablets_rebalance_onto_an_added_node_and_off_a_removed_one() {
    let emulator = Emulator::start(3, SHARDS, &["--tablets"]);
    let session = connect(&emulator).await;
    run(
        &session,
        "CREATE KEYSPACE tk WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1} AND tablets = {'enabled': true, 'initial': 16}",
    )
    .await;
    run(&session, "CREATE TABLE tk.kv (k int PRIMARY KEY, v int)").await;
    let prepared = session
        .prepare("INSERT INTO tk.kv (k, v) VALUES (?, ?)")
        .await
        .expect("prepare");
    wait_pools_filled(&session, SHARDS).await;
    // Learn the tablets, then check routing is exact.
    settled_pass(&emulator, 3, &session, &prepared, 2_000).await;
    let moved = settled_pass(&emulator, 3, &session, &prepared, 2_000).await;
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");

    let answer = emulator.admin(0, "/admin/nodes/add");
    assert!(answer.contains("moved"), "{answer}");
    wait_until("the new node's pool filled", STEP, || {
        session.metrics().nodes.iter().any(|n| {
            n.address == emulator.addr(3)
                && n.connections_per_shard.len() == usize::from(SHARDS)
                && n.connections_per_shard.iter().all(|&c| c == 1)
        })
    })
    .await;
    // Moved tablets are relearned within the bound, then routing is exact.
    let relearn = settled_pass(&emulator, 4, &session, &prepared, 2_000).await;
    eprintln!("after the add: {relearn:?}; answer: {answer}");
    assert!(relearn.misrouted() <= 2.0 * 16.0, "{relearn:?}");
    let moved = settled_pass(&emulator, 4, &session, &prepared, 2_000).await;
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");
    let share = node_sum(&emulator, 3, "emulator_routable_requests_total");
    assert!(share > 0.0, "the new node holds tablets");

    emulator.admin(0, "/admin/nodes/1/remove");
    wait_until("node 1 forgotten", STEP, || {
        !known_addresses(&session).contains(&emulator.addr(1))
    })
    .await;
    let relearn = settled_pass(&emulator, 4, &session, &prepared, 2_000).await;
    eprintln!("after the remove: {relearn:?}");
    assert!(relearn.misrouted() <= 2.0 * 16.0, "{relearn:?}");
    let moved = settled_pass(&emulator, 4, &session, &prepared, 2_000).await;
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");
    session.close().await;
}

//! Replicas that go down: the emulator answers Unavailable (0x1000, with
//! `required` and `alive`) when a consistency level needs more live
//! replicas than there are, and never serves data whose replicas are all
//! down; the session sends requests for a token with a replica down to the
//! live ones, fails fast with NO_HOSTS when the whole cluster is down and
//! recovers on its own once a node answers; with a local datacenter,
//! LOCAL_ consistencies never reach the other one while local replicas
//! are up, and fail over to it only when allowed.
//!
//! Nodes are taken down with `POST /admin/stop` and brought back with
//! `POST /admin/start`.

mod common;
mod session_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Emulator};
use scylla_shard::protocol::response::{error_code, ErrorDetails};
use scylla_shard::protocol::Consistency;
use scylla_shard::routing::token::murmur3_token;
use scylla_shard::session::{DriverError, Prepared, Session, SessionConfig, Statement};
use session_support::*;

const SHARDS: u16 = 2;

fn node_sum(emulator: &Emulator, i: usize, name: &str) -> f64 {
    emulator
        .metrics(i)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn write(prepared: &Arc<Prepared>, k: i32, consistency: Consistency) -> Statement {
    let mut st = Statement::prepared(prepared.clone());
    st.values = vec![int(k), int(k)];
    st.consistency = Some(consistency);
    st.idempotent = true;
    st
}

fn read(prepared: &Arc<Prepared>, k: i32, consistency: Consistency) -> Statement {
    let mut st = Statement::prepared(prepared.clone());
    st.values = vec![int(k)];
    st.consistency = Some(consistency);
    st.idempotent = true;
    st
}

async fn table(session: &Session, ks: &str, replication: &str) -> (Arc<Prepared>, Arc<Prepared>) {
    run(session, &format!("CREATE KEYSPACE {ks} WITH {replication}")).await;
    run(
        session,
        &format!("CREATE TABLE {ks}.kv (k int PRIMARY KEY, v int)"),
    )
    .await;
    let ins = session
        .prepare(&format!("INSERT INTO {ks}.kv (k, v) VALUES (?, ?)"))
        .await
        .expect("prepare insert");
    let sel = session
        .prepare(&format!("SELECT v FROM {ks}.kv WHERE k = ?"))
        .await
        .expect("prepare select");
    (ins, sel)
}

/// The `(required, alive)` of an Unavailable error, else a panic.
fn unavailable(outcome: Result<impl std::fmt::Debug, DriverError>) -> (Consistency, i32, i32) {
    match outcome {
        Err(DriverError::Server(e)) if e.code == error_code::UNAVAILABLE => match e.details {
            ErrorDetails::Unavailable {
                consistency,
                required,
                alive,
            } => (consistency, required, alive),
            other => panic!("Unavailable without details: {other:?}"),
        },
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

async fn exec(session: &Session, st: &Statement) -> Result<(), DriverError> {
    tokio::time::timeout(STEP, session.execute(st))
        .await
        .expect("answered in time")
        .map(|_| ())
}

/// The emulator index of the node owning key `k` in a SimpleStrategy
/// RF 1 keyspace, as the session computes it.
fn owner(emulator: &Emulator, session: &Session, ks: &str, k: i32) -> usize {
    let state = session.cluster_state();
    let replicas = state.vnode_replicas(ks, murmur3_token(&k.to_be_bytes()));
    let address = state.nodes()[replicas[0]].address;
    (0..emulator.nodes)
        .find(|&i| emulator.addr(i) == address)
        .expect("a node of the emulator")
}

/// Waits until the session sees node `i` of `emulator` as `up`.
async fn wait_status(session: &Session, emulator: &Emulator, i: usize, up: bool) {
    let address = emulator.addr(i);
    wait_until(&format!("node {i} seen up={up}"), STEP, || {
        session
            .metrics()
            .nodes
            .iter()
            .any(|n| n.address == address && n.up == up)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_needs_live_replicas() {
    let emulator = Emulator::start(3, SHARDS, &[]);
    let session = connect(&emulator).await;
    let (ins, sel) = table(
        &session,
        "rf1",
        "replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
    .await;
    // Above the replication factor: refused with every node up.
    let got = unavailable(exec(&session, &write(&ins, 1, Consistency::Three)).await);
    assert_eq!(got, (Consistency::Three, 3, 1));
    let got = unavailable(exec(&session, &read(&sel, 1, Consistency::Two)).await);
    assert_eq!(got, (Consistency::Two, 2, 1));
    exec(&session, &write(&ins, 1, Consistency::Quorum))
        .await
        .expect("QUORUM of RF 1 is 1");

    // The only replica down: its data is not served, at any level. (A
    // key away from the control connection's node 0.)
    let k = (0..1000)
        .find(|&k| owner(&emulator, &session, "rf1", k) != 0)
        .expect("a key on node 1 or 2");
    let victim = owner(&emulator, &session, "rf1", k);
    exec(&session, &write(&ins, k, Consistency::One))
        .await
        .expect("write before the stop");
    emulator.admin(victim, "/admin/stop");
    wait_status(&session, &emulator, victim, false).await;
    let got = unavailable(exec(&session, &read(&sel, k, Consistency::One)).await);
    assert_eq!(got, (Consistency::One, 1, 0));
    let got = unavailable(exec(&session, &write(&ins, k, Consistency::LocalOne)).await);
    assert_eq!(got, (Consistency::LocalOne, 1, 0));
    // ANY is a write level: a hint is enough; reads refuse it.
    exec(&session, &write(&ins, k, Consistency::Any))
        .await
        .expect("ANY write with the replica down");
    match exec(&session, &read(&sel, k, Consistency::Any)).await {
        Err(DriverError::Server(e)) => assert_eq!(e.code, error_code::INVALID, "{e:?}"),
        other => panic!("ANY read: {other:?}"),
    }
    emulator.admin(victim, "/admin/start");
    wait_status(&session, &emulator, victim, true).await;
    wait_pools_filled(&session, SHARDS).await;
    exec(&session, &read(&sel, k, Consistency::One))
        .await
        .expect("served again once its replica is back");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_to_live_replicas_while_the_level_allows() {
    let emulator = Emulator::start(4, SHARDS, &[]);
    let session = connect(&emulator).await;
    let (ins, sel) = table(
        &session,
        "rf3",
        "replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
    )
    .await;
    wait_pools_filled(&session, SHARDS).await;
    for k in 0..200 {
        exec(&session, &write(&ins, k, Consistency::All))
            .await
            .expect("ALL with every node up");
    }
    emulator.admin(2, "/admin/stop");
    wait_status(&session, &emulator, 2, false).await;
    let stopped_before = node_sum(&emulator, 2, "emulator_requests_total");
    let before = routing(&emulator);
    // One replica of three down: QUORUM and ONE are served, by the live
    // replicas (never a non-replica), ALL is not.
    for k in 0..200 {
        exec(&session, &read(&sel, k, Consistency::Quorum))
            .await
            .unwrap_or_else(|e| panic!("QUORUM read {k}: {e}"));
        exec(&session, &write(&ins, k, Consistency::One))
            .await
            .unwrap_or_else(|e| panic!("ONE write {k}: {e}"));
    }
    let moved = routing(&emulator).since(&before);
    assert_eq!(moved.routable, 400.0, "{moved:?}");
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");
    assert_eq!(
        node_sum(&emulator, 2, "emulator_requests_total"),
        stopped_before
    );
    let mut all_failed = 0;
    for k in 0..200 {
        let st = write(&ins, k, Consistency::All);
        if let Err(e) = exec(&session, &st).await {
            let (cl, required, alive) = unavailable(Err::<(), _>(e));
            assert_eq!((cl, required), (Consistency::All, 3));
            assert_eq!(alive, 2);
            all_failed += 1;
        }
    }
    assert!(
        all_failed > 0 && all_failed < 200,
        "ALL fails where node 2 is a replica: {all_failed}"
    );
    // Two of four down: keys with two replicas down fail QUORUM (2 of 3
    // needed) but are served at ONE.
    emulator.admin(3, "/admin/stop");
    wait_status(&session, &emulator, 3, false).await;
    let mut quorum_failed = 0;
    for k in 0..200 {
        exec(&session, &read(&sel, k, Consistency::One))
            .await
            .unwrap_or_else(|e| panic!("ONE read {k} with two nodes down: {e}"));
        if let Err(e) = exec(&session, &read(&sel, k, Consistency::Quorum)).await {
            assert_eq!(
                unavailable(Err::<(), _>(e)),
                (Consistency::Quorum, 2, 1),
                "key {k}"
            );
            quorum_failed += 1;
        }
    }
    assert!(quorum_failed > 0, "some keys have two replicas down");
    session.close().await;
}

/// Median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_down_fails_fast_then_recovers_on_its_own() {
    let emulator = Emulator::start(3, SHARDS, &[]);
    let session = connect(&emulator).await;
    let (ins, _) = table(
        &session,
        "ks",
        "replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
    )
    .await;
    wait_pools_filled(&session, SHARDS).await;
    for i in [1, 2, 0] {
        emulator.admin(i, "/admin/stop");
    }
    // Once every pool is empty, requests fail at once with NO_HOSTS.
    wait_until("every pool empty", STEP, || {
        session.metrics().connections() == 0
    })
    .await;
    let mut failing = Vec::new();
    for k in 0..100 {
        let started = Instant::now();
        match exec(&session, &write(&ins, k, Consistency::One)).await {
            Err(DriverError::NoHostAvailable(_)) => failing.push(started.elapsed()),
            other => panic!("whole cluster down: {other:?}"),
        }
    }
    // Down for a while, so every backoff has grown.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    emulator.admin(1, "/admin/start");
    let mut k = 0;
    loop {
        k += 1;
        match session.execute(&write(&ins, k, Consistency::One)).await {
            Ok(_) => break,
            Err(DriverError::NoHostAvailable(_) | DriverError::ConnectionBroken(_)) => {}
            Err(e) => panic!("while recovering: {e}"),
        }
        assert!(
            started.elapsed() < STEP,
            "no recovery within {STEP:?} of node 1 answering"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let recovered = started.elapsed();
    eprintln!(
        "whole cluster down: NO_HOSTS in {:?} (median of 100); first success {recovered:?} after a node answered",
        median(failing)
    );
    // The others come back too, through the events of the new control
    // connection.
    emulator.admin(0, "/admin/start");
    emulator.admin(2, "/admin/start");
    wait_pools_filled(&session, SHARDS).await;
    session.close().await;
}

/// Two datacenters of two nodes, RF 2 in each; nodes are dealt
/// round-robin, so dc1 holds nodes 0 and 2, dc2 nodes 1 and 3.
async fn two_dcs(emulator: &Emulator, failover: bool) -> (Session, Arc<Prepared>, Arc<Prepared>) {
    let config = SessionConfig {
        local_dc: Some("dc1".into()),
        permit_dc_failover: failover,
        ..config(emulator)
    };
    let session = connect_with(emulator, config).await;
    let ks = if failover { "fo" } else { "nofo" };
    let (ins, sel) = table(
        &session,
        ks,
        "replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 2}",
    )
    .await;
    (session, ins, sel)
}

fn dc2_requests(emulator: &Emulator) -> f64 {
    [1, 3]
        .iter()
        .map(|&i| node_sum(emulator, i, "emulator_requests_total"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_dc_only_until_it_is_down_then_failover_when_allowed() {
    let emulator = Emulator::start(4, SHARDS, &["--datacenters", "dc1,dc2"]);
    let (session, ins, sel) = two_dcs(&emulator, true).await;
    let (strict, strict_ins, _) = two_dcs(&emulator, false).await;
    wait_pools_filled(&session, SHARDS).await;
    wait_pools_filled(&strict, SHARDS).await;

    let before = dc2_requests(&emulator);
    for k in 0..300 {
        for cl in [Consistency::LocalOne, Consistency::LocalQuorum] {
            exec(&session, &write(&ins, k, cl))
                .await
                .expect("local write");
            exec(&session, &read(&sel, k, cl))
                .await
                .expect("local read");
            exec(&strict, &write(&strict_ins, k, cl))
                .await
                .expect("local write");
        }
    }
    // One local replica down: LOCAL_ONE still stays local.
    emulator.admin(2, "/admin/stop");
    wait_status(&session, &emulator, 2, false).await;
    for k in 0..300 {
        exec(&session, &write(&ins, k, Consistency::LocalOne))
            .await
            .expect("LOCAL_ONE with one local replica");
    }
    assert_eq!(dc2_requests(&emulator), before, "nothing reached dc2");

    // The whole local datacenter down: with failover the requests go to
    // dc2 (whose coordinators count their own replicas as local), without
    // it they fail fast.
    // (Node 0 holds the control connection: nobody announces it DOWN to
    // this session, which sees its pool empty instead.)
    emulator.admin(0, "/admin/stop");
    wait_until("dc1 pools empty", STEP, || {
        [&session, &strict].iter().all(|s| {
            s.metrics()
                .nodes
                .iter()
                .filter(|n| n.datacenter == "dc1")
                .all(|n| n.connections() == 0)
        })
    })
    .await;
    for k in 0..100 {
        exec(&session, &write(&ins, k, Consistency::LocalOne))
            .await
            .unwrap_or_else(|e| panic!("failover write {k}: {e}"));
        match exec(&strict, &write(&strict_ins, k, Consistency::LocalOne)).await {
            Err(DriverError::NoHostAvailable(_)) => {}
            other => panic!("no failover allowed: {other:?}"),
        }
    }
    assert!(dc2_requests(&emulator) >= before + 100.0);
    session.close().await;
    strict.close().await;
}

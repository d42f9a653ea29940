//! Token- and shard-aware routing through the session, measured by the
//! emulator: vnode keyspaces route with zero misroutes (shard-aware port or
//! not), tablet tables converge after at most one misroute per tablet, and
//! again after the tablets move.

mod common;
mod session_support;

use std::sync::Arc;
use std::time::Duration;

use common::Emulator;
use scylla_shard::protocol::CqlValue;
use scylla_shard::session::{Prepared, Session, Statement};
use session_support::*;

const ROWS: i32 = 5_000;

fn insert_statement(insert: &Arc<Prepared>, i: i32) -> Statement {
    let mut st = Statement::prepared(insert.clone());
    st.values = vec![
        int(i),
        text(&format!("b{}", i % 7)),
        int(i % 3),
        text(&format!("value-{i}")),
    ];
    st.idempotent = true;
    st
}

fn select_statement(select: &Arc<Prepared>, i: i32) -> Statement {
    let mut st = Statement::prepared(select.clone());
    st.values = vec![int(i), text(&format!("b{}", i % 7)), int(i % 3)];
    st.idempotent = true;
    st
}

async fn prepare_pair(session: &Session, ks: &str) -> (Arc<Prepared>, Arc<Prepared>) {
    let insert = session
        .prepare(&format!(
            "INSERT INTO {ks}.t (a, b, c, v) VALUES (?, ?, ?, ?)"
        ))
        .await
        .expect("prepare insert");
    let select = session
        .prepare(&format!(
            "SELECT v FROM {ks}.t WHERE a = ? AND b = ? AND c = ?"
        ))
        .await
        .expect("prepare select");
    assert_eq!(insert.metadata.pk_indexes, vec![0, 1]);
    (insert, select)
}

/// Inserts `ROWS` rows then reads each back, `concurrency` requests at a
/// time, checking every value.
async fn write_and_read(session: &Session, ks: &str, concurrency: i32) {
    let (insert, select) = prepare_pair(session, ks).await;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (session, insert, select) = (session.clone(), insert.clone(), select.clone());
        tasks.spawn(async move {
            let mine = (0..ROWS).filter(move |i| i % concurrency == worker);
            for i in mine.clone() {
                session
                    .execute(&insert_statement(&insert, i))
                    .await
                    .unwrap_or_else(|e| panic!("insert {i}: {e}"));
            }
            for i in mine {
                let result = session
                    .execute(&select_statement(&select, i))
                    .await
                    .unwrap_or_else(|e| panic!("select {i}: {e}"));
                let rows = decode(result.rows.as_ref().expect("rows"));
                assert_eq!(
                    rows,
                    vec![vec![Some(CqlValue::Text(format!("value-{i}")))]],
                    "row {i}"
                );
            }
        });
    }
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            joined.expect("worker");
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("workload within 120 s");
}

async fn vnode_routing(shard_aware_port: bool) {
    let emulator = Emulator::start(3, 4, &[]);
    let mut config = config(&emulator);
    config.shard_aware_port = shard_aware_port;
    let session = connect_with(&emulator, config).await;
    assert!(session.is_shard_aware());
    create_schema(&session, "ks", SIMPLE_RF1).await;
    wait_pools_filled(&session, 4).await;
    let before = routing(&emulator);
    write_and_read(&session, "ks", 32).await;
    let delta = routing(&emulator).since(&before);
    assert_eq!(delta.routable, f64::from(2 * ROWS), "{delta:?}");
    assert_eq!(delta.misrouted_node, 0.0, "{delta:?}");
    assert_eq!(delta.misrouted_shard, 0.0, "{delta:?}");

    let metrics = session.metrics();
    assert_eq!(metrics.nodes.len(), 3);
    let sent: u64 = metrics
        .nodes
        .iter()
        .flat_map(|n| n.requests_per_shard.iter())
        .sum();
    assert!(sent >= 2 * ROWS as u64, "{metrics:?}");
    for node in &metrics.nodes {
        assert!(
            node.requests_per_shard.iter().all(|&r| r > 0),
            "every shard served requests: {node:?}"
        );
        assert_eq!(node.shard_aware_port_in_use, shard_aware_port, "{node:?}");
    }
    assert_eq!(metrics.errors, 0);
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vnodes_route_to_owner_shard_via_shard_aware_port() {
    vnode_routing(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vnodes_route_to_owner_shard_via_regular_port() {
    vnode_routing(false).await;
}

/// Sequential inserts; returns the routing delta.
async fn sequential_inserts(
    emulator: &Emulator,
    session: &Session,
    insert: &Arc<Prepared>,
    offset: i32,
) -> Routing {
    let before = routing(emulator);
    let run = async {
        for i in offset..offset + ROWS {
            session
                .execute(&insert_statement(insert, i))
                .await
                .unwrap_or_else(|e| panic!("insert {i}: {e}"));
        }
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("inserts within 120 s");
    routing(emulator).since(&before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tablets_converge_and_reconverge_after_shuffle() {
    let emulator = Emulator::start(3, 4, &["--tablets"]);
    let session = connect(&emulator).await;
    create_schema(&session, "tks", TABLETS_RF1).await;
    let state = session.cluster_state();
    assert!(state.keyspace("tks").expect("keyspace known").uses_tablets);
    wait_pools_filled(&session, 4).await;
    let (insert, select) = prepare_pair(&session, "tks").await;

    let first = sequential_inserts(&emulator, &session, &insert, 0).await;
    assert_eq!(first.routable, f64::from(ROWS), "{first:?}");
    assert!(first.misrouted() <= 8.0, "first pass: {first:?}");
    let tablets = session.metrics().tablets;
    assert_eq!(tablets.tables, 1, "{tablets:?}");
    assert!(
        tablets.tablets <= 8 && tablets.tablets as f64 >= first.misrouted(),
        "{tablets:?}"
    );

    emulator.admin(0, "/admin/tablets/shuffle");
    let second = sequential_inserts(&emulator, &session, &insert, ROWS).await;
    assert!(second.misrouted() <= 8.0, "after shuffle: {second:?}");
    assert!(
        second.misrouted() > 0.0,
        "the shuffle moved tablets: {second:?}"
    );

    // And reads of both passes are routed and correct.
    let before = routing(&emulator);
    for i in (0..2 * ROWS).step_by(97) {
        let result = session
            .execute(&select_statement(&select, i))
            .await
            .expect("select");
        let rows = decode(result.rows.as_ref().expect("rows"));
        assert_eq!(rows, vec![vec![Some(CqlValue::Text(format!("value-{i}")))]]);
    }
    assert_eq!(routing(&emulator).since(&before).misrouted(), 0.0);
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_datacenter_replicas_only() {
    // Nodes 0 and 2 are in dc1, nodes 1 and 3 in dc2.
    let emulator = Emulator::start(4, 2, &["--datacenters", "dc1,dc2"]);
    let mut config = config(&emulator);
    config.local_dc = Some("dc1".into());
    config.permit_dc_failover = false;
    let session = connect_with(&emulator, config).await;
    create_schema(
        &session,
        "nts",
        "replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1, 'dc2': 1}",
    )
    .await;
    wait_pools_filled(&session, 2).await;
    let (insert, _) = prepare_pair(&session, "nts").await;
    let before: Vec<String> = (0..4).map(|i| emulator.metrics(i)).collect();
    let all_before = routing(&emulator);
    for i in 0..1000 {
        session
            .execute(&insert_statement(&insert, i))
            .await
            .expect("insert");
    }
    let delta = routing(&emulator).since(&all_before);
    assert_eq!(delta.routable, 1000.0);
    assert_eq!(delta.misrouted(), 0.0, "{delta:?}");
    for node in [1, 3] {
        assert_eq!(
            emulator
                .metrics(node)
                .lines()
                .filter(|l| l.starts_with("emulator_routable_requests_total"))
                .collect::<Vec<_>>(),
            before[node]
                .lines()
                .filter(|l| l.starts_with("emulator_routable_requests_total"))
                .collect::<Vec<_>>(),
            "dc2 node {node} served no request"
        );
    }
    session.close().await;
}

/// One vnode keyspace and one tablet keyspace served at once: requests
/// alternate between them; the tablet table costs at most one misroute per
/// tablet and the vnode table none, and once learned both route perfectly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vnode_and_tablet_keyspaces_route_right_together() {
    const PER_TABLE: i32 = 10_000;
    let emulator = Emulator::start(3, 4, &["--tablets"]);
    let session = connect(&emulator).await;
    create_schema(&session, "vks", SIMPLE_RF1).await;
    create_schema(&session, "tks", TABLETS_RF1).await;
    let state = session.cluster_state();
    assert!(!state.keyspace("vks").expect("vnode keyspace").uses_tablets);
    assert!(state.keyspace("tks").expect("tablet keyspace").uses_tablets);
    wait_pools_filled(&session, 4).await;
    let (vnode_insert, _) = prepare_pair(&session, "vks").await;
    let (tablet_insert, _) = prepare_pair(&session, "tks").await;

    let pass = |offset: i32| {
        let session = session.clone();
        let (vnode_insert, tablet_insert) = (vnode_insert.clone(), tablet_insert.clone());
        async move {
            for i in offset..offset + PER_TABLE {
                for insert in [&vnode_insert, &tablet_insert] {
                    session
                        .execute(&insert_statement(insert, i))
                        .await
                        .unwrap_or_else(|e| panic!("insert {i}: {e}"));
                }
            }
        }
    };
    let before = routing(&emulator);
    tokio::time::timeout(Duration::from_secs(180), pass(0))
        .await
        .expect("first pass within 180 s");
    let first = routing(&emulator).since(&before);
    assert_eq!(first.routable, f64::from(2 * PER_TABLE), "{first:?}");
    assert!(first.misrouted() <= 8.0, "first pass: {first:?}");

    let before = routing(&emulator);
    tokio::time::timeout(Duration::from_secs(180), pass(PER_TABLE))
        .await
        .expect("second pass within 180 s");
    let second = routing(&emulator).since(&before);
    assert_eq!(second.misrouted(), 0.0, "second pass: {second:?}");
    session.close().await;
}

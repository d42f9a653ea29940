//! The session under failures staged by the emulator: NAT in front of the
//! shard-aware port, a node restart during a workload, prepared ids
//! forgotten by a restart, and responses slower than the timeout.

mod common;
mod session_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Emulator};
use scylla_shard::protocol::CqlValue;
use scylla_shard::session::{DriverError, Prepared, Session, Statement};
use session_support::*;

fn insert(prepared: &Arc<Prepared>, i: i32) -> Statement {
    let mut st = Statement::prepared(prepared.clone());
    st.values = vec![int(i), text("b"), int(0), text(&format!("v{i}"))];
    st.idempotent = true;
    st
}

fn select(prepared: &Arc<Prepared>, i: i32) -> Statement {
    let mut st = Statement::prepared(prepared.clone());
    st.values = vec![int(i), text("b"), int(0)];
    st.idempotent = true;
    st
}

async fn setup(session: &Session) -> (Arc<Prepared>, Arc<Prepared>) {
    create_schema(session, "ks", SIMPLE_RF1).await;
    let ins = session
        .prepare("INSERT INTO ks.t (a, b, c, v) VALUES (?, ?, ?, ?)")
        .await
        .expect("prepare insert");
    let sel = session
        .prepare("SELECT v FROM ks.t WHERE a = ? AND b = ? AND c = ?")
        .await
        .expect("prepare select");
    (ins, sel)
}

async fn check_rows(session: &Session, sel: &Arc<Prepared>, range: std::ops::Range<i32>) {
    for i in range {
        let result = session
            .execute(&select(sel, i))
            .await
            .unwrap_or_else(|e| panic!("select {i}: {e}"));
        assert_eq!(
            decode(result.rows.as_ref().expect("rows")),
            vec![vec![Some(CqlValue::Text(format!("v{i}")))]],
            "row {i}"
        );
    }
}

/// Writes `range`, `concurrency` at a time; every write must succeed.
async fn write_all(
    session: &Session,
    ins: &Arc<Prepared>,
    range: std::ops::Range<i32>,
    concurrency: i32,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (session, ins, range) = (session.clone(), ins.clone(), range.clone());
        tasks.spawn(async move {
            for i in range.filter(|i| i % concurrency == w) {
                session
                    .execute(&insert(&ins, i))
                    .await
                    .unwrap_or_else(|e| panic!("insert {i}: {e}"));
            }
        });
    }
    let all = async {
        while let Some(j) = tasks.join_next().await {
            j.expect("writer");
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("writes within 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nat_in_front_of_shard_aware_port() {
    let emulator = Emulator::start(3, 4, &["--simulate-nat"]);
    let session = connect(&emulator).await;
    let (ins, sel) = setup(&session).await;
    write_all(&session, &ins, 0..1000, 16).await;
    check_rows(&session, &sel, 0..1000).await;
    // The pools notice the NAT, stop using the shard-aware port and fill
    // every shard through the regular port; then routing is exact again.
    wait_pools_filled(&session, 4).await;
    for node in session.metrics().nodes {
        assert!(!node.shard_aware_port_in_use, "{node:?}");
    }
    let before = routing(&emulator);
    write_all(&session, &ins, 1000..2000, 16).await;
    let delta = routing(&emulator).since(&before);
    assert_eq!(delta.routable, 1000.0);
    assert_eq!(delta.misrouted(), 0.0, "{delta:?}");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_restart_during_workload() {
    let emulator = Emulator::start(3, 4, &[]);
    let session = connect(&emulator).await;
    let (ins, sel) = setup(&session).await;
    wait_pools_filled(&session, 4).await;

    let workload = {
        let (session, ins) = (session.clone(), ins.clone());
        tokio::spawn(async move { write_all(&session, &ins, 0..6000, 16).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    emulator.admin(1, "/admin/restart?down_ms=1000");
    workload
        .await
        .expect("idempotent writes survive the restart");
    check_rows(&session, &sel, 0..6000).await;
    let metrics = session.metrics();
    eprintln!(
        "after restart: retries {} errors {}",
        metrics.retries, metrics.errors
    );
    assert!(
        metrics.retries > 0,
        "the restart interrupted requests: {metrics:?}"
    );
    assert_eq!(metrics.errors, 0);

    // The restarted node's pool refills and the node is up again...
    wait_pools_filled(&session, 4).await;
    wait_until("node 1 up again", STEP, || {
        session.metrics().nodes.iter().all(|n| n.up)
    })
    .await;
    // ...after which routing is exact again.
    let before = routing(&emulator);
    write_all(&session, &ins, 6000..8000, 16).await;
    let delta = routing(&emulator).since(&before);
    assert_eq!(delta.routable, 2000.0, "{delta:?}");
    assert_eq!(delta.misrouted(), 0.0, "{delta:?}");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_node_restart_fails_over() {
    let emulator = Emulator::start(3, 2, &[]);
    let session = connect(&emulator).await;
    let (ins, sel) = setup(&session).await;
    emulator.admin(0, "/admin/restart?down_ms=500");
    // The control connection moves to another node: DDL (which waits for
    // a metadata refresh) keeps working and sees the new table.
    tokio::time::sleep(Duration::from_millis(100)).await;
    run(&session, "CREATE TABLE ks.t2 (k int PRIMARY KEY)").await;
    assert!(session.refresh_metadata(STEP).await);
    write_all(&session, &ins, 0..300, 4).await;
    check_rows(&session, &sel, 0..300).await;
    wait_pools_filled(&session, 2).await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unprepared_after_restart_is_recovered() {
    let emulator = Emulator::start(3, 4, &[]);
    let session = connect(&emulator).await;
    let (ins, sel) = setup(&session).await;
    write_all(&session, &ins, 0..60, 1).await;

    // Node 2 forgets every prepared id.
    emulator.admin(2, "/admin/restart?down_ms=300");
    wait_until("node 2 down", STEP, || {
        emulator
            .metric(2, "emulator_node_up")
            .is_some_and(|v| v == 0.0)
            || session.metrics().nodes[2]
                .connections_per_shard
                .iter()
                .sum::<usize>()
                == 0
    })
    .await;
    wait_until("node 2 serving", STEP, || {
        emulator.metric(2, "emulator_node_up") == Some(1.0)
    })
    .await;
    wait_pools_filled(&session, 4).await;

    let node2 = emulator.addr(2);
    let retries_before = session.metrics().retries;
    let mut on_node2 = 0;
    for i in 0..60 {
        let mut st = select(&sel, i);
        st.idempotent = false; // recovery must not depend on idempotence
        let result = session
            .execute(&st)
            .await
            .unwrap_or_else(|e| panic!("select {i}: {e}"));
        assert_eq!(
            decode(result.rows.as_ref().expect("rows")),
            vec![vec![Some(CqlValue::Text(format!("v{i}")))]]
        );
        if result.coordinator == Some(node2) {
            on_node2 += 1;
        }
    }
    assert!(on_node2 > 0, "some partitions live on node 2");
    let metrics = session.metrics();
    assert_eq!(metrics.errors, 0);
    // Node 2 answered UNPREPARED and the statement was re-prepared there.
    assert!(metrics.retries > retries_before, "{metrics:?}");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_responses_time_out_promptly() {
    let emulator = Emulator::start(3, 2, &[]);
    let session = connect(&emulator).await;
    let (ins, _) = setup(&session).await;
    for i in 0..3 {
        emulator.admin(i, "/admin/delay?us=2000000");
    }
    for idempotent in [false, true] {
        let mut st = insert(&ins, 1);
        st.idempotent = idempotent;
        st.timeout = Some(Duration::from_millis(200));
        let started = Instant::now();
        let outcome = session.execute(&st).await;
        let elapsed = started.elapsed();
        assert_eq!(
            outcome.err(),
            Some(DriverError::Timeout(Duration::from_millis(200)))
        );
        assert!(elapsed < Duration::from_millis(1000), "took {elapsed:?}");
    }
    let mut st = Statement::simple("SELECT * FROM ks.t");
    st.timeout = Some(Duration::from_millis(150));
    assert!(matches!(
        session.execute(&st).await,
        Err(DriverError::Timeout(_))
    ));
    assert!(session.metrics().errors_by_kind.client_timeouts >= 3);
    for i in 0..3 {
        emulator.admin(i, "/admin/delay?us=0");
    }
    // The connections stay usable once the server is fast again.
    session
        .execute(&insert(&ins, 2))
        .await
        .expect("insert after the delay");
    session.close().await;
}

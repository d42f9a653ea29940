//! Host policies against the emulator, measured by its per-node counters:
//! host filtering (deny a host, allow one datacenter, deny the contact
//! point, everything filtered), address translation (nodes advertising
//! addresses they do not listen on, `--advertise-base-ip`), the local-rack
//! preference and client-side timestamps.

mod common;
mod session_support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{wait_until, Emulator};
use scylla_shard::cluster::{HostFilter, StaticAddressMap};
use scylla_shard::protocol::CqlValue;
use scylla_shard::session::{DriverError, Prepared, Session, SessionConfig, Statement};
use session_support::*;

const SHARDS: u16 = 2;
const WRITES: i32 = 600;

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

fn requests(emulator: &Emulator, i: usize) -> f64 {
    node_sum(emulator, i, "emulator_requests_total")
}

fn accepted(emulator: &Emulator, i: usize) -> f64 {
    node_sum(emulator, i, "emulator_connections_accepted_total")
}

fn open_connections(emulator: &Emulator, i: usize) -> f64 {
    node_sum(emulator, i, "emulator_connections_current")
}

fn ip(emulator: &Emulator, i: usize) -> IpAddr {
    IpAddr::V4(emulator.node_ip(i))
}

/// `ks.kv (k int PRIMARY KEY, v int)` with `replication`, and its insert.
async fn table(session: &Session, ks: &str, replication: &str) -> Arc<Prepared> {
    run(session, &format!("CREATE KEYSPACE {ks} WITH {replication}")).await;
    run(
        session,
        &format!("CREATE TABLE {ks}.kv (k int PRIMARY KEY, v int)"),
    )
    .await;
    session
        .prepare(&format!("INSERT INTO {ks}.kv (k, v) VALUES (?, ?)"))
        .await
        .expect("prepare insert")
}

/// `WRITES` idempotent inserts, 16 at a time; every one must succeed.
async fn write_all(session: &Session, insert: &Arc<Prepared>) {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (session, insert) = (session.clone(), insert.clone());
        tasks.spawn(async move {
            for k in (0..WRITES).filter(|k| k % 16 == worker) {
                let mut st = Statement::prepared(insert.clone());
                st.values = vec![int(k), int(k)];
                st.idempotent = true;
                tokio::time::timeout(STEP, session.execute(&st))
                    .await
                    .expect("write answered in time")
                    .unwrap_or_else(|e| panic!("write {k}: {e}"));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("writer");
    }
}

fn session_addresses(session: &Session) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = session.metrics().nodes.iter().map(|n| n.address).collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_host_gets_no_connection_and_no_request_even_when_it_joins_later() {
    let emulator = Emulator::start(3, SHARDS, &[]);
    let mut config = config(&emulator);
    // Node 2, and node 3 which does not exist yet.
    config.host_filter.deny_hosts = vec![ip(&emulator, 2), ip(&emulator, 3)];
    let session = connect_with(&emulator, config).await;
    let insert = table(&session, "ks", SIMPLE_RF1).await;
    wait_pools_filled(&session, SHARDS).await;
    assert_eq!(
        session_addresses(&session),
        vec![emulator.addr(0), emulator.addr(1)]
    );
    // Node 2 is still in the ring: replicas stay right, it is only skipped.
    assert_eq!(session.cluster_state().nodes().len(), 3);
    write_all(&session, &insert).await;

    // Two nodes join: node 3 (denied) then node 4; once node 4's pool is
    // full, the topology read after both joined has been applied.
    assert!(emulator
        .admin(0, "/admin/nodes/add")
        .starts_with("added node 3 "));
    assert!(emulator
        .admin(0, "/admin/nodes/add")
        .starts_with("added node 4 "));
    let node4 = emulator.addr(4);
    wait_until("node 4's pool filled", STEP, || {
        session.metrics().nodes.iter().any(|n| {
            n.address == node4
                && n.connections_per_shard.len() == usize::from(SHARDS)
                && n.connections_per_shard.iter().all(|&c| c >= 1)
        })
    })
    .await;
    assert_eq!(session.cluster_state().nodes().len(), 5);
    write_all(&session, &insert).await;

    for denied in [2, 3] {
        assert_eq!(
            requests(&emulator, denied),
            0.0,
            "node {denied} served requests"
        );
        assert_eq!(
            accepted(&emulator, denied),
            0.0,
            "node {denied} accepted connections"
        );
    }
    for used in [0, 1, 4] {
        assert!(requests(&emulator, used) > 0.0, "node {used} unused");
    }
    assert_eq!(
        session_addresses(&session),
        vec![emulator.addr(0), emulator.addr(1), node4]
    );
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowing_one_datacenter_uses_only_its_nodes() {
    // Nodes are dealt round-robin: dc1 holds nodes 0 and 2, dc2 1 and 3.
    let emulator = Emulator::start(4, SHARDS, &["--datacenters", "dc1,dc2"]);
    let mut config = config(&emulator);
    config.host_filter.allow_dcs = vec!["dc1".into()];
    let session = connect_with(&emulator, config).await;
    let insert = table(
        &session,
        "ks",
        "replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1, 'dc2': 1}",
    )
    .await;
    wait_pools_filled(&session, SHARDS).await;
    assert_eq!(
        session_addresses(&session),
        vec![emulator.addr(0), emulator.addr(2)]
    );
    let before = routing(&emulator);
    write_all(&session, &insert).await;
    let moved = routing(&emulator).since(&before);
    assert_eq!(moved.routable, f64::from(WRITES), "{moved:?}");
    // Each key has one replica in dc1: every write reached it.
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");
    for dc2 in [1, 3] {
        assert_eq!(
            requests(&emulator, dc2),
            0.0,
            "dc2 node {dc2} served requests"
        );
        assert_eq!(
            accepted(&emulator, dc2),
            0.0,
            "dc2 node {dc2} accepted connections"
        );
    }
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_contact_point_only_serves_discovery() {
    // dc2's node 1 is the only contact point; only dc1 is allowed.
    let emulator = Emulator::start(4, SHARDS, &["--datacenters", "dc1,dc2"]);
    let mut config = config(&emulator);
    config.contact_points = vec![emulator.addr(1).to_string()];
    config.host_filter.allow_dcs = vec!["dc1".into()];
    let session = connect_with(&emulator, config).await;
    // The discovery connection is closed; no pool, no control connection.
    wait_until("the contact point's connection closed", STEP, || {
        open_connections(&emulator, 1) == 0.0
    })
    .await;
    assert_eq!(accepted(&emulator, 1), 1.0, "one discovery connection only");
    let after_discovery = requests(&emulator, 1);
    let insert = table(&session, "ks", SIMPLE_RF1).await;
    wait_pools_filled(&session, SHARDS).await;
    assert_eq!(
        session_addresses(&session),
        vec![emulator.addr(0), emulator.addr(2)]
    );
    write_all(&session, &insert).await;
    assert_eq!(
        requests(&emulator, 1),
        after_discovery,
        "the contact point got requests"
    );
    assert_eq!(accepted(&emulator, 1), 1.0);
    assert_eq!(accepted(&emulator, 3), 0.0);
    // Denying the contact point's address does not even connect to it
    // while another contact point answers.
    let mut config = session_support::config(&emulator);
    config.contact_points = vec![emulator.addr(2).to_string(), emulator.addr(0).to_string()];
    config.host_filter.deny_hosts = vec![ip(&emulator, 2)];
    let node2_before = accepted(&emulator, 2);
    let second = connect_with(&emulator, config).await;
    wait_pools_filled(&second, SHARDS).await;
    assert_eq!(
        session_addresses(&second),
        vec![emulator.addr(0), emulator.addr(1), emulator.addr(3)]
    );
    assert_eq!(
        accepted(&emulator, 2),
        node2_before,
        "the second session connected to node 2"
    );
    second.close().await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_excludes_every_node_fails_connect_clearly() {
    let emulator = Emulator::start(2, SHARDS, &["--datacenters", "dc1,dc2"]);
    let filters = [
        HostFilter {
            allow_dcs: vec!["dc3".into()],
            ..HostFilter::default()
        },
        HostFilter {
            deny_dcs: vec!["dc1".into(), "dc2".into()],
            ..HostFilter::default()
        },
        HostFilter {
            deny_hosts: vec![ip(&emulator, 0), ip(&emulator, 1)],
            ..HostFilter::default()
        },
    ];
    for filter in filters {
        let mut config = config(&emulator);
        config.host_filter = filter.clone();
        let outcome = tokio::time::timeout(STEP, Session::connect(config))
            .await
            .expect("connect answers in time");
        match outcome {
            Err(DriverError::NoHostAvailable(reasons)) => assert!(
                reasons
                    .iter()
                    .any(|r| r.contains("host filter excludes every node")),
                "{filter:?}: {reasons:?}"
            ),
            Err(other) => panic!("{filter:?}: {other}"),
            Ok(_) => panic!("{filter:?}: connected"),
        }
    }
    wait_until("discovery connections closed", STEP, || {
        open_connections(&emulator, 0) == 0.0 && open_connections(&emulator, 1) == 0.0
    })
    .await;
    assert_eq!(accepted(&emulator, 1), 0.0);
}

/// An emulator whose node N listens on 127.a.b.N but advertises 10.255.0.N.
fn behind_nat(nodes: usize) -> Emulator {
    Emulator::start(nodes, 4, &["--advertise-base-ip", "10.255.0.1"])
}

fn advertised(i: usize) -> String {
    format!("10.255.0.{}", i + 1)
}

fn nat_config(emulator: &Emulator) -> SessionConfig {
    let mut config = config(emulator);
    config.connection.connect_timeout = Duration::from_millis(500);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_translation_only_the_contact_node_is_reachable() {
    let emulator = behind_nat(3);
    let session = connect_with(&emulator, nat_config(&emulator)).await;
    let insert = table(&session, "ks", SIMPLE_RF1).await;
    let peers: Vec<SocketAddr> = (1..3)
        .map(|i| {
            format!("{}:{}", advertised(i), emulator.port)
                .parse()
                .unwrap()
        })
        .collect();
    let mut known = session_addresses(&session);
    known.sort();
    let mut want = vec![emulator.addr(0), peers[0], peers[1]];
    want.sort();
    assert_eq!(known, want, "the peers as they advertise themselves");
    let before = routing(&emulator);
    write_all(&session, &insert).await;
    let moved = routing(&emulator).since(&before);
    // Everything went to the contact node, which owns about a third.
    assert_eq!(
        node_sum(&emulator, 1, "emulator_connections_accepted_total"),
        0.0
    );
    assert_eq!(
        node_sum(&emulator, 2, "emulator_connections_accepted_total"),
        0.0
    );
    assert!(moved.misrouted_node > 0.0, "{moved:?}");
    for node in session.metrics().nodes {
        if node.address != emulator.addr(0) {
            assert!(
                node.connections_per_shard.iter().all(|&c| c == 0),
                "{node:?}"
            );
            assert!(node.pool.failed_attempts > 0, "{node:?}");
        }
    }
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_map_reaches_every_node_with_full_shard_aware_pools() {
    let emulator = behind_nat(3);
    let mut map = StaticAddressMap::default();
    // Node 3 joins later.
    for i in 0..4 {
        map.insert(&advertised(i), &emulator.node_ip(i).to_string())
            .unwrap();
    }
    let mut config = nat_config(&emulator);
    config.address_translator = Some(Arc::new(map));
    let session = connect_with(&emulator, config).await;
    let insert = table(&session, "ks", SIMPLE_RF1).await;
    wait_pools_filled(&session, 4).await;
    assert_eq!(
        session_addresses(&session),
        vec![emulator.addr(0), emulator.addr(1), emulator.addr(2)]
    );
    assert!(session
        .metrics()
        .nodes
        .iter()
        .all(|n| n.shard_aware_port_in_use));
    let before = routing(&emulator);
    write_all(&session, &insert).await;
    let moved = routing(&emulator).since(&before);
    assert_eq!(moved.routable, f64::from(WRITES), "{moved:?}");
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");

    // Events name advertised addresses: a DOWN of node 1 marks it down.
    emulator.admin(1, "/admin/stop");
    let node1 = emulator.addr(1);
    wait_until("node 1 seen down", STEP, || {
        session
            .metrics()
            .nodes
            .iter()
            .any(|n| n.address == node1 && !n.up)
    })
    .await;
    emulator.admin(1, "/admin/start");
    // A node that joins is translated too.
    assert!(emulator
        .admin(0, "/admin/nodes/add")
        .starts_with("added node 3 "));
    wait_pools_filled(&session, 4).await;
    wait_until("node 3 known at its reachable address", STEP, || {
        session_addresses(&session).contains(&emulator.addr(3))
    })
    .await;
    wait_pools_filled(&session, 4).await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_rack_replica_is_chosen_first() {
    // One datacenter, two racks: nodes 0 and 2 in rack1, 1 and 3 in rack2;
    // with RF 2 NetworkTopologyStrategy every key has one replica in each.
    let emulator = Emulator::start(4, SHARDS, &["--racks", "2"]);
    let mut config = config(&emulator);
    config.local_dc = Some("datacenter1".into());
    config.local_rack = Some("rack2".into());
    let session = connect_with(&emulator, config).await;
    let insert = table(
        &session,
        "ks",
        "replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 2}",
    )
    .await;
    wait_pools_filled(&session, SHARDS).await;
    let routable = |i| node_sum(&emulator, i, "emulator_routable_requests_total");
    let before: Vec<f64> = (0..4).map(routable).collect();
    let routed_before = routing(&emulator);
    write_all(&session, &insert).await;
    let moved = routing(&emulator).since(&routed_before);
    assert_eq!(moved.routable, f64::from(WRITES), "{moved:?}");
    assert_eq!(moved.misrouted(), 0.0, "{moved:?}");
    let delta: Vec<f64> = (0..4).map(|i| routable(i) - before[i]).collect();
    assert_eq!(delta[0] + delta[2], 0.0, "rack1 served requests: {delta:?}");
    assert!(
        delta[1] > 0.0 && delta[3] > 0.0,
        "both rack2 nodes serve: {delta:?}"
    );
    session.close().await;
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

async fn writetime(session: &Session, k: i32) -> i64 {
    let result = run(
        session,
        &format!("SELECT WRITETIME(v) FROM ks.kv WHERE k = {k}"),
    )
    .await;
    match decode(result.rows.as_ref().expect("rows")).as_slice() {
        [row] => match row.as_slice() {
            [Some(CqlValue::BigInt(t))] => *t,
            other => panic!("writetime of {k}: {other:?}"),
        },
        other => panic!("writetime of {k}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timestamps_increase_and_a_statement_timestamp_wins() {
    // The coordinator's write clock runs an hour ahead: a write stamped by
    // the server is told apart from one stamped by the client.
    const AHEAD_US: i64 = 3_600_000_000;
    let emulator = Emulator::start(1, SHARDS, &["--write-clock-offset-ms", "3600000"]);
    let session = connect(&emulator).await;
    let insert = table(&session, "ks", SIMPLE_RF1).await;
    let mut previous = 0;
    let start = now_micros();
    for v in 0..50 {
        let mut st = Statement::prepared(insert.clone());
        st.values = vec![int(1), int(v)];
        run_statement(&session, &st).await;
        let t = writetime(&session, 1).await;
        assert!(t > previous, "write {v}: {t} after {previous}");
        previous = t;
    }
    assert!(previous >= start && previous <= now_micros(), "{previous}");
    let mut st = Statement::prepared(insert.clone());
    st.values = vec![int(2), int(1)];
    st.timestamp = Some(42);
    run_statement(&session, &st).await;
    assert_eq!(writetime(&session, 2).await, 42);
    // An older write loses against the newer one already there.
    st.values = vec![int(1), int(-1)];
    st.timestamp = Some(previous - 1);
    run_statement(&session, &st).await;
    let rows = run(&session, "SELECT v FROM ks.kv WHERE k = 1").await;
    assert_eq!(
        decode(rows.rows.as_ref().unwrap()),
        vec![vec![Some(CqlValue::Int(49))]]
    );
    session.close().await;

    // Off: the coordinator's clock decides.
    let mut config = config(&emulator);
    config.client_timestamps = false;
    let session = connect_with(&emulator, config).await;
    let before = now_micros();
    let mut st = Statement::prepared(insert.clone());
    st.values = vec![int(3), int(3)];
    run_statement(&session, &st).await;
    let t = writetime(&session, 3).await;
    assert!(
        t >= before + AHEAD_US && t <= now_micros() + AHEAD_US,
        "server-side timestamp {t}, client clock {before}"
    );
    session.close().await;
}

async fn run_statement(session: &Session, st: &Statement) {
    tokio::time::timeout(STEP, session.execute(st))
        .await
        .expect("answered in time")
        .expect("write");
}

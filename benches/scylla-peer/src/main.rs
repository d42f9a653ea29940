//! `scylla-peer`: the official `scylla` crate driven against the emulator.
//!
//! Subcommand `conformance` connects with the default load-balancing policy,
//! waits until every node's pool holds a connection per shard, prints the
//! topology the driver discovered, creates a keyspace and a table, runs
//! prepared inserts and reads (verifying every row) and prints, per pass and
//! in total, the deltas of the emulator's routing counters scraped from each
//! node's Prometheus endpoint. Every line it prints on stdout is one JSON
//! object; it exits non-zero on any failure.
//!
//! Subcommand `bench` is this driver's benchmark client (`bench.rs`, with
//! the common command line of `bench-core`); `memory` measures its client
//! memory (`memory.rs`, the peer of `examples/c/bench_memory.c`).

mod bench;
mod memory;
mod metrics;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::client::Compression;
use scylla::cluster::metadata::Strategy;
use scylla::statement::prepared::PreparedStatement;
use serde_json::{json, Value};

use crate::metrics::Snapshot;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(msg.into().into())
}

const USAGE: &str = "usage: scylla-peer conformance --contact HOST:PORT [--metrics-port 9180] \
[--keyspace ks] [--table t] [--rows 2000] [--rf 1] [--tablets N] [--passes 1] \
[--concurrency 64] [--expect-nodes N] [--user U --password P] [--pool-timeout-s 60] \
[--compression lz4|snappy|none]";

#[derive(Debug, Clone)]
struct Options {
    contact: String,
    metrics_port: u16,
    keyspace: String,
    table: String,
    rows: usize,
    rf: usize,
    tablets: Option<u32>,
    passes: usize,
    concurrency: usize,
    expect_nodes: Option<usize>,
    user: Option<String>,
    password: Option<String>,
    pool_timeout: Duration,
    compression: Option<Compression>,
}

fn parse_args(args: &[String]) -> Res<Options> {
    let mut o = Options {
        contact: "127.0.0.1:9042".to_string(),
        metrics_port: 9180,
        keyspace: "ks".to_string(),
        table: "t".to_string(),
        rows: 2000,
        rf: 1,
        tablets: None,
        passes: 1,
        concurrency: 64,
        expect_nodes: None,
        user: None,
        password: None,
        pool_timeout: Duration::from_secs(60),
        compression: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || -> Res<&String> {
            it.next()
                .ok_or_else(|| format!("missing value for {flag}\n{USAGE}").into())
        };
        match flag.as_str() {
            "--contact" => o.contact = value()?.clone(),
            "--metrics-port" => o.metrics_port = value()?.parse()?,
            "--keyspace" => o.keyspace = value()?.clone(),
            "--table" => o.table = value()?.clone(),
            "--rows" => o.rows = value()?.parse()?,
            "--rf" => o.rf = value()?.parse()?,
            "--tablets" => o.tablets = Some(value()?.parse()?),
            "--passes" => o.passes = value()?.parse()?,
            "--concurrency" => o.concurrency = value()?.parse()?,
            "--expect-nodes" => o.expect_nodes = Some(value()?.parse()?),
            "--user" => o.user = Some(value()?.clone()),
            "--password" => o.password = Some(value()?.clone()),
            "--pool-timeout-s" => o.pool_timeout = Duration::from_secs(value()?.parse()?),
            "--compression" => {
                o.compression = match value()?.as_str() {
                    "lz4" => Some(Compression::Lz4),
                    "snappy" => Some(Compression::Snappy),
                    "none" => None,
                    other => return fail(format!("unknown compression {other}")),
                }
            }
            "-h" | "--help" => return fail(USAGE),
            other => return fail(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if o.passes == 0 || o.concurrency == 0 || o.rf == 0 {
        return fail("--passes, --concurrency and --rf must be positive");
    }
    Ok(o)
}

fn emit(v: Value) {
    println!("{v}");
}

/// One node as the driver sees it, reduced to what the test checks.
#[derive(Debug, Clone)]
struct NodeView {
    ip: IpAddr,
    address: String,
    datacenter: Option<String>,
    rack: Option<String>,
    host_id: String,
    nr_shards: Option<u16>,
    tokens: usize,
    connected: bool,
}

fn node_views(session: &Session) -> Vec<NodeView> {
    let state = session.get_cluster_state();
    let mut tokens: HashMap<String, usize> = HashMap::new();
    for (_, node) in state.replica_locator().ring().iter() {
        *tokens.entry(node.host_id.to_string()).or_default() += 1;
    }
    let mut views: Vec<NodeView> = state
        .get_nodes_info()
        .iter()
        .map(|n| {
            let host_id = n.host_id.to_string();
            NodeView {
                ip: n.address.ip(),
                address: n.address.to_string(),
                datacenter: n.datacenter.clone(),
                rack: n.rack.clone(),
                tokens: tokens.get(&host_id).copied().unwrap_or(0),
                host_id,
                nr_shards: n.sharder().map(|s| s.nr_shards.get()),
                connected: n.is_connected(),
            }
        })
        .collect();
    views.sort_by_key(|v| v.ip);
    views
}

fn topology_json(views: &[NodeView]) -> Value {
    Value::Array(
        views
            .iter()
            .map(|v| {
                json!({
                    "address": v.address,
                    "ip": v.ip.to_string(),
                    "datacenter": v.datacenter,
                    "rack": v.rack,
                    "host_id": v.host_id,
                    "nr_shards": v.nr_shards,
                    "tokens": v.tokens,
                })
            })
            .collect(),
    )
}

/// Polls until the driver knows the expected nodes, each with a sharder and an
/// open pool, the driver's pools hold at least one connection per shard, and
/// the emulator reports at least one open connection on every shard of every
/// node. Bounded by `timeout`.
async fn wait_pools_full(session: &Session, o: &Options) -> Res<Vec<NodeView>> {
    let deadline = Instant::now() + o.pool_timeout;
    let mut last_reason;
    loop {
        let views = node_views(session);
        let total_shards: u64 = views
            .iter()
            .filter_map(|v| v.nr_shards)
            .map(u64::from)
            .sum();
        let conns = session.get_metrics().get_total_connections();
        last_reason = String::new();
        if let Some(n) = o.expect_nodes {
            if views.len() != n {
                last_reason = format!("driver knows {} nodes, expected {n}", views.len());
            }
        }
        if last_reason.is_empty() {
            if let Some(v) = views.iter().find(|v| v.nr_shards.is_none() || !v.connected) {
                last_reason = format!(
                    "node {} has sharder {:?}, connected {}",
                    v.address, v.nr_shards, v.connected
                );
            } else if views.iter().any(|v| v.tokens == 0) {
                last_reason = "some node has no tokens in the driver's ring".to_string();
            } else if conns < total_shards {
                last_reason =
                    format!("driver pools hold {conns} connections < {total_shards} shards");
            }
        }
        if last_reason.is_empty() {
            // Server side: every shard of every node has an open connection.
            for v in &views {
                let nr = v.nr_shards.unwrap_or(1);
                match metrics::scrape(v.ip, o.metrics_port) {
                    Ok(c) => {
                        for shard in 0..nr {
                            let cur = c.get("emulator_connections_current", &v.ip, shard);
                            if cur < 1.0 {
                                last_reason = format!(
                                    "emulator reports {cur} connections on {} shard {shard}",
                                    v.ip
                                );
                                break;
                            }
                        }
                    }
                    Err(e) => last_reason = format!("scraping {} failed: {e}", v.ip),
                }
                if !last_reason.is_empty() {
                    break;
                }
            }
        }
        if last_reason.is_empty() {
            return Ok(views);
        }
        if Instant::now() >= deadline {
            return fail(format!(
                "pools not full after {:?}: {last_reason}",
                o.pool_timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn replication_clause(o: &Options, views: &[NodeView]) -> String {
    match o.tablets {
        Some(n) => {
            let dcs: std::collections::BTreeSet<String> =
                views.iter().filter_map(|v| v.datacenter.clone()).collect();
            let dc_parts: Vec<String> = dcs.iter().map(|dc| format!("'{dc}': {}", o.rf)).collect();
            format!(
                "{{'class': 'NetworkTopologyStrategy', {}}} AND tablets = {{'enabled': true, 'initial': {n}}}",
                dc_parts.join(", ")
            )
        }
        None => format!(
            "{{'class': 'SimpleStrategy', 'replication_factor': {}}}",
            o.rf
        ),
    }
}

/// Waits (bounded) until the driver's schema metadata has the keyspace and the
/// table; returns whether the driver regards the keyspace as tablet based.
async fn wait_schema(session: &Session, o: &Options) -> Res<(bool, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        session.refresh_metadata().await?;
        let state = session.get_cluster_state();
        if let Some(ks) = state.get_keyspace(&o.keyspace) {
            if let Some(t) = ks.tables.get(&o.table) {
                if t.partition_key != ["pk1", "pk2"] || t.clustering_key != ["ck"] {
                    return fail(format!(
                        "driver metadata of {}.{}: partition key {:?}, clustering key {:?}",
                        o.keyspace, o.table, t.partition_key, t.clustering_key
                    ));
                }
                let strategy = match &ks.strategy {
                    Strategy::SimpleStrategy { replication_factor } => {
                        format!("SimpleStrategy rf={replication_factor}")
                    }
                    Strategy::NetworkTopologyStrategy {
                        datacenter_repfactors,
                    } => {
                        let m: BTreeMap<_, _> = datacenter_repfactors.iter().collect();
                        format!("NetworkTopologyStrategy {m:?}")
                    }
                    other => format!("{other:?}"),
                };
                return Ok((ks.tablet_based, strategy));
            }
        }
        if Instant::now() >= deadline {
            return fail(format!(
                "driver metadata never showed {}.{}",
                o.keyspace, o.table
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Row {
    pk1: i32,
    pk2: String,
    ck: i32,
    v: String,
    n: i64,
}

fn row(i: usize) -> Row {
    Row {
        pk1: (i as i32).wrapping_mul(7919) % 100_003,
        pk2: format!("p{}", i % 13),
        ck: (i % 5) as i32,
        v: format!("value-{i}-{}", "x".repeat(i % 17)),
        n: (i as i64) * 1_000_003 - 500,
    }
}

/// Where one request was served, as the driver reports it.
type Coord = (String, Option<u16>);

struct PassResult {
    rows_verified: usize,
    coordinators: Vec<Coord>,
    not_on_driver_replica: usize,
}

async fn run_pass(
    session: &Arc<Session>,
    o: &Options,
    insert: &PreparedStatement,
    select: &PreparedStatement,
) -> Res<PassResult> {
    // Inserts.
    let coords_ins: Vec<(Coord, bool)> = stream::iter(0..o.rows)
        .map(|i| {
            let session = Arc::clone(session);
            let insert = insert.clone();
            let ks = o.keyspace.clone();
            let table = o.table.clone();
            async move {
                let r = row(i);
                let res = session
                    .execute_unpaged(&insert, (r.pk1, &r.pk2, r.ck, &r.v, r.n))
                    .await
                    .map_err(|e| format!("insert of row {i} failed: {e}"))?;
                Ok::<_, BoxError>(coordinator_of(&session, &ks, &table, &r, &res))
            }
        })
        .buffer_unordered(o.concurrency)
        .try_collect()
        .await?;
    // Reads, each verified against what was written.
    let coords_sel: Vec<(Coord, bool)> = stream::iter(0..o.rows)
        .map(|i| {
            let session = Arc::clone(session);
            let select = select.clone();
            let ks = o.keyspace.clone();
            let table = o.table.clone();
            async move {
                let r = row(i);
                let res = session
                    .execute_unpaged(&select, (r.pk1, &r.pk2, r.ck))
                    .await
                    .map_err(|e| format!("select of row {i} failed: {e}"))?;
                let coord = coordinator_of(&session, &ks, &table, &r, &res);
                let rows = res
                    .into_rows_result()
                    .map_err(|e| format!("select of row {i}: not rows: {e}"))?;
                let got: Option<(String, i64)> = rows
                    .maybe_first_row::<(String, i64)>()
                    .map_err(|e| format!("select of row {i}: bad row: {e}"))?;
                match got {
                    Some((v, n)) if v == r.v && n == r.n && rows.rows_num() == 1 => Ok(coord),
                    other => Err::<_, BoxError>(
                        format!(
                            "row {i} (pk1={}, pk2={}, ck={}) read back {other:?} ({} rows), wrote ({:?}, {})",
                            r.pk1,
                            r.pk2,
                            r.ck,
                            rows.rows_num(),
                            r.v,
                            r.n
                        )
                        .into(),
                    ),
                }
            }
        })
        .buffer_unordered(o.concurrency)
        .try_collect()
        .await?;
    let not_on_driver_replica = coords_ins
        .iter()
        .chain(coords_sel.iter())
        .filter(|(_, on)| !on)
        .count();
    let coordinators = coords_ins
        .into_iter()
        .chain(coords_sel)
        .map(|(c, _)| c)
        .collect();
    Ok(PassResult {
        rows_verified: o.rows,
        coordinators,
        not_on_driver_replica,
    })
}

/// The request's coordinator (host_id, shard) and whether it is one of the
/// replicas the driver itself computes for the row's partition key (for
/// tablet tables: from its tablet cache as it is after the request).
fn coordinator_of(
    session: &Session,
    ks: &str,
    table: &str,
    r: &Row,
    res: &scylla::response::query_result::QueryResult,
) -> (Coord, bool) {
    let c = res.request_coordinator();
    let host = c.node().host_id;
    let shard = c.shard();
    let state = session.get_cluster_state();
    let on_replica = match state.get_endpoints(ks, table, &(r.pk1, r.pk2.as_str())) {
        Ok(eps) => eps
            .iter()
            .any(|(n, s)| n.host_id == host && Some(*s as u16) == shard.map(|x| x as u16)),
        Err(_) => false,
    };
    ((host.to_string(), shard.map(|s| s as u16)), on_replica)
}

fn snapshot_all(views: &[NodeView], port: u16) -> Res<Snapshot> {
    let mut snap = Snapshot::default();
    for v in views {
        let c = metrics::scrape(v.ip, port).map_err(|e| format!("scrape {}: {e}", v.ip))?;
        snap.nodes.insert(v.ip, c);
    }
    Ok(snap)
}

fn deltas_json(before: &Snapshot, after: &Snapshot) -> Value {
    json!({
        "requests": after.total("emulator_requests_total") - before.total("emulator_requests_total"),
        "misrouted_node": after.total("emulator_misrouted_node_total") - before.total("emulator_misrouted_node_total"),
        "misrouted_shard": after.total("emulator_misrouted_shard_total") - before.total("emulator_misrouted_shard_total"),
        "payloads": after.total("emulator_tablet_payloads_sent_total") - before.total("emulator_tablet_payloads_sent_total"),
    })
}

/// Compares what the driver says it sent per (node, shard) with the
/// emulator's request counters: the emulator must have counted at least as
/// many requests on that shard as the driver sent there.
fn compare_per_shard(
    views: &[NodeView],
    before: &Snapshot,
    after: &Snapshot,
    coords: &[Coord],
) -> (Value, Vec<String>) {
    let mut sent: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for (h, s) in coords {
        *sent.entry((h.clone(), s.unwrap_or(0))).or_default() += 1;
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for v in views {
        for shard in 0..v.nr_shards.unwrap_or(1) {
            let d = after.get("emulator_requests_total", &v.ip, shard)
                - before.get("emulator_requests_total", &v.ip, shard);
            let s = sent.get(&(v.host_id.clone(), shard)).copied().unwrap_or(0);
            if d + 0.5 < s as f64 {
                problems.push(format!(
                    "{} shard {shard}: driver sent {s} requests there, emulator counted {d}",
                    v.ip
                ));
            }
            rows.push(json!({"ip": v.ip.to_string(), "shard": shard, "driver_sent": s, "emulator_requests": d}));
        }
    }
    (Value::Array(rows), problems)
}

async fn conformance(o: Options) -> Res<()> {
    let mut builder = SessionBuilder::new()
        .known_node(&o.contact)
        .compression(o.compression);
    if let (Some(u), Some(p)) = (&o.user, &o.password) {
        builder = builder.user(u, p);
    }
    let session = Arc::new(
        tokio::time::timeout(Duration::from_secs(60), builder.build())
            .await
            .map_err(|_| "session build timed out after 60 s")??,
    );
    let views = wait_pools_full(&session, &o).await?;
    let mut unique_hosts = HashSet::new();
    for v in &views {
        if !unique_hosts.insert(v.host_id.clone()) {
            return fail(format!("duplicate host_id {} in topology", v.host_id));
        }
    }
    emit(json!({
        "event": "topology",
        "cluster_name": session.get_cluster_state().cluster_name(),
        "nodes": topology_json(&views),
        "driver_connections": session.get_metrics().get_total_connections(),
        "compression": format!("{:?}", o.compression),
    }));

    let ks = &o.keyspace;
    let t = &o.table;
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {ks} WITH replication = {}",
                replication_clause(&o, &views)
            ),
            (),
        )
        .await
        .map_err(|e| format!("CREATE KEYSPACE failed: {e}"))?;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {ks}.{t} (pk1 int, pk2 text, ck int, v text, n bigint, \
                 PRIMARY KEY ((pk1, pk2), ck))"
            ),
            (),
        )
        .await
        .map_err(|e| format!("CREATE TABLE failed: {e}"))?;
    let (tablet_based, strategy) = wait_schema(&session, &o).await?;
    emit(json!({"event": "schema", "keyspace": ks, "table": t,
                "tablet_based": tablet_based, "strategy": strategy}));
    if o.tablets.is_some() && !tablet_based {
        return fail(format!(
            "driver does not regard keyspace {ks} as tablet based \
             (system_schema.scylla_keyspaces.initial_tablets missing?)"
        ));
    }
    if o.tablets.is_none() && tablet_based {
        return fail(format!(
            "driver regards vnode keyspace {ks} as tablet based"
        ));
    }

    let mut insert = session
        .prepare(format!(
            "INSERT INTO {ks}.{t} (pk1, pk2, ck, v, n) VALUES (?, ?, ?, ?, ?)"
        ))
        .await
        .map_err(|e| format!("PREPARE insert failed: {e}"))?;
    let mut select = session
        .prepare(format!(
            "SELECT v, n FROM {ks}.{t} WHERE pk1 = ? AND pk2 = ? AND ck = ?"
        ))
        .await
        .map_err(|e| format!("PREPARE select failed: {e}"))?;
    for (name, p) in [("insert", &insert), ("select", &select)] {
        if !p.is_token_aware() {
            return fail(format!(
                "prepared {name} is not token aware (pk indexes missing in PREPARED metadata)"
            ));
        }
    }
    insert.set_consistency(scylla::statement::Consistency::One);
    select.set_consistency(scylla::statement::Consistency::One);

    let mut passes = Vec::new();
    let first = snapshot_all(&views, o.metrics_port)?;
    let mut total_rows = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut not_on_replica_total = 0;
    for pass in 1..=o.passes {
        let before = snapshot_all(&views, o.metrics_port)?;
        let started = Instant::now();
        let r = run_pass(&session, &o, &insert, &select).await?;
        let elapsed = started.elapsed();
        let after = snapshot_all(&views, o.metrics_port)?;
        let (per_shard, problems) = compare_per_shard(&views, &before, &after, &r.coordinators);
        failures.extend(problems.iter().map(|p| format!("pass {pass}: {p}")));
        total_rows += r.rows_verified;
        not_on_replica_total += r.not_on_driver_replica;
        let mut d = deltas_json(&before, &after);
        d["event"] = json!("pass");
        d["pass"] = json!(pass);
        d["rows_verified"] = json!(r.rows_verified);
        d["driver_requests"] = json!(r.coordinators.len());
        d["not_on_driver_replica"] = json!(r.not_on_driver_replica);
        d["elapsed_ms"] = json!(elapsed.as_millis() as u64);
        d["per_shard"] = per_shard;
        emit(d.clone());
        passes.push(d);
    }
    let last = snapshot_all(&views, o.metrics_port)?;
    let mut d = deltas_json(&first, &last);
    d["event"] = json!("result");
    d["rows_verified"] = json!(total_rows);
    d["not_on_driver_replica"] = json!(not_on_replica_total);
    d["passes"] = Value::Array(passes);
    d["ok"] = json!(failures.is_empty());
    d["failures"] = json!(failures);
    emit(d);
    if !failures.is_empty() {
        return fail(failures.join("; "));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if cmd == "bench" {
        return bench_core::main::<bench::ScyllaRust>(rest);
    }
    if cmd == "memory" {
        return memory::main(rest);
    }
    if cmd != "conformance" {
        eprintln!(
            "unknown subcommand {cmd}\n{USAGE}\nbench: {}",
            bench_core::USAGE
        );
        return ExitCode::from(2);
    }
    let opts = match parse_args(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(rt) = bench_core::runtime() else {
        return ExitCode::FAILURE;
    };
    match rt.block_on(conformance(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            emit(json!({"event": "error", "message": e.to_string()}));
            eprintln!("scylla-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        let args: Vec<String> =
            "--contact 127.0.0.5:9042 --rows 10 --tablets 8 --passes 2 --compression lz4"
                .split(' ')
                .map(String::from)
                .collect();
        let o = parse_args(&args).unwrap();
        assert_eq!(o.contact, "127.0.0.5:9042");
        assert_eq!(o.rows, 10);
        assert_eq!(o.tablets, Some(8));
        assert_eq!(o.passes, 2);
        assert_eq!(o.compression, Some(Compression::Lz4));
        assert!(parse_args(&["--bogus".to_string()]).is_err());
    }

    #[test]
    fn rows_have_distinct_primary_keys() {
        let keys: HashSet<(i32, String, i32)> =
            (0..5000).map(row).map(|r| (r.pk1, r.pk2, r.ck)).collect();
        assert_eq!(keys.len(), 5000);
    }
}

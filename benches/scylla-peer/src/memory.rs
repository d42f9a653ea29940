//! Subcommand `memory`: the Rust `scylla` crate's client memory figures, the
//! peer of `examples/c/bench_memory.c` (same options, same modes, same JSON
//! line; benches/memory.py runs both and divides). One more mode, `fill`,
//! creates the tables the others read.
//!
//!   scylla-peer memory --contact HOST:PORT --mode connections|inflight|paging|fill
//!                      [--connections-per-shard 1] [--concurrency 256]
//!                      [--page-size 1000] [--expect-nodes N] [--pool-timeout 30]
//!                      [--rows 100000] [--value-bytes 1000]

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_core::{table_cql, Res};
use futures::stream::{self, StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::client::PoolSize;
use scylla::response::PagingState;
use scylla::statement::prepared::PreparedStatement;
use serde_json::{json, Value};

const DRIVER: &str = "scylla-rust";
const KEYSPACE_CQL: &str = "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = \
                            {'class': 'SimpleStrategy', 'replication_factor': 1}";
const BIG_TABLE_CQL: &str =
    "CREATE TABLE IF NOT EXISTS bench.big (p int, c int, v blob, PRIMARY KEY (p, c))";

struct Options {
    contact: String,
    mode: String,
    connections_per_shard: usize,
    concurrency: usize,
    page_size: i32,
    expect_nodes: Option<usize>,
    pool_timeout: Duration,
    rows: i32,
    value_bytes: usize,
}

fn parse(args: &[String]) -> Res<Options> {
    let mut o = Options {
        contact: "127.0.0.1:9042".into(),
        mode: String::new(),
        connections_per_shard: 1,
        concurrency: 256,
        page_size: 1000,
        expect_nodes: None,
        pool_timeout: Duration::from_secs(30),
        rows: 100_000,
        value_bytes: 1000,
    };
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let value = it.next().ok_or_else(|| format!("{name} takes a value"))?;
        match name.as_str() {
            "--contact" => o.contact = value.clone(),
            "--mode" => o.mode = value.clone(),
            "--connections-per-shard" => o.connections_per_shard = value.parse()?,
            "--concurrency" => o.concurrency = value.parse()?,
            "--page-size" => o.page_size = value.parse()?,
            "--expect-nodes" => o.expect_nodes = Some(value.parse()?),
            "--pool-timeout" => o.pool_timeout = Duration::from_secs_f64(value.parse()?),
            "--rows" => o.rows = value.parse()?,
            "--value-bytes" => o.value_bytes = value.parse()?,
            _ => return Err(format!("unknown option {name}").into()),
        }
    }
    if o.mode.is_empty() {
        return Err("--mode connections|inflight|paging|fill is required".into());
    }
    Ok(o)
}

fn status_kib(field: &str) -> Res<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status").into())
}

fn rss_kib() -> Res<u64> {
    status_kib("VmRSS:")
}

fn hwm_kib() -> Res<u64> {
    status_kib("VmHWM:")
}

/// Starts a peak measurement: VmHWM := VmRSS.
fn reset_peak() -> Res<()> {
    std::fs::write("/proc/self/clear_refs", "5")
        .map_err(|e| format!("cannot reset VmHWM through /proc/self/clear_refs: {e}").into())
}

async fn connect(o: &Options, per_shard: usize) -> Res<Session> {
    let per_shard = NonZeroUsize::new(per_shard).ok_or("--connections-per-shard must be > 0")?;
    Ok(SessionBuilder::new()
        .known_node(&o.contact)
        .pool_size(PoolSize::PerShard(per_shard))
        .build()
        .await?)
}

/// Waits until every shard of every node holds `per_shard` connections;
/// returns the shards and the connections held.
async fn wait_pools(session: &Session, o: &Options, per_shard: usize) -> Res<(u64, u64)> {
    let deadline = Instant::now() + o.pool_timeout;
    loop {
        let views = crate::node_views(session);
        let known = !views.is_empty()
            && o.expect_nodes.is_none_or(|n| views.len() == n)
            && views.iter().all(|v| v.nr_shards.is_some() && v.connected);
        let shards: u64 = views
            .iter()
            .filter_map(|v| v.nr_shards)
            .map(u64::from)
            .sum();
        let held = session.get_metrics().get_total_connections();
        if known && held >= shards * per_shard as u64 {
            return Ok((shards, held));
        }
        if Instant::now() >= deadline {
            return Err(format!("the pools did not fill within {:?}", o.pool_timeout).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn mode_connections(o: &Options) -> Res<Value> {
    let before = rss_kib()?;
    let session = connect(o, o.connections_per_shard).await?;
    let (shards, held) = wait_pools(&session, o, o.connections_per_shard).await?;
    let after = rss_kib()?;
    Ok(json!({
        "mode": "connections", "connections_per_shard": o.connections_per_shard,
        "shards": shards, "connections": held,
        "rss_before_kib": before, "rss_after_kib": after,
    }))
}

/// Issues `n` SELECTs at once and waits for all; returns the failures.
async fn select_burst(session: &Session, select: &PreparedStatement, n: usize) -> u64 {
    let requests = (0..n).map(|i| session.execute_unpaged(select, ((i % 1000) as i64,)));
    futures::future::join_all(requests)
        .await
        .iter()
        .filter(|r| r.is_err())
        .count() as u64
}

async fn mode_inflight(o: &Options) -> Res<Value> {
    let session = connect(o, 1).await?;
    wait_pools(&session, o, 1).await?;
    let mut select = session
        .prepare("SELECT v, tag FROM bench.kv WHERE k = ?")
        .await?;
    select.set_is_idempotent(true);
    // Warm-up: connections, runtime and buffers reach their working size.
    for _ in 0..4 {
        select_burst(&session, &select, 64).await;
    }
    let before = rss_kib()?;
    reset_peak()?;
    let started = Instant::now();
    let errors = select_burst(&session, &select, o.concurrency).await;
    let elapsed = started.elapsed().as_secs_f64();
    let peak = hwm_kib()?;
    Ok(json!({
        "mode": "inflight", "requests": o.concurrency, "errors": errors,
        "elapsed_s": elapsed, "rss_before_kib": before, "hwm_kib": peak,
    }))
}

async fn mode_paging(o: &Options) -> Res<Value> {
    let session = connect(o, 1).await?;
    wait_pools(&session, o, 1).await?;
    let mut select = session
        .prepare("SELECT c, v FROM bench.big WHERE p = ?")
        .await?;
    select.set_page_size(o.page_size);
    let before = rss_kib()?;
    reset_peak()?;
    let (mut rows, mut bytes, mut pages, mut touched) = (0u64, 0u64, 0u64, 0u64);
    let mut paging_state = PagingState::start();
    loop {
        let (result, next) = session
            .execute_single_page(&select, (0i32,), paging_state)
            .await?;
        let page = result.into_rows_result()?;
        for row in page.rows::<(i32, &[u8])>()? {
            let (_, v) = row?;
            if let Some(last) = v.last() {
                touched += u64::from(*last);
            }
            bytes += v.len() as u64;
            rows += 1;
        }
        pages += 1;
        match next.into_paging_control_flow() {
            std::ops::ControlFlow::Continue(state) => paging_state = state,
            std::ops::ControlFlow::Break(()) => break,
        }
    }
    let peak = hwm_kib()?;
    Ok(json!({
        "mode": "paging", "rows": rows, "bytes": bytes, "pages": pages, "checksum": touched,
        "rss_before_kib": before, "hwm_kib": peak,
    }))
}

/// The value of row `c` of bench.big: `value_bytes` bytes derived from `c`.
fn big_value(c: i32, value_bytes: usize) -> Vec<u8> {
    (0..value_bytes)
        .map(|i| (c as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

async fn mode_fill(o: &Options) -> Res<Value> {
    let session = connect(o, 1).await?;
    wait_pools(&session, o, 1).await?;
    for cql in [
        KEYSPACE_CQL.to_string(),
        table_cql("bench", "kv"),
        BIG_TABLE_CQL.to_string(),
    ] {
        session.query_unpaged(cql, ()).await?;
    }
    let insert = session
        .prepare("INSERT INTO bench.big (p, c, v) VALUES (0, ?, ?)")
        .await?;
    let (insert, session) = (&insert, &session);
    let started = Instant::now();
    stream::iter(0..o.rows)
        .map(|c| async move {
            session
                .execute_unpaged(insert, (c, big_value(c, o.value_bytes)))
                .await
        })
        .buffer_unordered(256)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(json!({
        "mode": "fill", "rows": o.rows, "bytes": o.rows as u64 * o.value_bytes as u64,
        "elapsed_s": started.elapsed().as_secs_f64(),
    }))
}

pub fn main(args: &[String]) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scylla-peer memory: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(rt) = bench_core::runtime() else {
        return ExitCode::FAILURE;
    };
    let outcome = rt.block_on(async {
        match o.mode.as_str() {
            "connections" => mode_connections(&o).await,
            "inflight" => mode_inflight(&o).await,
            "paging" => mode_paging(&o).await,
            "fill" => mode_fill(&o).await,
            other => Err(format!("unknown mode {other}").into()),
        }
    });
    match outcome {
        Ok(mut line) => {
            line["event"] = json!("result");
            line["driver"] = json!(DRIVER);
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{}", json!({"event": "error", "message": e.to_string()}));
            ExitCode::from(2)
        }
    }
}

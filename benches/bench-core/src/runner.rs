//! Connect, warm up, measure, verify, report.
//!
//! Request number `i` (one counter shared by every requester, continuing
//! from the warm-up into the measured phase) uses key `i % keys`; whether it
//! is an INSERT or a SELECT is [`Workload::is_insert`]. A requester checks
//! the deadline before it takes a number, so every number taken is executed
//! and the measured phase's requests are exactly the numbers it handed out.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::options::{Options, Workload};
use crate::stats::{Latencies, Rusage};
use crate::{payload, table_cql, Driver, Res};

/// How long `--sync` waits for the orchestrator's go-ahead.
const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
/// Requesters of the read-back after the measured phase (at most).
const READBACK_CONCURRENCY: usize = 32;
/// Poll period while waiting for full pools.
pub(crate) const POOL_POLL: Duration = Duration::from_millis(20);

struct Ctx {
    workload: Workload,
    keys: u64,
    tag: i64,
    payloads: Vec<String>,
    next: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Take no new request number at or after this instant.
    At(Instant),
    /// Take request numbers below this one.
    Before(u64),
}

#[derive(Debug, Default)]
struct PhaseStats {
    latencies: Latencies,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    checked: u64,
    mismatches: u64,
    first_mismatch: Option<String>,
}

impl PhaseStats {
    fn error(&mut self, what: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what.to_string());
        }
    }

    /// Compares a row read back with what was written.
    fn check(&mut self, key: u64, got: Option<(String, i64)>, want: &str, want_tag: Option<i64>) {
        self.checked += 1;
        let ok = match &got {
            Some((v, tag)) => v == want && want_tag.is_none_or(|t| t == *tag),
            None => false,
        };
        if !ok {
            self.mismatches += 1;
            if self.first_mismatch.is_none() {
                self.first_mismatch = Some(format!(
                    "key {key}: read {got:?}, expected ({want:?}, {want_tag:?})"
                ));
            }
        }
    }

    fn merge(&mut self, other: PhaseStats) {
        self.latencies.merge(other.latencies);
        self.requests += other.requests;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.checked += other.checked;
        self.mismatches += other.mismatches;
        self.first_mismatch = self.first_mismatch.take().or(other.first_mismatch);
    }
}

async fn requester<D: Driver>(driver: Arc<D>, ctx: Arc<Ctx>, stop: Stop) -> PhaseStats {
    let mut stats = PhaseStats {
        latencies: Latencies::with_capacity(4096),
        ..PhaseStats::default()
    };
    loop {
        let i = match stop {
            Stop::At(deadline) => {
                if Instant::now() >= deadline {
                    break;
                }
                ctx.next.fetch_add(1, Ordering::Relaxed)
            }
            Stop::Before(end) => {
                let i = ctx.next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                i
            }
        };
        let key = i % ctx.keys;
        let value = &ctx.payloads[key as usize];
        let started = Instant::now();
        let outcome = if ctx.workload.is_insert(i) {
            driver
                .insert(key as i64, value, ctx.tag)
                .await
                .map(|()| None)
        } else {
            driver.select(key as i64).await.map(Some)
        };
        stats.latencies.record(started.elapsed().as_nanos() as u64);
        stats.requests += 1;
        match outcome {
            Err(e) => stats.error(e),
            Ok(None) => {}
            Ok(Some(row)) => stats.check(key, row, value, None),
        }
    }
    stats
}

async fn phase<D: Driver>(
    driver: &Arc<D>,
    ctx: &Arc<Ctx>,
    concurrency: usize,
    stop: Stop,
) -> PhaseStats {
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        tasks.spawn(requester(Arc::clone(driver), Arc::clone(ctx), stop));
    }
    let mut total = PhaseStats::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(s) => total.merge(s),
            Err(e) => total.error(format!("requester task failed: {e}")),
        }
    }
    total
}

/// Reads back `keys` and checks value and tag.
async fn read_back<D: Driver>(driver: &Arc<D>, ctx: &Arc<Ctx>, keys: Vec<u64>) -> PhaseStats {
    let keys = Arc::new(keys);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..READBACK_CONCURRENCY.min(keys.len()) {
        let (driver, ctx, keys, next) = (
            Arc::clone(driver),
            Arc::clone(ctx),
            Arc::clone(&keys),
            Arc::clone(&next),
        );
        tasks.spawn(async move {
            let mut stats = PhaseStats::default();
            while let Some(&key) = keys.get(next.fetch_add(1, Ordering::Relaxed)) {
                match driver.select(key as i64).await {
                    Ok(row) => stats.check(key, row, &ctx.payloads[key as usize], Some(ctx.tag)),
                    Err(e) => stats.error(e),
                }
            }
            stats
        });
    }
    let mut total = PhaseStats::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(s) => total.merge(s),
            Err(e) => total.error(format!("read-back task failed: {e}")),
        }
    }
    total
}

/// The distinct keys of the last inserts among request numbers
/// `[start, end)`, newest first, at most `max`.
fn inserted_keys(workload: Workload, keys: u64, start: u64, end: u64, max: u64) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for i in (start..end).rev() {
        if out.len() as u64 >= max || seen.len() as u64 >= keys {
            break;
        }
        if workload.is_insert(i) && seen.insert(i % keys) {
            out.push(i % keys);
        }
    }
    out
}

/// Tells the orchestrator this client is at a checkpoint and waits (bounded)
/// for any line on stdin.
async fn checkpoint(opts: &Options, what: &str) -> Res<()> {
    if !opts.sync {
        return Ok(());
    }
    println!("{}", json!({"event": "ready", "at": what}));
    std::io::stdout().flush()?;
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    });
    match tokio::time::timeout(SYNC_TIMEOUT, read).await {
        Ok(Ok(Ok(_))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("reading the go-ahead: {e}").into()),
        Ok(Err(e)) => Err(format!("reading the go-ahead: {e}").into()),
        Err(_) => Err(format!("no go-ahead on stdin within {SYNC_TIMEOUT:?}").into()),
    }
}

async fn wait_pools<D: Driver>(driver: &D, opts: &Options) -> bool {
    let deadline = Instant::now() + opts.pool_timeout;
    loop {
        if driver.pools_full(opts) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POOL_POLL).await;
    }
}

/// Runs the workload of `opts` and returns the result line.
pub async fn run<D: Driver>(opts: Options) -> Res<Value> {
    if opts.workload == Workload::Hold {
        let mut line = crate::hold::hold::<D>(&opts).await?;
        if let Value::Object(line) = &mut line {
            line.extend([
                ("event".to_owned(), json!("result")),
                ("driver".to_owned(), json!(D::NAME)),
                ("workload".to_owned(), json!("hold")),
                ("process_cpu_s".to_owned(), Rusage::now().json()),
            ]);
        }
        return Ok(line);
    }
    let started = Instant::now();
    let mut driver = tokio::time::timeout(opts.pool_timeout, D::connect(&opts))
        .await
        .map_err(|_| format!("connect did not finish within {:?}", opts.pool_timeout))??;
    let pools_full = wait_pools(&driver, &opts).await;
    let connect_s = started.elapsed().as_secs_f64();
    let measuring = matches!(
        opts.workload,
        Workload::Insert | Workload::Select | Workload::Mixed
    );
    if measuring {
        if let Err(e) = driver.prepare(&opts.keyspace, &opts.table).await {
            driver.close().await;
            return Err(format!("prepare failed: {e}").into());
        }
    }
    let driver = Arc::new(driver);
    let outcome = match opts.workload {
        Workload::Schema => schema(&driver, &opts).await,
        Workload::Connect => checkpoint(&opts, "pools").await.map(|()| json!({})),
        Workload::Hold => unreachable!("handled above"),
        _ => measure(&driver, &opts).await,
    };
    let connections = driver.connections();
    driver.close().await;
    let mut line = outcome?;
    let header = json!({
        "event": "result",
        "driver": D::NAME,
        "workload": opts.workload.name(),
        "concurrency": opts.concurrency,
        "keyspace": opts.keyspace,
        "connect_s": connect_s,
        "pools_full": pools_full,
        "driver_connections": connections,
        "process_cpu_s": Rusage::now().json(),
    });
    if let (Value::Object(line), Value::Object(header)) = (&mut line, header) {
        line.extend(header);
    }
    Ok(line)
}

async fn schema<D: Driver>(driver: &Arc<D>, opts: &Options) -> Res<Value> {
    driver
        .query(&format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}",
            opts.keyspace, opts.replication
        ))
        .await?;
    driver
        .query(&table_cql(&opts.keyspace, &opts.table))
        .await?;
    Ok(json!({}))
}

async fn measure<D: Driver>(driver: &Arc<D>, opts: &Options) -> Res<Value> {
    let ctx = Arc::new(Ctx {
        workload: opts.workload,
        keys: opts.keys,
        tag: opts.tag,
        payloads: (0..opts.keys).map(payload).collect(),
        next: AtomicU64::new(0),
    });
    let c = opts.concurrency;
    let warm = match opts.requests {
        Some(_) => phase(driver, &ctx, c, Stop::Before(opts.warmup_requests)).await,
        None if opts.warmup.is_zero() => PhaseStats::default(),
        None => phase(driver, &ctx, c, Stop::At(Instant::now() + opts.warmup)).await,
    };
    // The warm-up executed numbers [0, warm.requests); those taken past a
    // `Before` bound were not executed and are handed out again.
    let start = warm.requests;
    ctx.next.store(start, Ordering::Relaxed);
    checkpoint(opts, "measure").await?;

    let cpu0 = Rusage::now();
    let t0 = Instant::now();
    let stop = match opts.requests {
        Some(n) => Stop::Before(start + n),
        None => Stop::At(t0 + opts.duration),
    };
    let stats = phase(driver, &ctx, c, stop).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = Rusage::now().since(&cpu0);
    let end = start + stats.requests;

    let keys = inserted_keys(opts.workload, opts.keys, start, end, opts.verify_max);
    let back = read_back(driver, &ctx, keys).await;
    Ok(json!({
        "requests": stats.requests,
        "errors": stats.errors,
        "first_error": stats.first_error,
        "elapsed_s": elapsed,
        "rps": if elapsed > 0.0 { stats.requests as f64 / elapsed } else { 0.0 },
        "cpu_s": cpu.json(),
        "checked": stats.checked,
        "mismatches": stats.mismatches,
        "first_mismatch": stats.first_mismatch,
        "readback": {
            "checked": back.checked,
            "mismatches": back.mismatches,
            "errors": back.errors,
            "first_failure": back.first_mismatch.or(back.first_error),
        },
        "warmup": {"requests": warm.requests, "errors": warm.errors},
        "latency_us": stats.latencies.summary_us(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_keys_are_the_newest_distinct_inserts() {
        assert_eq!(inserted_keys(Workload::Insert, 10, 5, 9, 100), [8, 7, 6, 5]);
        assert_eq!(
            inserted_keys(Workload::Mixed, 10, 0, 9, 100),
            [8, 6, 4, 2, 0]
        );
        assert_eq!(inserted_keys(Workload::Insert, 3, 0, 100, 100), [0, 2, 1]);
        assert_eq!(inserted_keys(Workload::Insert, 10, 0, 100, 2), [9, 8]);
        assert!(inserted_keys(Workload::Select, 10, 0, 100, 100).is_empty());
    }

    #[test]
    fn check_counts_mismatches() {
        let mut s = PhaseStats::default();
        s.check(1, Some(("a".into(), 3)), "a", Some(3));
        s.check(2, Some(("a".into(), 4)), "a", None);
        s.check(3, Some(("a".into(), 4)), "a", Some(3));
        s.check(4, None, "a", None);
        assert_eq!((s.checked, s.mismatches), (4, 2));
        assert!(s.first_mismatch.unwrap().starts_with("key 3"));
    }
}

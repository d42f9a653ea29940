//! `make soak`: minutes of mixed load through the library's Rust session
//! API against an emulated 3-node x 4-shard cluster whose nodes restart in
//! turn every 30 s. Once a minute it prints the client's resident memory,
//! open file descriptors and requests per second; it fails when memory
//! grows more than 10% past the first minute's reading, when a minute
//! passes without progress, or when a write the cluster acknowledged is
//! missing at the end.
//!
//! ```text
//! sshard-soak [--minutes F] [--concurrency N] [--restart-seconds S] [--report-seconds S]
//! ```
//! `SOAK_MINUTES` sets the default duration (10). The emulator is
//! `$SCYLLA_EMULATOR`; it is started and stopped (by pid) here.
//!
//! Writes: lane `l` of the `concurrency` lanes (one request in flight
//! each) owns keys `l * KEYS_PER_LANE ..`; its n-th write puts value `n`
//! in key `n % KEYS_PER_LANE` of its range, so the last acknowledged value
//! of every key is known and a read at the end must return it or a later
//! one.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Emulator, EmulatorOptions};
use scylla_shard::protocol::Value;
use scylla_shard::session::{Prepared, Session, SessionConfig, Statement};

const NODES: usize = 3;
const SHARDS: u16 = 4;
const KEYS_PER_LANE: i64 = 1_000;
/// How long a restarted node stays down.
const DOWN_MS: u64 = 1_000;
/// Memory may grow this much past the first minute's reading.
const RSS_GROWTH_LIMIT: f64 = 1.10;
const STEP: Duration = Duration::from_secs(30);

struct Options {
    minutes: f64,
    concurrency: usize,
    restart_every: Duration,
    report_every: Duration,
}

impl Options {
    fn parse() -> Options {
        let minutes = std::env::var("SOAK_MINUTES")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(10.0);
        let mut options = Options {
            minutes,
            concurrency: 256,
            restart_every: Duration::from_secs(30),
            report_every: Duration::from_secs(60),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let value: f64 = args
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{arg} takes a number")));
            match arg.as_str() {
                "--minutes" => options.minutes = value,
                "--concurrency" => options.concurrency = value.max(1.0) as usize,
                "--restart-seconds" => options.restart_every = Duration::from_secs_f64(value),
                "--report-seconds" => options.report_every = Duration::from_secs_f64(value),
                other => usage(&format!("unknown argument {other}")),
            }
        }
        options
    }
}

fn usage(why: &str) -> ! {
    eprintln!(
        "sshard-soak: {why}\nusage: sshard-soak [--minutes F] [--concurrency N] [--restart-seconds S] [--report-seconds S]"
    );
    std::process::exit(2)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Counters the lanes bump.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Reads that returned less than the lane's own acknowledged write.
    stale_reads: AtomicU64,
}

fn main() {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let verdict = runtime.block_on(soak(&options));
    match verdict {
        Ok(summary) => println!("soak passed: {summary}"),
        Err(why) => {
            println!("soak FAILED: {why}");
            std::process::exit(1);
        }
    }
}

async fn soak(options: &Options) -> Result<String, String> {
    let emulator = EmulatorOptions::new(NODES, SHARDS).start();
    println!(
        "emulator pid {} on {} ({NODES} nodes x {SHARDS} shards); {:.1} minutes at {} in flight, a node restart every {:?}",
        emulator.pid(),
        emulator.base_ip,
        options.minutes,
        options.concurrency,
        options.restart_every
    );
    let config = SessionConfig {
        contact_points: vec![emulator.addr(0).to_string()],
        port: emulator.port,
        ..SessionConfig::default()
    };
    let session = tokio::time::timeout(STEP, Session::connect(config))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    for ddl in [
        "CREATE KEYSPACE soak WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
        "CREATE TABLE soak.kv (k bigint PRIMARY KEY, v bigint)",
    ] {
        session
            .execute(&Statement::simple(ddl))
            .await
            .map_err(|e| format!("{ddl}: {e}"))?;
    }
    let insert = session
        .prepare("INSERT INTO soak.kv (k, v) VALUES (?, ?)")
        .await
        .map_err(|e| format!("prepare: {e}"))?;
    let select = session
        .prepare("SELECT v FROM soak.kv WHERE k = ?")
        .await
        .map_err(|e| format!("prepare: {e}"))?;

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut lanes = Vec::new();
    for lane in 0..options.concurrency {
        let lane = Lane {
            session: session.clone(),
            insert: insert.clone(),
            select: select.clone(),
            first_key: lane as i64 * KEYS_PER_LANE,
            acked: vec![-1; KEYS_PER_LANE as usize],
            counters: counters.clone(),
            stop: stop.clone(),
        };
        lanes.push(tokio::spawn(lane.run()));
    }

    let outcome = watch(options, &emulator, &counters).await;
    stop.store(true, Ordering::SeqCst);
    let mut finished = Vec::new();
    for lane in lanes {
        finished.push(lane.await.map_err(|e| format!("lane: {e}"))?);
    }
    let readings = outcome?;
    let missing = verify(&session, &select, &finished).await?;
    session.close().await;
    drop(emulator);

    let acked: usize = finished
        .iter()
        .map(|l| l.acked.iter().filter(|&&v| v >= 0).count())
        .sum();
    let stale = counters.stale_reads.load(Ordering::Relaxed);
    if missing > 0 || stale > 0 {
        return Err(format!(
            "{missing} of {acked} acknowledged writes missing at the end, {stale} stale reads during the run"
        ));
    }
    Ok(format!(
        "{} requests, {} errors (during restarts), every one of {acked} acknowledged keys read back; RSS {}",
        counters.requests.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
        readings
    ))
}

/// Restarts nodes in turn and prints a line every report period; fails
/// on memory growth or a period without progress. Returns the RSS
/// readings.
async fn watch(
    options: &Options,
    emulator: &Emulator,
    counters: &Counters,
) -> Result<String, String> {
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(options.minutes * 60.0);
    let mut next_restart = started + options.restart_every;
    let mut next_report = started + options.report_every;
    let mut restarts = 0usize;
    let mut last = (0u64, 0u64);
    let mut baseline: Option<u64> = None;
    let mut readings = Vec::new();
    println!(
        "{:>7} {:>9} {:>5} {:>10} {:>8} {:>8}",
        "minute", "RSS MiB", "fds", "req/s", "errors", "restarts"
    );
    while Instant::now() < end {
        let now = Instant::now();
        let wake = next_restart.min(next_report).min(end);
        tokio::time::sleep(wake.saturating_duration_since(now)).await;
        if Instant::now() >= next_restart && Instant::now() < end {
            let node = restarts % NODES;
            let path = format!("/admin/restart?down_ms={DOWN_MS}");
            match tokio::task::block_in_place(|| emulator.http(node, "POST", &path)) {
                Ok((200, _)) => {}
                other => return Err(format!("restart node {node}: {other:?}")),
            }
            restarts += 1;
            next_restart += options.restart_every;
        }
        if Instant::now() >= next_report {
            let requests = counters.requests.load(Ordering::Relaxed);
            let errors = counters.errors.load(Ordering::Relaxed);
            let rss = status_kib("VmRSS:");
            let rate = (requests - last.0) as f64 / options.report_every.as_secs_f64();
            let minute = started.elapsed().as_secs_f64() / 60.0;
            println!(
                "{minute:>7.1} {:>9.1} {:>5} {rate:>10.0} {:>8} {restarts:>8}",
                rss as f64 / 1024.0,
                open_fds(),
                errors - last.1
            );
            readings.push(format!("{:.1}", rss as f64 / 1024.0));
            if requests == last.0 {
                return Err(format!(
                    "no request completed in the {:?} to minute {minute:.1}",
                    options.report_every
                ));
            }
            match baseline {
                None => baseline = Some(rss),
                Some(first) if rss as f64 > first as f64 * RSS_GROWTH_LIMIT => {
                    return Err(format!(
                        "RSS grew from {:.1} MiB after the first period to {:.1} MiB at minute {minute:.1}",
                        first as f64 / 1024.0,
                        rss as f64 / 1024.0
                    ));
                }
                Some(_) => {}
            }
            last = (requests, errors);
            next_report += options.report_every;
        }
    }
    Ok(format!("{} MiB at each report", readings.join(", ")))
}

/// One request in flight at a time: write the next value of the next
/// key, then read back one of the lane's keys.
struct Lane {
    session: Session,
    insert: Arc<Prepared>,
    select: Arc<Prepared>,
    first_key: i64,
    /// The last acknowledged value of each of the lane's keys (-1: none).
    acked: Vec<i64>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Lane {
    async fn run(mut self) -> Lane {
        let mut n: i64 = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let slot = n % KEYS_PER_LANE;
            let mut write = Statement::prepared(self.insert.clone());
            write.values = vec![bigint(self.first_key + slot), bigint(n)];
            write.idempotent = true;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            match self.session.execute(&write).await {
                Ok(_) => self.acked[slot as usize] = n,
                Err(_) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Read back the key written KEYS_PER_LANE / 2 writes ago.
            let back = (n + KEYS_PER_LANE / 2) % KEYS_PER_LANE;
            let expected = self.acked[back as usize];
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            match read(&self.session, &self.select, self.first_key + back).await {
                Ok(value) => {
                    if expected >= 0 && value.is_none_or(|v| v < expected) {
                        self.counters.stale_reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            n += 1;
        }
        self
    }
}

fn bigint(v: i64) -> Value {
    Value::Set(v.to_be_bytes().to_vec())
}

/// The value of key `k` (`None`: no row).
async fn read(session: &Session, select: &Arc<Prepared>, k: i64) -> Result<Option<i64>, String> {
    let mut statement = Statement::prepared(select.clone());
    statement.values = vec![bigint(k)];
    statement.idempotent = true;
    let result = session
        .execute(&statement)
        .await
        .map_err(|e| e.to_string())?;
    let Some(rows) = result.rows.as_ref().filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let cell = rows.cell(0, 0).ok_or("NULL value")?;
    let bytes: [u8; 8] = cell
        .try_into()
        .map_err(|_| format!("bigint of {} bytes", cell.len()))?;
    Ok(Some(i64::from_be_bytes(bytes)))
}

/// Reads back every acknowledged key (after the last restart, each read
/// retried a few times if the cluster is still settling); returns how many
/// are missing or older than acknowledged.
async fn verify(
    session: &Session,
    select: &Arc<Prepared>,
    lanes: &[Lane],
) -> Result<usize, String> {
    let mut checks = Vec::new();
    for lane in lanes {
        let session = session.clone();
        let select = select.clone();
        let keys: Vec<(i64, i64)> = lane
            .acked
            .iter()
            .enumerate()
            .filter(|(_, &v)| v >= 0)
            .map(|(slot, &v)| (lane.first_key + slot as i64, v))
            .collect();
        checks.push(tokio::spawn(async move {
            let mut missing = 0usize;
            for (k, acked) in keys {
                let mut outcome = Err(String::new());
                for _ in 0..5 {
                    outcome = read(&session, &select, k).await;
                    if outcome.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                match outcome {
                    Ok(Some(v)) if v >= acked => {}
                    Ok(other) => {
                        if missing < 5 {
                            println!("key {k}: acknowledged value {acked}, read {other:?}");
                        }
                        missing += 1;
                    }
                    Err(e) => return Err(format!("key {k} could not be read back: {e}")),
                }
            }
            Ok(missing)
        }));
    }
    let mut missing = 0;
    for check in checks {
        missing += check.await.map_err(|e| format!("verify task: {e}"))??;
    }
    Ok(missing)
}

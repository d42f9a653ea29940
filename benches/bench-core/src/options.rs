//! The common command line of every benchmark client.

use std::time::Duration;

use crate::Res;

pub const USAGE: &str = "usage: <client> --contact HOST:PORT \
--workload insert|select|mixed|connect|schema|hold [--concurrency 1] \
[--duration 5] [--warmup 2] [--requests N --warmup-requests N] [--keys 10000] \
[--keyspace bench] [--table kv] [--tag 1] [--verify-max 1000] [--expect-nodes N] \
[--pool-timeout 30] [--replication CLAUSE] [--sync] [--sessions 1] \
[--no-shard-aware-port]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Prepared single-row INSERT of key `i % keys`.
    Insert,
    /// Prepared single-partition SELECT of key `i % keys`, each row checked.
    Select,
    /// Request `i` is an INSERT when `i` is even, a SELECT when odd.
    Mixed,
    /// Connect, wait for full pools, close (the connection storm).
    Connect,
    /// Create the keyspace (with `--replication`) and the table.
    Schema,
    /// Connect `--sessions` sessions, hold them, and time their refill
    /// after each restart the orchestrator announces (the restart storm).
    Hold,
}

impl Workload {
    pub fn parse(s: &str) -> Res<Workload> {
        Ok(match s {
            "insert" => Workload::Insert,
            "select" => Workload::Select,
            "mixed" => Workload::Mixed,
            "connect" => Workload::Connect,
            "schema" => Workload::Schema,
            "hold" => Workload::Hold,
            other => return Err(format!("unknown workload {other}").into()),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Insert => "insert",
            Workload::Select => "select",
            Workload::Mixed => "mixed",
            Workload::Connect => "connect",
            Workload::Schema => "schema",
            Workload::Hold => "hold",
        }
    }

    /// Whether request number `i` of this workload is an INSERT.
    pub fn is_insert(self, i: u64) -> bool {
        match self {
            Workload::Insert => true,
            Workload::Mixed => i % 2 == 0,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub contact: String,
    pub workload: Workload,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Length of the measured phase (unless `requests` is set).
    pub duration: Duration,
    /// Length of the warm-up (unless `requests` is set).
    pub warmup: Duration,
    /// Fixed request count of the measured phase instead of a duration.
    pub requests: Option<u64>,
    /// Fixed request count of the warm-up, with `requests`.
    pub warmup_requests: u64,
    /// Key space: request `i` uses key `i % keys`.
    pub keys: u64,
    pub keyspace: String,
    pub table: String,
    /// Written into every row's `tag` column; the read-back checks it.
    pub tag: i64,
    /// Inserted keys read back after the measured phase (at most).
    pub verify_max: u64,
    pub expect_nodes: Option<usize>,
    /// Bound on connecting and on waiting for full pools.
    pub pool_timeout: Duration,
    /// `replication = ...` clause of the `schema` workload.
    pub replication: String,
    /// Print `{"event":"ready"}` before the measured phase (after the
    /// warm-up; for `connect`, once the pools are full) and wait for a
    /// line on stdin, so the orchestrator can snapshot the cluster.
    pub sync: bool,
    /// Sessions the `hold` workload opens.
    pub sessions: usize,
    /// Whether the driver may use the shard-aware port (its default).
    pub shard_aware_port: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            contact: "127.0.0.1:9042".to_string(),
            workload: Workload::Mixed,
            concurrency: 1,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(2),
            requests: None,
            warmup_requests: 0,
            keys: 10_000,
            keyspace: "bench".to_string(),
            table: "kv".to_string(),
            tag: 1,
            verify_max: 1000,
            expect_nodes: None,
            pool_timeout: Duration::from_secs(30),
            replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}".to_string(),
            sync: false,
            sessions: 1,
            shard_aware_port: true,
        }
    }
}

fn seconds(s: &str) -> Res<Duration> {
    let v: f64 = s.parse()?;
    if !(0.0..=3600.0).contains(&v) {
        return Err(format!("{v} s is out of range").into());
    }
    Ok(Duration::from_secs_f64(v))
}

impl Options {
    pub fn parse(args: &[String]) -> Res<Options> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || -> Res<&String> {
                it.next()
                    .ok_or_else(|| format!("missing value for {flag}\n{USAGE}").into())
            };
            match flag.as_str() {
                "--contact" => o.contact = value()?.clone(),
                "--workload" => o.workload = Workload::parse(value()?)?,
                "--concurrency" => o.concurrency = value()?.parse()?,
                "--duration" => o.duration = seconds(value()?)?,
                "--warmup" => o.warmup = seconds(value()?)?,
                "--requests" => o.requests = Some(value()?.parse()?),
                "--warmup-requests" => o.warmup_requests = value()?.parse()?,
                "--keys" => o.keys = value()?.parse()?,
                "--keyspace" => o.keyspace = value()?.clone(),
                "--table" => o.table = value()?.clone(),
                "--tag" => o.tag = value()?.parse()?,
                "--verify-max" => o.verify_max = value()?.parse()?,
                "--expect-nodes" => o.expect_nodes = Some(value()?.parse()?),
                "--pool-timeout" => o.pool_timeout = seconds(value()?)?,
                "--replication" => o.replication = value()?.clone(),
                "--sync" => o.sync = true,
                "--sessions" => o.sessions = value()?.parse()?,
                "--no-shard-aware-port" => o.shard_aware_port = false,
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
            }
        }
        if o.concurrency == 0 || o.keys == 0 || o.sessions == 0 {
            return Err("--concurrency, --keys and --sessions must be positive".into());
        }
        if o.requests.is_none() && o.duration.is_zero() {
            return Err("--duration must be positive (or give --requests)".into());
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn parses_the_common_flags() {
        let o = Options::parse(&args(
            "--contact 127.0.0.5:9042 --workload select --concurrency 256 --duration 1.5 \
             --warmup 0.5 --keys 100 --keyspace b --tag 7 --sync --expect-nodes 3",
        ))
        .unwrap();
        assert_eq!(o.contact, "127.0.0.5:9042");
        assert_eq!(o.workload, Workload::Select);
        assert_eq!(o.concurrency, 256);
        assert_eq!(o.duration, Duration::from_millis(1500));
        assert_eq!(o.warmup, Duration::from_millis(500));
        assert_eq!(o.keys, 100);
        assert_eq!(o.keyspace, "b");
        assert_eq!(o.tag, 7);
        assert!(o.sync);
        assert_eq!(o.expect_nodes, Some(3));
        assert_eq!((o.sessions, o.shard_aware_port), (1, true));
        let o =
            Options::parse(&args("--workload hold --sessions 15 --no-shard-aware-port")).unwrap();
        assert_eq!(o.workload, Workload::Hold);
        assert_eq!((o.sessions, o.shard_aware_port), (15, false));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Options::parse(&args("--bogus")).is_err());
        assert!(Options::parse(&args("--concurrency 0")).is_err());
        assert!(Options::parse(&args("--workload nope")).is_err());
        assert!(Options::parse(&args("--duration -1")).is_err());
        assert!(Options::parse(&args("--keys")).is_err());
        assert!(Options::parse(&args("--sessions 0")).is_err());
    }

    #[test]
    fn mixed_alternates_inserts_and_selects() {
        let ops: Vec<bool> = (0..4).map(|i| Workload::Mixed.is_insert(i)).collect();
        assert_eq!(ops, [true, false, true, false]);
        assert!(Workload::Insert.is_insert(3));
        assert!(!Workload::Select.is_insert(2));
    }
}

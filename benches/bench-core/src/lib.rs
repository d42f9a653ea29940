//! `bench-core`: everything the Rust benchmark clients share except the
//! driver calls. A client implements [`Driver`] for its driver and calls
//! [`main`]; this crate parses the common command line, connects, waits for
//! full pools, runs the warm-up and the measured phase with N concurrent
//! requesters, checks what it reads, and prints one JSON result line.
//!
//! The command line and the result line are the contract every benchmark
//! client follows, whatever its language (see `benches/README.md`): the
//! orchestrator `benches/run.py` treats all clients alike.

mod hold;
mod options;
mod runner;
mod stats;

use std::future::Future;
use std::process::ExitCode;

pub use options::{Options, Workload, USAGE};
pub use runner::run;
pub use serde_json;
pub use stats::{percentile, Latencies, Rusage};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

/// One driver as the benchmark uses it. Every method is bounded by the
/// driver's own request timeout.
pub trait Driver: Sized + Send + Sync + 'static {
    /// Name reported in the result line (e.g. `scylla-rust`).
    const NAME: &'static str;

    /// Opens a session to the cluster `opts.contact` belongs to.
    fn connect(opts: &Options) -> impl Future<Output = Res<Self>> + Send;

    /// Whether the session holds a connection to every shard of every node
    /// (of `opts.expect_nodes` nodes, when given).
    fn pools_full(&self, opts: &Options) -> bool;

    /// Connections the driver says it holds.
    fn connections(&self) -> u64;

    /// Runs unprepared CQL (schema statements).
    fn query(&self, cql: &str) -> impl Future<Output = Res<()>> + Send;

    /// Prepares the workload's INSERT and SELECT on `keyspace.table`
    /// (see [`insert_cql`] and [`select_cql`]).
    fn prepare(&mut self, keyspace: &str, table: &str) -> impl Future<Output = Res<()>> + Send;

    /// The prepared INSERT with `(k, v, tag)`.
    fn insert(&self, key: i64, value: &str, tag: i64) -> impl Future<Output = Res<()>> + Send;

    /// The prepared SELECT of partition `k`: its `(v, tag)`, if the row exists.
    fn select(&self, key: i64) -> impl Future<Output = Res<Option<(String, i64)>>> + Send;

    /// Driver-specific counters worth reporting (e.g. connection attempts
    /// by port), summed by the caller over sessions; `Null` if none.
    fn diagnostics(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Closes the session.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The benchmark table: one row per partition.
pub fn table_cql(keyspace: &str, table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{table} (k bigint PRIMARY KEY, v text, tag bigint)"
    )
}

pub fn insert_cql(keyspace: &str, table: &str) -> String {
    format!("INSERT INTO {keyspace}.{table} (k, v, tag) VALUES (?, ?, ?)")
}

pub fn select_cql(keyspace: &str, table: &str) -> String {
    format!("SELECT v, tag FROM {keyspace}.{table} WHERE k = ?")
}

/// The value column of key `k`: 64 characters every client derives alike.
pub fn payload(k: u64) -> String {
    format!("{k:016x}").repeat(4)
}

/// The multi-threaded tokio runtime the client binaries run on (the same
/// for every driver); `None` after saying why on stderr.
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("cannot start tokio: {e}"))
        .ok()
}

/// Entry point of a client binary: parses `args` (after the program name
/// and any subcommand), runs, prints the result line. Exit status 0 when
/// the run completed (errors and mismatches are reported in the line), 2
/// on a bad command line, 1 when the run could not be done.
pub fn main<D: Driver>(args: &[String]) -> ExitCode {
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let outcome = rt.block_on(run::<D>(opts));
    // Background tasks of a closed session must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({"event": "error", "driver": D::NAME, "message": e.to_string()})
            );
            eprintln!("{}: {e}", D::NAME);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_64_hex_characters() {
        assert_eq!(payload(255), "00000000000000ff".repeat(4));
        assert_eq!(payload(u64::MAX).len(), 64);
    }

    #[test]
    fn statements_name_the_table() {
        assert_eq!(
            select_cql("ks", "kv"),
            "SELECT v, tag FROM ks.kv WHERE k = ?"
        );
        assert!(insert_cql("ks", "kv").starts_with("INSERT INTO ks.kv (k, v, tag)"));
        assert!(table_cql("ks", "kv").contains("k bigint PRIMARY KEY"));
    }
}

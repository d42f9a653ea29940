//! The `hold` workload, one client process's share of the restart storm:
//! connect `--sessions` sessions, wait until every pool is full, then, for
//! each `restart` line the orchestrator sends (right after it restarted a
//! node), time how long the sessions take to hold a connection to every
//! shard again. `exit` (or the end of stdin) closes them and ends the run.
//!
//! Events on stdout, one JSON line each:
//! `{"event":"ready","at":"pools",...}` once the sessions are connected,
//! `{"event":"refilled","full_s":..,"pools_full":..,"saw_drop":..}` after
//! each restart, and the result line at the end.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::options::Options;
use crate::runner::POOL_POLL;
use crate::{Driver, Res};

/// How long a session may take to notice that the restarted node dropped
/// its connections (they break at once; the bound only avoids a hang).
const DROP_BOUND: Duration = Duration::from_secs(3);
/// How long the orchestrator may stay silent between two commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

fn emit(line: Value) -> Res<()> {
    println!("{line}");
    std::io::stdout().flush()?;
    Ok(())
}

/// Lines of stdin, read on a thread of their own.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim().to_owned()).is_err() {
                break;
            }
        }
    });
    rx
}

fn all_full<D: Driver>(drivers: &[D], opts: &Options) -> bool {
    drivers.iter().all(|d| d.pools_full(opts))
}

/// Polls until `done` holds or `bound` passed; whether it held.
async fn poll_until(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POOL_POLL).await;
    }
}

fn connections<D: Driver>(drivers: &[D]) -> u64 {
    drivers.iter().map(Driver::connections).sum()
}

/// The drivers' diagnostics, numbers summed key by key.
fn diagnostics<D: Driver>(drivers: &[D]) -> Value {
    let mut sum = serde_json::Map::new();
    for d in drivers {
        if let Value::Object(map) = d.diagnostics() {
            for (k, v) in map {
                let add = v.as_f64().unwrap_or(0.0);
                let have = sum.get(&k).and_then(Value::as_f64).unwrap_or(0.0);
                sum.insert(k, json!(have + add));
            }
        }
    }
    Value::Object(sum)
}

pub async fn hold<D: Driver>(opts: &Options) -> Res<Value> {
    let started = Instant::now();
    let mut drivers = Vec::with_capacity(opts.sessions);
    for _ in 0..opts.sessions {
        match tokio::time::timeout(opts.pool_timeout, D::connect(opts)).await {
            Ok(Ok(driver)) => drivers.push(driver),
            outcome => {
                for d in &drivers {
                    d.close().await;
                }
                return Err(match outcome {
                    Ok(Err(e)) => e,
                    _ => format!("connect did not finish within {:?}", opts.pool_timeout).into(),
                });
            }
        }
    }
    let pools_full = poll_until(opts.pool_timeout, || all_full(&drivers, opts)).await;
    let connect_s = started.elapsed().as_secs_f64();
    emit(
        json!({"event": "ready", "at": "pools", "pools_full": pools_full,
        "connect_s": connect_s, "connections": connections(&drivers)}),
    )?;

    let mut commands = stdin_lines();
    let mut restarts = Vec::new();
    loop {
        let command = match tokio::time::timeout(COMMAND_TIMEOUT, commands.recv()).await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(_) => return Err(format!("no command on stdin within {COMMAND_TIMEOUT:?}").into()),
        };
        match command.as_str() {
            "restart" => {
                let t0 = Instant::now();
                let saw_drop = poll_until(DROP_BOUND, || !all_full(&drivers, opts)).await;
                let full = poll_until(opts.pool_timeout, || all_full(&drivers, opts)).await;
                let full_s = t0.elapsed().as_secs_f64();
                let line = json!({"event": "refilled", "full_s": full_s, "pools_full": full,
                    "saw_drop": saw_drop, "connections": connections(&drivers),
                    "diagnostics": diagnostics(&drivers)});
                restarts.push(line.clone());
                emit(line)?;
            }
            "exit" => break,
            other => return Err(format!("unknown command {other:?}").into()),
        }
    }
    let held = connections(&drivers);
    for d in &drivers {
        d.close().await;
    }
    Ok(json!({
        "sessions": opts.sessions,
        "connect_s": connect_s,
        "pools_full": pools_full,
        "restarts": restarts,
        "driver_connections": held,
    }))
}

//! One case, run in a process of its own so its memory is measured alone
//! and a hang can be killed: the fake server, a session on it, one
//! ordinary request, the hostile one (memory peak measured around it), the
//! checks, then the next ordinary request on the same session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla_shard::connection::ConnectionConfig;
use scylla_shard::protocol::{CqlValue, ProtocolError};
use scylla_shard::session::{
    DriverError, Prepared, QueryResult, Session, SessionConfig, Statement,
};

use super::cases::{Case, Check, Expect, Fate, Scenario};
use super::memory::{self, mib, MIB};
use super::server::{FakeServer, HOLD_TABLE, HOSTILE_TABLE, ORDINARY_VALUE};

/// Resident memory a case may add beyond what its frame accounts for:
/// runtime buffers, a refilled connection, allocator slack.
pub const SLACK: usize = 8 * MIB;
/// A result may take at most this many times its frame's bytes.
const RESULT_FACTOR: usize = 3;
/// Bound on connecting, and on waiting for the session to recover.
const STEP: Duration = Duration::from_secs(15);
/// The line a child prints with the bytes still resident after the free.
pub const RETAINED_PREFIX: &str = "HOSTILE-RETAINED ";
/// How long freed memory may take to go back to the system.
const RELEASE: Duration = Duration::from_secs(5);

/// What the hostile request returned.
enum Outcome {
    Rows(Box<QueryResult>),
    Prepared(Arc<Prepared>),
}

/// The cells of a result, in one place (the row representation is the
/// library's to change).
mod cells {
    use scylla_shard::session::QueryResult;

    pub fn row_count(result: &QueryResult) -> usize {
        result.rows.as_ref().map_or(0, |r| r.len())
    }

    pub fn column_count(result: &QueryResult) -> usize {
        result.rows.as_ref().map_or(0, |r| r.metadata.columns.len())
    }

    pub fn get(result: &QueryResult, row: usize, column: usize) -> Option<&[u8]> {
        let rows = result.rows.as_ref()?;
        (row < rows.len() && column < rows.metadata.column_count).then(|| rows.cell(row, column))?
    }

    pub fn column_type(
        result: &QueryResult,
        column: usize,
    ) -> Option<&scylla_shard::protocol::ColumnType> {
        result
            .rows
            .as_ref()?
            .metadata
            .columns
            .get(column)
            .map(|c| &c.ty)
    }
}

/// Runs the case; `Err` says what failed.
pub fn run(case: &Case) -> Result<String, String> {
    let options = (case.server)();
    let frame_len = options
        .hostile
        .as_ref()
        .map_or(0, |h| h.bytes.len() * h.repeat);
    let server = FakeServer::start(options);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let report = runtime.block_on(async {
        let session = connect(&server, case).await?;
        let report = match case.scenario {
            Scenario::Single {
                prepare,
                idempotent,
            } => single(&session, &server, case, prepare, idempotent, frame_len).await?,
            Scenario::InFlight => in_flight(&session, &server).await?,
        };
        recover(&session, &server, case).await?;
        session.close().await;
        Ok::<_, String>(report)
    })?;
    Ok(report)
}

async fn connect(server: &FakeServer, case: &Case) -> Result<Session, String> {
    let config = SessionConfig {
        contact_points: vec![server.addr.to_string()],
        port: server.addr.port(),
        connections_per_shard: case.connections,
        connection: ConnectionConfig {
            // A silent peer is noticed within about two seconds.
            heartbeat_interval: Some(Duration::from_secs(1)),
            heartbeat_timeout: Duration::from_secs(1),
            compression: case.lz4.then_some(scylla_shard::protocol::Compression::Lz4),
            max_frame_len: case.max_frame,
            ..ConnectionConfig::default()
        },
        request_timeout: Duration::from_secs(10),
        ..SessionConfig::default()
    };
    let session = tokio::time::timeout(STEP, Session::connect(config))
        .await
        .map_err(|_| "connect did not finish".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    wait_connections(&session, case.connections).await?;
    ordinary(&session)
        .await
        .map_err(|e| format!("first ordinary request: {e}"))?;
    Ok(session)
}

/// Waits until the session's pool holds `n` live connections.
async fn wait_connections(session: &Session, n: usize) -> Result<(), String> {
    let deadline = Instant::now() + STEP;
    loop {
        let live: usize = session
            .metrics()
            .nodes
            .iter()
            .flat_map(|node| node.connections_per_shard.iter())
            .sum();
        if live >= n {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the pool holds {live} live connections, not {n}, after {STEP:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn ordinary(session: &Session) -> Result<(), String> {
    let result = tokio::time::timeout(
        STEP,
        session.execute(&Statement::simple("SELECT v FROM ordinary.t")),
    )
    .await
    .map_err(|_| "no answer".to_owned())?
    .map_err(|e| e.to_string())?;
    check_ordinary(&result)
}

fn check_ordinary(result: &QueryResult) -> Result<(), String> {
    let cell = cells::get(result, 0, 0).ok_or("no cell in the ordinary answer")?;
    match (cells::row_count(result), cell) {
        (1, cell) if cell == ORDINARY_VALUE.to_be_bytes() => Ok(()),
        (rows, cell) => Err(format!("ordinary answer: {rows} rows, first cell {cell:?}")),
    }
}

async fn single(
    session: &Session,
    server: &FakeServer,
    case: &Case,
    prepare: bool,
    idempotent: bool,
    frame_len: usize,
) -> Result<String, String> {
    let timeout = Duration::from_secs(case.timeout_secs);
    let baseline = memory::reset_peak();
    let started = Instant::now();
    // The library's own timeout bounds the request; this one only catches
    // a library that ignores it.
    let hang_bound = timeout + Duration::from_secs(5);
    let outcome = if prepare {
        let text = format!("SELECT v FROM {HOSTILE_TABLE} WHERE k = ?");
        tokio::time::timeout(hang_bound, session.prepare(&text))
            .await
            .map(|r| r.map(Outcome::Prepared))
    } else {
        let mut statement = Statement::simple(format!("SELECT v FROM {HOSTILE_TABLE}"));
        statement.timeout = Some(timeout);
        statement.idempotent = idempotent;
        tokio::time::timeout(hang_bound, session.execute(&statement))
            .await
            .map(|r| r.map(|rows| Outcome::Rows(Box::new(rows))))
    }
    .map_err(|_| format!("the request hung past its {timeout:?} timeout"))?;
    let elapsed = started.elapsed();
    let peak = memory::peak().saturating_sub(baseline);
    if elapsed > timeout + Duration::from_secs(1) {
        return Err(format!(
            "answered after {elapsed:?}, past its {timeout:?} timeout"
        ));
    }
    let described = describe(&outcome);
    check_outcome(case.expect, outcome)?;
    let bound = RESULT_FACTOR * frame_len + SLACK;
    if peak > bound {
        return Err(format!(
            "memory: peak grew {:.1} MiB for a {:.1} MiB frame (bound {:.1} MiB)",
            mib(peak),
            mib(frame_len),
            mib(bound)
        ));
    }
    // Freed memory goes back (how much the allocator keeps is compared
    // with the system allocator's by the parent, see `release_vs_system`).
    let retained = memory::wait_rss_below(baseline + SLACK, RELEASE).saturating_sub(baseline);
    println!("{RETAINED_PREFIX}{retained}");
    if retained > bound {
        return Err(format!(
            "memory: {:.1} MiB still resident {RELEASE:?} after the result was freed (frame {:.1} MiB)",
            mib(retained),
            mib(frame_len)
        ));
    }
    let hostile = server.arrivals(HOSTILE_TABLE);
    let sent = if idempotent && case.fate == Fate::ClosedByClient {
        2
    } else {
        1
    };
    if hostile.len() != sent {
        return Err(format!(
            "the server got the hostile request {} times, expected {sent}",
            hostile.len()
        ));
    }
    if sent == 2 && hostile[0].connection == hostile[1].connection {
        return Err("the retry went to the connection that had failed".into());
    }
    Ok(format!(
        "{described} in {:.0} ms, frame {:.1} MiB, peak +{:.1} MiB, retained +{:.1} MiB",
        elapsed.as_secs_f64() * 1000.0,
        mib(frame_len),
        mib(peak),
        mib(retained)
    ))
}

fn describe(outcome: &Result<Outcome, DriverError>) -> String {
    match outcome {
        Ok(Outcome::Rows(r)) => format!("ok: {} rows", cells::row_count(r)),
        Ok(Outcome::Prepared(p)) => format!(
            "ok: prepared, {} bind columns",
            p.metadata.bind_columns.len()
        ),
        Err(e) => {
            let text = e.to_string();
            let short: String = text.chars().take(120).collect();
            format!("error {short:?}")
        }
    }
}

fn check_outcome(expect: Expect, outcome: Result<Outcome, DriverError>) -> Result<(), String> {
    let contains =
        |message: &str, text: &str| message.to_lowercase().contains(&text.to_lowercase());
    match (expect, outcome) {
        (Expect::Ok(check), Ok(outcome)) => check_result(check, outcome),
        (Expect::Timeout, Err(DriverError::Timeout(_))) => Ok(()),
        (Expect::Broken(text), Err(DriverError::ConnectionBroken(message)))
            if contains(&message, text) =>
        {
            Ok(())
        }
        (Expect::Protocol(text), Err(DriverError::Protocol(message)))
            if contains(&message, text) =>
        {
            Ok(())
        }
        (expect, Ok(outcome)) => Err(format!(
            "expected {expect:?}, got {}",
            describe(&Ok(outcome))
        )),
        (expect, Err(e)) => Err(format!("expected {expect:?}, got {e:?}")),
    }
}

fn check_result(check: Check, outcome: Outcome) -> Result<(), String> {
    let result = match (check, outcome) {
        (Check::PreparedColumns(n), Outcome::Prepared(p)) => {
            let (bind, result) = (
                p.metadata.bind_columns.len(),
                p.result_metadata.columns.len(),
            );
            return if bind == n
                && result == n
                && p.table()
                    .is_some_and(|(ks, t)| ks.len() == 65_535 && t.len() == 65_535)
            {
                Ok(())
            } else {
                Err(format!(
                    "prepared: {bind} bind and {result} result columns, expected {n}"
                ))
            };
        }
        (_, Outcome::Rows(result)) => result,
        (check, Outcome::Prepared(_)) => {
            return Err(format!("expected {check:?}, got a prepared statement"))
        }
    };
    let rows = cells::row_count(&result);
    match check {
        Check::Ordinary => check_ordinary(&result),
        Check::NullRows(n) => {
            let nulls = (0..rows)
                .filter(|&i| cells::get(&result, i, 0).is_none())
                .count();
            if rows == n && nulls == n {
                Ok(())
            } else {
                Err(format!(
                    "{rows} rows of which {nulls} NULL, expected {n} NULL rows"
                ))
            }
        }
        Check::IntRows(n) => {
            let wrong = (0..rows)
                .find(|&i| cells::get(&result, i, 0) != Some(&(i as i32).to_be_bytes()[..]));
            match (rows == n, wrong) {
                (true, None) => Ok(()),
                (_, wrong) => Err(format!(
                    "{rows} rows (expected {n}), first wrong row {wrong:?}"
                )),
            }
        }
        Check::BadUtf8Cell => {
            let ty = cells::column_type(&result, 0).ok_or("no column")?;
            let cell = cells::get(&result, 0, 0).ok_or("no cell")?;
            match CqlValue::deserialize(ty, cell) {
                Err(ProtocolError::BadUtf8) => Ok(()),
                other => Err(format!(
                    "reading the bad text cell gave {other:?}, expected BadUtf8"
                )),
            }
        }
        Check::Columns(n) => match (rows, cells::column_count(&result)) {
            (0, columns) if columns == n => Ok(()),
            (rows, columns) => Err(format!(
                "{rows} rows and {columns} columns, expected 0 and {n}"
            )),
        },
        Check::PreparedColumns(_) => Err("expected a prepared statement, got rows".into()),
    }
}

/// Four queries held on two connections; the server breaks the connection
/// of the first with garbage. Idempotent ones on it must be retried (and
/// succeed), non-idempotent ones fail; the others are unaffected.
async fn in_flight(session: &Session, server: &FakeServer) -> Result<String, String> {
    let tags = [("i1", true), ("n1", false), ("i2", true), ("n2", false)];
    let mut handles = Vec::new();
    for (tag, idempotent) in tags {
        let mut statement =
            Statement::simple(format!("SELECT v FROM {HOLD_TABLE} WHERE tag = '{tag}'"));
        statement.idempotent = idempotent;
        let session = session.clone();
        handles.push(tokio::spawn(
            async move { session.execute(&statement).await },
        ));
        // In order, so the least busy connection takes each in turn.
        let deadline = Instant::now() + STEP;
        while !server
            .arrivals(HOLD_TABLE)
            .iter()
            .any(|a| a.query.contains(&format!("'{tag}'")))
        {
            if Instant::now() >= deadline {
                return Err(format!("hold {tag} never reached the server"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut outcomes = Vec::new();
    for handle in handles {
        let outcome = tokio::time::timeout(STEP, handle)
            .await
            .map_err(|_| "a held request hung".to_owned())?
            .map_err(|e| format!("task: {e}"))?;
        outcomes.push(outcome);
    }
    let broken = server
        .broken_hold_connection()
        .ok_or("the server broke no connection")?;
    let mut lines = Vec::new();
    for ((tag, idempotent), outcome) in tags.iter().zip(outcomes) {
        let arrivals = server.arrivals(&format!("'{tag}'"));
        let on_broken = arrivals.first().map(|a| a.connection) == Some(broken);
        let verdict = match (on_broken, *idempotent, &outcome) {
            (true, true, Ok(r)) if arrivals.len() == 2 => check_ordinary(r),
            (true, false, Err(DriverError::ConnectionBroken(_))) if arrivals.len() == 1 => Ok(()),
            (false, _, Ok(r)) if arrivals.len() == 1 => check_ordinary(r),
            _ => Err(format!(
                "{tag} (idempotent: {idempotent}, on the broken connection: {on_broken}) sent {} times: {}",
                arrivals.len(),
                describe(&outcome.map(|r| Outcome::Rows(Box::new(r))))
            )),
        };
        verdict?;
        lines.push(format!(
            "{tag}{}",
            if on_broken {
                " on the broken connection"
            } else {
                ""
            }
        ));
    }
    Ok(lines.join(", "))
}

/// The connection that got the hostile answer went the way the case says,
/// and the next ordinary request on the same session succeeds.
async fn recover(session: &Session, server: &FakeServer, case: &Case) -> Result<(), String> {
    // The in-flight scenario's victim is the connection the server broke.
    let hostile = match server.broken_hold_connection() {
        Some(connection) => vec![connection],
        None => server.hostile_connections(),
    };
    match case.fate {
        Fate::ClosedByClient => {
            let closed =
                tokio::task::block_in_place(|| server.wait_closed_by_client(&hostile, STEP));
            if !closed {
                return Err(format!(
                    "the library kept connection {hostile:?} after the hostile answer"
                ));
            }
        }
        Fate::Kept => {
            if hostile.iter().any(|&c| server.closed_by_client(c)) {
                return Err("the library closed a connection that was still usable".into());
            }
        }
        Fate::ClosedByServer => {}
    }
    wait_connections(session, case.connections).await?;
    let accepted = server.accepted();
    ordinary(session)
        .await
        .map_err(|e| format!("the next ordinary request failed: {e}"))?;
    if case.fate == Fate::Kept && server.accepted() != accepted {
        return Err("a new connection was opened though the old one was fine".into());
    }
    Ok(())
}

//! Speculative execution and execution profiles against a 3-node emulator
//! with one slow node (`/admin/delay`: every response of that node leaves
//! 200 ms late). Behaviour, not timing: the delay is ten times the
//! speculative delay, so a request either waited for the slow node (at
//! least 200 ms) or was answered by another replica (far below).
//!
//! - idempotent reads: p99 at or above the delay without speculation,
//!   below it with a constant or a percentile policy, and a speculative
//!   execution won;
//! - non-idempotent reads never speculate: one attempt each, on the
//!   emulator's counters and the session's;
//! - max attempts respected (every node slow: exactly that many attempts
//!   per request, and no more than the plan's three replicas);
//! - the losing attempts leave nothing behind: no request in flight, no
//!   orphaned stream id once their late responses arrived;
//! - execution profiles: a profile's speculation applies, a statement's own
//!   setting beats it, an unknown profile fails with its name, a profile's
//!   consistency and timeout reach the request.

mod common;
mod session_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Emulator, EmulatorOptions};
use scylla_shard::protocol::response::error_code;
use scylla_shard::protocol::Consistency;
use scylla_shard::session::{
    DriverError, ExecutionProfile, Prepared, ProfileName, RetryPolicy, Session, SessionConfig,
    SpeculativeExecution, Statement,
};
use session_support::*;

const SLOW: Duration = Duration::from_millis(200);
const SPECULATIVE_DELAY: Duration = Duration::from_millis(20);
const REQUESTS: usize = 60;
const RF3: &str = "replication = {'class': 'SimpleStrategy', 'replication_factor': 3}";

fn constant(max_attempts: u32) -> SpeculativeExecution {
    SpeculativeExecution::Constant {
        delay: SPECULATIVE_DELAY,
        max_attempts,
    }
}

fn slow(emulator: &Emulator, node: usize, delay: Duration) {
    emulator.admin(node, &format!("/admin/delay?us={}", delay.as_micros()));
}

async fn session(emulator: &Emulator, configure: impl FnOnce(&mut SessionConfig)) -> Session {
    let mut config = config(emulator);
    configure(&mut config);
    let session = connect_with(emulator, config).await;
    wait_pools_filled(&session, 2).await;
    session
}

/// A cluster of 3 nodes with `spec.t` at RF 3 holding rows a = 0..10.
async fn cluster() -> Emulator {
    let emulator = EmulatorOptions::new(3, 2).start();
    let setup = connect(&emulator).await;
    create_schema(&setup, "spec", RF3).await;
    for a in 0..10 {
        run(
            &setup,
            &format!("INSERT INTO spec.t (a, b, c, v) VALUES ({a}, 'k', 0, 'v')"),
        )
        .await;
    }
    setup.close().await;
    emulator
}

async fn read_statement(session: &Session) -> Arc<Prepared> {
    tokio::time::timeout(
        STEP,
        session.prepare("SELECT v FROM spec.t WHERE a = ? AND b = ?"),
    )
    .await
    .expect("prepare in time")
    .expect("prepare")
}

fn read(prepared: &Arc<Prepared>, a: i32, idempotent: bool) -> Statement {
    let mut st = Statement::prepared(prepared.clone());
    st.values = vec![int(a), text("k")];
    st.idempotent = idempotent;
    st
}

/// Runs `statements` at once; the latency of each, sorted.
async fn latencies(session: &Session, statements: Vec<Statement>) -> Vec<Duration> {
    let tasks: Vec<_> = statements
        .into_iter()
        .map(|st| {
            let session = session.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = tokio::time::timeout(STEP, session.execute(&st))
                    .await
                    .expect("an answer in time")
                    .expect("the read succeeds");
                assert_eq!(result.rows.expect("rows").len(), 1);
                started.elapsed()
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out.sort();
    out
}

fn p99(sorted: &[Duration]) -> Duration {
    let rank = (sorted.len() * 99).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Routable requests the emulator's nodes received (each attempt counts).
fn attempts_received(emulator: &Emulator) -> f64 {
    routing(emulator).routable
}

/// Waits until no request is in flight and no connection holds an orphaned
/// stream id (the late responses of cancelled attempts arrived).
async fn settled(session: &Session) {
    wait_until("cancelled attempts settled", STEP, || {
        let state = session.cluster_state();
        session.in_flight() == 0
            && state.nodes().iter().filter_map(|n| n.pool()).all(|pool| {
                (0..2).all(|shard| {
                    pool.connection(Some(shard))
                        .is_none_or(|c| c.orphaned() == 0 && c.in_flight() == 0)
                })
            })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speculation_cuts_the_tail_of_idempotent_reads_only() {
    let emulator = cluster().await;
    let plain = session(&emulator, |_| {}).await;
    let speculating = session(&emulator, |c| c.default_speculative_execution = constant(2)).await;
    let by_percentile = session(&emulator, |c| {
        c.default_speculative_execution = SpeculativeExecution::Percentile {
            percentile: 99.0,
            max_attempts: 2,
        }
    })
    .await;
    let reads = read_statement(&plain).await;
    let batch = |idempotent| {
        (0..REQUESTS)
            .map(|i| read(&reads, (i % 10) as i32, idempotent))
            .collect::<Vec<_>>()
    };
    // The percentile policy needs a history of fast requests first.
    for _ in 0..3 {
        latencies(&by_percentile, batch(true)).await;
    }
    assert!(by_percentile.metrics().requests >= scylla_shard::session::PERCENTILE_MIN_SAMPLES);

    slow(&emulator, 0, SLOW);
    let without = latencies(&plain, batch(true)).await;
    assert!(
        p99(&without) >= SLOW,
        "without speculation some reads wait for the slow node: p99 {:?}",
        p99(&without)
    );
    assert_eq!(plain.metrics().speculative_executions, 0);

    for (name, session) in [("constant", &speculating), ("percentile", &by_percentile)] {
        let before = session.metrics();
        let with = latencies(session, batch(true)).await;
        let after = session.metrics();
        assert!(
            p99(&with) < SLOW,
            "{name}: with speculation no read waits for the slow node: p99 {:?}",
            p99(&with)
        );
        let started = after.speculative_executions - before.speculative_executions;
        let won = after.speculative_wins - before.speculative_wins;
        assert!(started >= 1, "{name}: speculative executions counted");
        assert!(
            won >= 1 && won <= started,
            "{name}: {won} wins of {started}"
        );
        // At most one speculative execution per request (max_attempts 2).
        assert!(started <= REQUESTS as u64, "{name}: {started} started");
        let text = after.to_prometheus();
        assert!(text.contains(&format!(
            "scylla_shard_speculative_executions_total {}",
            after.speculative_executions
        )));
        assert!(text.contains(&format!(
            "scylla_shard_speculative_wins_total {}",
            after.speculative_wins
        )));
    }

    // Non-idempotent reads never speculate: one attempt per request.
    let before = speculating.metrics();
    let received = attempts_received(&emulator);
    let without = latencies(&speculating, batch(false)).await;
    assert!(p99(&without) >= SLOW, "non-idempotent reads wait");
    let after = speculating.metrics();
    assert_eq!(after.speculative_executions, before.speculative_executions);
    let sent: u64 = after.nodes.iter().map(|n| n.requests()).sum::<u64>()
        - before.nodes.iter().map(|n| n.requests()).sum::<u64>();
    assert_eq!(sent, REQUESTS as u64, "one attempt per request");
    assert_eq!(attempts_received(&emulator) - received, REQUESTS as f64);

    for session in [&plain, &speculating, &by_percentile] {
        settled(session).await;
    }
    slow(&emulator, 0, Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_bound_the_executions_of_a_request() {
    let emulator = cluster().await;
    let s = session(&emulator, |_| {}).await;
    let reads = read_statement(&s).await;
    for node in 0..3 {
        slow(&emulator, node, SLOW);
    }
    // 2 and 3 attempts; 5 asked but the plan holds 3 replicas.
    for (max_attempts, expected) in [(2u32, 2u64), (3, 3), (5, 3)] {
        let before = s.metrics();
        let received = attempts_received(&emulator);
        let statements = (0..10)
            .map(|a| {
                let mut st = read(&reads, a, true);
                st.speculative_execution = Some(constant(max_attempts));
                st
            })
            .collect();
        latencies(&s, statements).await;
        let want = 10.0 * expected as f64;
        wait_until("every attempt received", STEP, || {
            attempts_received(&emulator) - received >= want
        })
        .await;
        assert_eq!(
            attempts_received(&emulator) - received,
            want,
            "max_attempts {max_attempts}"
        );
        let after = s.metrics();
        assert_eq!(
            after.speculative_executions - before.speculative_executions,
            10 * (expected - 1),
            "max_attempts {max_attempts}"
        );
        assert_eq!(after.retries, before.retries, "speculation is not retrying");
    }
    settled(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_profiles_apply_under_the_statements_own_settings() {
    let emulator = cluster().await;
    let fast = ExecutionProfile {
        speculative_execution: Some(constant(3)),
        ..Default::default()
    };
    let strict = ExecutionProfile {
        consistency: Some(Consistency::Three),
        request_timeout: Some(Duration::from_millis(50)),
        retry_policy: Some(RetryPolicy::Fallthrough),
        ..Default::default()
    };
    let s = session(&emulator, |c| {
        c.execution_profiles = vec![("fast".into(), fast), ("strict".into(), strict)];
    })
    .await;
    let reads = read_statement(&s).await;
    slow(&emulator, 0, SLOW);

    let with_profile = |own: Option<SpeculativeExecution>| {
        (0..REQUESTS)
            .map(|i| {
                let mut st = read(&reads, (i % 10) as i32, true);
                st.execution_profile = Some(ProfileName::new("fast"));
                st.speculative_execution = own;
                st
            })
            .collect::<Vec<_>>()
    };
    let before = s.metrics().speculative_executions;
    let sped = latencies(&s, with_profile(None)).await;
    assert!(
        p99(&sped) < SLOW,
        "the profile speculates: {:?}",
        p99(&sped)
    );
    assert!(s.metrics().speculative_executions > before);

    // The statement's own "no speculation" beats its profile's.
    let before = s.metrics().speculative_executions;
    let own = latencies(&s, with_profile(Some(SpeculativeExecution::None))).await;
    assert!(p99(&own) >= SLOW, "the statement's setting wins");
    assert_eq!(s.metrics().speculative_executions, before);

    // The strict profile's level (THREE) and retry policy (fallthrough)
    // reach the request: the next request at THREE fails on every node,
    // and the failure is returned at once.
    for node in 0..3 {
        emulator.admin(
            node,
            "/admin/fail?error=unavailable&consistency=THREE&count=1",
        );
    }
    let rethrown = s.metrics().retry_decisions.rethrown;
    let mut st = read(&reads, 1, false);
    st.execution_profile = Some(ProfileName::new("strict"));
    st.timeout = Some(Duration::from_secs(5));
    match tokio::time::timeout(STEP, s.execute(&st)).await.unwrap() {
        Err(DriverError::Server(e)) => assert_eq!(e.code, error_code::UNAVAILABLE),
        other => panic!("expected UNAVAILABLE at THREE, got {other:?}"),
    }
    assert_eq!(s.metrics().retry_decisions.rethrown, rethrown + 1);
    // The statement's own level beats the profile's: the faults left on
    // the other nodes are at THREE, so a read at ONE succeeds anywhere.
    st.consistency = Some(Consistency::One);
    tokio::time::timeout(STEP, s.execute(&st))
        .await
        .unwrap()
        .expect("the statement's own consistency applies");

    // The strict profile's timeout (50 ms) fails a read once every node is
    // slow; the statement's own timeout beats it.
    for node in 0..3 {
        slow(&emulator, node, SLOW);
    }
    st.timeout = None;
    let outcome = tokio::time::timeout(STEP, s.execute(&st)).await.unwrap();
    assert!(
        matches!(outcome, Err(DriverError::Timeout(t)) if t == Duration::from_millis(50)),
        "{outcome:?}"
    );
    st.timeout = Some(Duration::from_secs(5));
    tokio::time::timeout(STEP, s.execute(&st))
        .await
        .unwrap()
        .expect("the statement's own timeout applies");

    // An unknown profile fails the request, naming it.
    let mut st = read(&reads, 1, true);
    st.execution_profile = Some(ProfileName::new("no-such-profile"));
    match tokio::time::timeout(STEP, s.execute(&st)).await.unwrap() {
        Err(e @ DriverError::UnknownExecutionProfile(_)) => {
            assert!(e.to_string().contains("no-such-profile"), "{e}")
        }
        other => panic!("expected an unknown profile error, got {other:?}"),
    }
    settled(&s).await;
}

//! The three retry policies against errors the emulator injects
//! (`/admin/fail`: the next N requests at one consistency answer
//! UNAVAILABLE, READ_TIMEOUT or WRITE_TIMEOUT with coordinator details),
//! and every decision counted in the session's metrics.
//!
//! A downgraded retry is proven to travel at another level by injecting
//! one failure more than the policy retries: a retry at the original level
//! would meet it and fail.

mod common;
mod session_support;

use common::{Emulator, EmulatorOptions};
use scylla_shard::protocol::request::BatchKind;
use scylla_shard::protocol::response::error_code;
use scylla_shard::protocol::{Consistency, CqlValue};
use scylla_shard::session::{
    Batch, DriverError, QueryResult, RetryDecisionCounts, RetryPolicy, Session, Statement,
};
use session_support::*;

/// One node: every attempt, first and retried, reaches the faulty node.
async fn cluster(policy: RetryPolicy) -> (Emulator, Session) {
    let emulator = EmulatorOptions::new(1, 2).start();
    let mut config = config(&emulator);
    config.default_retry_policy = policy;
    let session = connect_with(&emulator, config).await;
    create_schema(&session, "rp", SIMPLE_RF1).await;
    run(
        &session,
        "INSERT INTO rp.t (a, b, c, v) VALUES (1, 'k', 0, 'stored')",
    )
    .await;
    (emulator, session)
}

/// The next `count` requests at `consistency` fail as `error` says.
fn inject(emulator: &Emulator, query: &str) {
    match emulator.http(0, "POST", &format!("/admin/fail?{query}")) {
        Ok((200, _)) => {}
        other => panic!("/admin/fail?{query}: {other:?}"),
    }
}

fn statement(text: &str, consistency: Consistency, idempotent: bool) -> Statement {
    let mut st = Statement::simple(text);
    st.consistency = Some(consistency);
    st.idempotent = idempotent;
    st
}

fn read(consistency: Consistency) -> Statement {
    statement(
        "SELECT v FROM rp.t WHERE a = 1 AND b = 'k'",
        consistency,
        true,
    )
}

async fn execute(session: &Session, st: &Statement) -> Result<QueryResult, DriverError> {
    tokio::time::timeout(STEP, session.execute(st))
        .await
        .expect("no answer in time")
}

fn stored(result: &QueryResult) -> bool {
    let rows = decode(result.rows.as_ref().expect("rows"));
    rows == vec![vec![Some(CqlValue::Text("stored".into()))]]
}

fn server_code(outcome: Result<QueryResult, DriverError>) -> i32 {
    match outcome {
        Err(DriverError::Server(e)) => e.code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

fn decisions(session: &Session) -> RetryDecisionCounts {
    session.metrics().retry_decisions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_policy_retries_an_idempotent_timeout_once_on_the_same_node() {
    let (emulator, session) = cluster(RetryPolicy::Default).await;
    inject(
        &emulator,
        "error=read_timeout&consistency=QUORUM&count=1&received=1&block_for=2",
    );
    let before = session.metrics();
    let result = execute(&session, &read(Consistency::Quorum)).await.unwrap();
    assert!(stored(&result));
    let after = session.metrics();
    assert_eq!(after.retry_decisions.same_target, 1, "{after:?}");
    assert_eq!(after.retries, before.retries + 1);

    // Twice: the one retry meets the second failure, which is returned.
    inject(
        &emulator,
        "error=read_timeout&consistency=QUORUM&count=2&received=1&block_for=2",
    );
    let code = server_code(execute(&session, &read(Consistency::Quorum)).await);
    assert_eq!(code, error_code::READ_TIMEOUT);
    let d = decisions(&session);
    assert_eq!((d.same_target, d.rethrown), (2, 1), "{d:?}");

    // Not idempotent: returned at once.
    inject(&emulator, "error=write_timeout&consistency=QUORUM&count=1");
    let write = statement(
        "INSERT INTO rp.t (a, b, c, v) VALUES (2, 'k', 0, 'x')",
        Consistency::Quorum,
        false,
    );
    assert_eq!(
        server_code(execute(&session, &write).await),
        error_code::WRITE_TIMEOUT
    );
    let d = decisions(&session);
    assert_eq!(
        (d.same_target, d.rethrown, d.downgraded),
        (2, 2, 0),
        "{d:?}"
    );
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallthrough_returns_the_first_error() {
    let (emulator, session) = cluster(RetryPolicy::Fallthrough).await;
    let retries = session.metrics().retries;
    for query in [
        "error=read_timeout&consistency=QUORUM&count=1",
        "error=unavailable&consistency=QUORUM&count=1&required=2&alive=1",
    ] {
        inject(&emulator, query);
        let outcome = execute(&session, &read(Consistency::Quorum)).await;
        assert!(outcome.is_err(), "{query}: {outcome:?}");
        // One attempt used the one failure: the next request succeeds.
        let result = execute(&session, &read(Consistency::Quorum)).await.unwrap();
        assert!(stored(&result));
    }
    let m = session.metrics();
    assert_eq!(m.retries, retries, "{m:?}");
    assert_eq!(
        m.retry_decisions,
        RetryDecisionCounts {
            rethrown: 2,
            ..RetryDecisionCounts::default()
        }
    );
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgrading_retries_at_the_level_the_replicas_can_give() {
    let (emulator, session) = cluster(RetryPolicy::DowngradingConsistency).await;

    // Read timeout, 1 of 2 answered: retried at ONE. Two failures are
    // injected at QUORUM: a retry at QUORUM would get the second.
    inject(
        &emulator,
        "error=read_timeout&consistency=QUORUM&count=2&received=1&block_for=2",
    );
    let result = execute(&session, &read(Consistency::Quorum)).await.unwrap();
    assert!(stored(&result));
    assert_eq!(decisions(&session).downgraded, 1);
    // The second failure is still there for the next QUORUM request.
    let result = execute(&session, &read(Consistency::Quorum)).await.unwrap();
    assert!(stored(&result));
    assert_eq!(decisions(&session).downgraded, 2);

    // Unavailable with 1 alive: ALL retried at ONE (which the one RF 1
    // replica can give; the emulator checks levels against RF).
    inject(
        &emulator,
        "error=unavailable&consistency=ALL&count=2&required=3&alive=1",
    );
    assert!(stored(
        &execute(&session, &read(Consistency::All)).await.unwrap()
    ));
    assert_eq!(decisions(&session).downgraded, 3);

    // Nothing answered: nothing to downgrade to.
    inject(
        &emulator,
        "error=read_timeout&consistency=QUORUM&count=1&received=0&block_for=2",
    );
    assert_eq!(
        server_code(execute(&session, &read(Consistency::Quorum)).await),
        error_code::READ_TIMEOUT
    );
    assert_eq!(decisions(&session).rethrown, 1);

    // A simple write some replica acknowledged: success, not retried.
    let write = |idempotent| {
        statement(
            "INSERT INTO rp.t (a, b, c, v) VALUES (3, 'k', 0, 'w')",
            Consistency::Quorum,
            idempotent,
        )
    };
    inject(
        &emulator,
        "error=write_timeout&consistency=QUORUM&count=1&received=1&write_type=SIMPLE",
    );
    let ignored = execute(&session, &write(true)).await.unwrap();
    assert!(ignored.rows.is_none());
    assert_eq!(decisions(&session).ignored, 1);
    // Not idempotent: returned.
    inject(
        &emulator,
        "error=write_timeout&consistency=QUORUM&count=1&received=1&write_type=SIMPLE",
    );
    assert_eq!(
        server_code(execute(&session, &write(false)).await),
        error_code::WRITE_TIMEOUT
    );
    assert_eq!(decisions(&session).rethrown, 2);
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_takes_its_own_policy_and_is_downgraded() {
    let (emulator, session) = cluster(RetryPolicy::Fallthrough).await;
    let mut batch = Batch::new(BatchKind::Unlogged);
    batch.statements = vec![
        Statement::simple("INSERT INTO rp.t (a, b, c, v) VALUES (4, 'k', 0, 'batched')"),
        Statement::simple("INSERT INTO rp.t (a, b, c, v) VALUES (4, 'k', 1, 'batched')"),
    ];
    batch.consistency = Some(Consistency::Quorum);
    batch.idempotent = true;
    batch.retry_policy = Some(RetryPolicy::DowngradingConsistency);
    inject(
        &emulator,
        "error=write_timeout&consistency=QUORUM&count=2&received=1&write_type=UNLOGGED_BATCH",
    );
    tokio::time::timeout(STEP, session.batch(&batch))
        .await
        .expect("no answer in time")
        .expect("downgraded batch");
    assert_eq!(decisions(&session).downgraded, 1);
    let rows = run(&session, "SELECT c FROM rp.t WHERE a = 4 AND b = 'k'").await;
    assert_eq!(decode(rows.rows.as_ref().unwrap()).len(), 2);

    // The statement's own policy over the session's too.
    inject(
        &emulator,
        "error=read_timeout&consistency=QUORUM&count=1&received=1&block_for=2",
    );
    let mut st = read(Consistency::Quorum);
    st.retry_policy = Some(RetryPolicy::Default);
    assert!(stored(&execute(&session, &st).await.unwrap()));
    assert_eq!(decisions(&session).same_target, 1);
    session.close().await;
}

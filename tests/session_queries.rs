//! Query features through the session: paging (automatic and manual),
//! batches, LWT, `USE`, server errors and closing.

mod common;
mod session_support;

use std::time::Duration;

use common::Emulator;
use scylla_shard::protocol::request::BatchKind;
use scylla_shard::protocol::response::error_code;
use scylla_shard::protocol::CqlValue;
use scylla_shard::session::{Batch, DriverError, QueryResult, Session, Statement};
use session_support::*;

const PARTITION_ROWS: i32 = 2_500;

fn clustering_of(page: &QueryResult) -> Vec<i32> {
    decode(page.rows.as_ref().expect("rows"))
        .into_iter()
        .map(|row| match row[0] {
            Some(CqlValue::Int(c)) => c,
            ref other => panic!("unexpected cell {other:?}"),
        })
        .collect()
}

async fn fill_partition(session: &Session) {
    create_schema(session, "ks", SIMPLE_RF1).await;
    let insert = session
        .prepare("INSERT INTO ks.t (a, b, c, v) VALUES (?, ?, ?, ?)")
        .await
        .expect("prepare");
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (session, insert) = (session.clone(), insert.clone());
        tasks.spawn(async move {
            for c in (0..PARTITION_ROWS).filter(|c| c % 8 == w) {
                let mut st = Statement::prepared(insert.clone());
                st.values = vec![int(1), text("p"), int(c), text(&format!("v{c}"))];
                session.execute(&st).await.expect("insert");
            }
        });
    }
    while let Some(j) = tasks.join_next().await {
        j.expect("writer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_automatic_and_manual() {
    let emulator = Emulator::start(3, 4, &[]);
    let session = connect(&emulator).await;
    fill_partition(&session).await;
    let select = session
        .prepare("SELECT c, v FROM ks.t WHERE a = ? AND b = ?")
        .await
        .expect("prepare select");
    let mut st = Statement::prepared(select.clone());
    st.values = vec![int(1), text("p")];
    st.page_size = Some(100);

    let pages = session.execute_all_pages(&st).await.expect("all pages");
    assert!(pages.len() >= 25, "{} pages", pages.len());
    let mut all = Vec::new();
    for page in &pages {
        let rows = page.rows.as_ref().expect("rows").len();
        assert!(rows <= 100, "a page has at most 100 rows, not {rows}");
        all.extend(clustering_of(page));
    }
    assert_eq!(all, (0..PARTITION_ROWS).collect::<Vec<_>>());

    // Manual paging: the caller carries the state between requests.
    let mut manual = Vec::new();
    let mut state: Option<Vec<u8>> = None;
    let mut requests = 0;
    loop {
        let mut page_st = st.clone();
        page_st.paging_state = state.take();
        let page = session.execute(&page_st).await.expect("page");
        manual.extend(clustering_of(&page));
        requests += 1;
        match page.paging_state {
            Some(next) => state = Some(next),
            None => break,
        }
        assert!(requests <= 30, "paging does not end");
    }
    assert_eq!(manual, all);

    // Resuming from a saved state continues where the first page ended.
    let first = session.execute(&st).await.expect("first page");
    let mut resumed = st.clone();
    resumed.paging_state = first.paging_state.clone();
    let second = session.execute(&resumed).await.expect("second page");
    assert_eq!(clustering_of(&second)[0], 100);

    // A pager, and unpaged (page size 0) gives everything at once.
    let mut pager = session.pager(st.clone());
    let mut count = 0;
    while let Some(page) = pager.next_page().await {
        count += page.expect("page").rows.map_or(0, |r| r.len());
    }
    assert_eq!(count, PARTITION_ROWS as usize);
    let mut unpaged = st.clone();
    unpaged.page_size = Some(0);
    let one = session.execute(&unpaged).await.expect("unpaged");
    assert!(one.paging_state.is_none());
    assert_eq!(clustering_of(&one).len(), PARTITION_ROWS as usize);
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_and_lwt() {
    let emulator = Emulator::start(3, 4, &[]);
    let session = connect(&emulator).await;
    create_schema(&session, "ks", SIMPLE_RF1).await;
    let insert = session
        .prepare("INSERT INTO ks.t (a, b, c, v) VALUES (?, ?, ?, ?)")
        .await
        .expect("prepare");

    let mut batch = Batch::new(BatchKind::Logged);
    for c in 0..10 {
        let mut st = Statement::prepared(insert.clone());
        st.values = vec![int(7), text("batch"), int(c), text(&format!("b{c}"))];
        batch.statements.push(st);
    }
    batch.statements.push(Statement::simple(
        "INSERT INTO ks.t (a, b, c, v) VALUES (7, 'batch', 10, 'simple')",
    ));
    session.batch(&batch).await.expect("logged batch");
    let mut unlogged = Batch::new(BatchKind::Unlogged);
    let mut st = Statement::prepared(insert.clone());
    st.values = vec![int(8), text("other"), int(0), text("u")];
    unlogged.statements.push(st);
    session.batch(&unlogged).await.expect("unlogged batch");
    let rows = run(
        &session,
        "SELECT c, v FROM ks.t WHERE a = 7 AND b = 'batch'",
    )
    .await;
    let rows = decode(rows.rows.as_ref().expect("rows"));
    assert_eq!(rows.len(), 11);
    assert_eq!(rows[10][1], Some(CqlValue::Text("simple".into())));
    assert!(matches!(
        session.batch(&Batch::new(BatchKind::Logged)).await,
        Err(DriverError::InvalidArgument(_))
    ));

    // LWT: the prepared metadata marks it, and [applied] tells the outcome.
    let lwt = session
        .prepare("INSERT INTO ks.t (a, b, c, v) VALUES (?, ?, ?, ?) IF NOT EXISTS")
        .await
        .expect("prepare lwt");
    assert!(lwt.is_lwt());
    assert!(!insert.is_lwt());
    let applied = |result: &QueryResult| -> bool {
        let rows = result.rows.as_ref().expect("LWT returns rows");
        assert_eq!(rows.metadata.columns[0].name.as_ref(), "[applied]");
        decode(rows)[0][0] == Some(CqlValue::Boolean(true))
    };
    let before = routing(&emulator);
    let mut st = Statement::prepared(lwt.clone());
    st.values = vec![int(9), text("lwt"), int(0), text("first")];
    assert!(applied(&session.execute(&st).await.expect("lwt 1")));
    st.values[3] = text("second");
    let second = session.execute(&st).await.expect("lwt 2");
    assert!(!applied(&second));
    // The current row comes back with [applied] = false.
    let row = decode(second.rows.as_ref().unwrap());
    assert!(
        row[0].contains(&Some(CqlValue::Text("first".into()))),
        "{row:?}"
    );
    assert_eq!(routing(&emulator).since(&before).misrouted(), 0.0);
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_errors_keep_their_codes() {
    let emulator = Emulator::start(2, 2, &[]);
    let session = connect(&emulator).await;
    let code = |e: DriverError| match e {
        DriverError::Server(body) => body.code,
        other => panic!("expected a server error, got {other}"),
    };
    let syntax = try_run(&session, "SELEC * FROM nowhere").await.unwrap_err();
    assert_eq!(code(syntax), error_code::SYNTAX_ERROR);
    let unknown = try_run(&session, "SELECT * FROM system.no_such_table")
        .await
        .unwrap_err();
    assert_eq!(code(unknown), error_code::INVALID);
    let prepare = session
        .prepare("SELECT * FROM system.no_such_table")
        .await
        .unwrap_err();
    assert_eq!(code(prepare), error_code::INVALID);
    create_schema(&session, "ks", SIMPLE_RF1).await;
    let exists = try_run(&session, &format!("CREATE KEYSPACE ks WITH {SIMPLE_RF1}"))
        .await
        .unwrap_err();
    assert_eq!(code(exists), error_code::ALREADY_EXISTS);
    let metrics = session.metrics();
    assert_eq!(metrics.errors, 4);
    assert_eq!(metrics.retries, 0, "errors like these are never retried");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn use_keyspace_switches_every_pool() {
    let emulator = Emulator::start(3, 2, &[]);
    let session = connect(&emulator).await;
    create_schema(&session, "ks", SIMPLE_RF1).await;
    create_schema(&session, "other", SIMPLE_RF1).await;

    let missing = session.use_keyspace("nope").await.unwrap_err();
    assert!(
        matches!(missing, DriverError::Server(ref e) if e.code == error_code::INVALID),
        "{missing}"
    );
    assert_eq!(session.keyspace(), None);

    run(&session, "USE ks").await;
    assert_eq!(session.keyspace().as_deref(), Some("ks"));
    wait_pools_filled(&session, 2).await;
    let insert = session
        .prepare("INSERT INTO t (a, b, c, v) VALUES (?, ?, ?, ?)")
        .await
        .expect("unqualified prepare");
    let before = routing(&emulator);
    for i in 0..200 {
        let mut st = Statement::prepared(insert.clone());
        st.values = vec![int(i), text("x"), int(0), text("in ks")];
        session.execute(&st).await.expect("insert into ks.t");
    }
    assert_eq!(routing(&emulator).since(&before).misrouted(), 0.0);
    // Every connection (any node, any shard) now resolves `t` in ks.
    for _ in 0..50 {
        let r = run(&session, "SELECT count(*) FROM t").await;
        assert_eq!(
            decode(r.rows.as_ref().unwrap())[0][0],
            Some(CqlValue::BigInt(200))
        );
    }

    session.use_keyspace("other").await.expect("use other");
    let again = session
        .prepare("INSERT INTO t (a, b, c, v) VALUES (?, ?, ?, ?)")
        .await
        .expect("prepare in other");
    assert!(
        !std::sync::Arc::ptr_eq(&insert, &again),
        "the cache key includes the keyspace"
    );
    for _ in 0..50 {
        let r = run(&session, "SELECT count(*) FROM t").await;
        assert_eq!(
            decode(r.rows.as_ref().unwrap())[0][0],
            Some(CqlValue::BigInt(0))
        );
    }
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyspace_in_config_and_close() {
    let emulator = Emulator::start(2, 2, &[]);
    let setup = connect(&emulator).await;
    create_schema(&setup, "ks", SIMPLE_RF1).await;
    setup.close().await;
    assert_eq!(
        setup
            .execute(&Statement::simple("SELECT * FROM system.local"))
            .await
            .err(),
        Some(DriverError::Closed)
    );

    let mut config = config(&emulator);
    config.keyspace = Some("ks".into());
    let session = connect_with(&emulator, config).await;
    run(
        &session,
        "INSERT INTO t (a, b, c, v) VALUES (1, 'x', 0, 'y')",
    )
    .await;

    let mut bad = session_support::config(&emulator);
    bad.keyspace = Some("missing".into());
    let err = tokio::time::timeout(STEP, Session::connect(bad))
        .await
        .expect("bounded");
    assert!(matches!(err, Err(DriverError::Server(_))), "{err:?}");

    // Close waits for a request in flight, then refuses new ones.
    emulator.admin(0, "/admin/delay?us=300000");
    emulator.admin(1, "/admin/delay?us=300000");
    let slow = {
        let session = session.clone();
        tokio::spawn(async move { session.execute(&Statement::simple("SELECT * FROM t")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    session.close().await;
    assert!(
        slow.await.expect("task").is_ok(),
        "in-flight request finished"
    );
    assert_eq!(
        session.prepare("SELECT * FROM t").await.err(),
        Some(DriverError::Closed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_authentication() {
    let emulator = Emulator::start(2, 2, &["--auth", "alice:secret"]);
    let mut config = config(&emulator);
    config.connection.credentials = Some(("alice".into(), "secret".into()));
    let session = connect_with(&emulator, config.clone()).await;
    wait_pools_filled(&session, 2).await;
    run(&session, "SELECT * FROM system.local").await;
    session.close().await;

    config.connection.credentials = Some(("alice".into(), "wrong".into()));
    let refused = tokio::time::timeout(STEP, Session::connect(config))
        .await
        .expect("bounded");
    // Every node refuses alike: the cause, not a generic outage.
    match refused {
        Err(DriverError::Server(e)) => {
            assert_eq!(
                e.code,
                scylla_shard::protocol::response::error_code::BAD_CREDENTIALS
            );
            assert!(e.message.contains("password"), "{}", e.message);
        }
        other => panic!("expected the server's BAD_CREDENTIALS, got {other:?}"),
    }
}

/// The schema version node `i` reports itself, asked on a connection of
/// its own.
async fn reported_schema_version(emulator: &Emulator, i: usize) -> Vec<u8> {
    use scylla_shard::connection::{open, ConnectionConfig};
    use scylla_shard::protocol::response::ResultBody;
    use scylla_shard::protocol::{Request, Response};
    let (conn, _) = open(emulator.addr(i), None, &ConnectionConfig::default())
        .await
        .expect("connection");
    let request = Request::Query {
        query: "SELECT schema_version FROM system.local".into(),
        params: Default::default(),
    };
    let frame = conn
        .send_with_timeout(&request, &Default::default(), STEP)
        .await
        .expect("answer");
    let version = match frame.response {
        Response::Result(ResultBody::Rows(rows)) => rows.cell(0, 0).map(<[u8]>::to_vec),
        _ => None,
    };
    conn.close().await;
    version.expect("a schema version")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schema_changes_wait_for_agreement() {
    let emulator = Emulator::start(3, 2, &[]);
    let session = connect(&emulator).await;
    run(&session, "CREATE KEYSPACE ag WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").await;
    // Node 2 applies schema changes 800 ms late.
    emulator.admin(2, "/admin/schema_lag?ms=800");
    let created = run(&session, "CREATE TABLE ag.t (k int PRIMARY KEY)").await;
    assert_eq!(created.schema_in_agreement, Some(true));
    // It waited: the lagging node already reports what the others do.
    assert_eq!(
        reported_schema_version(&emulator, 2).await,
        reported_schema_version(&emulator, 0).await
    );
    // A wait shorter than the lag gives up and says so.
    let mut config = config(&emulator);
    config.schema_agreement_timeout = Duration::from_millis(100);
    let impatient = connect_with(&emulator, config).await;
    emulator.admin(2, "/admin/schema_lag?ms=20000");
    let created = run(&impatient, "CREATE TABLE ag.u (k int PRIMARY KEY)").await;
    assert_eq!(created.schema_in_agreement, Some(false));
    assert_ne!(
        reported_schema_version(&emulator, 2).await,
        reported_schema_version(&emulator, 0).await
    );
    // Not a schema change: no agreement to report.
    let read = run(&session, "SELECT * FROM ag.t").await;
    assert_eq!(read.schema_in_agreement, None);
    impatient.close().await;
    session.close().await;
}

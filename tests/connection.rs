//! Integration tests of `scylla_shard::connection` against the emulator and
//! against small scripted servers (for failures the emulator cannot stage).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Emulator};
use scylla_shard::connection::{
    open, BrokenReason, Connection, ConnectionConfig, ConnectionError, EventType, RawRequest,
    RequestError, ShardingInfo,
};
use scylla_shard::protocol::frame::{
    decode_request, encode_response, flags, FrameHeader, Opcode, HEADER_LEN,
};
use scylla_shard::protocol::response::{error_code, Event, ResultBody};
use scylla_shard::protocol::{Compression, QueryParameters, Request, Response, Value};
use scylla_shard::routing::sharder::{source_ports_for_shard, ShardAwarePortRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LOCAL_QUERY: &str = "SELECT key FROM system.local WHERE key='local'";
const BOUND: Duration = Duration::from_secs(10);

fn query(text: &str) -> Request {
    query_with(text, Vec::new())
}

fn query_with(text: &str, values: Vec<Value>) -> Request {
    Request::Query {
        query: text.to_owned(),
        params: QueryParameters {
            values,
            ..Default::default()
        },
    }
}

/// Runs `text` and panics unless the server accepted it.
async fn execute(conn: &Connection, text: &str) -> Response {
    let frame = tokio::time::timeout(BOUND, conn.send(&query(text), &Default::default()))
        .await
        .unwrap_or_else(|_| panic!("{text}: no response within {BOUND:?}"))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    if let Response::Error(e) = &frame.response {
        panic!("{text}: server error {e:?}");
    }
    frame.response
}

/// The single cell of a one-row, one-column result.
fn single_cell(response: &Response) -> Option<Vec<u8>> {
    match response {
        Response::Result(ResultBody::Rows(rows)) if rows.len() == 1 => {
            rows.cell(0, 0).map(<[u8]>::to_vec)
        }
        _ => None,
    }
}

async fn connect(emulator: &Emulator, config: &ConnectionConfig) -> Connection {
    let (conn, _) = open(emulator.addr(0), None, config)
        .await
        .unwrap_or_else(|e| panic!("open: {e}; emulator stderr: {}", emulator.stderr()));
    conn
}

async fn create_table(conn: &Connection, keyspace: &str) {
    execute(
        conn,
        &format!(
            "CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
    )
    .await;
    execute(
        conn,
        &format!("CREATE TABLE {keyspace}.t (k int PRIMARY KEY, v text)"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_reports_sharding_and_shard_aware_port() {
    let emulator = Emulator::start(1, 4, &[]);
    let (conn, features) = open(emulator.addr(0), None, &ConnectionConfig::default())
        .await
        .expect("open");
    let sharding = features.sharding.expect("sharding info");
    assert_eq!(sharding.nr_shards, 4);
    assert_eq!(sharding.ignore_msb, 12);
    assert!(sharding.shard < 4);
    assert_eq!(conn.shard(), Some(sharding.shard));
    assert_eq!(features.shard_aware_port, Some(emulator.shard_aware_port));
    assert_eq!(features.lwt_mask, Some(0x8000_0000));
    assert!(!features.tablets_routing_v1);
    assert!(features.cql_version.is_some());
    assert!(features.supports_compression("lz4"));
    let host_id = scylla_shard::connection::parse_uuid(&emulator.host_id(0));
    assert_eq!(features.host_id, host_id);
    assert_eq!(conn.features(), &features);
    assert_eq!(conn.peer_addr(), emulator.addr(0));
    let response = execute(&conn, LOCAL_QUERY).await;
    assert_eq!(single_cell(&response).as_deref(), Some(&b"local"[..]));
    assert_eq!(conn.in_flight(), 0);

    // The regular port hands out the least-loaded shard: four connections
    // cover all four shards.
    let mut shards = vec![sharding.shard];
    let mut keep = vec![conn];
    for _ in 0..3 {
        let (c, f) = open(emulator.addr(0), None, &ConnectionConfig::default())
            .await
            .expect("open");
        shards.push(f.shard().expect("shard"));
        keep.push(c);
    }
    shards.sort();
    assert_eq!(shards, vec![0, 1, 2, 3]);

    // --tablets adds TABLETS_ROUTING_V1.
    let tablets = Emulator::start(1, 2, &["--tablets"]);
    let (_, features) = open(tablets.addr(0), None, &ConnectionConfig::default())
        .await
        .expect("open");
    assert!(features.tablets_routing_v1);
    assert_eq!(
        features.sharding,
        Some(ShardingInfo {
            shard: features.shard().unwrap(),
            nr_shards: 2,
            ignore_msb: 12
        })
    );
}

/// Opens a connection to `shard` through the shard-aware port, trying
/// candidate source ports until one is free.
async fn open_to_shard(emulator: &Emulator, shard: u16, seed: u64) -> (Connection, u16) {
    let ports =
        source_ports_for_shard(ShardAwarePortRange::EPHEMERAL, shard, emulator.shards, seed);
    for port in ports.take(64) {
        match open(
            emulator.shard_aware_addr(0),
            Some(port),
            &ConnectionConfig::default(),
        )
        .await
        {
            Ok((conn, _)) => return (conn, port),
            Err(e) if e.is_address_unavailable() => continue,
            Err(e) => panic!("shard-aware connect from port {port}: {e}"),
        }
    }
    panic!("no free source port for shard {shard}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_aware_port_lands_on_source_port_shard() {
    let emulator = Emulator::start(1, 4, &[]);
    let seed = u64::from(std::process::id()) * 7919;
    let mut keep = Vec::new();
    for shard in 0..4u16 {
        let (conn, port) = open_to_shard(&emulator, shard, seed + u64::from(shard)).await;
        assert_eq!(port % 4, shard);
        assert_eq!(conn.local_addr().port(), port);
        assert_eq!(conn.shard(), Some(shard), "source port {port}");
        execute(&conn, LOCAL_QUERY).await;
        keep.push(conn);
    }
    for shard in 0..4 {
        let sample = format!(
            "emulator_connections_accepted_total{{port=\"{}\",shard=\"{shard}\"}}",
            emulator.shard_aware_port
        );
        assert_eq!(emulator.metric(0, &sample), Some(1.0), "{sample}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_source_port_is_address_unavailable() {
    let emulator = Emulator::start(1, 2, &[]);
    // Hold a port on the wildcard address so binding it again fails.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = holder.local_addr().unwrap().port();
    let err = open(
        emulator.shard_aware_addr(0),
        Some(port),
        &ConnectionConfig::default(),
    )
    .await
    .expect_err("port is taken");
    assert!(err.is_address_unavailable(), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lz4_compression_round_trip() {
    let emulator = Emulator::start(1, 2, &[]);
    let config = ConnectionConfig {
        compression: Some(Compression::Lz4),
        ..Default::default()
    };
    let conn = connect(&emulator, &config).await;
    assert_eq!(conn.compression(), Some(Compression::Lz4));
    create_table(&conn, "lz").await;
    let big: String = (0..20_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let insert = query_with(
        "INSERT INTO lz.t (k, v) VALUES (?, ?)",
        vec![
            Value::Set(7i32.to_be_bytes().to_vec()),
            Value::Set(big.clone().into_bytes()),
        ],
    );
    let frame = conn
        .send(&insert, &Default::default())
        .await
        .expect("insert");
    assert_eq!(frame.response, Response::Result(ResultBody::Void));

    // Pre-encoded body through send_raw; the answer must come compressed.
    let select = query_with(
        "SELECT v FROM lz.t WHERE k = ?",
        vec![Value::Set(7i32.to_be_bytes().to_vec())],
    );
    let mut body = Vec::new();
    select.write_body(&mut body).unwrap();
    let raw = conn
        .send_raw(RawRequest {
            opcode: Opcode::Query,
            flags: 0,
            body: &body,
        })
        .await
        .expect("select");
    assert_ne!(
        raw.header.flags & flags::COMPRESSION,
        0,
        "response not compressed"
    );
    assert!(
        raw.body.len() < big.len() / 4,
        "body of {} bytes",
        raw.body.len()
    );
    let decoded = conn.decode(&raw).expect("decode");
    assert_eq!(single_cell(&decoded.response), Some(big.into_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_authentication() {
    let emulator = Emulator::start(1, 2, &["--auth", "user:pw"]);
    let with = |user: &str, password: &str| ConnectionConfig {
        credentials: Some((user.to_owned(), password.to_owned())),
        ..Default::default()
    };
    let conn = connect(&emulator, &with("user", "pw")).await;
    execute(&conn, LOCAL_QUERY).await;

    let err = open(emulator.addr(0), None, &with("user", "wrong"))
        .await
        .expect_err("bad password");
    assert!(err.is_bad_credentials(), "{err:?}");
    match &err {
        ConnectionError::Server(body) => assert_eq!(body.code, error_code::BAD_CREDENTIALS),
        other => panic!("{other:?}"),
    }

    let err = open(emulator.addr(0), None, &ConnectionConfig::default())
        .await
        .expect_err("no credentials");
    assert!(
        matches!(err, ConnectionError::AuthenticationRequired { ref authenticator } if authenticator.contains("PasswordAuthenticator")),
        "{err:?}"
    );
    assert!(!err.is_bad_credentials());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_requests_on_one_connection() {
    const N: i32 = 10_000;
    let emulator = Emulator::start(1, 1, &[]);
    let conn = connect(&emulator, &ConnectionConfig::default()).await;
    create_table(&conn, "many").await;

    let mut inserts = tokio::task::JoinSet::new();
    for k in 0..N {
        let conn = conn.clone();
        inserts.spawn(async move {
            let request = query_with(
                "INSERT INTO many.t (k, v) VALUES (?, ?)",
                vec![
                    Value::Set(k.to_be_bytes().to_vec()),
                    Value::Set(format!("value-{k}").into_bytes()),
                ],
            );
            conn.send(&request, &Default::default()).await
        });
    }
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = 0;
    while let Some(result) = tokio::time::timeout_at(deadline.into(), inserts.join_next())
        .await
        .expect("inserts did not finish within 60 s")
    {
        peak = peak.max(conn.in_flight());
        let frame = result.expect("task").expect("insert");
        assert_eq!(frame.response, Response::Result(ResultBody::Void));
        done += 1;
    }
    assert_eq!(done, N);

    // Each select checks it got its own row back: a response delivered to
    // the wrong stream would show up here.
    let mut selects = tokio::task::JoinSet::new();
    for k in 0..N {
        let conn = conn.clone();
        selects.spawn(async move {
            let request = query_with(
                "SELECT v FROM many.t WHERE k = ?",
                vec![Value::Set(k.to_be_bytes().to_vec())],
            );
            let frame = conn.send(&request, &Default::default()).await;
            (k, frame)
        });
    }
    let mut done = 0;
    while let Some(result) = tokio::time::timeout_at(deadline.into(), selects.join_next())
        .await
        .expect("selects did not finish within 60 s")
    {
        let (k, frame) = result.expect("task");
        let frame = frame.expect("select");
        assert_eq!(
            single_cell(&frame.response),
            Some(format!("value-{k}").into_bytes()),
            "row {k}"
        );
        done += 1;
    }
    assert_eq!(done, N);
    assert!(peak > 100, "requests were not concurrent (peak {peak})");
    assert_eq!(conn.in_flight(), 0);
    assert!(!conn.is_broken());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_restart_fails_in_flight_requests_and_resolves_closed() {
    let emulator = Emulator::start(1, 2, &[]);
    let conn = connect(&emulator, &ConnectionConfig::default()).await;
    let successes = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let conn = conn.clone();
        let successes = successes.clone();
        workers.spawn(async move {
            loop {
                match conn.send(&query(LOCAL_QUERY), &Default::default()).await {
                    Ok(_) => successes.fetch_add(1, Ordering::Relaxed),
                    Err(e) => return e,
                };
            }
        });
    }
    wait_until("1000 requests to succeed", BOUND, || {
        successes.load(Ordering::Relaxed) >= 1000
    })
    .await;
    // The 64 workers keep requests in flight nearly all the time; a
    // snapshot can still catch the instant a read batch completed them all.
    wait_until("requests in flight", BOUND, || conn.in_flight() > 0).await;
    emulator.admin(0, "/admin/restart?down_ms=500");
    let reason = tokio::time::timeout(BOUND, conn.closed())
        .await
        .expect("closed() did not resolve");
    assert!(
        matches!(*reason, BrokenReason::Eof | BrokenReason::Io { .. }),
        "{reason:?}"
    );
    assert!(conn.is_broken());
    let mut failed = 0;
    while let Some(result) = tokio::time::timeout(BOUND, workers.join_next())
        .await
        .expect("workers did not stop")
    {
        let error = result.expect("task");
        // Written before the break, or refused after it.
        assert!(
            matches!(
                error,
                RequestError::ConnectionBroken(_) | RequestError::NotSent(_)
            ),
            "{error:?}"
        );
        failed += 1;
    }
    assert_eq!(failed, 64);
    assert_eq!(conn.in_flight(), 0);

    // New sends fail at once.
    let started = Instant::now();
    let error = conn
        .send(&query(LOCAL_QUERY), &Default::default())
        .await
        .expect_err("broken connection");
    assert!(matches!(error, RequestError::NotSent(_)), "{error:?}");
    assert!(error.is_not_sent());
    assert!(started.elapsed() < Duration::from_millis(100));

    // The node comes back: a new connection works.
    let deadline = Instant::now() + BOUND;
    let fresh = loop {
        match open(emulator.addr(0), None, &ConnectionConfig::default()).await {
            Ok((c, _)) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "node did not come back: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    execute(&fresh, LOCAL_QUERY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_keeps_connection_usable_and_stream_reserved() {
    let emulator = Emulator::start(1, 1, &[]);
    let conn = connect(&emulator, &ConnectionConfig::default()).await;
    execute(&conn, LOCAL_QUERY).await;
    emulator.admin(0, "/admin/delay?us=400000");
    let error = conn
        .send_with_timeout(
            &query(LOCAL_QUERY),
            &Default::default(),
            Duration::from_millis(50),
        )
        .await
        .expect_err("should time out");
    assert!(matches!(error, RequestError::Timeout(_)), "{error:?}");
    // The id stays reserved for the late response...
    assert_eq!((conn.in_flight(), conn.orphaned()), (1, 1));
    emulator.admin(0, "/admin/delay?us=0");
    // ...which releases it when it arrives.
    wait_until("the late response", BOUND, || conn.in_flight() == 0).await;
    assert_eq!(conn.orphaned(), 0);
    assert!(!conn.is_broken());
    let response = execute(&conn, LOCAL_QUERY).await;
    assert_eq!(single_cell(&response).as_deref(), Some(&b"local"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_and_events() {
    let emulator = Emulator::start(1, 2, &[]);
    let conn = connect(&emulator, &ConnectionConfig::default()).await;
    let mut events = conn
        .register_for_events(&[EventType::SchemaChange, EventType::StatusChange])
        .await
        .expect("register");
    create_table(&conn, "evks").await;
    let event = tokio::time::timeout(BOUND, events.recv())
        .await
        .expect("no event")
        .expect("event channel closed");
    assert!(
        matches!(event, Event::SchemaChange(ref c) if c.keyspace == "evks"),
        "{event:?}"
    );

    // USE at open time: unqualified names resolve in that keyspace.
    let config = ConnectionConfig {
        keyspace: Some("evks".into()),
        ..Default::default()
    };
    let in_ks = connect(&emulator, &config).await;
    execute(&in_ks, "INSERT INTO t (k, v) VALUES (1, 'one')").await;
    let missing = ConnectionConfig {
        keyspace: Some("nope".into()),
        ..Default::default()
    };
    let err = open(emulator.addr(0), None, &missing)
        .await
        .expect_err("unknown keyspace");
    assert!(matches!(err, ConnectionError::Server(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_close_lets_in_flight_finish() {
    let emulator = Emulator::start(1, 1, &[]);
    let conn = connect(&emulator, &ConnectionConfig::default()).await;
    emulator.admin(0, "/admin/delay?us=200000");
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let conn = conn.clone();
        pending.spawn(async move { conn.send(&query(LOCAL_QUERY), &Default::default()).await });
    }
    wait_until("requests in flight", BOUND, || conn.in_flight() == 10).await;
    let closer = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.close().await })
    };
    wait_until("close to start", BOUND, || conn.is_closing()).await;
    let refused = conn.send(&query(LOCAL_QUERY), &Default::default()).await;
    assert!(matches!(refused, Err(RequestError::Closing)), "{refused:?}");
    assert!(refused.unwrap_err().is_not_sent());
    while let Some(result) = tokio::time::timeout(BOUND, pending.join_next())
        .await
        .expect("in-flight requests hang")
    {
        result
            .expect("task")
            .expect("in-flight request must complete");
    }
    tokio::time::timeout(BOUND, closer)
        .await
        .expect("close hangs")
        .expect("task");
    assert_eq!(conn.broken_reason().as_deref(), Some(&BrokenReason::Closed));
}

use std::future::Future;

// ---------------------------------------------------------------------------
// Scripted servers: failures the emulator does not produce on demand.
// ---------------------------------------------------------------------------

async fn read_frame(stream: &mut TcpStream) -> Option<(FrameHeader, Request)> {
    let mut head = [0u8; HEADER_LEN];
    stream.read_exact(&mut head).await.ok()?;
    let header = FrameHeader::parse(&head).ok()?;
    let mut body = vec![0u8; header.body_len];
    stream.read_exact(&mut body).await.ok()?;
    let (_, request) = decode_request(&header, &body, None).ok()?;
    Some((header, request))
}

async fn reply(stream: &mut TcpStream, id: i16, response: &Response) {
    let frame = encode_response(id, response, &Default::default(), None).unwrap();
    stream.write_all(&frame).await.unwrap();
}

/// Accepts one connection and answers OPTIONS and STARTUP.
async fn scripted_server<F, Fut>(script: F) -> std::net::SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        loop {
            let (header, request) = read_frame(&mut stream).await.expect("handshake frame");
            match request {
                Request::Options => {
                    let options = vec![
                        ("CQL_VERSION".to_owned(), vec!["3.3.1".to_owned()]),
                        ("SCYLLA_SHARD".to_owned(), vec!["garbage".to_owned()]),
                    ];
                    reply(&mut stream, header.stream, &Response::Supported { options }).await
                }
                Request::Startup { .. } => {
                    reply(&mut stream, header.stream, &Response::Ready).await;
                    break;
                }
                other => panic!("unexpected {other:?} in handshake"),
            }
        }
        script(stream).await
    });
    addr
}

fn quiet() -> ConnectionConfig {
    ConnectionConfig {
        heartbeat_interval: None,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closing_fails_every_in_flight_request() {
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let addr = scripted_server(|mut stream| async move {
        // Read 100 requests, answer none, then hang up.
        for _ in 0..100 {
            read_frame(&mut stream).await.expect("request");
        }
        let _ = seen_tx.send(());
        drop(stream);
    })
    .await;
    let (conn, features) = open(addr, None, &quiet()).await.expect("open");
    assert_eq!(features.sharding, None, "garbage SCYLLA_SHARD is ignored");
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let conn = conn.clone();
        pending.spawn(async move { conn.send(&query("q"), &Default::default()).await });
    }
    tokio::time::timeout(BOUND, seen_rx).await.unwrap().unwrap();
    let reason = tokio::time::timeout(BOUND, conn.closed()).await.unwrap();
    assert!(matches!(
        *reason,
        BrokenReason::Eof | BrokenReason::Io { .. }
    ));
    let mut failed = 0;
    while let Some(r) = tokio::time::timeout(BOUND, pending.join_next())
        .await
        .unwrap()
    {
        match r.unwrap() {
            Err(RequestError::ConnectionBroken(why)) => assert_eq!(why, reason),
            other => panic!("{other:?}"),
        }
        failed += 1;
    }
    assert_eq!(failed, 100);
}

/// Writes `bytes` in answer to the first request, then waits for the
/// client to hang up.
async fn answer_first_request_with(bytes: Vec<u8>) -> std::net::SocketAddr {
    scripted_server(|mut stream| async move {
        let _ = read_frame(&mut stream).await;
        stream.write_all(&bytes).await.unwrap();
        let mut sink = [0u8; 1024];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

async fn expect_protocol_break(addr: std::net::SocketAddr) -> RequestError {
    let (conn, _) = open(addr, None, &quiet()).await.expect("open");
    let error = tokio::time::timeout(BOUND, conn.send(&query("q"), &Default::default()))
        .await
        .expect("malformed answer must not hang")
        .expect_err("malformed answer");
    let reason = tokio::time::timeout(BOUND, conn.closed()).await.unwrap();
    assert!(matches!(*reason, BrokenReason::Protocol(_)), "{reason:?}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_break_the_connection() {
    // Negative body length.
    let addr = answer_first_request_with(vec![0x84, 0, 0, 0, 0x08, 0xff, 0xff, 0xff, 0xff]).await;
    let error = expect_protocol_break(addr).await;
    assert!(
        matches!(error, RequestError::ConnectionBroken(_)),
        "{error:?}"
    );

    // A request frame (no response bit) sent back at us.
    let addr = answer_first_request_with(vec![0x04, 0, 0, 0, 0x08, 0, 0, 0, 0]).await;
    expect_protocol_break(addr).await;

    // A response on a stream nobody used.
    let frame = encode_response(77, &Response::Ready, &Default::default(), None).unwrap();
    let addr = answer_first_request_with(frame).await;
    expect_protocol_break(addr).await;

    // Right stream, undecodable RESULT body.
    let addr = answer_first_request_with(vec![0x84, 0, 0, 0, 0x08, 0, 0, 0, 2, 0xde, 0xad]).await;
    let error = expect_protocol_break(addr).await;
    assert!(matches!(error, RequestError::Protocol(_)), "{error:?}");

    // A non-event on the event stream.
    let frame = encode_response(-1, &Response::Ready, &Default::default(), None).unwrap();
    let addr = answer_first_request_with(frame).await;
    expect_protocol_break(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_fails_the_heartbeat() {
    let addr = scripted_server(|mut stream| async move {
        // Swallow everything, answer nothing.
        let mut sink = [0u8; 1024];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let config = ConnectionConfig {
        heartbeat_interval: Some(Duration::from_millis(100)),
        heartbeat_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let (conn, _) = open(addr, None, &config).await.expect("open");
    let reason = tokio::time::timeout(BOUND, conn.closed())
        .await
        .expect("heartbeat never fired");
    assert_eq!(
        *reason,
        BrokenReason::HeartbeatTimeout(Duration::from_millis(200))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_handshake_timeouts() {
    // A listener that accepts but never answers the handshake.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let config = ConnectionConfig {
        connect_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let started = Instant::now();
    let err = open(addr, None, &config).await.expect_err("no handshake");
    assert!(matches!(err, ConnectionError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Nobody listening: a plain I/O error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let err = open(addr, None, &config).await.expect_err("refused");
    assert!(matches!(err, ConnectionError::Io(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_closes_the_socket() {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let addr = scripted_server(|mut stream| async move {
        let mut sink = [0u8; 1024];
        let eof = loop {
            match stream.read(&mut sink).await {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(_) => break true,
            }
        };
        let _ = done_tx.send(eof);
    })
    .await;
    let (conn, _) = open(addr, None, &quiet()).await.expect("open");
    let clone = conn.clone();
    drop(conn);
    assert!(!clone.is_broken(), "a clone keeps it open");
    drop(clone);
    let eof = tokio::time::timeout(BOUND, done_rx)
        .await
        .expect("socket left open")
        .unwrap();
    assert!(eof);
}

//! The daemon against a 3-node x 4-shard emulator: many clients through
//! one communicator cost the cluster one connection per shard plus one
//! control connection; prepared statements route with zero misroutes (and
//! converge on tablet tables); USE is per client; the daemon answers
//! system tables as one node; a malformed client frame closes only that
//! client; a client that stops reading is held to its limits; what a
//! client connection costs; TLS to the cluster (verified, mutual, by
//! server name) and its failures at startup.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/session_support/mod.rs"]
mod session_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Emulator, EmulatorOptions, ServerCert};
use scylla_shard::protocol::frame::{decode_response, encode_request, FrameHeader, HEADER_LEN};
use scylla_shard::protocol::{
    QueryParameters, Request, RequestExtensions, Response, ResultBody, Value,
};
use scylla_shard::session::{Session, SessionConfig, Statement};
use session_support::{routing, run, STEP};

const NODES: usize = 3;
const SHARDS: u16 = 4;
const WORKERS: usize = 16;
const ROWS_PER_WORKER: i32 = 50;

/// A running daemon, killed (by its pid) on drop, as is the daemon it
/// handed its sockets over to.
struct Communicator {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
    /// Its stderr (and its successor's) so far.
    output: std::sync::Arc<std::sync::Mutex<String>>,
    successor: Option<u32>,
}

impl Communicator {
    fn start(emulator: &Emulator, extra: &[&str]) -> Communicator {
        Communicator::start_to(emulator, emulator.addr(0), extra)
    }

    /// A daemon whose contact point (and cluster port) is `contact`.
    fn start_to(emulator: &Emulator, contact: SocketAddr, extra: &[&str]) -> Communicator {
        let dir = std::env::temp_dir().join(format!(
            "sshard-communicator-{}-{}",
            std::process::id(),
            emulator.node_ip(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("cql.sock");
        let mut child = Command::new(env!("CARGO_BIN_EXE_scylla-communicator"))
            .args(["--cluster-contact-points", &contact.to_string()])
            .args(["--cluster-port", &contact.port().to_string()])
            .args(["--listen-unix", socket.to_str().unwrap()])
            .args(["--log-level", "warn"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start scylla-communicator");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let seen = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("scylla-communicator: ready") {
                    let _ = tx.send(Ok(()));
                }
                let mut seen = seen.lock().unwrap();
                seen.push_str(&line);
                seen.push('\n');
            }
            let _ = tx.send(Err(seen.lock().unwrap().clone()));
        });
        match rx.recv_timeout(STEP) {
            Ok(Ok(())) => {}
            Ok(Err(output)) => panic!("the communicator stopped: {output}"),
            Err(_) => panic!("the communicator was not ready within {STEP:?}"),
        }
        Communicator {
            child,
            socket,
            dir,
            output,
            successor: None,
        }
    }

    fn config(&self) -> SessionConfig {
        SessionConfig {
            communicator: Some(self.socket.to_str().unwrap().to_owned()),
            ..SessionConfig::default()
        }
    }
}

impl Drop for Communicator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = self.successor {
            signal(pid, "KILL");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `kill -NAME` to `pid`.
fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive (its status line says Z).
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Polls `done` every 20 ms until it holds or `STEP` passes.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + STEP;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Sum of `emulator_connections_current` samples per node (the metric has
/// a label per shard).
fn connections_now(emulator: &Emulator) -> f64 {
    let mut total = 0.0;
    for i in 0..emulator.nodes {
        for line in emulator.metrics(i).lines() {
            if line.starts_with("emulator_connections_current") {
                total += line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
    }
    total
}

async fn connect(communicator: &Communicator) -> Session {
    tokio::time::timeout(STEP, Session::connect(communicator.config()))
        .await
        .expect("connect within the step")
        .expect("connect through the communicator")
}

fn int(v: i32) -> Value {
    Value::Set(v.to_be_bytes().to_vec())
}

/// One raw CQL client on the daemon's socket.
struct RawClient(UnixStream);

impl RawClient {
    fn connect(socket: &Path) -> RawClient {
        let stream = UnixStream::connect(socket).unwrap();
        stream.set_read_timeout(Some(STEP)).unwrap();
        RawClient(stream)
    }

    fn send(&mut self, stream: i16, request: &Request) {
        let frame = encode_request(stream, request, &RequestExtensions::default(), None).unwrap();
        self.0.write_all(&frame).unwrap();
    }

    /// The next response, or `None` when the daemon closed the socket.
    fn receive(&mut self) -> Option<(i16, Response)> {
        let mut head = [0u8; HEADER_LEN];
        self.0.read_exact(&mut head).ok()?;
        let header = FrameHeader::parse(&head).unwrap();
        let mut body = vec![0u8; header.body_len];
        self.0.read_exact(&mut body).unwrap();
        let (_, response) = decode_response(&header, &body, None).unwrap();
        Some((header.stream, response))
    }

    fn query(&mut self, stream: i16, text: &str) -> Response {
        self.send(
            stream,
            &Request::Query {
                query: text.into(),
                params: QueryParameters::default(),
            },
        );
        let (at, response) = self.receive().expect("a response");
        assert_eq!(at, stream, "the client's stream id comes back");
        response
    }

    fn startup(&mut self) {
        self.send(7, &Request::Options);
        let Some((7, Response::Supported { options })) = self.receive() else {
            panic!("OPTIONS not answered with SUPPORTED")
        };
        assert!(
            options.iter().all(|(k, _)| !k.starts_with("SCYLLA")),
            "no Scylla sharding keys are advertised: {options:?}"
        );
        self.send(
            8,
            &Request::Startup {
                options: vec![("CQL_VERSION".into(), "3.0.0".into())],
            },
        );
        assert!(matches!(self.receive(), Some((8, Response::Ready))));
    }
}

/// Run by `sixteen_workers_share_one_pool` in a child process.
#[tokio::test]
#[ignore = "a worker process of sixteen_workers_share_one_pool"]
async fn worker() {
    let socket = std::env::var("SSHARD_TEST_COMMUNICATOR").expect("the socket to use");
    let index: i32 = std::env::var("SSHARD_TEST_WORKER")
        .unwrap()
        .parse()
        .unwrap();
    let table = std::env::var("SSHARD_TEST_TABLE").expect("the table to use");
    let session = Session::connect(SessionConfig {
        communicator: Some(socket),
        ..SessionConfig::default()
    })
    .await
    .expect("connect through the communicator");
    let insert = session
        .prepare(&format!("INSERT INTO {table} (k, w, v) VALUES (?, ?, ?)"))
        .await
        .unwrap();
    for i in 0..ROWS_PER_WORKER {
        let mut statement = Statement::prepared(insert.clone());
        statement.values = vec![int(index * 1000 + i), int(index), int(i)];
        session.execute(&statement).await.expect("insert");
    }
    let select = session
        .prepare(&format!("SELECT v FROM {table} WHERE k = ?"))
        .await
        .unwrap();
    for i in 0..ROWS_PER_WORKER {
        let mut statement = Statement::prepared(select.clone());
        statement.values = vec![int(index * 1000 + i)];
        let result = session.execute(&statement).await.expect("select");
        let rows = result.rows.expect("rows");
        assert_eq!(rows.len(), 1, "row {i} of worker {index}");
    }
    session.close().await;
}

/// Starts `WORKERS` worker processes at once on `table` (worker `i` writes
/// and reads keys `first + i * 1000 ..`), waits for them all and returns
/// the routing they caused.
async fn run_workers(
    emulator: &Emulator,
    communicator: &Communicator,
    table: &str,
    first: i32,
) -> session_support::Routing {
    let before = routing(emulator);
    let workers: Vec<Child> = (0..WORKERS)
        .map(|i| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "worker", "--ignored", "--quiet"])
                .env("SSHARD_TEST_COMMUNICATOR", &communicator.socket)
                .env("SSHARD_TEST_WORKER", (first + i as i32).to_string())
                .env("SSHARD_TEST_TABLE", table)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    let outcomes = tokio::task::spawn_blocking(move || {
        workers
            .into_iter()
            .map(|w| w.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (i, out) in outcomes.iter().enumerate() {
        assert!(
            out.status.success(),
            "worker {i} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let delta = routing(emulator).since(&before);
    assert!(
        delta.routable >= (WORKERS as f64) * f64::from(ROWS_PER_WORKER) * 2.0,
        "every prepared request was routable: {delta:?}"
    );
    delta
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_workers_share_one_pool() {
    let emulator = EmulatorOptions::new(NODES, SHARDS).start();
    let communicator = Communicator::start(&emulator, &[]);
    let session = connect(&communicator).await;
    run(&session, "CREATE KEYSPACE cks WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 2} AND tablets = {'enabled': false}").await;
    run(
        &session,
        "CREATE TABLE cks.t (k int PRIMARY KEY, w int, v int)",
    )
    .await;

    let delta = run_workers(&emulator, &communicator, "cks.t", 0).await;
    assert_eq!(delta.misrouted(), 0.0, "{delta:?}");
    // One connection per shard of every node, plus the control connection,
    // whatever the number of workers.
    let open = connections_now(&emulator);
    assert_eq!(
        open,
        (NODES * usize::from(SHARDS) + 1) as f64,
        "cluster connections"
    );

    let count = run(&session, "SELECT COUNT(*) FROM cks.t").await;
    let rows = count.rows.expect("rows");
    assert_eq!(rows.len(), 1);
    session.close().await;
}

/// On a tablet table the daemon's one session learns the tablets for every
/// worker: the first workers' requests misroute at most twice per tablet
/// (the library's bound at any concurrency), the next workers' none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_workers_converge_on_a_tablet_table() {
    const TABLETS: usize = 8;
    let emulator = EmulatorOptions::new(NODES, SHARDS).arg("--tablets").start();
    let communicator = Communicator::start(&emulator, &[]);
    let session = connect(&communicator).await;
    run(&session, &format!("CREATE KEYSPACE tks WITH replication = {{'class': 'NetworkTopologyStrategy', 'replication_factor': 2}} AND tablets = {{'enabled': true, 'initial': {TABLETS}}}")).await;
    run(
        &session,
        "CREATE TABLE tks.t (k int PRIMARY KEY, w int, v int)",
    )
    .await;

    let learning = run_workers(&emulator, &communicator, "tks.t", 0).await;
    assert!(
        learning.misrouted() <= (2 * TABLETS) as f64,
        "misroutes while the daemon learns {TABLETS} tablets: {learning:?}"
    );
    let learned = run_workers(&emulator, &communicator, "tks.t", WORKERS as i32).await;
    assert_eq!(learned.misrouted(), 0.0, "once learned: {learned:?}");
    assert_eq!(
        connections_now(&emulator),
        (NODES * usize::from(SHARDS) + 1) as f64,
        "cluster connections"
    );
    session.close().await;
}

/// The resident memory of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status");
    kib * 1024
}

/// The 99th percentile of `reads` sequential reads of `statement`.
async fn p99_of_reads(
    session: &Session,
    statement: &Statement,
    reads: usize,
) -> std::time::Duration {
    let mut took = Vec::with_capacity(reads);
    for _ in 0..reads {
        let started = std::time::Instant::now();
        tokio::time::timeout(STEP, session.execute(statement))
            .await
            .expect("a read within the step")
            .expect("a read");
        took.push(started.elapsed());
    }
    took.sort();
    took[reads * 99 / 100]
}

/// A client that sends requests for large rows and never reads its socket
/// is no longer read from once its in-flight limit is taken (its requests
/// back up in its own socket), the daemon's memory stays within that
/// client's limits, and other clients are served as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_held_to_its_limits() {
    const IN_FLIGHT: usize = 16;
    const PENDING: usize = 1 << 20;
    const BLOB: usize = 256 << 10;
    // More requests than fit in a socket's buffers many times over: if the
    // daemon kept reading them, their responses would take 100,000 x BLOB.
    const FLOOD: usize = 100_000;
    let emulator = EmulatorOptions::new(NODES, SHARDS).start();
    let communicator = Communicator::start(
        &emulator,
        &[
            "--limits-max-in-flight-per-client",
            &IN_FLIGHT.to_string(),
            "--limits-max-pending-bytes-per-client",
            &PENDING.to_string(),
        ],
    );
    let session = connect(&communicator).await;
    run(&session, "CREATE KEYSPACE sks WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1} AND tablets = {'enabled': false}").await;
    run(&session, "CREATE TABLE sks.t (k int PRIMARY KEY, b blob)").await;
    let insert = session
        .prepare("INSERT INTO sks.t (k, b) VALUES (?, ?)")
        .await
        .unwrap();
    for (k, size) in [(0, BLOB), (1, 16)] {
        let mut statement = Statement::prepared(insert.clone());
        statement.values = vec![int(k), Value::Set(vec![7u8; size])];
        session.execute(&statement).await.expect("insert");
    }
    let select = session
        .prepare("SELECT b FROM sks.t WHERE k = ?")
        .await
        .unwrap();
    let mut small = Statement::prepared(select.clone());
    small.values = vec![int(1)];
    let before = p99_of_reads(&session, &small, 300).await;
    let pid = communicator.child.id();
    let rss_before = resident_bytes(pid);

    let mut slow = RawClient::connect(&communicator.socket);
    slow.startup();
    slow.0
        .set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let flooding = std::thread::spawn(move || {
        let query = Request::Query {
            query: "SELECT b FROM sks.t WHERE k = 0".into(),
            params: QueryParameters::default(),
        };
        let frame = |stream: i16| {
            encode_request(stream, &query, &RequestExtensions::default(), None).unwrap()
        };
        let sent = (0..FLOOD)
            .take_while(|&i| slow.0.write_all(&frame((i % 32_000) as i16)).is_ok())
            .count();
        (sent, slow)
    });
    let (sent, slow) = tokio::task::spawn_blocking(move || flooding.join().unwrap())
        .await
        .unwrap();
    assert!(
        sent < FLOOD,
        "the daemon stops reading a client that does not read: it took all {sent} requests"
    );
    let during = p99_of_reads(&session, &small, 300).await;
    let grown = resident_bytes(pid).saturating_sub(rss_before);
    eprintln!(
        "slow client: {sent} requests sent before its socket filled; daemon grew {} KiB; \
         other client p99 {before:?} before, {during:?} during",
        grown >> 10
    );
    // Its responses held: the pending budget plus one response per request
    // in flight, with room for the allocator and the socket buffers.
    let bound = (PENDING + IN_FLIGHT * BLOB) as u64 * 2 + (16 << 20);
    assert!(
        grown <= bound,
        "the daemon grew {grown} bytes for one slow client (bound {bound})"
    );
    assert!(
        during <= before * 4 + std::time::Duration::from_millis(50),
        "another client's p99 went from {before:?} to {during:?} beside a slow client"
    );
    // Closing the slow client gives everything back: the next client is
    // served at once.
    drop(slow);
    let mut next = RawClient::connect(&communicator.socket);
    next.startup();
    assert!(matches!(
        next.query(3, "SELECT k FROM sks.t WHERE k = 1"),
        Response::Result(ResultBody::Rows(_))
    ));
    session.close().await;
}

/// What one more client connection costs the daemon, measured over many
/// connected clients that have each run a query (the figure the README
/// states).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_client_connection_is_small() {
    const CLIENTS: usize = 400;
    const STATED_BOUND: u64 = 16 << 10;
    let emulator = EmulatorOptions::new(NODES, SHARDS).start();
    let communicator = Communicator::start(&emulator, &[]);
    let session = connect(&communicator).await;
    run(&session, "CREATE KEYSPACE mks WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1} AND tablets = {'enabled': false}").await;
    run(&session, "CREATE TABLE mks.t (k int PRIMARY KEY, v int)").await;
    run(&session, "INSERT INTO mks.t (k, v) VALUES (1, 1)").await;
    let socket = communicator.socket.clone();
    let pid = communicator.child.id();
    let (before, after) = tokio::task::spawn_blocking(move || {
        let open = |n: usize| {
            (0..n)
                .map(|_| {
                    let mut client = RawClient::connect(&socket);
                    client.startup();
                    let rows = client.query(1, "SELECT v FROM mks.t WHERE k = 1");
                    assert!(matches!(rows, Response::Result(ResultBody::Rows(_))));
                    client
                })
                .collect::<Vec<_>>()
        };
        // Warm the daemon's allocator and tasks first.
        drop(open(20));
        let before = resident_bytes(pid);
        let clients = open(CLIENTS);
        let after = resident_bytes(pid);
        drop(clients);
        (before, after)
    })
    .await
    .unwrap();
    let per_client = after.saturating_sub(before) / CLIENTS as u64;
    eprintln!("memory per client connection: {} bytes", per_client);
    assert!(
        per_client <= STATED_BOUND,
        "one client connection costs the daemon {per_client} bytes (stated: at most {STATED_BOUND})"
    );
    session.close().await;
}

/// Reads of `keys` different partitions through `session`, one at a time:
/// the slowest one.
async fn slowest_read(session: &Session, keys: i32) -> std::time::Duration {
    let select = session
        .prepare("SELECT v FROM pks.t WHERE k = ?")
        .await
        .unwrap();
    let mut slowest = std::time::Duration::ZERO;
    for k in 0..keys {
        let mut statement = Statement::prepared(select.clone());
        statement.values = vec![int(k)];
        let started = std::time::Instant::now();
        tokio::time::timeout(STEP, session.execute(&statement))
            .await
            .expect("a read within the step")
            .expect("a read");
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// The daemon's speculation policy applies to every client's reads: with
/// two of three replicas answering late, reads through a daemon that
/// speculates come back from the fast one; through one that does not,
/// those sent to a slow replica first wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemons_speculation_policy_serves_reads_from_the_fast_replica() {
    const DELAY_MS: u64 = 300;
    const KEYS: i32 = 20;
    let emulator = EmulatorOptions::new(NODES, SHARDS).start();
    let setup = Communicator::start(&emulator, &[]);
    let session = connect(&setup).await;
    run(&session, "CREATE KEYSPACE pks WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 3} AND tablets = {'enabled': false}").await;
    run(&session, "CREATE TABLE pks.t (k int PRIMARY KEY, v int)").await;
    for k in 0..KEYS {
        run(
            &session,
            &format!("INSERT INTO pks.t (k, v) VALUES ({k}, {k})"),
        )
        .await;
    }
    session.close().await;
    drop(setup);
    for node in 0..2 {
        emulator.admin(node, &format!("/admin/delay?us={}", DELAY_MS * 1000));
    }

    let speculating = Communicator::start(
        &emulator,
        &[
            "--policy-speculative-delay-ms",
            "20",
            "--policy-speculative-max-attempts",
            "3",
        ],
    );
    let session = connect(&speculating).await;
    let slowest = slowest_read(&session, KEYS).await;
    session.close().await;
    drop(speculating);
    assert!(
        slowest < std::time::Duration::from_millis(DELAY_MS * 2 / 3),
        "reads wait for a slow replica although the daemon speculates: {slowest:?}"
    );

    let plain = Communicator::start(&emulator, &[]);
    let session = connect(&plain).await;
    let slowest = slowest_read(&session, KEYS).await;
    session.close().await;
    assert!(
        slowest >= std::time::Duration::from_millis(DELAY_MS),
        "without speculation some read goes to a slow replica first: {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_clients_see_one_node_and_keep_their_keyspace() {
    let emulator = EmulatorOptions::new(NODES, SHARDS).start();
    let communicator = Communicator::start(&emulator, &[]);
    let session = connect(&communicator).await;
    run(&session, "CREATE KEYSPACE uks WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1}").await;
    run(&session, "CREATE TABLE uks.t (k int PRIMARY KEY, v text)").await;
    run(&session, "INSERT INTO uks.t (k, v) VALUES (1, 'one')").await;

    let mut client = RawClient::connect(&communicator.socket);
    client.startup();
    let Response::Result(ResultBody::Rows(local)) =
        client.query(11, "SELECT * FROM system.local WHERE key='local'")
    else {
        panic!("system.local not answered with rows")
    };
    assert_eq!(local.len(), 1, "one node");
    let Response::Result(ResultBody::Rows(peers)) = client.query(12, "SELECT * FROM system.peers")
    else {
        panic!("system.peers not answered with rows")
    };
    assert_eq!(peers.len(), 0, "no peers");
    // USE is this client's alone.
    assert!(
        matches!(client.query(13, "USE uks"), Response::Result(ResultBody::SetKeyspace(k)) if k == "uks")
    );
    let Response::Result(ResultBody::Rows(rows)) = client.query(14, "SELECT v FROM t WHERE k = 1")
    else {
        panic!("an unqualified SELECT after USE failed")
    };
    assert_eq!(rows.len(), 1);
    let mut other = RawClient::connect(&communicator.socket);
    other.startup();
    assert!(
        matches!(
            other.query(5, "SELECT v FROM t WHERE k = 1"),
            Response::Error(_)
        ),
        "another client did not USE the keyspace"
    );
    assert!(matches!(other.query(6, "USE nowhere"), Response::Error(_)));

    // A malformed frame closes that client only.
    let mut bad = RawClient::connect(&communicator.socket);
    bad.startup();
    bad.0.write_all(&[4, 0, 0, 1, 0x7f, 0, 0, 0, 0]).unwrap();
    assert!(matches!(bad.receive(), Some((1, Response::Error(_)))));
    assert!(bad.receive().is_none(), "the bad client is closed");
    assert!(matches!(
        client.query(15, "SELECT v FROM t WHERE k = 1"),
        Response::Result(ResultBody::Rows(_))
    ));
    run(&session, "SELECT v FROM uks.t WHERE k = 1").await;

    // An EXECUTE of an id the daemon never saw asks the client to prepare.
    client.send(
        16,
        &Request::Execute {
            id: vec![1; 16],
            params: QueryParameters::default(),
        },
    );
    assert!(matches!(client.receive(), Some((16, Response::Error(e))) if e.code == 0x2500));
    session.close().await;
}

/// SIGHUP under load: the daemon hands its listening socket to a new one
/// and drains; the library's sessions reconnect to the new daemon through
/// the same path, no acknowledged write is lost, and the cluster ends with
/// the new daemon's nodes x shards + 1 connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_hands_over_under_load_without_losing_writes() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    let emulator = EmulatorOptions::new(NODES, SHARDS).start();
    let mut communicator = Communicator::start(&emulator, &[]);
    let session = connect(&communicator).await;
    run(&session, "CREATE KEYSPACE hks WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 2} AND tablets = {'enabled': false}").await;
    run(&session, "CREATE TABLE hks.t (k int PRIMARY KEY, v int)").await;

    let acked = Arc::new(Mutex::new(Vec::<i32>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let session = connect(&communicator).await;
        let (acked, errors, stop) = (acked.clone(), errors.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let insert = session
                .prepare("INSERT INTO hks.t (k, v) VALUES (?, ?)")
                .await
                .unwrap();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = w * 1_000_000 + i;
                let mut statement = Statement::prepared(insert.clone());
                statement.values = vec![int(key), int(i)];
                statement.idempotent = true;
                match session.execute(&statement).await {
                    Ok(_) => {
                        acked.lock().unwrap().push(key);
                        i += 1;
                    }
                    // The same key again once the daemon is back.
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
            session.close().await;
        }));
    }
    let count = || acked.lock().unwrap().len();
    wait_for("200 writes before the handover", || count() >= 200).await;

    let old = communicator.child.id();
    signal(old, "HUP");
    let exited = tokio::time::timeout(STEP, async {
        loop {
            if let Some(status) = communicator.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the old daemon drains and exits");
    assert!(exited.success(), "the old daemon exited with {exited}");
    let output = communicator.output.lock().unwrap().clone();
    let successor: u32 = output
        .lines()
        .find_map(|l| l.strip_prefix("scylla-communicator: handed over to pid "))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no handover in the daemon's output:\n{output}"));
    communicator.successor = Some(successor);
    assert_ne!(successor, old);
    assert!(alive(successor), "the new daemon runs");

    // The writers go on through the new daemon.
    let at_exit = count();
    wait_for("200 writes through the new daemon", || {
        count() >= at_exit + 200
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    session.close().await;

    // Only the new daemon's pools and control connection remain.
    let expected = (NODES * usize::from(SHARDS) + 1) as f64;
    wait_for("the old daemon's connections to close", || {
        connections_now(&emulator) == expected
    })
    .await;

    // Every acknowledged write is in the cluster (read directly).
    let direct = Session::connect(session_support::config(&emulator))
        .await
        .expect("a direct session");
    let select = direct
        .prepare("SELECT v FROM hks.t WHERE k = ?")
        .await
        .unwrap();
    let keys = acked.lock().unwrap().clone();
    let mut missing = Vec::new();
    for key in &keys {
        let mut statement = Statement::prepared(select.clone());
        statement.values = vec![int(*key)];
        let rows = direct.execute(&statement).await.unwrap().rows.unwrap();
        if rows.len() != 1 {
            missing.push(*key);
        }
    }
    assert!(
        missing.is_empty(),
        "acknowledged writes missing: {missing:?}"
    );
    eprintln!(
        "handover: {} writes acknowledged, {} failed attempts retried",
        keys.len(),
        errors.load(Ordering::Relaxed)
    );
    direct.close().await;

    signal(successor, "TERM");
    wait_for("the new daemon to stop", || !alive(successor)).await;
    communicator.successor = None;
}

/// Runs a daemon that must fail to start: its exit code and stderr, within
/// `STEP` (killed by its pid, and the test failed, if it is still running).
/// Its connect timeout is longer than `STEP`: exiting in time means the
/// failure was seen, not waited out.
fn start_fails(contact: SocketAddr, extra: &[&str]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!(
        "sshard-communicator-failing-{}-{}",
        std::process::id(),
        contact.ip()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scylla-communicator"))
        .args(["--cluster-contact-points", &contact.to_string()])
        .args(["--cluster-port", &contact.port().to_string()])
        .args(["--cluster-connect-timeout-ms", "60000"])
        .args(["--listen-unix", dir.join("cql.sock").to_str().unwrap()])
        .args(["--log-level", "warn"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scylla-communicator");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = std::time::Instant::now() + STEP;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            panic!("the daemon {extra:?} still runs after {STEP:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let output = reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !output.contains("scylla-communicator: ready"),
        "{extra:?}: ready, then {status}: {output}"
    );
    (status.code().unwrap_or(-1), output)
}

/// Connections the emulator accepted on `port`, all nodes and shards.
fn accepted_on(emulator: &Emulator, port: u16) -> f64 {
    let prefix = format!("emulator_connections_accepted_total{{port=\"{port}\",");
    let mut samples = 0;
    let mut total = 0.0;
    for i in 0..emulator.nodes {
        for line in emulator.metrics(i).lines() {
            if line.starts_with(&prefix) {
                samples += 1;
                total += line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("not a sample: {line}"));
            }
        }
    }
    assert_eq!(
        samples,
        emulator.nodes * usize::from(emulator.shards),
        "a sample per node and shard for port {port}"
    );
    total
}

/// The daemon's flags for TLS to `emulator`, trusting its test CA.
fn tls_flags(emulator: &Emulator, ca: &str) -> Vec<String> {
    vec![
        "--cluster-tls".into(),
        "true".into(),
        "--cluster-tls-ca-file".into(),
        emulator.tls().path(ca).to_str().unwrap().to_owned(),
    ]
}

/// `tls_flags` with a client certificate and key (files of the test CA's
/// directory).
fn tls_flags_with_client_cert(emulator: &Emulator, cert: &str, key: &str) -> Vec<String> {
    let mut flags = tls_flags(emulator, "ca.pem");
    for (flag, file) in [
        ("--cluster-tls-cert-file", cert),
        ("--cluster-tls-key-file", key),
    ] {
        flags.push(flag.into());
        flags.push(emulator.tls().path(file).to_str().unwrap().to_owned());
    }
    flags
}

fn as_strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// Writes and reads `rows` rows of a table of its own (prepared, routed).
async fn round_trip(session: &Session, keyspace: &str, rows: i32) {
    run(session, &format!("CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'NetworkTopologyStrategy', 'replication_factor': 2}} AND tablets = {{'enabled': false}}")).await;
    run(
        session,
        &format!("CREATE TABLE {keyspace}.t (k int PRIMARY KEY, v int)"),
    )
    .await;
    let insert = session
        .prepare(&format!("INSERT INTO {keyspace}.t (k, v) VALUES (?, ?)"))
        .await
        .unwrap();
    for k in 0..rows {
        let mut statement = Statement::prepared(insert.clone());
        statement.values = vec![int(k), int(k * 7)];
        session.execute(&statement).await.expect("insert");
    }
    let select = session
        .prepare(&format!("SELECT v FROM {keyspace}.t WHERE k = ?"))
        .await
        .unwrap();
    for k in 0..rows {
        let mut statement = Statement::prepared(select.clone());
        statement.values = vec![int(k)];
        let rows = session.execute(&statement).await.unwrap().rows.unwrap();
        let decoded = session_support::decode(&rows);
        assert_eq!(
            decoded,
            vec![vec![Some(scylla_shard::protocol::CqlValue::Int(k * 7))]],
            "row {k}"
        );
    }
}

/// The cluster listens with TLS: the daemon's every connection is TLS
/// (none reaches the plain ports), clients through it write and read, and
/// the cluster sees nodes x shards + 1 connections. A daemon without TLS
/// to the same port stops with an error instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_cluster_serves_clients() {
    let emulator = EmulatorOptions::new(NODES, SHARDS)
        .tls(ServerCert::Valid, false)
        .start();
    let flags = tls_flags(&emulator, "ca.pem");
    let communicator = Communicator::start_to(&emulator, emulator.tls_addr(0), &as_strs(&flags));
    let session = connect(&communicator).await;
    round_trip(&session, "tks", 40).await;
    // A second client, raw CQL on the socket, reads what the first wrote.
    let mut raw = RawClient::connect(&communicator.socket);
    raw.startup();
    let Response::Result(ResultBody::Rows(rows)) = raw.query(3, "SELECT v FROM tks.t WHERE k = 5")
    else {
        panic!("the raw client's SELECT failed")
    };
    assert_eq!(rows.len(), 1);

    let expected = (NODES * usize::from(SHARDS) + 1) as f64;
    wait_for("nodes x shards + 1 cluster connections", || {
        connections_now(&emulator) == expected
    })
    .await;
    // USE: the daemon's connection in the keyspace is TLS too.
    let mut in_keyspace = RawClient::connect(&communicator.socket);
    in_keyspace.startup();
    assert!(matches!(
        in_keyspace.query(4, "USE tks"),
        Response::Result(ResultBody::SetKeyspace(_))
    ));
    let Response::Result(ResultBody::Rows(rows)) =
        in_keyspace.query(5, "SELECT v FROM t WHERE k = 6")
    else {
        panic!("an unqualified SELECT after USE failed")
    };
    assert_eq!(rows.len(), 1);
    let tls = emulator.tls();
    assert!(accepted_on(&emulator, tls.port) >= 1.0);
    assert_eq!(
        accepted_on(&emulator, tls.shard_aware_port),
        (NODES * (usize::from(SHARDS) - 1)) as f64,
        "every shard but the first through the shard-aware TLS port"
    );
    for plain in [emulator.port, emulator.shard_aware_port] {
        assert_eq!(accepted_on(&emulator, plain), 0.0, "plain port {plain}");
    }
    session.close().await;
    drop((raw, in_keyspace));
    drop(communicator);

    // Plain CQL to the TLS port: refused at startup, not hung.
    let (code, output) = start_fails(emulator.tls_addr(0), &[]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("cannot connect to the cluster"), "{output}");
}

/// A CA that did not sign the nodes' certificates: the daemon exits with
/// the TLS error, naming the certificate problem, at once. Unreadable and
/// bad PEM files stop it before it connects, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_stops_the_daemon_with_a_tls_error() {
    let emulator = EmulatorOptions::new(NODES, SHARDS)
        .tls(ServerCert::Valid, false)
        .start();
    let contact = emulator.tls_addr(0);
    let (code, output) = start_fails(contact, &as_strs(&tls_flags(&emulator, "other-ca.pem")));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("cannot connect to the cluster"), "{output}");
    assert!(output.contains("TLS handshake failed"), "{output}");
    assert!(output.contains("UnknownIssuer"), "{output}");

    let tls = emulator.tls();
    let missing = tls.path("missing.pem");
    let missing = missing.to_str().unwrap();
    let (code, output) = start_fails(
        contact,
        &["--cluster-tls", "true", "--cluster-tls-ca-file", missing],
    );
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains(&format!("cluster.tls_ca_file: cannot read {missing}")),
        "{output}"
    );
    // A key where the CA should be.
    let key = tls.path("server-key.pem");
    let (code, output) = start_fails(
        contact,
        &[
            "--cluster-tls",
            "true",
            "--cluster-tls-ca-file",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("cluster.tls_ca_file") && output.contains("no CERTIFICATE"),
        "{output}"
    );
    // Another certificate's key.
    let flags = tls_flags_with_client_cert(&emulator, "client.pem", "server-key.pem");
    let (code, output) = start_fails(contact, &as_strs(&flags));
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("cluster.tls: client certificate and key"),
        "{output}"
    );
    for plain in [emulator.port, emulator.shard_aware_port] {
        assert_eq!(accepted_on(&emulator, plain), 0.0, "plain port {plain}");
    }
}

/// Mutual TLS, and certificates that name the cluster rather than the
/// nodes' addresses: the client certificate and the server name are what
/// it takes, and each missing one is a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_and_the_server_name_through_the_daemon() {
    let emulator = EmulatorOptions::new(NODES, SHARDS)
        .tls(ServerCert::OtherAddresses, true)
        .start();
    let contact = emulator.tls_addr(0);
    let by_name = ["--cluster-tls-server-name", "scylla.test"];

    // No client certificate.
    let mut flags = tls_flags(&emulator, "ca.pem");
    flags.extend(by_name.map(String::from));
    let (code, output) = start_fails(contact, &as_strs(&flags));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("requires a client certificate"), "{output}");

    let mut flags = tls_flags_with_client_cert(&emulator, "client.pem", "client-key.pem");
    // The certificates do not name the nodes' addresses.
    let (code, output) = start_fails(contact, &as_strs(&flags));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("not valid for name"), "{output}");
    // The chain alone is checked when asked.
    let mut chain_only = flags.clone();
    chain_only.extend(["--cluster-tls-verify-hostname", "false"].map(String::from));
    let communicator = Communicator::start_to(&emulator, contact, &as_strs(&chain_only));
    drop(communicator);

    flags.extend(by_name.map(String::from));
    let communicator = Communicator::start_to(&emulator, contact, &as_strs(&flags));
    let session = connect(&communicator).await;
    round_trip(&session, "mks", 20).await;
    let expected = (NODES * usize::from(SHARDS) + 1) as f64;
    wait_for("nodes x shards + 1 cluster connections", || {
        connections_now(&emulator) == expected
    })
    .await;
    session.close().await;
}

//! Integration tests of `scylla_shard::pool` against the emulator over real
//! sockets: filling per shard, the shard-aware port and its fallbacks,
//! refilling after a restart without a storm, and `USE`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Emulator};
use scylla_shard::connection::{Connection, ConnectionConfig};
use scylla_shard::pool::{NodePool, PoolConfig};
use scylla_shard::protocol::{QueryParameters, Request, Response};

/// Bound of every wait on the pool.
const BOUND: Duration = Duration::from_secs(15);

fn config() -> PoolConfig {
    PoolConfig {
        connection: ConnectionConfig {
            connect_timeout: Duration::from_secs(3),
            ..ConnectionConfig::default()
        },
        ..PoolConfig::default()
    }
}

/// A pool whose reconnection backoff starts at `base` and stops at `max`.
fn pool_with_backoff(address: std::net::SocketAddr, base: Duration, max: Duration) -> NodePool {
    NodePool::new(
        address,
        Arc::new(PoolConfig {
            reconnect_base: base,
            reconnect_max: max,
            ..config()
        }),
    )
}

/// Connection counters of one node, parsed from its Prometheus text.
#[derive(Debug, Default)]
struct Counts {
    /// (port, shard) -> accepted.
    accepted: BTreeMap<(u16, u16), u64>,
    /// shard -> open now.
    current: BTreeMap<u16, u64>,
}

impl Counts {
    fn of(emulator: &Emulator) -> Counts {
        let mut counts = Counts::default();
        for line in emulator.metrics(0).lines() {
            let Some((sample, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let label = |name: &str| -> Option<u16> {
                let start = sample.find(&format!("{name}=\""))? + name.len() + 2;
                let end = start + sample[start..].find('"')?;
                sample[start..end].parse().ok()
            };
            if sample.starts_with("emulator_connections_accepted_total{") {
                if let (Some(port), Some(shard)) = (label("port"), label("shard")) {
                    counts.accepted.insert((port, shard), value as u64);
                }
            } else if sample.starts_with("emulator_connections_current{") {
                if let Some(shard) = label("shard") {
                    counts.current.insert(shard, value as u64);
                }
            }
        }
        counts
    }

    fn accepted_on(&self, port: u16) -> u64 {
        self.accepted
            .iter()
            .filter(|((p, _), _)| *p == port)
            .map(|(_, v)| v)
            .sum()
    }

    fn accepted_at(&self, port: u16, shard: u16) -> u64 {
        self.accepted.get(&(port, shard)).copied().unwrap_or(0)
    }

    fn accepted_total(&self) -> u64 {
        self.accepted.values().sum()
    }

    fn current_total(&self) -> u64 {
        self.current.values().sum()
    }
}

async fn filled(emulator: &Emulator, config: PoolConfig) -> NodePool {
    let pool = NodePool::new(emulator.addr(0), Arc::new(config));
    assert!(
        pool.wait_filled(BOUND).await,
        "pool not filled within {BOUND:?}: counts {:?}, stats {:?}; emulator stderr: {}",
        pool.connection_counts(),
        pool.stats(),
        emulator.stderr()
    );
    pool
}

/// Every shard's connection really is on that shard.
fn assert_routes_by_shard(pool: &NodePool, shards: u16) {
    for s in 0..shards {
        let conn = pool.connection(Some(s)).expect("a connection");
        assert_eq!(conn.shard(), Some(s), "connection(Some({s}))");
        assert!(!conn.is_broken());
    }
    assert!(pool.connection(None).is_some());
}

/// Waits until the emulator sees exactly `total` open connections.
async fn wait_current(emulator: &Emulator, total: u64) {
    wait_until(&format!("{total} open connections"), BOUND, || {
        Counts::of(emulator).current_total() == total
    })
    .await;
}

async fn query(conn: &Connection, text: &str) -> Response {
    let request = Request::Query {
        query: text.to_owned(),
        params: QueryParameters::default(),
    };
    tokio::time::timeout(BOUND, conn.send(&request, &Default::default()))
        .await
        .unwrap_or_else(|_| panic!("{text}: no response"))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .response
}

async fn execute(conn: &Connection, text: &str) {
    if let Response::Error(e) = query(conn, text).await {
        panic!("{text}: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_one_connection_per_shard_through_the_shard_aware_port() {
    let emulator = Emulator::start(1, 4, &[]);
    let pool = filled(&emulator, config()).await;
    assert_eq!(pool.connection_counts(), vec![1, 1, 1, 1]);
    assert_eq!(pool.nr_shards(), Some(4));
    assert!(pool.is_shard_aware());
    assert_eq!(pool.sharder().unwrap().ignore_msb(), 12);
    assert!(pool.shard_aware_port_in_use());
    assert_routes_by_shard(&pool, 4);

    let counts = Counts::of(&emulator);
    assert_eq!(counts.accepted_on(emulator.port), 1, "{counts:?}");
    assert_eq!(
        counts.accepted_on(emulator.shard_aware_port),
        3,
        "{counts:?}"
    );
    let first = (0..4)
        .find(|s| counts.accepted_at(emulator.port, *s) == 1)
        .unwrap();
    for s in 0..4 {
        let expected = u64::from(s != first);
        assert_eq!(
            counts.accepted_at(emulator.shard_aware_port, s),
            expected,
            "shard {s}: {counts:?}"
        );
        assert_eq!(counts.current.get(&s), Some(&1), "shard {s}: {counts:?}");
    }
    let stats = pool.stats();
    assert_eq!(stats.attempts, 4, "{stats:?}");
    assert_eq!(stats.connections_opened, 4, "{stats:?}");
    assert_eq!(stats.opened_shard_aware, 3, "{stats:?}");
    assert_eq!(stats.nat_detections, 0);
    assert_eq!(stats.shard_aware_failures, 0);

    // Stays put: nothing more is opened once full.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(Counts::of(&emulator).accepted_total(), 4);

    pool.close().await;
    assert!(pool.connection(None).is_none());
    wait_current(&emulator, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_connections_per_shard() {
    let emulator = Emulator::start(1, 2, &[]);
    let pool = filled(
        &emulator,
        PoolConfig {
            connections_per_shard: 3,
            ..config()
        },
    )
    .await;
    assert_eq!(pool.connection_counts(), vec![3, 3]);
    assert_routes_by_shard(&pool, 2);
    wait_current(&emulator, 6).await;
    let counts = Counts::of(&emulator);
    assert_eq!(counts.current.get(&0), Some(&3), "{counts:?}");
    assert_eq!(counts.current.get(&1), Some(&3), "{counts:?}");
    assert_eq!(counts.accepted_total(), 6, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_connection_of_the_shard_is_chosen() {
    let emulator = Emulator::start(1, 2, &[]);
    let pool = filled(
        &emulator,
        PoolConfig {
            connections_per_shard: 2,
            ..config()
        },
    )
    .await;
    // Load one connection of shard 0 with a slow request; the other one
    // must be picked while it is in flight.
    emulator.admin(0, "/admin/delay?us=300000");
    let busy = pool.connection(Some(0)).unwrap();
    let request = Request::Query {
        query: "SELECT key FROM system.local".to_owned(),
        params: QueryParameters::default(),
    };
    let slow = {
        let busy = busy.clone();
        tokio::spawn(async move { busy.send(&request, &Default::default()).await })
    };
    wait_until("request in flight", BOUND, || busy.in_flight() == 1).await;
    for _ in 0..10 {
        let picked = pool.connection(Some(0)).unwrap();
        assert_eq!(picked.in_flight(), 0);
        assert_eq!(picked.shard(), Some(0));
        assert_ne!(picked.local_addr(), busy.local_addr());
    }
    emulator.admin(0, "/admin/delay?us=0");
    slow.await.unwrap().expect("slow request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regular_port_only_still_fills_every_shard() {
    let emulator = Emulator::start(1, 4, &[]);
    let pool = filled(
        &emulator,
        PoolConfig {
            shard_aware_port: false,
            ..config()
        },
    )
    .await;
    assert_eq!(pool.connection_counts(), vec![1, 1, 1, 1]);
    assert!(!pool.shard_aware_port_in_use());
    assert_routes_by_shard(&pool, 4);
    wait_current(&emulator, 4).await;
    let counts = Counts::of(&emulator);
    assert_eq!(counts.accepted_on(emulator.shard_aware_port), 0);
    // The emulator hands the least loaded shard out, so no connection is
    // wasted (a few may be with a real, busy cluster).
    assert!(counts.accepted_on(emulator.port) >= 4, "{counts:?}");
    assert!(counts.accepted_on(emulator.port) <= 8, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_is_detected_and_the_regular_port_takes_over() {
    let emulator = Emulator::start(1, 4, &["--simulate-nat"]);
    let pool = filled(&emulator, config()).await;
    assert_eq!(pool.connection_counts(), vec![1, 1, 1, 1]);
    assert_routes_by_shard(&pool, 4);
    let stats = pool.stats();
    assert!(stats.nat_detections >= 1, "{stats:?}");
    assert!(!pool.shard_aware_port_in_use());
    wait_current(&emulator, 4).await;
    let before = Counts::of(&emulator);
    // Only the first parallel round went to the shard-aware port.
    assert!(
        before.accepted_on(emulator.shard_aware_port) <= 3,
        "{before:?}"
    );

    // A refill while blocked uses the regular port only.
    pool.connection(Some(2)).unwrap().close().await;
    wait_until("shard 2 refilled", BOUND, || {
        pool.connection_counts() == vec![1, 1, 1, 1]
            && pool.connection(Some(2)).is_some_and(|c| !c.is_broken())
    })
    .await;
    assert_routes_by_shard(&pool, 4);
    let after = Counts::of(&emulator);
    assert_eq!(
        after.accepted_on(emulator.shard_aware_port),
        before.accepted_on(emulator.shard_aware_port),
        "{after:?}"
    );
    assert!(after.accepted_on(emulator.port) > before.accepted_on(emulator.port));
    assert!(!pool.shard_aware_port_in_use());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_shard_aware_port_falls_back() {
    let emulator = Emulator::start(1, 4, &["--shard-aware-port-unreachable"]);
    let pool = filled(&emulator, config()).await;
    assert_eq!(pool.connection_counts(), vec![1, 1, 1, 1]);
    assert_routes_by_shard(&pool, 4);
    let stats = pool.stats();
    assert!(stats.shard_aware_failures >= 1, "{stats:?}");
    assert_eq!(stats.opened_shard_aware, 0, "{stats:?}");
    assert!(!pool.shard_aware_port_in_use());
    wait_current(&emulator, 4).await;
    let counts = Counts::of(&emulator);
    assert_eq!(counts.accepted_on(emulator.shard_aware_port), 0);
    assert!(counts.accepted_on(emulator.port) <= 8, "{counts:?}");

    // Remembered: a refill does not try the port again.
    let fallbacks = stats.shard_aware_failures;
    pool.connection(Some(1)).unwrap().close().await;
    wait_until("shard 1 refilled", BOUND, || {
        pool.connection(Some(1))
            .is_some_and(|c| c.shard() == Some(1) && !c.is_broken())
    })
    .await;
    assert_eq!(pool.stats().shard_aware_failures, fallbacks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_shard_node_needs_no_shard_aware_port() {
    let emulator = Emulator::start(1, 1, &[]);
    let pool = filled(
        &emulator,
        PoolConfig {
            connections_per_shard: 2,
            ..config()
        },
    )
    .await;
    assert_eq!(pool.connection_counts(), vec![2]);
    assert_eq!(pool.nr_shards(), Some(1));
    let counts = Counts::of(&emulator);
    assert_eq!(counts.accepted_on(emulator.port), 2, "{counts:?}");
    assert_eq!(counts.accepted_on(emulator.shard_aware_port), 0);
    assert_eq!(pool.connection(Some(0)).unwrap().shard(), Some(0));
    // An out-of-range shard still gets a connection.
    assert!(pool.connection(Some(7)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_removes_connections_and_refills_without_a_storm() {
    let emulator = Emulator::start(1, 4, &[]);
    let pool = filled(&emulator, config()).await;
    let old: Vec<Connection> = (0..4).map(|s| pool.connection(Some(s)).unwrap()).collect();
    let before = Counts::of(&emulator).accepted_total();

    emulator.admin(0, "/admin/restart?down_ms=500");
    wait_until("old connections broken", BOUND, || {
        old.iter().all(Connection::is_broken)
    })
    .await;
    // Removed at once: never handed out again.
    wait_until("broken connections removed", Duration::from_secs(2), || {
        pool.connection_counts().iter().sum::<usize>() == 0 || {
            (0..4).all(|s| pool.connection(Some(s)).is_none_or(|c| !c.is_broken()))
        }
    })
    .await;
    for _ in 0..50 {
        for s in 0..4 {
            if let Some(c) = pool.connection(Some(s)) {
                assert!(!c.is_broken(), "a broken connection was handed out");
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    assert!(
        pool.wait_filled(BOUND).await,
        "not refilled: {:?} {:?}",
        pool.connection_counts(),
        pool.stats()
    );
    assert_routes_by_shard(&pool, 4);
    assert!(pool.shard_aware_port_in_use(), "{:?}", pool.stats());
    wait_current(&emulator, 4).await;
    let after = Counts::of(&emulator).accepted_total();
    let stats = pool.stats();
    assert!(
        after - before <= 2 * 4 + 2,
        "{} connections accepted for a refill of 4: {stats:?}",
        after - before
    );
    // Four, or five when a refill attempt raced the restart and was
    // accepted just before the node went down (the emulator then drops it
    // when the node comes back).
    assert!((4..=6).contains(&stats.connections_broken), "{stats:?}");
    // Refused attempts while the node was down were backed off, not
    // repeated in a tight loop: 500 ms from 100 ms doubling is a handful.
    assert!(stats.failed_attempts <= 8, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_node_is_retried_with_backoff() {
    let emulator = Emulator::start(1, 2, &[]);
    let pool = pool_with_backoff(
        emulator.addr(0),
        Duration::from_millis(20),
        Duration::from_millis(200),
    );
    assert!(pool.wait_filled(BOUND).await);
    emulator.admin(0, "/admin/restart?down_ms=1500");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // 20, 40, 80, 160, 200, 200 ... ms: about ten attempts in 1.2 s, not
    // hundreds.
    let stats = pool.stats();
    assert!(stats.failed_attempts >= 3, "{stats:?}");
    assert!(stats.failed_attempts <= 15, "{stats:?}");
    assert!(pool.wait_filled(BOUND).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_keyspace_applies_to_existing_and_new_connections() {
    let emulator = Emulator::start(1, 4, &[]);
    let pool = filled(&emulator, config()).await;
    let any = pool.connection(None).unwrap();
    execute(
        &any,
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
    .await;
    execute(&any, "CREATE TABLE ks.t (k int PRIMARY KEY, v text)").await;
    execute(&any, "INSERT INTO ks.t (k, v) VALUES (1, 'one')").await;

    // Unknown keyspace: an error, and the pool is unchanged.
    assert!(pool.use_keyspace("nope").await.is_err());
    assert!(matches!(
        query(&pool.connection(Some(0)).unwrap(), "SELECT v FROM t").await,
        Response::Error(_)
    ));

    pool.use_keyspace("ks").await.expect("USE ks");
    for s in 0..4 {
        let conn = pool.connection(Some(s)).unwrap();
        execute(&conn, "SELECT v FROM t WHERE k = 1").await;
    }

    // New connections (after breaking one, and after a restart) too.
    let old = pool.connection(Some(3)).unwrap();
    old.close().await;
    wait_until("shard 3 replaced", BOUND, || {
        pool.connection(Some(3))
            .is_some_and(|c| c.shard() == Some(3) && c.local_addr() != old.local_addr())
    })
    .await;
    execute(
        &pool.connection(Some(3)).unwrap(),
        "SELECT v FROM t WHERE k = 1",
    )
    .await;

    let old: Vec<Connection> = (0..4).map(|s| pool.connection(Some(s)).unwrap()).collect();
    emulator.admin(0, "/admin/restart?down_ms=200");
    wait_until("old connections broken", BOUND, || {
        old.iter().all(Connection::is_broken)
    })
    .await;
    assert!(pool.wait_filled(BOUND).await);
    for s in 0..4 {
        execute(
            &pool.connection(Some(s)).unwrap(),
            "SELECT v FROM t WHERE k = 1",
        )
        .await;
    }

    // A keyspace in the connection settings is the pool's initial one.
    let mut settings = config();
    settings.connection.keyspace = Some("ks".to_owned());
    let second = filled(&emulator, settings).await;
    for s in 0..4 {
        execute(
            &second.connection(Some(s)).unwrap(),
            "SELECT v FROM t WHERE k = 1",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_pool_closes_its_connections() {
    let emulator = Emulator::start(1, 2, &[]);
    let pool = filled(&emulator, config()).await;
    wait_current(&emulator, 2).await;
    drop(pool);
    wait_current(&emulator, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_is_not_stormed() {
    // Nothing listens here: every attempt is refused.
    let address = "127.0.0.1:9".parse().unwrap();
    let pool = pool_with_backoff(
        address,
        Duration::from_millis(10),
        Duration::from_millis(100),
    );
    assert!(!pool.wait_any(Duration::from_millis(800)).await);
    let stats = pool.stats();
    // 10, 20, 40, 80, 100, 100 ... ms: at most a dozen in 0.8 s.
    assert!(stats.attempts >= 3 && stats.attempts <= 14, "{stats:?}");
    assert!(pool.connection(None).is_none());
    assert!(pool.connection_counts().is_empty());
    pool.close().await;
}

// ---------------------------------------------------------------------------
// Scripted nodes: servers whose shard placement the test decides.
// ---------------------------------------------------------------------------

mod fake {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use scylla_shard::protocol::frame::{decode_request, encode_response, FrameHeader, HEADER_LEN};
    use scylla_shard::protocol::{Request, Response};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// SUPPORTED options of the n-th accepted connection (0-based).
    pub type Supported = dyn Fn(usize) -> Vec<(String, Vec<String>)> + Send + Sync;

    /// A node that completes the handshake with scripted SUPPORTED options
    /// and then keeps each connection open until the client leaves.
    pub struct FakeNode {
        pub addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
        open: Arc<AtomicUsize>,
    }

    impl FakeNode {
        pub async fn start(supported: Arc<Supported>) -> FakeNode {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = Arc::new(AtomicUsize::new(0));
            let open = Arc::new(AtomicUsize::new(0));
            let (a, o) = (accepted.clone(), open.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let n = a.fetch_add(1, Ordering::SeqCst);
                    o.fetch_add(1, Ordering::SeqCst);
                    let (supported, open) = (supported.clone(), o.clone());
                    tokio::spawn(async move {
                        serve(stream, supported(n)).await;
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
            FakeNode {
                addr,
                accepted,
                open,
            }
        }

        pub fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        pub fn open(&self) -> usize {
            self.open.load(Ordering::SeqCst)
        }
    }

    async fn serve(mut stream: TcpStream, options: Vec<(String, Vec<String>)>) {
        loop {
            let mut head = [0u8; HEADER_LEN];
            if stream.read_exact(&mut head).await.is_err() {
                return;
            }
            let Ok(header) = FrameHeader::parse(&head) else {
                return;
            };
            let mut body = vec![0u8; header.body_len];
            if stream.read_exact(&mut body).await.is_err() {
                return;
            }
            let response = match decode_request(&header, &body, None) {
                Ok((_, Request::Options)) => Response::Supported {
                    options: options.clone(),
                },
                Ok((_, Request::Startup { .. })) => Response::Ready,
                _ => return,
            };
            let frame = encode_response(header.stream, &response, &Default::default(), None)
                .expect("encode");
            if stream.write_all(&frame).await.is_err() {
                return;
            }
        }
    }

    pub fn options(pairs: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_shards_gets_plain_connections() {
    let node = fake::FakeNode::start(Arc::new(|_| {
        fake::options(&[("CQL_VERSION", "3.4.5"), ("COMPRESSION", "lz4")])
    }))
    .await;
    let pool = NodePool::new(
        node.addr,
        Arc::new(PoolConfig {
            connections_per_shard: 3,
            ..config()
        }),
    );
    assert!(pool.wait_filled(BOUND).await, "{:?}", pool.stats());
    assert_eq!(pool.connection_counts(), vec![3]);
    assert_eq!(pool.nr_shards(), None);
    assert!(pool.sharder().is_none());
    assert!(!pool.is_shard_aware());
    assert!(!pool.shard_aware_port_in_use());
    let conn = pool.connection(Some(5)).expect("any connection");
    assert_eq!(conn.shard(), None);
    assert!(pool.connection(None).is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node.accepted(), 3);
    pool.close().await;
    wait_until("fake node connections closed", BOUND, || node.open() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_node_that_always_picks_one_shard_does_not_make_the_pool_spin() {
    // A 4-shard node without a shard-aware port whose regular port always
    // answers shard 0, as a cluster loaded by other clients might.
    let node = fake::FakeNode::start(Arc::new(|_| {
        fake::options(&[
            ("SCYLLA_SHARD", "0"),
            ("SCYLLA_NR_SHARDS", "4"),
            ("SCYLLA_SHARDING_IGNORE_MSB", "12"),
        ])
    }))
    .await;
    let pool = pool_with_backoff(
        node.addr,
        Duration::from_millis(100),
        Duration::from_secs(10),
    );
    assert!(pool.wait_any(BOUND).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let early = node.accepted();
    // Rounds at about 0, 0.1, 0.3, 0.7, 1.5 s, each a few connections up to
    // the parking cap: far from a spin.
    assert!(
        early <= 70,
        "{early} connections in 1.5 s: {:?}",
        pool.stats()
    );
    assert_eq!(pool.connection_counts(), vec![1, 0, 0, 0]);
    // Parked connections are not handed out; shard 2 falls back to shard 0.
    assert_eq!(pool.connection(Some(2)).unwrap().shard(), Some(0));
    assert!(!pool.wait_filled(Duration::from_millis(10)).await);
    // The delay keeps growing: the next 1.5 s see at most two rounds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = node.accepted() - early;
    assert!(late <= 30, "{late} more connections: {:?}", pool.stats());
    // Nothing beyond the pool and its parking cap stays open.
    assert!(node.open() <= 1 + 8 + 3, "{} open", node.open());
    pool.close().await;
    wait_until("fake node connections closed", BOUND, || node.open() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_now_cuts_the_backoff_short() {
    let emulator = Emulator::start(1, 2, &[]);
    let pool = pool_with_backoff(
        emulator.addr(0),
        Duration::from_secs(30),
        Duration::from_secs(30),
    );
    assert!(pool.wait_filled(BOUND).await);
    emulator.admin(0, "/admin/restart?down_ms=300");
    wait_until("connections gone", BOUND, || {
        pool.connection_counts().iter().sum::<usize>() == 0
    })
    .await;
    wait_until("node back up", BOUND, || {
        emulator.metric(0, "emulator_node_up") == Some(1.0)
    })
    .await;
    // Held back by a 30 s backoff: nothing comes back on its own soon.
    assert!(!pool.wait_any(Duration::from_millis(700)).await);
    pool.reconnect_now();
    assert!(
        pool.wait_filled(Duration::from_secs(5)).await,
        "{:?}",
        pool.stats()
    );
}

//! The daemon's metrics for the whole machine, in Prometheus text on an
//! HTTP port (`listen.metrics`): its own (requests and errors per front
//! end, a latency histogram, clients, in flight per client and in all,
//! refusals) followed by the session's (`scylla_shard_*`: connections and
//! requests per node and shard, retries, misroute feedback from tablets,
//! latency quantiles).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::client::Shared;

const PREFIX: &str = "scylla_communicator";
/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// The sockets clients come through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Cql,
    Json,
}

impl Front {
    fn name(self) -> &'static str {
        match self {
            Front::Cql => "cql",
            Front::Json => "json",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Default)]
struct PerFront {
    requests: AtomicU64,
    errors: AtomicU64,
    overloaded: AtomicU64,
    buckets: [AtomicU64; BUCKETS_US.len()],
    sum_us: AtomicU64,
}

/// One connected client, as the metrics show it.
struct ClientEntry {
    front: Front,
    /// The peer's pid (Unix sockets), 0 when unknown.
    pid: i32,
    in_flight: Arc<Semaphore>,
    limit: usize,
}

#[derive(Default)]
pub struct Metrics {
    fronts: [PerFront; 2],
    clients: Mutex<BTreeMap<u64, ClientEntry>>,
    next_client: AtomicU64,
    refused_clients: AtomicU64,
}

/// A client's place in the metrics, removed when dropped.
pub struct ClientHandle {
    metrics: Arc<Metrics>,
    id: u64,
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.metrics
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl Metrics {
    /// Registers a client whose in-flight requests hold permits of
    /// `in_flight` (`limit` of them in all).
    pub fn client(
        self: &Arc<Metrics>,
        front: Front,
        pid: Option<i32>,
        in_flight: Arc<Semaphore>,
        limit: usize,
    ) -> ClientHandle {
        let id = self.next_client.fetch_add(1, Ordering::Relaxed) + 1;
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id,
                ClientEntry {
                    front,
                    pid: pid.unwrap_or(0),
                    in_flight,
                    limit,
                },
            );
        ClientHandle {
            metrics: self.clone(),
            id,
        }
    }

    pub fn refused_client(&self) {
        self.refused_clients.fetch_add(1, Ordering::Relaxed);
    }

    /// A request answered after `elapsed`; `failed` if with an error.
    pub fn request(&self, front: Front, elapsed: Duration, failed: bool) {
        let f = &self.fronts[front.index()];
        f.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            f.errors.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        f.sum_us.fetch_add(us, Ordering::Relaxed);
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            f.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request refused at `limits.max_in_flight`.
    pub fn overloaded(&self, front: Front) {
        self.fronts[front.index()]
            .overloaded
            .fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, shared: &Shared) -> String {
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {PREFIX}_{name} {help}");
            let _ = writeln!(out, "# TYPE {PREFIX}_{name} {kind}");
        };
        let fronts = [Front::Cql, Front::Json];
        family(
            &mut out,
            "requests_total",
            "counter",
            "Requests answered (QUERY, PREPARE, EXECUTE, BATCH; JSON lines), by front end.",
        );
        for front in fronts {
            let f = &self.fronts[front.index()];
            let _ = writeln!(
                out,
                "{PREFIX}_requests_total{{front=\"{}\"}} {}",
                front.name(),
                f.requests.load(Ordering::Relaxed)
            );
        }
        family(
            &mut out,
            "request_errors_total",
            "counter",
            "Requests answered with an error.",
        );
        for front in fronts {
            let f = &self.fronts[front.index()];
            let _ = writeln!(
                out,
                "{PREFIX}_request_errors_total{{front=\"{}\"}} {}",
                front.name(),
                f.errors.load(Ordering::Relaxed)
            );
        }
        family(
            &mut out,
            "overloaded_total",
            "counter",
            "Requests refused with OVERLOADED at limits.max_in_flight.",
        );
        for front in fronts {
            let f = &self.fronts[front.index()];
            let _ = writeln!(
                out,
                "{PREFIX}_overloaded_total{{front=\"{}\"}} {}",
                front.name(),
                f.overloaded.load(Ordering::Relaxed)
            );
        }
        family(
            &mut out,
            "request_duration_seconds",
            "histogram",
            "Time from reading a request to its answer being queued.",
        );
        for front in fronts {
            let f = &self.fronts[front.index()];
            let name = front.name();
            let mut cumulative = 0;
            for (bound, n) in BUCKETS_US.iter().zip(&f.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{PREFIX}_request_duration_seconds_bucket{{front=\"{name}\",le=\"{}\"}} {cumulative}",
                    seconds(*bound)
                );
            }
            let count = f.requests.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{PREFIX}_request_duration_seconds_bucket{{front=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "{PREFIX}_request_duration_seconds_sum{{front=\"{name}\"}} {}",
                seconds(f.sum_us.load(Ordering::Relaxed))
            );
            let _ = writeln!(
                out,
                "{PREFIX}_request_duration_seconds_count{{front=\"{name}\"}} {count}"
            );
        }
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        family(&mut out, "clients", "gauge", "Client connections open.");
        for front in fronts {
            let n = clients.values().filter(|c| c.front == front).count();
            let _ = writeln!(out, "{PREFIX}_clients{{front=\"{}\"}} {n}", front.name());
        }
        family(
            &mut out,
            "refused_clients_total",
            "counter",
            "Client connections refused at limits.max_clients.",
        );
        let _ = writeln!(
            out,
            "{PREFIX}_refused_clients_total {}",
            self.refused_clients.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "client_in_flight",
            "gauge",
            "Requests of one client not yet answered (client: its number; pid: its process over a Unix socket, 0 otherwise).",
        );
        let mut total = 0;
        for (id, c) in clients.iter() {
            let n = c.limit.saturating_sub(c.in_flight.available_permits());
            total += n;
            let _ = writeln!(
                out,
                "{PREFIX}_client_in_flight{{front=\"{}\",client=\"{id}\",pid=\"{}\"}} {n}",
                c.front.name(),
                c.pid
            );
        }
        drop(clients);
        family(
            &mut out,
            "in_flight",
            "gauge",
            "Requests of all clients not yet answered.",
        );
        let _ = writeln!(out, "{PREFIX}_in_flight {total}");
        let (open, opened) = shared.keyspaces.counts();
        family(
            &mut out,
            "keyspace_connections",
            "gauge",
            "Connections kept in a keyspace for clients' USE.",
        );
        let _ = writeln!(out, "{PREFIX}_keyspace_connections {open}");
        family(
            &mut out,
            "keyspace_connections_opened_total",
            "counter",
            "Connections opened in a keyspace for clients' USE.",
        );
        let _ = writeln!(out, "{PREFIX}_keyspace_connections_opened_total {opened}");
        family(
            &mut out,
            "prepared_statements",
            "gauge",
            "Prepared statements the daemon knows for its clients.",
        );
        let _ = writeln!(
            out,
            "{PREFIX}_prepared_statements {}",
            shared.registry.len()
        );
        out.push_str(&shared.session.metrics().to_prometheus());
        out
    }
}

fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Serves `GET /metrics` (anything else: 404) until the daemon stops.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(512);
            let mut buf = [0u8; 512];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
            let mut words = line.split(|b| *b == b' ');
            let (method, path) = (words.next(), words.next());
            let (status, body) = match (method, path) {
                (Some(b"GET"), Some(b"/metrics")) => ("200 OK", shared.metrics.render(&shared)),
                _ => ("404 Not Found", "only GET /metrics\n".to_owned()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

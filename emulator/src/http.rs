//! The per-node HTTP endpoint: Prometheus metrics and admin actions.
//!
//! A deliberately small HTTP/1.1 server (one request per connection) so the
//! emulator needs no web framework.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scylla_shard::protocol::response::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cluster::{Cluster, Node, MAX_NODES};
use crate::server;
use crate::topology::{format_uuid, joining_node};

/// Binds the metrics port of every node.
pub async fn start(cluster: Arc<Cluster>) -> std::io::Result<()> {
    for node in cluster.nodes() {
        start_node(&cluster, &node)?;
    }
    Ok(())
}

/// Binds one node's metrics port. It keeps answering after the node is
/// removed, so its counters can still be read. Binds without awaiting:
/// the admin request that adds a node runs inside `serve`, whose future
/// could not be `Send` if it awaited a future that spawns `serve`.
pub fn start_node(cluster: &Arc<Cluster>, node: &Arc<Node>) -> std::io::Result<()> {
    let addr = node.address(cluster.config.metrics_port);
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(TcpListener::from_std)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let cluster = cluster.clone();
    let node = node.clone();
    tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(cluster.clone(), node.clone(), stream));
            }
        }
    });
    Ok(())
}

async fn serve(cluster: Arc<Cluster>, node: Arc<Node>, mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read the request head (bodies are ignored; parameters are in the query).
    let head = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break String::from_utf8_lossy(&buf[..end]).into_owned();
        }
        if buf.len() > 16 * 1024 {
            return respond(&mut stream, 431, "request head too large\n").await;
        }
    };
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, body) = route(&cluster, &node, method, path, query).await;
    respond(&mut stream, status, &body).await;
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn param<T: std::str::FromStr>(query: &str, name: &str) -> Option<T> {
    raw_param(query, name).and_then(|v| v.parse().ok())
}

fn raw_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn route(
    cluster: &Arc<Cluster>,
    node: &Arc<Node>,
    method: &str,
    path: &str,
    query: &str,
) -> (u16, String) {
    let config = &cluster.config;
    match (method, path) {
        ("GET", "/metrics") => (
            200,
            node.metrics.render(
                config.port,
                config.shard_aware_port,
                config.tls.as_ref().map(|t| (t.port, t.shard_aware_port)),
                node.is_up(),
            ),
        ),
        ("POST", "/admin/restart") => {
            let down_ms = param(query, "down_ms").unwrap_or(1000u64);
            restart(cluster.clone(), node.clone(), down_ms);
            (
                200,
                format!("node {} restarting, down for {down_ms} ms\n", node.info.ip),
            )
        }
        ("POST", "/admin/stop") => {
            stop(cluster, node);
            (200, format!("node {} stopped\n", node.info.ip))
        }
        ("POST", "/admin/start") => {
            start_again(cluster, node);
            (200, format!("node {} started\n", node.info.ip))
        }
        ("POST", "/admin/nodes/add") => {
            let dc = raw_param(query, "dc").map(str::to_owned);
            let rack = raw_param(query, "rack").map(str::to_owned);
            add_node(cluster, dc, rack).await
        }
        ("POST", p) if p.starts_with("/admin/nodes/") && p.ends_with("/remove") => {
            let index = &p["/admin/nodes/".len()..p.len() - "/remove".len()];
            match index.parse::<usize>() {
                Ok(index) => remove_node(cluster, index).await,
                Err(_) => (400, format!("bad node index {index:?}\n")),
            }
        }
        ("POST", path @ ("/admin/tablets/split" | "/admin/tablets/merge")) => {
            let split = path.ends_with("split");
            let keyspace = raw_param(query, "keyspace");
            let table = raw_param(query, "table");
            let changed = cluster.db.resize_tablets(split, keyspace, table);
            let verb = if split { "split" } else { "merged" };
            let list: Vec<String> = changed
                .iter()
                .map(|(name, count)| format!("{name}={count}"))
                .collect();
            (
                200,
                format!("{verb} {} tables: {}\n", changed.len(), list.join(" ")),
            )
        }
        ("POST", "/admin/tablets/shuffle") => {
            let moved = cluster.db.shuffle_tablets();
            (200, format!("moved {moved} tablets\n"))
        }
        ("POST", "/admin/delay") => match param::<u64>(query, "us") {
            Some(us) => {
                node.delay_us
                    .store(us, std::sync::atomic::Ordering::Relaxed);
                (
                    200,
                    format!("node {} adds {us} us per response\n", node.info.ip),
                )
            }
            None => (400, "missing ?us=N\n".into()),
        },
        ("POST", "/admin/fail") => match crate::fault::parse(query) {
            Ok((kind, consistency, count)) => {
                let text = format!(
                    "node {} answers {kind:?} to the next {count} requests at {consistency}\n",
                    node.info.ip
                );
                node.faults.set(kind, consistency, count);
                (200, text)
            }
            Err(message) => (400, format!("{message}\n")),
        },
        ("POST", "/admin/schema_lag") => match param::<u64>(query, "ms") {
            Some(ms) => {
                cluster
                    .db
                    .set_schema_lag(node.info.index, Duration::from_millis(ms));
                (
                    200,
                    format!("node {} lags {ms} ms behind schema changes\n", node.info.ip),
                )
            }
            None => (400, "missing ?ms=N\n".into()),
        },
        (
            _,
            "/metrics"
            | "/admin/restart"
            | "/admin/stop"
            | "/admin/start"
            | "/admin/nodes/add"
            | "/admin/tablets/shuffle"
            | "/admin/tablets/split"
            | "/admin/tablets/merge"
            | "/admin/delay"
            | "/admin/fail"
            | "/admin/schema_lag",
        ) => (405, "method not allowed\n".into()),
        (_, p) if p.starts_with("/admin/nodes/") && p.ends_with("/remove") => {
            (405, "method not allowed\n".into())
        }
        _ => (404, "not found\n".into()),
    }
}

/// Takes a node down: its connections drop, its listeners close, its
/// prepared statements are forgotten; the others announce it DOWN, then UP
/// again after `down_ms`.
fn restart(cluster: Arc<Cluster>, node: Arc<Node>, down_ms: u64) {
    let generation = stop(&cluster, &node);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        // A later stop, start or restart supersedes this one.
        if node.lifecycle.borrow().generation != generation {
            return;
        }
        start_again(&cluster, &node);
    });
}

/// The address events name a node by (its advertised one).
fn cql_address(cluster: &Cluster, node: &Node) -> SocketAddr {
    SocketAddr::new(
        std::net::IpAddr::V4(node.info.advertised_ip),
        cluster.config.port,
    )
}

/// Takes a node down until [`start_again`]; returns the new generation.
fn stop(cluster: &Cluster, node: &Node) -> u64 {
    if !node.is_up() {
        return node.lifecycle.borrow().generation;
    }
    let generation = node.set_up(false);
    cluster.db.set_live(node.info.index, false);
    node.prepared.lock().unwrap().clear();
    cluster.broadcast(
        Event::StatusChange {
            change: "DOWN".into(),
            address: cql_address(cluster, node),
        },
        Some(node.info.index),
    );
    generation
}

/// Brings a stopped node back; the others announce it UP.
fn start_again(cluster: &Cluster, node: &Node) {
    if node.is_up() || node.is_removed() {
        return;
    }
    node.set_up(true);
    cluster.db.set_live(node.info.index, true);
    cluster.broadcast(
        Event::StatusChange {
            change: "UP".into(),
            address: cql_address(cluster, node),
        },
        Some(node.info.index),
    );
}

/// Bootstraps a new node on the next address: listeners first (so the
/// clients told about it can connect), then its tokens and tablet
/// replicas join the ring, then the others announce NEW_NODE and UP.
async fn add_node(
    cluster: &Arc<Cluster>,
    dc: Option<String>,
    rack: Option<String>,
) -> (u16, String) {
    let _change = cluster.topology_change.lock().await;
    let index = cluster.next_index();
    if index >= MAX_NODES
        || u32::from(cluster.config.base_ip) as u64 + index as u64 > u32::MAX as u64
    {
        return (409, format!("no address left for node {index}\n"));
    }
    if let Some(dc) = &dc {
        if !cluster.config.datacenters.contains(dc) {
            return (400, format!("unknown datacenter {dc:?}\n"));
        }
    }
    let info = joining_node(&cluster.config, index, dc, rack);
    let node = cluster.push_node(info.clone());
    // Not serving until it has joined: a client may connect at once.
    node.set_up(false);
    if let Err(e) = server::start_node(cluster, &node).await {
        node.lifecycle.send_modify(|l| l.removed = true);
        return (500, format!("cannot start node {index}: {e}\n"));
    }
    if let Err(e) = start_node(cluster, &node) {
        node.lifecycle.send_modify(|l| l.removed = true);
        return (500, format!("cannot start node {index}: {e}\n"));
    }
    let moved = cluster.db.join(info.clone());
    node.set_up(true);
    let address = cql_address(cluster, &node);
    cluster.broadcast(
        Event::TopologyChange {
            change: "NEW_NODE".into(),
            address,
        },
        Some(index),
    );
    cluster.broadcast(
        Event::StatusChange {
            change: "UP".into(),
            address,
        },
        Some(index),
    );
    (
        200,
        format!(
            "added node {index} {} host_id {} dc {} rack {}; moved {moved} tablet replicas\n",
            info.ip,
            format_uuid(&info.host_id),
            info.datacenter,
            info.rack
        ),
    )
}

/// Decommissions node `index`: its ranges and tablet replicas move to the
/// others, the others announce REMOVED_NODE, then it shuts down (its
/// connections close, its listeners are gone for good).
async fn remove_node(cluster: &Arc<Cluster>, index: usize) -> (u16, String) {
    let _change = cluster.topology_change.lock().await;
    let Some(node) = cluster.node(index) else {
        return (404, format!("no node {index}\n"));
    };
    if node.is_removed() {
        return (409, format!("node {index} was removed already\n"));
    }
    let members = cluster.db.membership().member_nodes().count();
    if members <= 1 {
        return (409, "cannot remove the last node\n".into());
    }
    let moved = cluster.db.leave(index);
    cluster.broadcast(
        Event::TopologyChange {
            change: "REMOVED_NODE".into(),
            address: cql_address(cluster, &node),
        },
        Some(index),
    );
    node.lifecycle.send_modify(|l| {
        l.up = false;
        l.removed = true;
        l.generation += 1;
    });
    node.prepared.lock().unwrap().clear();
    (
        200,
        format!(
            "removed node {index} {}; moved {moved} tablet replicas\n",
            node.info.ip
        ),
    )
}

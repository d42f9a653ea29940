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

use crate::cluster::{Cluster, Lifecycle, Node};

/// Binds the metrics port of every node.
pub async fn start(cluster: Arc<Cluster>) -> std::io::Result<()> {
    for node in &cluster.nodes {
        let addr = node.address(cluster.config.metrics_port);
        let listener = TcpListener::bind(addr)
            .await
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
    }
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
    let (status, body) = route(&cluster, &node, method, path, query);
    respond(&mut stream, status, &body).await;
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
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
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

fn route(
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
            node.metrics
                .render(config.port, config.shard_aware_port, node.is_up()),
        ),
        ("POST", "/admin/restart") => {
            let down_ms = param(query, "down_ms").unwrap_or(1000u64);
            restart(cluster.clone(), node.clone(), down_ms);
            (
                200,
                format!("node {} restarting, down for {down_ms} ms\n", node.info.ip),
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
            | "/admin/tablets/shuffle"
            | "/admin/delay"
            | "/admin/schema_lag",
        ) => (405, "method not allowed\n".into()),
        _ => (404, "not found\n".into()),
    }
}

/// Takes a node down: its connections drop, its listeners close, its
/// prepared statements are forgotten; the others announce it DOWN, then UP
/// again after `down_ms`.
fn restart(cluster: Arc<Cluster>, node: Arc<Node>, down_ms: u64) {
    let generation = node.lifecycle.borrow().generation + 1;
    node.lifecycle.send_replace(Lifecycle {
        up: false,
        generation,
    });
    node.prepared.lock().unwrap().clear();
    let address = SocketAddr::new(std::net::IpAddr::V4(node.info.ip), cluster.config.port);
    cluster.broadcast(
        Event::StatusChange {
            change: "DOWN".into(),
            address,
        },
        Some(node.info.index),
    );
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        // A later restart supersedes this one.
        if node.lifecycle.borrow().generation != generation {
            return;
        }
        node.lifecycle.send_replace(Lifecycle {
            up: true,
            generation,
        });
        cluster.broadcast(
            Event::StatusChange {
                change: "UP".into(),
                address,
            },
            Some(node.info.index),
        );
    });
}

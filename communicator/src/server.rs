//! The daemon's life: connect the one session, listen on the configured
//! sockets, serve clients until SIGTERM/SIGINT, then stop accepting, let
//! requests finish within the grace period, and close the session.

use std::sync::Arc;

use scylla_shard::connection::ConnectionConfig;
use scylla_shard::session::{Session, SessionConfig};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::SignalKind;
use tokio::sync::{watch, Semaphore};

use crate::client::{self, Shared};
use crate::config::Config;
use crate::json_front;
use crate::keyspaces::KeyspaceConnections;
use crate::listeners;
use crate::local::LocalNode;
use crate::metrics::{self, Metrics};
use crate::prepared::Registry;

fn session_config(config: &Config) -> SessionConfig {
    let mut connection = ConnectionConfig {
        compression: config.compression,
        credentials: config.credentials.clone(),
        connect_timeout: config.connect_timeout,
        tablets_routing: config.tablets,
        tls: config.tls.clone(),
        application_name: Some("scylla-communicator".into()),
        ..ConnectionConfig::default()
    };
    connection.keyspace = None;
    SessionConfig {
        contact_points: config.contact_points.clone(),
        port: config.port,
        shard_aware_port: config.shard_aware_port,
        local_dc: config.local_dc.clone(),
        local_rack: config.local_rack.clone(),
        tablet_awareness: config.tablets,
        connection,
        request_timeout: config.request_timeout,
        keyspace: config.keyspace.clone(),
        prepared_cache_size: config.prepared_cache_size,
        default_retry_policy: config.retry_policy,
        default_speculative_execution: config.speculative_execution,
        // Clients bring their own timestamps (or the coordinator's clock
        // decides, as when they talk to a node).
        client_timestamps: false,
        ..SessionConfig::default()
    }
}

/// The process on the other end of a Unix socket (for the metrics).
fn peer_pid(stream: &tokio::net::UnixStream) -> Option<i32> {
    stream.peer_cred().ok().and_then(|c| c.pid())
}

pub async fn run(config: Config) -> Result<(), String> {
    // Taken first, so that no child started later inherits them.
    let mut inherited = listeners::inherited();
    let session = Session::connect(session_config(&config))
        .await
        .map_err(|e| format!("cannot connect to the cluster: {e}"))?;
    tracing::info!(
        shard_aware = session.is_shard_aware(),
        "connected to the cluster"
    );
    let node = LocalNode::of_cluster(&session, config.rpc_address, config.local_dc.as_deref());
    let keyspace_connections = KeyspaceConnections::new(
        session_config(&config).connection,
        config.keyspace_connections,
    );
    let (draining, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        registry: Registry::new(config.prepared_cache_size),
        keyspaces: keyspace_connections,
        total: Arc::new(Semaphore::new(config.max_in_flight)),
        clients: Arc::new(Semaphore::new(config.max_clients)),
        node,
        session,
        config,
        metrics: Arc::new(Metrics::default()),
        draining,
    });
    let config = &shared.config;
    // Socket files this process created (and removes when it stops).
    let mut created = Vec::new();
    let unix = match &config.unix {
        Some(listen) => {
            let (listener, made) = listeners::unix(listen, "cql", &mut inherited)?;
            if made {
                created.push(listen.path.clone());
            }
            Some(listener)
        }
        None => None,
    };
    let json_unix = match &config.json_unix {
        Some(listen) => {
            let (listener, made) = listeners::unix(listen, "json", &mut inherited)?;
            if made {
                created.push(listen.path.clone());
            }
            Some(listener)
        }
        None => None,
    };
    let tcp = match config.tcp {
        Some(addr) => Some(listeners::tcp(addr, "cql-tcp", &mut inherited).await?),
        None => None,
    };
    let metrics_listener = match config.metrics {
        Some(addr) => Some(listeners::tcp(addr, "metrics", &mut inherited).await?),
        None => None,
    };
    if !inherited.is_empty() {
        tracing::warn!(
            count = inherited.len(),
            "closing inherited sockets that match no configured listener"
        );
        inherited.clear();
    }
    // What a handover passes on.
    let mut passed = Vec::new();
    {
        use std::os::fd::AsFd;
        let sockets: [(&'static str, Option<std::os::fd::BorrowedFd<'_>>); 4] = [
            ("cql", unix.as_ref().map(|l| l.as_fd())),
            ("cql-tcp", tcp.as_ref().map(|l| l.as_fd())),
            ("json", json_unix.as_ref().map(|l| l.as_fd())),
            ("metrics", metrics_listener.as_ref().map(|l| l.as_fd())),
        ];
        for (name, fd) in sockets {
            if let Some(fd) = fd {
                passed.push((name, fd.try_clone_to_owned().map_err(|e| e.to_string())?));
            }
        }
    }
    if let Some(listen) = &config.unix {
        tracing::info!(path = %listen.path.display(), "listening (CQL, Unix)");
    }
    if let Some(listener) = metrics_listener {
        tracing::info!(addr = ?config.metrics, "serving metrics (Prometheus, HTTP)");
        tokio::spawn(metrics::serve(shared.clone(), listener));
    }
    if let Some(addr) = config.tcp {
        tracing::info!(%addr, "listening (CQL, TCP)");
    }
    if let Some(listen) = &config.json_unix {
        tracing::info!(path = %listen.path.display(), "listening (JSON lines, Unix)");
    }
    // Readiness for scripts and service managers that wait for it, and for
    // the daemon that handed its sockets over.
    eprintln!("scylla-communicator: ready");
    listeners::report_ready();

    // Boxed so that dropping it closes this process's listeners.
    let mut accepting = Box::pin(accept_all(shared.clone(), unix, tcp, json_unix));
    let signal =
        |kind| tokio::signal::unix::signal(kind).map_err(|e| format!("signal handler: {e}"));
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let handed_over = loop {
        tokio::select! {
            _ = &mut accepting => break false,
            _ = terminate.recv() => break false,
            _ = interrupt.recv() => break false,
            _ = hangup.recv() => {
                let sockets: Vec<listeners::Passed<'_>> = passed
                    .iter()
                    .map(|(name, fd)| listeners::Passed { name, fd: std::os::fd::AsFd::as_fd(fd) })
                    .collect();
                let wait = shared.config.connect_timeout.max(Duration::from_secs(30));
                match listeners::hand_over(&sockets, wait).await {
                    Ok(pid) => {
                        tracing::info!(pid, "handed the listening sockets over; draining");
                        eprintln!("scylla-communicator: handed over to pid {pid}");
                        break true;
                    }
                    Err(e) => tracing::error!(error = %e, "handover failed; still serving"),
                }
            }
        }
    };
    // Stop accepting (the next daemon, if any, has the sockets), let every
    // client's requests in flight finish, and close the clients: they
    // reconnect to the next daemon, or find the socket gone.
    drop(accepting);
    drop(passed);
    if !handed_over {
        tracing::info!("stopping: no new clients, in-flight requests may finish");
        for path in &created {
            let _ = std::fs::remove_file(path);
        }
    }
    shared.draining.send_replace(true);
    let all = u32::try_from(shared.config.max_clients).unwrap_or(u32::MAX);
    let grace = shared.config.shutdown_grace;
    if tokio::time::timeout(grace, shared.clients.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(?grace, "clients still open after the grace period; closing");
    }
    shared.keyspaces.close().await;
    shared.session.close().await;
    Ok(())
}

/// Accepts on every listener until the daemon stops.
async fn accept_all(
    shared: Arc<Shared>,
    unix: Option<UnixListener>,
    tcp: Option<TcpListener>,
    json_unix: Option<UnixListener>,
) {
    let accept_unix = async {
        let Some(listener) = unix else {
            return std::future::pending().await;
        };
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let pid = peer_pid(&stream);
                    client::spawn(shared.clone(), stream, pid)
                }
                Err(e) => accept_failed(e).await,
            }
        }
    };
    let accept_tcp = async {
        let Some(listener) = tcp else {
            return std::future::pending().await;
        };
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    client::spawn(shared.clone(), stream, None)
                }
                Err(e) => accept_failed(e).await,
            }
        }
    };
    let accept_json = async {
        let Some(listener) = json_unix else {
            return std::future::pending().await;
        };
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let pid = peer_pid(&stream);
                    json_front::spawn(shared.clone(), stream, pid)
                }
                Err(e) => accept_failed(e).await,
            }
        }
    };
    tokio::join!(accept_unix, accept_tcp, accept_json);
}

async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

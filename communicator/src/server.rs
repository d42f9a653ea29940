//! The daemon's life: connect the one session, listen on the configured
//! sockets, serve clients until SIGTERM/SIGINT, then stop accepting, let
//! requests finish within the grace period, and close the session.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use scylla_shard::connection::ConnectionConfig;
use scylla_shard::session::{Session, SessionConfig};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use crate::client::{self, Shared};
use crate::config::{Config, UnixListen};
use crate::json_front;
use crate::keyspaces::KeyspaceConnections;
use crate::local::LocalNode;
use crate::metrics::{self, Metrics};
use crate::prepared::Registry;

fn session_config(config: &Config) -> SessionConfig {
    let mut connection = ConnectionConfig {
        compression: config.compression,
        credentials: config.credentials.clone(),
        connect_timeout: config.connect_timeout,
        tablets_routing: config.tablets,
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
        // Clients bring their own timestamps (or the coordinator's clock
        // decides, as when they talk to a node).
        client_timestamps: false,
        ..SessionConfig::default()
    }
}

fn bind_unix(listen: &UnixListen) -> Result<UnixListener, String> {
    let path = &listen.path;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // A socket file left by a stopped daemon; anything else is refused.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(listen.mode))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if listen.owner.is_some() || listen.group.is_some() {
        let uid = listen.owner.as_deref().map(user_id).transpose()?;
        let gid = listen.group.as_deref().map(group_id).transpose()?;
        std::os::unix::fs::chown(path, uid, gid)
            .map_err(|e| format!("{}: chown: {e}", path.display()))?;
    }
    Ok(listener)
}

fn user_id(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse() {
        return Ok(id);
    }
    lookup_id("/etc/passwd", name).ok_or_else(|| format!("unknown user {name}"))
}

fn group_id(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse() {
        return Ok(id);
    }
    lookup_id("/etc/group", name).ok_or_else(|| format!("unknown group {name}"))
}

/// The id (third field) of `name` in a passwd-format file.
fn lookup_id(file: &str, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then(|| fields.nth(1)?.parse().ok())?
    })
}

/// The process on the other end of a Unix socket (for the metrics).
fn peer_pid(stream: &tokio::net::UnixStream) -> Option<i32> {
    stream.peer_cred().ok().and_then(|c| c.pid())
}

pub async fn run(config: Config) -> Result<(), String> {
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
    let shared = Arc::new(Shared {
        registry: Registry::new(config.prepared_cache_size),
        keyspaces: keyspace_connections,
        total: Arc::new(Semaphore::new(config.max_in_flight)),
        clients: Arc::new(Semaphore::new(config.max_clients)),
        node,
        session,
        config,
        metrics: Arc::new(Metrics::default()),
    });
    let unix = shared.config.unix.as_ref().map(bind_unix).transpose()?;
    let json_unix = shared
        .config
        .json_unix
        .as_ref()
        .map(bind_unix)
        .transpose()?;
    let tcp = match shared.config.tcp {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| format!("{addr}: {e}"))?,
        ),
        None => None,
    };
    let metrics_listener = match shared.config.metrics {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };
    if let Some(listen) = &shared.config.unix {
        tracing::info!(path = %listen.path.display(), "listening (CQL, Unix)");
    }
    if let Some(listener) = metrics_listener {
        tracing::info!(addr = ?shared.config.metrics, "serving metrics (Prometheus, HTTP)");
        tokio::spawn(metrics::serve(shared.clone(), listener));
    }
    if let Some(addr) = shared.config.tcp {
        tracing::info!(%addr, "listening (CQL, TCP)");
    }
    if let Some(listen) = &shared.config.json_unix {
        tracing::info!(path = %listen.path.display(), "listening (JSON lines, Unix)");
    }
    // Readiness for scripts and service managers that wait for it.
    eprintln!("scylla-communicator: ready");

    let accept_unix = {
        let shared = shared.clone();
        async move {
            let Some(listener) = unix else {
                return std::future::pending().await;
            };
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let pid = peer_pid(&stream);
                        client::spawn(shared.clone(), stream, pid)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        }
    };
    let accept_tcp = {
        let shared = shared.clone();
        async move {
            let Some(listener) = tcp else {
                return std::future::pending().await;
            };
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        client::spawn(shared.clone(), stream, None)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        }
    };
    let accept_json = {
        let shared = shared.clone();
        async move {
            let Some(listener) = json_unix else {
                return std::future::pending().await;
            };
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let pid = peer_pid(&stream);
                        json_front::spawn(shared.clone(), stream, pid)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        }
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("signal handler: {e}"))?;
    tokio::select! {
        _ = accept_unix => {}
        _ = accept_tcp => {}
        _ = accept_json => {}
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("stopping: no new clients, in-flight requests may finish");
    for listen in [&shared.config.unix, &shared.config.json_unix]
        .into_iter()
        .flatten()
    {
        let _ = std::fs::remove_file(&listen.path);
    }
    let all = u32::try_from(shared.config.max_in_flight).unwrap_or(u32::MAX);
    let _ =
        tokio::time::timeout(shared.config.shutdown_grace, shared.total.acquire_many(all)).await;
    shared.keyspaces.close().await;
    shared.session.close().await;
    Ok(())
}

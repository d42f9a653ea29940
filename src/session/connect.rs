//! `Session::connect`: contact points, the cluster layer, the first pools.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use super::gate::Gate;
use super::metrics::Totals;
use super::prepared_cache::PreparedCache;
use super::profile::Profiles;
use super::types::{DriverError, SessionConfig};
use super::{Inner, Session};
use crate::cluster::{Cluster, ClusterConfig, HostPolicy, OpenFailure, TabletMap};
use crate::connection::TlsError;
use crate::pool::PoolConfig;
use crate::routing::plan::LoadBalancing;

pub async fn connect(config: SessionConfig) -> Result<Session, DriverError> {
    if let Some(endpoint) = &config.communicator {
        let endpoint = endpoint.clone();
        return connect_communicator(config, &endpoint).await;
    }
    let contact_points = resolve(&config.contact_points, config.port).await?;
    let keyspace = config
        .keyspace
        .clone()
        .or_else(|| config.connection.keyspace.clone());

    let mut connection = config.connection.clone();
    connection.tablets_routing = config.tablet_awareness;
    // Pools start without a keyspace; `USE` below validates it first.
    connection.keyspace = None;
    let mut cluster_config = ClusterConfig::new(contact_points);
    cluster_config.connection = connection.clone();
    cluster_config.hosts = HostPolicy {
        filter: config.host_filter.clone(),
        translator: config.address_translator.clone(),
        map: config.address_map.clone(),
    };
    cluster_config.pool = PoolConfig {
        connections_per_shard: config.connections_per_shard,
        shard_aware_port: config.shard_aware_port,
        local_port_range: config.local_port_range,
        connection,
        ..PoolConfig::default()
    };
    let cluster = Cluster::connect(
        cluster_config,
        Arc::new(TabletMap::with_trust_window(config.tablet_trust_window)),
    )
    .await
    .map_err(connect_error)?;

    if let Err(e) = wait_for_pools(&cluster, &config).await {
        cluster.close().await;
        return Err(e);
    }
    start(config, cluster, keyspace).await
}

/// A session whose one connection goes to the communicator at `endpoint`
/// (a Unix socket path, or `host:port` of its TCP listener): no control
/// connection, no topology, no shard awareness (the daemon has them).
async fn connect_communicator(
    config: SessionConfig,
    endpoint: &str,
) -> Result<Session, DriverError> {
    let (address, unix_socket) = communicator_address(endpoint, config.port).await?;
    let keyspace = config
        .keyspace
        .clone()
        .or_else(|| config.connection.keyspace.clone());
    let mut connection = config.connection.clone();
    connection.keyspace = None;
    connection.unix_socket = unix_socket;
    let pool = PoolConfig {
        local_port_range: config.local_port_range,
        connection: connection.clone(),
        ..PoolConfig::default()
    };
    let cluster = Cluster::single_endpoint(address, pool);
    if let Err(e) = wait_for_pools(&cluster, &config).await {
        cluster.close().await;
        // Say why: one direct attempt reports the refusal (credentials,
        // protocol) or the socket error.
        return Err(
            match crate::connection::open(address, None, &connection).await {
                Ok((probe, _)) => {
                    probe.close().await;
                    e
                }
                Err(crate::connection::ConnectionError::Server(body)) => DriverError::Server(body),
                Err(why) => {
                    DriverError::NoHostAvailable(vec![format!("communicator {endpoint}: {why}")])
                }
            },
        );
    }
    start(config, cluster, keyspace).await
}

/// Where the communicator listens: a path (anything with a `/`, or
/// `unix:PATH`) is a Unix socket, named by a placeholder address;
/// otherwise `host:port` (or `host` with the session's port).
async fn communicator_address(
    endpoint: &str,
    port: u16,
) -> Result<(SocketAddr, Option<std::path::PathBuf>), DriverError> {
    let endpoint = endpoint.trim();
    if let Some(path) = endpoint
        .strip_prefix("unix:")
        .or(endpoint.contains('/').then_some(endpoint))
    {
        if path.is_empty() {
            return Err(DriverError::InvalidArgument(
                "empty communicator path".into(),
            ));
        }
        let placeholder = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0));
        return Ok((placeholder, Some(path.into())));
    }
    let address = resolve(&[endpoint.to_owned()], port).await?[0];
    Ok((address, None))
}

/// The session over a connected cluster layer, switched to `keyspace`.
async fn start(
    config: SessionConfig,
    cluster: Cluster,
    keyspace: Option<String>,
) -> Result<Session, DriverError> {
    let prepared_cache_size = config.prepared_cache_size;
    let session = Session {
        inner: Arc::new(Inner {
            load_balancing: LoadBalancing {
                local_dc: config.local_dc.clone(),
                local_rack: config.local_rack.clone(),
                permit_dc_failover: config.permit_dc_failover,
            },
            profiles: Profiles::new(&config.execution_profiles),
            config,
            cluster,
            prepared: PreparedCache::new(prepared_cache_size),
            totals: Totals::default(),
            gate: Gate::default(),
            keyspace: Mutex::new(None),
            timestamps: Default::default(),
        }),
    };
    if let Some(keyspace) = keyspace {
        if let Err(e) = session.use_keyspace(&keyspace).await {
            session.close().await;
            return Err(e);
        }
    }
    Ok(session)
}

/// Why no control connection opened: the server's own answer when every
/// node refused alike (bad credentials, unknown keyspace, protocol
/// version), so the caller sees the cause instead of a generic outage.
fn connect_error(failures: Vec<OpenFailure>) -> DriverError {
    let refusals: Vec<_> = failures.iter().map(|f| f.server_error.as_ref()).collect();
    match refusals.first() {
        Some(Some(first))
            if refusals
                .iter()
                .all(|r| r.is_some_and(|r| r.code == first.code)) =>
        {
            DriverError::Server((*first).clone())
        }
        _ => match failures.first().and_then(|f| f.tls_error.as_ref()) {
            Some(first)
                if failures
                    .iter()
                    .all(|f| f.tls_error.as_ref().is_some_and(|e| e.kind == first.kind)) =>
            {
                let reasons: Vec<_> = failures.iter().map(ToString::to_string).collect();
                DriverError::Tls(TlsError {
                    kind: first.kind,
                    message: reasons.join("; "),
                })
            }
            _ => DriverError::NoHostAvailable(failures.iter().map(ToString::to_string).collect()),
        },
    }
}

/// Returns once some pool has a connection, then gives the contact node's
/// pool (the control node, first in the state) a bounded time to fill.
async fn wait_for_pools(cluster: &Cluster, config: &SessionConfig) -> Result<(), DriverError> {
    let bound = config.connection.connect_timeout;
    let state = cluster.state_full();
    let mut waits = tokio::task::JoinSet::new();
    for pool in state.nodes().iter().filter_map(|n| n.pool()) {
        let pool = pool.clone();
        waits.spawn(async move { pool.wait_any(bound).await });
    }
    let mut any = false;
    while let Some(joined) = waits.join_next().await {
        if matches!(joined, Ok(true)) {
            any = true;
            break;
        }
    }
    drop(waits);
    if !any {
        return Err(DriverError::NoHostAvailable(
            state
                .nodes()
                .iter()
                .filter(|n| !n.filtered_out)
                .map(|n| format!("{}: no connection within {bound:?}", n.address))
                .collect(),
        ));
    }
    if let Some(pool) = state.nodes().first().and_then(|n| n.pool()) {
        if !pool.wait_filled(bound).await {
            tracing::info!(node = %pool.address(), "contact node's pool not full yet; continuing");
        }
    }
    Ok(())
}

/// `host`, `host:port`, `ip`, `[v6]:port`; names are resolved.
async fn resolve(contact_points: &[String], port: u16) -> Result<Vec<SocketAddr>, DriverError> {
    if contact_points.is_empty() {
        return Err(DriverError::InvalidArgument("no contact points".into()));
    }
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for point in contact_points {
        let point = point.trim();
        if let Ok(addr) = point.parse::<SocketAddr>() {
            out.push(addr);
            continue;
        }
        if let Ok(ip) = point
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            out.push(SocketAddr::new(ip, port));
            continue;
        }
        let target = if point.contains(':') {
            point.to_owned()
        } else {
            format!("{point}:{port}")
        };
        let resolved = tokio::net::lookup_host(target).await;
        match resolved {
            Ok(addrs) => out.extend(addrs),
            Err(e) => failures.push(format!("{point}: {e}")),
        }
    }
    out.dedup();
    if out.is_empty() {
        return Err(DriverError::NoHostAvailable(failures));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contact_points_parse() {
        let got = resolve(
            &[
                "127.0.0.5".into(),
                "127.0.0.6:1234".into(),
                "::1".into(),
                "[::1]:99".into(),
            ],
            9042,
        )
        .await
        .unwrap();
        let want: Vec<SocketAddr> = ["127.0.0.5:9042", "127.0.0.6:1234", "[::1]:9042", "[::1]:99"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        assert!(resolve(&[], 1).await.is_err());
    }
}

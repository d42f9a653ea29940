//! The control connection: one connection to one node that receives the
//! cluster's events and answers the metadata queries (`system.local`,
//! `system.peers`, `system_schema.keyspaces`, `scylla_keyspaces`).
//!
//! It carries no user traffic. When it breaks the cluster worker opens a
//! new one to another node (see `worker.rs`).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;

use super::schema::{
    parse_schema, KeyspaceInfo, SchemaRows, COLUMNS_QUERY, KEYSPACES_QUERY, SCYLLA_KEYSPACES_QUERY,
    TYPES_QUERY,
};
use super::topology::{parse_nodes, PeerInfo, LOCAL_QUERY, PEERS_QUERY};
use crate::connection::{
    open, Connection, ConnectionConfig, ConnectionError, EventType, RequestError, TlsError,
};
use crate::protocol::response::{error_code, ErrorBody, Event, ResultBody, Rows};
use crate::protocol::{Consistency, QueryParameters, Request, Response};

/// Server-side bound on metadata queries, sent as `USING TIMEOUT` to Scylla
/// so a slow node gives up instead of holding the control connection.
pub const METADATA_SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// Client-side bound on one metadata query (all its pages).
pub const METADATA_CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows per page of metadata queries.
const METADATA_PAGE_SIZE: i32 = 1000;

/// Why a metadata query failed.
#[derive(Debug, Clone)]
pub enum MetadataError {
    Request(RequestError),
    Server(ErrorBody),
    /// The answer was not the rows we asked for.
    Unexpected(String),
    /// The node did not describe itself in `system.local`.
    NoLocalRow,
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::Request(e) => write!(f, "metadata query failed: {e}"),
            MetadataError::Server(e) => {
                write!(f, "metadata query refused: 0x{:04x} {}", e.code, e.message)
            }
            MetadataError::Unexpected(what) => write!(f, "unexpected metadata answer: {what}"),
            MetadataError::NoLocalRow => f.write_str("system.local returned no usable row"),
        }
    }
}

impl std::error::Error for MetadataError {}

/// Why no control connection could be opened to one node.
#[derive(Debug, Clone)]
pub struct OpenFailure {
    pub address: SocketAddr,
    pub reason: String,
    /// What the server answered, when it refused rather than failed.
    pub server_error: Option<ErrorBody>,
    /// The TLS failure, when the TLS handshake failed.
    pub tls_error: Option<TlsError>,
}

impl fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.address, self.reason)
    }
}

/// Topology and schema as read in one refresh.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The control node first, then its peers; unique host ids.
    pub nodes: Vec<PeerInfo>,
    pub keyspaces: HashMap<String, KeyspaceInfo>,
}

/// An open control connection.
pub struct ControlConnection {
    conn: Connection,
    address: SocketAddr,
    is_scylla: bool,
}

impl ControlConnection {
    /// Connects to the first of `candidates` that accepts, and registers for
    /// topology, status and schema events. On failure returns one reason per
    /// candidate tried.
    pub async fn open(
        candidates: &[SocketAddr],
        config: &ConnectionConfig,
    ) -> Result<(ControlConnection, mpsc::Receiver<Event>), Vec<OpenFailure>> {
        let mut config = config.clone();
        // Metadata queries name their keyspaces; no USE, no tablet payloads.
        config.keyspace = None;
        config.tablets_routing = false;
        let mut failures = Vec::new();
        for &address in candidates {
            match ControlConnection::open_one(address, &config).await {
                Ok(opened) => return Ok(opened),
                Err(why) => {
                    tracing::debug!(%address, %why, "control connection attempt failed");
                    failures.push(OpenFailure {
                        address,
                        reason: why.to_string(),
                        server_error: why.server_error(),
                        tls_error: why.tls_error(),
                    });
                }
            }
        }
        Err(failures)
    }

    async fn open_one(
        address: SocketAddr,
        config: &ConnectionConfig,
    ) -> Result<(ControlConnection, mpsc::Receiver<Event>), ConnectionError> {
        let (conn, features) = open(address, None, config).await?;
        let events = conn
            .register_for_events(&[
                EventType::TopologyChange,
                EventType::StatusChange,
                EventType::SchemaChange,
            ])
            .await?;
        let control = ControlConnection {
            conn,
            address,
            is_scylla: features.is_scylla(),
        };
        Ok((control, events))
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn is_scylla(&self) -> bool {
        self.is_scylla
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Resolves when the connection breaks.
    pub async fn closed(&self) {
        self.conn.closed().await;
    }

    pub async fn close(&self) {
        self.conn.close_within(Duration::from_millis(200)).await;
    }

    /// Reads topology and schema.
    pub async fn fetch(&self) -> Result<Metadata, MetadataError> {
        let nodes = self.fetch_topology().await?;
        let keyspaces = self.fetch_keyspaces().await?;
        Ok(Metadata { nodes, keyspaces })
    }

    /// `system.local` and `system.peers`, the control node first. Peers use
    /// the CQL port we reached the control node on, at the addresses they
    /// advertise (the cluster layer translates them); the control node is
    /// where we reached it (its advertised address may not be reachable
    /// from here, as behind NAT).
    pub async fn fetch_topology(&self) -> Result<Vec<PeerInfo>, MetadataError> {
        let port = self.address.port();
        let local = self.query_all(LOCAL_QUERY).await?;
        let (mut nodes, _) = parse_nodes(&local, port, Some(self.address.ip()));
        let Some(control_node) = nodes.first_mut() else {
            return Err(MetadataError::NoLocalRow);
        };
        control_node.address = self.address;
        let peers = self.query_all(PEERS_QUERY).await?;
        let (peers, skipped) = parse_nodes(&peers, port, None);
        for why in skipped {
            tracing::warn!(reason = %why.0, "system.peers row skipped");
        }
        for peer in peers {
            if nodes.iter().all(|n| n.host_id != peer.host_id) {
                nodes.push(peer);
            }
        }
        Ok(nodes)
    }

    /// Keyspaces with their strategies, tablet flags, tables and user
    /// types. A server without `system_schema.scylla_keyspaces` (Invalid)
    /// has no tablet keyspaces.
    pub async fn fetch_keyspaces(&self) -> Result<HashMap<String, KeyspaceInfo>, MetadataError> {
        let keyspaces = self.query_all(KEYSPACES_QUERY).await?;
        let scylla = self.query_optional(SCYLLA_KEYSPACES_QUERY).await?;
        let columns = self.query_optional(COLUMNS_QUERY).await?;
        let types = self.query_optional(TYPES_QUERY).await?;
        Ok(parse_schema(&SchemaRows {
            keyspaces: &keyspaces,
            scylla_keyspaces: scylla.as_ref(),
            columns: columns.as_ref(),
            types: types.as_ref(),
        }))
    }

    /// A metadata query of a table the server may not have (Invalid: none).
    async fn query_optional(&self, text: &str) -> Result<Option<Rows>, MetadataError> {
        match self.query_all(text).await {
            Ok(rows) => Ok(Some(rows)),
            Err(MetadataError::Server(e)) if e.code == error_code::INVALID => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs a metadata query and gathers all its pages.
    async fn query_all(&self, text: &str) -> Result<Rows, MetadataError> {
        let query = if self.is_scylla {
            format!(
                "{text} USING TIMEOUT {}ms",
                METADATA_SERVER_TIMEOUT.as_millis()
            )
        } else {
            text.to_owned()
        };
        let fetch = async {
            let mut all: Option<Rows> = None;
            let mut paging_state = None;
            loop {
                let request = Request::Query {
                    query: query.clone(),
                    params: QueryParameters {
                        consistency: Consistency::One,
                        page_size: Some(METADATA_PAGE_SIZE),
                        paging_state: paging_state.take(),
                        ..Default::default()
                    },
                };
                let frame = self
                    .conn
                    .send(&request, &Default::default())
                    .await
                    .map_err(MetadataError::Request)?;
                let rows = match frame.response {
                    Response::Result(ResultBody::Rows(rows)) => rows,
                    Response::Error(e) => return Err(MetadataError::Server(e)),
                    other => {
                        return Err(MetadataError::Unexpected(format!(
                            "{:?} to {text}",
                            other.opcode()
                        )))
                    }
                };
                paging_state = rows.metadata.paging_state.clone();
                match &mut all {
                    None => all = Some(rows),
                    Some(all) => all
                        .append(rows)
                        .map_err(|e| MetadataError::Unexpected(e.to_string()))?,
                }
                if paging_state.is_none() {
                    return Ok(all.unwrap_or_default());
                }
            }
        };
        tokio::time::timeout(METADATA_CLIENT_TIMEOUT, fetch)
            .await
            .unwrap_or(Err(MetadataError::Request(RequestError::Timeout(
                METADATA_CLIENT_TIMEOUT,
            ))))
    }
}

//! The values a session takes and returns: configuration, statements,
//! prepared statements, batches, results and errors. Plain data, shared
//! by the Rust API and the C boundary.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::profile::{ExecutionProfile, ProfileName};
use super::speculation::SpeculativeExecution;
use super::RetryPolicy;
use crate::cluster::{AddressTranslator, HostFilter, StaticAddressMap};
use crate::connection::{ConnectionConfig, TlsError};
use crate::protocol::request::BatchKind;
use crate::protocol::response::{ErrorBody, PreparedMetadata, ResultMetadata, Rows, SchemaChange};
use crate::protocol::{Consistency, Value};
use crate::routing::sharder::ShardAwarePortRange;

/// Everything `Session::connect` needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Hosts to bootstrap from: `host` or `host:port`.
    pub contact_points: Vec<String>,
    /// CQL port used for every node (and for contact points without one).
    pub port: u16,
    /// Use Scylla's shard-aware port to pick each connection's shard.
    pub shard_aware_port: bool,
    /// Local ports tried for shard-aware connections.
    pub local_port_range: ShardAwarePortRange,
    /// Connections kept per shard (per node for servers without shards).
    pub connections_per_shard: usize,
    /// Prefer replicas and nodes of this datacenter (and rack).
    pub local_dc: Option<String>,
    pub local_rack: Option<String>,
    /// Whether other datacenters may serve requests when the local one can't.
    pub permit_dc_failover: bool,
    /// Nodes the session uses at all (allow and deny lists of addresses
    /// and datacenters): the others get no connection and no request.
    pub host_filter: HostFilter,
    /// Maps the addresses nodes advertise (system tables, events) to the
    /// ones to connect to (NAT, containers); asked before `address_map`.
    /// Contact points are used as given.
    pub address_translator: Option<Arc<dyn AddressTranslator>>,
    /// Fixed advertised -> reachable entries, for addresses the
    /// translator (if any) keeps.
    pub address_map: StaticAddressMap,
    /// Learn tablet replicas from `tablets-routing-v1` payloads.
    pub tablet_awareness: bool,
    /// How long a learned tablet stays trusted without a response that
    /// confirms it; after that, one request checks it before the others
    /// follow (so a migration while idle costs one misroute per tablet).
    pub tablet_trust_window: Duration,
    /// Per-connection settings: credentials, compression, connect timeout,
    /// heartbeat, application name.
    pub connection: ConnectionConfig,
    /// Default end-to-end timeout of one request (all attempts).
    pub request_timeout: Duration,
    pub default_consistency: Consistency,
    pub default_serial_consistency: Option<Consistency>,
    /// How failed attempts are retried unless a statement says.
    pub default_retry_policy: RetryPolicy,
    /// When idempotent requests are sent again meanwhile, unless a
    /// statement (or its profile) says.
    pub default_speculative_execution: SpeculativeExecution,
    /// Named option sets statements and batches choose
    /// ([`Statement::execution_profile`]); a name given twice: the last.
    pub execution_profiles: Vec<(String, ExecutionProfile)>,
    /// Default page size; 0 or negative disables paging.
    pub default_page_size: i32,
    /// Keyspace to `USE` on every connection.
    pub keyspace: Option<String>,
    /// Prepared statements the session keeps for reuse (least recently
    /// used first to go); those a caller holds are kept regardless.
    pub prepared_cache_size: usize,
    /// Use the communicator at this endpoint (a Unix socket path, or
    /// `host:port` of its TCP listener) instead of the contact points: one
    /// connection, no pools, routing done by the daemon.
    pub communicator: Option<String>,
    /// Give every request a client-side timestamp, strictly increasing
    /// within the session (else the coordinator's clock decides).
    pub client_timestamps: bool,
    /// How long a schema change waits for every node to report the new
    /// schema (zero: no wait).
    pub schema_agreement_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            contact_points: Vec::new(),
            port: 9042,
            shard_aware_port: true,
            local_port_range: ShardAwarePortRange::default(),
            connections_per_shard: 1,
            local_dc: None,
            local_rack: None,
            permit_dc_failover: true,
            host_filter: HostFilter::default(),
            address_translator: None,
            address_map: StaticAddressMap::default(),
            tablet_awareness: true,
            tablet_trust_window: crate::cluster::tablets::DEFAULT_TRUST_WINDOW,
            connection: ConnectionConfig::default(),
            request_timeout: Duration::from_secs(12),
            default_consistency: Consistency::LocalOne,
            default_serial_consistency: None,
            default_retry_policy: RetryPolicy::Default,
            default_speculative_execution: SpeculativeExecution::None,
            execution_profiles: Vec::new(),
            default_page_size: 5000,
            keyspace: None,
            prepared_cache_size: super::prepared_cache::DEFAULT_CAPACITY,
            communicator: None,
            client_timestamps: true,
            schema_agreement_timeout: Duration::from_secs(10),
        }
    }
}

/// A statement prepared on the cluster.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub id: Vec<u8>,
    pub query: String,
    /// Keyspace the statement was prepared in (for re-preparing).
    pub keyspace: Option<String>,
    /// Bind variables, partition-key indexes and the LWT flag.
    pub metadata: PreparedMetadata,
    /// Columns of the rows it returns (empty for writes).
    pub result_metadata: ResultMetadata,
}

impl Prepared {
    /// `(keyspace, table)` of the statement when its bind variables say.
    pub fn table(&self) -> Option<(&str, &str)> {
        self.metadata
            .bind_columns
            .first()
            .or(self.result_metadata.columns.first())
            .map(|c| (c.keyspace(), c.table()))
    }

    pub fn is_lwt(&self) -> bool {
        self.metadata.is_lwt
    }
}

/// What a statement runs: CQL text or a prepared statement.
#[derive(Debug, Clone)]
pub enum Query {
    Simple(String),
    Prepared(Arc<Prepared>),
}

/// How a statement names its partition when its metadata cannot (simple
/// statements), or to override what the metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRouting {
    /// The partition key's keyspace; `None`: the session's `USE` keyspace.
    pub keyspace: Option<String>,
    /// The table: needed to route on a tablet keyspace (vnode keyspaces
    /// route by keyspace alone); without it such a statement goes anywhere.
    pub table: Option<String>,
    pub key: RoutingKey,
}

/// The serialized partition key of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingKey {
    /// The key as the token hashes it: one component's bytes, or several
    /// as `u16 length + bytes + 0x00` each.
    Bytes(Vec<u8>),
    /// The statement's bound values at these positions, in partition-key
    /// order (one: the key itself; several: a composite key).
    Values(Vec<usize>),
}

/// One statement with its values and per-request options.
#[derive(Debug, Clone)]
pub struct Statement {
    pub query: Query,
    /// Values in bind-marker order (or by `value_names`).
    pub values: Vec<Value>,
    pub value_names: Option<Vec<String>>,
    pub consistency: Option<Consistency>,
    pub serial_consistency: Option<Consistency>,
    /// `None` uses the session default; 0 or negative disables paging.
    pub page_size: Option<i32>,
    pub paging_state: Option<Vec<u8>>,
    /// Client-side write timestamp (microseconds).
    pub timestamp: Option<i64>,
    /// Safe to retry or send twice.
    pub idempotent: bool,
    /// `None`: the session's default policy.
    pub retry_policy: Option<RetryPolicy>,
    /// End-to-end timeout; `None` uses the session default.
    pub timeout: Option<Duration>,
    /// `None`: the profile's, else the session's (idempotent statements
    /// only ever speculate).
    pub speculative_execution: Option<SpeculativeExecution>,
    /// The execution profile whose options apply where the statement sets
    /// none (an unknown name fails the request).
    pub execution_profile: Option<ProfileName>,
    /// Where the partition is, for token- and shard-aware routing of a
    /// simple statement (a prepared one knows from its metadata).
    pub routing: Option<StatementRouting>,
    /// Ask the server to trace the request (its id comes back in the
    /// result).
    pub tracing: bool,
}

impl Statement {
    pub fn new(query: Query) -> Statement {
        Statement {
            query,
            values: Vec::new(),
            value_names: None,
            consistency: None,
            serial_consistency: None,
            page_size: None,
            paging_state: None,
            timestamp: None,
            idempotent: false,
            retry_policy: None,
            timeout: None,
            speculative_execution: None,
            execution_profile: None,
            routing: None,
            tracing: false,
        }
    }

    pub fn simple(text: impl Into<String>) -> Statement {
        Statement::new(Query::Simple(text.into()))
    }

    pub fn prepared(prepared: Arc<Prepared>) -> Statement {
        Statement::new(Query::Prepared(prepared))
    }
}

/// Several modifications applied together.
#[derive(Debug, Clone)]
pub struct Batch {
    pub kind: BatchKind,
    /// Queries (simple or prepared) with their values; options of the
    /// individual statements other than values are ignored.
    pub statements: Vec<Statement>,
    pub consistency: Option<Consistency>,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
    pub idempotent: bool,
    /// `None`: the session's default policy.
    pub retry_policy: Option<RetryPolicy>,
    pub timeout: Option<Duration>,
    /// As [`Statement::speculative_execution`].
    pub speculative_execution: Option<SpeculativeExecution>,
    /// As [`Statement::execution_profile`].
    pub execution_profile: Option<ProfileName>,
    /// Ask the server to trace the batch.
    pub tracing: bool,
}

impl Batch {
    pub fn new(kind: BatchKind) -> Batch {
        Batch {
            kind,
            statements: Vec::new(),
            consistency: None,
            serial_consistency: None,
            timestamp: None,
            idempotent: false,
            retry_policy: None,
            timeout: None,
            speculative_execution: None,
            execution_profile: None,
            tracing: false,
        }
    }
}

/// The outcome of one request.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    /// Present for SELECTs (and LWT answers).
    pub rows: Option<Rows>,
    /// Where the next page starts, when there is one.
    pub paging_state: Option<Vec<u8>>,
    pub warnings: Vec<String>,
    pub tracing_id: Option<[u8; 16]>,
    /// Set by `USE`.
    pub keyspace: Option<String>,
    /// Set by DDL.
    pub schema_change: Option<SchemaChange>,
    /// After DDL: whether every node that is up reported the new schema
    /// within `schema_agreement_timeout` (the request waits for it).
    pub schema_in_agreement: Option<bool>,
    /// The node and shard that served the request.
    pub coordinator: Option<SocketAddr>,
    pub shard: Option<u16>,
}

impl QueryResult {
    pub fn has_more_pages(&self) -> bool {
        self.paging_state.is_some()
    }
}

/// Why a request or the session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverError {
    /// Bad input from the caller (wrong value count, unknown name...).
    InvalidArgument(String),
    /// No node could be reached (every attempt, with its reason).
    NoHostAvailable(Vec<String>),
    /// The request did not complete within its timeout.
    Timeout(Duration),
    /// The connection carrying the request died (the request may or may
    /// not have been executed).
    ConnectionBroken(String),
    /// The server answered with an error.
    Server(ErrorBody),
    /// A response that does not follow the protocol.
    Protocol(String),
    /// The session is closed or closing.
    Closed,
    /// A statement or batch names an execution profile the session's
    /// config does not have.
    UnknownExecutionProfile(String),
    /// Every node failed the TLS handshake alike (untrusted or expired
    /// certificate, wrong name, not a TLS server...).
    Tls(TlsError),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            DriverError::NoHostAvailable(reasons) => {
                write!(f, "no host available")?;
                if !reasons.is_empty() {
                    write!(f, ": {}", reasons.join("; "))?;
                }
                Ok(())
            }
            DriverError::Timeout(after) => write!(f, "request timed out after {after:?}"),
            DriverError::ConnectionBroken(why) => write!(f, "connection broken: {why}"),
            DriverError::Server(e) => write!(f, "server error 0x{:04x}: {}", e.code, e.message),
            DriverError::Protocol(what) => write!(f, "protocol error: {what}"),
            DriverError::Closed => f.write_str("the session is closed"),
            DriverError::UnknownExecutionProfile(name) => {
                write!(
                    f,
                    "no execution profile named `{name}` in the session's config"
                )
            }
            DriverError::Tls(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DriverError {}

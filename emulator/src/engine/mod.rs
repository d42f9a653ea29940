//! The statement engine: schema, data, system tables, prepared statements
//! and the routing truth. One logical copy of every table serves all nodes;
//! which node and shard *should* have served a request is computed from the
//! real token ring, replication strategies and tablet layouts.

mod availability;
mod batch;
mod bind;
mod ddl;
mod dml;
mod error;
mod functions;
mod json;
mod lwt;
pub mod membership;
mod restrictions;
mod routing;
pub mod schema;
mod select;
mod selection;
mod storage;
mod system_tables;
pub mod tablets;
mod text;
pub mod traces;
pub(crate) mod values;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cql_parser::ast::{QualifiedName, Statement};
use scylla_shard::protocol::request::{Batch, QueryParameters, Value};
use scylla_shard::protocol::response::{
    Event, Prepared, PreparedMetadata, ResultBody, SchemaChange,
};
use scylla_shard::protocol::Response;
use scylla_shard::routing::sharder::Sharder;

use crate::cluster::{Cluster, Node};
use crate::config::Config;
use crate::topology::NodeInfo;

pub use error::EngineError;
use membership::Membership;
use schema::{Keyspace, Table};

/// Per-connection state the engine reads and changes.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub shard: u16,
    pub keyspace: Option<String>,
    pub tablets_routing_v1: bool,
    pub lwt_mark: bool,
    pub registered: bool,
}

impl SessionState {
    pub fn new(shard: u16) -> SessionState {
        SessionState {
            shard,
            keyspace: None,
            tablets_routing_v1: false,
            lwt_mark: false,
            registered: false,
        }
    }
}

/// Where a routable request should have gone, versus where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingVerdict {
    pub misrouted_node: bool,
    pub misrouted_shard: bool,
}

/// The engine's answer to one request.
#[derive(Debug)]
pub struct Reply {
    pub response: Response,
    pub routing: Option<RoutingVerdict>,
    pub tablet_payload: Option<Vec<u8>>,
    pub delay_us: u64,
    pub warnings: Vec<String>,
}

impl Reply {
    pub fn new(response: Response) -> Reply {
        Reply {
            response,
            routing: None,
            tablet_payload: None,
            delay_us: 0,
            warnings: Vec::new(),
        }
    }

    pub fn error(code: i32, message: impl Into<String>) -> Reply {
        Reply::new(Response::Error(EngineError::new(code, message).0))
    }

    fn result(result: ResultBody) -> Reply {
        Reply::new(Response::Result(result))
    }

    fn from_outcome(outcome: Result<Outcome, EngineError>) -> Reply {
        match outcome {
            Ok(o) => Reply {
                response: Response::Result(o.result),
                routing: o.routing.as_ref().map(|r| r.verdict),
                tablet_payload: o.routing.and_then(|r| r.payload),
                delay_us: 0,
                warnings: o.warnings,
            },
            Err(e) => Reply::new(Response::Error(e.0)),
        }
    }
}

/// A statement result plus its routing facts.
pub struct Outcome {
    pub result: ResultBody,
    pub routing: Option<routing::RoutingFacts>,
    /// Warnings for the response frame.
    pub warnings: Vec<String>,
}

impl Outcome {
    fn plain(result: ResultBody) -> Outcome {
        Outcome {
            result,
            routing: None,
            warnings: Vec::new(),
        }
    }
}

/// A prepared statement, as stored on a node.
pub struct PreparedStatement {
    pub statement: Statement,
    /// The keyspace unqualified names resolve against.
    pub keyspace: Option<String>,
    pub metadata: PreparedMetadata,
}

pub struct Catalog {
    pub keyspaces: BTreeMap<String, Keyspace>,
}

/// Facts the engine needs from the configuration.
pub struct Settings {
    pub tablets_default: bool,
    pub initial_tablets: u32,
    pub shards: u16,
    pub datacenters: Vec<String>,
    pub cluster_name: String,
}

pub struct Database {
    pub catalog: RwLock<Catalog>,
    /// The ring as of now; replaced whole by a topology change.
    membership: RwLock<Arc<Membership>>,
    /// Whether node `i` serves requests (false while down or removed).
    live: RwLock<Vec<bool>>,
    pub sharder: Sharder,
    pub settings: Settings,
    pub schema_version: Mutex<[u8; 16]>,
    /// Nodes told to lag behind schema changes (`/admin/schema_lag`).
    schema_lags: Mutex<SchemaLags>,
}

/// Nodes that keep reporting the schema version from before a change for
/// a while after it, as a node that has not applied it yet.
#[derive(Default)]
struct SchemaLags {
    lag: HashMap<usize, Duration>,
    /// Node -> (the version it still reports, until when).
    behind: HashMap<usize, ([u8; 16], Instant)>,
}

impl Database {
    pub fn new(config: &Config, nodes: &[NodeInfo]) -> Database {
        let db = Database {
            catalog: RwLock::new(Catalog {
                keyspaces: BTreeMap::new(),
            }),
            membership: RwLock::new(Arc::new(Membership::new(
                nodes.to_vec(),
                vec![true; nodes.len()],
            ))),
            live: RwLock::new(vec![true; nodes.len()]),
            sharder: Sharder::new(config.shards, config.ignore_msb).expect("validated config"),
            settings: Settings {
                tablets_default: config.tablets,
                initial_tablets: config.initial_tablets,
                shards: config.shards,
                datacenters: config.datacenters.clone(),
                cluster_name: config.cluster_name.clone(),
            },
            schema_version: Mutex::new(schema::object_id(&["schema", "0"])),
            schema_lags: Mutex::default(),
        };
        system_tables::install(&db);
        db
    }

    /// The ring as of now.
    pub fn membership(&self) -> Arc<Membership> {
        self.membership.read().unwrap().clone()
    }

    /// How many of `nodes` serve requests now.
    pub fn live_count(&self, nodes: impl IntoIterator<Item = usize>) -> usize {
        let live = self.live.read().unwrap();
        nodes
            .into_iter()
            .filter(|&i| live.get(i).copied().unwrap_or(false))
            .count()
    }

    pub fn set_live(&self, index: usize, up: bool) {
        let mut live = self.live.write().unwrap();
        if live.len() <= index {
            live.resize(index + 1, false);
        }
        live[index] = up;
    }

    /// Bootstraps `node` into the ring: vnode ranges move to it with its
    /// tokens, and every tablet table rebalances onto it. Returns the
    /// tablet replicas moved.
    pub fn join(&self, node: NodeInfo) -> usize {
        let index = node.index;
        let next = Arc::new(self.membership().with_node(node));
        self.set_live(index, true);
        self.change_membership(next)
    }

    /// Decommissions node `index`: its vnode ranges go to the next nodes
    /// of the ring, its tablet replicas to other nodes. Returns the tablet
    /// replicas moved.
    pub fn leave(&self, index: usize) -> usize {
        let next = Arc::new(self.membership().without_node(index));
        let moved = self.change_membership(next);
        self.set_live(index, false);
        moved
    }

    /// Publishes `next` and moves tablet replicas to match it, under the
    /// catalog lock so no request sees a layout naming a node that left.
    fn change_membership(&self, next: Arc<Membership>) -> usize {
        let catalog = self.catalog.read().unwrap();
        *self.membership.write().unwrap() = next.clone();
        let members: Vec<NodeInfo> = next.member_nodes().cloned().collect();
        let mut moved = 0;
        for ks in catalog.keyspaces.values() {
            let per_dc = tablets_rf(self, ks);
            for table in ks.tables.values() {
                if let Some(layout) = &table.tablets {
                    moved += layout.lock().unwrap().rebalance(&per_dc, &members);
                }
            }
        }
        moved
    }

    pub fn schema_version(&self) -> [u8; 16] {
        *self.schema_version.lock().unwrap()
    }

    /// The schema version node `node` reports (it may lag behind).
    pub fn schema_version_of(&self, node: usize) -> [u8; 16] {
        let lags = self.schema_lags.lock().unwrap();
        match lags.behind.get(&node) {
            Some((old, until)) if Instant::now() < *until => *old,
            _ => self.schema_version(),
        }
    }

    /// Node `node` reports the old schema version for `lag` after each
    /// schema change from now on (zero: it follows at once).
    pub fn set_schema_lag(&self, node: usize, lag: Duration) {
        let mut lags = self.schema_lags.lock().unwrap();
        lags.lag.insert(node, lag);
        lags.behind.remove(&node);
    }

    fn bump_schema_version(&self) {
        let mut v = self.schema_version.lock().unwrap();
        let old = *v;
        *v = schema::object_id(&["schema", &format!("{v:?}")]);
        let mut lags = self.schema_lags.lock().unwrap();
        let now = Instant::now();
        let behind: Vec<(usize, Duration)> = lags.lag.iter().map(|(n, l)| (*n, *l)).collect();
        for (node, lag) in behind {
            if !lag.is_zero() {
                lags.behind.insert(node, (old, now + lag));
            }
        }
    }

    /// Looks a table up; unqualified names use the session keyspace.
    pub fn table(
        &self,
        session_keyspace: Option<&str>,
        name: &QualifiedName,
    ) -> Result<(Arc<Table>, bool), EngineError> {
        let keyspace = name
            .keyspace
            .as_deref()
            .or(session_keyspace)
            .ok_or_else(|| {
                error::invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
            })?;
        let catalog = self.catalog.read().unwrap();
        let ks = catalog
            .keyspaces
            .get(keyspace)
            .ok_or_else(|| error::invalid(format!("Keyspace '{keyspace}' does not exist")))?;
        let table = ks
            .tables
            .get(&name.name)
            .ok_or_else(|| error::unconfigured_table(&name.name))?;
        Ok((table.clone(), ks.is_system))
    }

    /// QUERY: parse and run a statement.
    pub fn query(
        &self,
        cluster: &Cluster,
        node: &Node,
        session: &mut SessionState,
        text: &str,
        params: &QueryParameters,
    ) -> Reply {
        let statement = match cql_parser::parse_statement(text) {
            Ok(s) => s,
            Err(e) => return Reply::new(Response::Error(error::syntax(e.to_string()).0)),
        };
        let values = match bind::order_values(&statement, params) {
            Ok(v) => v,
            Err(e) => return Reply::new(Response::Error(e.0)),
        };
        // As Scylla: a statement whose partition key is bound with markers
        // may get the tablets payload, whether prepared or not.
        let pk_bound_by_markers = session.tablets_routing_v1
            && bind::prepared_metadata(self, session.keyspace.as_deref(), &statement)
                .is_ok_and(|(metadata, _)| !metadata.pk_indexes.is_empty());
        self.run(
            cluster,
            node,
            session,
            &statement,
            None,
            &values,
            params,
            pk_bound_by_markers,
        )
    }

    /// PREPARE: parse, compute metadata, store on this node.
    pub fn prepare(&self, node: &Node, session: &SessionState, text: &str) -> Reply {
        let statement = match cql_parser::parse_statement(text) {
            Ok(s) => s,
            Err(e) => return Reply::new(Response::Error(error::syntax(e.to_string()).0)),
        };
        let keyspace = session.keyspace.clone();
        let (metadata, result_metadata) =
            match bind::prepared_metadata(self, keyspace.as_deref(), &statement) {
                Ok(m) => m,
                Err(e) => return Reply::new(Response::Error(e.0)),
            };
        let id = schema::object_id(&[keyspace.as_deref().unwrap_or(""), text]).to_vec();
        let prepared = Arc::new(PreparedStatement {
            statement,
            keyspace,
            metadata: metadata.clone(),
        });
        node.prepared.lock().unwrap().insert(id.clone(), prepared);
        Reply::result(ResultBody::Prepared(Prepared {
            id,
            metadata,
            result_metadata,
        }))
    }

    /// EXECUTE of a statement prepared on this node.
    pub fn execute(
        &self,
        cluster: &Cluster,
        node: &Node,
        session: &mut SessionState,
        id: &[u8],
        params: &QueryParameters,
    ) -> Reply {
        let Some(prepared) = node.prepared.lock().unwrap().get(id).cloned() else {
            return Reply::new(Response::Error(error::unprepared(id).0));
        };
        let values = match bind::order_values(&prepared.statement, params) {
            Ok(v) => v,
            Err(e) => return Reply::new(Response::Error(e.0)),
        };
        let mut reply = self.run(
            cluster,
            node,
            session,
            &prepared.statement,
            prepared.keyspace.as_deref(),
            &values,
            params,
            !prepared.metadata.pk_indexes.is_empty(),
        );
        if params.skip_metadata {
            if let Response::Result(ResultBody::Rows(rows)) = &mut reply.response {
                rows.metadata.columns.clear();
                rows.metadata.no_metadata = true;
            }
        }
        reply
    }

    /// BATCH of QUERY strings and prepared ids.
    pub fn batch(&self, node: &Node, session: &mut SessionState, batch: &Batch) -> Reply {
        let context = ExecContext {
            db: self,
            node,
            shard: session.shard,
            keyspace: session.keyspace.as_deref(),
            tablets_routing_v1: false,
            timestamp: batch.timestamp,
            consistency: batch.consistency,
        };
        Reply::from_outcome(batch::protocol_batch(&context, node, batch))
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        cluster: &Cluster,
        node: &Node,
        session: &mut SessionState,
        statement: &Statement,
        prepared_keyspace: Option<&str>,
        values: &[Value],
        params: &QueryParameters,
        pk_bound_by_markers: bool,
    ) -> Reply {
        let keyspace = prepared_keyspace
            .map(str::to_owned)
            .or_else(|| session.keyspace.clone());
        let binds = values::Binds { values };
        let context = ExecContext {
            db: self,
            node,
            shard: session.shard,
            keyspace: keyspace.as_deref(),
            tablets_routing_v1: session.tablets_routing_v1 && pk_bound_by_markers,
            timestamp: params.timestamp,
            consistency: params.consistency,
        };
        match statement {
            Statement::Use(name) => {
                if self.catalog.read().unwrap().keyspaces.contains_key(name) {
                    session.keyspace = Some(name.clone());
                    Reply::result(ResultBody::SetKeyspace(name.clone()))
                } else {
                    Reply::new(Response::Error(
                        error::invalid(format!("Keyspace '{name}' does not exist")).0,
                    ))
                }
            }
            Statement::Select(select) => {
                Reply::from_outcome(select::select(&context, select, &binds, params))
            }
            Statement::Insert(_)
            | Statement::InsertJson(_)
            | Statement::Update(_)
            | Statement::Delete(_) => Reply::from_outcome(dml::modify(&context, statement, &binds)),
            Statement::Batch(batch) => {
                Reply::from_outcome(batch::text_batch(&context, batch, &binds))
            }
            ddl_statement => match ddl::execute(self, keyspace.as_deref(), ddl_statement) {
                Ok(Some(change)) => {
                    self.bump_schema_version();
                    cluster.broadcast(Event::SchemaChange(change.clone()), None);
                    Reply::result(ResultBody::SchemaChange(change))
                }
                Ok(None) => Reply::result(ResultBody::Void),
                Err(e) => Reply::new(Response::Error(e.0)),
            },
        }
    }

    /// Splits (or merges) the tablets of every tablet table, or of one
    /// keyspace or table (admin `tablets/split`, `tablets/merge`).
    /// Returns `keyspace.table` and the new count of each table changed.
    pub fn resize_tablets(
        &self,
        split: bool,
        keyspace: Option<&str>,
        table: Option<&str>,
    ) -> Vec<(String, usize)> {
        let catalog = self.catalog.read().unwrap();
        let mut changed = Vec::new();
        for ks in catalog.keyspaces.values() {
            if keyspace.is_some_and(|k| k != ks.name) {
                continue;
            }
            for (name, t) in &ks.tables {
                if table.is_some_and(|n| n != name) {
                    continue;
                }
                if let Some(layout) = &t.tablets {
                    let mut layout = layout.lock().unwrap();
                    let done = if split {
                        layout.split()
                    } else {
                        layout.merge()
                    };
                    if done {
                        changed.push((format!("{}.{name}", ks.name), layout.count()));
                    }
                }
            }
        }
        changed
    }

    /// Moves every tablet of every table (admin `tablets/shuffle`).
    pub fn shuffle_tablets(&self) -> usize {
        let catalog = self.catalog.read().unwrap();
        let members: Vec<NodeInfo> = self.membership().member_nodes().cloned().collect();
        let mut moved = 0;
        for ks in catalog.keyspaces.values() {
            let per_dc = tablets_rf(self, ks);
            for table in ks.tables.values() {
                if let Some(layout) = &table.tablets {
                    let mut layout = layout.lock().unwrap();
                    layout.shuffle(&per_dc, &members);
                    moved += layout.count();
                }
            }
        }
        moved
    }
}

/// Per-datacenter replication factors a tablet layout uses.
pub(crate) fn tablets_rf(db: &Database, ks: &Keyspace) -> Vec<(String, usize)> {
    use scylla_shard::routing::replication::ReplicationStrategy;
    match &ks.strategy {
        ReplicationStrategy::NetworkTopology { per_dc } => per_dc.clone(),
        ReplicationStrategy::Simple { rf } => db
            .settings
            .datacenters
            .iter()
            .map(|dc| (dc.clone(), *rf))
            .collect(),
        _ => db
            .settings
            .datacenters
            .iter()
            .map(|dc| (dc.clone(), 1))
            .collect(),
    }
}

/// What a statement needs to know about where and how it runs.
pub struct ExecContext<'a> {
    pub db: &'a Database,
    pub node: &'a Node,
    pub shard: u16,
    pub keyspace: Option<&'a str>,
    /// The connection negotiated tablets-routing-v1 and the statement binds
    /// its partition key with markers: misroutes earn a payload.
    pub tablets_routing_v1: bool,
    /// Client-side default timestamp (microseconds).
    pub timestamp: Option<i64>,
    /// The request's consistency level (checked against live replicas).
    pub consistency: scylla_shard::protocol::Consistency,
}

/// Emits a schema-change event as a `SchemaChange` value.
pub fn schema_change(
    change: &str,
    target: &str,
    keyspace: &str,
    name: Option<&str>,
) -> SchemaChange {
    SchemaChange {
        change: change.to_owned(),
        target: target.to_owned(),
        keyspace: keyspace.to_owned(),
        name: name.map(str::to_owned),
        arg_types: Vec::new(),
    }
}

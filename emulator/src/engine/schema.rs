//! The catalog: keyspaces, tables, user types, and their conversion from the
//! parser's type expressions to protocol column types.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use cql_parser::ast::Order;
use cql_parser::types::{CqlType, NativeType};
use scylla_shard::protocol::types::{ColumnType, UdtType};
use scylla_shard::routing::replication::ReplicationStrategy;

use super::error::{invalid, EngineError};
use super::storage::TableData;
use super::tablets::TabletLayout;

/// The role of a column in its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    PartitionKey,
    Clustering,
    Static,
    Regular,
}

impl ColumnKind {
    /// The `kind` text of `system_schema.columns`.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::PartitionKey => "partition_key",
            ColumnKind::Clustering => "clustering",
            ColumnKind::Static => "static",
            ColumnKind::Regular => "regular",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ColumnSchema {
    pub name: String,
    pub ty: ColumnType,
    /// Type text as `system_schema.columns.type` shows it.
    pub type_text: String,
    pub kind: ColumnKind,
    /// Position within the partition or clustering key; -1 otherwise.
    pub position: i32,
    pub order: Order,
    /// A non-frozen collection: stored element by element, so an empty one
    /// is no cell at all (reads back as null).
    pub multi_cell: bool,
}

/// The shape of a table. Columns are ordered as `SELECT *` returns them:
/// partition key, clustering key, static columns, then regular columns,
/// each group by name.
#[derive(Debug)]
pub struct TableSchema {
    pub keyspace: String,
    pub name: String,
    pub id: [u8; 16],
    pub columns: Vec<ColumnSchema>,
    pub by_name: HashMap<String, usize>,
    pub partition_key: Vec<usize>,
    pub clustering_key: Vec<usize>,
    pub is_counter: bool,
    pub comment: String,
    pub default_ttl: i32,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Result<(usize, &ColumnSchema), EngineError> {
        self.by_name
            .get(name)
            .map(|&i| (i, &self.columns[i]))
            .ok_or_else(|| {
                invalid(format!(
                    "Undefined name {name} in table {}.{}",
                    self.keyspace, self.name
                ))
            })
    }

    /// Builds a schema from column definitions, ordering them canonically.
    pub fn build(
        keyspace: &str,
        name: &str,
        id: [u8; 16],
        defs: Vec<ColumnSchema>,
    ) -> Result<TableSchema, EngineError> {
        let mut pk: Vec<ColumnSchema> = defs
            .iter()
            .filter(|c| c.kind == ColumnKind::PartitionKey)
            .cloned()
            .collect();
        pk.sort_by_key(|c| c.position);
        let mut ck: Vec<ColumnSchema> = defs
            .iter()
            .filter(|c| c.kind == ColumnKind::Clustering)
            .cloned()
            .collect();
        ck.sort_by_key(|c| c.position);
        let mut rest: Vec<ColumnSchema> = defs
            .into_iter()
            .filter(|c| matches!(c.kind, ColumnKind::Static | ColumnKind::Regular))
            .collect();
        // Scylla's order: static columns, then regular ones, each by name.
        rest.sort_by(|a, b| {
            (a.kind != ColumnKind::Static, &a.name).cmp(&(b.kind != ColumnKind::Static, &b.name))
        });
        if pk.is_empty() {
            return Err(invalid("No PRIMARY KEY specifed (exactly one required)"));
        }
        let columns: Vec<ColumnSchema> = pk.into_iter().chain(ck).chain(rest).collect();
        let mut by_name = HashMap::new();
        for (i, c) in columns.iter().enumerate() {
            if by_name.insert(c.name.clone(), i).is_some() {
                return Err(invalid(format!(
                    "Multiple definition of identifier {}",
                    c.name
                )));
            }
        }
        let partition_key = (0..columns.len())
            .filter(|&i| columns[i].kind == ColumnKind::PartitionKey)
            .collect();
        let clustering_key = (0..columns.len())
            .filter(|&i| columns[i].kind == ColumnKind::Clustering)
            .collect();
        let is_counter = columns.iter().any(|c| c.ty == ColumnType::Counter);
        Ok(TableSchema {
            keyspace: keyspace.to_owned(),
            name: name.to_owned(),
            id,
            columns,
            by_name,
            partition_key,
            clustering_key,
            is_counter,
            comment: String::new(),
            default_ttl: 0,
        })
    }
}

/// A table: its schema, data and (for tablet keyspaces) tablet layout.
pub struct Table {
    pub schema: Arc<TableSchema>,
    pub data: Mutex<TableData>,
    pub tablets: Option<Mutex<TabletLayout>>,
}

#[derive(Debug, Clone)]
pub struct UserType {
    pub keyspace: String,
    pub name: String,
    pub fields: Vec<(String, ColumnType, String)>,
}

pub struct Keyspace {
    pub name: String,
    /// Normalized: `class` is fully qualified.
    pub replication: BTreeMap<String, String>,
    pub strategy: ReplicationStrategy,
    pub durable_writes: bool,
    /// Initial tablet count when the keyspace uses tablets.
    pub tablets: Option<u32>,
    pub tables: BTreeMap<String, Arc<Table>>,
    pub types: BTreeMap<String, UserType>,
    /// System keyspaces are answered by `system_tables`, not stored.
    pub is_system: bool,
    /// Created by the server (`system`, `system_schema`, `system_traces`):
    /// cannot be altered or dropped, nor get tables.
    pub server_owned: bool,
}

/// Resolves a parsed type against a keyspace's user types.
pub fn resolve_type(
    ty: &CqlType,
    keyspace: &str,
    types: &BTreeMap<String, UserType>,
) -> Result<ColumnType, EngineError> {
    Ok(match ty {
        CqlType::Native(n) => native(*n),
        CqlType::List(e) => ColumnType::List(Box::new(resolve_type(e, keyspace, types)?)),
        CqlType::Set(e) => ColumnType::Set(Box::new(resolve_type(e, keyspace, types)?)),
        CqlType::Map(k, v) => ColumnType::Map(
            Box::new(resolve_type(k, keyspace, types)?),
            Box::new(resolve_type(v, keyspace, types)?),
        ),
        CqlType::Tuple(elements) => ColumnType::Tuple(
            elements
                .iter()
                .map(|e| resolve_type(e, keyspace, types))
                .collect::<Result<_, _>>()?,
        ),
        CqlType::Frozen(inner) => resolve_type(inner, keyspace, types)?,
        CqlType::Vector(..) => {
            return Err(invalid("vector types are not supported by the emulator"))
        }
        CqlType::UserDefined { keyspace: ks, name } => {
            if ks.as_deref().is_some_and(|k| k != keyspace) {
                return Err(invalid(format!(
                    "Statement on keyspace {keyspace} cannot refer to a user type in keyspace {}",
                    ks.as_deref().unwrap_or_default()
                )));
            }
            let udt = types
                .get(name)
                .ok_or_else(|| invalid(format!("Unknown type {keyspace}.{name}")))?;
            ColumnType::Udt(Box::new(UdtType {
                keyspace: udt.keyspace.clone(),
                name: udt.name.clone(),
                fields: udt
                    .fields
                    .iter()
                    .map(|(n, t, _)| (n.clone(), t.clone()))
                    .collect(),
            }))
        }
        CqlType::Custom(class) => ColumnType::Custom(class.clone()),
    })
}

pub fn native(n: NativeType) -> ColumnType {
    match n {
        NativeType::Ascii => ColumnType::Ascii,
        NativeType::Bigint => ColumnType::BigInt,
        NativeType::Blob => ColumnType::Blob,
        NativeType::Boolean => ColumnType::Boolean,
        NativeType::Counter => ColumnType::Counter,
        NativeType::Date => ColumnType::Date,
        NativeType::Decimal => ColumnType::Decimal,
        NativeType::Double => ColumnType::Double,
        NativeType::Duration => ColumnType::Duration,
        NativeType::Float => ColumnType::Float,
        NativeType::Inet => ColumnType::Inet,
        NativeType::Int => ColumnType::Int,
        NativeType::Smallint => ColumnType::SmallInt,
        NativeType::Text => ColumnType::Text,
        NativeType::Time => ColumnType::Time,
        NativeType::Timestamp => ColumnType::Timestamp,
        NativeType::Timeuuid => ColumnType::Timeuuid,
        NativeType::Tinyint => ColumnType::TinyInt,
        NativeType::Uuid => ColumnType::Uuid,
        NativeType::Varint => ColumnType::Varint,
    }
}

/// The schema text Scylla stores for a type: collections nested in other
/// types are frozen, tuples always are.
pub fn schema_type_text(ty: &CqlType) -> String {
    fn text(ty: &CqlType, frozen: bool) -> String {
        let freeze = |s: String| if frozen { format!("frozen<{s}>") } else { s };
        match ty {
            CqlType::Frozen(t) => text(t, true),
            CqlType::List(e) => freeze(format!("list<{}>", text(e, true))),
            CqlType::Set(e) => freeze(format!("set<{}>", text(e, true))),
            CqlType::Map(k, v) => freeze(format!("map<{}, {}>", text(k, true), text(v, true))),
            CqlType::Tuple(es) => format!(
                "frozen<tuple<{}>>",
                es.iter()
                    .map(|e| text(e, true))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CqlType::UserDefined { name, .. } => freeze(name.clone()),
            other => other.to_string(),
        }
    }
    text(ty, false)
}

/// Fully qualifies a replication class name.
pub fn qualify_strategy(class: &str) -> String {
    if class.contains('.') {
        class.to_owned()
    } else {
        format!("org.apache.cassandra.locator.{class}")
    }
}

/// Deterministic uuid for a schema object (tables need stable ids).
pub fn object_id(parts: &[&str]) -> [u8; 16] {
    use scylla_shard::routing::token::murmur3_token;
    let text = parts.join("\u{0}");
    let a = murmur3_token(text.as_bytes()).value().to_be_bytes();
    let b = murmur3_token(format!("{text}\u{1}").as_bytes())
        .value()
        .to_be_bytes();
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a);
    id[8..].copy_from_slice(&b);
    id[6] = (id[6] & 0x0f) | 0x40; // version 4 layout
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

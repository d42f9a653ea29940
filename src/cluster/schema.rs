//! Keyspace metadata: what the router needs (replication strategy, tablets
//! or vnodes) and what users read (replication options, tables with their
//! columns, partition and clustering keys, user types), from the
//! `system_schema` tables.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::cql_type::parse_type;
use super::rows::NamedRows;
use crate::protocol::response::Rows;
use crate::protocol::types::{ColumnType, UdtType};
use crate::routing::replication::ReplicationStrategy;

pub const COLUMNS_QUERY: &str = "SELECT keyspace_name, table_name, column_name, clustering_order, kind, position, type FROM system_schema.columns";
pub const TYPES_QUERY: &str =
    "SELECT keyspace_name, type_name, field_names, field_types FROM system_schema.types";

pub const KEYSPACES_QUERY: &str = "SELECT keyspace_name, replication FROM system_schema.keyspaces";
/// Scylla only; `initial_tablets` is non-null for tablet keyspaces. Other
/// servers answer Invalid, which means "no tablet keyspaces".
pub const SCYLLA_KEYSPACES_QUERY: &str =
    "SELECT keyspace_name, initial_tablets FROM system_schema.scylla_keyspaces";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceInfo {
    pub strategy: ReplicationStrategy,
    pub uses_tablets: bool,
    /// Shared: state snapshots copy keyspaces on every status change.
    pub schema: Arc<KeyspaceSchema>,
}

/// What a keyspace holds, for users (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyspaceSchema {
    /// The `replication` map (`class`, `replication_factor` or one factor
    /// per datacenter).
    pub replication: Vec<(String, String)>,
    pub tables: Vec<TableSchema>,
    /// User types, each a `ColumnType::Udt`.
    pub types: Vec<ColumnType>,
}

impl KeyspaceSchema {
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        let i = self
            .tables
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()?;
        Some(&self.tables[i])
    }

    pub fn user_type(&self, name: &str) -> Option<&ColumnType> {
        let i = self
            .types
            .binary_search_by(|t| udt_name(t).cmp(name))
            .ok()?;
        Some(&self.types[i])
    }
}

fn udt_name(ty: &ColumnType) -> &str {
    match ty {
        ColumnType::Udt(u) => &u.name,
        _ => "",
    }
}

/// Tables and types by name while the rows are read.
#[derive(Default)]
struct Building {
    tables: BTreeMap<String, TableSchema>,
    types: BTreeMap<String, ColumnType>,
}

/// A table (or materialized view) and its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub name: String,
    /// Partition key columns (by position), clustering columns (by
    /// position), then static and regular ones (by name).
    pub columns: Vec<ColumnSchema>,
    /// Indexes in `columns` of the partition key, in key order.
    pub partition_key: Vec<usize>,
    /// Indexes in `columns` of the clustering key, in key order.
    pub clustering_key: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    pub name: String,
    pub ty: ColumnType,
    pub kind: ColumnKind,
    /// Descending clustering order (clustering columns only).
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    PartitionKey,
    Clustering,
    Static,
    Regular,
}

/// What the schema queries returned.
pub struct SchemaRows<'a> {
    pub keyspaces: &'a Rows,
    pub scylla_keyspaces: Option<&'a Rows>,
    pub columns: Option<&'a Rows>,
    pub types: Option<&'a Rows>,
}

/// Builds keyspace metadata from the two keyspace queries alone.
pub fn parse_keyspaces(
    keyspaces: &Rows,
    scylla_keyspaces: Option<&Rows>,
) -> HashMap<String, KeyspaceInfo> {
    parse_schema(&SchemaRows {
        keyspaces,
        scylla_keyspaces,
        columns: None,
        types: None,
    })
}

/// Builds keyspace metadata from the schema queries. A column or type that
/// does not parse is left out (and logged), not the whole keyspace.
pub fn parse_schema(rows: &SchemaRows<'_>) -> HashMap<String, KeyspaceInfo> {
    let mut schemas: HashMap<String, Building> = HashMap::new();
    if let Some(types) = rows.types {
        parse_types(types, &mut schemas);
    }
    if let Some(columns) = rows.columns {
        parse_columns(columns, &mut schemas);
    }
    let (keyspaces, scylla_keyspaces) = (rows.keyspaces, rows.scylla_keyspaces);
    let mut tablet_keyspaces = std::collections::HashSet::new();
    if let Some(rows) = scylla_keyspaces {
        let named = NamedRows::new(rows);
        for row in 0..named.len() {
            if let (Some(name), Some(_)) = (
                named.text(row, "keyspace_name"),
                named.int(row, "initial_tablets"),
            ) {
                tablet_keyspaces.insert(name);
            }
        }
    }
    let named = NamedRows::new(keyspaces);
    (0..named.len())
        .filter_map(|row| {
            let name = named.text(row, "keyspace_name")?;
            let replication = named.text_map(row, "replication");
            let strategy = ReplicationStrategy::from_replication_map(replication.clone());
            let uses_tablets = tablet_keyspaces.contains(&name);
            let built = schemas.remove(&name).unwrap_or_default();
            let mut schema = KeyspaceSchema {
                replication,
                tables: built.tables.into_values().collect(),
                types: built.types.into_values().collect(),
            };
            schema.replication.sort();
            Some((
                name,
                KeyspaceInfo {
                    strategy,
                    uses_tablets,
                    schema: Arc::new(schema),
                },
            ))
        })
        .collect()
}

/// A user type by (keyspace, name).
type TypeKey = (String, String);
/// A user type's field names and field type texts, as stored.
type TypeRows = HashMap<TypeKey, (Vec<String>, Vec<String>)>;

/// User types of every keyspace; a type may use types defined before it
/// in the rows or after (resolved on demand).
fn parse_types(rows: &Rows, schemas: &mut HashMap<String, Building>) {
    let named = NamedRows::new(rows);
    let mut defined: TypeRows = HashMap::new();
    for row in 0..named.len() {
        if let (Some(keyspace), Some(name)) = (
            named.text(row, "keyspace_name"),
            named.text(row, "type_name"),
        ) {
            let fields = named.text_list(row, "field_names");
            let types = named.text_list(row, "field_types");
            defined.insert((keyspace, name), (fields, types));
        }
    }
    let mut done: HashMap<TypeKey, ColumnType> = HashMap::new();
    for key in defined.keys() {
        let mut resolving = Vec::new();
        if let Some(ty) = resolve_udt(key, &defined, &mut done, &mut resolving) {
            schemas
                .entry(key.0.clone())
                .or_default()
                .types
                .insert(key.1.clone(), ty);
        }
    }
}

/// The type `key`, its fields' types resolved (cycles refused).
fn resolve_udt(
    key: &TypeKey,
    defined: &TypeRows,
    done: &mut HashMap<TypeKey, ColumnType>,
    resolving: &mut Vec<TypeKey>,
) -> Option<ColumnType> {
    if let Some(ty) = done.get(key) {
        return Some(ty.clone());
    }
    if resolving.contains(key) || resolving.len() > 32 {
        tracing::warn!(keyspace = %key.0, name = %key.1, "user type refers to itself");
        return None;
    }
    let (names, types) = defined.get(key)?;
    resolving.push(key.clone());
    let mut fields = Vec::with_capacity(names.len());
    for (name, text) in names.iter().zip(types) {
        let parsed = parse_type(text, &mut |udt| {
            resolve_udt(&(key.0.clone(), udt.to_owned()), defined, done, resolving)
        });
        match parsed {
            Ok(ty) => fields.push((name.clone(), ty)),
            Err(e) => {
                tracing::warn!(keyspace = %key.0, name = %key.1, error = %e, "user type skipped");
                resolving.pop();
                return None;
            }
        }
    }
    resolving.pop();
    let ty = ColumnType::Udt(Box::new(UdtType {
        keyspace: key.0.clone(),
        name: key.1.clone(),
        fields,
    }));
    done.insert(key.clone(), ty.clone());
    Some(ty)
}

fn parse_columns(rows: &Rows, schemas: &mut HashMap<String, Building>) {
    let named = NamedRows::new(rows);
    // (keyspace, table) -> (position or -1, column)
    let mut tables: BTreeMap<(String, String), Vec<(i32, ColumnSchema)>> = BTreeMap::new();
    for row in 0..named.len() {
        let (Some(keyspace), Some(table), Some(name), Some(text)) = (
            named.text(row, "keyspace_name"),
            named.text(row, "table_name"),
            named.text(row, "column_name"),
            named.text(row, "type"),
        ) else {
            continue;
        };
        let types = schemas.get(&keyspace).map(|s| &s.types);
        let ty = match parse_type(&text, &mut |udt| types.and_then(|t| t.get(udt)).cloned()) {
            Ok(ty) => ty,
            Err(e) => {
                tracing::warn!(%keyspace, %table, column = %name, error = %e, "column skipped");
                continue;
            }
        };
        let kind = match named.text(row, "kind").as_deref() {
            Some("partition_key") => ColumnKind::PartitionKey,
            Some("clustering") => ColumnKind::Clustering,
            Some("static") => ColumnKind::Static,
            _ => ColumnKind::Regular,
        };
        let descending = named
            .text(row, "clustering_order")
            .is_some_and(|o| o.eq_ignore_ascii_case("desc"));
        let position = named.int(row, "position").unwrap_or(-1);
        tables.entry((keyspace, table)).or_default().push((
            position,
            ColumnSchema {
                name,
                ty,
                kind,
                descending,
            },
        ));
    }
    for ((keyspace, table), mut columns) in tables {
        let rank = |k: ColumnKind| match k {
            ColumnKind::PartitionKey => 0,
            ColumnKind::Clustering => 1,
            ColumnKind::Static | ColumnKind::Regular => 2,
        };
        columns.sort_by(|(pa, a), (pb, b)| {
            (
                rank(a.kind),
                if rank(a.kind) < 2 { *pa } else { 0 },
                &a.name,
            )
                .cmp(&(
                    rank(b.kind),
                    if rank(b.kind) < 2 { *pb } else { 0 },
                    &b.name,
                ))
        });
        let columns: Vec<ColumnSchema> = columns.into_iter().map(|(_, c)| c).collect();
        let of_kind = |kind| {
            (0..columns.len())
                .filter(|&i| columns[i].kind == kind)
                .collect::<Vec<_>>()
        };
        let schema = TableSchema {
            name: table.clone(),
            partition_key: of_kind(ColumnKind::PartitionKey),
            clustering_key: of_kind(ColumnKind::Clustering),
            columns,
        };
        schemas
            .entry(keyspace)
            .or_default()
            .tables
            .insert(table, schema);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::tests::rows;
    use crate::protocol::types::ColumnType;
    use crate::protocol::value::CqlValue;

    #[test]
    fn strategies_and_tablet_flags() {
        let map = ColumnType::Map(Box::new(ColumnType::Text), Box::new(ColumnType::Text));
        let text = |s: &str| CqlValue::Text(s.into());
        let keyspaces = rows(
            &[("keyspace_name", ColumnType::Text), ("replication", map)],
            vec![
                vec![
                    Some(text("a")),
                    Some(CqlValue::Map(vec![
                        (
                            text("class"),
                            text("org.apache.cassandra.locator.SimpleStrategy"),
                        ),
                        (text("replication_factor"), text("2")),
                    ])),
                ],
                vec![
                    Some(text("b")),
                    Some(CqlValue::Map(vec![
                        (text("class"), text("NetworkTopologyStrategy")),
                        (text("dc1"), text("3")),
                    ])),
                ],
            ],
        );
        let scylla = rows(
            &[
                ("keyspace_name", ColumnType::Text),
                ("initial_tablets", ColumnType::Int),
            ],
            vec![
                vec![Some(text("a")), None],
                vec![Some(text("b")), Some(CqlValue::Int(8))],
            ],
        );
        let parsed = parse_keyspaces(&keyspaces, Some(&scylla));
        assert_eq!(parsed["a"].strategy, ReplicationStrategy::Simple { rf: 2 });
        assert!(!parsed["a"].uses_tablets);
        assert!(parsed["b"].uses_tablets);
        assert_eq!(
            parsed["b"].strategy,
            ReplicationStrategy::NetworkTopology {
                per_dc: vec![("dc1".into(), 3)]
            }
        );
    }

    #[test]
    fn tables_columns_and_user_types() {
        let text = |s: &str| Some(CqlValue::Text(s.into()));
        let list = |items: &[&str]| {
            Some(CqlValue::List(
                items.iter().map(|s| CqlValue::Text((*s).into())).collect(),
            ))
        };
        let map = ColumnType::Map(Box::new(ColumnType::Text), Box::new(ColumnType::Text));
        let keyspaces = rows(
            &[("keyspace_name", ColumnType::Text), ("replication", map)],
            vec![vec![
                text("ks"),
                Some(CqlValue::Map(vec![
                    (
                        CqlValue::Text("class".into()),
                        CqlValue::Text("SimpleStrategy".into()),
                    ),
                    (
                        CqlValue::Text("replication_factor".into()),
                        CqlValue::Text("1".into()),
                    ),
                ])),
            ]],
        );
        let list_ty = ColumnType::List(Box::new(ColumnType::Text));
        // `address` uses `point`, defined after it.
        let types = rows(
            &[
                ("keyspace_name", ColumnType::Text),
                ("type_name", ColumnType::Text),
                ("field_names", list_ty.clone()),
                ("field_types", list_ty),
            ],
            vec![
                vec![
                    text("ks"),
                    text("address"),
                    list(&["street", "at"]),
                    list(&["text", "frozen<point>"]),
                ],
                vec![
                    text("ks"),
                    text("point"),
                    list(&["x", "y"]),
                    list(&["int", "int"]),
                ],
                vec![
                    text("ks"),
                    text("loop"),
                    list(&["me"]),
                    list(&["frozen<loop>"]),
                ],
            ],
        );
        let column = |table: &str, name: &str, kind: &str, position: i32, order: &str, ty: &str| {
            vec![
                text("ks"),
                text(table),
                text(name),
                text(order),
                text(kind),
                Some(CqlValue::Int(position)),
                text(ty),
            ]
        };
        let columns = rows(
            &[
                ("keyspace_name", ColumnType::Text),
                ("table_name", ColumnType::Text),
                ("column_name", ColumnType::Text),
                ("clustering_order", ColumnType::Text),
                ("kind", ColumnType::Text),
                ("position", ColumnType::Int),
                ("type", ColumnType::Text),
            ],
            vec![
                column("t", "v", "regular", -1, "none", "frozen<address>"),
                column("t", "c2", "clustering", 1, "desc", "text"),
                column("t", "b", "partition_key", 1, "none", "int"),
                column("t", "a", "partition_key", 0, "none", "int"),
                column("t", "c1", "clustering", 0, "asc", "int"),
                column("t", "s", "static", -1, "none", "map<text, int>"),
                column("t", "bad", "regular", -1, "none", "nosuch"),
            ],
        );
        let parsed = parse_schema(&SchemaRows {
            keyspaces: &keyspaces,
            scylla_keyspaces: None,
            columns: Some(&columns),
            types: Some(&types),
        });
        let ks = &parsed["ks"].schema;
        assert_eq!(ks.replication[0], ("class".into(), "SimpleStrategy".into()));
        let Some(ColumnType::Udt(address)) = ks.user_type("address") else {
            panic!("udt")
        };
        assert!(matches!(&address.fields[1].1, ColumnType::Udt(p) if p.name == "point"));
        assert!(ks.user_type("loop").is_none());
        assert_eq!(ks.types.len(), 2);
        let t = ks.table("t").unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c1", "c2", "s", "v"]);
        assert_eq!(t.partition_key, [0, 1]);
        assert_eq!(t.clustering_key, [2, 3]);
        assert!(t.columns[3].descending && !t.columns[2].descending);
        assert_eq!(t.columns[4].kind, ColumnKind::Static);
        assert!(matches!(t.columns[5].ty, ColumnType::Udt(_)));
    }
}

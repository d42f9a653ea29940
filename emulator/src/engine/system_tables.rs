//! The system keyspaces: `system.local`, `system.peers`, `system.clients`
//! and the `system_schema` tables, with Scylla's exact column names and
//! types, generated on demand from the cluster and the catalog.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use scylla_shard::protocol::value::CqlValue;
use scylla_shard::routing::replication::ReplicationStrategy;

use super::ddl::table_schema;
use super::schema::{Keyspace, Table, TableSchema};
use super::select::routing_key;
use super::storage::{CellWrite, TableData};
use super::{traces, Database, ExecContext};

const SYSTEM_TABLES: &[(&str, &str)] = &[
    ("system", "CREATE TABLE system.local (key text PRIMARY KEY, bootstrapped text, broadcast_address inet, cluster_name text, cql_version text, data_center text, gossip_generation int, host_id uuid, listen_address inet, native_protocol_version text, partitioner text, rack text, release_version text, rpc_address inet, schema_version uuid, supported_features text, tokens set<text>, truncated_at map<uuid, blob>)"),
    ("system", "CREATE TABLE system.peers (peer inet PRIMARY KEY, data_center text, host_id uuid, preferred_ip inet, rack text, release_version text, rpc_address inet, schema_version uuid, supported_features text, tokens set<text>)"),
    ("system", "CREATE TABLE system.clients (address inet, port int, client_type text, connection_stage text, driver_name text, driver_version text, hostname text, protocol_version int, shard_id int, ssl_cipher_suite text, ssl_enabled boolean, ssl_protocol text, username text, PRIMARY KEY (address, port, client_type))"),
    ("system", "CREATE TABLE system.scylla_local (key text PRIMARY KEY, value text)"),
    ("system_schema", "CREATE TABLE system_schema.keyspaces (keyspace_name text PRIMARY KEY, durable_writes boolean, replication frozen<map<text, text>>)"),
    ("system_schema", "CREATE TABLE system_schema.scylla_keyspaces (keyspace_name text PRIMARY KEY, initial_tablets int, storage_options frozen<map<text, text>>, storage_type text)"),
    ("system_schema", "CREATE TABLE system_schema.tables (keyspace_name text, table_name text, bloom_filter_fp_chance double, caching frozen<map<text, text>>, comment text, compaction frozen<map<text, text>>, compression frozen<map<text, text>>, crc_check_chance double, dclocal_read_repair_chance double, default_time_to_live int, extensions frozen<map<text, blob>>, flags frozen<set<text>>, gc_grace_seconds int, id uuid, max_index_interval int, memtable_flush_period_in_ms int, min_index_interval int, read_repair_chance double, speculative_retry text, PRIMARY KEY (keyspace_name, table_name))"),
    ("system_schema", "CREATE TABLE system_schema.scylla_tables (keyspace_name text, table_name text, cdc frozen<map<text, text>>, in_memory boolean, partitioner text, version uuid, PRIMARY KEY (keyspace_name, table_name))"),
    ("system_schema", "CREATE TABLE system_schema.columns (keyspace_name text, table_name text, column_name text, clustering_order text, column_name_bytes blob, kind text, position int, type text, PRIMARY KEY (keyspace_name, table_name, column_name))"),
    ("system_schema", "CREATE TABLE system_schema.types (keyspace_name text, type_name text, field_names frozen<list<text>>, field_types frozen<list<text>>, PRIMARY KEY (keyspace_name, type_name))"),
    ("system_schema", "CREATE TABLE system_schema.functions (keyspace_name text, function_name text, argument_types frozen<list<text>>, argument_names frozen<list<text>>, body text, called_on_null_input boolean, language text, return_type text, PRIMARY KEY (keyspace_name, function_name, argument_types))"),
    ("system_schema", "CREATE TABLE system_schema.aggregates (keyspace_name text, aggregate_name text, argument_types frozen<list<text>>, final_func text, initcond text, return_type text, state_func text, state_type text, PRIMARY KEY (keyspace_name, aggregate_name, argument_types))"),
    ("system_schema", "CREATE TABLE system_schema.indexes (keyspace_name text, table_name text, index_name text, kind text, options frozen<map<text, text>>, PRIMARY KEY (keyspace_name, table_name, index_name))"),
    ("system_schema", "CREATE TABLE system_schema.views (keyspace_name text, view_name text, base_table_id uuid, base_table_name text, bloom_filter_fp_chance double, caching frozen<map<text, text>>, comment text, compaction frozen<map<text, text>>, compression frozen<map<text, text>>, crc_check_chance double, dclocal_read_repair_chance double, default_time_to_live int, extensions frozen<map<text, blob>>, gc_grace_seconds int, id uuid, include_all_columns boolean, max_index_interval int, memtable_flush_period_in_ms int, min_index_interval int, read_repair_chance double, speculative_retry text, where_clause text, PRIMARY KEY (keyspace_name, view_name))"),
    ("system_schema", "CREATE TABLE system_schema.triggers (keyspace_name text, table_name text, trigger_name text, options frozen<map<text, text>>, PRIMARY KEY (keyspace_name, table_name, trigger_name))"),
    ("system_schema", "CREATE TABLE system_schema.dropped_columns (keyspace_name text, table_name text, column_name text, dropped_time timestamp, type text, PRIMARY KEY (keyspace_name, table_name, column_name))"),
];

/// Creates the system keyspaces and their (virtual) tables.
pub fn install(db: &Database) {
    let mut catalog = db.catalog.write().unwrap();
    let local = [("class", "org.apache.cassandra.locator.LocalStrategy")];
    // Scylla creates system_traces with SimpleStrategy, RF 2; its tables
    // hold real rows (written by traced requests).
    let traces = [
        ("class", "org.apache.cassandra.locator.SimpleStrategy"),
        ("replication_factor", "2"),
    ];
    for (name, replication, strategy, is_system) in [
        ("system", &local[..], ReplicationStrategy::Local, true),
        (
            "system_schema",
            &local[..],
            ReplicationStrategy::Local,
            true,
        ),
        (
            traces::KEYSPACE,
            &traces[..],
            ReplicationStrategy::Simple { rf: 2 },
            false,
        ),
    ] {
        catalog.keyspaces.insert(
            name.to_owned(),
            Keyspace {
                name: name.to_owned(),
                replication: replication
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                strategy,
                durable_writes: true,
                tablets: None,
                tables: BTreeMap::new(),
                types: BTreeMap::new(),
                is_system,
                server_owned: true,
            },
        );
    }
    let tables = SYSTEM_TABLES
        .iter()
        .copied()
        .chain(traces::TABLES.iter().map(|ddl| (traces::KEYSPACE, *ddl)));
    for (keyspace, ddl) in tables {
        let statement = cql_parser::parse_statement(ddl).expect("system table DDL parses");
        let cql_parser::Statement::CreateTable(create) = statement else {
            unreachable!("system DDL is CREATE TABLE");
        };
        let schema =
            table_schema(keyspace, &create, &BTreeMap::new()).expect("system table DDL is valid");
        let ks = catalog
            .keyspaces
            .get_mut(keyspace)
            .expect("installed above");
        ks.tables.insert(
            create.name.name.clone(),
            Arc::new(Table {
                schema: Arc::new(schema),
                data: Mutex::new(TableData::default()),
                tablets: None,
            }),
        );
    }
}

fn text(s: impl Into<String>) -> Option<CqlValue> {
    Some(CqlValue::Text(s.into()))
}

fn inet(ip: IpAddr) -> Option<CqlValue> {
    Some(CqlValue::Inet(ip))
}

fn int(v: i32) -> Option<CqlValue> {
    Some(CqlValue::Int(v))
}

fn double(v: f64) -> Option<CqlValue> {
    Some(CqlValue::Double(v))
}

fn text_map(entries: &[(&str, &str)]) -> Option<CqlValue> {
    Some(CqlValue::Map(
        entries
            .iter()
            .map(|(k, v)| (CqlValue::Text((*k).into()), CqlValue::Text((*v).into())))
            .collect(),
    ))
}

fn text_list(items: impl IntoIterator<Item = String>) -> Option<CqlValue> {
    Some(CqlValue::List(
        items.into_iter().map(CqlValue::Text).collect(),
    ))
}

/// Builds rows one column map at a time.
struct RowSink<'a> {
    schema: &'a TableSchema,
    data: TableData,
}

impl RowSink<'_> {
    fn put(&mut self, values: Vec<(&str, Option<CqlValue>)>) {
        write_values(self.schema, &mut self.data, values, 0, 0);
    }
}

/// Writes one row given as (column, value) pairs: key columns from the
/// pairs, the others as cells with a row marker, at `timestamp` (micros)
/// with `ttl` (seconds, 0 for none).
pub fn write_values(
    schema: &TableSchema,
    data: &mut TableData,
    values: Vec<(&str, Option<CqlValue>)>,
    timestamp: i64,
    ttl: i32,
) {
    let mut cells: BTreeMap<usize, Option<Vec<u8>>> = BTreeMap::new();
    for (name, value) in values {
        let (index, _) = schema.column(name).expect("system column exists");
        cells.insert(index, value.and_then(|v| v.to_bytes().ok()));
    }
    let component = |i: &usize| cells.get(i).cloned().flatten().unwrap_or_default();
    let key: Vec<Vec<u8>> = schema.partition_key.iter().map(component).collect();
    let clustering: Vec<Vec<u8>> = schema.clustering_key.iter().map(component).collect();
    let writes: Vec<(usize, CellWrite)> = cells
        .iter()
        .filter(|(i, v)| {
            v.is_some() && !schema.partition_key.contains(i) && !schema.clustering_key.contains(i)
        })
        .map(|(i, v)| {
            (
                *i,
                CellWrite {
                    value: v.clone(),
                    timestamp,
                    ttl,
                },
            )
        })
        .collect();
    let (token, bytes) = routing_key(&key);
    let marker = CellWrite {
        value: Some(Vec::new()),
        timestamp,
        ttl,
    };
    data.write_row(
        schema,
        (token.value(), bytes),
        &key,
        Some(&clustering),
        &writes,
        Some(&marker),
    );
}

/// The current content of a system table, as seen from the coordinator.
pub fn materialize(ctx: &ExecContext<'_>, schema: &TableSchema) -> TableData {
    let db = ctx.db;
    let mut sink = RowSink {
        schema,
        data: TableData::default(),
    };
    let schema_version = |index: usize| Some(CqlValue::Uuid(db.schema_version_of(index)));
    let membership = db.membership();
    let tokens = |index: usize| {
        Some(CqlValue::Set({
            let owned = if membership.is_member(index) {
                membership.nodes[index].tokens.as_slice()
            } else {
                &[]
            };
            let mut t: Vec<String> = owned.iter().map(i64::to_string).collect();
            t.sort();
            t.into_iter().map(CqlValue::Text).collect()
        }))
    };
    let me = &ctx.node.info;
    match (schema.keyspace.as_str(), schema.name.as_str()) {
        ("system", "local") => sink.put(vec![
            ("key", text("local")),
            ("bootstrapped", text("COMPLETED")),
            ("broadcast_address", inet(IpAddr::V4(me.advertised_ip))),
            ("cluster_name", text(db.settings.cluster_name.clone())),
            ("cql_version", text("3.3.1")),
            ("data_center", text(me.datacenter.clone())),
            ("gossip_generation", int(1)),
            ("host_id", Some(CqlValue::Uuid(me.host_id))),
            ("listen_address", inet(IpAddr::V4(me.ip))),
            ("native_protocol_version", text("4")),
            (
                "partitioner",
                text("org.apache.cassandra.dht.Murmur3Partitioner"),
            ),
            ("rack", text(me.rack.clone())),
            ("release_version", text("3.0.8")),
            ("rpc_address", inet(IpAddr::V4(me.advertised_ip))),
            ("schema_version", schema_version(me.index)),
            ("supported_features", text("")),
            ("tokens", tokens(me.index)),
        ]),
        ("system", "peers") => {
            for peer in membership.member_nodes().filter(|n| n.index != me.index) {
                sink.put(vec![
                    ("peer", inet(IpAddr::V4(peer.advertised_ip))),
                    ("data_center", text(peer.datacenter.clone())),
                    ("host_id", Some(CqlValue::Uuid(peer.host_id))),
                    ("preferred_ip", inet(IpAddr::V4(peer.advertised_ip))),
                    ("rack", text(peer.rack.clone())),
                    ("release_version", text("3.0.8")),
                    ("rpc_address", inet(IpAddr::V4(peer.advertised_ip))),
                    ("schema_version", schema_version(peer.index)),
                    ("supported_features", text("")),
                    ("tokens", tokens(peer.index)),
                ]);
            }
        }
        ("system", "clients") => {
            let clients = ctx.node.clients.lock().unwrap().clone();
            for client in clients.values() {
                sink.put(vec![
                    ("address", inet(client.address)),
                    ("port", int(i32::from(client.port))),
                    ("client_type", text("cql")),
                    ("connection_stage", text(client.connection_stage.clone())),
                    ("driver_name", client.driver_name.clone().and_then(text)),
                    (
                        "driver_version",
                        client.driver_version.clone().and_then(text),
                    ),
                    ("hostname", text(client.address.to_string())),
                    ("protocol_version", int(4)),
                    ("shard_id", int(i32::from(client.shard))),
                    ("ssl_enabled", Some(CqlValue::Boolean(false))),
                    (
                        "username",
                        text(
                            client
                                .username
                                .clone()
                                .unwrap_or_else(|| "anonymous".into()),
                        ),
                    ),
                ]);
            }
        }
        ("system_schema", name) => schema_rows(db, name, &mut sink),
        _ => {}
    }
    sink.data
}

fn schema_rows(db: &Database, table: &str, sink: &mut RowSink<'_>) {
    let catalog = db.catalog.read().unwrap();
    for ks in catalog.keyspaces.values() {
        let ks_name = || text(ks.name.clone());
        match table {
            "keyspaces" => sink.put(vec![
                ("keyspace_name", ks_name()),
                ("durable_writes", Some(CqlValue::Boolean(ks.durable_writes))),
                (
                    "replication",
                    text_map(
                        &ks.replication
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect::<Vec<_>>(),
                    ),
                ),
            ]),
            "scylla_keyspaces" if !ks.is_system => sink.put(vec![
                ("keyspace_name", ks_name()),
                (
                    "initial_tablets",
                    ks.tablets.map(|n| CqlValue::Int(n as i32)),
                ),
                ("storage_type", text("LOCAL")),
            ]),
            "types" => {
                for udt in ks.types.values() {
                    sink.put(vec![
                        ("keyspace_name", ks_name()),
                        ("type_name", text(udt.name.clone())),
                        (
                            "field_names",
                            text_list(udt.fields.iter().map(|f| f.0.clone())),
                        ),
                        (
                            "field_types",
                            text_list(udt.fields.iter().map(|f| f.2.clone())),
                        ),
                    ]);
                }
            }
            _ => {
                for t in ks.tables.values() {
                    table_rows(table, &t.schema, sink);
                }
            }
        }
    }
}

fn table_rows(table: &str, t: &TableSchema, sink: &mut RowSink<'_>) {
    let base = || {
        vec![
            ("keyspace_name", text(t.keyspace.clone())),
            ("table_name", text(t.name.clone())),
        ]
    };
    match table {
        "tables" => {
            let mut row = base();
            row.extend([
                ("bloom_filter_fp_chance", double(0.01)),
                (
                    "caching",
                    text_map(&[("keys", "ALL"), ("rows_per_partition", "ALL")]),
                ),
                ("comment", text(t.comment.clone())),
                (
                    "compaction",
                    text_map(&[("class", "SizeTieredCompactionStrategy")]),
                ),
                (
                    "compression",
                    text_map(&[(
                        "sstable_compression",
                        "org.apache.cassandra.io.compress.LZ4Compressor",
                    )]),
                ),
                ("crc_check_chance", double(1.0)),
                ("dclocal_read_repair_chance", double(0.0)),
                ("default_time_to_live", int(t.default_ttl)),
                ("extensions", Some(CqlValue::Map(vec![]))),
                (
                    "flags",
                    Some(CqlValue::Set(vec![CqlValue::Text("compound".into())])),
                ),
                ("gc_grace_seconds", int(864_000)),
                ("id", Some(CqlValue::Uuid(t.id))),
                ("max_index_interval", int(2048)),
                ("memtable_flush_period_in_ms", int(0)),
                ("min_index_interval", int(128)),
                ("read_repair_chance", double(0.0)),
                ("speculative_retry", text("99.0PERCENTILE")),
            ]);
            sink.put(row);
        }
        "scylla_tables" => {
            let mut row = base();
            row.extend([
                ("in_memory", Some(CqlValue::Boolean(false))),
                ("version", Some(CqlValue::Uuid(t.id))),
            ]);
            sink.put(row);
        }
        "columns" => {
            for c in &t.columns {
                let mut row = base();
                let order = match (c.kind, c.order) {
                    (super::schema::ColumnKind::Clustering, cql_parser::ast::Order::Desc) => "DESC",
                    (super::schema::ColumnKind::Clustering, _) => "ASC",
                    _ => "NONE",
                };
                row.extend([
                    ("column_name", text(c.name.clone())),
                    ("clustering_order", text(order)),
                    (
                        "column_name_bytes",
                        Some(CqlValue::Blob(c.name.as_bytes().to_vec())),
                    ),
                    ("kind", text(c.kind.as_str())),
                    ("position", int(c.position)),
                    ("type", text(c.type_text.clone())),
                ]);
                sink.put(row);
            }
        }
        _ => {}
    }
}

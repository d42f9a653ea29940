//! Schema statements: keyspaces (with replication and tablets options),
//! tables, user types, truncation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cql_parser::ast::{
    AlterTableAction, ColumnDef, CreateKeyspace, CreateTable, CreateType, DropObject, Options,
    Order, Statement,
};
use cql_parser::types::CqlType;
use scylla_shard::protocol::response::SchemaChange;
use scylla_shard::routing::replication::ReplicationStrategy;

use super::error::{already_exists, config_error, invalid, unconfigured_table, EngineError};
use super::schema::{
    object_id, qualify_strategy, resolve_type, schema_type_text, ColumnKind, ColumnSchema,
    Keyspace, Table, TableSchema, UserType,
};
use super::storage::TableData;
use super::tablets::TabletLayout;
use super::{schema_change, tablets_rf, Database};

/// Runs a schema statement; `Ok(None)` when nothing changed (IF [NOT] EXISTS).
pub fn execute(
    db: &Database,
    session_keyspace: Option<&str>,
    statement: &Statement,
) -> Result<Option<SchemaChange>, EngineError> {
    match statement {
        Statement::CreateKeyspace(create) => create_keyspace(db, create),
        Statement::AlterKeyspace(alter) => {
            let mut catalog = db.catalog.write().unwrap();
            let ks = catalog
                .keyspaces
                .get_mut(&alter.name)
                .ok_or_else(|| invalid(format!("Keyspace '{}' does not exist", alter.name)))?;
            if ks.server_owned {
                return Err(invalid(format!(
                    "Cannot alter system keyspace {}",
                    alter.name
                )));
            }
            let (replication, strategy) = replication(db, &alter.options)?;
            ks.replication = replication;
            ks.strategy = strategy;
            if let Some(d) = alter
                .options
                .get("durable_writes")
                .and_then(|v| v.as_text())
            {
                ks.durable_writes = d.eq_ignore_ascii_case("true");
            }
            Ok(Some(schema_change(
                "UPDATED",
                "KEYSPACE",
                &alter.name,
                None,
            )))
        }
        Statement::DropKeyspace(drop) => {
            let mut catalog = db.catalog.write().unwrap();
            match catalog.keyspaces.get(&drop.name) {
                None if drop.if_exists => Ok(None),
                None => Err(invalid(format!("Keyspace '{}' does not exist", drop.name))),
                Some(ks) if ks.server_owned => Err(invalid(format!(
                    "Cannot drop system keyspace {}",
                    drop.name
                ))),
                Some(_) => {
                    catalog.keyspaces.remove(&drop.name);
                    Ok(Some(schema_change("DROPPED", "KEYSPACE", &drop.name, None)))
                }
            }
        }
        Statement::CreateTable(create) => create_table(db, session_keyspace, create),
        Statement::DropTable(drop) => drop_object(db, session_keyspace, drop, "TABLE"),
        Statement::AlterTable(alter) => {
            alter_table(db, session_keyspace, &alter.name, &alter.action)
        }
        Statement::Truncate(truncate) => {
            let (table, is_system) = db.table(session_keyspace, &truncate.table)?;
            if is_system {
                return Err(invalid("Cannot truncate a system table"));
            }
            table.data.lock().unwrap().partitions.clear();
            Ok(None)
        }
        Statement::CreateType(create) => create_type(db, session_keyspace, create),
        Statement::DropType(drop) => drop_object(db, session_keyspace, drop, "TYPE"),
        Statement::AlterType(_) => Err(invalid("ALTER TYPE is not supported by the emulator")),
        Statement::CreateIndex(_) | Statement::DropIndex(_) => Err(invalid(
            "Secondary indexes are not supported by the emulator",
        )),
        Statement::CreateMaterializedView(_)
        | Statement::AlterMaterializedView(_)
        | Statement::DropMaterializedView(_) => Err(invalid(
            "Materialized views are not supported by the emulator",
        )),
        _ => Err(invalid("Only schema statements are run here")),
    }
}

fn keyspace_name<'a>(
    explicit: Option<&'a str>,
    session: Option<&'a str>,
) -> Result<&'a str, EngineError> {
    explicit.or(session).ok_or_else(|| {
        invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
    })
}

/// Normalized replication map and strategy from `WITH replication = {...}`.
fn replication(
    db: &Database,
    options: &Options,
) -> Result<(BTreeMap<String, String>, ReplicationStrategy), EngineError> {
    let entries = options
        .get("replication")
        .and_then(|v| v.as_text_map())
        .ok_or_else(|| config_error("Missing mandatory replication strategy class"))?;
    let mut map: BTreeMap<String, String> = entries.into_iter().collect();
    let class = map
        .remove("class")
        .ok_or_else(|| config_error("Missing mandatory replication strategy class"))?;
    let class = qualify_strategy(&class);
    let short = class.rsplit('.').next().unwrap_or_default().to_owned();
    match short.as_str() {
        "SimpleStrategy" => {
            let rf = map.get("replication_factor").ok_or_else(|| {
                config_error("SimpleStrategy requires a replication_factor strategy option.")
            })?;
            rf.parse::<usize>().map_err(|_| {
                config_error(format!("Replication factor must be numeric; found {rf}"))
            })?;
        }
        "NetworkTopologyStrategy" => {
            // Scylla expands replication_factor into every datacenter.
            if let Some(rf) = map.remove("replication_factor") {
                for dc in &db.settings.datacenters {
                    map.entry(dc.clone()).or_insert_with(|| rf.clone());
                }
            }
            for (dc, rf) in &map {
                if !db.settings.datacenters.contains(dc) {
                    return Err(config_error(format!(
                        "Unrecognized strategy option {{{dc}}} passed to NetworkTopologyStrategy for keyspace"
                    )));
                }
                rf.parse::<usize>().map_err(|_| {
                    config_error(format!("Replication factor must be numeric; found {rf}"))
                })?;
            }
        }
        "LocalStrategy" | "EverywhereStrategy" => {}
        _ => {
            return Err(config_error(format!(
                "Unable to find replication strategy class '{class}'"
            )))
        }
    }
    map.insert("class".to_owned(), class);
    let strategy = ReplicationStrategy::from_replication_map(
        map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    Ok((map, strategy))
}

fn create_keyspace(
    db: &Database,
    create: &CreateKeyspace,
) -> Result<Option<SchemaChange>, EngineError> {
    if db
        .catalog
        .read()
        .unwrap()
        .keyspaces
        .contains_key(&create.name)
    {
        return if create.if_not_exists {
            Ok(None)
        } else {
            Err(already_exists(&create.name, ""))
        };
    }
    let (replication, strategy) = replication(db, &create.options)?;
    let durable_writes = create
        .options
        .get("durable_writes")
        .and_then(|v| v.as_text())
        .is_none_or(|d| d.eq_ignore_ascii_case("true"));
    let tablets = tablets_option(db, &create.options, &strategy)?;
    let mut catalog = db.catalog.write().unwrap();
    if catalog.keyspaces.contains_key(&create.name) {
        return Err(already_exists(&create.name, ""));
    }
    catalog.keyspaces.insert(
        create.name.clone(),
        Keyspace {
            name: create.name.clone(),
            replication,
            strategy,
            durable_writes,
            tablets,
            tables: BTreeMap::new(),
            types: BTreeMap::new(),
            is_system: false,
            server_owned: false,
        },
    );
    Ok(Some(schema_change(
        "CREATED",
        "KEYSPACE",
        &create.name,
        None,
    )))
}

/// `tablets = {'enabled': ..., 'initial': N}`: whether the keyspace uses
/// tablets, and its initial tablet count.
fn tablets_option(
    db: &Database,
    options: &Options,
    strategy: &ReplicationStrategy,
) -> Result<Option<u32>, EngineError> {
    let map: BTreeMap<String, String> = options
        .get("tablets")
        .and_then(|v| v.as_text_map())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let enabled = match map.get("enabled").map(|v| v.to_ascii_lowercase()) {
        Some(v) if v == "true" => Some(true),
        Some(v) if v == "false" => Some(false),
        Some(v) => {
            return Err(config_error(format!(
                "Invalid value for tablets 'enabled': {v}"
            )))
        }
        None => None,
    };
    let initial = match map.get("initial") {
        Some(n) => n
            .parse::<u32>()
            .map_err(|_| config_error(format!("Invalid value for tablets 'initial': {n}")))?,
        None => 0,
    };
    let is_nts = matches!(strategy, ReplicationStrategy::NetworkTopology { .. });
    let use_tablets = match enabled {
        Some(true) => {
            if !db.settings.tablets_default {
                return Err(config_error(
                    "Tablets are not enabled on this cluster (start the emulator with --tablets)",
                ));
            }
            if !is_nts {
                return Err(config_error(
                    "Tablets can only be used with NetworkTopologyStrategy",
                ));
            }
            true
        }
        Some(false) => false,
        None => db.settings.tablets_default && is_nts,
    };
    if !use_tablets {
        return Ok(None);
    }
    let count = if initial == 0 {
        db.settings.initial_tablets
    } else {
        initial
    };
    Ok(Some(count.max(1).next_power_of_two()))
}

fn column_schema(
    def: &ColumnDef,
    keyspace: &str,
    types: &BTreeMap<String, UserType>,
    kind: ColumnKind,
    position: i32,
    order: Order,
) -> Result<ColumnSchema, EngineError> {
    Ok(ColumnSchema {
        name: def.name.clone(),
        ty: resolve_type(&def.ty, keyspace, types)?,
        type_text: schema_type_text(&def.ty),
        kind,
        position,
        order,
        multi_cell: matches!(
            def.ty,
            CqlType::List(_) | CqlType::Set(_) | CqlType::Map(..)
        ),
    })
}

/// Builds a table schema from a CREATE TABLE (also used for system tables).
pub fn table_schema(
    keyspace: &str,
    create: &CreateTable,
    types: &BTreeMap<String, UserType>,
) -> Result<TableSchema, EngineError> {
    let mut defs = Vec::new();
    for def in &create.columns {
        let (kind, position, order) =
            if let Some(i) = create.partition_key.iter().position(|c| c == &def.name) {
                (ColumnKind::PartitionKey, i as i32, Order::Asc)
            } else if let Some(i) = create.clustering_key.iter().position(|c| c == &def.name) {
                let order = create
                    .clustering_order
                    .iter()
                    .find(|(c, _)| c == &def.name)
                    .map(|(_, o)| *o)
                    .unwrap_or(Order::Asc);
                (ColumnKind::Clustering, i as i32, order)
            } else if def.is_static {
                (ColumnKind::Static, -1, Order::Asc)
            } else {
                (ColumnKind::Regular, -1, Order::Asc)
            };
        defs.push(column_schema(def, keyspace, types, kind, position, order)?);
    }
    for key in create.partition_key.iter().chain(&create.clustering_key) {
        if !create.columns.iter().any(|c| &c.name == key) {
            return Err(invalid(format!(
                "Unknown definition {key} referenced in PRIMARY KEY"
            )));
        }
    }
    if create.clustering_key.is_empty() && defs.iter().any(|c| c.kind == ColumnKind::Static) {
        return Err(invalid("Static columns are only useful (and thus allowed) if the table has at least one clustering column"));
    }
    for (name, _) in &create.clustering_order {
        if !create.clustering_key.contains(name) {
            return Err(invalid(format!(
                "Missing CLUSTERING ORDER for column {name}"
            )));
        }
    }
    let id = object_id(&[keyspace, &create.name.name]);
    let mut schema = TableSchema::build(keyspace, &create.name.name, id, defs)?;
    if let Some(comment) = create.options.get("comment").and_then(|v| v.as_text()) {
        schema.comment = comment;
    }
    if let Some(ttl) = create
        .options
        .get("default_time_to_live")
        .and_then(|v| v.as_text())
    {
        schema.default_ttl = ttl
            .parse()
            .map_err(|_| invalid(format!("Invalid default_time_to_live {ttl}")))?;
    }
    Ok(schema)
}

fn create_table(
    db: &Database,
    session_keyspace: Option<&str>,
    create: &CreateTable,
) -> Result<Option<SchemaChange>, EngineError> {
    let keyspace = keyspace_name(create.name.keyspace.as_deref(), session_keyspace)?.to_owned();
    let mut catalog = db.catalog.write().unwrap();
    let ks = catalog
        .keyspaces
        .get(&keyspace)
        .ok_or_else(|| invalid(format!("Keyspace '{keyspace}' does not exist")))?;
    if ks.server_owned {
        return Err(invalid(format!(
            "Cannot create tables in system keyspace {keyspace}"
        )));
    }
    if ks.tables.contains_key(&create.name.name) {
        return if create.if_not_exists {
            Ok(None)
        } else {
            Err(already_exists(&keyspace, &create.name.name))
        };
    }
    let schema = table_schema(&keyspace, create, &ks.types)?;
    let tablets = ks.tablets.map(|count| {
        let seed = u64::from_be_bytes(schema.id[..8].try_into().unwrap_or([0; 8]));
        Mutex::new(TabletLayout::new(
            count,
            &tablets_rf(db, ks),
            &db.nodes,
            db.settings.shards,
            seed,
        ))
    });
    let table = Arc::new(Table {
        schema: Arc::new(schema),
        data: Mutex::new(TableData::default()),
        tablets,
    });
    let ks = catalog.keyspaces.get_mut(&keyspace).expect("checked above");
    ks.tables.insert(create.name.name.clone(), table);
    Ok(Some(schema_change(
        "CREATED",
        "TABLE",
        &keyspace,
        Some(&create.name.name),
    )))
}

fn alter_table(
    db: &Database,
    session_keyspace: Option<&str>,
    name: &cql_parser::ast::QualifiedName,
    action: &AlterTableAction,
) -> Result<Option<SchemaChange>, EngineError> {
    let keyspace = keyspace_name(name.keyspace.as_deref(), session_keyspace)?.to_owned();
    let mut catalog = db.catalog.write().unwrap();
    let ks = catalog
        .keyspaces
        .get_mut(&keyspace)
        .ok_or_else(|| invalid(format!("Keyspace '{keyspace}' does not exist")))?;
    let table = ks
        .tables
        .get(&name.name)
        .ok_or_else(|| unconfigured_table(&name.name))?
        .clone();
    let old = &table.schema;
    let mut columns = old.columns.clone();
    match action {
        AlterTableAction::Add(defs) => {
            for def in defs {
                if old.by_name.contains_key(&def.name) {
                    return Err(invalid(format!(
                        "Invalid column name {} because it conflicts with an existing column",
                        def.name
                    )));
                }
                let kind = if def.is_static {
                    ColumnKind::Static
                } else {
                    ColumnKind::Regular
                };
                columns.push(column_schema(
                    def,
                    &keyspace,
                    &ks.types,
                    kind,
                    -1,
                    Order::Asc,
                )?);
            }
        }
        AlterTableAction::Drop {
            columns: dropped, ..
        } => {
            for name in dropped {
                let (_, col) = old.column(name)?;
                if matches!(col.kind, ColumnKind::PartitionKey | ColumnKind::Clustering) {
                    return Err(invalid(format!("Cannot drop PRIMARY KEY part {name}")));
                }
            }
            columns.retain(|c| !dropped.contains(&c.name));
        }
        AlterTableAction::Options(_) => {}
        AlterTableAction::AlterType { .. } | AlterTableAction::Rename(_) => {
            return Err(invalid(
                "This ALTER TABLE form is not supported by the emulator",
            ))
        }
    }
    let mut schema = TableSchema::build(&keyspace, &name.name, old.id, columns)?;
    schema.comment = old.comment.clone();
    schema.default_ttl = old.default_ttl;
    // Data is keyed by column index: move it to the new layout.
    let remap: Vec<Option<usize>> = old
        .columns
        .iter()
        .map(|c| schema.by_name.get(&c.name).copied())
        .collect();
    let mut data = std::mem::take(&mut *table.data.lock().unwrap());
    for partition in data.partitions.values_mut() {
        partition.static_cells = remap_cells(std::mem::take(&mut partition.static_cells), &remap);
        for row in partition.rows.values_mut() {
            row.cells = remap_cells(std::mem::take(&mut row.cells), &remap);
        }
    }
    let new_table = Arc::new(Table {
        schema: Arc::new(schema),
        data: Mutex::new(data),
        tablets: table
            .tablets
            .as_ref()
            .map(|t| Mutex::new(t.lock().unwrap().clone())),
    });
    ks.tables.insert(name.name.clone(), new_table);
    Ok(Some(schema_change(
        "UPDATED",
        "TABLE",
        &keyspace,
        Some(&name.name),
    )))
}

fn remap_cells<V>(cells: BTreeMap<usize, V>, remap: &[Option<usize>]) -> BTreeMap<usize, V> {
    cells
        .into_iter()
        .filter_map(|(i, v)| remap.get(i).copied().flatten().map(|j| (j, v)))
        .collect()
}

fn create_type(
    db: &Database,
    session_keyspace: Option<&str>,
    create: &CreateType,
) -> Result<Option<SchemaChange>, EngineError> {
    let keyspace = keyspace_name(create.name.keyspace.as_deref(), session_keyspace)?.to_owned();
    let mut catalog = db.catalog.write().unwrap();
    let ks = catalog
        .keyspaces
        .get_mut(&keyspace)
        .ok_or_else(|| invalid(format!("Keyspace '{keyspace}' does not exist")))?;
    if ks.types.contains_key(&create.name.name) {
        return if create.if_not_exists {
            Ok(None)
        } else {
            Err(invalid(format!(
                "A user type of name {keyspace}.{} already exists",
                create.name.name
            )))
        };
    }
    let mut fields = Vec::new();
    for (name, ty) in &create.fields {
        fields.push((
            name.clone(),
            resolve_type(ty, &keyspace, &ks.types)?,
            schema_type_text(ty),
        ));
    }
    ks.types.insert(
        create.name.name.clone(),
        UserType {
            keyspace: keyspace.clone(),
            name: create.name.name.clone(),
            fields,
        },
    );
    Ok(Some(schema_change(
        "CREATED",
        "TYPE",
        &keyspace,
        Some(&create.name.name),
    )))
}

fn drop_object(
    db: &Database,
    session_keyspace: Option<&str>,
    drop: &DropObject,
    target: &str,
) -> Result<Option<SchemaChange>, EngineError> {
    let keyspace = keyspace_name(drop.name.keyspace.as_deref(), session_keyspace)?.to_owned();
    let mut catalog = db.catalog.write().unwrap();
    let Some(ks) = catalog.keyspaces.get_mut(&keyspace) else {
        return if drop.if_exists {
            Ok(None)
        } else {
            Err(invalid(format!("Keyspace '{keyspace}' does not exist")))
        };
    };
    if ks.server_owned {
        return Err(invalid(format!(
            "Cannot drop objects of system keyspace {keyspace}"
        )));
    }
    let removed = match target {
        "TABLE" => ks.tables.remove(&drop.name.name).is_some(),
        _ => {
            let in_use = ks.tables.values().any(|t| {
                t.schema
                    .columns
                    .iter()
                    .any(|c| c.type_text.contains(&drop.name.name))
            });
            if in_use && ks.types.contains_key(&drop.name.name) {
                return Err(invalid(format!(
                    "Cannot drop user type {keyspace}.{} as it is still used",
                    drop.name.name
                )));
            }
            ks.types.remove(&drop.name.name).is_some()
        }
    };
    match (removed, drop.if_exists) {
        (true, _) => Ok(Some(schema_change(
            "DROPPED",
            target,
            &keyspace,
            Some(&drop.name.name),
        ))),
        (false, true) => Ok(None),
        (false, false) if target == "TABLE" => Err(unconfigured_table(&drop.name.name)),
        (false, false) => Err(invalid(format!(
            "No user type named {keyspace}.{} exists.",
            drop.name.name
        ))),
    }
}

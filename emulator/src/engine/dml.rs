//! INSERT, UPDATE, DELETE (with TTL, timestamps, collections, counters and
//! lightweight transactions).

use std::sync::Arc;

use cql_parser::ast::{
    Assignment, BindMarker, Delete, DeleteTarget, Insert, InsertJson, Statement, Term, Update,
    UsingClause,
};
use scylla_shard::protocol::request::Value;
use scylla_shard::protocol::response::ResultBody;
use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::value::CqlValue;

use super::availability;
use super::bind::is_conditional;
use super::error::{invalid, EngineError};
use super::json;
use super::lwt::{cas_columns, cas_result, check_condition, refuse_custom_timestamp};
use super::restrictions::{analyze, matches, Filter};
use super::routing::{judge, RoutingFacts};
use super::schema::{ColumnKind, ColumnSchema, Table, TableSchema};
use super::select::{routing_key, row_key, value_of};
use super::storage::{clustering_key, now_seconds, CellWrite, PartitionPosition};
use super::values::{
    compare_values, eval, is_empty_collection, server_write_timestamp, sort_dedup, to_value, Binds,
    Cell,
};
use super::{ExecContext, Outcome};

/// Runs one INSERT, UPDATE or DELETE (INSERT JSON as the INSERT it means).
pub fn modify(
    ctx: &ExecContext<'_>,
    statement: &Statement,
    binds: &Binds<'_>,
) -> Result<Outcome, EngineError> {
    if let Statement::InsertJson(insert) = statement {
        let (insert, values) = expand_insert_json(ctx, insert, binds)?;
        return modify(ctx, &Statement::Insert(insert), &Binds { values: &values });
    }
    let target = Target::resolve(ctx, statement, binds)?;
    for (_, key) in &target.partitions {
        availability::check(
            ctx,
            &target.table,
            routing_key(key).0,
            ctx.consistency,
            true,
        )?;
    }
    let routing = match &target.partitions[..] {
        [(_, key)] => Some(judge(ctx, &target.table, routing_key(key).0)),
        _ => None,
    };
    let result = if is_conditional(statement) {
        refuse_custom_timestamp(statement)?;
        let outcome = check_condition(&target, statement, binds)?;
        if outcome.applied {
            apply(ctx, &target, statement, binds, None)?;
        }
        let schema = &target.table.schema;
        let columns = cas_columns(schema, statement);
        cas_result(schema, &columns, outcome.applied, vec![outcome.old_row])
    } else {
        apply(ctx, &target, statement, binds, None)?;
        ResultBody::Void
    };
    Ok(Outcome {
        result,
        routing: routing.map(|r: RoutingFacts| r),
        warnings: Vec::new(),
    })
}

/// `INSERT INTO t JSON '{...}'` as the `INSERT INTO t (every column)
/// VALUES (...)` it stands for: the document's values are appended to the
/// request's bound values and referenced by markers. Columns the document
/// omits are null, or left alone with `DEFAULT UNSET`.
pub fn expand_insert_json(
    ctx: &ExecContext<'_>,
    insert: &InsertJson,
    binds: &Binds<'_>,
) -> Result<(Insert, Vec<Value>), EngineError> {
    let (table, _) = ctx.db.table(ctx.keyspace, &insert.table)?;
    let schema = &table.schema;
    let document = match to_value(&insert.json, &ColumnType::Text, binds)? {
        Some(CqlValue::Text(text)) => json::parse(&text)?,
        _ => return Err(invalid("Got null for INSERT JSON values")),
    };
    let json::Json::Object(members) = document else {
        return Err(invalid("JSON values map must be a JSON object"));
    };
    let mut by_column: Vec<Option<&json::Json>> = vec![None; schema.columns.len()];
    for (key, value) in &members {
        // Quoted keys are case-sensitive, as quoted identifiers are.
        let name = match key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
            Some(exact) => exact.to_owned(),
            None => key.to_lowercase(),
        };
        let index = *schema.by_name.get(&name).ok_or_else(|| {
            invalid(format!(
                "JSON values map contains unrecognized column: {key}"
            ))
        })?;
        by_column[index] = Some(value);
    }
    let mut values = binds.values.to_vec();
    let mut columns = Vec::with_capacity(schema.columns.len());
    let mut terms = Vec::with_capacity(schema.columns.len());
    for (column, json) in schema.columns.iter().zip(by_column) {
        let value = match json
            .map(|j| json::from_json(&column.ty, j))
            .transpose()?
            .flatten()
        {
            Some(v) => Value::Set(v.to_bytes().map_err(|e| invalid(e.to_string()))?),
            None if matches!(
                column.kind,
                ColumnKind::PartitionKey | ColumnKind::Clustering
            ) =>
            {
                return Err(invalid(format!(
                    "Missing mandatory PRIMARY KEY part {}",
                    column.name
                )))
            }
            None if json.is_none() && insert.default_unset => Value::Unset,
            None => Value::Null,
        };
        columns.push(column.name.clone());
        terms.push(Term::BindMarker(BindMarker {
            index: values.len(),
            name: None,
        }));
        values.push(value);
    }
    let expanded = Insert {
        table: insert.table.clone(),
        columns,
        values: terms,
        if_not_exists: insert.if_not_exists,
        using: insert.using.clone(),
    };
    Ok((expanded, values))
}

/// The table and partitions a modification touches.
pub struct Target {
    pub table: Arc<Table>,
    pub partitions: Vec<(PartitionPosition, Vec<Vec<u8>>)>,
}

impl Target {
    pub fn resolve(
        ctx: &ExecContext<'_>,
        statement: &Statement,
        binds: &Binds<'_>,
    ) -> Result<Target, EngineError> {
        let name = match statement {
            Statement::Insert(i) => &i.table,
            Statement::Update(u) => &u.table,
            Statement::Delete(d) => &d.table,
            Statement::InsertJson(_) => {
                return Err(invalid("INSERT JSON is not supported by the emulator"))
            }
            _ => {
                return Err(invalid(
                    "Only INSERT, UPDATE and DELETE statements are allowed in a BATCH",
                ))
            }
        };
        let (table, is_system) = ctx.db.table(ctx.keyspace, name)?;
        if is_system {
            return Err(EngineError::new(
                scylla_shard::protocol::response::error_code::UNAUTHORIZED,
                format!("{} keyspace is not user-modifiable.", table.schema.keyspace),
            ));
        }
        let schema = &table.schema;
        let keys: Vec<Vec<Vec<u8>>> = match statement {
            Statement::Insert(insert) => {
                let mut key = Vec::with_capacity(schema.partition_key.len());
                for &pk in &schema.partition_key {
                    let name = &schema.columns[pk].name;
                    let position =
                        insert
                            .columns
                            .iter()
                            .position(|c| c == name)
                            .ok_or_else(|| {
                                invalid(format!("Some partition key parts are missing: {name}"))
                            })?;
                    key.push(required(
                        eval(&insert.values[position], &schema.columns[pk].ty, binds)?,
                        name,
                    )?);
                }
                vec![key]
            }
            Statement::Update(Update { where_clause, .. })
            | Statement::Delete(Delete { where_clause, .. }) => {
                let restrictions = analyze(schema, where_clause, binds)?;
                if restrictions.filters_non_key {
                    return Err(invalid("Non PRIMARY KEY columns found in where clause"));
                }
                restrictions
                    .partition_keys()
                    .ok_or_else(|| invalid("Some partition key parts are missing"))?
            }
            _ => unreachable!("checked above"),
        };
        // Scylla validates every written key: a single-column partition
        // key may not be empty (composite keys may have empty parts).
        if schema.partition_key.len() == 1 && keys.iter().any(|k| k[0].is_empty()) {
            return Err(invalid("Key may not be empty"));
        }
        let partitions = keys
            .into_iter()
            .map(|key| {
                let (token, bytes) = routing_key(&key);
                ((token.value(), bytes), key)
            })
            .collect();
        Ok(Target { table, partitions })
    }
}

fn required(cell: Cell, column: &str) -> Result<Vec<u8>, EngineError> {
    match cell {
        Cell::Set(b) => Ok(b),
        Cell::Null => Err(invalid(format!(
            "Invalid null value in condition for column {column}"
        ))),
        Cell::Unset => Err(invalid(format!("Invalid unset value for column {column}"))),
    }
}

pub fn write_timestamp(
    ctx: &ExecContext<'_>,
    using: &UsingClause,
    batch_ts: Option<i64>,
    binds: &Binds<'_>,
) -> Result<i64, EngineError> {
    if let Some(term) = &using.timestamp {
        if let Cell::Set(b) = eval(term, &ColumnType::BigInt, binds)? {
            return Ok(i64::from_be_bytes(
                b.as_slice()
                    .try_into()
                    .map_err(|_| invalid("Invalid timestamp"))?,
            ));
        }
    }
    Ok(batch_ts
        .or(ctx.timestamp)
        .unwrap_or_else(server_write_timestamp))
}

fn write_ttl(
    schema: &TableSchema,
    using: &UsingClause,
    binds: &Binds<'_>,
) -> Result<i32, EngineError> {
    if let Some(term) = &using.ttl {
        if let Cell::Set(b) = eval(term, &ColumnType::Int, binds)? {
            let ttl = i32::from_be_bytes(
                b.as_slice()
                    .try_into()
                    .map_err(|_| invalid("Invalid TTL"))?,
            );
            if ttl < 0 {
                return Err(invalid(format!(
                    "A TTL must be greater or equal to 0, but was {ttl}"
                )));
            }
            return Ok(ttl);
        }
    }
    Ok(schema.default_ttl)
}

/// Clustering keys a statement addresses (full keys), or None for
/// statements on the static row / whole partition.
pub fn clustering_targets(
    schema: &TableSchema,
    statement: &Statement,
    binds: &Binds<'_>,
) -> Result<Option<Vec<Vec<Vec<u8>>>>, EngineError> {
    if schema.clustering_key.is_empty() {
        return Ok(Some(vec![Vec::new()]));
    }
    match statement {
        Statement::Insert(insert) => {
            let mut key = Vec::new();
            for &ck in &schema.clustering_key {
                let name = &schema.columns[ck].name;
                match insert.columns.iter().position(|c| c == name) {
                    Some(p) => key.push(required(
                        eval(&insert.values[p], &schema.columns[ck].ty, binds)?,
                        name,
                    )?),
                    None => {
                        let only_static = insert.columns.iter().all(|c| {
                            schema.column(c).is_ok_and(|(_, col)| {
                                matches!(col.kind, ColumnKind::PartitionKey | ColumnKind::Static)
                            })
                        });
                        if only_static {
                            return Ok(None);
                        }
                        return Err(invalid(format!("Some clustering keys are missing: {name}")));
                    }
                }
            }
            Ok(Some(vec![key]))
        }
        Statement::Update(Update { where_clause, .. }) => {
            let restrictions = analyze(schema, where_clause, binds)?;
            match restrictions.clustering_keys() {
                Some(keys) => Ok(Some(keys)),
                None if restrictions.clustering_values.iter().all(Option::is_none) => Ok(None),
                None => Err(invalid("Missing mandatory PRIMARY KEY part for UPDATE")),
            }
        }
        _ => unreachable!("DELETE resolves its rows itself"),
    }
}

/// Applies a statement's writes to every target partition.
pub fn apply(
    ctx: &ExecContext<'_>,
    target: &Target,
    statement: &Statement,
    binds: &Binds<'_>,
    batch: Option<(&UsingClause, i64)>,
) -> Result<(), EngineError> {
    let schema = target.table.schema.clone();
    let using = match statement {
        Statement::Insert(i) => &i.using,
        Statement::Update(u) => &u.using,
        Statement::Delete(d) => &d.using,
        _ => unreachable!("resolved above"),
    };
    let timestamp = write_timestamp(ctx, using, batch.map(|b| b.1), binds)?;
    let ttl = write_ttl(
        &schema,
        if using.ttl.is_some() {
            using
        } else {
            batch.map_or(using, |b| b.0)
        },
        binds,
    )?;
    match statement {
        Statement::Insert(insert) => insert_rows(target, &schema, insert, binds, timestamp, ttl),
        Statement::Update(update) => {
            update_rows(target, &schema, statement, update, binds, timestamp, ttl)
        }
        Statement::Delete(delete) => delete_rows(target, &schema, delete, binds, timestamp),
        _ => unreachable!("resolved above"),
    }
}

fn insert_rows(
    target: &Target,
    schema: &TableSchema,
    insert: &Insert,
    binds: &Binds<'_>,
    timestamp: i64,
    ttl: i32,
) -> Result<(), EngineError> {
    if schema.is_counter {
        return Err(invalid(
            "INSERT statements are not allowed on counter tables, use UPDATE instead",
        ));
    }
    if insert.columns.len() != insert.values.len() {
        return Err(invalid("Unmatched column names/values"));
    }
    let mut writes = Vec::new();
    for (name, term) in insert.columns.iter().zip(&insert.values) {
        let (index, column) = schema.column(name)?;
        if matches!(
            column.kind,
            ColumnKind::PartitionKey | ColumnKind::Clustering
        ) {
            continue;
        }
        match eval(term, &column.ty, binds)? {
            // An empty non-frozen collection is no cell: INSERT only
            // deletes what the column held.
            Cell::Set(value) if !(column.multi_cell && is_empty_collection(&column.ty, &value)) => {
                writes.push((
                    index,
                    CellWrite {
                        value: Some(value),
                        timestamp,
                        ttl,
                    },
                ))
            }
            Cell::Set(_) | Cell::Null => writes.push((
                index,
                CellWrite {
                    value: None,
                    timestamp,
                    ttl: 0,
                },
            )),
            Cell::Unset => {}
        }
    }
    let rows = clustering_targets(schema, &Statement::Insert(insert.clone()), binds)?;
    let marker = CellWrite {
        value: Some(Vec::new()),
        timestamp,
        ttl,
    };
    let mut data = target.table.data.lock().unwrap();
    for (position, key) in &target.partitions {
        match &rows {
            Some(rows) => {
                for ck in rows {
                    data.write_row(
                        schema,
                        position.clone(),
                        key,
                        Some(ck),
                        &writes,
                        Some(&marker),
                    );
                }
            }
            None => data.write_row(schema, position.clone(), key, None, &writes, None),
        }
    }
    Ok(())
}

fn update_rows(
    target: &Target,
    schema: &TableSchema,
    statement: &Statement,
    update: &Update,
    binds: &Binds<'_>,
    timestamp: i64,
    ttl: i32,
) -> Result<(), EngineError> {
    let rows = clustering_targets(schema, statement, binds)?;
    let mut data = target.table.data.lock().unwrap();
    let now = now_seconds();
    for (position, key) in &target.partitions {
        let targets: Vec<Option<Vec<Vec<u8>>>> = match &rows {
            Some(rows) => rows.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        for ck in targets {
            let mut writes = Vec::new();
            for assignment in &update.assignments {
                let (index, column) = schema.column(assignment.column())?;
                if matches!(
                    column.kind,
                    ColumnKind::PartitionKey | ColumnKind::Clustering
                ) {
                    return Err(invalid(format!(
                        "PRIMARY KEY part {} found in SET part",
                        column.name
                    )));
                }
                if ck.is_none() && column.kind != ColumnKind::Static {
                    return Err(invalid("Missing mandatory PRIMARY KEY part for UPDATE"));
                }
                let current = {
                    let partition = data.partitions.get(position);
                    let row = partition.and_then(|p| {
                        ck.as_ref()
                            .and_then(|ck| p.rows.get(&clustering_key(schema, ck)))
                    });
                    partition
                        .and_then(|p| value_of(schema, p, row, index, now))
                        .map(<[u8]>::to_vec)
                };
                if let Some(new_value) = assign(column, assignment, current.as_deref(), binds)? {
                    let ttl = if column.ty == ColumnType::Counter {
                        0
                    } else {
                        ttl
                    };
                    writes.push((
                        index,
                        CellWrite {
                            value: new_value,
                            timestamp,
                            ttl,
                        },
                    ));
                }
            }
            data.write_row(schema, position.clone(), key, ck.as_deref(), &writes, None);
        }
    }
    Ok(())
}

/// The new value of a column after an assignment: Some(None) deletes it,
/// None leaves it untouched (unset value).
fn assign(
    column: &ColumnSchema,
    assignment: &Assignment,
    current: Option<&[u8]>,
    binds: &Binds<'_>,
) -> Result<Option<Option<Vec<u8>>>, EngineError> {
    let (ty, name) = (&column.ty, column.name.as_str());
    let decode = |bytes: Option<&[u8]>| -> Result<Option<CqlValue>, EngineError> {
        bytes
            .map(|b| CqlValue::deserialize(ty, b).map_err(|e| invalid(e.to_string())))
            .transpose()
    };
    let encode = |v: CqlValue| -> Result<Option<Option<Vec<u8>>>, EngineError> {
        // Emptying a non-frozen collection deletes it; an empty frozen
        // collection is a value like any other.
        let empty = matches!(&v, CqlValue::List(x) | CqlValue::Set(x) if x.is_empty())
            || matches!(&v, CqlValue::Map(m) if m.is_empty());
        if empty && column.multi_cell {
            return Ok(Some(None));
        }
        Ok(Some(Some(
            v.to_bytes().map_err(|e| invalid(e.to_string()))?,
        )))
    };
    let operand = |term| -> Result<Option<CqlValue>, EngineError> {
        match eval(term, ty, binds)? {
            Cell::Unset => Err(invalid("unset")),
            _ => to_value(term, ty, binds),
        }
    };
    match assignment {
        Assignment::Set { value, .. } => {
            if *ty == ColumnType::Counter {
                return Err(invalid(format!("Cannot set the value of counter column {name} (counters can only be incremented/decremented, not set)")));
            }
            match eval(value, ty, binds)? {
                Cell::Set(b) => {
                    let v = CqlValue::deserialize(ty, &b).map_err(|e| invalid(e.to_string()))?;
                    encode(v)
                }
                Cell::Null => Ok(Some(None)),
                Cell::Unset => Ok(None),
            }
        }
        Assignment::Add { value, .. }
        | Assignment::Subtract { value, .. }
        | Assignment::Prepend { value, .. } => {
            if matches!(eval(value, ty, binds)?, Cell::Unset) {
                return Ok(None);
            }
            let subtract = matches!(assignment, Assignment::Subtract { .. });
            let prepend = matches!(assignment, Assignment::Prepend { .. });
            if *ty == ColumnType::Counter {
                let delta = match to_value(value, &ColumnType::BigInt, binds)? {
                    Some(CqlValue::BigInt(d)) => d,
                    _ => return Err(invalid("Invalid null value for counter increment")),
                };
                let base = match decode(current)? {
                    Some(CqlValue::Counter(c)) => c,
                    _ => 0,
                };
                let next = if subtract {
                    base.wrapping_sub(delta)
                } else {
                    base.wrapping_add(delta)
                };
                return encode(CqlValue::Counter(next));
            }
            let collection = matches!(
                ty,
                ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..)
            );
            if collection && !column.multi_cell {
                let op = if subtract { "-" } else { "+" };
                return Err(invalid(format!(
                    "Invalid operation ({name} = {name} {op} ...) for frozen collection column {name}"
                )));
            }
            let existing = decode(current)?;
            let result = match (ty, existing, operand(value)?) {
                (_, existing, None) => match existing {
                    Some(e) => e,
                    None => return Ok(None),
                },
                (ColumnType::List(_), existing, Some(CqlValue::List(items))) => {
                    let mut list = match existing {
                        Some(CqlValue::List(l)) => l,
                        _ => Vec::new(),
                    };
                    if subtract {
                        list.retain(|v| !items.contains(v));
                    } else if prepend {
                        list.splice(0..0, items);
                    } else {
                        list.extend(items);
                    }
                    CqlValue::List(list)
                }
                (ColumnType::Set(e), existing, Some(CqlValue::Set(items))) => {
                    let mut set = match existing {
                        Some(CqlValue::Set(s)) => s,
                        _ => Vec::new(),
                    };
                    if subtract {
                        set.retain(|v| !items.iter().any(|i| compare_values(i, v, e).is_eq()));
                    } else {
                        set.extend(items);
                        sort_dedup(&mut set, e);
                    }
                    CqlValue::Set(set)
                }
                (ColumnType::Map(k, _), existing, Some(CqlValue::Map(entries))) if !subtract => {
                    let mut map = match existing {
                        Some(CqlValue::Map(m)) => m,
                        _ => Vec::new(),
                    };
                    for (key, value) in entries {
                        map.retain(|(mk, _)| !compare_values(mk, &key, k).is_eq());
                        map.push((key, value));
                    }
                    map.sort_by(|a, b| compare_values(&a.0, &b.0, k));
                    CqlValue::Map(map)
                }
                _ => {
                    return Err(invalid(format!(
                        "Invalid operation on column {name} of type {ty}"
                    )))
                }
            };
            encode(result)
        }
        Assignment::SetElement { key, value, .. } => {
            if !column.multi_cell && matches!(ty, ColumnType::List(_) | ColumnType::Map(..)) {
                return Err(invalid(format!(
                    "Invalid operation ({name}[...] = ...) for frozen collection column {name}"
                )));
            }
            let existing = decode(current)?;
            match ty {
                ColumnType::Map(k, v) => {
                    let key =
                        to_value(key, k, binds)?.ok_or_else(|| invalid("Invalid null map key"))?;
                    let value = to_value(value, v, binds)?;
                    let mut map = match existing {
                        Some(CqlValue::Map(m)) => m,
                        _ => Vec::new(),
                    };
                    map.retain(|(mk, _)| !compare_values(mk, &key, k).is_eq());
                    if let Some(value) = value {
                        map.push((key, value));
                    }
                    map.sort_by(|a, b| compare_values(&a.0, &b.0, k));
                    encode(CqlValue::Map(map))
                }
                ColumnType::List(e) => {
                    let index = match to_value(key, &ColumnType::Int, binds)? {
                        Some(CqlValue::Int(i)) => i,
                        _ => return Err(invalid("Invalid null list index")),
                    };
                    let mut list = match existing {
                        Some(CqlValue::List(l)) => l,
                        _ => Vec::new(),
                    };
                    let slot = usize::try_from(index)
                        .ok()
                        .filter(|&i| i < list.len())
                        .ok_or_else(|| {
                            invalid(format!(
                                "List index {index} out of bound, list has size {}",
                                list.len()
                            ))
                        })?;
                    match to_value(value, e, binds)? {
                        Some(v) => list[slot] = v,
                        None => {
                            list.remove(slot);
                        }
                    }
                    encode(CqlValue::List(list))
                }
                _ => Err(invalid(format!(
                    "Invalid operation ({name}[...] = ...) for non list/map column {name}"
                ))),
            }
        }
        Assignment::SetField { field, value, .. } => {
            let ColumnType::Udt(udt) = ty else {
                return Err(invalid(format!(
                    "Invalid operation ({name}.{field} = ...) for non-UDT column {name}"
                )));
            };
            let field_ty = udt
                .fields
                .iter()
                .find(|(n, _)| n == field)
                .map(|(_, t)| t)
                .ok_or_else(|| {
                    invalid(format!(
                        "UDT column {name} does not have a field named {field}"
                    ))
                })?;
            let mut fields = match decode(current)? {
                Some(CqlValue::Udt(f)) => f,
                _ => udt.fields.iter().map(|(n, _)| (n.clone(), None)).collect(),
            };
            let new_value = to_value(value, field_ty, binds)?;
            if let Some(slot) = fields.iter_mut().find(|(n, _)| n == field) {
                slot.1 = new_value;
            }
            encode(CqlValue::Udt(fields))
        }
    }
}

fn delete_rows(
    target: &Target,
    schema: &TableSchema,
    delete: &Delete,
    binds: &Binds<'_>,
    timestamp: i64,
) -> Result<(), EngineError> {
    let restrictions = analyze(schema, &delete.where_clause, binds)?;
    let prefix = restrictions.clustering_eq_prefix();
    let full_keys = restrictions.clustering_keys();
    let range_filters: Vec<Filter> = restrictions
        .filters
        .iter()
        .filter(|f| {
            !matches!(
                f,
                Filter::Compare {
                    op: cql_parser::ast::Operator::Eq,
                    ..
                }
            )
        })
        .cloned()
        .collect();
    let mut data = target.table.data.lock().unwrap();
    let now = now_seconds();
    for (position, key) in &target.partitions {
        if delete.targets.is_empty() {
            match (&full_keys, range_filters.is_empty()) {
                (Some(keys), _) if !schema.clustering_key.is_empty() => {
                    for ck in keys {
                        data.delete_rows(schema, position, ck, timestamp);
                    }
                }
                (_, true) => data.delete_rows(schema, position, &prefix, timestamp),
                (_, false) => {
                    // Range deletion: every row within the prefix that
                    // passes the range restrictions.
                    let doomed: Vec<Vec<Vec<u8>>> = data
                        .partitions
                        .get(position)
                        .map(|p| {
                            p.rows
                                .values()
                                .filter(|row| {
                                    row.clustering.starts_with(&prefix)
                                        && restrictions.filters.iter().all(|f| {
                                            matches(schema, f, |c| {
                                                value_of(schema, p, Some(row), c, now)
                                            })
                                        })
                                })
                                .map(|row| row.clustering.clone())
                                .collect()
                        })
                        .unwrap_or_default();
                    for ck in doomed {
                        data.delete_rows(schema, position, &ck, timestamp);
                    }
                }
            }
            continue;
        }
        // Column deletions: tombstones (or element removal) per column.
        let rows: Vec<Option<Vec<Vec<u8>>>> = match &full_keys {
            Some(keys) => keys.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        for ck in rows {
            let mut writes = Vec::new();
            for t in &delete.targets {
                let (name, element) = match t {
                    DeleteTarget::Column(n) => (n, None),
                    DeleteTarget::Element { column, key } => (column, Some(key)),
                    DeleteTarget::Field { .. } => {
                        return Err(invalid(
                            "Deleting UDT fields is not supported by the emulator",
                        ))
                    }
                };
                let (index, column) = schema.column(name)?;
                if ck.is_none()
                    && column.kind == ColumnKind::Regular
                    && !schema.clustering_key.is_empty()
                {
                    return Err(invalid(
                        "Missing mandatory PRIMARY KEY part for DELETE of a regular column",
                    ));
                }
                let value = match element {
                    None => None,
                    Some(key) => {
                        let current = data.partitions.get(position).and_then(|p| {
                            let row = ck.as_ref().and_then(|ck| p.rows.get(&row_key(schema, ck)));
                            value_of(schema, p, row, index, now).map(<[u8]>::to_vec)
                        });
                        let removal = Assignment::SetElement {
                            column: name.clone(),
                            key: key.clone(),
                            value: cql_parser::ast::Term::Literal(cql_parser::ast::Literal::Null),
                        };
                        match assign(column, &removal, current.as_deref(), binds)? {
                            Some(v) => v,
                            None => continue,
                        }
                    }
                };
                writes.push((
                    index,
                    CellWrite {
                        value,
                        timestamp,
                        ttl: 0,
                    },
                ));
            }
            data.write_row(schema, position.clone(), key, ck.as_deref(), &writes, None);
        }
    }
    Ok(())
}

//! Bind variables: PREPARE metadata (names, types, partition-key indexes,
//! LWT flag) and ordering of values sent by name.

use cql_parser::{BindReceiver, PathStep, Statement};
use scylla_shard::protocol::request::{QueryParameters, Value};
use scylla_shard::protocol::response::{ColumnSpec, PreparedMetadata, ResultMetadata};
use scylla_shard::protocol::types::ColumnType;

use super::error::{invalid, EngineError};
use super::schema::{resolve_type, TableSchema};
use super::{lwt, select, Database};

/// The values in marker order (resolving names when sent by name). As
/// Scylla, the count must match the statement's markers exactly.
pub fn order_values(
    statement: &Statement,
    params: &QueryParameters,
) -> Result<Vec<Value>, EngineError> {
    let markers = statement.bind_marker_count();
    if params.values.len() != markers {
        return Err(invalid(format!(
            "Invalid amount of bind variables: expected {markers} received {}",
            params.values.len()
        )));
    }
    let Some(names) = &params.value_names else {
        return Ok(params.values.clone());
    };
    statement
        .bind_variables()
        .iter()
        .map(|var| {
            let name = var.name();
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&name))
                .map(|i| params.values[i].clone())
                .ok_or_else(|| invalid(format!("Invalid unset value for column {name}")))
        })
        .collect()
}

fn table_of(statement: &Statement) -> Option<&cql_parser::ast::QualifiedName> {
    match statement {
        Statement::Select(s) => Some(&s.table),
        Statement::Insert(i) => Some(&i.table),
        Statement::Update(u) => Some(&u.table),
        Statement::Delete(d) => Some(&d.table),
        Statement::InsertJson(i) => Some(&i.table),
        _ => None,
    }
}

pub fn is_conditional(statement: &Statement) -> bool {
    match statement {
        Statement::Insert(i) => i.if_not_exists,
        Statement::InsertJson(i) => i.if_not_exists,
        Statement::Update(u) => u.condition.is_some(),
        Statement::Delete(d) => d.condition.is_some(),
        Statement::Batch(b) => b.statements.iter().any(is_conditional),
        _ => false,
    }
}

/// PREPARE metadata: bind variables and result columns.
pub fn prepared_metadata(
    db: &Database,
    keyspace: Option<&str>,
    statement: &Statement,
) -> Result<(PreparedMetadata, ResultMetadata), EngineError> {
    let parts: Vec<&Statement> = match statement {
        Statement::Batch(b) => b.statements.iter().collect(),
        other => vec![other],
    };
    let mut bind_columns = Vec::new();
    let mut pk_indexes = Vec::new();
    for part in &parts {
        let Some(name) = table_of(part) else {
            if part.bind_marker_count() > 0 {
                return Err(invalid("Bind markers are not supported in this statement"));
            }
            continue;
        };
        let (table, _) = db.table(keyspace, name)?;
        let schema = &table.schema;
        let types = {
            let catalog = db.catalog.read().unwrap();
            catalog
                .keyspaces
                .get(&schema.keyspace)
                .map(|k| k.types.clone())
                .unwrap_or_default()
        };
        let variables = part.bind_variables();
        for var in &variables {
            bind_columns.push(ColumnSpec::new(
                &schema.keyspace,
                &schema.name,
                &var.name(),
                receiver_type(schema, &var.receiver, &types)?,
            ));
        }
        if parts.len() == 1 {
            pk_indexes = partition_key_indexes(schema, &variables);
        }
    }
    let result = match statement {
        Statement::Select(s) => {
            let (table, _) = db.table(keyspace, &s.table)?;
            ResultMetadata::with_columns(select::output_columns(&table.schema, s)?)
        }
        // As Scylla: a conditional statement's result columns are fixed, so
        // PREPARED announces them.
        Statement::Batch(b) if is_conditional(statement) => match b.statements.first() {
            Some(first) => {
                let name = table_of(first).ok_or_else(|| invalid("Invalid statement in batch"))?;
                let (table, _) = db.table(keyspace, name)?;
                let columns = lwt::batch_cas_columns(&table.schema, &b.statements);
                lwt::cas_metadata(&table.schema, &columns)
            }
            None => ResultMetadata::default(),
        },
        other if is_conditional(other) => {
            let name = table_of(other).ok_or_else(|| invalid("Invalid conditional statement"))?;
            let (table, _) = db.table(keyspace, name)?;
            let columns = lwt::cas_columns(&table.schema, other);
            lwt::cas_metadata(&table.schema, &columns)
        }
        _ => ResultMetadata::default(),
    };
    Ok((
        PreparedMetadata {
            is_lwt: is_conditional(statement),
            pk_indexes,
            bind_columns,
        },
        result,
    ))
}

/// For each partition-key column, the marker that binds it; empty unless
/// every column is bound by exactly one marker.
fn partition_key_indexes(
    schema: &TableSchema,
    variables: &[cql_parser::BoundVariable],
) -> Vec<u16> {
    let mut indexes = Vec::new();
    for &column in &schema.partition_key {
        let name = &schema.columns[column].name;
        let mut found = variables.iter().enumerate().filter(|(_, v)| {
            matches!(&v.receiver, BindReceiver::Column { name: n, path } if n == name && path.is_empty())
        });
        match (found.next(), found.next()) {
            (Some((position, _)), None) => indexes.push(position as u16),
            _ => return Vec::new(),
        }
    }
    indexes
}

fn receiver_type(
    schema: &TableSchema,
    receiver: &BindReceiver,
    types: &std::collections::BTreeMap<String, super::schema::UserType>,
) -> Result<ColumnType, EngineError> {
    let column_path = |name: &str, path: &[PathStep]| -> Result<ColumnType, EngineError> {
        let (_, column) = schema.column(name)?;
        let mut ty = column.ty.clone();
        for step in path {
            ty = match (step, &ty) {
                (PathStep::Key, ColumnType::Map(k, _)) => (**k).clone(),
                (PathStep::Key, ColumnType::List(_)) => ColumnType::Int,
                (PathStep::Value, ColumnType::Map(_, v)) => (**v).clone(),
                (PathStep::Value, ColumnType::List(e) | ColumnType::Set(e)) => (**e).clone(),
                (PathStep::TupleField(i), ColumnType::Tuple(ts)) => ts
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| invalid(format!("Invalid tuple literal for {name}")))?,
                (PathStep::Field(f), ColumnType::Udt(u)) => u
                    .fields
                    .iter()
                    .find(|(n, _)| n == f)
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| invalid(format!("Unknown field {f} of {name}")))?,
                _ => {
                    return Err(invalid(format!(
                        "Invalid bind marker position on column {name}"
                    )))
                }
            };
        }
        Ok(ty)
    };
    Ok(match receiver {
        BindReceiver::Column { name, path } => column_path(name, path)?,
        BindReceiver::InList { column, path } => {
            ColumnType::List(Box::new(column_path(column, path)?))
        }
        BindReceiver::ColumnTuple { columns } => ColumnType::Tuple(
            columns
                .iter()
                .map(|c| column_path(c, &[]))
                .collect::<Result<_, _>>()?,
        ),
        BindReceiver::InTupleList { columns } => ColumnType::List(Box::new(ColumnType::Tuple(
            columns
                .iter()
                .map(|c| column_path(c, &[]))
                .collect::<Result<_, _>>()?,
        ))),
        BindReceiver::Token { .. } => ColumnType::BigInt,
        BindReceiver::Cast(ty) => resolve_type(ty, &schema.keyspace, types)?,
        BindReceiver::Json => ColumnType::Text,
        BindReceiver::Limit | BindReceiver::PerPartitionLimit | BindReceiver::Ttl => {
            ColumnType::Int
        }
        BindReceiver::Timestamp => ColumnType::BigInt,
        BindReceiver::Timeout => ColumnType::Duration,
        BindReceiver::FunctionArgument { .. } | BindReceiver::Other(_) => ColumnType::Blob,
    })
}

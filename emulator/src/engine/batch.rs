//! BATCH, as one QUERY of `BEGIN BATCH ... APPLY BATCH` or as the BATCH
//! message: conditional batches on one partition, and Scylla's size
//! guardrail (a warning above 128 KiB, a refusal above 1 MiB).

use std::collections::BTreeSet;
use std::sync::Arc;

use cql_parser::ast::{Assignment, BatchKind, Statement, UsingClause};
use scylla_shard::protocol::request::{self, Batch, BatchStatementKind};
use scylla_shard::protocol::response::ResultBody;

use super::bind::is_conditional;
use super::dml::{apply, expand_insert_json, write_timestamp, Target};
use super::error::{invalid, EngineError};
use super::lwt::{batch_cas_columns, cas_result, check_condition, refuse_custom_timestamp};
use super::values::{eval, server_write_timestamp, Binds, Cell};
use super::{ExecContext, Outcome};

/// Scylla's `batch_size_warn_threshold_in_kb` (128) and
/// `batch_size_fail_threshold_in_kb` (1024) defaults, in bytes.
pub const BATCH_WARN_THRESHOLD: usize = 128 * 1024;
pub const BATCH_FAIL_THRESHOLD: usize = 1024 * 1024;

/// `BEGIN BATCH ... APPLY BATCH` sent as one QUERY.
pub fn text_batch(
    ctx: &ExecContext<'_>,
    batch: &cql_parser::ast::Batch,
    binds: &Binds<'_>,
) -> Result<Outcome, EngineError> {
    let timestamp = write_timestamp(ctx, &batch.using, None, binds)?;
    let parts: Vec<(&Statement, &Binds<'_>)> =
        batch.statements.iter().map(|s| (s, binds)).collect();
    let logged = batch.kind == BatchKind::Logged;
    run_batch(ctx, &parts, &batch.using, timestamp, logged)
}

/// The BATCH message: statements by text or prepared id, each with values.
pub fn protocol_batch(
    ctx: &ExecContext<'_>,
    node: &crate::cluster::Node,
    batch: &Batch,
) -> Result<Outcome, EngineError> {
    let mut statements = Vec::with_capacity(batch.statements.len());
    for entry in &batch.statements {
        let statement = match &entry.statement {
            BatchStatementKind::Query(text) => Arc::new(
                cql_parser::parse_statement(text)
                    .map_err(|e| super::error::syntax(e.to_string()))?,
            ),
            BatchStatementKind::Prepared(id) => {
                let prepared = node
                    .prepared
                    .lock()
                    .unwrap()
                    .get(id)
                    .cloned()
                    .ok_or_else(|| super::error::unprepared(id))?;
                Arc::new(prepared.statement.clone())
            }
        };
        let markers = statement.bind_marker_count();
        if entry.values.len() != markers {
            return Err(invalid(format!(
                "There were {markers} markers(?) in CQL but {} bound variables",
                entry.values.len()
            )));
        }
        statements.push((statement, entry.values.clone()));
    }
    let binds: Vec<Binds<'_>> = statements
        .iter()
        .map(|(_, v)| Binds { values: v })
        .collect();
    let parts: Vec<(&Statement, &Binds<'_>)> = statements
        .iter()
        .zip(&binds)
        .map(|((s, _), b)| (s.as_ref(), b))
        .collect();
    let timestamp = batch
        .timestamp
        .or(ctx.timestamp)
        .unwrap_or_else(server_write_timestamp);
    let logged = batch.kind == request::BatchKind::Logged;
    run_batch(ctx, &parts, &UsingClause::default(), timestamp, logged)
}

fn run_batch(
    ctx: &ExecContext<'_>,
    parts: &[(&Statement, &Binds<'_>)],
    using: &UsingClause,
    timestamp: i64,
    logged: bool,
) -> Result<Outcome, EngineError> {
    // INSERT JSON statements run as the INSERTs they stand for.
    let expanded = parts
        .iter()
        .map(|(statement, binds)| match statement {
            Statement::InsertJson(insert) => expand_insert_json(ctx, insert, binds)
                .map(|(insert, values)| Some((Statement::Insert(insert), values))),
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expanded_binds: Vec<Option<Binds<'_>>> = expanded
        .iter()
        .map(|e| e.as_ref().map(|(_, values)| Binds { values }))
        .collect();
    let parts: Vec<(&Statement, &Binds<'_>)> = parts
        .iter()
        .zip(expanded.iter().zip(&expanded_binds))
        .map(|(&(statement, binds), expansion)| match expansion {
            (Some((insert, _)), Some(values)) => (insert, values),
            _ => (statement, binds),
        })
        .collect();
    let parts = &parts[..];
    let mut targets = Vec::with_capacity(parts.len());
    for (statement, binds) in parts {
        let target = Target::resolve(ctx, statement, binds)?;
        for (_, key) in &target.partitions {
            let token = super::select::routing_key(key).0;
            super::availability::check(ctx, &target.table, token, ctx.consistency, true)?;
        }
        targets.push(target);
    }
    let conditional = parts.iter().any(|(s, _)| is_conditional(s));
    let mut cas = None;
    if conditional {
        let first = &targets[0];
        for target in &targets {
            if !Arc::ptr_eq(&target.table, &first.table) || target.partitions != first.partitions {
                return Err(invalid(
                    "BATCH with conditions cannot span multiple partitions",
                ));
            }
        }
        if using.timestamp.is_some() {
            return Err(invalid(
                "Cannot provide custom timestamp for conditional BATCH",
            ));
        }
        // Every condition is checked against the data before any write;
        // each statement reports the row it addresses as it was.
        let mut applied = true;
        let mut old_rows = Vec::with_capacity(parts.len());
        for ((statement, binds), target) in parts.iter().zip(&targets) {
            refuse_custom_timestamp(statement)?;
            let outcome = check_condition(target, statement, binds)?;
            applied &= outcome.applied;
            old_rows.push(outcome.old_row);
        }
        cas = Some((applied, old_rows));
    }
    if let Some((false, old_rows)) = cas {
        let schema = &targets[0].table.schema;
        let columns = batch_cas_columns(schema, parts.iter().map(|(s, _)| *s));
        return Ok(Outcome::plain(cas_result(
            schema, &columns, false, old_rows,
        )));
    }
    // Conditional batches are one partition; others pass the size guardrail.
    let warnings = match cas {
        Some(_) => Vec::new(),
        None => verify_batch_size(parts, &targets, logged)?,
    };
    for ((statement, binds), target) in parts.iter().zip(&targets) {
        apply(ctx, target, statement, binds, Some((using, timestamp)))?;
    }
    if let Some((applied, old_rows)) = cas {
        let schema = &targets[0].table.schema;
        let columns = batch_cas_columns(schema, parts.iter().map(|(s, _)| *s));
        return Ok(Outcome::plain(cas_result(
            schema, &columns, applied, old_rows,
        )));
    }
    Ok(Outcome {
        result: ResultBody::Void,
        routing: None,
        warnings,
    })
}

/// Scylla's guardrail for batches that modify more than one partition:
/// above the warn threshold the client gets a warning (Scylla logs it),
/// above the fail threshold the batch is refused before any write. The
/// size is the bytes of the keys and values the batch writes.
fn verify_batch_size(
    parts: &[(&Statement, &Binds<'_>)],
    targets: &[Target],
    logged: bool,
) -> Result<Vec<String>, EngineError> {
    let mut partitions = BTreeSet::new();
    let mut tables = BTreeSet::new();
    let mut size = 0usize;
    for ((statement, binds), target) in parts.iter().zip(targets) {
        let schema = &target.table.schema;
        tables.insert(format!("{}.{}", schema.keyspace, schema.name));
        for (position, key) in &target.partitions {
            partitions.insert((Arc::as_ptr(&target.table) as usize, position.clone()));
            size += key.iter().map(Vec::len).sum::<usize>();
        }
        size += written_bytes(target, statement, binds);
    }
    if partitions.len() <= 1 || size <= BATCH_WARN_THRESHOLD {
        return Ok(Vec::new());
    }
    if size > BATCH_FAIL_THRESHOLD {
        return Err(invalid("Batch too large"));
    }
    let tables: Vec<String> = tables.into_iter().collect();
    Ok(vec![format!(
        "{} batch modifying {} partitions in {} is of size {size} bytes, exceeding specified WARN threshold of {BATCH_WARN_THRESHOLD} by {}.",
        if logged { "Logged" } else { "Unlogged" },
        partitions.len(),
        tables.join(", "),
        size - BATCH_WARN_THRESHOLD
    )])
}

/// Bytes of the values a statement writes (partition keys are counted by
/// the caller).
fn written_bytes(target: &Target, statement: &Statement, binds: &Binds<'_>) -> usize {
    let schema = &target.table.schema;
    let cell = |column: &str, term| {
        let Ok((index, column)) = schema.column(column) else {
            return 0;
        };
        if schema.partition_key.contains(&index) {
            return 0;
        }
        match eval(term, &column.ty, binds) {
            Ok(Cell::Set(bytes)) => bytes.len(),
            _ => 0,
        }
    };
    match statement {
        Statement::Insert(insert) => insert
            .columns
            .iter()
            .zip(&insert.values)
            .map(|(c, v)| cell(c, v))
            .sum(),
        Statement::Update(update) => update
            .assignments
            .iter()
            .map(|a| match a {
                Assignment::Set { column, value }
                | Assignment::Add { column, value }
                | Assignment::Prepend { column, value }
                | Assignment::Subtract { column, value }
                | Assignment::SetField { column, value, .. } => cell(column, value),
                Assignment::SetElement { value, .. } => binds_len(value, binds),
            })
            .sum(),
        _ => 0,
    }
}

/// The size of an element value, whatever its type: the bound bytes or the
/// literal's text.
fn binds_len(term: &cql_parser::ast::Term, binds: &Binds<'_>) -> usize {
    match term.as_bind_marker() {
        Some(m) => binds
            .values
            .get(m.index)
            .and_then(|v| v.as_bytes())
            .map_or(0, <[u8]>::len),
        None => term.to_string().len(),
    }
}

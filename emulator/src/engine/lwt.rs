//! Lightweight transactions: evaluating `IF` conditions against the current
//! row, and the result Scylla returns for them: `[applied]` followed by the
//! row's columns, with the same metadata whether the statement applied or
//! not (so PREPARED can announce it).

use cql_parser::ast::{Condition, ConditionTarget, Delete, Operator, Predicate, Statement, Update};
use scylla_shard::protocol::response::{ColumnSpec, ResultBody, ResultMetadata, Rows};
use scylla_shard::protocol::types::ColumnType;

use super::bind::is_conditional;
use super::dml::{clustering_targets, Target};
use super::error::{invalid, EngineError};
use super::restrictions::{analyze, in_values, matches, Filter};
use super::schema::TableSchema;
use super::select::{row_key, value_of};
use super::storage::{now_seconds, Partition, Row};
use super::values::{eval, Binds, Cell};

/// Every column's value of a row, in schema order.
pub type RowValues = Vec<Option<Vec<u8>>>;

/// What a conditional statement found: whether its condition holds, and
/// the row it addresses as it was before (None when there is none).
pub struct CasOutcome {
    pub applied: bool,
    pub old_row: Option<RowValues>,
}

/// The columns a conditional statement reports after `[applied]`, in schema
/// order: every column for `IF EXISTS` / `IF NOT EXISTS`, otherwise the
/// columns its conditions test. Non-conditional statements report none.
pub fn cas_columns(schema: &TableSchema, statement: &Statement) -> Vec<usize> {
    let condition = match statement {
        Statement::Insert(insert) if insert.if_not_exists => &Condition::Exists,
        Statement::InsertJson(insert) if insert.if_not_exists => &Condition::Exists,
        Statement::Update(Update {
            condition: Some(c), ..
        })
        | Statement::Delete(Delete {
            condition: Some(c), ..
        }) => c,
        _ => return Vec::new(),
    };
    match condition {
        Condition::Exists => (0..schema.columns.len()).collect(),
        Condition::Columns(conditions) => {
            let mut tested: Vec<usize> = conditions
                .iter()
                .filter_map(|c| {
                    let name = match &c.target {
                        ConditionTarget::Column(n) => n,
                        ConditionTarget::Element { column, .. }
                        | ConditionTarget::Field { column, .. } => column,
                    };
                    schema.by_name.get(name).copied()
                })
                .collect();
            tested.sort_unstable();
            tested.dedup();
            tested
        }
    }
}

/// The columns of a conditional batch's result: the primary key, then
/// every column any of its statements reports, in schema order.
pub fn batch_cas_columns<'a>(
    schema: &TableSchema,
    statements: impl IntoIterator<Item = &'a Statement>,
) -> Vec<usize> {
    let mut columns: Vec<usize> = schema
        .partition_key
        .iter()
        .chain(&schema.clustering_key)
        .copied()
        .collect();
    for statement in statements {
        columns.extend(cas_columns(schema, statement));
    }
    columns.sort_unstable();
    columns.dedup();
    columns
}

/// Result metadata of a conditional statement or batch.
pub fn cas_metadata(schema: &TableSchema, columns: &[usize]) -> ResultMetadata {
    let spec =
        |name: &str, ty: ColumnType| ColumnSpec::new(&schema.keyspace, &schema.name, name, ty);
    let mut specs = vec![spec("[applied]", ColumnType::Boolean)];
    specs.extend(columns.iter().map(|&c| {
        let column = &schema.columns[c];
        spec(&column.name, column.ty.clone())
    }));
    ResultMetadata::with_columns(specs)
}

/// One result row per statement: `[applied]`, then the reported columns of
/// the row as it was before, or nulls when there was no such row.
pub fn cas_result(
    schema: &TableSchema,
    columns: &[usize],
    applied: bool,
    old_rows: Vec<Option<RowValues>>,
) -> ResultBody {
    let rows = old_rows
        .into_iter()
        .map(|old| {
            let mut row = vec![Some(vec![u8::from(applied)])];
            match old {
                Some(values) => row.extend(columns.iter().map(|&c| values[c].clone())),
                None => row.resize(columns.len() + 1, None),
            }
            row
        })
        .collect();
    ResultBody::Rows(
        Rows::from_cells(cas_metadata(schema, columns), rows).expect("one cell per column"),
    )
}

/// Evaluates a statement's condition against the current data (a statement
/// without one holds), returning the row it addresses as it was.
pub fn check_condition(
    target: &Target,
    statement: &Statement,
    binds: &Binds<'_>,
) -> Result<CasOutcome, EngineError> {
    let schema = &target.table.schema;
    if target.partitions.len() != 1 {
        return Err(invalid(
            "IN on the partition key is not supported with conditional updates",
        ));
    }
    let (position, _) = &target.partitions[0];
    let ck = match statement {
        Statement::Delete(Delete { where_clause, .. }) => {
            let r = analyze(schema, where_clause, binds)?;
            r.clustering_keys()
                .and_then(|mut k| (k.len() == 1).then(|| k.remove(0)))
        }
        _ => clustering_targets(schema, statement, binds)?
            .and_then(|mut k| (k.len() == 1).then(|| k.remove(0))),
    };
    let data = target.table.data.lock().unwrap();
    let now = now_seconds();
    let partition: Option<&Partition> = data.partitions.get(position);
    let row: Option<&Row> = match (&ck, partition) {
        (Some(ck), Some(p)) if !schema.clustering_key.is_empty() => {
            p.rows.get(&row_key(schema, ck)).filter(|r| r.is_live(now))
        }
        (Some(_), Some(p)) => p.rows.get(&Vec::new()).filter(|r| r.is_live(now)),
        _ => None,
    };
    let exists =
        row.is_some() || (ck.is_none() && partition.is_some_and(|p| p.has_live_static(now)));
    let old_row = partition.filter(|_| exists).map(|p| {
        (0..schema.columns.len())
            .map(|c| value_of(schema, p, row, c, now).map(<[u8]>::to_vec))
            .collect()
    });
    let condition = match statement {
        Statement::Insert(insert) if insert.if_not_exists => {
            return Ok(CasOutcome {
                applied: !exists,
                old_row,
            })
        }
        Statement::Update(u) => u.condition.as_ref(),
        Statement::Delete(d) => d.condition.as_ref(),
        _ => None,
    };
    let applied = match condition {
        None => true,
        Some(Condition::Exists) => exists,
        Some(Condition::Columns(conditions)) => {
            let mut all = true;
            for c in conditions {
                let ConditionTarget::Column(name) = &c.target else {
                    return Err(invalid(
                        "Conditions on collection elements are not supported by the emulator",
                    ));
                };
                let (index, column) = schema.column(name)?;
                let actual = partition.and_then(|p| value_of(schema, p, row, index, now));
                let holds = match &c.predicate {
                    Predicate::Compare { op, value } => match eval(value, &column.ty, binds)? {
                        Cell::Null | Cell::Unset => match op {
                            Operator::Eq => actual.is_none(),
                            Operator::Neq => actual.is_some(),
                            _ => {
                                return Err(invalid(
                                    "Invalid comparison with null for LWT condition",
                                ))
                            }
                        },
                        Cell::Set(expected) => {
                            let filter = Filter::Compare {
                                column: index,
                                op: *op,
                                value: expected,
                            };
                            matches(schema, &filter, |_| actual)
                        }
                    },
                    Predicate::In(values) => {
                        let values = in_values(values, &column.ty, name, binds)?;
                        let filter = Filter::In {
                            column: index,
                            values,
                        };
                        matches(schema, &filter, |_| actual)
                    }
                };
                all &= holds;
            }
            all
        }
    };
    Ok(CasOutcome { applied, old_row })
}

/// Scylla refuses client timestamps on conditional statements.
pub fn refuse_custom_timestamp(statement: &Statement) -> Result<(), EngineError> {
    let using = match statement {
        Statement::Insert(i) => &i.using,
        Statement::Update(u) => &u.using,
        Statement::Delete(d) => &d.using,
        _ => return Ok(()),
    };
    if is_conditional(statement) && using.timestamp.is_some() {
        return Err(invalid(
            "Cannot provide custom timestamp for conditional updates",
        ));
    }
    Ok(())
}

//! SELECT over user and system tables: restrictions, ordering, limits,
//! aggregates (COUNT), WRITETIME/TTL/token(), and paging.

use std::ops::Bound;

use cql_parser::ast::{Select, Selection, Selector, Term};
use scylla_shard::protocol::request::QueryParameters;
use scylla_shard::protocol::response::{ColumnSpec, ResultBody, ResultMetadata, Rows};
use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::wire::{put_i32, put_i64, Reader};
use scylla_shard::routing::token::{token_of_partition_key, Token};

use super::error::{invalid, EngineError};
use super::restrictions::{analyze, matches, Restrictions};
use super::routing::judge;
use super::schema::{ColumnKind, TableSchema};
use super::storage::{clustering_key, now_seconds, Partition, Row, TableData};
use super::values::{eval, Binds, Cell};
use super::{system_tables, ExecContext, Outcome};

#[derive(Debug, Clone, Copy)]
enum Projection {
    Column(usize),
    WriteTime(usize),
    Ttl(usize),
    Token,
    Count,
}

fn spec(schema: &TableSchema, name: String, ty: ColumnType) -> ColumnSpec {
    ColumnSpec {
        keyspace: schema.keyspace.as_str().into(),
        table: schema.name.as_str().into(),
        name,
        ty,
    }
}

fn projections(
    schema: &TableSchema,
    select: &Select,
) -> Result<Vec<(Projection, ColumnSpec)>, EngineError> {
    if select.json {
        return Err(invalid("SELECT JSON is not supported by the emulator"));
    }
    let items = match &select.selection {
        Selection::Star => {
            return Ok(schema
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        Projection::Column(i),
                        spec(schema, c.name.clone(), c.ty.clone()),
                    )
                })
                .collect())
        }
        Selection::Items(items) => items,
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let (projection, name, ty) = match &item.selector {
            Selector::Column(name) => {
                let (i, c) = schema.column(name)?;
                (Projection::Column(i), name.clone(), c.ty.clone())
            }
            Selector::CountRows => (Projection::Count, "count".to_owned(), ColumnType::BigInt),
            Selector::WriteTime(name) => {
                let (i, c) = schema.column(name)?;
                if matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering) {
                    return Err(invalid(format!(
                        "Cannot use selection function writeTime on PRIMARY KEY part {name}"
                    )));
                }
                (
                    Projection::WriteTime(i),
                    format!("writetime({name})"),
                    ColumnType::BigInt,
                )
            }
            Selector::Ttl(name) => {
                let (i, c) = schema.column(name)?;
                if matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering) {
                    return Err(invalid(format!(
                        "Cannot use selection function ttl on PRIMARY KEY part {name}"
                    )));
                }
                (Projection::Ttl(i), format!("ttl({name})"), ColumnType::Int)
            }
            Selector::Function { name, args } if name.name == "token" => {
                let names: Vec<String> = args
                    .iter()
                    .map(|a| match a {
                        Selector::Column(c) => Ok(c.clone()),
                        _ => Err(invalid("token() takes the partition key columns")),
                    })
                    .collect::<Result<_, _>>()?;
                (
                    Projection::Token,
                    format!("system.token({})", names.join(", ")),
                    ColumnType::BigInt,
                )
            }
            Selector::Function { name, args } if name.name == "count" && args.len() == 1 => {
                (Projection::Count, "count".to_owned(), ColumnType::BigInt)
            }
            other => {
                return Err(invalid(format!(
                    "Selector {other:?} is not supported by the emulator"
                )))
            }
        };
        out.push((
            projection,
            spec(schema, item.alias.clone().unwrap_or(name), ty),
        ));
    }
    let aggregates = out
        .iter()
        .filter(|(p, _)| matches!(p, Projection::Count))
        .count();
    if aggregates > 0 && aggregates != out.len() {
        return Err(invalid(
            "Cannot mix aggregates and plain columns in the emulator",
        ));
    }
    Ok(out)
}

/// Result column metadata of a SELECT (also used by PREPARE).
pub fn output_columns(
    schema: &TableSchema,
    select: &Select,
) -> Result<Vec<ColumnSpec>, EngineError> {
    Ok(projections(schema, select)?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

/// Where a paged SELECT stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PagingState {
    token: i64,
    partition_key: Vec<u8>,
    /// Clustering sort key of the last row returned; empty when the last
    /// row returned was a partition's only (static) row.
    last_row: Option<Vec<u8>>,
    returned: i32,
    returned_in_partition: i32,
}

impl PagingState {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        put_i64(&mut out, self.token);
        put_i32(&mut out, self.partition_key.len() as i32);
        out.extend_from_slice(&self.partition_key);
        match &self.last_row {
            Some(k) => {
                out.push(1);
                put_i32(&mut out, k.len() as i32);
                out.extend_from_slice(k);
            }
            None => out.push(0),
        }
        put_i32(&mut out, self.returned);
        put_i32(&mut out, self.returned_in_partition);
        out
    }

    fn decode(bytes: &[u8]) -> Result<PagingState, EngineError> {
        let bad = || invalid("Invalid value for the paging state");
        let mut r = Reader::new(bytes);
        if r.u8().map_err(|_| bad())? != 1 {
            return Err(bad());
        }
        let token = r.i64().map_err(|_| bad())?;
        let key_len = usize::try_from(r.i32().map_err(|_| bad())?).map_err(|_| bad())?;
        let partition_key = r.take(key_len).map_err(|_| bad())?.to_vec();
        let last_row = match r.u8().map_err(|_| bad())? {
            0 => None,
            1 => {
                let len = usize::try_from(r.i32().map_err(|_| bad())?).map_err(|_| bad())?;
                Some(r.take(len).map_err(|_| bad())?.to_vec())
            }
            _ => return Err(bad()),
        };
        let returned = r.i32().map_err(|_| bad())?;
        let returned_in_partition = r.i32().map_err(|_| bad())?;
        if !r.is_empty() {
            return Err(bad());
        }
        Ok(PagingState {
            token,
            partition_key,
            last_row,
            returned,
            returned_in_partition,
        })
    }
}

fn limit_value(
    term: &Option<Term>,
    binds: &Binds<'_>,
    what: &str,
) -> Result<Option<i32>, EngineError> {
    let Some(term) = term else {
        return Ok(None);
    };
    match eval(term, &ColumnType::Int, binds)? {
        Cell::Set(b) => {
            let v = i32::from_be_bytes(
                b.as_slice()
                    .try_into()
                    .map_err(|_| invalid("Invalid limit"))?,
            );
            if v <= 0 {
                return Err(invalid(format!("{what} must be strictly positive")));
            }
            Ok(Some(v))
        }
        Cell::Unset => Ok(None),
        Cell::Null => Err(invalid(format!("Invalid null value of {what}"))),
    }
}

/// The routing key bytes of a partition (as drivers hash it).
pub fn routing_key(components: &[Vec<u8>]) -> (Token, Vec<u8>) {
    let parts: Vec<Option<&[u8]>> = components.iter().map(|c| Some(c.as_slice())).collect();
    let mut key = Vec::new();
    let _ = scylla_shard::routing::token::encode_partition_key(&parts, &mut key);
    let token = token_of_partition_key(&parts).unwrap_or(Token::new(0));
    (token, key)
}

pub fn select(
    ctx: &ExecContext<'_>,
    select: &Select,
    binds: &Binds<'_>,
    params: &QueryParameters,
) -> Result<Outcome, EngineError> {
    let (table, is_system) = ctx.db.table(ctx.keyspace, &select.table)?;
    let schema = table.schema.clone();
    let projections = projections(&schema, select)?;
    let restrictions = analyze(&schema, &select.where_clause, binds)?;
    if restrictions.filters_non_key && !select.allow_filtering && !is_system {
        return Err(invalid("Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING"));
    }
    let reversed = match select.order_by.first() {
        None => false,
        Some((name, order)) => {
            let (_, col) = schema.column(name)?;
            if col.kind != ColumnKind::Clustering {
                return Err(invalid(format!("Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {name}")));
            }
            *order != col.order
        }
    };
    let limit = limit_value(&select.limit, binds, "LIMIT")?;
    let per_partition_limit =
        limit_value(&select.per_partition_limit, binds, "PER PARTITION LIMIT")?;
    let aggregate = projections
        .iter()
        .all(|(p, _)| matches!(p, Projection::Count));
    let page_size = params.page_size.filter(|&n| n > 0 && !aggregate);
    let paging = params
        .paging_state
        .as_deref()
        .map(PagingState::decode)
        .transpose()?;

    let keys = restrictions.partition_keys();
    let routing = match (&keys, is_system) {
        (Some(k), false) if k.len() == 1 => Some(judge(ctx, &table, routing_key(&k[0]).0)),
        _ => None,
    };

    let materialized;
    let guard;
    let data: &TableData = if is_system {
        materialized = system_tables::materialize(ctx, &schema);
        &materialized
    } else {
        guard = table.data.lock().unwrap();
        &guard
    };

    let mut scan = Scan {
        schema: &schema,
        restrictions: &restrictions,
        projections: &projections,
        select,
        reversed,
        limit,
        per_partition_limit,
        page_size,
        now: now_seconds(),
        rows: Vec::new(),
        count: 0,
        returned: paging.as_ref().map_or(0, |p| p.returned),
        next_page: None,
    };
    let resume_position = paging.as_ref().map(|p| (p.token, p.partition_key.clone()));
    let partitions: Vec<(&(i64, Vec<u8>), &Partition)> = match &keys {
        Some(keys) => {
            let mut positions: Vec<(i64, Vec<u8>)> = keys
                .iter()
                .map(|k| {
                    let (token, key) = routing_key(k);
                    (token.value(), key)
                })
                .collect();
            positions.sort();
            positions.dedup();
            positions
                .iter()
                .filter_map(|p| data.partitions.get_key_value(p))
                .collect()
        }
        None => {
            let low = match &resume_position {
                Some(p) => Bound::Included(p.clone()),
                None => Bound::Unbounded,
            };
            data.partitions
                .range((low, Bound::Unbounded))
                .filter(|((token, _), _)| restrictions.token_in_range(*token))
                .collect()
        }
    };
    for (position, partition) in partitions {
        if let Some(resume) = &resume_position {
            if position < resume {
                continue;
            }
        }
        let resume_row = match &paging {
            Some(p) if (p.token, &p.partition_key) == (position.0, &position.1) => {
                Some((p.last_row.clone(), p.returned_in_partition))
            }
            _ => None,
        };
        if !scan.partition(position, partition, resume_row) {
            break;
        }
    }
    let (count, next_page, rows) = (
        scan.count,
        scan.next_page.take(),
        std::mem::take(&mut scan.rows),
    );
    drop(scan);
    let result_rows = if aggregate {
        vec![projections
            .iter()
            .map(|_| Some(count.to_be_bytes().to_vec()))
            .collect()]
    } else {
        rows
    };
    let metadata = ResultMetadata {
        column_count: projections.len(),
        columns: projections.into_iter().map(|(_, s)| s).collect(),
        paging_state: next_page.map(|p| p.encode()),
        no_metadata: false,
    };
    Ok(Outcome {
        result: ResultBody::Rows(
            Rows::from_cells(metadata, result_rows).map_err(|e| invalid(e.to_string()))?,
        ),
        routing,
    })
}

struct Scan<'a> {
    schema: &'a TableSchema,
    restrictions: &'a Restrictions,
    projections: &'a [(Projection, ColumnSpec)],
    select: &'a Select,
    reversed: bool,
    limit: Option<i32>,
    per_partition_limit: Option<i32>,
    page_size: Option<i32>,
    now: i64,
    rows: Vec<Vec<Option<Vec<u8>>>>,
    count: i64,
    returned: i32,
    next_page: Option<PagingState>,
}

impl Scan<'_> {
    /// Emits a partition's matching rows; false once the page or the limit
    /// is full.
    fn partition(
        &mut self,
        position: &(i64, Vec<u8>),
        partition: &Partition,
        resume: Option<(Option<Vec<u8>>, i32)>,
    ) -> bool {
        if !partition.is_live(self.now) {
            return true;
        }
        // A resumed partition whose only (static) row was already sent.
        if matches!(&resume, Some((None, _))) {
            return true;
        }
        let mut in_partition = resume.as_ref().map_or(0, |(_, n)| *n);
        let resume_key = resume.and_then(|(k, _)| k);
        let schema = self.schema;
        let has_row_restrictions = self.restrictions.filters.iter().any(|f| match f {
            super::restrictions::Filter::Compare { column, .. }
            | super::restrictions::Filter::In { column, .. } => {
                schema.columns[*column].kind != ColumnKind::Static
            }
            _ => true,
        });
        if self.select.distinct {
            let keep = self.filters_pass(partition, None);
            if keep {
                return self.emit(position, partition, None, None, &mut in_partition);
            }
            return true;
        }
        let live_rows = partition.rows.values().any(|r| r.is_live(self.now));
        if !live_rows {
            // A partition with only static cells shows as one row.
            if !has_row_restrictions && self.filters_pass(partition, None) {
                return self.emit(position, partition, None, None, &mut in_partition);
            }
            return true;
        }
        let rows: Box<dyn Iterator<Item = (&Vec<u8>, &Row)>> = match (&resume_key, self.reversed) {
            (Some(k), false) => Box::new(
                partition
                    .rows
                    .range::<Vec<u8>, _>((Bound::Excluded(k), Bound::Unbounded)),
            ),
            (Some(k), true) => Box::new(
                partition
                    .rows
                    .range::<Vec<u8>, _>((Bound::Unbounded, Bound::Excluded(k)))
                    .rev(),
            ),
            (None, false) => Box::new(partition.rows.iter()),
            (None, true) => Box::new(partition.rows.iter().rev()),
        };
        for (key, row) in rows {
            if !row.is_live(self.now) || !self.filters_pass(partition, Some(row)) {
                continue;
            }
            if self.per_partition_limit.is_some_and(|l| in_partition >= l) {
                break;
            }
            if !self.emit(position, partition, Some(key), Some(row), &mut in_partition) {
                return false;
            }
        }
        true
    }

    fn filters_pass(&self, partition: &Partition, row: Option<&Row>) -> bool {
        let schema = self.schema;
        let now = self.now;
        self.restrictions.filters.iter().all(|filter| {
            matches(schema, filter, |column| {
                value_of(schema, partition, row, column, now)
            })
        })
    }

    /// Adds one row; false when the page or the limit is now full.
    fn emit(
        &mut self,
        position: &(i64, Vec<u8>),
        partition: &Partition,
        key: Option<&Vec<u8>>,
        row: Option<&Row>,
        in_partition: &mut i32,
    ) -> bool {
        if self.limit.is_some_and(|l| self.returned >= l) {
            return false;
        }
        *in_partition += 1;
        self.returned += 1;
        self.count += 1;
        let schema = self.schema;
        let now = self.now;
        let out: Vec<Option<Vec<u8>>> = self
            .projections
            .iter()
            .map(|(p, _)| match p {
                Projection::Column(c) => {
                    value_of(schema, partition, row, *c, now).map(<[u8]>::to_vec)
                }
                Projection::WriteTime(c) => cell_of(schema, partition, row, *c, now)
                    .map(|cell| cell.timestamp.to_be_bytes().to_vec()),
                Projection::Ttl(c) => cell_of(schema, partition, row, *c, now).and_then(|cell| {
                    cell.expires_at
                        .map(|t| ((t - now).max(0) as i32).to_be_bytes().to_vec())
                }),
                Projection::Token => Some(position.0.to_be_bytes().to_vec()),
                Projection::Count => None,
            })
            .collect();
        let aggregate = self
            .projections
            .iter()
            .all(|(p, _)| matches!(p, Projection::Count));
        if !aggregate {
            self.rows.push(out);
        }
        let limit_reached = self.limit.is_some_and(|l| self.returned >= l);
        let page_full = self.page_size.is_some_and(|n| self.rows.len() as i32 >= n);
        if page_full && !limit_reached {
            self.next_page = Some(PagingState {
                token: position.0,
                partition_key: position.1.clone(),
                last_row: if self.select.distinct {
                    None
                } else {
                    key.cloned()
                },
                returned: self.returned,
                returned_in_partition: *in_partition,
            });
        }
        !(page_full || limit_reached)
    }
}

fn cell_of<'a>(
    schema: &TableSchema,
    partition: &'a Partition,
    row: Option<&'a Row>,
    column: usize,
    now: i64,
) -> Option<&'a super::storage::StoredCell> {
    match schema.columns[column].kind {
        ColumnKind::Static => partition
            .static_cells
            .get(&column)
            .filter(|c| c.is_live(now)),
        ColumnKind::Regular => row.and_then(|r| r.cell(column, now)),
        _ => None,
    }
}

/// The serialized value of `column` in a row of `partition`.
pub fn value_of<'a>(
    schema: &TableSchema,
    partition: &'a Partition,
    row: Option<&'a Row>,
    column: usize,
    now: i64,
) -> Option<&'a [u8]> {
    let col = &schema.columns[column];
    match col.kind {
        ColumnKind::PartitionKey => partition.key.get(col.position as usize).map(Vec::as_slice),
        ColumnKind::Clustering => row
            .and_then(|r| r.clustering.get(col.position as usize))
            .map(Vec::as_slice),
        _ => cell_of(schema, partition, row, column, now).map(|c| c.value.as_slice()),
    }
}

/// Order-preserving key of a full clustering key (for DML row lookup).
pub fn row_key(schema: &TableSchema, clustering: &[Vec<u8>]) -> Vec<u8> {
    clustering_key(schema, clustering)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_state_round_trips_and_rejects_garbage() {
        let state = PagingState {
            token: -5,
            partition_key: vec![1, 2],
            last_row: Some(vec![3]),
            returned: 10,
            returned_in_partition: 4,
        };
        assert_eq!(PagingState::decode(&state.encode()).unwrap(), state);
        let bytes = state.encode();
        for cut in 0..bytes.len() {
            assert!(PagingState::decode(&bytes[..cut]).is_err());
        }
    }
}

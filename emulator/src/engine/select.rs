//! SELECT over user and system tables: restrictions, ordering, limits,
//! GROUP BY and aggregates, and paging (selectors live in `selection`).

use std::ops::Bound;

use cql_parser::ast::{Select, Term};
use scylla_shard::protocol::request::QueryParameters;
use scylla_shard::protocol::response::{ColumnSpec, ResultBody, ResultMetadata, Rows};
use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::wire::{put_i32, put_i64, Reader};
use scylla_shard::routing::token::{token_of_partition_key, Token};

use super::error::{invalid, EngineError};
use super::functions::Accumulator;
use super::restrictions::{analyze, matches, Restrictions};
use super::routing::judge;
use super::schema::{ColumnKind, TableSchema};
use super::selection::{RowContext, Selection};
use super::storage::{clustering_key, now_seconds, Partition, Row, TableData};
use super::values::{eval, Binds, Cell};
use super::{system_tables, ExecContext, Outcome};

/// Result column metadata of a SELECT (also used by PREPARE).
pub fn output_columns(
    schema: &TableSchema,
    select: &Select,
) -> Result<Vec<ColumnSpec>, EngineError> {
    let selection = Selection::build(schema, select)?;
    group_by_columns(schema, select)?;
    Ok(selection.columns(schema))
}

/// The GROUP BY columns, which Scylla requires to be a prefix of the
/// primary key in its order.
fn group_by_columns(schema: &TableSchema, select: &Select) -> Result<Vec<usize>, EngineError> {
    let key: Vec<usize> = schema
        .partition_key
        .iter()
        .chain(&schema.clustering_key)
        .copied()
        .collect();
    let mut columns = Vec::with_capacity(select.group_by.len());
    for (i, name) in select.group_by.iter().enumerate() {
        let (index, _) = schema.column(name)?;
        if key.get(i) != Some(&index) {
            return Err(invalid(
                "Group by currently only support groups of columns following their declared order in the PRIMARY KEY",
            ));
        }
        columns.push(index);
    }
    Ok(columns)
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

const NEEDS_FILTERING: &str = "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

/// Scylla's checks of a SELECT without ALLOW FILTERING, in its order: the
/// partition key, the clustering prefix, other columns, then clustering
/// restrictions over a range of partitions (refused as with
/// `strict_allow_filtering: true`, and as Cassandra does).
fn check_needs_filtering(
    schema: &TableSchema,
    restrictions: &Restrictions,
) -> Result<(), EngineError> {
    if restrictions.partial_partition_key {
        return Err(invalid(NEEDS_FILTERING));
    }
    if let Some((restricted, preceding)) = restrictions.clustering_gap() {
        let name = |p: usize| &schema.columns[schema.clustering_key[p]].name;
        return Err(invalid(format!(
            "PRIMARY KEY column \"{}\" cannot be restricted as preceding column \"{}\" is not restricted",
            name(restricted),
            name(preceding)
        )));
    }
    let key_range = restrictions.partition_keys().is_none();
    let clustering_restricted = restrictions.clustering_restricted.iter().any(|r| *r);
    if restrictions.filters_non_key || (key_range && clustering_restricted) {
        return Err(invalid(NEEDS_FILTERING));
    }
    Ok(())
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
    let selection = Selection::build(&schema, select)?;
    let group_by = group_by_columns(&schema, select)?;
    let restrictions = analyze(&schema, &select.where_clause, binds)?;
    if !select.allow_filtering && !is_system {
        check_needs_filtering(&schema, &restrictions)?;
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
    let aggregate = selection.is_aggregate();
    if !group_by.is_empty() && !aggregate {
        return Err(invalid(
            "GROUP BY is supported by the emulator only with aggregate functions",
        ));
    }
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
        selection: &selection,
        binds,
        group_by: &group_by,
        group: None,
        error: None,
        select,
        reversed,
        limit,
        per_partition_limit,
        page_size,
        now: now_seconds(),
        rows: Vec::new(),
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
    if aggregate {
        // The last group; without GROUP BY there is always one (count 0
        // over no rows), and LIMIT counts groups.
        scan.close_group();
        if scan.rows.is_empty() && group_by.is_empty() && scan.error.is_none() {
            match selection.finish(None, binds, &selection.accumulators()) {
                Ok(row) => scan.rows.push(row),
                Err(e) => scan.error = Some(e),
            }
        }
        if let Some(limit) = limit {
            scan.rows.truncate(limit as usize);
        }
    }
    if let Some(e) = scan.error.take() {
        return Err(e);
    }
    let (next_page, result_rows) = (scan.next_page.take(), std::mem::take(&mut scan.rows));
    drop(scan);
    let columns = selection.columns(&schema);
    let metadata = ResultMetadata {
        column_count: columns.len(),
        columns,
        paging_state: next_page.map(|p| p.encode()),
        no_metadata: false,
    };
    Ok(Outcome {
        result: ResultBody::Rows(
            Rows::from_cells(metadata, result_rows).map_err(|e| invalid(e.to_string()))?,
        ),
        routing,
        warnings: Vec::new(),
    })
}

struct Scan<'a> {
    schema: &'a TableSchema,
    restrictions: &'a Restrictions,
    selection: &'a Selection,
    binds: &'a Binds<'a>,
    group_by: &'a [usize],
    /// The open group of an aggregate query: its key, its first row and
    /// its accumulators.
    group: Option<Group<'a>>,
    error: Option<EngineError>,
    select: &'a Select,
    reversed: bool,
    limit: Option<i32>,
    per_partition_limit: Option<i32>,
    page_size: Option<i32>,
    now: i64,
    rows: Vec<Vec<Option<Vec<u8>>>>,
    returned: i32,
    next_page: Option<PagingState>,
}

impl<'a> Scan<'a> {
    /// Emits a partition's matching rows; false once the page or the limit
    /// is full.
    fn partition(
        &mut self,
        position: &'a (i64, Vec<u8>),
        partition: &'a Partition,
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
            | super::restrictions::Filter::In { column, .. } => matches!(
                schema.columns[*column].kind,
                ColumnKind::Clustering | ColumnKind::Regular
            ),
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
        let rows: Box<dyn Iterator<Item = (&'a Vec<u8>, &'a Row)>> =
            match (&resume_key, self.reversed) {
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

    /// Adds one row; false when the page or the limit is now full (or an
    /// evaluation failed: `self.error`).
    fn emit(
        &mut self,
        position: &'a (i64, Vec<u8>),
        partition: &'a Partition,
        key: Option<&Vec<u8>>,
        row: Option<&'a Row>,
        in_partition: &mut i32,
    ) -> bool {
        let aggregate = self.selection.is_aggregate();
        if !aggregate && self.limit.is_some_and(|l| self.returned >= l) {
            return false;
        }
        *in_partition += 1;
        self.returned += 1;
        let context = RowContext {
            schema: self.schema,
            partition,
            row,
            token: position.0,
            now: self.now,
        };
        if aggregate {
            return self.aggregate(context);
        }
        match self.selection.row(&context, self.binds) {
            Ok(out) => self.rows.push(out),
            Err(e) => {
                self.error = Some(e);
                return false;
            }
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

    /// Feeds a row to its group's aggregates, closing the previous group
    /// when the GROUP BY columns change (rows come in key order).
    fn aggregate(&mut self, context: RowContext<'a>) -> bool {
        let key: Vec<Option<Vec<u8>>> = self
            .group_by
            .iter()
            .map(|&c| {
                value_of(self.schema, context.partition, context.row, c, self.now)
                    .map(<[u8]>::to_vec)
            })
            .collect();
        if self.group.as_ref().is_some_and(|g| g.key != key) {
            self.close_group();
        }
        let selection = self.selection;
        let group = self.group.get_or_insert_with(|| Group {
            key,
            first: context,
            states: selection.accumulators(),
        });
        match selection.accumulate(&context, self.binds, &mut group.states) {
            Ok(()) => true,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Emits the open group's row.
    fn close_group(&mut self) {
        if let Some(group) = self.group.take() {
            match self
                .selection
                .finish(Some(&group.first), self.binds, &group.states)
            {
                Ok(row) => self.rows.push(row),
                Err(e) => self.error = Some(e),
            }
        }
    }
}

struct Group<'a> {
    key: Vec<Option<Vec<u8>>>,
    first: RowContext<'a>,
    states: Vec<Accumulator>,
}

pub fn cell_of<'a>(
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

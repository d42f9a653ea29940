//! In-memory table data: partitions ordered by token, rows ordered by
//! clustering key, cells with write timestamps and TTLs (last write wins).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use cql_parser::ast::Order;

use super::schema::TableSchema;
use super::values::sort_key;

/// Seconds since the epoch, the unit of expiry times.
pub fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCell {
    pub value: Vec<u8>,
    /// Write timestamp (microseconds).
    pub timestamp: i64,
    /// TTL in seconds (0 = none) and when it expires.
    pub ttl: i32,
    pub expires_at: Option<i64>,
}

impl StoredCell {
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// A write to a cell: a value, or a deletion (tombstone) at a timestamp.
#[derive(Debug, Clone)]
pub struct CellWrite {
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub ttl: i32,
}

/// Applies a write under last-write-wins; returns whether it took effect.
fn apply(
    cells: &mut BTreeMap<usize, StoredCell>,
    column: usize,
    write: &CellWrite,
    now: i64,
) -> bool {
    if let Some(existing) = cells.get(&column) {
        if existing.timestamp > write.timestamp {
            return false;
        }
    }
    match &write.value {
        Some(value) => {
            cells.insert(
                column,
                StoredCell {
                    value: value.clone(),
                    timestamp: write.timestamp,
                    ttl: write.ttl,
                    expires_at: (write.ttl > 0).then(|| now + i64::from(write.ttl)),
                },
            );
        }
        None => {
            cells.remove(&column);
        }
    }
    true
}

#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Serialized clustering values, in key order.
    pub clustering: Vec<Vec<u8>>,
    /// Row marker from INSERT: the row exists even with all cells null.
    pub marker: Option<StoredCell>,
    pub cells: BTreeMap<usize, StoredCell>,
}

impl Row {
    pub fn is_live(&self, now: i64) -> bool {
        self.marker.as_ref().is_some_and(|m| m.is_live(now))
            || self.cells.values().any(|c| c.is_live(now))
    }

    pub fn cell(&self, column: usize, now: i64) -> Option<&StoredCell> {
        self.cells.get(&column).filter(|c| c.is_live(now))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Partition {
    /// Serialized partition key components, in key order.
    pub key: Vec<Vec<u8>>,
    pub static_cells: BTreeMap<usize, StoredCell>,
    pub rows: BTreeMap<Vec<u8>, Row>,
}

impl Partition {
    pub fn has_live_static(&self, now: i64) -> bool {
        self.static_cells.values().any(|c| c.is_live(now))
    }

    pub fn is_live(&self, now: i64) -> bool {
        self.has_live_static(now) || self.rows.values().any(|r| r.is_live(now))
    }
}

/// Partition position: token first, then the serialized key (for ties).
pub type PartitionPosition = (i64, Vec<u8>);

#[derive(Debug, Default)]
pub struct TableData {
    pub partitions: BTreeMap<PartitionPosition, Partition>,
}

/// Order-preserving key of a clustering prefix (DESC columns inverted).
pub fn clustering_key(schema: &TableSchema, values: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (value, &column) in values.iter().zip(&schema.clustering_key) {
        let col = &schema.columns[column];
        let start = out.len();
        sort_key(&col.ty, value, &mut out);
        if col.order == Order::Desc {
            for b in &mut out[start..] {
                *b = !*b;
            }
        }
    }
    out
}

impl TableData {
    pub fn partition_mut(
        &mut self,
        position: PartitionPosition,
        key: &[Vec<u8>],
    ) -> &mut Partition {
        self.partitions
            .entry(position)
            .or_insert_with(|| Partition {
                key: key.to_vec(),
                ..Default::default()
            })
    }

    /// Writes cells of one row (or the static row when `clustering` is
    /// None). `marker` adds a row marker, as INSERT does.
    pub fn write_row(
        &mut self,
        schema: &TableSchema,
        position: PartitionPosition,
        key: &[Vec<u8>],
        clustering: Option<&[Vec<u8>]>,
        writes: &[(usize, CellWrite)],
        marker: Option<&CellWrite>,
    ) {
        let now = now_seconds();
        let partition = self.partition_mut(position.clone(), key);
        let (static_writes, row_writes): (Vec<_>, Vec<_>) = writes
            .iter()
            .partition(|(c, _)| schema.columns[*c].kind == super::schema::ColumnKind::Static);
        for (column, write) in static_writes {
            apply(&mut partition.static_cells, *column, write, now);
        }
        if let Some(ck) = clustering {
            if !row_writes.is_empty() || marker.is_some() {
                let row = partition
                    .rows
                    .entry(clustering_key(schema, ck))
                    .or_insert_with(|| Row {
                        clustering: ck.to_vec(),
                        ..Default::default()
                    });
                if let Some(m) = marker {
                    let newer = row
                        .marker
                        .as_ref()
                        .is_none_or(|old| old.timestamp <= m.timestamp);
                    if newer {
                        row.marker = Some(StoredCell {
                            value: Vec::new(),
                            timestamp: m.timestamp,
                            ttl: m.ttl,
                            expires_at: (m.ttl > 0).then(|| now + i64::from(m.ttl)),
                        });
                    }
                }
                for (column, write) in row_writes {
                    apply(&mut row.cells, *column, write, now);
                }
            }
        }
        self.drop_if_empty(&position, now);
    }

    /// Deletes whole rows whose clustering key starts with `prefix` (all
    /// rows and the static row when the prefix is empty), older than
    /// `timestamp`.
    pub fn delete_rows(
        &mut self,
        schema: &TableSchema,
        position: &PartitionPosition,
        prefix: &[Vec<u8>],
        timestamp: i64,
    ) {
        let now = now_seconds();
        let Some(partition) = self.partitions.get_mut(position) else {
            return;
        };
        let prefix_key = clustering_key(schema, prefix);
        partition.rows.retain(|key, row| {
            if !key.starts_with(&prefix_key) {
                return true;
            }
            row.cells.retain(|_, c| c.timestamp > timestamp);
            if row
                .marker
                .as_ref()
                .is_some_and(|m| m.timestamp <= timestamp)
            {
                row.marker = None;
            }
            row.is_live(now)
        });
        if prefix.is_empty() {
            partition
                .static_cells
                .retain(|_, c| c.timestamp > timestamp);
        }
        self.drop_if_empty(position, now);
    }

    fn drop_if_empty(&mut self, position: &PartitionPosition, now: i64) {
        if self
            .partitions
            .get(position)
            .is_some_and(|p| !p.is_live(now))
        {
            self.partitions.remove(position);
        }
    }
}

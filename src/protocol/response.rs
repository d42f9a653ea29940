//! Response messages (server to client), encoded and decoded.

use std::net::SocketAddr;
use std::sync::Arc;

use super::consistency::Consistency;
use super::error::{invalid, ProtocolError};
use super::frame::Opcode;
use super::types::{ColumnType, MAX_TYPE_NODES};
use super::wire::{
    put_bytes, put_i32, put_inet, put_short_bytes, put_string, put_string_list,
    put_string_multimap, put_u16, put_u8, Reader,
};

/// Error codes of the ERROR message (v4 spec section 9, plus Scylla's).
pub mod error_code {
    pub const SERVER_ERROR: i32 = 0x0000;
    pub const PROTOCOL_ERROR: i32 = 0x000A;
    pub const BAD_CREDENTIALS: i32 = 0x0100;
    pub const UNAVAILABLE: i32 = 0x1000;
    pub const OVERLOADED: i32 = 0x1001;
    pub const IS_BOOTSTRAPPING: i32 = 0x1002;
    pub const TRUNCATE_ERROR: i32 = 0x1003;
    pub const WRITE_TIMEOUT: i32 = 0x1100;
    pub const READ_TIMEOUT: i32 = 0x1200;
    pub const READ_FAILURE: i32 = 0x1300;
    pub const FUNCTION_FAILURE: i32 = 0x1400;
    pub const WRITE_FAILURE: i32 = 0x1500;
    pub const SYNTAX_ERROR: i32 = 0x2000;
    pub const UNAUTHORIZED: i32 = 0x2100;
    pub const INVALID: i32 = 0x2200;
    pub const CONFIG_ERROR: i32 = 0x2300;
    pub const ALREADY_EXISTS: i32 = 0x2400;
    pub const UNPREPARED: i32 = 0x2500;
    pub const RATE_LIMIT_REACHED: i32 = 0xF000;
}

/// The code-specific part of an ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDetails {
    None,
    Unavailable {
        consistency: Consistency,
        required: i32,
        alive: i32,
    },
    WriteTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        write_type: String,
    },
    ReadTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        data_present: bool,
    },
    ReadFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        data_present: bool,
    },
    FunctionFailure {
        keyspace: String,
        function: String,
        arg_types: Vec<String>,
    },
    WriteFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        write_type: String,
    },
    AlreadyExists {
        keyspace: String,
        table: String,
    },
    Unprepared {
        id: Vec<u8>,
    },
    RateLimitReached {
        op_type: u8,
        rejected_by_coordinator: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: i32,
    pub message: String,
    pub details: ErrorDetails,
}

impl ErrorBody {
    pub fn new(code: i32, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
            details: ErrorDetails::None,
        }
    }
}

/// Name, table and type of one column of a result or bind metadata. The
/// keyspace and table are shared (a result's columns usually all name the
/// same ones, sent once in the frame: decoding never copies them per
/// column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub table: Arc<TableName>,
    pub name: Box<str>,
    pub ty: ColumnType,
}

/// The keyspace and table a column belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub keyspace: Box<str>,
    pub name: Box<str>,
}

impl TableName {
    pub fn new(keyspace: &str, name: &str) -> Arc<TableName> {
        Arc::new(TableName {
            keyspace: keyspace.into(),
            name: name.into(),
        })
    }
}

impl ColumnSpec {
    /// A column of its own table (columns of one result share theirs
    /// through `table`).
    pub fn new(keyspace: &str, table: &str, name: &str, ty: ColumnType) -> ColumnSpec {
        ColumnSpec {
            table: TableName::new(keyspace, table),
            name: name.into(),
            ty,
        }
    }

    pub fn keyspace(&self) -> &str {
        &self.table.keyspace
    }

    pub fn table(&self) -> &str {
        &self.table.name
    }
}

mod rows_flags {
    pub const GLOBAL_TABLES_SPEC: i32 = 0x0001;
    pub const HAS_MORE_PAGES: i32 = 0x0002;
    pub const NO_METADATA: i32 = 0x0004;
}

/// Scylla's LWT bit in the prepared metadata flags.
pub const LWT_FLAG: i32 = i32::MIN; // 0x8000_0000

/// Metadata of a Rows result, or of a prepared statement's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultMetadata {
    /// Number of columns (known even when `columns` is omitted).
    pub column_count: usize,
    /// Omitted (empty) when the client asked to skip metadata.
    pub columns: Vec<ColumnSpec>,
    pub paging_state: Option<Vec<u8>>,
    pub no_metadata: bool,
}

impl ResultMetadata {
    pub fn with_columns(columns: Vec<ColumnSpec>) -> ResultMetadata {
        ResultMetadata {
            column_count: columns.len(),
            columns,
            ..Default::default()
        }
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let global = !self.no_metadata && global_spec(&self.columns).is_some();
        let mut flags = 0;
        if global {
            flags |= rows_flags::GLOBAL_TABLES_SPEC;
        }
        if self.paging_state.is_some() {
            flags |= rows_flags::HAS_MORE_PAGES;
        }
        if self.no_metadata {
            flags |= rows_flags::NO_METADATA;
        }
        put_i32(out, flags);
        put_i32(out, super::wire::len_i32(self.column_count)?);
        if let Some(state) = &self.paging_state {
            put_bytes(out, Some(state))?;
        }
        if !self.no_metadata {
            write_column_specs(out, &self.columns, global)?;
        }
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<ResultMetadata, ProtocolError> {
        let flags = r.i32()?;
        let count = non_negative(r.i32()?, "column count")?;
        let paging_state = if flags & rows_flags::HAS_MORE_PAGES != 0 {
            r.bytes()?.map(<[u8]>::to_vec)
        } else {
            None
        };
        let no_metadata = flags & rows_flags::NO_METADATA != 0;
        let columns = if no_metadata {
            Vec::new()
        } else {
            read_column_specs(r, count, flags & rows_flags::GLOBAL_TABLES_SPEC != 0)?
        };
        Ok(ResultMetadata {
            column_count: count,
            columns,
            paging_state,
            no_metadata,
        })
    }
}

fn non_negative(v: i32, what: &str) -> Result<usize, ProtocolError> {
    usize::try_from(v).map_err(|_| invalid(format!("negative {what} {v}")))
}

fn global_spec(columns: &[ColumnSpec]) -> Option<(&str, &str)> {
    let first = columns.first()?;
    columns
        .iter()
        .all(|c| c.table == first.table)
        .then_some((first.keyspace(), first.table()))
}

fn write_column_specs(
    out: &mut Vec<u8>,
    columns: &[ColumnSpec],
    global: bool,
) -> Result<(), ProtocolError> {
    if global {
        put_string(out, columns[0].keyspace())?;
        put_string(out, columns[0].table())?;
    }
    for column in columns {
        if !global {
            put_string(out, column.keyspace())?;
            put_string(out, column.table())?;
        }
        put_string(out, &column.name)?;
        column.ty.write(out)?;
    }
    Ok(())
}

fn read_column_specs(
    r: &mut Reader<'_>,
    count: usize,
    global: bool,
) -> Result<Vec<ColumnSpec>, ProtocolError> {
    let global_table = if global {
        Some(TableName::new(r.string()?, r.string()?))
    } else {
        None
    };
    let mut columns = Vec::with_capacity(count.min(r.remaining() / 4));
    let mut type_budget = MAX_TYPE_NODES;
    for _ in 0..count {
        let table = match &global_table {
            Some(table) => table.clone(),
            None => TableName::new(r.string()?, r.string()?),
        };
        let name = r.string()?.into();
        let ty = ColumnType::read_counted(r, &mut type_budget)?;
        columns.push(ColumnSpec { table, name, ty });
    }
    Ok(columns)
}

/// Bind-variable metadata of a prepared statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreparedMetadata {
    /// The statement is conditional (LWT): Scylla's flag bit 31.
    pub is_lwt: bool,
    /// For each partition-key column in key order, the index of the bind
    /// marker that gives it. Empty when the key is not fully bound.
    pub pk_indexes: Vec<u16>,
    pub bind_columns: Vec<ColumnSpec>,
}

impl PreparedMetadata {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let global = global_spec(&self.bind_columns).is_some();
        let mut flags = if global {
            rows_flags::GLOBAL_TABLES_SPEC
        } else {
            0
        };
        if self.is_lwt {
            flags |= LWT_FLAG;
        }
        put_i32(out, flags);
        put_i32(out, super::wire::len_i32(self.bind_columns.len())?);
        put_i32(out, super::wire::len_i32(self.pk_indexes.len())?);
        for index in &self.pk_indexes {
            put_u16(out, *index);
        }
        write_column_specs(out, &self.bind_columns, global)
    }

    fn read(r: &mut Reader<'_>) -> Result<PreparedMetadata, ProtocolError> {
        let flags = r.i32()?;
        let count = non_negative(r.i32()?, "bind count")?;
        let pk_count = non_negative(r.i32()?, "partition key count")?;
        if pk_count > count {
            return Err(invalid("more partition key indexes than bind markers"));
        }
        let pk_indexes = (0..pk_count)
            .map(|_| r.u16())
            .collect::<Result<Vec<_>, _>>()?;
        let bind_columns =
            read_column_specs(r, count, flags & rows_flags::GLOBAL_TABLES_SPEC != 0)?;
        Ok(PreparedMetadata {
            is_lwt: flags & LWT_FLAG != 0,
            pk_indexes,
            bind_columns,
        })
    }
}

/// Rows of a result: metadata and raw cells, kept compact: every cell's
/// `[bytes]` (length, -1 for NULL, then the bytes) as they came in the
/// frame, row after row, in one buffer (the frame's own when it is large),
/// plus a 4-byte offset per cell. So a result takes at most about twice
/// its frame, whatever the shape of its rows (the smallest cell, a NULL,
/// is 4 bytes in the frame too).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rows {
    pub metadata: ResultMetadata,
    data: CellBytes,
    /// Where each cell's `[bytes]` starts in `data`.
    cells: Vec<u32>,
    rows: usize,
}

/// The buffer a result's cells are in: its own, or (for a large frame) a
/// part of the frame itself, so decoding copies nothing. Only a part of at
/// least `SHARE_FROM` bytes is shared: the frame's buffer it keeps alive
/// is then of the same order, while a small result shares no read buffer
/// with other results.
#[derive(Debug, Clone)]
enum CellBytes {
    Owned(Vec<u8>),
    Shared(bytes::Bytes),
}

const SHARE_FROM: usize = 64 * 1024;

impl Default for CellBytes {
    fn default() -> Self {
        CellBytes::Owned(Vec::new())
    }
}

impl PartialEq for CellBytes {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for CellBytes {}

impl std::ops::Deref for CellBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            CellBytes::Owned(v) => v,
            CellBytes::Shared(b) => b,
        }
    }
}

impl CellBytes {
    /// The buffer to append to (a shared one is copied first).
    fn owned(&mut self) -> &mut Vec<u8> {
        if let CellBytes::Shared(b) = self {
            *self = CellBytes::Owned(b.to_vec());
        }
        match self {
            CellBytes::Owned(v) => v,
            CellBytes::Shared(_) => unreachable!("made owned above"),
        }
    }

    fn memory(&self) -> usize {
        match self {
            CellBytes::Owned(v) => v.capacity(),
            CellBytes::Shared(b) => b.len(),
        }
    }
}

impl Rows {
    /// No rows yet, with these columns.
    pub fn new(metadata: ResultMetadata) -> Rows {
        Rows {
            metadata,
            ..Rows::default()
        }
    }

    /// Rows from cells (`None` = NULL), each row `metadata.column_count`
    /// wide.
    pub fn from_cells(
        metadata: ResultMetadata,
        rows: Vec<Vec<Option<Vec<u8>>>>,
    ) -> Result<Rows, ProtocolError> {
        let mut out = Rows::new(metadata);
        for row in &rows {
            out.push_row(row.iter().map(Option::as_deref))?;
        }
        Ok(out)
    }

    /// Appends one row of exactly `metadata.column_count` cells.
    pub fn push_row<'a>(
        &mut self,
        row: impl IntoIterator<Item = Option<&'a [u8]>>,
    ) -> Result<(), ProtocolError> {
        if self.metadata.column_count == 0 {
            return Err(invalid("rows without columns"));
        }
        let before = self.cells.len();
        for cell in row {
            let at = u32::try_from(self.data.len()).map_err(|_| invalid("rows over 4 GiB"))?;
            self.cells.push(at);
            put_bytes(self.data.owned(), cell)?;
        }
        if self.cells.len() - before != self.metadata.column_count {
            return Err(invalid("row width differs from column count"));
        }
        self.rows += 1;
        Ok(())
    }

    /// Appends the rows of `other` (a following page with the same columns).
    pub fn append(&mut self, other: Rows) -> Result<(), ProtocolError> {
        if other.metadata.column_count != self.metadata.column_count {
            return Err(invalid("pages of different widths"));
        }
        let base = u32::try_from(self.data.len()).map_err(|_| invalid("rows over 4 GiB"))?;
        self.cells.extend(
            other
                .cells
                .iter()
                .map(|c| c.checked_add(base))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("rows over 4 GiB"))?,
        );
        self.data.owned().extend_from_slice(&other.data);
        self.rows += other.rows;
        Ok(())
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Cells of all rows (`len() * metadata.column_count`).
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// Cell `index` counting row after row (`None`: NULL). Panics past the
    /// last cell.
    pub fn cell_at(&self, index: usize) -> Option<&[u8]> {
        let at = self.cells[index] as usize;
        // Checked when the rows were made: a length and that many bytes.
        let len = i32::from_be_bytes(self.data[at..at + 4].try_into().unwrap_or([0xff; 4]));
        let len = usize::try_from(len).ok()?;
        Some(&self.data[at + 4..at + 4 + len])
    }

    /// Cell `column` of row `row` (`None`: NULL). Panics out of range.
    pub fn cell(&self, row: usize, column: usize) -> Option<&[u8]> {
        assert!(
            column < self.metadata.column_count,
            "column {column} out of range"
        );
        self.cell_at(row * self.metadata.column_count + column)
    }

    /// The cells of row `row`.
    pub fn row(&self, row: usize) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        let width = self.metadata.column_count;
        (row * width..(row + 1) * width).map(|i| self.cell_at(i))
    }

    /// Every row's cells, for tests and small results.
    pub fn to_cells(&self) -> Vec<Vec<Option<Vec<u8>>>> {
        (0..self.rows)
            .map(|r| self.row(r).map(|c| c.map(<[u8]>::to_vec)).collect())
            .collect()
    }

    /// The buffer the cells are in (each as a `[bytes]`).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The bytes the rows hold (cells and offsets).
    pub fn memory(&self) -> usize {
        self.data.memory() + 4 * self.cells.capacity()
    }

    /// Reads `count` rows of `metadata.column_count` cells. Every count is
    /// checked against the bytes present before anything is allocated.
    fn read(
        r: &mut Reader<'_>,
        metadata: ResultMetadata,
        count: usize,
    ) -> Result<Rows, ProtocolError> {
        let width = metadata.column_count;
        if width == 0 && count > 0 {
            return Err(invalid("rows without columns"));
        }
        let cells = count
            .checked_mul(width)
            .filter(|n| *n <= r.remaining() / 4)
            .ok_or_else(|| {
                invalid(format!(
                    "{count} rows of {width} cells in {} bytes",
                    r.remaining()
                ))
            })?;
        let start = r.rest();
        let mut offsets = Vec::with_capacity(cells);
        for _ in 0..cells {
            let at = start.len() - r.remaining();
            offsets.push(at as u32);
            r.bytes()?;
        }
        let used = start.len() - r.remaining();
        Ok(Rows {
            metadata,
            data: match r.shared(&start[..used]) {
                Some(part) if used >= SHARE_FROM => CellBytes::Shared(part),
                _ => CellBytes::Owned(start[..used].to_vec()),
            },
            cells: offsets,
            rows: count,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub id: Vec<u8>,
    pub metadata: PreparedMetadata,
    pub result_metadata: ResultMetadata,
}

/// SCHEMA_CHANGE, as a result or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// `CREATED`, `UPDATED` or `DROPPED`.
    pub change: String,
    /// `KEYSPACE`, `TABLE`, `TYPE`, `FUNCTION` or `AGGREGATE`.
    pub target: String,
    pub keyspace: String,
    /// Table, type, function or aggregate name (absent for KEYSPACE).
    pub name: Option<String>,
    /// Argument types of a FUNCTION or AGGREGATE.
    pub arg_types: Vec<String>,
}

impl SchemaChange {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        put_string(out, &self.change)?;
        put_string(out, &self.target)?;
        put_string(out, &self.keyspace)?;
        match self.target.as_str() {
            "KEYSPACE" => {}
            "FUNCTION" | "AGGREGATE" => {
                put_string(out, self.name.as_deref().unwrap_or(""))?;
                put_string_list(out, &self.arg_types)?;
            }
            _ => put_string(out, self.name.as_deref().unwrap_or(""))?,
        }
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<SchemaChange, ProtocolError> {
        let change = r.string()?.to_owned();
        let target = r.string()?.to_owned();
        let keyspace = r.string()?.to_owned();
        let (name, arg_types) = match target.as_str() {
            "KEYSPACE" => (None, Vec::new()),
            "FUNCTION" | "AGGREGATE" => (Some(r.string()?.to_owned()), r.string_list()?),
            "TABLE" | "TYPE" => (Some(r.string()?.to_owned()), Vec::new()),
            other => return Err(invalid(format!("unknown schema change target {other}"))),
        };
        Ok(SchemaChange {
            change,
            target,
            keyspace,
            name,
            arg_types,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultBody {
    Void,
    Rows(Rows),
    SetKeyspace(String),
    Prepared(Prepared),
    SchemaChange(SchemaChange),
}

/// A server-pushed event (stream -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `NEW_NODE`, `REMOVED_NODE` or `MOVED_NODE`.
    TopologyChange {
        change: String,
        address: SocketAddr,
    },
    /// `UP` or `DOWN`.
    StatusChange {
        change: String,
        address: SocketAddr,
    },
    SchemaChange(SchemaChange),
}

/// A response message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Error(ErrorBody),
    Ready,
    Authenticate { authenticator: String },
    Supported { options: Vec<(String, Vec<String>)> },
    Result(ResultBody),
    Event(Event),
    AuthChallenge { token: Option<Vec<u8>> },
    AuthSuccess { token: Option<Vec<u8>> },
}

impl Response {
    pub fn opcode(&self) -> Opcode {
        match self {
            Response::Error(_) => Opcode::Error,
            Response::Ready => Opcode::Ready,
            Response::Authenticate { .. } => Opcode::Authenticate,
            Response::Supported { .. } => Opcode::Supported,
            Response::Result(_) => Opcode::Result,
            Response::Event(_) => Opcode::Event,
            Response::AuthChallenge { .. } => Opcode::AuthChallenge,
            Response::AuthSuccess { .. } => Opcode::AuthSuccess,
        }
    }

    pub fn write_body(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        match self {
            Response::Error(error) => write_error(out, error)?,
            Response::Ready => {}
            Response::Authenticate { authenticator } => put_string(out, authenticator)?,
            Response::Supported { options } => put_string_multimap(out, options)?,
            Response::Result(result) => write_result(out, result)?,
            Response::Event(event) => write_event(out, event)?,
            Response::AuthChallenge { token } | Response::AuthSuccess { token } => {
                put_bytes(out, token.as_deref())?
            }
        }
        Ok(())
    }

    pub fn read_body(opcode: Opcode, body: &[u8]) -> Result<Response, ProtocolError> {
        Response::read(opcode, Reader::new(body))
    }

    /// Decodes the rest of `r` as the body of an `opcode` response.
    pub fn read(opcode: Opcode, mut r: Reader<'_>) -> Result<Response, ProtocolError> {
        let response = match opcode {
            Opcode::Error => Response::Error(read_error(&mut r)?),
            Opcode::Ready => Response::Ready,
            Opcode::Authenticate => Response::Authenticate {
                authenticator: r.string()?.to_owned(),
            },
            Opcode::Supported => Response::Supported {
                options: r.string_multimap()?,
            },
            Opcode::Result => Response::Result(read_result(&mut r)?),
            Opcode::Event => Response::Event(read_event(&mut r)?),
            Opcode::AuthChallenge => Response::AuthChallenge {
                token: r.bytes()?.map(<[u8]>::to_vec),
            },
            Opcode::AuthSuccess => Response::AuthSuccess {
                token: r.bytes()?.map(<[u8]>::to_vec),
            },
            other => return Err(invalid(format!("{other:?} is not a response"))),
        };
        if !r.is_empty() {
            return Err(invalid(format!(
                "{} trailing bytes after {opcode:?}",
                r.remaining()
            )));
        }
        Ok(response)
    }
}

fn write_error(out: &mut Vec<u8>, error: &ErrorBody) -> Result<(), ProtocolError> {
    put_i32(out, error.code);
    put_string(out, &error.message)?;
    match &error.details {
        ErrorDetails::None => {}
        ErrorDetails::Unavailable {
            consistency,
            required,
            alive,
        } => {
            put_u16(out, *consistency as u16);
            put_i32(out, *required);
            put_i32(out, *alive);
        }
        ErrorDetails::WriteTimeout {
            consistency,
            received,
            block_for,
            write_type,
        } => {
            put_u16(out, *consistency as u16);
            put_i32(out, *received);
            put_i32(out, *block_for);
            put_string(out, write_type)?;
        }
        ErrorDetails::ReadTimeout {
            consistency,
            received,
            block_for,
            data_present,
        } => {
            put_u16(out, *consistency as u16);
            put_i32(out, *received);
            put_i32(out, *block_for);
            put_u8(out, u8::from(*data_present));
        }
        ErrorDetails::ReadFailure {
            consistency,
            received,
            block_for,
            num_failures,
            data_present,
        } => {
            put_u16(out, *consistency as u16);
            put_i32(out, *received);
            put_i32(out, *block_for);
            put_i32(out, *num_failures);
            put_u8(out, u8::from(*data_present));
        }
        ErrorDetails::FunctionFailure {
            keyspace,
            function,
            arg_types,
        } => {
            put_string(out, keyspace)?;
            put_string(out, function)?;
            put_string_list(out, arg_types)?;
        }
        ErrorDetails::WriteFailure {
            consistency,
            received,
            block_for,
            num_failures,
            write_type,
        } => {
            put_u16(out, *consistency as u16);
            put_i32(out, *received);
            put_i32(out, *block_for);
            put_i32(out, *num_failures);
            put_string(out, write_type)?;
        }
        ErrorDetails::AlreadyExists { keyspace, table } => {
            put_string(out, keyspace)?;
            put_string(out, table)?;
        }
        ErrorDetails::Unprepared { id } => put_short_bytes(out, id)?,
        ErrorDetails::RateLimitReached {
            op_type,
            rejected_by_coordinator,
        } => {
            put_u8(out, *op_type);
            put_u8(out, u8::from(*rejected_by_coordinator));
        }
    }
    Ok(())
}

fn read_error(r: &mut Reader<'_>) -> Result<ErrorBody, ProtocolError> {
    use error_code::*;
    let code = r.i32()?;
    let message = r.string()?.to_owned();
    let cl = |r: &mut Reader<'_>| Consistency::from_u16(r.u16()?);
    let details = match code {
        UNAVAILABLE => ErrorDetails::Unavailable {
            consistency: cl(r)?,
            required: r.i32()?,
            alive: r.i32()?,
        },
        WRITE_TIMEOUT => ErrorDetails::WriteTimeout {
            consistency: cl(r)?,
            received: r.i32()?,
            block_for: r.i32()?,
            write_type: r.string()?.to_owned(),
        },
        READ_TIMEOUT => ErrorDetails::ReadTimeout {
            consistency: cl(r)?,
            received: r.i32()?,
            block_for: r.i32()?,
            data_present: r.u8()? != 0,
        },
        READ_FAILURE => ErrorDetails::ReadFailure {
            consistency: cl(r)?,
            received: r.i32()?,
            block_for: r.i32()?,
            num_failures: r.i32()?,
            data_present: r.u8()? != 0,
        },
        FUNCTION_FAILURE => ErrorDetails::FunctionFailure {
            keyspace: r.string()?.to_owned(),
            function: r.string()?.to_owned(),
            arg_types: r.string_list()?,
        },
        WRITE_FAILURE => ErrorDetails::WriteFailure {
            consistency: cl(r)?,
            received: r.i32()?,
            block_for: r.i32()?,
            num_failures: r.i32()?,
            write_type: r.string()?.to_owned(),
        },
        ALREADY_EXISTS => ErrorDetails::AlreadyExists {
            keyspace: r.string()?.to_owned(),
            table: r.string()?.to_owned(),
        },
        UNPREPARED => ErrorDetails::Unprepared {
            id: r.short_bytes()?.to_vec(),
        },
        RATE_LIMIT_REACHED => ErrorDetails::RateLimitReached {
            op_type: r.u8()?,
            rejected_by_coordinator: r.u8()? != 0,
        },
        _ => {
            // Unknown codes may carry details we cannot parse; keep the
            // message and drop the rest rather than failing the frame.
            let _ = r.take(r.remaining());
            ErrorDetails::None
        }
    };
    Ok(ErrorBody {
        code,
        message,
        details,
    })
}

mod result_kind {
    pub const VOID: i32 = 1;
    pub const ROWS: i32 = 2;
    pub const SET_KEYSPACE: i32 = 3;
    pub const PREPARED: i32 = 4;
    pub const SCHEMA_CHANGE: i32 = 5;
}

fn write_result(out: &mut Vec<u8>, result: &ResultBody) -> Result<(), ProtocolError> {
    match result {
        ResultBody::Void => put_i32(out, result_kind::VOID),
        ResultBody::Rows(rows) => {
            put_i32(out, result_kind::ROWS);
            rows.metadata.write(out)?;
            put_i32(out, super::wire::len_i32(rows.rows)?);
            out.extend_from_slice(&rows.data);
        }
        ResultBody::SetKeyspace(keyspace) => {
            put_i32(out, result_kind::SET_KEYSPACE);
            put_string(out, keyspace)?;
        }
        ResultBody::Prepared(prepared) => {
            put_i32(out, result_kind::PREPARED);
            put_short_bytes(out, &prepared.id)?;
            prepared.metadata.write(out)?;
            prepared.result_metadata.write(out)?;
        }
        ResultBody::SchemaChange(change) => {
            put_i32(out, result_kind::SCHEMA_CHANGE);
            change.write(out)?;
        }
    }
    Ok(())
}

fn read_result(r: &mut Reader<'_>) -> Result<ResultBody, ProtocolError> {
    Ok(match r.i32()? {
        result_kind::VOID => ResultBody::Void,
        result_kind::ROWS => {
            let metadata = ResultMetadata::read(r)?;
            let count = non_negative(r.i32()?, "row count")?;
            ResultBody::Rows(Rows::read(r, metadata, count)?)
        }
        result_kind::SET_KEYSPACE => ResultBody::SetKeyspace(r.string()?.to_owned()),
        result_kind::PREPARED => ResultBody::Prepared(Prepared {
            id: r.short_bytes()?.to_vec(),
            metadata: PreparedMetadata::read(r)?,
            result_metadata: ResultMetadata::read(r)?,
        }),
        result_kind::SCHEMA_CHANGE => ResultBody::SchemaChange(SchemaChange::read(r)?),
        other => return Err(invalid(format!("unknown result kind {other}"))),
    })
}

fn write_event(out: &mut Vec<u8>, event: &Event) -> Result<(), ProtocolError> {
    match event {
        Event::TopologyChange { change, address } => {
            put_string(out, "TOPOLOGY_CHANGE")?;
            put_string(out, change)?;
            put_inet(out, address);
        }
        Event::StatusChange { change, address } => {
            put_string(out, "STATUS_CHANGE")?;
            put_string(out, change)?;
            put_inet(out, address);
        }
        Event::SchemaChange(change) => {
            put_string(out, "SCHEMA_CHANGE")?;
            change.write(out)?;
        }
    }
    Ok(())
}

fn read_event(r: &mut Reader<'_>) -> Result<Event, ProtocolError> {
    Ok(match r.string()? {
        "TOPOLOGY_CHANGE" => Event::TopologyChange {
            change: r.string()?.to_owned(),
            address: r.inet()?,
        },
        "STATUS_CHANGE" => Event::StatusChange {
            change: r.string()?.to_owned(),
            address: r.inet()?,
        },
        "SCHEMA_CHANGE" => Event::SchemaChange(SchemaChange::read(r)?),
        other => return Err(invalid(format!("unknown event type {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(response: Response) {
        let mut body = Vec::new();
        response.write_body(&mut body).unwrap();
        assert_eq!(
            Response::read_body(response.opcode(), &body).unwrap(),
            response
        );
        for cut in 0..body.len() {
            let _ = Response::read_body(response.opcode(), &body[..cut]);
        }
    }

    fn spec(table: &str, name: &str, ty: ColumnType) -> ColumnSpec {
        ColumnSpec::new("ks", table, name, ty)
    }

    #[test]
    fn responses_round_trip() {
        round_trip(Response::Ready);
        round_trip(Response::Supported {
            options: vec![("COMPRESSION".into(), vec!["lz4".into()])],
        });
        round_trip(Response::Error(ErrorBody {
            code: error_code::UNPREPARED,
            message: "unprepared".into(),
            details: ErrorDetails::Unprepared { id: vec![1, 2] },
        }));
        round_trip(Response::Error(ErrorBody {
            code: error_code::WRITE_TIMEOUT,
            message: "timeout".into(),
            details: ErrorDetails::WriteTimeout {
                consistency: Consistency::Quorum,
                received: 1,
                block_for: 2,
                write_type: "SIMPLE".into(),
            },
        }));
        round_trip(Response::Result(ResultBody::Rows(
            Rows::from_cells(
                ResultMetadata {
                    column_count: 2,
                    columns: vec![
                        spec("t", "a", ColumnType::Int),
                        spec("u", "b", ColumnType::Text),
                    ],
                    paging_state: Some(vec![1, 2, 3]),
                    no_metadata: false,
                },
                vec![vec![Some(vec![0, 0, 0, 1]), None]],
            )
            .unwrap(),
        )));
        round_trip(Response::Result(ResultBody::Rows(
            Rows::from_cells(
                ResultMetadata {
                    column_count: 1,
                    columns: vec![],
                    paging_state: None,
                    no_metadata: true,
                },
                vec![vec![Some(vec![])]],
            )
            .unwrap(),
        )));
        round_trip(Response::Result(ResultBody::Prepared(Prepared {
            id: vec![0xab; 16],
            metadata: PreparedMetadata {
                is_lwt: true,
                pk_indexes: vec![1, 0],
                bind_columns: vec![
                    spec("t", "a", ColumnType::Int),
                    spec("t", "b", ColumnType::Int),
                ],
            },
            result_metadata: ResultMetadata::with_columns(vec![spec("t", "c", ColumnType::Blob)]),
        })));
        round_trip(Response::Event(Event::StatusChange {
            change: "UP".into(),
            address: "127.0.0.3:9042".parse().unwrap(),
        }));
        round_trip(Response::Event(Event::SchemaChange(SchemaChange {
            change: "CREATED".into(),
            target: "TABLE".into(),
            keyspace: "ks".into(),
            name: Some("t".into()),
            arg_types: vec![],
        })));
        round_trip(Response::Result(ResultBody::SetKeyspace("ks".into())));
    }

    #[test]
    fn large_rows_keep_the_frames_bytes_small_ones_copy() {
        use crate::protocol::frame::{
            decode_response_shared, encode_response, FrameHeader, HEADER_LEN,
        };
        for (rows, shared) in [(10usize, false), (100, true)] {
            let mut body = Rows::new(ResultMetadata::with_columns(vec![spec(
                "t",
                "v",
                ColumnType::Blob,
            )]));
            for i in 0..rows {
                body.push_row([Some(&[i as u8; 1000][..])]).unwrap();
            }
            let response = Response::Result(ResultBody::Rows(body.clone()));
            let frame = encode_response(3, &response, &Default::default(), None).unwrap();
            let header = FrameHeader::parse(frame[..HEADER_LEN].try_into().unwrap()).unwrap();
            let frame = bytes::Bytes::from(frame);
            let payload = frame.slice(HEADER_LEN..);
            let (_, decoded) = decode_response_shared(&header, &payload, None).unwrap();
            let Response::Result(ResultBody::Rows(decoded)) = decoded else {
                panic!("not rows");
            };
            assert_eq!(decoded, body);
            let inside = payload.as_ptr_range().contains(&decoded.bytes().as_ptr());
            assert_eq!(inside, shared, "{rows} rows");
        }
    }

    #[test]
    fn hostile_counts_do_not_allocate_or_panic() {
        let mut body = Vec::new();
        put_i32(&mut body, result_kind::ROWS);
        put_i32(&mut body, rows_flags::NO_METADATA);
        put_i32(&mut body, 1_000_000);
        put_i32(&mut body, i32::MAX);
        assert!(Response::read_body(Opcode::Result, &body).is_err());
    }
}

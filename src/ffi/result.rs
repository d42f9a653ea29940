//! `sshard_result`: the outcome of an execute or batch (shared, immutable,
//! thread-safe), with its rows (`sshard_row` views), column metadata and
//! paging state.

use std::ffi::c_char;

use super::cells::{self, sshard_row, sshard_value, Columns, ResultCells};
use super::datatype::{data_type_ptr, sshard_data_type};
use super::enums::{
    sshard_result_kind, sshard_type, type_of, SSHARD_RESULT_KIND_ROWS,
    SSHARD_RESULT_KIND_SCHEMA_CHANGE, SSHARD_RESULT_KIND_SET_KEYSPACE, SSHARD_RESULT_KIND_VOID,
};
use super::handle::{arc_free, check_index, handle_ref, out_arg, slice_out, str_arg, Generational};
use super::status::{
    sshard_status, Fail, FfiResult, SSHARD_STATUS_NAME_NOT_FOUND, SSHARD_STATUS_NOT_PRESENT,
};
use crate::protocol::bind::name_matches;
use crate::protocol::response::SchemaChange;
use crate::protocol::ColumnSpec;
use crate::runtime;
use crate::session::{Prepared, QueryResult, Statement};
use std::sync::Arc;

fn column_index(columns: &[ColumnSpec], name: &str) -> FfiResult<usize> {
    columns
        .iter()
        .position(|c| name_matches(&c.name, name))
        .ok_or_else(|| {
            Fail::new(
                SSHARD_STATUS_NAME_NOT_FOUND,
                format!("the result has no column named {name:?}"),
            )
        })
}

/// The result of one request. Shared and thread-safe; free with
/// `sshard_result_free`.
pub struct sshard_result {
    generation: u64,
    /// The rows (their bytes as received, one buffer) and the views into
    /// them, made as the caller asks (`cells.rs`).
    cells: Box<ResultCells>,
    has_rows: bool,
    paging_state: Option<Vec<u8>>,
    coordinator: Option<std::net::SocketAddr>,
    /// `coordinator` as text, made on first request (most callers never ask).
    coordinator_text: std::sync::OnceLock<String>,
    shard: Option<u16>,
    keyspace: Option<String>,
    schema_change: Option<SchemaChange>,
    warnings: Vec<String>,
    tracing_id: Option<[u8; 16]>,
    schema_in_agreement: Option<bool>,
    /// The statement that produced the result, with the paging state when
    /// there is a next page (`sshard_session_next_page`). Kept even when
    /// there is none: it was made on the caller's thread and is cheapest
    /// freed there, with the result.
    statement: Option<Arc<Statement>>,
}

impl Generational for sshard_result {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl sshard_result {
    /// Wraps a query result. `prepared` (the statement that produced it)
    /// describes the rows when the server skipped the metadata.
    #[cfg(test)]
    pub(crate) fn new(result: QueryResult, prepared: Option<&Arc<Prepared>>) -> sshard_result {
        Self::paged(result, prepared, None)
    }

    /// Like `new`, remembering `statement` (which produced the result) so
    /// the next page can be fetched from the result alone.
    pub(crate) fn paged(
        result: QueryResult,
        prepared: Option<&Arc<Prepared>>,
        statement: Option<Arc<Statement>>,
    ) -> sshard_result {
        let mut statement = statement;
        if let (Some(state), Some(statement)) = (&result.paging_state, statement.as_mut()) {
            Arc::make_mut(statement).paging_state = Some(state.clone());
        }
        let has_rows = result.rows.is_some();
        let mut rows = result.rows.unwrap_or_default();
        let columns = match prepared {
            Some(p) if same_columns(&rows.metadata.columns, rows.metadata.column_count, p) => {
                Columns::Prepared(p.clone())
            }
            _ => Columns::Decoded(std::mem::take(&mut rows.metadata.columns)),
        };
        sshard_result {
            generation: runtime::generation(),
            cells: ResultCells::new(rows, columns),
            has_rows,
            paging_state: result.paging_state,
            coordinator: result.coordinator,
            coordinator_text: std::sync::OnceLock::new(),
            shard: result.shard,
            keyspace: result.keyspace,
            schema_change: result.schema_change,
            warnings: result.warnings,
            tracing_id: result.tracing_id,
            schema_in_agreement: result.schema_in_agreement,
            statement,
        }
    }

    /// The statement that fetches the page after this one.
    pub(crate) fn next_page(&self) -> Option<&Arc<Statement>> {
        self.statement
            .as_ref()
            .filter(|_| self.paging_state.is_some())
    }

    pub(crate) fn paging_state(&self) -> Option<&[u8]> {
        self.paging_state.as_deref()
    }

    #[cfg(test)]
    pub(crate) fn memory(&self) -> usize {
        self.cells.memory()
    }

    fn row_count(&self) -> usize {
        self.cells.rows().len()
    }

    fn column_count(&self) -> usize {
        self.cells.width()
    }
}

/// Whether rows with `decoded` column metadata (empty: the server skipped
/// it) and `count` columns are described by `prepared`'s result metadata.
fn same_columns(decoded: &[ColumnSpec], count: usize, prepared: &Prepared) -> bool {
    let known = &prepared.result_metadata.columns;
    known.len() == count && (decoded.is_empty() || decoded == known.as_slice())
}

/// # Safety
/// `ptr` is NULL or a live result.
unsafe fn result<'a>(ptr: *const sshard_result) -> FfiResult<&'a sshard_result> {
    // SAFETY: forwarded contract.
    unsafe { handle_ref(ptr, "result") }
}

/// Releases the caller's reference (NULL: no-op). Views obtained from the
/// result become invalid when the last reference goes.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_free(result: *const sshard_result) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a reference the caller gives up (API contract).
        unsafe { arc_free(result) }
    }
}

/// What the result carries (`SSHARD_RESULT_KIND_*`): rows, a keyspace
/// switch, a schema change, or nothing.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_get_kind(
    result: *const sshard_result,
    kind: *mut sshard_result_kind,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        out_arg(kind, "kind")?.write(if r.has_rows {
            SSHARD_RESULT_KIND_ROWS
        } else if r.schema_change.is_some() {
            SSHARD_RESULT_KIND_SCHEMA_CHANGE
        } else if r.keyspace.is_some() {
            SSHARD_RESULT_KIND_SET_KEYSPACE
        } else {
            SSHARD_RESULT_KIND_VOID
        });
        Ok(())
    }
}

/// The number of rows in this page (0 for non-SELECT results).
#[no_mangle]
pub unsafe extern "C" fn sshard_result_row_count(
    result: *const sshard_result,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        out_arg(count, "count")?.write(r.row_count());
        Ok(())
    }
}

/// The number of columns of the rows.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_column_count(
    result: *const sshard_result,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        out_arg(count, "count")?.write(r.column_count());
        Ok(())
    }
}

/// Whether the request returned rows (a SELECT), even zero of them.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_has_rows(
    result: *const sshard_result,
    has_rows: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        out_arg(has_rows, "has_rows")?.write(r.has_rows);
        Ok(())
    }
}

/// The name of column `index`, borrowed: valid as long as the result.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_column_name(
    result: *const sshard_result,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let name = out_arg(name, "name")?;
        let name_len = out_arg(name_len, "name_len")?;
        let i = check_index(index, r.column_count())?;
        let column = r.cells.columns().get(i).ok_or_else(|| {
            Fail::new(SSHARD_STATUS_NOT_PRESENT, "the result carries no column metadata")
        })?;
        name.write(column.name.as_ptr().cast());
        name_len.write(column.name.len());
        Ok(())
    }
}

/// The type kind of column `index`.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_column_type(
    result: *const sshard_result,
    index: usize,
    kind: *mut sshard_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let kind = out_arg(kind, "kind")?;
        let i = check_index(index, r.column_count())?;
        kind.write(type_of(r.cells.column_type(i)));
        Ok(())
    }
}

/// The full type of column `index` (for nested types): a view valid as
/// long as the result.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_column_data_type(
    result: *const sshard_result,
    index: usize,
    data_type: *mut *const sshard_data_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let out = out_arg(data_type, "data_type")?;
        let i = check_index(index, r.column_count())?;
        out.write(data_type_ptr(r.cells.column_type(i)));
        Ok(())
    }
}

/// The index of the column named `name` (unquoted names match
/// case-insensitively, `"Quoted"` ones exactly).
#[no_mangle]
pub unsafe extern "C" fn sshard_result_column_index(
    result: *const sshard_result,
    name: *const c_char,
    name_len: usize,
    index: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let out = out_arg(index, "index")?;
        out.write(column_index(r.cells.columns(), name)?);
        Ok(())
    }
}

/// Row `index` (a view valid as long as the result).
#[no_mangle]
pub unsafe extern "C" fn sshard_result_row(
    result: *const sshard_result,
    index: usize,
    row: *mut *const sshard_row,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let out = out_arg(row, "row")?;
        let i = check_index(index, r.row_count())?;
        out.write(r.cells.row(i));
        Ok(())
    }
}

/// The value at (`row`, `column`) (a view valid as long as the result).
#[no_mangle]
pub unsafe extern "C" fn sshard_result_value(
    result: *const sshard_result,
    row: usize,
    column: usize,
    value: *mut *const sshard_value,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let out = out_arg(value, "value")?;
        let row = check_index(row, r.row_count())?;
        let column = check_index(column, r.column_count())?;
        out.write(r.cells.value(row, column));
        Ok(())
    }
}

/// The raw cells of row `row`, for callers that decode the CQL encoding
/// themselves (the bindings): for each of the result's columns (`count`
/// must be the column count) its bytes in `bytes[i]` and their length in
/// `lengths[i]`, -1 for NULL (with `bytes[i]` NULL). Borrowed for as long
/// as the result. One call a row, where value views cost two a value.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_row_cells(
    result: *const sshard_result,
    row: usize,
    bytes: *mut *const u8,
    lengths: *mut i32,
    count: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let row = check_index(row, r.row_count())?;
        let width = r.column_count();
        if count != width {
            return Err(Fail::invalid(format!(
                "count is {count}, the result has {width} columns"
            )));
        }
        // SAFETY: NULL or room for `count` entries each, apart (API contract).
        let bytes = unsafe { slice_out(bytes, count, "bytes") }?;
        // SAFETY: as above.
        let lengths = unsafe { slice_out(lengths, count, "lengths") }?;
        let rows = r.cells.rows();
        for (column, (b, len)) in bytes.iter_mut().zip(lengths.iter_mut()).enumerate() {
            match rows.cell(row, column) {
                // A cell's length came from an i32 on the wire.
                Some(cell) => {
                    *b = cell.as_ptr();
                    *len = cell.len() as i32;
                }
                None => {
                    *b = std::ptr::null();
                    *len = -1;
                }
            }
        }
        Ok(())
    }
}

/// The row's value of column `index` (a view valid as long as the result).
#[no_mangle]
pub unsafe extern "C" fn sshard_row_value(
    row: *const sshard_row,
    index: usize,
    value: *mut *const sshard_value,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live row view (API contract).
        let row = unsafe { cells::row(row) }?;
        let out = out_arg(value, "value")?;
        let i = check_index(index, row.cells.width())?;
        out.write(row.value(i));
        Ok(())
    }
}

/// The row's value of the column named `name` (a view valid as long as
/// the result).
#[no_mangle]
pub unsafe extern "C" fn sshard_row_value_by_name(
    row: *const sshard_row,
    name: *const c_char,
    name_len: usize,
    value: *mut *const sshard_value,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live row view (API contract).
        let row = unsafe { cells::row(row) }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let out = out_arg(value, "value")?;
        let i = column_index(row.cells.columns(), name)?;
        out.write(row.value(i));
        Ok(())
    }
}

/// Whether more pages follow this one.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_has_more_pages(
    result: *const sshard_result,
    has_more: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        out_arg(has_more, "has_more")?.write(r.paging_state.is_some());
        Ok(())
    }
}

/// The paging state to fetch the next page with (borrowed: valid as long
/// as the result; NULL and 0 on
/// the last page). See `sshard_statement_set_paging_state`.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_paging_state(
    result: *const sshard_result,
    paging_state: *mut *const u8,
    paging_state_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let p = out_arg(paging_state, "paging_state")?;
        let n = out_arg(paging_state_len, "paging_state_len")?;
        match &r.paging_state {
            Some(state) => {
                p.write(state.as_ptr());
                n.write(state.len());
            }
            None => {
                p.write(std::ptr::null());
                n.write(0);
            }
        }
        Ok(())
    }
}

/// The node (`address:port`) that served the request, borrowed (valid as
/// long as the result);
/// `NOT_PRESENT` when unknown.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_coordinator(
    result: *const sshard_result,
    address: *mut *const c_char,
    address_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let p = out_arg(address, "address")?;
        let n = out_arg(address_len, "address_len")?;
        let a = r.coordinator.ok_or_else(|| {
            Fail::new(SSHARD_STATUS_NOT_PRESENT, "the coordinator is unknown")
        })?;
        let a = r.coordinator_text.get_or_init(|| a.to_string());
        p.write(a.as_ptr().cast());
        n.write(a.len());
        Ok(())
    }
}

/// The shard that served the request; `NOT_PRESENT` when unknown.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_shard(
    result: *const sshard_result,
    shard: *mut u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let out = out_arg(shard, "shard")?;
        let s = r.shard.ok_or_else(|| Fail::new(SSHARD_STATUS_NOT_PRESENT, "the shard is unknown"))?;
        out.write(u32::from(s));
        Ok(())
    }
}

/// The keyspace a `USE` statement switched to (borrowed: valid as long as
/// the result); `NOT_PRESENT` otherwise.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_keyspace(
    result: *const sshard_result,
    keyspace: *mut *const c_char,
    keyspace_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let p = out_arg(keyspace, "keyspace")?;
        let n = out_arg(keyspace_len, "keyspace_len")?;
        let k = r.keyspace.as_ref().ok_or_else(|| {
            Fail::new(SSHARD_STATUS_NOT_PRESENT, "the result names no keyspace")
        })?;
        p.write(k.as_ptr().cast());
        n.write(k.len());
        Ok(())
    }
}

/// What a DDL statement changed, as the server's SCHEMA_CHANGE result says:
/// `change` (`CREATED`, `UPDATED` or `DROPPED`), `target` (`KEYSPACE`,
/// `TABLE`, `TYPE`, `FUNCTION` or `AGGREGATE`), `keyspace`, and `name` (the
/// table, type, function or aggregate; empty for a keyspace), each borrowed
/// (valid as long as the result). `NOT_PRESENT` for other results.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_schema_change(
    result: *const sshard_result,
    change: *mut *const c_char,
    change_len: *mut usize,
    target: *mut *const c_char,
    target_len: *mut usize,
    keyspace: *mut *const c_char,
    keyspace_len: *mut usize,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let outs = [
            (out_arg(change, "change")?, out_arg(change_len, "change_len")?),
            (out_arg(target, "target")?, out_arg(target_len, "target_len")?),
            (out_arg(keyspace, "keyspace")?, out_arg(keyspace_len, "keyspace_len")?),
            (out_arg(name, "name")?, out_arg(name_len, "name_len")?),
        ];
        let c = r.schema_change.as_ref().ok_or_else(|| {
            Fail::new(SSHARD_STATUS_NOT_PRESENT, "the result is not a schema change")
        })?;
        let texts = [
            c.change.as_str(),
            c.target.as_str(),
            c.keyspace.as_str(),
            c.name.as_deref().unwrap_or(""),
        ];
        for ((p, n), text) in outs.into_iter().zip(texts) {
            p.write(text.as_ptr().cast());
            n.write(text.len());
        }
        Ok(())
    }
}

/// The number of warnings the server attached to the response.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_warning_count(
    result: *const sshard_result,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        out_arg(count, "count")?.write(r.warnings.len());
        Ok(())
    }
}

/// Warning `index` of the response (UTF-8, borrowed: valid as long as the
/// result).
#[no_mangle]
pub unsafe extern "C" fn sshard_result_warning(
    result: *const sshard_result,
    index: usize,
    warning: *mut *const c_char,
    warning_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let p = out_arg(warning, "warning")?;
        let n = out_arg(warning_len, "warning_len")?;
        let text = &r.warnings[check_index(index, r.warnings.len())?];
        p.write(text.as_ptr().cast());
        n.write(text.len());
        Ok(())
    }
}

/// Copies the 16-byte id of the request's trace (`system_traces.sessions`)
/// into `id`, for a request that asked for tracing;
/// `SSHARD_STATUS_NOT_PRESENT` (and `id` untouched) otherwise.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_tracing_id(
    result: *const sshard_result,
    id: *mut u8,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let out = out_arg(id.cast::<[u8; 16]>(), "id")?;
        let trace = r.tracing_id.ok_or_else(|| {
            Fail::new(SSHARD_STATUS_NOT_PRESENT, "the request was not traced")
        })?;
        out.write(trace);
        Ok(())
    }
}

/// After a schema change (DDL): whether every node that is up reported the
/// new schema before the request completed (it waits up to the config's
/// schema agreement timeout). `SSHARD_STATUS_NOT_PRESENT` for other
/// results.
#[no_mangle]
pub unsafe extern "C" fn sshard_result_schema_in_agreement(
    result: *const sshard_result,
    agreed: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live result (API contract).
        let r = unsafe { self::result(result) }?;
        let out = out_arg(agreed, "agreed")?;
        let agreed = r.schema_in_agreement.ok_or_else(|| {
            Fail::new(SSHARD_STATUS_NOT_PRESENT, "the result is not a schema change")
        })?;
        out.write(agreed);
        Ok(())
    }
}

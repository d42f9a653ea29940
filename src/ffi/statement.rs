//! `sshard_statement` (simple or bound) and `sshard_batch`: caller-owned
//! builders, not thread-safe. The typed `bind_*` functions are in
//! `bind.rs`; this file holds the statement's state, the binding rules and
//! the per-request options.

use std::ffi::c_char;
use std::sync::Arc;

use super::config::millis_arg;
use super::enums::{
    batch_kind, consistency, retry_policy, serial_consistency, sshard_batch_type,
    sshard_consistency, sshard_retry_policy,
};
use super::handle::{
    box_free, box_into_raw, box_mut, bytes_arg, handle_ref, out_arg, str_arg, Generational,
};
use super::result::sshard_result;
use super::status::{sshard_status, Fail, FfiResult};
use crate::protocol::BindValue;
use crate::runtime;
use crate::session::{Batch, RoutingKey, Statement, StatementRouting, MAX_VALUES};

/// Where a value goes: a position or a marker / field name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Index(usize),
    Name(&'a str),
}

/// A statement: CQL text with its values (simple) or a prepared statement
/// with its bound values, plus per-request options. Caller-owned, not
/// thread-safe; free with `sshard_statement_free`.
pub struct sshard_statement {
    generation: u64,
    /// Shared with the requests (and their results) started from it, so
    /// executing does not copy the values; changing it after that copies
    /// it once (`options_mut`).
    inner: Arc<Statement>,
}

impl Generational for sshard_statement {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl sshard_statement {
    pub(crate) fn new(inner: Statement) -> sshard_statement {
        sshard_statement {
            generation: runtime::generation(),
            inner: Arc::new(inner),
        }
    }

    /// Type-checks and stores one value (the core's binding rules).
    pub(crate) fn bind(&mut self, target: Target<'_>, value: BindValue) -> FfiResult {
        match target {
            Target::Index(i) => self.options_mut().bind(i, &value)?,
            Target::Name(name) => self.options_mut().bind_by_name(name, &value)?,
        }
        Ok(())
    }

    /// The statement to change (copied first while a request started
    /// from it still runs).
    pub(crate) fn options_mut(&mut self) -> &mut Statement {
        Arc::make_mut(&mut self.inner)
    }

    /// The statement to execute (shared, not copied).
    pub(crate) fn to_statement(&self) -> FfiResult<Arc<Statement>> {
        if self
            .inner
            .value_names
            .as_ref()
            .is_some_and(|names| names.iter().any(String::is_empty))
        {
            return Err(Fail::state(
                "a simple statement's values must be all named or all positional",
            ));
        }
        Ok(Arc::clone(&self.inner))
    }
}

/// Makes a simple statement: CQL text with `value_count` `?` markers whose
/// values are bound by index (or all by name: `:name` markers). Free it
/// with `sshard_statement_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_new(
    query: *const c_char,
    query_len: usize,
    value_count: usize,
    statement: *mut *mut sshard_statement,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(statement, "statement")?;
        // SAFETY: `(query, query_len)` is readable memory (API contract).
        let query = unsafe { str_arg(query, query_len, "query") }?;
        let statement = Statement::simple_with_values(query, value_count)?;
        out.write(box_into_raw(sshard_statement::new(statement)));
        Ok(())
    }
}

/// Frees a statement (NULL: no-op).
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_free(statement: *mut sshard_statement) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a statement the caller gives up (API contract).
        unsafe { box_free(statement) }
    }
}

/// The number of values (markers) the statement takes.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_value_count(
    statement: *const sshard_statement,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { handle_ref(statement, "statement") }?;
        out_arg(count, "count")?.write(statement.inner.values.len());
        Ok(())
    }
}

/// Consistency level (default: the config's).
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_consistency(
    statement: *mut sshard_statement,
    level: sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().consistency = Some(consistency(level)?);
        Ok(())
    }
}

/// Serial consistency of conditional statements (SERIAL or LOCAL_SERIAL).
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_serial_consistency(
    statement: *mut sshard_statement,
    level: sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().serial_consistency = Some(serial_consistency(level)?);
        Ok(())
    }
}

/// Rows per page; 0 or negative disables paging.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_page_size(
    statement: *mut sshard_statement,
    page_size: i32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().page_size = Some(page_size);
        Ok(())
    }
}

/// Where the next execution starts: a paging state from
/// `sshard_result_paging_state` (empty: the first page). Paging states are
/// opaque server data: never take them from untrusted input.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_paging_state(
    statement: *mut sshard_statement,
    paging_state: *const u8,
    paging_state_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        // SAFETY: `(paging_state, len)` is readable memory (API contract).
        let state = unsafe { bytes_arg(paging_state, paging_state_len, "paging_state") }?;
        statement.options_mut().paging_state = (!state.is_empty()).then(|| state.to_vec());
        Ok(())
    }
}

/// Continues after `result`'s page: copies its paging state, or clears the
/// statement's when `result` was the last page.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_paging_state_from_result(
    statement: *mut sshard_statement,
    result: *const sshard_result,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        // SAFETY: NULL or a live result (API contract).
        let result = unsafe { handle_ref(result, "result") }?;
        statement.options_mut().paging_state = result.paging_state().map(<[u8]>::to_vec);
        Ok(())
    }
}

/// Client-side write timestamp in microseconds since the epoch.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_timestamp(
    statement: *mut sshard_statement,
    timestamp_us: i64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().timestamp = Some(timestamp_us);
        Ok(())
    }
}

/// Whether the statement may be retried or sent twice safely.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_idempotent(
    statement: *mut sshard_statement,
    idempotent: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().idempotent = idempotent;
        Ok(())
    }
}

/// The retry policy of this statement (`SSHARD_RETRY_POLICY_*`), instead
/// of the config's.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_retry_policy(
    statement: *mut sshard_statement,
    policy: sshard_retry_policy,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().retry_policy = Some(retry_policy(policy)?);
        Ok(())
    }
}

/// End-to-end timeout of the request in milliseconds (0: the config's).
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_timeout_ms(
    statement: *mut sshard_statement,
    timeout_ms: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        let timeout = millis_arg(timeout_ms, "timeout")?;
        statement.options_mut().timeout = (timeout_ms > 0).then_some(timeout);
        Ok(())
    }
}

/// Asks the server to trace the request (default: no); the result then
/// carries the trace's id (`sshard_result_tracing_id`).
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_tracing(
    statement: *mut sshard_statement,
    tracing: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        statement.options_mut().tracing = tracing;
        Ok(())
    }
}

/// The routing of a statement, made on first use (keyspace and table
/// unknown until set).
fn routing_mut(statement: &mut Statement) -> &mut StatementRouting {
    statement.routing.get_or_insert_with(|| StatementRouting {
        keyspace: None,
        table: None,
        key: RoutingKey::Bytes(Vec::new()),
    })
}

/// Gives a simple statement its partition key, so it is routed to the
/// replica and shard that own it like a prepared statement: `key` is the
/// serialized key (one column: its value's bytes; several: each as a
/// 2-byte big-endian length, the bytes and a 0 byte). Overrides what a
/// prepared statement's metadata says. `(NULL, 0)`: no routing key.
/// The keyspace is the session's unless `sshard_statement_set_routing_table`
/// names one; a tablet keyspace also needs the table.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_routing_key(
    statement: *mut sshard_statement,
    key: *const u8,
    key_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        // SAFETY: `(key, key_len)` is readable memory (API contract).
        let key = unsafe { bytes_arg(key, key_len, "key") }?;
        routing_mut(statement.options_mut()).key = RoutingKey::Bytes(key.to_vec());
        Ok(())
    }
}

/// Like `sshard_statement_set_routing_key`, with the key made of the
/// statement's own values at `positions` (`count` of them, in partition-key
/// order: one is the key, several a composite key), read when it executes.
/// `count` 0: no routing key.
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_routing_key_values(
    statement: *mut sshard_statement,
    positions: *const usize,
    count: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        if count == 0 {
            routing_mut(statement.options_mut()).key = RoutingKey::Values(Vec::new());
            return Ok(());
        }
        if positions.is_null() {
            return Err(Fail::null("positions"));
        }
        let values = statement.inner.values.len();
        if count > values {
            return Err(Fail::invalid(format!("{count} key components for {values} values")));
        }
        // SAFETY: `positions` points to `count` readable `size_t`s (API
        // contract); `count` is at most the statement's value count.
        let positions = unsafe { std::slice::from_raw_parts(positions, count) };
        if let Some(&bad) = positions.iter().find(|&&p| p >= values) {
            return Err(Fail::index(bad, values));
        }
        routing_mut(statement.options_mut()).key = RoutingKey::Values(positions.to_vec());
        Ok(())
    }
}

/// The keyspace and table of a statement's partition key, for routing with
/// a routing key (exact, case-sensitive names). `keyspace` `(NULL, 0)`: the
/// session's; `table` `(NULL, 0)`: unknown (a statement on a tablet
/// keyspace is then not routed).
#[no_mangle]
pub unsafe extern "C" fn sshard_statement_set_routing_table(
    statement: *mut sshard_statement,
    keyspace: *const c_char,
    keyspace_len: usize,
    table: *const c_char,
    table_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { box_mut(statement, "statement") }?;
        // SAFETY: both pairs are readable memory (API contract).
        let (keyspace, table) = unsafe {
            (str_arg(keyspace, keyspace_len, "keyspace")?, str_arg(table, table_len, "table")?)
        };
        let routing = routing_mut(statement.options_mut());
        routing.keyspace = (!keyspace.is_empty()).then(|| keyspace.to_owned());
        routing.table = (!table.is_empty()).then(|| table.to_owned());
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// sshard_batch

/// Several statements applied together. Caller-owned, not thread-safe.
pub struct sshard_batch {
    generation: u64,
    inner: Batch,
}

impl Generational for sshard_batch {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl sshard_batch {
    pub(crate) fn batch(&self) -> &Batch {
        &self.inner
    }

    pub(crate) fn options_mut(&mut self) -> &mut Batch {
        &mut self.inner
    }
}

/// Makes an empty batch of `type` (`SSHARD_BATCH_TYPE_LOGGED`, `UNLOGGED`
/// or `COUNTER`). Free it with `sshard_batch_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_new(
    type_: sshard_batch_type,
    batch: *mut *mut sshard_batch,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(batch, "batch")?;
        let kind = batch_kind(type_)?;
        out.write(box_into_raw(sshard_batch {
            generation: runtime::generation(),
            inner: Batch::new(kind),
        }));
        Ok(())
    }
}

/// Frees a batch (NULL: no-op).
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_free(batch: *mut sshard_batch) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a batch the caller gives up (API contract).
        unsafe { box_free(batch) }
    }
}

/// Appends a copy of `statement` (its text or prepared id and its values;
/// its other options are ignored). The statement stays the caller's.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_add_statement(
    batch: *mut sshard_batch,
    statement: *const sshard_statement,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        // SAFETY: NULL or a live statement (API contract).
        let statement = unsafe { handle_ref(statement, "statement") }?;
        let statement = Arc::unwrap_or_clone(statement.to_statement()?);
        if statement.value_names.is_some() {
            return Err(Fail::invalid("batch statements cannot use named values"));
        }
        if batch.inner.statements.len() >= MAX_VALUES {
            return Err(Fail::invalid(format!(
                "a batch holds at most {MAX_VALUES} statements"
            )));
        }
        batch.inner.statements.push(statement);
        Ok(())
    }
}

/// The number of statements in the batch.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_statement_count(
    batch: *const sshard_batch,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { handle_ref(batch, "batch") }?;
        out_arg(count, "count")?.write(batch.inner.statements.len());
        Ok(())
    }
}

/// Consistency level of the batch.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_consistency(
    batch: *mut sshard_batch,
    level: sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.inner.consistency = Some(consistency(level)?);
        Ok(())
    }
}

/// Serial consistency of a conditional batch.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_serial_consistency(
    batch: *mut sshard_batch,
    level: sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.inner.serial_consistency = Some(serial_consistency(level)?);
        Ok(())
    }
}

/// Client-side write timestamp in microseconds since the epoch.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_timestamp(
    batch: *mut sshard_batch,
    timestamp_us: i64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.inner.timestamp = Some(timestamp_us);
        Ok(())
    }
}

/// Whether the batch may be retried or sent twice safely.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_idempotent(
    batch: *mut sshard_batch,
    idempotent: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.inner.idempotent = idempotent;
        Ok(())
    }
}

/// The retry policy of this batch (`SSHARD_RETRY_POLICY_*`), instead of
/// the config's.
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_retry_policy(
    batch: *mut sshard_batch,
    policy: sshard_retry_policy,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.inner.retry_policy = Some(retry_policy(policy)?);
        Ok(())
    }
}

/// Asks the server to trace the batch (default: no).
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_tracing(
    batch: *mut sshard_batch,
    tracing: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        batch.inner.tracing = tracing;
        Ok(())
    }
}

/// End-to-end timeout of the batch in milliseconds (0: the config's).
#[no_mangle]
pub unsafe extern "C" fn sshard_batch_set_timeout_ms(
    batch: *mut sshard_batch,
    timeout_ms: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live batch (API contract).
        let batch = unsafe { box_mut(batch, "batch") }?;
        let timeout = millis_arg(timeout_ms, "timeout")?;
        batch.inner.timeout = (timeout_ms > 0).then_some(timeout);
        Ok(())
    }
}

//! `sshard_schema`: a snapshot of the cluster's schema as the session
//! knows it (refreshed on schema change events), with borrowed views of
//! its keyspaces, tables and columns. A snapshot never changes: it stays
//! consistent however long the caller reads it, and a later change shows
//! in the next `sshard_session_get_schema`.

use std::ffi::c_char;
use std::sync::Arc;

use super::datatype::{data_type_ptr, sshard_data_type};
use super::enums::{
    sshard_column_kind, SSHARD_COLUMN_KIND_CLUSTERING, SSHARD_COLUMN_KIND_PARTITION_KEY,
    SSHARD_COLUMN_KIND_REGULAR, SSHARD_COLUMN_KIND_STATIC,
};
use super::handle::{
    arc_free, arc_into_raw, check_index, handle_ref, out_arg, str_arg, view_ref, Generational,
};
use super::session::sshard_session;
use super::status::{sshard_status, Fail, FfiResult, SSHARD_STATUS_NAME_NOT_FOUND};
use crate::cluster::schema::{ColumnKind, ColumnSchema, KeyspaceSchema, TableSchema};
use crate::cluster::ClusterState;
use crate::runtime;

/// A schema snapshot. Shared and thread-safe; free with
/// `sshard_schema_free`.
pub struct sshard_schema {
    generation: u64,
    /// Keyspaces sorted by name; their schemas live in `_state`.
    keyspaces: Vec<KeyspaceEntry>,
    _state: Arc<ClusterState>,
}

impl Generational for sshard_schema {
    fn generation(&self) -> u64 {
        self.generation
    }
}

struct KeyspaceEntry {
    name: String,
    uses_tablets: bool,
    schema: Arc<KeyspaceSchema>,
}

/// A keyspace of a schema snapshot (a view valid as long as the snapshot).
pub struct sshard_keyspace_meta {
    _entry: KeyspaceEntry,
}

/// A table of a keyspace (a view valid as long as the snapshot).
pub struct sshard_table_meta {
    _table: TableSchema,
}

/// A column of a table (a view valid as long as the snapshot).
pub struct sshard_column_meta {
    _column: ColumnSchema,
}

// Views are the snapshot's own data, cast: never constructed.
fn keyspace_ptr(entry: &KeyspaceEntry) -> *const sshard_keyspace_meta {
    (entry as *const KeyspaceEntry).cast()
}

fn table_ptr(table: &TableSchema) -> *const sshard_table_meta {
    (table as *const TableSchema).cast()
}

fn column_ptr(column: &ColumnSchema) -> *const sshard_column_meta {
    (column as *const ColumnSchema).cast()
}

/// # Safety
/// `ptr` is NULL or a live snapshot.
unsafe fn schema<'a>(ptr: *const sshard_schema) -> FfiResult<&'a sshard_schema> {
    // SAFETY: forwarded contract.
    unsafe { handle_ref(ptr, "schema") }
}

/// # Safety
/// `ptr` is NULL or a keyspace view whose snapshot is alive.
unsafe fn keyspace<'a>(ptr: *const sshard_keyspace_meta) -> FfiResult<&'a KeyspaceEntry> {
    // SAFETY: keyspace views are `&KeyspaceEntry` cast by `keyspace_ptr`.
    unsafe { view_ref(ptr.cast::<KeyspaceEntry>(), "keyspace") }
}

/// # Safety
/// `ptr` is NULL or a table view whose snapshot is alive.
unsafe fn table<'a>(ptr: *const sshard_table_meta) -> FfiResult<&'a TableSchema> {
    // SAFETY: table views are `&TableSchema` cast by `table_ptr`.
    unsafe { view_ref(ptr.cast::<TableSchema>(), "table") }
}

/// # Safety
/// `ptr` is NULL or a column view whose snapshot is alive.
unsafe fn column<'a>(ptr: *const sshard_column_meta) -> FfiResult<&'a ColumnSchema> {
    // SAFETY: column views are `&ColumnSchema` cast by `column_ptr`.
    unsafe { view_ref(ptr.cast::<ColumnSchema>(), "column") }
}

fn not_found(what: &str, name: &str) -> Fail {
    Fail::new(
        SSHARD_STATUS_NAME_NOT_FOUND,
        format!("no {what} named {name:?}"),
    )
}

/// Writes `(text, len)` of a borrowed string.
fn write_str(text: &str, ptr: *mut *const c_char, len: *mut usize) -> FfiResult {
    let ptr = out_arg(ptr, "name")?;
    let len = out_arg(len, "name_len")?;
    ptr.write(text.as_ptr().cast());
    len.write(text.len());
    Ok(())
}

/// The session's schema now: a new snapshot reference, freed with
/// `sshard_schema_free`. Cheap: it shares what the session holds.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_get_schema(
    session: *const sshard_session,
    schema: *mut *const sshard_schema,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { handle_ref(session, "session") }?;
        let out = out_arg(schema, "schema")?;
        let state = s.rust_session().cluster_state();
        let mut keyspaces: Vec<KeyspaceEntry> = state
            .keyspaces()
            .iter()
            .map(|(name, info)| KeyspaceEntry {
                name: name.clone(),
                uses_tablets: info.uses_tablets,
                schema: info.schema.clone(),
            })
            .collect();
        keyspaces.sort_by(|a, b| a.name.cmp(&b.name));
        out.write(arc_into_raw(Arc::new(sshard_schema {
            generation: runtime::generation(),
            keyspaces,
            _state: state,
        })));
        Ok(())
    }
}

/// Releases the caller's reference (NULL: no-op); views of the snapshot
/// end with its last reference.
#[no_mangle]
pub unsafe extern "C" fn sshard_schema_free(schema: *const sshard_schema) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a reference the caller gives up (API contract).
        unsafe { arc_free(schema) }
    }
}

/// The number of keyspaces (system ones included).
#[no_mangle]
pub unsafe extern "C" fn sshard_schema_keyspace_count(
    schema: *const sshard_schema,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live snapshot (API contract).
        let s = unsafe { self::schema(schema) }?;
        out_arg(count, "count")?.write(s.keyspaces.len());
        Ok(())
    }
}

/// Keyspace `index`, in name order.
#[no_mangle]
pub unsafe extern "C" fn sshard_schema_keyspace(
    schema: *const sshard_schema,
    index: usize,
    keyspace: *mut *const sshard_keyspace_meta,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live snapshot (API contract).
        let s = unsafe { self::schema(schema) }?;
        let out = out_arg(keyspace, "keyspace")?;
        let i = check_index(index, s.keyspaces.len())?;
        out.write(keyspace_ptr(&s.keyspaces[i]));
        Ok(())
    }
}

/// The keyspace named `name` (exact, case-sensitive).
#[no_mangle]
pub unsafe extern "C" fn sshard_schema_keyspace_by_name(
    schema: *const sshard_schema,
    name: *const c_char,
    name_len: usize,
    keyspace: *mut *const sshard_keyspace_meta,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live snapshot (API contract).
        let s = unsafe { self::schema(schema) }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let out = out_arg(keyspace, "keyspace")?;
        let i = s
            .keyspaces
            .binary_search_by(|k| k.name.as_str().cmp(name))
            .map_err(|_| not_found("keyspace", name))?;
        out.write(keyspace_ptr(&s.keyspaces[i]));
        Ok(())
    }
}

/// The keyspace's name (borrowed).
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_name(
    keyspace: *const sshard_keyspace_meta,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        write_str(&k.name, name, name_len)
    }
}

/// Whether the keyspace's tables use tablets (else vnodes).
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_uses_tablets(
    keyspace: *const sshard_keyspace_meta,
    uses_tablets: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        out_arg(uses_tablets, "uses_tablets")?.write(k.uses_tablets);
        Ok(())
    }
}

/// The number of entries of the keyspace's replication map.
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_replication_count(
    keyspace: *const sshard_keyspace_meta,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        out_arg(count, "count")?.write(k.schema.replication.len());
        Ok(())
    }
}

/// Entry `index` of the replication map, in key order (`class`,
/// `replication_factor` or a datacenter's factor), both borrowed.
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_replication(
    keyspace: *const sshard_keyspace_meta,
    index: usize,
    key: *mut *const c_char,
    key_len: *mut usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        let (key, key_len) = (out_arg(key, "key")?, out_arg(key_len, "key_len")?);
        let (value, value_len) = (out_arg(value, "value")?, out_arg(value_len, "value_len")?);
        let (name, factor) = &k.schema.replication[check_index(index, k.schema.replication.len())?];
        key.write(name.as_ptr().cast());
        key_len.write(name.len());
        value.write(factor.as_ptr().cast());
        value_len.write(factor.len());
        Ok(())
    }
}

/// The number of tables (and materialized views) of the keyspace.
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_table_count(
    keyspace: *const sshard_keyspace_meta,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        out_arg(count, "count")?.write(k.schema.tables.len());
        Ok(())
    }
}

/// Table `index`, in name order.
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_table(
    keyspace: *const sshard_keyspace_meta,
    index: usize,
    table: *mut *const sshard_table_meta,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        let out = out_arg(table, "table")?;
        out.write(table_ptr(&k.schema.tables[check_index(index, k.schema.tables.len())?]));
        Ok(())
    }
}

/// The table named `name` (exact, case-sensitive).
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_table_by_name(
    keyspace: *const sshard_keyspace_meta,
    name: *const c_char,
    name_len: usize,
    table: *mut *const sshard_table_meta,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let out = out_arg(table, "table")?;
        let t = k.schema.table(name).ok_or_else(|| not_found("table", name))?;
        out.write(table_ptr(t));
        Ok(())
    }
}

/// The number of user types of the keyspace.
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_type_count(
    keyspace: *const sshard_keyspace_meta,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        out_arg(count, "count")?.write(k.schema.types.len());
        Ok(())
    }
}

/// User type `index`, in name order, as a data type (`SSHARD_TYPE_UDT`:
/// its name, fields and their types through the `sshard_data_type_*`
/// functions).
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_type(
    keyspace: *const sshard_keyspace_meta,
    index: usize,
    data_type: *mut *const sshard_data_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        let out = out_arg(data_type, "data_type")?;
        out.write(data_type_ptr(&k.schema.types[check_index(index, k.schema.types.len())?]));
        Ok(())
    }
}

/// The user type named `name`.
#[no_mangle]
pub unsafe extern "C" fn sshard_keyspace_meta_type_by_name(
    keyspace: *const sshard_keyspace_meta,
    name: *const c_char,
    name_len: usize,
    data_type: *mut *const sshard_data_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let k = unsafe { self::keyspace(keyspace) }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let out = out_arg(data_type, "data_type")?;
        let ty = k.schema.user_type(name).ok_or_else(|| not_found("user type", name))?;
        out.write(data_type_ptr(ty));
        Ok(())
    }
}

/// The table's name (borrowed).
#[no_mangle]
pub unsafe extern "C" fn sshard_table_meta_name(
    table: *const sshard_table_meta,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let t = unsafe { self::table(table) }?;
        write_str(&t.name, name, name_len)
    }
}

/// The number of columns of the table.
#[no_mangle]
pub unsafe extern "C" fn sshard_table_meta_column_count(
    table: *const sshard_table_meta,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let t = unsafe { self::table(table) }?;
        out_arg(count, "count")?.write(t.columns.len());
        Ok(())
    }
}

/// Column `index`: the partition key columns in key order, then the
/// clustering columns in key order, then the others by name.
#[no_mangle]
pub unsafe extern "C" fn sshard_table_meta_column(
    table: *const sshard_table_meta,
    index: usize,
    column: *mut *const sshard_column_meta,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let t = unsafe { self::table(table) }?;
        let out = out_arg(column, "column")?;
        out.write(column_ptr(&t.columns[check_index(index, t.columns.len())?]));
        Ok(())
    }
}

/// The column named `name` (exact, case-sensitive).
#[no_mangle]
pub unsafe extern "C" fn sshard_table_meta_column_by_name(
    table: *const sshard_table_meta,
    name: *const c_char,
    name_len: usize,
    column: *mut *const sshard_column_meta,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let t = unsafe { self::table(table) }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let out = out_arg(column, "column")?;
        let c = t
            .columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| not_found("column", name))?;
        out.write(column_ptr(c));
        Ok(())
    }
}

/// The number of partition key columns.
#[no_mangle]
pub unsafe extern "C" fn sshard_table_meta_partition_key_count(
    table: *const sshard_table_meta,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let t = unsafe { self::table(table) }?;
        out_arg(count, "count")?.write(t.partition_key.len());
        Ok(())
    }
}

/// Partition key column `index`, in key order.
#[no_mangle]
pub unsafe extern "C" fn sshard_table_meta_partition_key(
    table: *const sshard_table_meta,
    index: usize,
    column: *mut *const sshard_column_meta,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let t = unsafe { self::table(table) }?;
        let out = out_arg(column, "column")?;
        let i = t.partition_key[check_index(index, t.partition_key.len())?];
        out.write(column_ptr(&t.columns[i]));
        Ok(())
    }
}

/// The number of clustering columns.
#[no_mangle]
pub unsafe extern "C" fn sshard_table_meta_clustering_key_count(
    table: *const sshard_table_meta,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let t = unsafe { self::table(table) }?;
        out_arg(count, "count")?.write(t.clustering_key.len());
        Ok(())
    }
}

/// Clustering column `index`, in key order (its order:
/// `sshard_column_meta_is_descending`).
#[no_mangle]
pub unsafe extern "C" fn sshard_table_meta_clustering_key(
    table: *const sshard_table_meta,
    index: usize,
    column: *mut *const sshard_column_meta,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let t = unsafe { self::table(table) }?;
        let out = out_arg(column, "column")?;
        let i = t.clustering_key[check_index(index, t.clustering_key.len())?];
        out.write(column_ptr(&t.columns[i]));
        Ok(())
    }
}

/// The column's name (borrowed).
#[no_mangle]
pub unsafe extern "C" fn sshard_column_meta_name(
    column: *const sshard_column_meta,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let c = unsafe { self::column(column) }?;
        write_str(&c.name, name, name_len)
    }
}

/// The column's type (a view valid as long as the snapshot).
#[no_mangle]
pub unsafe extern "C" fn sshard_column_meta_data_type(
    column: *const sshard_column_meta,
    data_type: *mut *const sshard_data_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let c = unsafe { self::column(column) }?;
        out_arg(data_type, "data_type")?.write(data_type_ptr(&c.ty));
        Ok(())
    }
}

/// The column's kind (`SSHARD_COLUMN_KIND_*`).
#[no_mangle]
pub unsafe extern "C" fn sshard_column_meta_kind(
    column: *const sshard_column_meta,
    kind: *mut sshard_column_kind,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let c = unsafe { self::column(column) }?;
        out_arg(kind, "kind")?.write(match c.kind {
            ColumnKind::PartitionKey => SSHARD_COLUMN_KIND_PARTITION_KEY,
            ColumnKind::Clustering => SSHARD_COLUMN_KIND_CLUSTERING,
            ColumnKind::Static => SSHARD_COLUMN_KIND_STATIC,
            ColumnKind::Regular => SSHARD_COLUMN_KIND_REGULAR,
        });
        Ok(())
    }
}

/// Whether a clustering column sorts in descending order (false for the
/// other kinds).
#[no_mangle]
pub unsafe extern "C" fn sshard_column_meta_is_descending(
    column: *const sshard_column_meta,
    descending: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let c = unsafe { self::column(column) }?;
        out_arg(descending, "descending")?.write(c.descending);
        Ok(())
    }
}

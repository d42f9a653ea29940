//! `sshard_prepared`: a statement prepared on the cluster (shared,
//! immutable, thread-safe). Bind it to get an `sshard_statement`.

use std::ffi::c_char;
use std::sync::Arc;

use super::datatype::{data_type_ptr, sshard_data_type};
use super::handle::{arc_free, box_into_raw, check_index, handle_ref, out_arg, Generational};
use super::statement::sshard_statement;
use super::status::{sshard_status, FfiResult};
use crate::runtime;
use crate::session::{Prepared, Statement};

/// A prepared statement. Shared and thread-safe; free with
/// `sshard_prepared_free`.
pub struct sshard_prepared {
    generation: u64,
    inner: Arc<Prepared>,
}

impl Generational for sshard_prepared {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl sshard_prepared {
    pub(crate) fn new(inner: Arc<Prepared>) -> Arc<sshard_prepared> {
        Arc::new(sshard_prepared {
            generation: runtime::generation(),
            inner,
        })
    }
}

/// # Safety
/// `ptr` is NULL or a live prepared statement.
unsafe fn prepared<'a>(ptr: *const sshard_prepared) -> FfiResult<&'a sshard_prepared> {
    // SAFETY: forwarded contract.
    unsafe { handle_ref(ptr, "prepared") }
}

/// Releases the caller's reference (NULL: no-op). Statements bound from it
/// keep what they need.
#[no_mangle]
pub unsafe extern "C" fn sshard_prepared_free(prepared: *const sshard_prepared) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a reference the caller gives up (API contract).
        unsafe { arc_free(prepared) }
    }
}

/// Makes a statement that executes `prepared`, with every marker unset;
/// bind values with the `sshard_statement_bind_*` functions (type-checked
/// against the markers' types). Free it with `sshard_statement_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_prepared_bind(
    prepared: *const sshard_prepared,
    statement: *mut *mut sshard_statement,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live prepared statement (API contract).
        let p = unsafe { self::prepared(prepared) }?;
        let out = out_arg(statement, "statement")?;
        out.write(box_into_raw(sshard_statement::new(Statement::bound(p.inner.clone()))));
        Ok(())
    }
}

/// The number of bind markers.
#[no_mangle]
pub unsafe extern "C" fn sshard_prepared_parameter_count(
    prepared: *const sshard_prepared,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live prepared statement (API contract).
        let p = unsafe { self::prepared(prepared) }?;
        out_arg(count, "count")?.write(p.inner.metadata.bind_columns.len());
        Ok(())
    }
}

/// The name of bind marker `index` (the column it binds, or the `:name`).
#[no_mangle]
pub unsafe extern "C" fn sshard_prepared_parameter_name(
    prepared: *const sshard_prepared,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live prepared statement (API contract).
        let p = unsafe { self::prepared(prepared) }?;
        let name = out_arg(name, "name")?;
        let name_len = out_arg(name_len, "name_len")?;
        let columns = &p.inner.metadata.bind_columns;
        let i = check_index(index, columns.len())?;
        name.write(columns[i].name.as_ptr().cast());
        name_len.write(columns[i].name.len());
        Ok(())
    }
}

/// The type of bind marker `index` (a view valid as long as the prepared
/// statement).
#[no_mangle]
pub unsafe extern "C" fn sshard_prepared_parameter_data_type(
    prepared: *const sshard_prepared,
    index: usize,
    data_type: *mut *const sshard_data_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live prepared statement (API contract).
        let p = unsafe { self::prepared(prepared) }?;
        let out = out_arg(data_type, "data_type")?;
        let columns = &p.inner.metadata.bind_columns;
        let i = check_index(index, columns.len())?;
        out.write(data_type_ptr(&columns[i].ty));
        Ok(())
    }
}

/// Whether the statement is a lightweight transaction (conditional).
#[no_mangle]
pub unsafe extern "C" fn sshard_prepared_is_lwt(
    prepared: *const sshard_prepared,
    is_lwt: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live prepared statement (API contract).
        let p = unsafe { self::prepared(prepared) }?;
        out_arg(is_lwt, "is_lwt")?.write(p.inner.is_lwt());
        Ok(())
    }
}

//! `sshard_error`: what a failed future carries: status, message and, for
//! server errors, the CQL code and its details.

use std::ffi::c_char;

use super::enums::sshard_consistency;
use super::handle::{out_arg, view_ref};
use super::status::{
    server_status, sshard_status, tls_status, Fail, FfiResult, SSHARD_STATUS_CLOSED,
    SSHARD_STATUS_CONNECTION_LOST, SSHARD_STATUS_DECODE, SSHARD_STATUS_INVALID_ARGUMENT,
    SSHARD_STATUS_NAME_NOT_FOUND, SSHARD_STATUS_NOT_PRESENT, SSHARD_STATUS_NO_HOSTS,
    SSHARD_STATUS_TIMEOUT,
};
use crate::protocol::response::ErrorDetails;
use crate::protocol::{Consistency, ErrorBody};
use crate::session::DriverError;

/// The error of a failed request (a borrowed view: it lives as long as the
/// future or completion event that holds it; never freed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct sshard_error {
    pub(crate) status: sshard_status,
    pub(crate) message: String,
    pub(crate) server: Option<Box<ErrorBody>>,
}

impl sshard_error {
    pub(crate) fn new(status: sshard_status, message: impl Into<String>) -> sshard_error {
        sshard_error {
            status,
            message: message.into(),
            server: None,
        }
    }

    pub(crate) fn closed(message: impl Into<String>) -> sshard_error {
        sshard_error::new(SSHARD_STATUS_CLOSED, message)
    }

    pub(crate) fn from_driver(error: DriverError) -> sshard_error {
        let message = error.to_string();
        match error {
            DriverError::InvalidArgument(_) => {
                sshard_error::new(SSHARD_STATUS_INVALID_ARGUMENT, message)
            }
            DriverError::NoHostAvailable(_) => sshard_error::new(SSHARD_STATUS_NO_HOSTS, message),
            DriverError::Timeout(_) => sshard_error::new(SSHARD_STATUS_TIMEOUT, message),
            DriverError::ConnectionBroken(_) => {
                sshard_error::new(SSHARD_STATUS_CONNECTION_LOST, message)
            }
            DriverError::Protocol(_) => sshard_error::new(SSHARD_STATUS_DECODE, message),
            DriverError::Closed => sshard_error::new(SSHARD_STATUS_CLOSED, message),
            DriverError::UnknownExecutionProfile(_) => {
                sshard_error::new(SSHARD_STATUS_NAME_NOT_FOUND, message)
            }
            DriverError::Tls(e) => sshard_error::new(tls_status(e.kind), message),
            DriverError::Server(body) => sshard_error {
                status: server_status(body.code),
                message: body.message.clone(),
                server: Some(Box::new(body)),
            },
        }
    }

    fn details(&self) -> &ErrorDetails {
        match &self.server {
            Some(body) => &body.details,
            None => &ErrorDetails::None,
        }
    }
}

fn absent(what: &'static str) -> Fail {
    Fail::new(
        SSHARD_STATUS_NOT_PRESENT,
        format!("the error carries no {what}"),
    )
}

/// Runs `f` on the error's details, `NOT_PRESENT` when it yields nothing.
fn detail<T>(
    error: &sshard_error,
    what: &'static str,
    f: impl FnOnce(&ErrorDetails) -> Option<T>,
) -> FfiResult<T> {
    f(error.details()).ok_or_else(|| absent(what))
}

/// The error's status (same as the failed future's).
#[no_mangle]
pub unsafe extern "C" fn sshard_error_status(
    error: *const sshard_error,
    status: *mut sshard_status,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        out_arg(status, "status")?.write(error.status);
        Ok(())
    }
}

/// The error's message (the server's text for server errors), as a borrowed
/// pointer and length valid as long as the error.
#[no_mangle]
pub unsafe extern "C" fn sshard_error_message(
    error: *const sshard_error,
    message: *mut *const c_char,
    message_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        let message = out_arg(message, "message")?;
        let message_len = out_arg(message_len, "message_len")?;
        message.write(error.message.as_ptr().cast());
        message_len.write(error.message.len());
        Ok(())
    }
}

/// The CQL error code of a server error; `NOT_PRESENT` for client errors.
#[no_mangle]
pub unsafe extern "C" fn sshard_error_server_code(
    error: *const sshard_error,
    code: *mut i32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        let code = out_arg(code, "code")?;
        let body = error.server.as_ref().ok_or_else(|| absent("server error code"))?;
        code.write(body.code);
        Ok(())
    }
}

fn consistency_of(details: &ErrorDetails) -> Option<Consistency> {
    match details {
        ErrorDetails::Unavailable { consistency, .. }
        | ErrorDetails::WriteTimeout { consistency, .. }
        | ErrorDetails::ReadTimeout { consistency, .. }
        | ErrorDetails::ReadFailure { consistency, .. }
        | ErrorDetails::WriteFailure { consistency, .. } => Some(*consistency),
        _ => None,
    }
}

/// The consistency level of an unavailable / timeout / failure error.
#[no_mangle]
pub unsafe extern "C" fn sshard_error_consistency(
    error: *const sshard_error,
    consistency: *mut sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(consistency, "consistency")?;
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        let c = detail(error, "consistency", consistency_of)?;
        out.write(c as u16);
        Ok(())
    }
}

/// Replicas that answered (timeouts and failures) or were alive
/// (unavailable).
#[no_mangle]
pub unsafe extern "C" fn sshard_error_received(
    error: *const sshard_error,
    received: *mut i32,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(received, "received")?;
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        out.write(detail(error, "received count", |d| match d {
            ErrorDetails::Unavailable { alive, .. } => Some(*alive),
            ErrorDetails::WriteTimeout { received, .. }
            | ErrorDetails::ReadTimeout { received, .. }
            | ErrorDetails::ReadFailure { received, .. }
            | ErrorDetails::WriteFailure { received, .. } => Some(*received),
            _ => None,
        })?);
        Ok(())
    }
}

/// Replicas required (unavailable) or blocked for (timeouts, failures).
#[no_mangle]
pub unsafe extern "C" fn sshard_error_required(
    error: *const sshard_error,
    required: *mut i32,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(required, "required")?;
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        out.write(detail(error, "required count", |d| match d {
            ErrorDetails::Unavailable { required, .. } => Some(*required),
            ErrorDetails::WriteTimeout { block_for, .. }
            | ErrorDetails::ReadTimeout { block_for, .. }
            | ErrorDetails::ReadFailure { block_for, .. }
            | ErrorDetails::WriteFailure { block_for, .. } => Some(*block_for),
            _ => None,
        })?);
        Ok(())
    }
}

/// Replicas that failed (read/write failures).
#[no_mangle]
pub unsafe extern "C" fn sshard_error_num_failures(
    error: *const sshard_error,
    failures: *mut i32,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(failures, "failures")?;
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        out.write(detail(error, "failure count", |d| match d {
            ErrorDetails::ReadFailure { num_failures, .. }
            | ErrorDetails::WriteFailure { num_failures, .. } => Some(*num_failures),
            _ => None,
        })?);
        Ok(())
    }
}

/// Whether the data was present (read timeouts and failures).
#[no_mangle]
pub unsafe extern "C" fn sshard_error_data_present(
    error: *const sshard_error,
    data_present: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(data_present, "data_present")?;
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        out.write(detail(error, "data-present flag", |d| match d {
            ErrorDetails::ReadTimeout { data_present, .. }
            | ErrorDetails::ReadFailure { data_present, .. } => Some(*data_present),
            _ => None,
        })?);
        Ok(())
    }
}

fn string_detail(
    error: &sshard_error,
    what: &'static str,
    ptr: *mut *const c_char,
    len: *mut usize,
    pick: impl FnOnce(&ErrorDetails) -> Option<&String>,
) -> FfiResult {
    let ptr = out_arg(ptr, "string")?;
    let len = out_arg(len, "string_len")?;
    let s = pick(error.details()).ok_or_else(|| absent(what))?;
    ptr.write(s.as_ptr().cast());
    len.write(s.len());
    Ok(())
}

/// The write type of a write timeout or failure (`SIMPLE`, `BATCH`, ...).
#[no_mangle]
pub unsafe extern "C" fn sshard_error_write_type(
    error: *const sshard_error,
    write_type: *mut *const c_char,
    write_type_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        string_detail(error, "write type", write_type, write_type_len, |d| match d {
            ErrorDetails::WriteTimeout { write_type, .. }
            | ErrorDetails::WriteFailure { write_type, .. } => Some(write_type),
            _ => None,
        })
    }
}

/// The keyspace of an ALREADY_EXISTS or FUNCTION_FAILURE error.
#[no_mangle]
pub unsafe extern "C" fn sshard_error_keyspace(
    error: *const sshard_error,
    keyspace: *mut *const c_char,
    keyspace_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        string_detail(error, "keyspace", keyspace, keyspace_len, |d| match d {
            ErrorDetails::AlreadyExists { keyspace, .. }
            | ErrorDetails::FunctionFailure { keyspace, .. } => Some(keyspace),
            _ => None,
        })
    }
}

/// The table of an ALREADY_EXISTS error (empty when a keyspace exists).
#[no_mangle]
pub unsafe extern "C" fn sshard_error_table(
    error: *const sshard_error,
    table: *mut *const c_char,
    table_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        string_detail(error, "table", table, table_len, |d| match d {
            ErrorDetails::AlreadyExists { table, .. } => Some(table),
            _ => None,
        })
    }
}

/// The function of a FUNCTION_FAILURE error.
#[no_mangle]
pub unsafe extern "C" fn sshard_error_function(
    error: *const sshard_error,
    function: *mut *const c_char,
    function_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `error` is NULL or a live error view (API contract).
        let error = unsafe { view_ref(error, "error") }?;
        string_detail(error, "function", function, function_len, |d| match d {
            ErrorDetails::FunctionFailure { function, .. } => Some(function),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;
    use crate::protocol::response::error_code;
    use std::ptr::{null, null_mut};

    #[test]
    fn driver_errors_map_to_statuses() {
        use std::time::Duration;
        let cases = [
            (DriverError::NoHostAvailable(vec![]), SSHARD_STATUS_NO_HOSTS),
            (
                DriverError::Timeout(Duration::from_secs(1)),
                SSHARD_STATUS_TIMEOUT,
            ),
            (
                DriverError::ConnectionBroken("x".into()),
                SSHARD_STATUS_CONNECTION_LOST,
            ),
            (DriverError::Protocol("x".into()), SSHARD_STATUS_DECODE),
            (DriverError::Closed, SSHARD_STATUS_CLOSED),
            (
                DriverError::InvalidArgument("x".into()),
                SSHARD_STATUS_INVALID_ARGUMENT,
            ),
            (
                DriverError::UnknownExecutionProfile("x".into()),
                SSHARD_STATUS_NAME_NOT_FOUND,
            ),
            (
                DriverError::Server(ErrorBody::new(error_code::SYNTAX_ERROR, "bad")),
                SSHARD_STATUS_SERVER_SYNTAX_ERROR,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(sshard_error::from_driver(error).status, status);
        }
    }

    #[test]
    fn accessors_report_details_and_absence() {
        let e = sshard_error::from_driver(DriverError::Server(ErrorBody {
            code: error_code::WRITE_TIMEOUT,
            message: "timed out".into(),
            details: ErrorDetails::WriteTimeout {
                consistency: Consistency::Quorum,
                received: 1,
                block_for: 2,
                write_type: "SIMPLE".into(),
            },
        }));
        // SAFETY: `e` outlives every call; out pointers are valid locals.
        unsafe {
            let mut s = 0;
            assert_eq!(sshard_error_status(&e, &mut s), 0);
            assert_eq!(s, SSHARD_STATUS_SERVER_WRITE_TIMEOUT);
            let (mut p, mut n) = (null(), 0);
            assert_eq!(sshard_error_message(&e, &mut p, &mut n), 0);
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), n), b"timed out");
            let mut code = 0;
            assert_eq!(sshard_error_server_code(&e, &mut code), 0);
            assert_eq!(code, error_code::WRITE_TIMEOUT);
            let mut c = 0;
            assert_eq!(sshard_error_consistency(&e, &mut c), 0);
            assert_eq!(c, 4);
            let mut v = 0;
            assert_eq!(sshard_error_received(&e, &mut v), 0);
            assert_eq!(v, 1);
            assert_eq!(sshard_error_required(&e, &mut v), 0);
            assert_eq!(v, 2);
            assert_eq!(
                sshard_error_num_failures(&e, &mut v),
                SSHARD_STATUS_NOT_PRESENT
            );
            assert_eq!(sshard_error_write_type(&e, &mut p, &mut n), 0);
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), n), b"SIMPLE");
            assert_eq!(
                sshard_error_table(&e, &mut p, &mut n),
                SSHARD_STATUS_NOT_PRESENT
            );
            let mut b = false;
            assert_eq!(
                sshard_error_data_present(&e, &mut b),
                SSHARD_STATUS_NOT_PRESENT
            );
            let client = sshard_error::new(SSHARD_STATUS_TIMEOUT, "slow");
            assert_eq!(
                sshard_error_server_code(&client, &mut code),
                SSHARD_STATUS_NOT_PRESENT
            );
            assert_eq!(
                sshard_error_keyspace(&client, &mut p, &mut n),
                SSHARD_STATUS_NOT_PRESENT
            );
            assert_eq!(
                sshard_error_function(&client, &mut p, &mut n),
                SSHARD_STATUS_NOT_PRESENT
            );
        }
    }

    #[test]
    fn null_arguments_are_refused() {
        let e = sshard_error::new(SSHARD_STATUS_TIMEOUT, "slow");
        // SAFETY: NULL or valid pointers only.
        unsafe {
            let mut s = 0;
            let (mut p, mut n) = (null(), 0);
            assert_eq!(
                sshard_error_status(null(), &mut s),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_error_status(&e, null_mut()),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_error_message(null(), &mut p, &mut n),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_error_message(&e, null_mut(), &mut n),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_error_message(&e, &mut p, null_mut()),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            let mut i = 0;
            assert_eq!(
                sshard_error_server_code(null(), &mut i),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_error_received(null(), &mut i),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_error_received(&e, null_mut()),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_error_required(null(), &mut i),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_error_num_failures(null(), &mut i),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            let mut c = 0;
            assert_eq!(
                sshard_error_consistency(null(), &mut c),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            let mut b = false;
            assert_eq!(
                sshard_error_data_present(null(), &mut b),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            for f in [
                sshard_error_write_type,
                sshard_error_keyspace,
                sshard_error_table,
                sshard_error_function,
            ] {
                assert_eq!(f(null(), &mut p, &mut n), SSHARD_STATUS_NULL_ARGUMENT);
                assert_eq!(f(&e, null_mut(), &mut n), SSHARD_STATUS_NULL_ARGUMENT);
                assert_eq!(f(&e, &mut p, null_mut()), SSHARD_STATUS_NULL_ARGUMENT);
            }
        }
    }
}

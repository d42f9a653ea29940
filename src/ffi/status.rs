//! `sshard_status`: the one integer every call returns, the panic boundary,
//! and the thread-local message of the last failed call.
//!
//! Numbers are stable and never reused. Ranges:
//! * `0`: OK;
//! * `1..=99`: API misuse and library state (NULL argument, bad UTF-8, wrong
//!   type, wrong state, index out of range, forked, panic...);
//! * `100..=199`: client-side failures (no hosts, timeout, connection lost,
//!   decode error, closed...);
//! * `SSHARD_STATUS_SERVER_BASE + code` (`0x10000 + code`): the server
//!   answered with the CQL error `code`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use super::handle::out_arg;
use crate::connection::TlsErrorKind;
use crate::protocol::response::error_code;
use crate::runtime;

/// Result code of every call: 0 (`SSHARD_STATUS_OK`) on success.
pub type sshard_status = i32;

/// Success.
pub const SSHARD_STATUS_OK: sshard_status = 0;
/// A required pointer argument was NULL.
pub const SSHARD_STATUS_NULL_ARGUMENT: sshard_status = 1;
/// A string argument was not valid UTF-8.
pub const SSHARD_STATUS_INVALID_UTF8: sshard_status = 2;
/// An argument was out of its domain (unknown enum value, bad range...).
pub const SSHARD_STATUS_INVALID_ARGUMENT: sshard_status = 3;
/// The value's type does not match the column, marker or getter.
pub const SSHARD_STATUS_TYPE_MISMATCH: sshard_status = 4;
/// The object is not in a state that allows the call.
pub const SSHARD_STATUS_WRONG_STATE: sshard_status = 5;
/// An index past the end (row, column, value, element).
pub const SSHARD_STATUS_INDEX_OUT_OF_RANGE: sshard_status = 6;
/// No column, marker or field has that name.
pub const SSHARD_STATUS_NAME_NOT_FOUND: sshard_status = 7;
/// A blocking call was made on a library runtime thread (e.g. from a
/// completion callback); it would deadlock, so it was refused.
pub const SSHARD_STATUS_WOULD_DEADLOCK: sshard_status = 8;
/// The object was made before a `fork()`; build a new one in the child.
pub const SSHARD_STATUS_FORKED: sshard_status = 9;
/// The library panicked (a bug); the call had no effect or an unknown one.
pub const SSHARD_STATUS_PANIC: sshard_status = 10;
/// The value is NULL (typed getters).
pub const SSHARD_STATUS_NULL_VALUE: sshard_status = 11;
/// The future has not completed (yet, or within the timeout).
pub const SSHARD_STATUS_PENDING: sshard_status = 12;
/// The optional item asked for is absent (e.g. an error detail the error
/// does not carry, an empty log buffer).
pub const SSHARD_STATUS_NOT_PRESENT: sshard_status = 13;
/// The operation is not supported by this build or object.
pub const SSHARD_STATUS_UNSUPPORTED: sshard_status = 14;
/// A certificate given to `sshard_ssl_*` does not parse (or none is
/// trusted while verification is on).
pub const SSHARD_STATUS_SSL_INVALID_CERT: sshard_status = 15;
/// A private key given to `sshard_ssl_*` does not parse, is encrypted, or
/// does not match the certificate.
pub const SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY: sshard_status = 16;

/// No node could be reached.
pub const SSHARD_STATUS_NO_HOSTS: sshard_status = 100;
/// The request did not complete within its timeout.
pub const SSHARD_STATUS_TIMEOUT: sshard_status = 101;
/// The connection carrying the request broke; it may or may not have run.
pub const SSHARD_STATUS_CONNECTION_LOST: sshard_status = 102;
/// A response or value that does not decode (protocol violation).
pub const SSHARD_STATUS_DECODE: sshard_status = 103;
/// The session is closed or closing, or was freed with the request in flight.
pub const SSHARD_STATUS_CLOSED: sshard_status = 104;
/// The internal runtime (threads) could not be started.
pub const SSHARD_STATUS_RUNTIME: sshard_status = 105;
/// An internal error that fits no other status.
pub const SSHARD_STATUS_INTERNAL: sshard_status = 106;
/// The server's TLS certificate is not trusted (unknown CA, expired, not
/// yet valid, bad signature...).
pub const SSHARD_STATUS_SSL_INVALID_PEER_CERT: sshard_status = 107;
/// The server's TLS certificate is valid but names another host.
pub const SSHARD_STATUS_SSL_IDENTITY_MISMATCH: sshard_status = 108;
/// The TLS handshake failed otherwise (not a TLS server, no common
/// version, a client certificate required and refused...).
pub const SSHARD_STATUS_SSL_PROTOCOL_ERROR: sshard_status = 109;

/// Server errors are this base plus the CQL error code.
pub const SSHARD_STATUS_SERVER_BASE: sshard_status = 0x10000;
pub const SSHARD_STATUS_SERVER_SERVER_ERROR: sshard_status = 0x10000;
pub const SSHARD_STATUS_SERVER_PROTOCOL_ERROR: sshard_status = 0x1000A;
pub const SSHARD_STATUS_SERVER_BAD_CREDENTIALS: sshard_status = 0x10100;
pub const SSHARD_STATUS_SERVER_UNAVAILABLE: sshard_status = 0x11000;
pub const SSHARD_STATUS_SERVER_OVERLOADED: sshard_status = 0x11001;
pub const SSHARD_STATUS_SERVER_IS_BOOTSTRAPPING: sshard_status = 0x11002;
pub const SSHARD_STATUS_SERVER_TRUNCATE_ERROR: sshard_status = 0x11003;
pub const SSHARD_STATUS_SERVER_WRITE_TIMEOUT: sshard_status = 0x11100;
pub const SSHARD_STATUS_SERVER_READ_TIMEOUT: sshard_status = 0x11200;
pub const SSHARD_STATUS_SERVER_READ_FAILURE: sshard_status = 0x11300;
pub const SSHARD_STATUS_SERVER_FUNCTION_FAILURE: sshard_status = 0x11400;
pub const SSHARD_STATUS_SERVER_WRITE_FAILURE: sshard_status = 0x11500;
pub const SSHARD_STATUS_SERVER_SYNTAX_ERROR: sshard_status = 0x12000;
pub const SSHARD_STATUS_SERVER_UNAUTHORIZED: sshard_status = 0x12100;
pub const SSHARD_STATUS_SERVER_INVALID: sshard_status = 0x12200;
pub const SSHARD_STATUS_SERVER_CONFIG_ERROR: sshard_status = 0x12300;
pub const SSHARD_STATUS_SERVER_ALREADY_EXISTS: sshard_status = 0x12400;
pub const SSHARD_STATUS_SERVER_UNPREPARED: sshard_status = 0x12500;
pub const SSHARD_STATUS_SERVER_RATE_LIMIT_REACHED: sshard_status = 0x1F000;
/// Last server status: `SSHARD_STATUS_SERVER_BASE + 0xFFFF`.
pub const SSHARD_STATUS_SERVER_LAST: sshard_status = 0x1FFFF;

/// The status of a TLS failure.
pub(crate) fn tls_status(kind: TlsErrorKind) -> sshard_status {
    match kind {
        TlsErrorKind::InvalidCert => SSHARD_STATUS_SSL_INVALID_CERT,
        TlsErrorKind::InvalidPrivateKey => SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY,
        TlsErrorKind::InvalidPeerCert => SSHARD_STATUS_SSL_INVALID_PEER_CERT,
        TlsErrorKind::IdentityMismatch => SSHARD_STATUS_SSL_IDENTITY_MISMATCH,
        TlsErrorKind::Protocol => SSHARD_STATUS_SSL_PROTOCOL_ERROR,
    }
}

/// The status of a server error with CQL error `code`.
pub(crate) fn server_status(code: i32) -> sshard_status {
    if (0..=0xFFFF).contains(&code) {
        SSHARD_STATUS_SERVER_BASE + code
    } else {
        SSHARD_STATUS_SERVER_SERVER_ERROR
    }
}

/// The static, NUL-terminated name of a status.
pub(crate) fn status_name(status: sshard_status) -> &'static str {
    match status {
        SSHARD_STATUS_OK => "OK\0",
        SSHARD_STATUS_NULL_ARGUMENT => "NULL_ARGUMENT\0",
        SSHARD_STATUS_INVALID_UTF8 => "INVALID_UTF8\0",
        SSHARD_STATUS_INVALID_ARGUMENT => "INVALID_ARGUMENT\0",
        SSHARD_STATUS_TYPE_MISMATCH => "TYPE_MISMATCH\0",
        SSHARD_STATUS_WRONG_STATE => "WRONG_STATE\0",
        SSHARD_STATUS_INDEX_OUT_OF_RANGE => "INDEX_OUT_OF_RANGE\0",
        SSHARD_STATUS_NAME_NOT_FOUND => "NAME_NOT_FOUND\0",
        SSHARD_STATUS_WOULD_DEADLOCK => "WOULD_DEADLOCK\0",
        SSHARD_STATUS_FORKED => "FORKED\0",
        SSHARD_STATUS_PANIC => "PANIC\0",
        SSHARD_STATUS_NULL_VALUE => "NULL_VALUE\0",
        SSHARD_STATUS_PENDING => "PENDING\0",
        SSHARD_STATUS_NOT_PRESENT => "NOT_PRESENT\0",
        SSHARD_STATUS_UNSUPPORTED => "UNSUPPORTED\0",
        SSHARD_STATUS_SSL_INVALID_CERT => "SSL_INVALID_CERT\0",
        SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY => "SSL_INVALID_PRIVATE_KEY\0",
        SSHARD_STATUS_NO_HOSTS => "NO_HOSTS\0",
        SSHARD_STATUS_TIMEOUT => "TIMEOUT\0",
        SSHARD_STATUS_CONNECTION_LOST => "CONNECTION_LOST\0",
        SSHARD_STATUS_DECODE => "DECODE\0",
        SSHARD_STATUS_CLOSED => "CLOSED\0",
        SSHARD_STATUS_RUNTIME => "RUNTIME\0",
        SSHARD_STATUS_INTERNAL => "INTERNAL\0",
        SSHARD_STATUS_SSL_INVALID_PEER_CERT => "SSL_INVALID_PEER_CERT\0",
        SSHARD_STATUS_SSL_IDENTITY_MISMATCH => "SSL_IDENTITY_MISMATCH\0",
        SSHARD_STATUS_SSL_PROTOCOL_ERROR => "SSL_PROTOCOL_ERROR\0",
        s if (SSHARD_STATUS_SERVER_BASE..=SSHARD_STATUS_SERVER_LAST).contains(&s) => {
            match s - SSHARD_STATUS_SERVER_BASE {
                error_code::SERVER_ERROR => "SERVER_SERVER_ERROR\0",
                error_code::PROTOCOL_ERROR => "SERVER_PROTOCOL_ERROR\0",
                error_code::BAD_CREDENTIALS => "SERVER_BAD_CREDENTIALS\0",
                error_code::UNAVAILABLE => "SERVER_UNAVAILABLE\0",
                error_code::OVERLOADED => "SERVER_OVERLOADED\0",
                error_code::IS_BOOTSTRAPPING => "SERVER_IS_BOOTSTRAPPING\0",
                error_code::TRUNCATE_ERROR => "SERVER_TRUNCATE_ERROR\0",
                error_code::WRITE_TIMEOUT => "SERVER_WRITE_TIMEOUT\0",
                error_code::READ_TIMEOUT => "SERVER_READ_TIMEOUT\0",
                error_code::READ_FAILURE => "SERVER_READ_FAILURE\0",
                error_code::FUNCTION_FAILURE => "SERVER_FUNCTION_FAILURE\0",
                error_code::WRITE_FAILURE => "SERVER_WRITE_FAILURE\0",
                error_code::SYNTAX_ERROR => "SERVER_SYNTAX_ERROR\0",
                error_code::UNAUTHORIZED => "SERVER_UNAUTHORIZED\0",
                error_code::INVALID => "SERVER_INVALID\0",
                error_code::CONFIG_ERROR => "SERVER_CONFIG_ERROR\0",
                error_code::ALREADY_EXISTS => "SERVER_ALREADY_EXISTS\0",
                error_code::UNPREPARED => "SERVER_UNPREPARED\0",
                error_code::RATE_LIMIT_REACHED => "SERVER_RATE_LIMIT_REACHED\0",
                _ => "SERVER_UNKNOWN\0",
            }
        }
        _ => "UNKNOWN\0",
    }
}

/// The name of a status (`"OK"`, `"NULL_ARGUMENT"`, `"SERVER_SYNTAX_ERROR"`,
/// ...) as a static NUL-terminated string; `"UNKNOWN"` for numbers this
/// version does not know. Never NULL.
#[no_mangle]
pub extern "C" fn sshard_status_str(status: sshard_status) -> *const c_char {
    status_name(status).as_ptr().cast()
}

/// A failed call: its status and a message for `sshard_last_error_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    pub status: sshard_status,
    pub message: Cow<'static, str>,
}

impl Fail {
    pub(crate) fn new(status: sshard_status, message: impl Into<Cow<'static, str>>) -> Fail {
        Fail {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &'static str) -> Fail {
        Fail::new(
            SSHARD_STATUS_NULL_ARGUMENT,
            format!("argument `{what}` is NULL"),
        )
    }

    pub(crate) fn invalid(message: impl Into<Cow<'static, str>>) -> Fail {
        Fail::new(SSHARD_STATUS_INVALID_ARGUMENT, message)
    }

    pub(crate) fn mismatch(message: impl Into<Cow<'static, str>>) -> Fail {
        Fail::new(SSHARD_STATUS_TYPE_MISMATCH, message)
    }

    pub(crate) fn state(message: impl Into<Cow<'static, str>>) -> Fail {
        Fail::new(SSHARD_STATUS_WRONG_STATE, message)
    }

    pub(crate) fn index(index: usize, len: usize) -> Fail {
        Fail::new(
            SSHARD_STATUS_INDEX_OUT_OF_RANGE,
            format!("index {index} out of range (length {len})"),
        )
    }

    pub(crate) fn forked() -> Fail {
        Fail::new(
            SSHARD_STATUS_FORKED,
            "the object was made before fork(); make a new one in this process",
        )
    }
}

impl From<crate::protocol::BindError> for Fail {
    fn from(e: crate::protocol::BindError) -> Fail {
        use crate::protocol::BindError as E;
        let status = match &e {
            E::TypeMismatch(_) => SSHARD_STATUS_TYPE_MISMATCH,
            E::Invalid(_) => SSHARD_STATUS_INVALID_ARGUMENT,
            E::NoSuchName(_) => SSHARD_STATUS_NAME_NOT_FOUND,
            E::IndexOutOfRange { .. } => SSHARD_STATUS_INDEX_OUT_OF_RANGE,
        };
        Fail::new(status, e.to_string())
    }
}

/// What the body of an exported function returns.
pub(crate) type FfiResult<T = ()> = Result<T, Fail>;

thread_local! {
    /// Message of the last failed call on this thread, NUL-terminated.
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Exported calls running on this thread (they may nest: a callback
    /// run inline calls back into the library).
    static IN_LIBRARY: Cell<u32> = const { Cell::new(0) };
}

static PANIC_HOOK: Once = Once::new();

/// Wraps the process's panic hook once: a panic inside the library (in an
/// exported call, or on one of its runtime threads) goes to the library's
/// log and becomes a PANIC status, instead of a message and backtrace on
/// the host's stderr. Every other panic still goes to the hook the host
/// had (or sets later, which then takes over entirely).
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let host_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = IN_LIBRARY.try_with(Cell::get).unwrap_or(0) > 0 || runtime::on_runtime_thread();
            if ours {
                tracing::dispatcher::with_default(&super::log::dispatch(), || {
                    tracing::error!(target: "scylla_shard::panic", "internal panic (a bug): {info}");
                });
            } else {
                host_hook(info);
            }
        }));
    });
}

/// Counts the calling thread as inside the library while alive.
struct InLibrary;

impl InLibrary {
    fn enter() -> InLibrary {
        let _ = IN_LIBRARY.try_with(|n| n.set(n.get() + 1));
        InLibrary
    }
}

impl Drop for InLibrary {
    fn drop(&mut self) {
        let _ = IN_LIBRARY.try_with(|n| n.set(n.get().saturating_sub(1)));
    }
}

pub(crate) fn set_last_error(message: &str) {
    // `try_with`: a call made while the thread is being torn down must not
    // panic because the thread-local is already gone.
    let _ = LAST_ERROR.try_with(|cell| {
        if let Ok(mut buf) = cell.try_borrow_mut() {
            buf.clear();
            buf.extend(message.bytes().filter(|b| *b != 0));
            buf.push(0);
        }
    });
}

/// Runs the body of an exported function: converts its result to a status,
/// records the message of a failure, and turns a panic into
/// `SSHARD_STATUS_PANIC` so no unwind crosses the C boundary.
pub(crate) fn run(body: impl FnOnce() -> FfiResult) -> sshard_status {
    install_panic_hook();
    let inside = InLibrary::enter();
    let outcome = catch_unwind(AssertUnwindSafe(body));
    drop(inside);
    match outcome {
        Ok(Ok(())) => SSHARD_STATUS_OK,
        Ok(Err(fail)) => {
            set_last_error(&fail.message);
            fail.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            // Dropping the payload could itself panic; leak it instead.
            std::mem::forget(payload);
            set_last_error(&format!("internal panic: {what}"));
            SSHARD_STATUS_PANIC
        }
    }
}

/// The message of the last call that failed on the calling thread, as a
/// pointer and length (also NUL-terminated). Valid until the next failing
/// call on this thread. Empty when no call failed yet.
#[no_mangle]
pub unsafe extern "C" fn sshard_last_error_message(
    message: *mut *const c_char,
    message_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        let message = out_arg(message, "message")?;
        let message_len = out_arg(message_len, "message_len")?;
        let (ptr, len) = LAST_ERROR.with(|cell| {
            let mut buf = cell.borrow_mut();
            if buf.is_empty() {
                buf.push(0);
            }
            (buf.as_ptr(), buf.len() - 1)
        });
        message.write(ptr.cast());
        message_len.write(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn name(s: sshard_status) -> String {
        // SAFETY: sshard_status_str returns a static NUL-terminated string.
        unsafe { CStr::from_ptr(sshard_status_str(s)) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn every_status_has_a_name() {
        assert_eq!(name(SSHARD_STATUS_OK), "OK");
        assert_eq!(name(SSHARD_STATUS_FORKED), "FORKED");
        assert_eq!(name(SSHARD_STATUS_CLOSED), "CLOSED");
        assert_eq!(
            name(SSHARD_STATUS_SERVER_SYNTAX_ERROR),
            "SERVER_SYNTAX_ERROR"
        );
        assert_eq!(name(SSHARD_STATUS_SERVER_BASE + 0x1234), "SERVER_UNKNOWN");
        assert_eq!(name(-1), "UNKNOWN");
        assert_eq!(name(99), "UNKNOWN");
        for s in (0..=14).chain(100..=106) {
            assert_ne!(name(s), "UNKNOWN", "status {s}");
        }
        assert_eq!(
            server_status(error_code::INVALID),
            SSHARD_STATUS_SERVER_INVALID
        );
        assert_eq!(server_status(-5), SSHARD_STATUS_SERVER_SERVER_ERROR);
    }

    #[test]
    fn panics_are_contained_and_reported() {
        let status = run(|| panic!("boom"));
        assert_eq!(status, SSHARD_STATUS_PANIC);
        let mut p = std::ptr::null();
        let mut n = 0;
        // SAFETY: both out pointers are valid locals.
        let s = unsafe { sshard_last_error_message(&mut p, &mut n) };
        assert_eq!(s, SSHARD_STATUS_OK);
        // SAFETY: the message stays valid until the next failing call here.
        let text = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) };
        assert_eq!(text, b"internal panic: boom");
        let status = run(|| panic!("{}", String::from("formatted")));
        assert_eq!(status, SSHARD_STATUS_PANIC);
    }

    /// Runs in a child process (the panic hook is process-wide): the child
    /// sets a host hook, then a library panic must reach the library's log
    /// and not stderr, while a host panic still reaches the host's hook.
    #[test]
    fn library_panics_go_to_the_library_log_and_host_panics_to_the_host_hook() {
        const TEST: &str = "ffi::status::tests::library_panics_go_to_the_library_log_and_host_panics_to_the_host_hook";
        if std::env::var_os("SSHARD_PANIC_CHILD").is_some() {
            return panic_child();
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env("SSHARD_PANIC_CHILD", "1")
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
        assert!(
            stdout.contains("logged: scylla_shard::panic: internal panic (a bug)"),
            "{stdout}"
        );
        assert!(stdout.contains("library boom"), "{stdout}");
        assert!(
            !stderr.contains("library boom"),
            "library panic on stderr: {stderr}"
        );
        assert!(!stderr.contains("stack backtrace"), "{stderr}");
        assert!(stderr.contains("host hook saw: host boom"), "{stderr}");
    }

    fn panic_child() {
        std::panic::set_hook(Box::new(|info| {
            let what = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or("?");
            eprintln!("host hook saw: {what}");
        }));
        assert_eq!(
            crate::ffi::log::sshard_log_set_level(crate::ffi::enums::SSHARD_LOG_LEVEL_ERROR),
            0
        );
        assert_eq!(crate::ffi::log::sshard_log_set_buffer(16), 0);
        assert_eq!(run(|| panic!("library boom")), SSHARD_STATUS_PANIC);
        let mut buf = [0u8; 512];
        let mut len = 0;
        // SAFETY: valid buffer and out pointer.
        let polled = unsafe {
            crate::ffi::log::sshard_log_poll(
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut len,
            )
        };
        assert_eq!(polled, SSHARD_STATUS_OK);
        println!(
            "logged: {}",
            String::from_utf8_lossy(&buf[..len.min(buf.len())])
        );
        assert!(std::panic::catch_unwind(|| panic!("host boom")).is_err());
    }

    #[test]
    fn failures_set_the_last_error() {
        let s = run(|| Err(Fail::invalid("bad thing")));
        assert_eq!(s, SSHARD_STATUS_INVALID_ARGUMENT);
        let mut p = std::ptr::null();
        let mut n = 0;
        // SAFETY: valid out pointers.
        unsafe {
            assert_eq!(sshard_last_error_message(&mut p, &mut n), 0);
            assert_eq!(CStr::from_ptr(p).to_str().unwrap(), "bad thing");
            assert_eq!(n, 9);
            assert_eq!(
                sshard_last_error_message(std::ptr::null_mut(), &mut n),
                SSHARD_STATUS_NULL_ARGUMENT
            );
        }
    }
}

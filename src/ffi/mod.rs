//! The C ABI of `libscylla_shard`: every `extern "C"` function and type of
//! `include/scylla_shard.h` (generated from this module by cbindgen).
//!
//! Conventions (DESIGN.md, "C API conventions"):
//! * prefix `sshard_` on every symbol and type, `SSHARD_<GROUP>_<NAME>` on
//!   constants; strings cross as pointer + length, no NUL needed;
//! * opaque handles: caller-owned builders (`sshard_config`,
//!   `sshard_statement`, `sshard_batch`, `sshard_builder`), shared
//!   thread-safe objects (`sshard_session`, `sshard_prepared`,
//!   `sshard_result`, `sshard_future`, `sshard_queue`), borrowed views
//!   (`sshard_row`, `sshard_value`, `sshard_data_type`, `sshard_error`)
//!   that live as long as their parent; every `_free` accepts NULL;
//! * every call returns an `sshard_status` (0 = OK) and records a message
//!   for `sshard_last_error_message` when it fails;
//! * no panic crosses the boundary: each body runs in [`ffi_boundary!`];
//! * objects made before a `fork()` answer `SSHARD_STATUS_FORKED` in the
//!   child (see `crate::runtime`).
//!
//! Pointer arguments follow the C contract: a handle argument is NULL or a
//! live handle of that type, a `(pointer, length)` pair is readable memory,
//! an out pointer is NULL or writable. NULLs are detected and refused; the
//! rest is the caller's promise, which is why the functions are `unsafe`.
#![allow(non_camel_case_types)]
// Every exported function has the same safety contract, stated above (the
// C API's pointer rules), rather than a `# Safety` section each.
#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

/// Runs the body of an exported function inside the panic boundary: the
/// body evaluates to `FfiResult`, the function returns its `sshard_status`.
/// Placed inside the function so cbindgen sees a plain signature.
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        $crate::ffi::status::run(move || -> $crate::ffi::status::FfiResult { $($body)* })
    };
}

// In the order a reader meets them: cbindgen writes the header in this
// order (library version and statuses, config, session, statements and
// their binding, prepared statements, futures and queues, results and
// values, builders, data types, errors, logging, metrics).
pub mod version;
pub mod status;
pub mod config;
pub mod hosts;
pub mod ssl;
pub mod session;
pub mod statement;
pub mod bind;
pub mod prepared;
pub mod future;
pub mod queue;
pub mod result;
pub mod view;
mod cells;
pub mod value;
pub mod datatype;
pub mod schema;
pub mod error;
pub mod log;
pub mod metrics;
pub mod profile;
pub mod speculation;
pub mod enums;
mod handle;

#[cfg(test)]
mod tests;

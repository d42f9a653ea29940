//! Handles and arguments: how C pointers become Rust references.
//!
//! Three kinds of handles (the C API conventions):
//! * **boxed builders** (`sshard_config`, `sshard_statement`, `sshard_batch`,
//!   `sshard_builder`): `Box::into_raw`, one owner, not thread-safe;
//! * **shared objects** (`sshard_session`, `sshard_prepared`,
//!   `sshard_result`, `sshard_future`, `sshard_queue`): `Arc::into_raw`; a
//!   pointer handed out is one strong reference, released by its `_free`;
//! * **borrowed views** (values, rows, data types, errors): plain `&T` cast to
//!   a pointer, valid as long as their parent; never freed.
//!
//! Every handle records the process generation it was made in
//! ([`crate::runtime::generation`]); after a `fork()` the old ones answer
//! `SSHARD_STATUS_FORKED` and their `_free` leaks them instead of dropping.
//!
//! The functions here are `unsafe`: their caller (an exported function)
//! passes pointers it got from C, and the C API contract is that a handle
//! pointer is NULL or a live handle of the right type, and that a
//! `(pointer, length)` pair describes readable memory.

use std::ffi::c_char;
use std::ptr::NonNull;
use std::sync::Arc;

use super::status::{Fail, FfiResult, SSHARD_STATUS_INVALID_UTF8};
use crate::protocol::frame::MAX_BODY_LEN;
use crate::runtime;

/// An object that knows the process generation it was made in.
pub(crate) trait Generational {
    fn generation(&self) -> u64;

    fn check_generation(&self) -> FfiResult {
        if runtime::is_stale(self.generation()) {
            Err(Fail::forked())
        } else {
            Ok(())
        }
    }
}

/// A caller-provided out pointer, checked for NULL before any work is done,
/// so a failed call never leaks what it would have returned.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Stores `value` (without reading or dropping the old content).
    pub(crate) fn write(self, value: T) {
        // SAFETY: `out_arg` checked the pointer is non-NULL; the C caller
        // promises it points to writable storage for a `T`.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Checks an out pointer.
pub(crate) fn out_arg<T>(ptr: *mut T, what: &'static str) -> FfiResult<Out<T>> {
    NonNull::new(ptr).map(Out).ok_or_else(|| Fail::null(what))
}

/// Stores into an optional out pointer (NULL: not wanted).
pub(crate) fn write_opt<T>(ptr: *mut T, value: T) {
    if let Some(out) = NonNull::new(ptr) {
        Out(out).write(value);
    }
}

/// A `(pointer, length)` byte string. NULL is accepted only with length 0.
/// Longer than a frame body can be (256 MiB): refused before anything is
/// copied, since no request could carry it.
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` readable bytes that stay valid and
/// unchanged for `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    what: &'static str,
) -> FfiResult<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Fail::null(what));
    }
    if len > MAX_BODY_LEN {
        return Err(Fail::invalid(format!(
            "argument `{what}` has {len} bytes: a request carries at most {MAX_BODY_LEN}"
        )));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An array argument of `count` elements (NULL only with `count` 0).
///
/// # Safety
/// Unless NULL, `ptr` must point to `count` readable elements that stay
/// valid and unchanged for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    count: usize,
    what: &'static str,
) -> FfiResult<&'a [T]> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees `count` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// An array the call writes `count` elements to (NULL only with `count` 0).
///
/// # Safety
/// Unless NULL, `ptr` must point to `count` writable elements, not aliased
/// by any other argument, for `'a`.
pub(crate) unsafe fn slice_out<'a, T>(
    ptr: *mut T,
    count: usize,
    what: &'static str,
) -> FfiResult<&'a mut [T]> {
    if count == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees `count` writable elements.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, count) })
}

/// A `(pointer, length)` UTF-8 string (no NUL needed).
///
/// # Safety
/// As [`bytes_arg`].
pub(crate) unsafe fn str_arg<'a>(
    ptr: *const c_char,
    len: usize,
    what: &'static str,
) -> FfiResult<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { bytes_arg(ptr.cast(), len, what) }?;
    std::str::from_utf8(bytes).map_err(|e| {
        Fail::new(
            SSHARD_STATUS_INVALID_UTF8,
            format!("argument `{what}` is not valid UTF-8: {e}"),
        )
    })
}

/// A fixed-size array argument (uuid, inet...).
///
/// # Safety
/// Unless NULL, `ptr` must point to `N` readable bytes.
pub(crate) unsafe fn array_arg<const N: usize>(
    ptr: *const u8,
    what: &'static str,
) -> FfiResult<[u8; N]> {
    if ptr.is_null() {
        return Err(Fail::null(what));
    }
    let mut out = [0u8; N];
    // SAFETY: non-NULL and `N` readable bytes by the caller's contract; the
    // destination is a local array that cannot overlap it.
    unsafe { std::ptr::copy_nonoverlapping(ptr, out.as_mut_ptr(), N) };
    Ok(out)
}

/// Hands a boxed builder to C.
pub(crate) fn box_into_raw<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Borrows a boxed builder mutably.
///
/// # Safety
/// `ptr` is NULL or a live pointer from [`box_into_raw`] for this `T`, not
/// used by another thread during the call.
pub(crate) unsafe fn box_mut<'a, T: Generational>(
    ptr: *mut T,
    what: &'static str,
) -> FfiResult<&'a mut T> {
    // SAFETY: per the function contract.
    let value = unsafe { ptr.as_mut() }.ok_or_else(|| Fail::null(what))?;
    value.check_generation()?;
    Ok(value)
}

/// Borrows a boxed builder or a shared object immutably.
///
/// # Safety
/// `ptr` is NULL or a live handle of this `T`.
pub(crate) unsafe fn handle_ref<'a, T: Generational>(
    ptr: *const T,
    what: &'static str,
) -> FfiResult<&'a T> {
    // SAFETY: per the function contract.
    let value = unsafe { ptr.as_ref() }.ok_or_else(|| Fail::null(what))?;
    value.check_generation()?;
    Ok(value)
}

/// Frees a boxed builder; NULL is a no-op. In a forked child an old builder
/// is leaked and `SSHARD_STATUS_FORKED` returned.
///
/// # Safety
/// `ptr` is NULL or a pointer from [`box_into_raw`] for this `T` that is not
/// used afterwards.
pub(crate) unsafe fn box_free<T: Generational + Send + 'static>(ptr: *mut T) -> FfiResult {
    if ptr.is_null() {
        return Ok(());
    }
    // SAFETY: per the function contract the box is ours to take back.
    let value = unsafe { Box::from_raw(ptr) };
    if runtime::is_stale(value.generation()) {
        runtime::leak(value);
        return Err(Fail::forked());
    }
    drop(value);
    Ok(())
}

/// Hands one strong reference of a shared object to C.
pub(crate) fn arc_into_raw<T>(value: Arc<T>) -> *mut T {
    Arc::into_raw(value).cast_mut()
}

/// A new strong reference to a shared object held by C.
///
/// # Safety
/// `ptr` is NULL or a live pointer from [`arc_into_raw`] for this `T`.
pub(crate) unsafe fn arc_clone<T: Generational + Send + Sync + 'static>(
    ptr: *const T,
    what: &'static str,
) -> FfiResult<Arc<T>> {
    if ptr.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: `ptr` is a live Arc pointer (contract), so its strong count is
    // at least one while we add ours.
    let arc = unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    };
    if runtime::is_stale(arc.generation()) {
        runtime::leak(arc);
        return Err(Fail::forked());
    }
    Ok(arc)
}

/// Releases one strong reference held by C; NULL is a no-op. In a forked
/// child the reference is leaked and `SSHARD_STATUS_FORKED` returned.
///
/// # Safety
/// `ptr` is NULL or a pointer from [`arc_into_raw`] for this `T` whose
/// reference the caller gives up.
pub(crate) unsafe fn arc_free<T: Generational + Send + Sync + 'static>(ptr: *const T) -> FfiResult {
    if ptr.is_null() {
        return Ok(());
    }
    // SAFETY: per the function contract this reference is ours to release.
    let arc = unsafe { Arc::from_raw(ptr) };
    if runtime::is_stale(arc.generation()) {
        runtime::leak(arc);
        return Err(Fail::forked());
    }
    drop(arc);
    Ok(())
}

/// A borrowed view (no generation, never freed).
///
/// # Safety
/// `ptr` is NULL or a live view handed out by the library.
pub(crate) unsafe fn view_ref<'a, T>(ptr: *const T, what: &'static str) -> FfiResult<&'a T> {
    // SAFETY: per the function contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| Fail::null(what))
}

/// Converts a count or index from C to `usize` (always fits on 64-bit).
pub(crate) fn check_index(index: usize, len: usize) -> FfiResult<usize> {
    if index < len {
        Ok(index)
    } else {
        Err(Fail::index(index, len))
    }
}

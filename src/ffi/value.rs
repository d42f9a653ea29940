//! Values bound from C: the constructors that turn `bind_*` / `append_*`
//! arguments into a [`BindValue`] (its type check and wire form are the
//! core's, `protocol::bind`), and `sshard_builder`: the caller-owned builder
//! of nested values (list, set, map, tuple, UDT), bound to a statement with
//! `sshard_statement_bind_builder` or appended to another builder.

use std::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::enums::{
    sshard_type, SSHARD_TYPE_LIST, SSHARD_TYPE_MAP, SSHARD_TYPE_SET, SSHARD_TYPE_TUPLE,
    SSHARD_TYPE_UDT,
};
use super::handle::{box_free, box_into_raw, box_mut, bytes_arg, out_arg, str_arg, Generational};
use super::status::{sshard_status, Fail, FfiResult};
use crate::protocol::frame::MAX_BODY_LEN;
use crate::protocol::value::MAX_VALUE_DEPTH;
use crate::protocol::BindValue;
use crate::runtime;

// ---------------------------------------------------------------------------
// Constructors from C arguments, shared by the bind and append functions.

/// # Safety
/// `(ptr, len)` must describe readable memory (or be NULL with length 0).
pub(crate) unsafe fn text_value(ptr: *const c_char, len: usize) -> FfiResult<BindValue> {
    // SAFETY: forwarded contract.
    Ok(BindValue::Text(
        unsafe { str_arg(ptr, len, "value") }?.to_owned(),
    ))
}

/// # Safety
/// `(ptr, len)` must describe readable memory (or be NULL with length 0).
pub(crate) unsafe fn blob_value(ptr: *const u8, len: usize) -> FfiResult<BindValue> {
    // SAFETY: forwarded contract.
    Ok(BindValue::Blob(
        unsafe { bytes_arg(ptr, len, "value") }?.to_vec(),
    ))
}

/// # Safety
/// `(ptr, len)` must describe readable memory (or be NULL with length 0).
pub(crate) unsafe fn varint_value(ptr: *const u8, len: usize) -> FfiResult<BindValue> {
    // SAFETY: forwarded contract.
    Ok(BindValue::Varint(
        unsafe { bytes_arg(ptr, len, "value") }?.to_vec(),
    ))
}

/// # Safety
/// `(ptr, len)` must describe readable memory (or be NULL with length 0).
pub(crate) unsafe fn decimal_value(ptr: *const u8, len: usize, scale: i32) -> FfiResult<BindValue> {
    // SAFETY: forwarded contract.
    let unscaled = unsafe { bytes_arg(ptr, len, "unscaled") }?.to_vec();
    Ok(BindValue::Decimal { unscaled, scale })
}

/// # Safety
/// `ptr` must be NULL or point to 16 readable bytes.
pub(crate) unsafe fn uuid_value(ptr: *const u8) -> FfiResult<BindValue> {
    // SAFETY: forwarded contract.
    Ok(BindValue::Uuid(unsafe {
        super::handle::array_arg::<16>(ptr, "uuid")
    }?))
}

/// # Safety
/// `(ptr, len)` must describe readable memory (or be NULL with length 0).
pub(crate) unsafe fn inet_value(ptr: *const u8, len: usize) -> FfiResult<BindValue> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { bytes_arg(ptr, len, "address") }?;
    Ok(BindValue::Inet(match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        n => {
            return Err(Fail::invalid(format!(
                "an inet address has 4 or 16 bytes, not {n}"
            )))
        }
    }))
}

/// # Safety
/// `builder` is NULL or a live builder.
pub(crate) unsafe fn builder_value(builder: *const sshard_builder) -> FfiResult<BindValue> {
    // SAFETY: forwarded contract.
    unsafe { super::handle::handle_ref(builder, "value") }?.value()
}

// ---------------------------------------------------------------------------
// sshard_builder

/// A nested value under construction (list, set, map, tuple or UDT).
/// Caller-owned, not thread-safe; free with `sshard_builder_free`.
pub struct sshard_builder {
    generation: u64,
    kind: sshard_type,
    items: Vec<BindValue>,
    names: Vec<Option<String>>,
    next_name: Option<String>,
    /// Memory the items hold, kept within what one request can carry.
    footprint: usize,
}

impl Generational for sshard_builder {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl sshard_builder {
    pub(crate) fn new(kind: sshard_type) -> FfiResult<sshard_builder> {
        match kind {
            SSHARD_TYPE_LIST | SSHARD_TYPE_SET | SSHARD_TYPE_MAP | SSHARD_TYPE_TUPLE
            | SSHARD_TYPE_UDT => Ok(sshard_builder {
                generation: runtime::generation(),
                kind,
                items: Vec::new(),
                names: Vec::new(),
                next_name: None,
                footprint: 0,
            }),
            other => Err(Fail::invalid(format!(
                "a builder makes a list, set, map, tuple or UDT, not type {other:#x}"
            ))),
        }
    }

    pub(crate) fn append(&mut self, value: BindValue) -> FfiResult {
        if let BindValue::Unset = value {
            return Err(Fail::invalid("unset cannot be an element"));
        }
        // Refused here, so no value made by builders is deep enough to
        // exhaust the stack when it is copied, converted or dropped.
        if value.depth() >= MAX_VALUE_DEPTH {
            return Err(Fail::invalid(format!(
                "values nest at most {MAX_VALUE_DEPTH} levels deep"
            )));
        }
        let footprint = self.footprint.saturating_add(value.footprint());
        if footprint > MAX_BODY_LEN {
            return Err(Fail::invalid(format!(
                "the builder would hold more than a request carries ({MAX_BODY_LEN} bytes)"
            )));
        }
        self.footprint = footprint;
        self.items.push(value);
        self.names.push(self.next_name.take());
        Ok(())
    }

    pub(crate) fn set_field_name(&mut self, name: &str) -> FfiResult {
        if self.kind != SSHARD_TYPE_UDT {
            return Err(Fail::state("field names are for UDT builders only"));
        }
        self.next_name = Some(name.to_owned());
        Ok(())
    }

    /// The built value (the builder stays usable).
    pub(crate) fn value(&self) -> FfiResult<BindValue> {
        let items = self.items.clone();
        Ok(match self.kind {
            SSHARD_TYPE_LIST => BindValue::List(items),
            SSHARD_TYPE_SET => BindValue::Set(items),
            SSHARD_TYPE_TUPLE => BindValue::Tuple(items),
            SSHARD_TYPE_UDT => BindValue::Udt(self.names.iter().cloned().zip(items).collect()),
            _ => {
                if items.len() % 2 != 0 {
                    return Err(Fail::state(
                        "a map builder needs key, value pairs: the last key has no value",
                    ));
                }
                let mut it = items.into_iter();
                let mut entries = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                BindValue::Map(entries)
            }
        })
    }
}

/// Makes a builder of a nested value: `kind` is `SSHARD_TYPE_LIST`,
/// `SSHARD_TYPE_SET`, `SSHARD_TYPE_MAP` (append key, value, key, value...),
/// `SSHARD_TYPE_TUPLE` or `SSHARD_TYPE_UDT` (fields in order, or each named
/// with `sshard_builder_field_name` first). Free it with
/// `sshard_builder_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_builder_new(
    kind: sshard_type,
    builder: *mut *mut sshard_builder,
) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(builder, "builder")?;
        out.write(box_into_raw(sshard_builder::new(kind)?));
        Ok(())
    }
}

/// Frees a builder (NULL: no-op).
#[no_mangle]
pub unsafe extern "C" fn sshard_builder_free(builder: *mut sshard_builder) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `builder` is NULL or from sshard_builder_new, given up by the caller.
        unsafe { box_free(builder) }
    }
}

/// Names the UDT field the next appended value is for.
#[no_mangle]
pub unsafe extern "C" fn sshard_builder_field_name(
    builder: *mut sshard_builder,
    name: *const c_char,
    name_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `builder` is NULL or a live builder (API contract).
        let builder = unsafe { box_mut(builder, "builder") }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        builder.set_field_name(name)
    }
}

/// The number of values appended so far.
#[no_mangle]
pub unsafe extern "C" fn sshard_builder_count(
    builder: *const sshard_builder,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: `builder` is NULL or a live builder (API contract).
        let builder = unsafe { super::handle::handle_ref(builder, "builder") }?;
        out_arg(count, "count")?.write(builder.items.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;

    #[test]
    fn builder_functions_check_arguments() {
        // SAFETY: valid or NULL pointers only; builders freed once.
        unsafe {
            let mut b = std::ptr::null_mut();
            assert_eq!(
                sshard_builder_new(SSHARD_TYPE_LIST, std::ptr::null_mut()),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_builder_new(crate::ffi::enums::SSHARD_TYPE_INT, &mut b),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert!(b.is_null());
            assert_eq!(sshard_builder_new(SSHARD_TYPE_MAP, &mut b), 0);
            (*b).append(BindValue::Int(1)).unwrap();
            assert_eq!((*b).value().unwrap_err().status, SSHARD_STATUS_WRONG_STATE);
            assert_eq!(
                sshard_builder_field_name(b, "x".as_ptr().cast(), 1),
                SSHARD_STATUS_WRONG_STATE
            );
            assert_eq!(
                sshard_builder_field_name(std::ptr::null_mut(), "x".as_ptr().cast(), 1),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            let mut n = 0;
            assert_eq!(sshard_builder_count(b, &mut n), 0);
            assert_eq!(n, 1);
            assert_eq!(
                sshard_builder_count(std::ptr::null(), &mut n),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_builder_count(b, std::ptr::null_mut()),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(sshard_builder_free(b), 0);
            assert_eq!(sshard_builder_free(std::ptr::null_mut()), 0);
            let mut u = std::ptr::null_mut();
            assert_eq!(sshard_builder_new(SSHARD_TYPE_UDT, &mut u), 0);
            assert_eq!(
                sshard_builder_field_name(u, [0xffu8].as_ptr().cast(), 1),
                SSHARD_STATUS_INVALID_UTF8
            );
            assert_eq!(sshard_builder_field_name(u, "f".as_ptr().cast(), 1), 0);
            (*u).append(BindValue::Int(1)).unwrap();
            assert_eq!(
                (*u).value().unwrap(),
                BindValue::Udt(vec![(Some("f".into()), BindValue::Int(1))])
            );
            assert_eq!(sshard_builder_free(u), 0);
        }
    }
}

//! `sshard_value`: the typed getters of a view of one cell (or of a part
//! of a collection, tuple or UDT cell) of an `sshard_result`. Views point
//! into the result's own buffer: text and blobs come back as pointer +
//! length without copying. They live as long as the result (`cells.rs`
//! says how they are made); never freed.

use std::ffi::c_char;

pub use super::cells::sshard_value;
use super::cells::{self, View};
use super::datatype::{data_type_ptr, sshard_data_type};
use super::enums::{sshard_type, type_of};
use super::handle::{check_index, out_arg, str_arg};
use super::status::{
    sshard_status, Fail, FfiResult, SSHARD_STATUS_NAME_NOT_FOUND, SSHARD_STATUS_NULL_VALUE,
};
use crate::protocol::bind::name_matches;
use crate::protocol::value::read_vint;
use crate::protocol::wire::Reader;
use crate::protocol::ColumnType;

/// # Safety
/// `ptr` is NULL or a live view.
unsafe fn value<'a>(ptr: *const sshard_value) -> FfiResult<View<'a>> {
    // SAFETY: forwarded contract.
    unsafe { cells::view(ptr) }
}

fn decode_error(v: &View<'_>) -> Fail {
    v.decode_error()
}

/// The bytes of a non-NULL value whose type is one of `types`.
fn expect<'a>(v: &View<'a>, getter: &str, accepts: fn(&ColumnType) -> bool) -> FfiResult<&'a [u8]> {
    if !accepts(v.ty()) {
        return Err(Fail::mismatch(format!(
            "{getter} cannot read a value of type {}",
            v.ty()
        )));
    }
    v.bytes()
        .ok_or_else(|| Fail::new(SSHARD_STATUS_NULL_VALUE, "the value is NULL"))
}

fn fixed<const N: usize>(v: &View<'_>, bytes: &[u8]) -> FfiResult<[u8; N]> {
    bytes.try_into().map_err(|_| decode_error(v))
}

/// The body of the fixed-width getters: the view at `value`, if `accepts`
/// its type, has its N bytes turned into a `T` by `convert` and written to
/// `out` (the C argument named `out_name`).
///
/// # Safety
/// `value` is NULL or a live view.
unsafe fn get_fixed<const N: usize, T>(
    value: *const sshard_value,
    out: *mut T,
    out_name: &'static str,
    getter: &str,
    convert: fn([u8; N]) -> T,
    accepts: fn(&ColumnType) -> bool,
) -> FfiResult {
    // SAFETY: forwarded contract.
    let v = unsafe { self::value(value) }?;
    let out = out_arg(out, out_name)?;
    let b = expect(&v, getter, accepts)?;
    out.write(convert(fixed(&v, b)?));
    Ok(())
}

/// Whether the value is NULL.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_is_null(
    value: *const sshard_value,
    is_null: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        out_arg(is_null, "is_null")?.write(v.bytes().is_none());
        Ok(())
    }
}

/// The value's type kind (`SSHARD_TYPE_*`).
#[no_mangle]
pub unsafe extern "C" fn sshard_value_type(
    value: *const sshard_value,
    kind: *mut sshard_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        out_arg(kind, "kind")?.write(type_of(v.ty()));
        Ok(())
    }
}

/// The value's full type (for nested types): a view valid as long as the
/// result.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_data_type(
    value: *const sshard_value,
    data_type: *mut *const sshard_data_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        out_arg(data_type, "data_type")?.write(data_type_ptr(v.ty()));
        Ok(())
    }
}

/// A `boolean`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_bool(
    value: *const sshard_value,
    out: *mut bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let out = out_arg(out, "out")?;
        let b = expect(&v, "get_bool", |t| matches!(t, ColumnType::Boolean))?;
        out.write(fixed::<1>(&v, b)?[0] != 0);
        Ok(())
    }
}

/// A `tinyint`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_int8(
    value: *const sshard_value,
    out: *mut i8,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, out, "out", "get_int8", i8::from_be_bytes, |t| {
                matches!(t, ColumnType::TinyInt)
            })
        }
    }
}

/// A `smallint`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_int16(
    value: *const sshard_value,
    out: *mut i16,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, out, "out", "get_int16", i16::from_be_bytes, |t| {
                matches!(t, ColumnType::SmallInt)
            })
        }
    }
}

/// An `int`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_int32(
    value: *const sshard_value,
    out: *mut i32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, out, "out", "get_int32", i32::from_be_bytes, |t| {
                matches!(t, ColumnType::Int)
            })
        }
    }
}

/// A `bigint` or `counter`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_int64(
    value: *const sshard_value,
    out: *mut i64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, out, "out", "get_int64", i64::from_be_bytes, |t| {
                matches!(t, ColumnType::BigInt | ColumnType::Counter)
            })
        }
    }
}

/// A `counter` (or `bigint`).
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_counter(
    value: *const sshard_value,
    out: *mut i64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, out, "out", "get_counter", i64::from_be_bytes, |t| {
                matches!(t, ColumnType::Counter | ColumnType::BigInt)
            })
        }
    }
}

/// A `float`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_float(
    value: *const sshard_value,
    out: *mut f32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, out, "out", "get_float", f32::from_be_bytes, |t| {
                matches!(t, ColumnType::Float)
            })
        }
    }
}

/// A `double`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_double(
    value: *const sshard_value,
    out: *mut f64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, out, "out", "get_double", f64::from_be_bytes, |t| {
                matches!(t, ColumnType::Double)
            })
        }
    }
}

/// A `text`/`varchar` or `ascii`, borrowed (not NUL-terminated; valid UTF-8).
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_text(
    value: *const sshard_value,
    text: *mut *const c_char,
    text_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let text = out_arg(text, "text")?;
        let text_len = out_arg(text_len, "text_len")?;
        let b = expect(&v, "get_text", |t| matches!(t, ColumnType::Text | ColumnType::Ascii))?;
        if std::str::from_utf8(b).is_err() {
            return Err(decode_error(&v));
        }
        text.write(b.as_ptr().cast());
        text_len.write(b.len());
        Ok(())
    }
}

/// A `blob` (or a custom type's bytes), borrowed.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_blob(
    value: *const sshard_value,
    blob: *mut *const u8,
    blob_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let blob = out_arg(blob, "blob")?;
        let blob_len = out_arg(blob_len, "blob_len")?;
        let b = expect(&v, "get_blob", |t| matches!(t, ColumnType::Blob | ColumnType::Custom(_)))?;
        blob.write(b.as_ptr());
        blob_len.write(b.len());
        Ok(())
    }
}

/// The raw serialized bytes of any non-NULL value, borrowed.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_bytes(
    value: *const sshard_value,
    bytes: *mut *const u8,
    bytes_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let bytes = out_arg(bytes, "bytes")?;
        let bytes_len = out_arg(bytes_len, "bytes_len")?;
        let b = v
            .bytes()
            .ok_or_else(|| Fail::new(SSHARD_STATUS_NULL_VALUE, "the value is NULL"))?;
        bytes.write(b.as_ptr());
        bytes_len.write(b.len());
        Ok(())
    }
}

/// A `uuid` or `timeuuid`: 16 bytes written to `uuid`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_uuid(
    value: *const sshard_value,
    uuid: *mut u8,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let out = out_arg(uuid.cast::<[u8; 16]>(), "uuid")?;
        let b = expect(&v, "get_uuid", |t| matches!(t, ColumnType::Uuid | ColumnType::Timeuuid))?;
        out.write(fixed::<16>(&v, b)?);
        Ok(())
    }
}

/// An `inet`: 4 (IPv4) or 16 (IPv6) bytes written to `address` (room for
/// 16), their count to `address_len`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_inet(
    value: *const sshard_value,
    address: *mut u8,
    address_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let out = out_arg(address.cast::<[u8; 16]>(), "address")?;
        let out_len = out_arg(address_len, "address_len")?;
        let b = expect(&v, "get_inet", |t| matches!(t, ColumnType::Inet))?;
        if b.len() != 4 && b.len() != 16 {
            return Err(decode_error(&v));
        }
        let mut a = [0u8; 16];
        a[..b.len()].copy_from_slice(b);
        out.write(a);
        out_len.write(b.len());
        Ok(())
    }
}

/// A `date` as days since the Unix epoch (negative before it).
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_date(
    value: *const sshard_value,
    days: *mut i32,
) -> sshard_status {
    ffi_boundary! {
        // u32 - 2^31 always fits in i32.
        let days_since_epoch = |b| (i64::from(u32::from_be_bytes(b)) - (1i64 << 31)) as i32;
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, days, "days", "get_date", days_since_epoch, |t| {
                matches!(t, ColumnType::Date)
            })
        }
    }
}

/// A `time` as nanoseconds since midnight.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_time(
    value: *const sshard_value,
    nanos: *mut i64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, nanos, "nanos", "get_time", i64::from_be_bytes, |t| {
                matches!(t, ColumnType::Time)
            })
        }
    }
}

/// A `timestamp` as milliseconds since the Unix epoch.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_timestamp(
    value: *const sshard_value,
    millis: *mut i64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        unsafe {
            get_fixed(value, millis, "millis", "get_timestamp", i64::from_be_bytes, |t| {
                matches!(t, ColumnType::Timestamp)
            })
        }
    }
}

/// A `duration`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_duration(
    value: *const sshard_value,
    months: *mut i32,
    days: *mut i32,
    nanos: *mut i64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let months = out_arg(months, "months")?;
        let days = out_arg(days, "days")?;
        let nanos = out_arg(nanos, "nanos")?;
        let b = expect(&v, "get_duration", |t| matches!(t, ColumnType::Duration))?;
        let mut r = Reader::new(b);
        let m = read_vint(&mut r).map_err(|_| decode_error(&v))?;
        let d = read_vint(&mut r).map_err(|_| decode_error(&v))?;
        let n = read_vint(&mut r).map_err(|_| decode_error(&v))?;
        if !r.is_empty() {
            return Err(decode_error(&v));
        }
        let m = i32::try_from(m).map_err(|_| decode_error(&v))?;
        let d = i32::try_from(d).map_err(|_| decode_error(&v))?;
        months.write(m);
        days.write(d);
        nanos.write(n);
        Ok(())
    }
}

/// A `decimal`: the unscaled value (big-endian two's complement, borrowed)
/// and the scale (value = unscaled * 10^-scale).
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_decimal(
    value: *const sshard_value,
    unscaled: *mut *const u8,
    unscaled_len: *mut usize,
    scale: *mut i32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let unscaled = out_arg(unscaled, "unscaled")?;
        let unscaled_len = out_arg(unscaled_len, "unscaled_len")?;
        let scale = out_arg(scale, "scale")?;
        let b = expect(&v, "get_decimal", |t| matches!(t, ColumnType::Decimal))?;
        if b.len() < 5 {
            return Err(decode_error(&v));
        }
        scale.write(i32::from_be_bytes(fixed(&v, &b[..4])?));
        unscaled.write(b[4..].as_ptr());
        unscaled_len.write(b.len() - 4);
        Ok(())
    }
}

/// A `varint` (big-endian two's complement), borrowed.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_get_varint(
    value: *const sshard_value,
    varint: *mut *const u8,
    varint_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let varint = out_arg(varint, "varint")?;
        let varint_len = out_arg(varint_len, "varint_len")?;
        let b = expect(&v, "get_varint", |t| matches!(t, ColumnType::Varint))?;
        if b.is_empty() {
            return Err(decode_error(&v));
        }
        varint.write(b.as_ptr());
        varint_len.write(b.len());
        Ok(())
    }
}

fn is_nested(t: &ColumnType) -> bool {
    matches!(
        t,
        ColumnType::List(_)
            | ColumnType::Set(_)
            | ColumnType::Map(_, _)
            | ColumnType::Tuple(_)
            | ColumnType::Udt(_)
    )
}

/// The number of items of a list or set, entries of a map, elements of a
/// tuple or fields of a UDT.
///
/// Nested values are read by index, not through iterator objects: a value's
/// parts are laid out once, the first time they are asked for, so the count
/// is known up front and `sshard_value_element`, `sshard_value_map_entry`
/// and `sshard_value_field` each cost O(1), with no handle to create or
/// free. From LuaJIT or Python, loop over `0 .. count - 1`.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_element_count(
    value: *const sshard_value,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let count = out_arg(count, "count")?;
        expect(&v, "element_count", is_nested)?;
        let n = v.parts()?.len();
        count.write(if matches!(v.ty(), ColumnType::Map(_, _)) { n / 2 } else { n });
        Ok(())
    }
}

/// Item `index` of a list or set, or element `index` of a tuple (which may
/// be a NULL value), or the value of UDT field `index`: a view valid as
/// long as the result.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_element(
    value: *const sshard_value,
    index: usize,
    element: *mut *const sshard_value,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let out = out_arg(element, "element")?;
        expect(&v, "element", |t| is_nested(t) && !matches!(t, ColumnType::Map(_, _)))?;
        let parts = v.parts()?;
        let i = check_index(index, parts.len())?;
        out.write(parts.view(i));
        Ok(())
    }
}

/// Entry `index` of a map: its key and value (views valid as long as the
/// result).
#[no_mangle]
pub unsafe extern "C" fn sshard_value_map_entry(
    value: *const sshard_value,
    index: usize,
    key: *mut *const sshard_value,
    entry_value: *mut *const sshard_value,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let key = out_arg(key, "key")?;
        let entry_value = out_arg(entry_value, "entry_value")?;
        expect(&v, "map_entry", |t| matches!(t, ColumnType::Map(_, _)))?;
        let parts = v.parts()?;
        let i = check_index(index, parts.len() / 2)?;
        key.write(parts.view(2 * i));
        entry_value.write(parts.view(2 * i + 1));
        Ok(())
    }
}

/// Field `index` of a UDT: its name (borrowed) and value (maybe NULL), both
/// valid as long as the result.
#[no_mangle]
pub unsafe extern "C" fn sshard_value_field(
    value: *const sshard_value,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
    field_value: *mut *const sshard_value,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        let name = out_arg(name, "name")?;
        let name_len = out_arg(name_len, "name_len")?;
        let field_value = out_arg(field_value, "field_value")?;
        expect(&v, "field", |t| matches!(t, ColumnType::Udt(_)))?;
        let ColumnType::Udt(udt) = v.ty() else { unreachable!("checked above") };
        let parts = v.parts()?;
        let i = check_index(index, parts.len())?;
        name.write(udt.fields[i].0.as_ptr().cast());
        name_len.write(udt.fields[i].0.len());
        field_value.write(parts.view(i));
        Ok(())
    }
}

/// The value of the UDT field named `name` (a view valid as long as the
/// result).
#[no_mangle]
pub unsafe extern "C" fn sshard_value_field_by_name(
    value: *const sshard_value,
    name: *const c_char,
    name_len: usize,
    field_value: *mut *const sshard_value,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live view (API contract).
        let v = unsafe { self::value(value) }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let field_value = out_arg(field_value, "field_value")?;
        expect(&v, "field_by_name", |t| matches!(t, ColumnType::Udt(_)))?;
        let ColumnType::Udt(udt) = v.ty() else { unreachable!("checked above") };
        let i = udt
            .fields
            .iter()
            .position(|(f, _)| name_matches(f, name))
            .ok_or_else(|| {
                Fail::new(
                    SSHARD_STATUS_NAME_NOT_FOUND,
                    format!("type {} has no field {name:?}", udt.name),
                )
            })?;
        field_value.write(v.parts()?.view(i));
        Ok(())
    }
}

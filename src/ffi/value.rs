//! Values bound from C: what each `bind_*` / `append_*` call records
//! ([`BindValue`]), the type check against a prepared statement's marker
//! types, and the conversion to the protocol's [`CqlValue`].
//!
//! Also `sshard_builder`: the caller-owned builder of nested values (list,
//! set, map, tuple, UDT), bound to a statement with
//! `sshard_statement_bind_builder` or appended to another builder.

use std::ffi::c_char;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::enums::{
    sshard_type, SSHARD_TYPE_LIST, SSHARD_TYPE_MAP, SSHARD_TYPE_SET, SSHARD_TYPE_TUPLE,
    SSHARD_TYPE_UDT,
};
use super::handle::{box_free, box_into_raw, box_mut, bytes_arg, out_arg, str_arg, Generational};
use super::status::{sshard_status, Fail, FfiResult, SSHARD_STATUS_NAME_NOT_FOUND};
use crate::protocol::request::Value;
use crate::protocol::types::UdtType;
use crate::protocol::{ColumnType, CqlValue};
use crate::runtime;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;
const DATE_EPOCH: i64 = 1 << 31;

/// A value as the caller gave it, before it meets a column type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BindValue {
    Null,
    Unset,
    Bool(bool),
    TinyInt(i8),
    SmallInt(i16),
    Int(i32),
    BigInt(i64),
    Counter(i64),
    Float(f32),
    Double(f64),
    /// text, varchar and ascii.
    Text(String),
    /// blob (and custom types, as their raw bytes).
    Blob(Vec<u8>),
    /// uuid and timeuuid.
    Uuid([u8; 16]),
    Inet(IpAddr),
    /// Days since the Unix epoch (negative before it).
    Date(i32),
    /// Nanoseconds since midnight.
    Time(i64),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Duration {
        months: i32,
        days: i32,
        nanos: i64,
    },
    Decimal {
        unscaled: Vec<u8>,
        scale: i32,
    },
    /// Big-endian two's complement.
    Varint(Vec<u8>),
    List(Vec<BindValue>),
    Set(Vec<BindValue>),
    Map(Vec<(BindValue, BindValue)>),
    Tuple(Vec<BindValue>),
    /// Fields in order, each optionally named.
    Udt(Vec<(Option<String>, BindValue)>),
}

impl BindValue {
    fn kind(&self) -> &'static str {
        match self {
            BindValue::Null => "null",
            BindValue::Unset => "unset",
            BindValue::Bool(_) => "bool",
            BindValue::TinyInt(_) => "int8",
            BindValue::SmallInt(_) => "int16",
            BindValue::Int(_) => "int32",
            BindValue::BigInt(_) => "int64",
            BindValue::Counter(_) => "counter",
            BindValue::Float(_) => "float",
            BindValue::Double(_) => "double",
            BindValue::Text(_) => "text",
            BindValue::Blob(_) => "blob",
            BindValue::Uuid(_) => "uuid",
            BindValue::Inet(_) => "inet",
            BindValue::Date(_) => "date",
            BindValue::Time(_) => "time",
            BindValue::Timestamp(_) => "timestamp",
            BindValue::Duration { .. } => "duration",
            BindValue::Decimal { .. } => "decimal",
            BindValue::Varint(_) => "varint",
            BindValue::List(_) => "list",
            BindValue::Set(_) => "set",
            BindValue::Map(_) => "map",
            BindValue::Tuple(_) => "tuple",
            BindValue::Udt(_) => "udt",
        }
    }
}

/// Whether a caller-given identifier names `column`: a double-quoted name
/// is exact (`""` inside stands for `"`); an unquoted one matches exactly or
/// in lower case (CQL folds unquoted identifiers to lower case).
pub(crate) fn name_matches(column: &str, name: &str) -> bool {
    if name.len() >= 2 && name.starts_with('"') && name.ends_with('"') {
        return column == name[1..name.len() - 1].replace("\"\"", "\"");
    }
    column == name || column == name.to_lowercase()
}

fn mismatch(value: &BindValue, what: &dyn Display, ty: &ColumnType) -> Fail {
    Fail::mismatch(format!(
        "cannot bind a {} value to {what} of type {ty}",
        value.kind()
    ))
}

/// Converts `value` for a slot of type `ty` (`None`: no type known, as in a
/// simple statement; the value's natural type is used). `Ok(None)` is NULL.
pub(crate) fn to_cql(
    value: &BindValue,
    ty: Option<&ColumnType>,
    what: &dyn Display,
) -> FfiResult<Option<CqlValue>> {
    use ColumnType as T;
    let wrong = |v: &BindValue, t: &ColumnType| Err(mismatch(v, what, t));
    let v = match (value, ty) {
        (BindValue::Null, _) => return Ok(None),
        (BindValue::Unset, _) => {
            return Err(Fail::invalid(format!(
                "unset is only allowed as a whole bound value, not inside {what}"
            )))
        }
        (BindValue::Bool(b), None | Some(T::Boolean)) => CqlValue::Boolean(*b),
        (BindValue::TinyInt(v), None | Some(T::TinyInt)) => CqlValue::TinyInt(*v),
        (BindValue::SmallInt(v), None | Some(T::SmallInt)) => CqlValue::SmallInt(*v),
        (BindValue::Int(v), None | Some(T::Int)) => CqlValue::Int(*v),
        (BindValue::BigInt(v), None | Some(T::BigInt)) => CqlValue::BigInt(*v),
        (BindValue::BigInt(v), Some(T::Counter)) => CqlValue::Counter(*v),
        (BindValue::Counter(v), None | Some(T::Counter)) => CqlValue::Counter(*v),
        (BindValue::Counter(v), Some(T::BigInt)) => CqlValue::BigInt(*v),
        (BindValue::Float(v), None | Some(T::Float)) => CqlValue::Float(*v),
        (BindValue::Double(v), None | Some(T::Double)) => CqlValue::Double(*v),
        (BindValue::Text(s), None | Some(T::Text)) => CqlValue::Text(s.clone()),
        (BindValue::Text(s), Some(T::Ascii)) => {
            if !s.is_ascii() {
                return Err(Fail::invalid(format!(
                    "non-ASCII text bound to {what} of type ascii"
                )));
            }
            CqlValue::Ascii(s.clone())
        }
        (BindValue::Blob(b), None | Some(T::Blob)) => CqlValue::Blob(b.clone()),
        (BindValue::Blob(b), Some(T::Custom(_))) => CqlValue::Custom(b.clone()),
        (BindValue::Uuid(u), None | Some(T::Uuid)) => CqlValue::Uuid(*u),
        (BindValue::Uuid(u), Some(T::Timeuuid)) => {
            if u[6] >> 4 != 1 {
                return Err(Fail::invalid(format!(
                    "{what} is a timeuuid; the uuid bound is not a version 1 (time) uuid"
                )));
            }
            CqlValue::Timeuuid(*u)
        }
        (BindValue::Inet(ip), None | Some(T::Inet)) => CqlValue::Inet(*ip),
        (BindValue::Date(days), None | Some(T::Date)) => {
            // i32 + 2^31 always fits in u32.
            CqlValue::Date((i64::from(*days) + DATE_EPOCH) as u32)
        }
        (BindValue::Time(nanos), None | Some(T::Time)) => {
            if !(0..NANOS_PER_DAY).contains(nanos) {
                return Err(Fail::invalid(format!(
                    "time {nanos} is not within 0..86400000000000 nanoseconds"
                )));
            }
            CqlValue::Time(*nanos)
        }
        (BindValue::Timestamp(ms), None | Some(T::Timestamp)) => CqlValue::Timestamp(*ms),
        (
            BindValue::Duration {
                months,
                days,
                nanos,
            },
            None | Some(T::Duration),
        ) => {
            let parts = [i64::from(*months), i64::from(*days), *nanos];
            if parts.iter().any(|p| *p > 0) && parts.iter().any(|p| *p < 0) {
                return Err(Fail::invalid(
                    "duration months, days and nanoseconds must not have mixed signs",
                ));
            }
            CqlValue::Duration {
                months: *months,
                days: *days,
                nanos: *nanos,
            }
        }
        (BindValue::Decimal { unscaled, scale }, None | Some(T::Decimal)) => {
            if unscaled.is_empty() {
                return Err(Fail::invalid("decimal with an empty unscaled value"));
            }
            CqlValue::Decimal {
                unscaled: unscaled.clone(),
                scale: *scale,
            }
        }
        (BindValue::Varint(b), None | Some(T::Varint)) => {
            if b.is_empty() {
                return Err(Fail::invalid("empty varint"));
            }
            CqlValue::Varint(b.clone())
        }
        (BindValue::List(items) | BindValue::Set(items), Some(T::List(e) | T::Set(e))) => {
            let items = elements(items, Some(e), what)?;
            match ty {
                Some(T::List(_)) => CqlValue::List(items),
                _ => CqlValue::Set(items),
            }
        }
        (BindValue::List(items), None) => CqlValue::List(elements(items, None, what)?),
        (BindValue::Set(items), None) => CqlValue::Set(elements(items, None, what)?),
        (BindValue::Map(entries), None | Some(T::Map(_, _))) => {
            let (kt, vt) = match ty {
                Some(T::Map(k, v)) => (Some(&**k), Some(&**v)),
                _ => (None, None),
            };
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                out.push((element(k, kt, what)?, element(v, vt, what)?));
            }
            CqlValue::Map(out)
        }
        (BindValue::Tuple(items), None) => CqlValue::Tuple(
            items
                .iter()
                .map(|i| to_cql(i, None, what))
                .collect::<FfiResult<_>>()?,
        ),
        (BindValue::Tuple(items), Some(T::Tuple(types))) => {
            if items.len() > types.len() {
                return Err(Fail::mismatch(format!(
                    "{} values for {what} of type {}",
                    items.len(),
                    ty.map(ToString::to_string).unwrap_or_default()
                )));
            }
            let mut out = Vec::with_capacity(types.len());
            for (i, t) in types.iter().enumerate() {
                out.push(match items.get(i) {
                    Some(item) => to_cql(item, Some(t), what)?,
                    None => None,
                });
            }
            CqlValue::Tuple(out)
        }
        (BindValue::Udt(fields), None) => CqlValue::Udt(
            fields
                .iter()
                .map(|(n, v)| Ok((n.clone().unwrap_or_default(), to_cql(v, None, what)?)))
                .collect::<FfiResult<_>>()?,
        ),
        (BindValue::Udt(fields), Some(T::Udt(udt))) => udt_value(fields, udt, what)?,
        (v, Some(t)) => return wrong(v, t),
    };
    Ok(Some(v))
}

fn element(value: &BindValue, ty: Option<&ColumnType>, what: &dyn Display) -> FfiResult<CqlValue> {
    to_cql(value, ty, what)?
        .ok_or_else(|| Fail::invalid(format!("NULL element inside the collection of {what}")))
}

fn elements(
    items: &[BindValue],
    ty: Option<&ColumnType>,
    what: &dyn Display,
) -> FfiResult<Vec<CqlValue>> {
    items.iter().map(|i| element(i, ty, what)).collect()
}

fn udt_value(
    fields: &[(Option<String>, BindValue)],
    udt: &UdtType,
    what: &dyn Display,
) -> FfiResult<CqlValue> {
    let named = fields.iter().filter(|(n, _)| n.is_some()).count();
    let mut out: Vec<(String, Option<CqlValue>)> =
        udt.fields.iter().map(|(n, _)| (n.clone(), None)).collect();
    if named == 0 {
        if fields.len() > udt.fields.len() {
            return Err(Fail::mismatch(format!(
                "{} fields for {what} of type {} with {} fields",
                fields.len(),
                udt.name,
                udt.fields.len()
            )));
        }
        for (i, (_, v)) in fields.iter().enumerate() {
            out[i].1 = to_cql(v, Some(&udt.fields[i].1), what)?;
        }
    } else if named == fields.len() {
        for (name, v) in fields {
            let name = name.as_deref().unwrap_or_default();
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
            out[i].1 = to_cql(v, Some(&udt.fields[i].1), what)?;
        }
    } else {
        return Err(Fail::invalid(format!(
            "UDT value for {what} mixes named and unnamed fields"
        )));
    }
    Ok(CqlValue::Udt(out))
}

/// The bound form of `value` for a slot of type `ty`.
pub(crate) fn to_wire(
    value: &BindValue,
    ty: Option<&ColumnType>,
    what: &dyn Display,
    slot: &mut Value,
) -> FfiResult {
    if let BindValue::Unset = value {
        *slot = Value::Unset;
        return Ok(());
    }
    // Text and blobs go straight to the wire form (no intermediate copy);
    // everything else is checked and converted through `CqlValue`.
    let direct = match (value, ty) {
        (BindValue::Text(s), None | Some(ColumnType::Text)) => Some(s.as_bytes()),
        (BindValue::Blob(b), None | Some(ColumnType::Blob | ColumnType::Custom(_))) => {
            Some(b.as_slice())
        }
        _ => None,
    };
    let converted = match direct {
        Some(_) => None,
        None => match to_cql(value, ty, what)? {
            None => {
                *slot = Value::Null;
                return Ok(());
            }
            some => some,
        },
    };
    // Reuse the buffer of the value bound before (a statement rebound for
    // every request then allocates nothing here).
    let mut buf = match std::mem::replace(slot, Value::Unset) {
        Value::Set(mut old) => {
            old.clear();
            old
        }
        _ => Vec::new(),
    };
    match (direct, converted) {
        (Some(bytes), _) => buf.extend_from_slice(bytes),
        (None, Some(v)) => v
            .serialize(&mut buf)
            .map_err(|e| Fail::invalid(format!("cannot serialize {what} (now unset): {e}")))?,
        (None, None) => unreachable!("NULL returned above"),
    }
    *slot = Value::Set(buf);
    Ok(())
}

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
/// with `sshard_builder_field_name` first).
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
    use crate::protocol::ColumnType as T;

    /// `to_wire` into a fresh slot.
    fn wire(v: &BindValue, ty: Option<&ColumnType>, what: &str) -> FfiResult<Value> {
        let mut slot = Value::Unset;
        to_wire(v, ty, &what, &mut slot).map(|()| slot)
    }

    #[test]
    fn rebinding_overwrites_the_slot_and_a_refused_value_keeps_the_old_one() {
        let mut slot = Value::Unset;
        let text = BindValue::Text("a longer text value".into());
        to_wire(&text, Some(&T::Text), &"m", &mut slot).unwrap();
        to_wire(
            &BindValue::Text("ab".into()),
            Some(&T::Text),
            &"m",
            &mut slot,
        )
        .unwrap();
        assert_eq!(slot, Value::Set(b"ab".to_vec()));
        assert!(to_wire(&BindValue::Int(1), Some(&T::Text), &"m", &mut slot).is_err());
        assert_eq!(slot, Value::Set(b"ab".to_vec()));
        to_wire(&BindValue::Null, Some(&T::Text), &"m", &mut slot).unwrap();
        assert_eq!(slot, Value::Null);
        to_wire(&BindValue::BigInt(7), Some(&T::BigInt), &"m", &mut slot).unwrap();
        assert_eq!(slot, Value::Set(7i64.to_be_bytes().to_vec()));
    }

    fn round_trip(v: BindValue, ty: &ColumnType) -> CqlValue {
        let wire = wire(&v, Some(ty), "test").unwrap();
        let bytes = wire.as_bytes().unwrap();
        CqlValue::deserialize(ty, bytes).unwrap()
    }

    #[test]
    fn scalars_convert_with_their_column_types() {
        assert_eq!(round_trip(BindValue::Int(-7), &T::Int), CqlValue::Int(-7));
        assert_eq!(
            round_trip(BindValue::BigInt(5), &T::Counter),
            CqlValue::Counter(5)
        );
        assert_eq!(
            round_trip(BindValue::Text("abc".into()), &T::Ascii),
            CqlValue::Ascii("abc".into())
        );
        assert_eq!(
            round_trip(BindValue::Date(-1), &T::Date),
            CqlValue::Date((1u32 << 31) - 1)
        );
        assert_eq!(
            round_trip(BindValue::Date(i32::MIN), &T::Date),
            CqlValue::Date(0)
        );
        let mut tu = [0u8; 16];
        tu[6] = 0x10;
        assert_eq!(
            round_trip(BindValue::Uuid(tu), &T::Timeuuid),
            CqlValue::Timeuuid(tu)
        );
        assert_eq!(
            round_trip(
                BindValue::Duration {
                    months: 1,
                    days: 2,
                    nanos: 3
                },
                &T::Duration
            ),
            CqlValue::Duration {
                months: 1,
                days: 2,
                nanos: 3
            }
        );
    }

    #[test]
    fn mismatches_are_type_mismatch_and_bad_values_invalid() {
        let e = wire(&BindValue::Int(1), Some(&T::BigInt), "marker 0").unwrap_err();
        assert_eq!(e.status, SSHARD_STATUS_TYPE_MISMATCH);
        assert!(e.message.contains("int32") && e.message.contains("bigint"));
        let e = wire(&BindValue::Text("ż".into()), Some(&T::Ascii), "x").unwrap_err();
        assert_eq!(e.status, SSHARD_STATUS_INVALID_ARGUMENT);
        let e = wire(&BindValue::Uuid([0; 16]), Some(&T::Timeuuid), "x").unwrap_err();
        assert_eq!(e.status, SSHARD_STATUS_INVALID_ARGUMENT);
        let e = wire(&BindValue::Time(-1), Some(&T::Time), "x").unwrap_err();
        assert_eq!(e.status, SSHARD_STATUS_INVALID_ARGUMENT);
        let d = BindValue::Duration {
            months: 1,
            days: -1,
            nanos: 0,
        };
        assert_eq!(
            wire(&d, None, "x").unwrap_err().status,
            SSHARD_STATUS_INVALID_ARGUMENT
        );
        let list = BindValue::List(vec![BindValue::Int(1)]);
        let e = wire(&list, Some(&T::List(Box::new(T::Text))), "x").unwrap_err();
        assert_eq!(e.status, SSHARD_STATUS_TYPE_MISMATCH);
        let e = wire(&list, Some(&T::Int), "x").unwrap_err();
        assert_eq!(e.status, SSHARD_STATUS_TYPE_MISMATCH);
        let with_null = BindValue::Set(vec![BindValue::Null]);
        assert_eq!(
            wire(&with_null, None, "x").unwrap_err().status,
            SSHARD_STATUS_INVALID_ARGUMENT
        );
        assert_eq!(
            wire(&BindValue::Unset, Some(&T::Int), "x").unwrap(),
            Value::Unset
        );
        assert_eq!(
            wire(&BindValue::Null, Some(&T::Int), "x").unwrap(),
            Value::Null
        );
    }

    #[test]
    fn collections_tuples_and_udts_follow_the_column_type() {
        let ty = T::Map(Box::new(T::Text), Box::new(T::Set(Box::new(T::Int))));
        let v = BindValue::Map(vec![(
            BindValue::Text("a".into()),
            BindValue::List(vec![BindValue::Int(1), BindValue::Int(2)]),
        )]);
        assert_eq!(
            round_trip(v, &ty),
            CqlValue::Map(vec![(
                CqlValue::Text("a".into()),
                CqlValue::Set(vec![CqlValue::Int(1), CqlValue::Int(2)])
            )])
        );
        let ty = T::Tuple(vec![T::Int, T::Text, T::Boolean]);
        let v = BindValue::Tuple(vec![BindValue::Int(1), BindValue::Null]);
        assert_eq!(
            round_trip(v, &ty),
            CqlValue::Tuple(vec![Some(CqlValue::Int(1)), None, None])
        );
        let udt = T::Udt(Box::new(UdtType {
            keyspace: "ks".into(),
            name: "addr".into(),
            fields: vec![("street".into(), T::Text), ("no".into(), T::Int)],
        }));
        let named = BindValue::Udt(vec![(Some("no".into()), BindValue::Int(3))]);
        assert_eq!(
            round_trip(named, &udt),
            CqlValue::Udt(vec![
                ("street".into(), None),
                ("no".into(), Some(CqlValue::Int(3)))
            ])
        );
        let positional = BindValue::Udt(vec![(None, BindValue::Text("x".into()))]);
        assert_eq!(
            round_trip(positional, &udt),
            CqlValue::Udt(vec![
                ("street".into(), Some(CqlValue::Text("x".into()))),
                ("no".into(), None)
            ])
        );
        let unknown = BindValue::Udt(vec![(Some("zip".into()), BindValue::Int(3))]);
        assert_eq!(
            wire(&unknown, Some(&udt), "x").unwrap_err().status,
            SSHARD_STATUS_NAME_NOT_FOUND
        );
        let too_many = BindValue::Tuple(vec![BindValue::Int(1); 4]);
        assert_eq!(
            wire(&too_many, Some(&T::Tuple(vec![T::Int])), "x")
                .unwrap_err()
                .status,
            SSHARD_STATUS_TYPE_MISMATCH
        );
    }

    #[test]
    fn identifier_matching_follows_cql_rules() {
        assert!(name_matches("abc", "abc"));
        assert!(name_matches("abc", "ABC"));
        assert!(!name_matches("ABC", "abc"));
        assert!(name_matches("ABC", "\"ABC\""));
        assert!(!name_matches("abc", "\"ABC\""));
        assert!(name_matches("a\"b", "\"a\"\"b\""));
    }

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

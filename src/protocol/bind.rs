//! Values bound to statements: what a caller gives ([`BindValue`]), the
//! type check against a marker's type (a prepared statement's metadata, or
//! none for a simple statement, which sends each value's own type), and the
//! conversion to the wire form. Shared by the Rust session API
//! (`Statement::bind`) and the C API's typed `bind_*` functions.

use std::fmt::{self, Display};
use std::net::IpAddr;

use super::request::Value;
use super::types::{ColumnType, UdtType};
use super::value::{CqlValue, MAX_VALUE_DEPTH};

/// Why a value cannot be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// The value's kind does not fit the slot's type.
    TypeMismatch(String),
    /// The value is outside its type's domain (non-ASCII text for `ascii`,
    /// a time past midnight, a NULL collection element, too deep...).
    Invalid(String),
    /// No marker or UDT field has that name.
    NoSuchName(String),
    /// No marker at that position.
    IndexOutOfRange { index: usize, len: usize },
}

impl Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::TypeMismatch(m) | BindError::Invalid(m) | BindError::NoSuchName(m) => {
                f.write_str(m)
            }
            BindError::IndexOutOfRange { index, len } => {
                write!(f, "index {index} out of range (length {len})")
            }
        }
    }
}

impl std::error::Error for BindError {}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;
const DATE_EPOCH: i64 = 1 << 31;

/// A value as the caller gave it, before it meets a column type.
#[derive(Debug, Clone, PartialEq)]
pub enum BindValue {
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
    /// Levels of nesting: 0 for a scalar, 1 for a collection of scalars...
    pub fn depth(&self) -> usize {
        let deepest = |items: &mut dyn Iterator<Item = &BindValue>| {
            items.map(BindValue::depth).max().map_or(1, |d| d + 1)
        };
        match self {
            BindValue::List(items) | BindValue::Set(items) | BindValue::Tuple(items) => {
                deepest(&mut items.iter())
            }
            BindValue::Map(entries) => deepest(&mut entries.iter().flat_map(|(k, v)| [k, v])),
            BindValue::Udt(fields) => deepest(&mut fields.iter().map(|(_, v)| v)),
            _ => 0,
        }
    }

    /// Bytes the value occupies in memory, its contents included (an upper
    /// bound of its wire size too).
    pub fn footprint(&self) -> usize {
        let own = std::mem::size_of::<BindValue>();
        own + match self {
            BindValue::Text(s) => s.len(),
            BindValue::Blob(b) | BindValue::Varint(b) => b.len(),
            BindValue::Decimal { unscaled, .. } => unscaled.len(),
            BindValue::List(items) | BindValue::Set(items) | BindValue::Tuple(items) => {
                items.iter().map(BindValue::footprint).sum()
            }
            BindValue::Map(entries) => entries
                .iter()
                .map(|(k, v)| k.footprint() + v.footprint())
                .sum(),
            BindValue::Udt(fields) => fields
                .iter()
                .map(|(n, v)| n.as_ref().map_or(0, String::len) + v.footprint())
                .sum(),
            _ => 0,
        }
    }

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
pub fn name_matches(column: &str, name: &str) -> bool {
    if name.len() >= 2 && name.starts_with('"') && name.ends_with('"') {
        return column == name[1..name.len() - 1].replace("\"\"", "\"");
    }
    column == name || column == name.to_lowercase()
}

fn mismatch(value: &BindValue, what: &dyn Display, ty: &ColumnType) -> BindError {
    BindError::TypeMismatch(format!(
        "cannot bind a {} value to {what} of type {ty}",
        value.kind()
    ))
}

/// Converts `value` for a slot of type `ty` (`None`: no type known, as in a
/// simple statement; the value's natural type is used). `Ok(None)` is NULL.
/// `what` names the slot in error messages.
pub fn to_cql(
    value: &BindValue,
    ty: Option<&ColumnType>,
    what: &dyn Display,
) -> Result<Option<CqlValue>, BindError> {
    to_cql_at(value, ty, what, 0)
}

fn to_cql_at(
    value: &BindValue,
    ty: Option<&ColumnType>,
    what: &dyn Display,
    depth: usize,
) -> Result<Option<CqlValue>, BindError> {
    use ColumnType as T;
    if depth > MAX_VALUE_DEPTH {
        return Err(BindError::Invalid(format!(
            "the value of {what} is nested deeper than {MAX_VALUE_DEPTH} levels"
        )));
    }
    let inner = depth + 1;
    let wrong = |v: &BindValue, t: &ColumnType| Err(mismatch(v, what, t));
    let v = match (value, ty) {
        (BindValue::Null, _) => return Ok(None),
        (BindValue::Unset, _) => {
            return Err(BindError::Invalid(format!(
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
                return Err(BindError::Invalid(format!(
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
                return Err(BindError::Invalid(format!(
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
                return Err(BindError::Invalid(format!(
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
                return Err(BindError::Invalid(
                    "duration months, days and nanoseconds must not have mixed signs".into(),
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
                return Err(BindError::Invalid(
                    "decimal with an empty unscaled value".into(),
                ));
            }
            CqlValue::Decimal {
                unscaled: unscaled.clone(),
                scale: *scale,
            }
        }
        (BindValue::Varint(b), None | Some(T::Varint)) => {
            if b.is_empty() {
                return Err(BindError::Invalid("empty varint".into()));
            }
            CqlValue::Varint(b.clone())
        }
        (BindValue::List(items) | BindValue::Set(items), Some(T::List(e) | T::Set(e))) => {
            let items = elements(items, Some(e), what, inner)?;
            match ty {
                Some(T::List(_)) => CqlValue::List(items),
                _ => CqlValue::Set(items),
            }
        }
        (BindValue::List(items), None) => CqlValue::List(elements(items, None, what, inner)?),
        (BindValue::Set(items), None) => CqlValue::Set(elements(items, None, what, inner)?),
        (BindValue::Map(entries), None | Some(T::Map(_, _))) => {
            let (kt, vt) = match ty {
                Some(T::Map(k, v)) => (Some(&**k), Some(&**v)),
                _ => (None, None),
            };
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                out.push((element(k, kt, what, inner)?, element(v, vt, what, inner)?));
            }
            CqlValue::Map(out)
        }
        (BindValue::Tuple(items), None) => CqlValue::Tuple(
            items
                .iter()
                .map(|i| to_cql_at(i, None, what, inner))
                .collect::<Result<_, BindError>>()?,
        ),
        (BindValue::Tuple(items), Some(T::Tuple(types))) => {
            if items.len() > types.len() {
                return Err(BindError::TypeMismatch(format!(
                    "{} values for {what} of type {}",
                    items.len(),
                    ty.map(ToString::to_string).unwrap_or_default()
                )));
            }
            let mut out = Vec::with_capacity(types.len());
            for (i, t) in types.iter().enumerate() {
                out.push(match items.get(i) {
                    Some(item) => to_cql_at(item, Some(t), what, inner)?,
                    None => None,
                });
            }
            CqlValue::Tuple(out)
        }
        (BindValue::Udt(fields), None) => CqlValue::Udt(
            fields
                .iter()
                .map(|(n, v)| {
                    Ok((
                        n.clone().unwrap_or_default(),
                        to_cql_at(v, None, what, inner)?,
                    ))
                })
                .collect::<Result<_, BindError>>()?,
        ),
        (BindValue::Udt(fields), Some(T::Udt(udt))) => udt_value(fields, udt, what, inner)?,
        (v, Some(t)) => return wrong(v, t),
    };
    Ok(Some(v))
}

fn element(
    value: &BindValue,
    ty: Option<&ColumnType>,
    what: &dyn Display,
    depth: usize,
) -> Result<CqlValue, BindError> {
    to_cql_at(value, ty, what, depth)?
        .ok_or_else(|| BindError::Invalid(format!("NULL element inside the collection of {what}")))
}

fn elements(
    items: &[BindValue],
    ty: Option<&ColumnType>,
    what: &dyn Display,
    depth: usize,
) -> Result<Vec<CqlValue>, BindError> {
    items.iter().map(|i| element(i, ty, what, depth)).collect()
}

fn udt_value(
    fields: &[(Option<String>, BindValue)],
    udt: &UdtType,
    what: &dyn Display,
    depth: usize,
) -> Result<CqlValue, BindError> {
    let named = fields.iter().filter(|(n, _)| n.is_some()).count();
    let mut out: Vec<(String, Option<CqlValue>)> =
        udt.fields.iter().map(|(n, _)| (n.clone(), None)).collect();
    if named == 0 {
        if fields.len() > udt.fields.len() {
            return Err(BindError::TypeMismatch(format!(
                "{} fields for {what} of type {} with {} fields",
                fields.len(),
                udt.name,
                udt.fields.len()
            )));
        }
        for (i, (_, v)) in fields.iter().enumerate() {
            out[i].1 = to_cql_at(v, Some(&udt.fields[i].1), what, depth)?;
        }
    } else if named == fields.len() {
        for (name, v) in fields {
            let name = name.as_deref().unwrap_or_default();
            let i = udt
                .fields
                .iter()
                .position(|(f, _)| name_matches(f, name))
                .ok_or_else(|| {
                    BindError::NoSuchName(format!("type {} has no field {name:?}", udt.name))
                })?;
            out[i].1 = to_cql_at(v, Some(&udt.fields[i].1), what, depth)?;
        }
    } else {
        return Err(BindError::Invalid(format!(
            "UDT value for {what} mixes named and unnamed fields"
        )));
    }
    Ok(CqlValue::Udt(out))
}

/// Writes the bound form of `value` for a slot of type `ty` into `slot`,
/// reusing its buffer. A value the type check refuses leaves `slot` as it
/// was.
pub fn write_bound(
    value: &BindValue,
    ty: Option<&ColumnType>,
    what: &dyn Display,
    slot: &mut Value,
) -> Result<(), BindError> {
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
            .map_err(|e| BindError::Invalid(format!("cannot serialize {what} (now unset): {e}")))?,
        (None, None) => unreachable!("NULL returned above"),
    }
    *slot = Value::Set(buf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ColumnType as T;

    /// `write_bound` into a fresh slot.
    fn wire(v: &BindValue, ty: Option<&ColumnType>, what: &str) -> Result<Value, BindError> {
        let mut slot = Value::Unset;
        write_bound(v, ty, &what, &mut slot).map(|()| slot)
    }

    fn kind(e: BindError) -> &'static str {
        match e {
            BindError::TypeMismatch(_) => "mismatch",
            BindError::Invalid(_) => "invalid",
            BindError::NoSuchName(_) => "name",
            BindError::IndexOutOfRange { .. } => "index",
        }
    }

    #[test]
    fn rebinding_overwrites_the_slot_and_a_refused_value_keeps_the_old_one() {
        let mut slot = Value::Unset;
        let text = BindValue::Text("a longer text value".into());
        write_bound(&text, Some(&T::Text), &"m", &mut slot).unwrap();
        write_bound(
            &BindValue::Text("ab".into()),
            Some(&T::Text),
            &"m",
            &mut slot,
        )
        .unwrap();
        assert_eq!(slot, Value::Set(b"ab".to_vec()));
        assert!(write_bound(&BindValue::Int(1), Some(&T::Text), &"m", &mut slot).is_err());
        assert_eq!(slot, Value::Set(b"ab".to_vec()));
        write_bound(&BindValue::Null, Some(&T::Text), &"m", &mut slot).unwrap();
        assert_eq!(slot, Value::Null);
        write_bound(&BindValue::BigInt(7), Some(&T::BigInt), &"m", &mut slot).unwrap();
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
        assert!(e.to_string().contains("int32") && e.to_string().contains("bigint"));
        assert_eq!(kind(e), "mismatch");
        let e = wire(&BindValue::Text("ż".into()), Some(&T::Ascii), "x").unwrap_err();
        assert_eq!(kind(e), "invalid");
        let e = wire(&BindValue::Uuid([0; 16]), Some(&T::Timeuuid), "x").unwrap_err();
        assert_eq!(kind(e), "invalid");
        let e = wire(&BindValue::Time(-1), Some(&T::Time), "x").unwrap_err();
        assert_eq!(kind(e), "invalid");
        let d = BindValue::Duration {
            months: 1,
            days: -1,
            nanos: 0,
        };
        assert_eq!(kind(wire(&d, None, "x").unwrap_err()), "invalid");
        let list = BindValue::List(vec![BindValue::Int(1)]);
        let e = wire(&list, Some(&T::List(Box::new(T::Text))), "x").unwrap_err();
        assert_eq!(kind(e), "mismatch");
        let e = wire(&list, Some(&T::Int), "x").unwrap_err();
        assert_eq!(kind(e), "mismatch");
        let with_null = BindValue::Set(vec![BindValue::Null]);
        assert_eq!(kind(wire(&with_null, None, "x").unwrap_err()), "invalid");
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
        assert_eq!(kind(wire(&unknown, Some(&udt), "x").unwrap_err()), "name");
        let too_many = BindValue::Tuple(vec![BindValue::Int(1); 4]);
        assert_eq!(
            kind(wire(&too_many, Some(&T::Tuple(vec![T::Int])), "x").unwrap_err()),
            "mismatch"
        );
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let mut deep = BindValue::Int(1);
        for _ in 0..=MAX_VALUE_DEPTH {
            deep = BindValue::List(vec![deep]);
        }
        assert_eq!(kind(wire(&deep, None, "x").unwrap_err()), "invalid");
        let BindValue::List(inner) = deep else {
            unreachable!()
        };
        assert!(wire(&inner[0], None, "x").is_ok());
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
}

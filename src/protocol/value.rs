//! The CQL value codec: every native type, collections, tuples and UDTs,
//! serialized as the v4 protocol carries them inside a `[bytes]` cell.

use std::net::IpAddr;

use super::error::{invalid, ProtocolError};
use super::types::ColumnType;
use super::wire::{len_i32, parse_ip, put_bytes, put_i32, Reader};

/// A non-null CQL value. NULL is `None` wherever a value may be absent.
#[derive(Debug, Clone, PartialEq)]
pub enum CqlValue {
    Ascii(String),
    BigInt(i64),
    Blob(Vec<u8>),
    Boolean(bool),
    Counter(i64),
    /// `unscaled * 10^-scale`, with `unscaled` a two's-complement varint.
    Decimal {
        unscaled: Vec<u8>,
        scale: i32,
    },
    Double(f64),
    Float(f32),
    Int(i32),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
    Text(String),
    /// Big-endian two's complement, minimal length.
    Varint(Vec<u8>),
    Timeuuid([u8; 16]),
    Inet(IpAddr),
    /// Days since the epoch, biased by 2^31 (the wire form).
    Date(u32),
    /// Nanoseconds since midnight.
    Time(i64),
    SmallInt(i16),
    TinyInt(i8),
    Duration {
        months: i32,
        days: i32,
        nanos: i64,
    },
    List(Vec<CqlValue>),
    Set(Vec<CqlValue>),
    Map(Vec<(CqlValue, CqlValue)>),
    Tuple(Vec<Option<CqlValue>>),
    Udt(Vec<(String, Option<CqlValue>)>),
    /// A value of a custom type, kept as its bytes.
    Custom(Vec<u8>),
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;
/// Deepest nesting of collections, tuples and UDTs decoded or bound.
pub const MAX_VALUE_DEPTH: usize = 32;

impl CqlValue {
    /// Serializes the value's cell content (without the `[bytes]` length).
    pub fn serialize(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        match self {
            CqlValue::Ascii(s) | CqlValue::Text(s) => out.extend_from_slice(s.as_bytes()),
            CqlValue::BigInt(v) | CqlValue::Counter(v) | CqlValue::Timestamp(v) => {
                out.extend_from_slice(&v.to_be_bytes())
            }
            CqlValue::Time(v) => out.extend_from_slice(&v.to_be_bytes()),
            CqlValue::Blob(b) | CqlValue::Varint(b) | CqlValue::Custom(b) => {
                out.extend_from_slice(b)
            }
            CqlValue::Boolean(b) => out.push(u8::from(*b)),
            CqlValue::Decimal { unscaled, scale } => {
                put_i32(out, *scale);
                out.extend_from_slice(unscaled);
            }
            CqlValue::Double(v) => out.extend_from_slice(&v.to_be_bytes()),
            CqlValue::Float(v) => out.extend_from_slice(&v.to_be_bytes()),
            CqlValue::Int(v) => out.extend_from_slice(&v.to_be_bytes()),
            CqlValue::Uuid(u) | CqlValue::Timeuuid(u) => out.extend_from_slice(u),
            CqlValue::Inet(ip) => match ip {
                IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
            },
            CqlValue::Date(d) => out.extend_from_slice(&d.to_be_bytes()),
            CqlValue::SmallInt(v) => out.extend_from_slice(&v.to_be_bytes()),
            CqlValue::TinyInt(v) => out.extend_from_slice(&v.to_be_bytes()),
            CqlValue::Duration {
                months,
                days,
                nanos,
            } => {
                put_vint(out, i64::from(*months));
                put_vint(out, i64::from(*days));
                put_vint(out, *nanos);
            }
            CqlValue::List(items) | CqlValue::Set(items) => {
                put_i32(out, len_i32(items.len())?);
                for item in items {
                    put_cell(out, Some(item))?;
                }
            }
            CqlValue::Map(entries) => {
                put_i32(out, len_i32(entries.len())?);
                for (k, v) in entries {
                    put_cell(out, Some(k))?;
                    put_cell(out, Some(v))?;
                }
            }
            CqlValue::Tuple(items) => {
                for item in items {
                    put_cell(out, item.as_ref())?;
                }
            }
            CqlValue::Udt(fields) => {
                for (_, value) in fields {
                    put_cell(out, value.as_ref())?;
                }
            }
        }
        Ok(())
    }

    /// The serialized cell content as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::new();
        self.serialize(&mut out)?;
        Ok(out)
    }

    /// Decodes a cell content of type `ty`.
    pub fn deserialize(ty: &ColumnType, bytes: &[u8]) -> Result<CqlValue, ProtocolError> {
        deserialize_nested(ty, bytes, 0)
    }
}

/// Writes an optional value as a `[bytes]` cell.
pub fn put_cell(out: &mut Vec<u8>, value: Option<&CqlValue>) -> Result<(), ProtocolError> {
    match value {
        None => put_bytes(out, None),
        Some(v) => {
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            v.serialize(out)?;
            let len = len_i32(out.len() - len_at - 4)?;
            out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
    }
}

/// Decodes an optional `[bytes]` cell of type `ty`.
pub fn deserialize_cell(
    ty: &ColumnType,
    cell: Option<&[u8]>,
) -> Result<Option<CqlValue>, ProtocolError> {
    cell.map(|bytes| CqlValue::deserialize(ty, bytes))
        .transpose()
}

fn fixed<const N: usize>(ty: &ColumnType, bytes: &[u8]) -> Result<[u8; N], ProtocolError> {
    bytes
        .try_into()
        .map_err(|_| invalid(format!("{ty} value of {} bytes, expected {N}", bytes.len())))
}

fn deserialize_nested(
    ty: &ColumnType,
    bytes: &[u8],
    depth: usize,
) -> Result<CqlValue, ProtocolError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(invalid("value nesting too deep"));
    }
    Ok(match ty {
        ColumnType::Custom(_) => CqlValue::Custom(bytes.to_vec()),
        ColumnType::Ascii => {
            if !bytes.is_ascii() {
                return Err(invalid("ascii value with non-ASCII bytes"));
            }
            CqlValue::Ascii(String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::BadUtf8)?)
        }
        ColumnType::Text => {
            CqlValue::Text(String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::BadUtf8)?)
        }
        ColumnType::BigInt => CqlValue::BigInt(i64::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::Counter => CqlValue::Counter(i64::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::Timestamp => CqlValue::Timestamp(i64::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::Time => {
            let nanos = i64::from_be_bytes(fixed(ty, bytes)?);
            if !(0..NANOS_PER_DAY).contains(&nanos) {
                return Err(invalid(format!("time value {nanos} out of range")));
            }
            CqlValue::Time(nanos)
        }
        ColumnType::Blob => CqlValue::Blob(bytes.to_vec()),
        ColumnType::Varint => {
            if bytes.is_empty() {
                return Err(invalid("empty varint"));
            }
            CqlValue::Varint(bytes.to_vec())
        }
        ColumnType::Boolean => CqlValue::Boolean(fixed::<1>(ty, bytes)?[0] != 0),
        ColumnType::Decimal => {
            if bytes.len() < 5 {
                return Err(invalid("decimal shorter than 5 bytes"));
            }
            let scale = i32::from_be_bytes(fixed(ty, &bytes[..4])?);
            CqlValue::Decimal {
                unscaled: bytes[4..].to_vec(),
                scale,
            }
        }
        ColumnType::Double => CqlValue::Double(f64::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::Float => CqlValue::Float(f32::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::Int => CqlValue::Int(i32::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::Uuid => CqlValue::Uuid(fixed(ty, bytes)?),
        ColumnType::Timeuuid => {
            let u: [u8; 16] = fixed(ty, bytes)?;
            if u[6] >> 4 != 1 {
                return Err(invalid("timeuuid value is not a version 1 uuid"));
            }
            CqlValue::Timeuuid(u)
        }
        ColumnType::Inet => CqlValue::Inet(parse_ip(bytes)?),
        ColumnType::Date => CqlValue::Date(u32::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::SmallInt => CqlValue::SmallInt(i16::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::TinyInt => CqlValue::TinyInt(i8::from_be_bytes(fixed(ty, bytes)?)),
        ColumnType::Duration => {
            let mut r = Reader::new(bytes);
            let months = read_vint(&mut r)?;
            let days = read_vint(&mut r)?;
            let nanos = read_vint(&mut r)?;
            if !r.is_empty() {
                return Err(invalid("trailing bytes after duration"));
            }
            let months = i32::try_from(months).map_err(|_| invalid("duration months overflow"))?;
            let days = i32::try_from(days).map_err(|_| invalid("duration days overflow"))?;
            let mixed_signs = [i64::from(months), i64::from(days), nanos]
                .iter()
                .any(|v| *v > 0)
                && [i64::from(months), i64::from(days), nanos]
                    .iter()
                    .any(|v| *v < 0);
            if mixed_signs {
                return Err(invalid("duration components of mixed signs"));
            }
            CqlValue::Duration {
                months,
                days,
                nanos,
            }
        }
        ColumnType::List(_) | ColumnType::Set(_) => {
            let items = split_cell(ty, bytes)?
                .into_iter()
                .map(|(t, b)| nested_part(t, b, depth))
                .collect::<Result<Vec<_>, _>>()?;
            match ty {
                ColumnType::List(_) => CqlValue::List(items.into_iter().flatten().collect()),
                _ => CqlValue::Set(items.into_iter().flatten().collect()),
            }
        }
        ColumnType::Map(_, _) => {
            let mut parts = split_cell(ty, bytes)?.into_iter();
            let mut entries = Vec::with_capacity(parts.len() / 2);
            while let (Some((kt, kb)), Some((vt, vb))) = (parts.next(), parts.next()) {
                let key = nested_part(kt, kb, depth)?.ok_or_else(|| invalid("null map key"))?;
                let value = nested_part(vt, vb, depth)?.ok_or_else(|| invalid("null map value"))?;
                entries.push((key, value));
            }
            CqlValue::Map(entries)
        }
        ColumnType::Tuple(_) => CqlValue::Tuple(
            split_cell(ty, bytes)?
                .into_iter()
                .map(|(t, b)| nested_part(t, b, depth))
                .collect::<Result<_, _>>()?,
        ),
        ColumnType::Udt(udt) => CqlValue::Udt(
            udt.fields
                .iter()
                .zip(split_cell(ty, bytes)?)
                .map(|((name, _), (t, b))| Ok((name.clone(), nested_part(t, b, depth)?)))
                .collect::<Result<_, ProtocolError>>()?,
        ),
    })
}

fn nested_part(
    ty: &ColumnType,
    bytes: Option<&[u8]>,
    depth: usize,
) -> Result<Option<CqlValue>, ProtocolError> {
    bytes
        .map(|b| deserialize_nested(ty, b, depth + 1))
        .transpose()
}

/// One nested cell of a compound value: its type and bytes (`None`: NULL).
pub type Part<'a> = (&'a ColumnType, Option<&'a [u8]>);

/// The nested cells of a collection, tuple or UDT value with their types,
/// in order (a map's keys and values alternate); empty for other types.
/// Collections never hold NULLs (an error); a NULL tuple element or UDT
/// field is `None`, and so is one missing at the end (written before the
/// type grew). Every count is checked against the bytes present before
/// anything is allocated for it.
pub fn split_cell<'a>(ty: &'a ColumnType, bytes: &'a [u8]) -> Result<Vec<Part<'a>>, ProtocolError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    match ty {
        ColumnType::List(e) | ColumnType::Set(e) => {
            let n = collection_len(&mut r, 4)?;
            out.reserve(n);
            for _ in 0..n {
                out.push((&**e, Some(non_null(&mut r)?)));
            }
        }
        ColumnType::Map(k, v) => {
            let n = collection_len(&mut r, 8)?;
            out.reserve(2 * n);
            for _ in 0..n {
                out.push((&**k, Some(non_null(&mut r)?)));
                out.push((&**v, Some(non_null(&mut r)?)));
            }
        }
        ColumnType::Tuple(types) => {
            out.reserve(types.len());
            for t in types {
                out.push((t, if r.is_empty() { None } else { r.bytes()? }));
            }
        }
        ColumnType::Udt(udt) => {
            out.reserve(udt.fields.len());
            for (_, t) in &udt.fields {
                out.push((t, if r.is_empty() { None } else { r.bytes()? }));
            }
        }
        _ => return Ok(out),
    }
    expect_end(&r, ty)?;
    Ok(out)
}

fn non_null<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], ProtocolError> {
    r.bytes()?
        .ok_or_else(|| invalid("null element inside a collection"))
}

/// A collection's element count, at most what the bytes left can hold
/// (each element takes at least `min_bytes`).
fn collection_len(r: &mut Reader<'_>, min_bytes: usize) -> Result<usize, ProtocolError> {
    let n = r.i32()?;
    let n = usize::try_from(n).map_err(|_| invalid(format!("negative collection size {n}")))?;
    if n > r.remaining() / min_bytes {
        return Err(invalid(format!(
            "collection of {n} elements in {} bytes",
            r.remaining()
        )));
    }
    Ok(n)
}

fn expect_end(r: &Reader<'_>, ty: &ColumnType) -> Result<(), ProtocolError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "{} trailing bytes after {ty} value",
            r.remaining()
        )))
    }
}

/// Writes a signed vint (zig-zag, then Cassandra's unsigned vint).
pub fn put_vint(out: &mut Vec<u8>, value: i64) {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    put_unsigned_vint(out, zigzag);
}

fn put_unsigned_vint(out: &mut Vec<u8>, value: u64) {
    let magnitude = (value | 1).leading_zeros() as usize;
    let size = (639 - magnitude * 9) >> 6; // 1..=9 bytes
    if size == 1 {
        out.push(value as u8);
        return;
    }
    let extra = size - 1;
    let be = value.to_be_bytes();
    let start = out.len();
    if size == 9 {
        out.push(0xff);
        out.extend_from_slice(&be);
    } else {
        out.extend_from_slice(&be[8 - size..]);
        out[start] |= !(0xffu8 >> extra);
    }
}

/// Reads a signed vint.
pub fn read_vint(r: &mut Reader<'_>) -> Result<i64, ProtocolError> {
    let first = r.u8()?;
    let extra = first.leading_ones() as usize;
    let mut value = u64::from(if extra == 8 {
        0
    } else {
        first & (0xff >> extra)
    });
    for _ in 0..extra {
        value = (value << 8) | u64::from(r.u8()?);
    }
    Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// Minimal two's-complement big-endian bytes of an integer (varint wire form).
pub fn varint_from_i128(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let redundant = (bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

/// The integer a varint holds, when it fits in i128.
pub fn varint_to_i128(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0x00 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(full))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::UdtType;

    fn round_trip(ty: ColumnType, value: CqlValue) {
        let bytes = value.to_bytes().unwrap();
        assert_eq!(CqlValue::deserialize(&ty, &bytes).unwrap(), value, "{ty}");
        for cut in 0..bytes.len() {
            // Any truncation is an error or a different value, never a panic.
            let _ = CqlValue::deserialize(&ty, &bytes[..cut]);
        }
    }

    #[test]
    fn native_types_round_trip() {
        round_trip(ColumnType::Ascii, CqlValue::Ascii("abc".into()));
        round_trip(ColumnType::Text, CqlValue::Text("żółw".into()));
        round_trip(ColumnType::BigInt, CqlValue::BigInt(-5));
        round_trip(ColumnType::Counter, CqlValue::Counter(7));
        round_trip(ColumnType::Blob, CqlValue::Blob(vec![0, 1, 255]));
        round_trip(ColumnType::Boolean, CqlValue::Boolean(true));
        round_trip(
            ColumnType::Decimal,
            CqlValue::Decimal {
                unscaled: varint_from_i128(-12345),
                scale: 2,
            },
        );
        round_trip(ColumnType::Double, CqlValue::Double(1.5));
        round_trip(ColumnType::Float, CqlValue::Float(-2.25));
        round_trip(ColumnType::Int, CqlValue::Int(i32::MIN));
        round_trip(
            ColumnType::Timestamp,
            CqlValue::Timestamp(1_700_000_000_000),
        );
        round_trip(ColumnType::Uuid, CqlValue::Uuid([7; 16]));
        let mut timeuuid = [0u8; 16];
        timeuuid[6] = 0x11;
        round_trip(ColumnType::Timeuuid, CqlValue::Timeuuid(timeuuid));
        round_trip(
            ColumnType::Varint,
            CqlValue::Varint(varint_from_i128(1 << 70)),
        );
        round_trip(ColumnType::Inet, CqlValue::Inet("::1".parse().unwrap()));
        round_trip(
            ColumnType::Inet,
            CqlValue::Inet("10.1.2.3".parse().unwrap()),
        );
        round_trip(ColumnType::Date, CqlValue::Date(1 << 31));
        round_trip(ColumnType::Time, CqlValue::Time(NANOS_PER_DAY - 1));
        round_trip(ColumnType::SmallInt, CqlValue::SmallInt(-300));
        round_trip(ColumnType::TinyInt, CqlValue::TinyInt(-3));
        for (months, days, nanos) in [(0, 0, 0), (1, 2, 3), (-1, -2, -3), (i32::MAX, 0, i64::MAX)] {
            round_trip(
                ColumnType::Duration,
                CqlValue::Duration {
                    months,
                    days,
                    nanos,
                },
            );
        }
    }

    #[test]
    fn collections_tuples_and_udts_round_trip() {
        let list = ColumnType::List(Box::new(ColumnType::Int));
        round_trip(
            list.clone(),
            CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(2)]),
        );
        let map = ColumnType::Map(Box::new(ColumnType::Text), Box::new(list));
        round_trip(
            map,
            CqlValue::Map(vec![(
                CqlValue::Text("a".into()),
                CqlValue::List(vec![CqlValue::Int(3)]),
            )]),
        );
        let tuple = ColumnType::Tuple(vec![ColumnType::Int, ColumnType::Text]);
        round_trip(tuple, CqlValue::Tuple(vec![Some(CqlValue::Int(1)), None]));
        let udt = ColumnType::Udt(Box::new(UdtType {
            keyspace: "ks".into(),
            name: "u".into(),
            fields: vec![
                ("a".into(), ColumnType::Int),
                ("b".into(), ColumnType::Text),
            ],
        }));
        round_trip(
            udt,
            CqlValue::Udt(vec![
                ("a".into(), Some(CqlValue::Int(5))),
                ("b".into(), Some(CqlValue::Text("x".into()))),
            ]),
        );
    }

    #[test]
    fn known_encodings() {
        // Duration 1mo2d3ns: zig-zag vints 2, 4, 6.
        let d = CqlValue::Duration {
            months: 1,
            days: 2,
            nanos: 3,
        };
        assert_eq!(d.to_bytes().unwrap(), vec![2, 4, 6]);
        let mut out = Vec::new();
        put_vint(&mut out, 1000); // zig-zag 2000 = 0x7d0 -> two bytes 0x87 0xd0
        assert_eq!(out, vec![0x87, 0xd0]);
        assert_eq!(varint_from_i128(128), vec![0x00, 0x80]);
        assert_eq!(varint_from_i128(-129), vec![0xff, 0x7f]);
        assert_eq!(varint_from_i128(0), vec![0x00]);
        assert_eq!(varint_to_i128(&[0xff, 0x7f]), Some(-129));
    }

    #[test]
    fn malformed_values_are_rejected() {
        assert!(CqlValue::deserialize(&ColumnType::Int, &[0, 0, 1]).is_err());
        assert!(CqlValue::deserialize(&ColumnType::Text, &[0xff]).is_err());
        assert!(CqlValue::deserialize(&ColumnType::Ascii, "é".as_bytes()).is_err());
        assert!(CqlValue::deserialize(&ColumnType::Time, &(-1i64).to_be_bytes()).is_err());
        let list = ColumnType::List(Box::new(ColumnType::Int));
        assert!(CqlValue::deserialize(&list, &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(CqlValue::deserialize(&list, &[0xff, 0xff, 0xff, 0xff]).is_err());
    }
}

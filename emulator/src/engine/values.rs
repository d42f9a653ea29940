//! Values inside the engine: CQL terms (literals, collections, bind markers,
//! functions) evaluated to serialized cells of a column type, and an
//! order-preserving byte encoding used to sort and compare them.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use cql_parser::ast::{Literal, Term};
use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::value::{varint_from_i128, varint_to_i128, CqlValue};
use scylla_shard::protocol::Value;

use super::error::{invalid, EngineError};

/// A term's value once evaluated: set, null, or v4 "unset".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Set(Vec<u8>),
    Null,
    Unset,
}

/// Bound values of a request, indexed by bind marker position.
pub struct Binds<'a> {
    pub values: &'a [Value],
}

impl Binds<'_> {
    fn get(&self, index: usize) -> Result<&Value, EngineError> {
        self.values.get(index).ok_or_else(|| {
            invalid(format!(
                "There were {} markers(?) in CQL but {} bound variables",
                index + 1,
                self.values.len()
            ))
        })
    }
}

/// Evaluates `term` as a value of type `ty`.
pub fn eval(term: &Term, ty: &ColumnType, binds: &Binds<'_>) -> Result<Cell, EngineError> {
    match term {
        Term::BindMarker(marker) => {
            let value = binds.get(marker.index)?;
            match value {
                Value::Set(bytes) => {
                    let decoded = CqlValue::deserialize(ty, bytes).map_err(|e| {
                        invalid(format!("Exception while binding column of type {ty}: {e}"))
                    })?;
                    if !has_unordered_parts(ty) {
                        return Ok(Cell::Set(bytes.clone()));
                    }
                    // Bound sets and maps are stored the way Scylla keeps
                    // them: sorted by the element (key) type, deduplicated.
                    let normalized = normalize(decoded, ty);
                    Ok(Cell::Set(
                        normalized.to_bytes().map_err(|e| invalid(e.to_string()))?,
                    ))
                }
                Value::Null => Ok(Cell::Null),
                Value::Unset => Ok(Cell::Unset),
            }
        }
        Term::Literal(Literal::Null) => Ok(Cell::Null),
        Term::TypeCast { term, .. } => eval(term, ty, binds),
        _ => match to_value(term, ty, binds)? {
            Some(v) => Ok(Cell::Set(v.to_bytes().map_err(|e| invalid(e.to_string()))?)),
            None => Ok(Cell::Null),
        },
    }
}

/// Evaluates a term into a typed value (None = null).
pub fn to_value(
    term: &Term,
    ty: &ColumnType,
    binds: &Binds<'_>,
) -> Result<Option<CqlValue>, EngineError> {
    let mismatch = || invalid(format!("Invalid value {term} for type {ty}"));
    Ok(Some(match (term, ty) {
        (Term::BindMarker(_), _) => {
            return match eval(term, ty, binds)? {
                Cell::Set(bytes) => Ok(Some(
                    CqlValue::deserialize(ty, &bytes).map_err(|e| invalid(e.to_string()))?,
                )),
                _ => Ok(None),
            }
        }
        (Term::Literal(Literal::Null), _) => return Ok(None),
        (Term::TypeCast { term, .. }, _) => return to_value(term, ty, binds),
        (Term::Literal(lit), _) => literal(lit, ty).ok_or_else(mismatch)?,
        (Term::List(items), ColumnType::List(e)) => CqlValue::List(elements(items, e, binds)?),
        (Term::List(items) | Term::Set(items), ColumnType::Set(e)) => {
            let mut values = elements(items, e, binds)?;
            sort_dedup(&mut values, e);
            CqlValue::Set(values)
        }
        (Term::EmptyBraces, ColumnType::Set(_)) => CqlValue::Set(vec![]),
        (Term::EmptyBraces, ColumnType::Map(..)) => CqlValue::Map(vec![]),
        (Term::EmptyBraces, ColumnType::List(_)) => CqlValue::List(vec![]),
        (Term::Map(pairs), ColumnType::Map(k, v)) => {
            let mut entries = Vec::with_capacity(pairs.len());
            for (key, value) in pairs {
                let key = to_value(key, k, binds)?
                    .ok_or_else(|| invalid("null is not supported inside collections"))?;
                let value = to_value(value, v, binds)?
                    .ok_or_else(|| invalid("null is not supported inside collections"))?;
                entries.push((key, value));
            }
            sort_dedup_entries(&mut entries, k);
            CqlValue::Map(entries)
        }
        (Term::Tuple(items), ColumnType::Tuple(types)) => {
            if items.len() > types.len() {
                return Err(mismatch());
            }
            let mut values = Vec::with_capacity(types.len());
            for (i, t) in types.iter().enumerate() {
                values.push(match items.get(i) {
                    Some(item) => to_value(item, t, binds)?,
                    None => None,
                });
            }
            CqlValue::Tuple(values)
        }
        (Term::Udt(fields), ColumnType::Udt(udt)) => {
            for (name, _) in fields {
                if !udt.fields.iter().any(|(f, _)| f == name) {
                    return Err(invalid(format!(
                        "Unknown field '{name}' in value of user defined type {}",
                        udt.name
                    )));
                }
            }
            let mut values = Vec::with_capacity(udt.fields.len());
            for (name, field_ty) in &udt.fields {
                let value = match fields.iter().find(|(f, _)| f == name) {
                    Some((_, t)) => to_value(t, field_ty, binds)?,
                    None => None,
                };
                values.push((name.clone(), value));
            }
            CqlValue::Udt(values)
        }
        (Term::EmptyBraces, ColumnType::Udt(udt)) => {
            CqlValue::Udt(udt.fields.iter().map(|(n, _)| (n.clone(), None)).collect())
        }
        (Term::Map(pairs), ColumnType::Udt(_)) => {
            // `{a: 1}` with bare identifiers may reach us as a map of strings.
            let fields = pairs
                .iter()
                .map(|(k, v)| match k {
                    Term::Literal(Literal::String(s)) => Ok((s.clone(), v.clone())),
                    _ => Err(mismatch()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return to_value(&Term::Udt(fields), ty, binds);
        }
        (Term::FunctionCall { name, args }, _) => {
            return function(&name.name, args, ty, binds);
        }
        _ => return Err(mismatch()),
    }))
}

fn elements(
    items: &[Term],
    ty: &ColumnType,
    binds: &Binds<'_>,
) -> Result<Vec<CqlValue>, EngineError> {
    items
        .iter()
        .map(|t| {
            to_value(t, ty, binds)?
                .ok_or_else(|| invalid("null is not supported inside collections"))
        })
        .collect()
}

pub fn sort_dedup(values: &mut Vec<CqlValue>, ty: &ColumnType) {
    values.sort_by(|a, b| compare_values(a, b, ty));
    values.dedup_by(|a, b| compare_values(a, b, ty).is_eq());
}

/// Sorts map entries by key and drops later duplicates of a key.
pub fn sort_dedup_entries(entries: &mut Vec<(CqlValue, CqlValue)>, key: &ColumnType) {
    entries.sort_by(|a, b| compare_values(&a.0, &b.0, key));
    entries.dedup_by(|a, b| compare_values(&a.0, &b.0, key).is_eq());
}

/// Whether a value of `ty` may contain a set or a map, whose element order
/// the server fixes.
fn has_unordered_parts(ty: &ColumnType) -> bool {
    match ty {
        ColumnType::Set(_) | ColumnType::Map(..) => true,
        ColumnType::List(e) => has_unordered_parts(e),
        ColumnType::Tuple(ts) => ts.iter().any(has_unordered_parts),
        ColumnType::Udt(u) => u.fields.iter().any(|(_, t)| has_unordered_parts(t)),
        _ => false,
    }
}

/// The stored form of a value: set elements and map keys sorted by their
/// type's order and deduplicated, at every nesting level (frozen and
/// nested collections included).
pub fn normalize(value: CqlValue, ty: &ColumnType) -> CqlValue {
    match (value, ty) {
        (CqlValue::List(items), ColumnType::List(e)) => {
            CqlValue::List(items.into_iter().map(|v| normalize(v, e)).collect())
        }
        (CqlValue::Set(items), ColumnType::Set(e)) => {
            let mut items: Vec<CqlValue> = items.into_iter().map(|v| normalize(v, e)).collect();
            sort_dedup(&mut items, e);
            CqlValue::Set(items)
        }
        (CqlValue::Map(entries), ColumnType::Map(k, v)) => {
            let mut entries: Vec<(CqlValue, CqlValue)> = entries
                .into_iter()
                .map(|(key, value)| (normalize(key, k), normalize(value, v)))
                .collect();
            sort_dedup_entries(&mut entries, k);
            CqlValue::Map(entries)
        }
        (CqlValue::Tuple(items), ColumnType::Tuple(types)) => CqlValue::Tuple(
            items
                .into_iter()
                .zip(types)
                .map(|(v, t)| v.map(|v| normalize(v, t)))
                .collect(),
        ),
        (CqlValue::Udt(fields), ColumnType::Udt(udt)) => CqlValue::Udt(
            fields
                .into_iter()
                .zip(&udt.fields)
                .map(|((name, v), (_, t))| (name, v.map(|v| normalize(v, t))))
                .collect(),
        ),
        (other, _) => other,
    }
}

/// Whether serialized `bytes` of `ty` hold an empty list, set or map.
pub fn is_empty_collection(ty: &ColumnType, bytes: &[u8]) -> bool {
    matches!(
        ty,
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..)
    ) && bytes.get(..4) == Some(&[0u8; 4][..])
}

fn function(
    name: &str,
    args: &[Term],
    ty: &ColumnType,
    binds: &Binds<'_>,
) -> Result<Option<CqlValue>, EngineError> {
    let now_ms = now_micros() / 1000;
    let value = match (name, ty) {
        ("now" | "currenttimeuuid", ColumnType::Timeuuid | ColumnType::Uuid) => {
            CqlValue::Timeuuid(timeuuid(now_micros()))
        }
        ("uuid", ColumnType::Uuid) => CqlValue::Uuid(random_uuid()),
        ("currenttimestamp", ColumnType::Timestamp) => CqlValue::Timestamp(now_ms),
        ("currentdate", ColumnType::Date) => {
            CqlValue::Date(((now_ms.div_euclid(86_400_000)) + (1i64 << 31)) as u32)
        }
        ("currenttime", ColumnType::Time) => {
            CqlValue::Time(now_ms.rem_euclid(86_400_000) * 1_000_000)
        }
        ("totimestamp", ColumnType::Timestamp) if args.len() == 1 => {
            match to_value(&args[0], &ColumnType::Timeuuid, binds)? {
                Some(CqlValue::Timeuuid(u)) => CqlValue::Timestamp(timeuuid_micros(&u) / 1000),
                _ => return Ok(None),
            }
        }
        ("fromjson", _) if args.len() == 1 => match to_value(&args[0], &ColumnType::Text, binds)? {
            Some(CqlValue::Text(text)) => {
                return super::json::from_json(ty, &super::json::parse(&text)?)
            }
            _ => return Ok(None),
        },
        ("textasblob", ColumnType::Blob) if args.len() == 1 => {
            match to_value(&args[0], &ColumnType::Text, binds)? {
                Some(CqlValue::Text(s)) => CqlValue::Blob(s.into_bytes()),
                _ => return Ok(None),
            }
        }
        ("intasblob", ColumnType::Blob) if args.len() == 1 => {
            match to_value(&args[0], &ColumnType::Int, binds)? {
                Some(v) => CqlValue::Blob(v.to_bytes().map_err(|e| invalid(e.to_string()))?),
                None => return Ok(None),
            }
        }
        _ => {
            return Err(invalid(format!(
                "Function {name} is not supported here (expected a value of type {ty})"
            )))
        }
    };
    Ok(Some(value))
}

/// How far the coordinator's write clock runs ahead of the real one
/// (`--write-clock-offset-ms`), so tests can tell a client-side timestamp
/// from the server's.
static WRITE_CLOCK_OFFSET_US: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

pub fn set_write_clock_offset_ms(ms: i64) {
    WRITE_CLOCK_OFFSET_US.store(
        ms.saturating_mul(1000),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The timestamp of a write that carries none.
pub fn server_write_timestamp() -> i64 {
    now_micros().saturating_add(WRITE_CLOCK_OFFSET_US.load(std::sync::atomic::Ordering::Relaxed))
}

/// Microseconds since the epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_i64(now_micros());
    h.finish()
}

pub fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&random_u64().to_be_bytes());
    u[8..].copy_from_slice(&random_u64().to_be_bytes());
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// 100ns intervals between 1582-10-15 and 1970-01-01.
const UUID_EPOCH_OFFSET: i64 = 0x01b2_1dd2_1381_4000;

/// A version-1 uuid for a time in microseconds since the epoch.
pub fn timeuuid(micros: i64) -> [u8; 16] {
    let ts = (micros * 10 + UUID_EPOCH_OFFSET) as u64;
    let mut u = [0u8; 16];
    u[0..4].copy_from_slice(&(ts as u32).to_be_bytes());
    u[4..6].copy_from_slice(&((ts >> 32) as u16).to_be_bytes());
    u[6..8].copy_from_slice(&((((ts >> 48) as u16) & 0x0fff) | 0x1000).to_be_bytes());
    u[8..].copy_from_slice(&random_u64().to_be_bytes());
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

fn timeuuid_timestamp(u: &[u8; 16]) -> u64 {
    let low = u32::from_be_bytes([u[0], u[1], u[2], u[3]]) as u64;
    let mid = u16::from_be_bytes([u[4], u[5]]) as u64;
    let high = (u16::from_be_bytes([u[6], u[7]]) & 0x0fff) as u64;
    (high << 48) | (mid << 32) | low
}

pub fn timeuuid_micros(u: &[u8; 16]) -> i64 {
    (timeuuid_timestamp(u) as i64 - UUID_EPOCH_OFFSET) / 10
}

/// Parses `text` as a value of a native type written the way CQL writes it
/// (`'...'` contents for strings, dates and uuids, digits for numbers,
/// `0x..` for blobs, `1h30m` for durations); None when it does not fit.
pub fn literal_from_text(ty: &ColumnType, text: &str) -> Option<CqlValue> {
    let text = text.trim();
    let lit = match ty {
        ColumnType::Text
        | ColumnType::Ascii
        | ColumnType::Timestamp
        | ColumnType::Date
        | ColumnType::Time
        | ColumnType::Inet
        | ColumnType::Uuid
        | ColumnType::Timeuuid => Literal::String(text.to_owned()),
        ColumnType::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" => Literal::Boolean(true),
            "false" => Literal::Boolean(false),
            _ => return None,
        },
        ColumnType::Blob => {
            let hex = text
                .strip_prefix("0x")
                .or_else(|| text.strip_prefix("0X"))?;
            if hex.len() % 2 != 0 {
                return None;
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            Literal::Blob(bytes)
        }
        ColumnType::Duration => match cql_parser::parse_term(text).ok()? {
            Term::Literal(lit @ Literal::Duration(_)) => lit,
            _ => return None,
        },
        _ if text.contains(['.', 'e', 'E'])
            || parse_float(text).is_some_and(|f| !f.is_finite()) =>
        {
            Literal::Float(text.to_owned())
        }
        _ => Literal::Integer(text.strip_prefix('+').unwrap_or(text).to_owned()),
    };
    literal(&lit, ty)
}

/// Converts a literal to a value of `ty`, or None when it does not fit.
fn literal(lit: &Literal, ty: &ColumnType) -> Option<CqlValue> {
    Some(match (lit, ty) {
        (Literal::String(s), ColumnType::Text) => CqlValue::Text(s.clone()),
        (Literal::String(s), ColumnType::Ascii) if s.is_ascii() => CqlValue::Ascii(s.clone()),
        (Literal::String(s), ColumnType::Timestamp) => CqlValue::Timestamp(parse_timestamp(s)?),
        (Literal::String(s), ColumnType::Date) => CqlValue::Date(parse_date(s)?),
        (Literal::String(s), ColumnType::Time) => CqlValue::Time(parse_time(s)?),
        (Literal::String(s), ColumnType::Inet) => CqlValue::Inet(s.trim().parse::<IpAddr>().ok()?),
        (Literal::String(s), ColumnType::Uuid) => CqlValue::Uuid(parse_uuid(s)?),
        (Literal::String(s), ColumnType::Timeuuid) => CqlValue::Timeuuid(parse_uuid(s)?),
        (Literal::Integer(t), _) => integer(t, ty)?,
        (Literal::Float(t), ColumnType::Double) => CqlValue::Double(parse_float(t)?),
        (Literal::Float(t), ColumnType::Float) => CqlValue::Float(parse_float(t)? as f32),
        (Literal::Float(t), ColumnType::Decimal) => decimal(t)?,
        (Literal::Boolean(b), ColumnType::Boolean) => CqlValue::Boolean(*b),
        (Literal::Uuid(u), ColumnType::Uuid) => CqlValue::Uuid(*u),
        (Literal::Uuid(u), ColumnType::Timeuuid) if u[6] >> 4 == 1 => CqlValue::Timeuuid(*u),
        (Literal::Blob(b), ColumnType::Blob) => CqlValue::Blob(b.clone()),
        (Literal::Blob(b), ColumnType::Custom(_)) => CqlValue::Custom(b.clone()),
        (Literal::Duration(d), ColumnType::Duration) => CqlValue::Duration {
            months: d.months,
            days: d.days,
            nanos: d.nanoseconds,
        },
        _ => return None,
    })
}

fn parse_float(t: &str) -> Option<f64> {
    match t {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "infinity" => Some(f64::INFINITY),
        "-Infinity" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

fn integer(text: &str, ty: &ColumnType) -> Option<CqlValue> {
    let v: Option<i128> = text.parse().ok();
    Some(match ty {
        ColumnType::TinyInt => CqlValue::TinyInt(i8::try_from(v?).ok()?),
        ColumnType::SmallInt => CqlValue::SmallInt(i16::try_from(v?).ok()?),
        ColumnType::Int => CqlValue::Int(i32::try_from(v?).ok()?),
        ColumnType::BigInt => CqlValue::BigInt(i64::try_from(v?).ok()?),
        ColumnType::Counter => CqlValue::Counter(i64::try_from(v?).ok()?),
        ColumnType::Timestamp => CqlValue::Timestamp(i64::try_from(v?).ok()?),
        ColumnType::Time => CqlValue::Time(i64::try_from(v?).ok()?),
        ColumnType::Date => CqlValue::Date(u32::try_from(v?).ok()?),
        ColumnType::Varint => CqlValue::Varint(big_integer(text)?),
        ColumnType::Decimal => decimal(text)?,
        ColumnType::Double => CqlValue::Double(text.parse().ok()?),
        ColumnType::Float => CqlValue::Float(text.parse().ok()?),
        _ => return None,
    })
}

/// Two's-complement bytes of a decimal integer of any size.
fn big_integer(text: &str) -> Option<Vec<u8>> {
    if let Ok(v) = text.parse::<i128>() {
        return Some(varint_from_i128(v));
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Magnitude as big-endian bytes, by repeated multiply-add.
    let mut magnitude: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in magnitude.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            magnitude.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    magnitude.insert(0, 0); // room for the sign bit
    if negative {
        // Two's complement: invert and add one.
        for b in magnitude.iter_mut() {
            *b = !*b;
        }
        for b in magnitude.iter_mut().rev() {
            let (v, overflow) = b.overflowing_add(1);
            *b = v;
            if !overflow {
                break;
            }
        }
    }
    // Strip redundant sign bytes.
    while magnitude.len() > 1
        && ((magnitude[0] == 0 && magnitude[1] & 0x80 == 0)
            || (magnitude[0] == 0xff && magnitude[1] & 0x80 != 0))
    {
        magnitude.remove(0);
    }
    Some(magnitude)
}

fn decimal(text: &str) -> Option<CqlValue> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    let scale = frac_part.len() as i32 - exponent;
    Some(CqlValue::Decimal {
        unscaled: big_integer(&digits)?,
        scale,
    })
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut u = [0u8; 16];
    for (i, byte) in u.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(u)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_ymd(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y.parse().ok()?, m, d))
}

fn parse_date(s: &str) -> Option<u32> {
    let days = parse_ymd(s.trim())?;
    u32::try_from(days + (1i64 << 31)).ok()
}

/// `HH:MM[:SS[.fffffffff]]` as nanoseconds since midnight.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = hms.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec: i64 = parts.next().map(str::parse).transpose().ok()?.unwrap_or(0);
    if parts.next().is_some()
        || !(0..24).contains(&h)
        || !(0..60).contains(&m)
        || !(0..60).contains(&sec)
    {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + nanos)
}

/// `yyyy-mm-dd[( |T)HH:MM[:SS[.fff]]][Z|(+|-)HHMM|(+|-)HH:MM]` as epoch millis.
fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let (date, rest) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let days = parse_ymd(date)?;
    let (time, offset_minutes) = split_zone(rest)?;
    let nanos = if time.is_empty() {
        0
    } else {
        parse_time(time)?
    };
    Some(days * 86_400_000 + nanos / 1_000_000 - offset_minutes * 60_000)
}

fn split_zone(rest: &str) -> Option<(&str, i64)> {
    if let Some(t) = rest.strip_suffix('Z') {
        return Some((t.trim(), 0));
    }
    if let Some(i) = rest.rfind(['+', '-']) {
        let (time, zone) = (&rest[..i], &rest[i..]);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() == 4 {
            let h: i64 = digits[..2].parse().ok()?;
            let m: i64 = digits[2..].parse().ok()?;
            return Some((time.trim(), sign * (h * 60 + m)));
        }
    }
    Some((rest, 0))
}

/// Appends the order-preserving encoding of a serialized value: comparing
/// two encodings bytewise compares the values as CQL orders them. Every
/// encoding is prefix-free, so components can be concatenated and a
/// descending component is encoded by inverting its bytes.
pub fn sort_key(ty: &ColumnType, bytes: &[u8], out: &mut Vec<u8>) {
    let flip_sign = |out: &mut Vec<u8>, b: &[u8]| {
        let start = out.len();
        out.extend_from_slice(b);
        if let Some(first) = out.get_mut(start) {
            *first ^= 0x80;
        }
    };
    match ty {
        ColumnType::TinyInt
        | ColumnType::SmallInt
        | ColumnType::Int
        | ColumnType::BigInt
        | ColumnType::Counter
        | ColumnType::Timestamp
        | ColumnType::Time
            if ty.fixed_width() == Some(bytes.len()) =>
        {
            flip_sign(out, bytes)
        }
        ColumnType::Date | ColumnType::Boolean if ty.fixed_width() == Some(bytes.len()) => {
            out.extend_from_slice(bytes)
        }
        ColumnType::Float | ColumnType::Double if ty.fixed_width() == Some(bytes.len()) => {
            if bytes[0] & 0x80 != 0 {
                out.extend(bytes.iter().map(|b| !b));
            } else {
                flip_sign(out, bytes);
            }
        }
        ColumnType::Timeuuid if bytes.len() == 16 => {
            let u: [u8; 16] = bytes.try_into().unwrap_or([0; 16]);
            out.extend_from_slice(&timeuuid_timestamp(&u).to_be_bytes());
            out.extend(bytes[8..].iter().map(|b| b ^ 0x80));
        }
        ColumnType::Uuid if bytes.len() == 16 => {
            let version = bytes[6] >> 4;
            out.push(version);
            let u: [u8; 16] = bytes.try_into().unwrap_or([0; 16]);
            let ts = if version == 1 {
                timeuuid_timestamp(&u)
            } else {
                0
            };
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(bytes);
        }
        ColumnType::Varint => varint_key(bytes, out),
        ColumnType::Decimal if bytes.len() >= 4 => {
            let scale = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let unscaled = varint_to_i128(&bytes[4..]).map(|v| v as f64).unwrap_or(0.0);
            let approx = unscaled * 10f64.powi(-scale);
            sort_key(&ColumnType::Double, &approx.to_be_bytes(), out);
            escaped(bytes, out);
        }
        ColumnType::List(e) | ColumnType::Set(e) => {
            if let Ok(CqlValue::List(items) | CqlValue::Set(items)) =
                CqlValue::deserialize(ty, bytes)
            {
                for item in items {
                    out.push(1);
                    sort_key(e, &item.to_bytes().unwrap_or_default(), out);
                }
            }
            out.push(0);
        }
        ColumnType::Map(k, v) => {
            if let Ok(CqlValue::Map(entries)) = CqlValue::deserialize(ty, bytes) {
                for (key, value) in entries {
                    out.push(1);
                    sort_key(k, &key.to_bytes().unwrap_or_default(), out);
                    sort_key(v, &value.to_bytes().unwrap_or_default(), out);
                }
            }
            out.push(0);
        }
        ColumnType::Tuple(_) | ColumnType::Udt(_) => {
            let types: Vec<&ColumnType> = match ty {
                ColumnType::Tuple(ts) => ts.iter().collect(),
                ColumnType::Udt(u) => u.fields.iter().map(|(_, t)| t).collect(),
                _ => unreachable!(),
            };
            let mut r = scylla_shard::protocol::wire::Reader::new(bytes);
            for t in types {
                match r.bytes() {
                    Ok(Some(b)) => {
                        out.push(2);
                        sort_key(t, b, out);
                    }
                    _ => out.push(1),
                }
            }
            out.push(0);
        }
        _ => escaped(bytes, out),
    }
}

/// Variable-length bytes: 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x00.
fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Varints: sign, then length (larger magnitude first for positives), then
/// the two's-complement bytes, which order correctly at equal length.
fn varint_key(bytes: &[u8], out: &mut Vec<u8>) {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let len = bytes.len() as u32;
    out.push(u8::from(!negative));
    let len_key = if negative { !len } else { len };
    out.extend_from_slice(&len_key.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Compares two serialized values of the same type in CQL order.
pub fn compare_bytes(a: &[u8], b: &[u8], ty: &ColumnType) -> std::cmp::Ordering {
    let (mut ka, mut kb) = (Vec::new(), Vec::new());
    sort_key(ty, a, &mut ka);
    sort_key(ty, b, &mut kb);
    ka.cmp(&kb)
}

pub fn compare_values(a: &CqlValue, b: &CqlValue, ty: &ColumnType) -> std::cmp::Ordering {
    compare_bytes(
        &a.to_bytes().unwrap_or_default(),
        &b.to_bytes().unwrap_or_default(),
        ty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ty: &ColumnType, v: CqlValue) -> Vec<u8> {
        let mut out = Vec::new();
        sort_key(ty, &v.to_bytes().unwrap(), &mut out);
        out
    }

    #[test]
    fn sort_keys_follow_cql_order() {
        let ints = [i32::MIN, -5, 0, 3, i32::MAX].map(|i| key(&ColumnType::Int, CqlValue::Int(i)));
        assert!(ints.windows(2).all(|w| w[0] < w[1]));
        let doubles = [f64::NEG_INFINITY, -2.5, -0.1, 0.0, 1.0, 1e300]
            .map(|d| key(&ColumnType::Double, CqlValue::Double(d)));
        assert!(doubles.windows(2).all(|w| w[0] < w[1]));
        let texts =
            ["", "a", "a\0", "ab", "b"].map(|s| key(&ColumnType::Text, CqlValue::Text(s.into())));
        assert!(texts.windows(2).all(|w| w[0] < w[1]));
        let varints = [-70000i128, -129, -1, 0, 1, 128, 1 << 80]
            .map(|v| key(&ColumnType::Varint, CqlValue::Varint(varint_from_i128(v))));
        assert!(varints.windows(2).all(|w| w[0] < w[1]));
        let early = timeuuid(1_000);
        let late = timeuuid(2_000_000);
        assert!(
            key(&ColumnType::Timeuuid, CqlValue::Timeuuid(early))
                < key(&ColumnType::Timeuuid, CqlValue::Timeuuid(late))
        );
    }

    #[test]
    fn literals_convert_by_type() {
        assert_eq!(
            literal(&Literal::Integer("300".into()), &ColumnType::TinyInt),
            None
        );
        assert_eq!(
            literal(&Literal::Integer("-3".into()), &ColumnType::BigInt),
            Some(CqlValue::BigInt(-3))
        );
        assert_eq!(big_integer("-129"), Some(vec![0xff, 0x7f]));
        assert_eq!(
            big_integer("340282366920938463463374607431768211456"),
            Some([vec![0x01], vec![0; 16]].concat())
        );
        assert_eq!(parse_date("1970-01-02"), Some((1u32 << 31) + 1));
        assert_eq!(parse_time("01:00:00.5"), Some(3_600_500_000_000));
        assert_eq!(
            parse_timestamp("1970-01-01 00:00:01+0100"),
            Some(1000 - 3_600_000)
        );
        assert_eq!(
            parse_timestamp("2011-02-03T04:05:00Z"),
            Some(1_296_705_900_000)
        );
        assert!(matches!(
            decimal("1.25"),
            Some(CqlValue::Decimal { scale: 2, .. })
        ));
    }
}

//! CQL values as JSON, both ways, for the JSON-lines front end.
//!
//! Out: text and ascii are strings; tinyint, smallint, int, bigint and
//! counter are numbers (exact: a bigint is written with all its digits);
//! varint and decimal are strings of their exact decimal form; float and
//! double are numbers ("NaN", "Infinity", "-Infinity" as strings); boolean
//! is true/false; blob (and a custom type) is "0x" and hex; uuid and
//! timeuuid are the 8-4-4-4-12 form; inet its address; timestamp an ISO
//! 8601 UTC string with milliseconds ("2024-05-06T07:08:09.010Z"); date
//! "YYYY-MM-DD"; time "HH:MM:SS.nnnnnnnnn"; duration its CQL form
//! ("1y2mo3d4h5m6s7ms8us9ns", "-3d", "0s"); list, set and tuple are arrays;
//! a UDT an object of its fields; a map an object (keys that are not text
//! are written as their JSON text, as Cassandra's toJson does); null null.
//!
//! In (bind values, typed by the prepared statement's markers): the same
//! forms, and numbers where a string form is written (a timestamp in
//! milliseconds, a date in days since the epoch, a time in nanoseconds,
//! integers as strings).

use std::net::IpAddr;

use scylla_shard::protocol::value::{varint_from_i128, varint_to_i128};
use scylla_shard::protocol::{ColumnType, CqlValue};
use serde_json::{Map, Number, Value as Json};

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;
/// `date` on the wire: days since the epoch plus 2^31.
const DATE_BIAS: i64 = 1 << 31;

// ---------------------------------------------------------------------
// Out
// ---------------------------------------------------------------------

pub fn to_json(value: &CqlValue) -> Json {
    match value {
        CqlValue::Ascii(s) | CqlValue::Text(s) => Json::String(s.clone()),
        CqlValue::TinyInt(v) => Json::from(*v),
        CqlValue::SmallInt(v) => Json::from(*v),
        CqlValue::Int(v) => Json::from(*v),
        CqlValue::BigInt(v) | CqlValue::Counter(v) => Json::from(*v),
        CqlValue::Varint(bytes) => Json::String(varint_text(bytes)),
        CqlValue::Decimal { unscaled, scale } => Json::String(decimal_text(unscaled, *scale)),
        CqlValue::Float(v) => float(f64::from(*v)),
        CqlValue::Double(v) => float(*v),
        CqlValue::Boolean(v) => Json::Bool(*v),
        CqlValue::Blob(bytes) | CqlValue::Custom(bytes) => Json::String(hex(bytes)),
        CqlValue::Uuid(u) | CqlValue::Timeuuid(u) => Json::String(uuid_text(u)),
        CqlValue::Inet(ip) => Json::String(ip.to_string()),
        CqlValue::Timestamp(ms) => Json::String(timestamp_text(*ms)),
        CqlValue::Date(d) => Json::String(date_text(i64::from(*d) - DATE_BIAS)),
        CqlValue::Time(nanos) => Json::String(time_text(*nanos)),
        CqlValue::Duration {
            months,
            days,
            nanos,
        } => Json::String(duration_text(*months, *days, *nanos)),
        CqlValue::List(items) | CqlValue::Set(items) => {
            Json::Array(items.iter().map(to_json).collect())
        }
        CqlValue::Tuple(items) => Json::Array(items.iter().map(optional).collect()),
        CqlValue::Udt(fields) => Json::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), optional(v)))
                .collect(),
        ),
        CqlValue::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

pub fn optional(value: &Option<CqlValue>) -> Json {
    value.as_ref().map_or(Json::Null, to_json)
}

fn float(v: f64) -> Json {
    match Number::from_f64(v) {
        Some(n) => Json::Number(n),
        None if v.is_nan() => Json::String("NaN".into()),
        None if v > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn uuid_text(u: &[u8; 16]) -> String {
    let h = hex(u);
    let h = &h[2..];
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The decimal digits of a two's-complement big-endian integer of any
/// length (schoolbook division by 10^18).
fn varint_text(bytes: &[u8]) -> String {
    if let Some(v) = varint_to_i128(bytes) {
        return v.to_string();
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    // Magnitude, big-endian.
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        for b in magnitude.iter_mut() {
            *b = !*b;
        }
        for b in magnitude.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
    }
    let mut chunks = Vec::new();
    const CHUNK: u128 = 1_000_000_000_000_000_000;
    while magnitude.iter().any(|b| *b != 0) {
        let mut remainder: u128 = 0;
        for b in magnitude.iter_mut() {
            let acc = (remainder << 8) | u128::from(*b);
            *b = (acc / CHUNK) as u8;
            remainder = acc % CHUNK;
        }
        chunks.push(remainder as u64);
    }
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    match chunks.split_last() {
        None => out.push('0'),
        Some((top, rest)) => {
            out.push_str(&top.to_string());
            for chunk in rest.iter().rev() {
                out.push_str(&format!("{chunk:018}"));
            }
        }
    }
    out
}

fn decimal_text(unscaled: &[u8], scale: i32) -> String {
    let digits = varint_text(unscaled);
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(d) => ("-", d.to_owned()),
        None => ("", digits),
    };
    if scale <= 0 {
        let zeros = if digits == "0" { 0 } else { (-scale) as usize };
        return format!("{sign}{digits}{}", "0".repeat(zeros));
    }
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic
/// Gregorian; the usual era-based conversion).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn date_text(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn time_text(nanos: i64) -> String {
    let s = nanos / NANOS_PER_SECOND;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        nanos % NANOS_PER_SECOND
    )
}

fn timestamp_text(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let s = in_day / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        date_text(days),
        s / 3600,
        s / 60 % 60,
        s % 60,
        in_day % 1000
    )
}

fn duration_text(months: i32, days: i32, nanos: i64) -> String {
    let negative = months < 0 || days < 0 || nanos < 0;
    let (months, days, mut nanos) = (
        i64::from(months).unsigned_abs(),
        i64::from(days).unsigned_abs(),
        nanos.unsigned_abs(),
    );
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let mut part = |n: u64, unit: &str| {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    };
    part(months / 12, "y");
    part(months % 12, "mo");
    part(days, "d");
    for (unit, size) in [
        ("h", 3_600_000_000_000u64),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        part(nanos / size, unit);
        nanos %= size;
    }
    if out.is_empty() || out == "-" {
        return "0s".into();
    }
    out
}

// ---------------------------------------------------------------------
// In
// ---------------------------------------------------------------------

/// The value of a bind marker of type `ty` from its JSON (`None`: null).
pub fn from_json(ty: &ColumnType, json: &Json) -> Result<Option<CqlValue>, String> {
    if json.is_null() {
        return Ok(None);
    }
    value_from_json(ty, json, 0).map(Some)
}

fn value_from_json(ty: &ColumnType, json: &Json, depth: usize) -> Result<CqlValue, String> {
    if depth > 32 {
        return Err("values nest too deep".into());
    }
    let want = |what: &str| format!("{ty:?} expects {what}, got {json}");
    Ok(match ty {
        ColumnType::Ascii => CqlValue::Ascii(text(json).ok_or_else(|| want("a string"))?),
        ColumnType::Text => CqlValue::Text(text(json).ok_or_else(|| want("a string"))?),
        ColumnType::TinyInt => CqlValue::TinyInt(int_in(json).ok_or_else(|| want("an integer"))?),
        ColumnType::SmallInt => CqlValue::SmallInt(int_in(json).ok_or_else(|| want("an integer"))?),
        ColumnType::Int => CqlValue::Int(int_in(json).ok_or_else(|| want("an integer"))?),
        ColumnType::BigInt => CqlValue::BigInt(int_in(json).ok_or_else(|| want("an integer"))?),
        ColumnType::Counter => CqlValue::Counter(int_in(json).ok_or_else(|| want("an integer"))?),
        ColumnType::Varint => {
            let v: i128 = integer(json).ok_or_else(|| want("an integer"))?;
            CqlValue::Varint(varint_from_i128(v))
        }
        ColumnType::Decimal => decimal(json).ok_or_else(|| want("a decimal number"))?,
        ColumnType::Float => CqlValue::Float(real(json).ok_or_else(|| want("a number"))? as f32),
        ColumnType::Double => CqlValue::Double(real(json).ok_or_else(|| want("a number"))?),
        ColumnType::Boolean => CqlValue::Boolean(json.as_bool().ok_or_else(|| want("a boolean"))?),
        ColumnType::Blob => CqlValue::Blob(blob(json).ok_or_else(|| want("\"0x\" and hex"))?),
        ColumnType::Custom(_) => {
            CqlValue::Custom(blob(json).ok_or_else(|| want("\"0x\" and hex"))?)
        }
        ColumnType::Uuid => CqlValue::Uuid(uuid(json).ok_or_else(|| want("a uuid"))?),
        ColumnType::Timeuuid => CqlValue::Timeuuid(uuid(json).ok_or_else(|| want("a uuid"))?),
        ColumnType::Inet => CqlValue::Inet(
            json.as_str()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .ok_or_else(|| want("an IP address"))?,
        ),
        ColumnType::Timestamp => CqlValue::Timestamp(
            int_in(json)
                .or_else(|| json.as_str().and_then(parse_timestamp))
                .ok_or_else(|| want("milliseconds or \"YYYY-MM-DDTHH:MM:SS[.fff]Z\""))?,
        ),
        ColumnType::Date => {
            let days = int_in::<i64>(json)
                .or_else(|| json.as_str().and_then(parse_date))
                .ok_or_else(|| want("\"YYYY-MM-DD\" or days since the epoch"))?;
            CqlValue::Date(u32::try_from(days + DATE_BIAS).map_err(|_| want("a date in range"))?)
        }
        ColumnType::Time => CqlValue::Time(
            int_in(json)
                .or_else(|| json.as_str().and_then(parse_time))
                .filter(|n| (0..NANOS_PER_DAY).contains(n))
                .ok_or_else(|| want("\"HH:MM:SS[.fffffffff]\" or nanoseconds"))?,
        ),
        ColumnType::Duration => {
            let (months, days, nanos) = json
                .as_str()
                .and_then(parse_duration)
                .ok_or_else(|| want("a duration such as \"1h30m\""))?;
            CqlValue::Duration {
                months,
                days,
                nanos,
            }
        }
        ColumnType::List(item) | ColumnType::Set(item) => {
            let items = json.as_array().ok_or_else(|| want("an array"))?;
            let values = items
                .iter()
                .map(|v| value_from_json(item, v, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            if matches!(ty, ColumnType::Set(_)) {
                CqlValue::Set(values)
            } else {
                CqlValue::List(values)
            }
        }
        ColumnType::Map(key, value) => {
            let entries = json.as_object().ok_or_else(|| want("an object"))?;
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                // Keys are strings in JSON: a non-text key is its JSON text.
                let key_json = match **key {
                    ColumnType::Ascii | ColumnType::Text => Json::String(k.clone()),
                    _ => serde_json::from_str(k).unwrap_or_else(|_| Json::String(k.clone())),
                };
                out.push((
                    value_from_json(key, &key_json, depth + 1)?,
                    value_from_json(value, v, depth + 1)?,
                ));
            }
            CqlValue::Map(out)
        }
        ColumnType::Tuple(types) => {
            let items = json.as_array().ok_or_else(|| want("an array"))?;
            if items.len() != types.len() {
                return Err(want(&format!("{} elements", types.len())));
            }
            CqlValue::Tuple(
                types
                    .iter()
                    .zip(items)
                    .map(|(t, v)| match v {
                        Json::Null => Ok(None),
                        v => value_from_json(t, v, depth + 1).map(Some),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )
        }
        ColumnType::Udt(udt) => {
            let fields = json.as_object().ok_or_else(|| want("an object"))?;
            if let Some(unknown) = fields
                .keys()
                .find(|k| !udt.fields.iter().any(|(name, _)| name == *k))
            {
                return Err(format!("{} has no field {unknown}", udt.name));
            }
            CqlValue::Udt(
                udt.fields
                    .iter()
                    .map(|(name, t)| {
                        let v = match fields.get(name) {
                            None | Some(Json::Null) => None,
                            Some(v) => Some(value_from_json(t, v, depth + 1)?),
                        };
                        Ok((name.clone(), v))
                    })
                    .collect::<Result<Vec<_>, String>>()?,
            )
        }
    })
}

fn text(json: &Json) -> Option<String> {
    json.as_str().map(str::to_owned)
}

fn integer(json: &Json) -> Option<i128> {
    match json {
        Json::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn int_in<T: TryFrom<i128>>(json: &Json) -> Option<T> {
    integer(json).and_then(|v| T::try_from(v).ok())
}

fn real(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            s => s.parse().ok(),
        },
        _ => None,
    }
}

/// "123.4500", "-1e-3", 12.5 → unscaled digits and scale.
fn decimal(json: &Json) -> Option<CqlValue> {
    let text = match json {
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text.as_str(), 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let unscaled: i128 = digits.parse().ok()?;
    let scale = i32::try_from(fraction.len()).ok()?.checked_sub(exponent)?;
    Some(CqlValue::Decimal {
        unscaled: varint_from_i128(unscaled),
        scale,
    })
}

fn blob(json: &Json) -> Option<Vec<u8>> {
    let s = json.as_str()?;
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.len() % 2 != 0 {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

fn uuid(json: &Json) -> Option<[u8; 16]> {
    let digits: String = json.as_str()?.chars().filter(|c| *c != '-').collect();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(digits.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.trim().splitn(3, '-');
    let (y, m, d) = if let Some(rest) = s.trim().strip_prefix('-') {
        // A year before 0.
        let mut p = rest.splitn(3, '-');
        (
            -p.next()?.parse::<i64>().ok()?,
            p.next()?.parse::<u32>().ok()?,
            p.next()?.parse::<u32>().ok()?,
        )
    } else {
        (
            parts.next()?.parse::<i64>().ok()?,
            parts.next()?.parse::<u32>().ok()?,
            parts.next()?.parse::<u32>().ok()?,
        )
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject 2024-02-31 and the like.
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

fn parse_time(s: &str) -> Option<i64> {
    let (hms, fraction) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let mut parts = hms.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec: i64 = parts.next().unwrap_or("0").parse().ok()?;
    if parts.next().is_some() || h > 23 || m > 59 || sec > 59 || fraction.len() > 9 {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().ok()? * 10i64.pow(9 - fraction.len() as u32)
    };
    Some(((h * 60 + m) * 60 + sec) * NANOS_PER_SECOND + nanos)
}

/// "2024-05-06T07:08:09.010Z", "2024-05-06 07:08:09Z", "2024-05-06".
fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let days = parse_date(date)?;
    let nanos = time.map_or(Some(0), parse_time)?;
    days.checked_mul(86_400_000)?.checked_add(nanos / 1_000_000)
}

/// "1y2mo3d4h5m6s7ms8us9ns", "-3d", "90m".
fn parse_duration(s: &str) -> Option<(i32, i32, i64)> {
    let s = s.trim();
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        match unit.to_ascii_lowercase().as_str() {
            "y" => months = months.checked_add(n.checked_mul(12)?)?,
            "mo" => months = months.checked_add(n)?,
            "w" => days = days.checked_add(n.checked_mul(7)?)?,
            "d" => days = days.checked_add(n)?,
            "h" => nanos = nanos.checked_add(n.checked_mul(3_600 * NANOS_PER_SECOND)?)?,
            "m" => nanos = nanos.checked_add(n.checked_mul(60 * NANOS_PER_SECOND)?)?,
            "s" => nanos = nanos.checked_add(n.checked_mul(NANOS_PER_SECOND)?)?,
            "ms" => nanos = nanos.checked_add(n.checked_mul(1_000_000)?)?,
            "us" | "µs" => nanos = nanos.checked_add(n.checked_mul(1_000)?)?,
            "ns" => nanos = nanos.checked_add(n)?,
            _ => return None,
        }
    }
    let sign = if negative { -1 } else { 1 };
    Some((
        i32::try_from(months * sign).ok()?,
        i32::try_from(days * sign).ok()?,
        nanos * sign,
    ))
}

/// A JSON object from column names and row values.
pub fn row_object(names: &[String], row: Vec<Option<CqlValue>>) -> Json {
    let mut object = Map::with_capacity(names.len());
    for (name, value) in names.iter().zip(row) {
        object.insert(name.clone(), optional(&value));
    }
    Json::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_out() {
        assert_eq!(
            to_json(&CqlValue::BigInt(i64::MAX)),
            json!(9223372036854775807i64)
        );
        assert_eq!(
            to_json(&CqlValue::Varint(varint_from_i128(
                -12345678901234567890123
            ))),
            json!("-12345678901234567890123")
        );
        // Beyond i128: 2^136.
        let mut big = vec![0x01];
        big.extend([0u8; 17]);
        assert_eq!(
            to_json(&CqlValue::Varint(big)),
            json!("87112285931760246646623899502532662132736")
        );
        assert_eq!(
            to_json(&CqlValue::Decimal {
                unscaled: varint_from_i128(-12345),
                scale: 3
            }),
            json!("-12.345")
        );
        assert_eq!(
            to_json(&CqlValue::Decimal {
                unscaled: varint_from_i128(5),
                scale: 4
            }),
            json!("0.0005")
        );
        assert_eq!(to_json(&CqlValue::Double(f64::NAN)), json!("NaN"));
        assert_eq!(to_json(&CqlValue::Blob(vec![0, 0xab])), json!("0x00ab"));
        assert_eq!(
            to_json(&CqlValue::Timestamp(1_715_000_000_123)),
            json!("2024-05-06T12:53:20.123Z")
        );
        assert_eq!(
            to_json(&CqlValue::Timestamp(-1)),
            json!("1969-12-31T23:59:59.999Z")
        );
        assert_eq!(
            to_json(&CqlValue::Date((1u32 << 31) + 19_849)),
            json!("2024-05-06")
        );
        assert_eq!(
            to_json(&CqlValue::Time(3_723_000_000_004)),
            json!("01:02:03.000000004")
        );
        assert_eq!(
            to_json(&CqlValue::Duration {
                months: 14,
                days: 3,
                nanos: 3_600_000_000_001
            }),
            json!("1y2mo3d1h1ns")
        );
    }

    #[test]
    fn values_round_trip() {
        let cases: Vec<(ColumnType, Json)> = vec![
            (ColumnType::Int, json!(-7)),
            (ColumnType::BigInt, json!(-9223372036854775808i64)),
            (
                ColumnType::Varint,
                json!("170141183460469231731687303715884105727"),
            ),
            (ColumnType::Decimal, json!("-0.001")),
            (ColumnType::Double, json!(2.5)),
            (ColumnType::Blob, json!("0xdeadbeef")),
            (
                ColumnType::Uuid,
                json!("01234567-89ab-cdef-0123-456789abcdef"),
            ),
            (ColumnType::Inet, json!("::1")),
            (ColumnType::Timestamp, json!("2024-02-29T23:59:59.999Z")),
            (ColumnType::Date, json!("1900-01-01")),
            (ColumnType::Time, json!("23:59:59.999999999")),
            (ColumnType::Duration, json!("-1y3d4m")),
            (
                ColumnType::Map(Box::new(ColumnType::Int), Box::new(ColumnType::Text)),
                json!({"1": "a", "2": "b"}),
            ),
            (
                ColumnType::Tuple(vec![ColumnType::Int, ColumnType::Text]),
                json!([1, null]),
            ),
        ];
        for (ty, value) in cases {
            let cql = from_json(&ty, &value).unwrap().unwrap();
            assert_eq!(to_json(&cql), value, "{ty:?}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        assert!(from_json(&ColumnType::Int, &json!("x"))
            .unwrap_err()
            .contains("integer"));
        assert!(from_json(&ColumnType::TinyInt, &json!(300)).is_err());
        assert!(from_json(&ColumnType::Date, &json!("2023-02-29")).is_err());
        assert!(from_json(&ColumnType::Blob, &json!("abc")).is_err());
        assert!(from_json(&ColumnType::Duration, &json!("5 parsecs")).is_err());
        assert_eq!(from_json(&ColumnType::Int, &Json::Null).unwrap(), None);
    }
}

//! Values as text, the way Scylla's `to_string` writes them: what
//! `CAST(x AS text)` returns and what JSON wraps in strings.

use std::fmt::Write as _;

use scylla_shard::protocol::value::{varint_to_i128, CqlValue};

/// Days from 1970-01-01 to a civil date (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `yyyy-mm-dd<sep>HH:MM:SS.mmmZ` of milliseconds since the epoch.
pub fn timestamp_text(ms: i64, separator: char) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}{separator}{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// `yyyy-mm-dd` of a date (days biased by 2^31).
pub fn date_text(days: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days) - (1i64 << 31));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:MM:SS.nnnnnnnnn` of nanoseconds since midnight.
pub fn time_text(nanos: i64) -> String {
    let s = nanos / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        nanos % 1_000_000_000
    )
}

pub fn uuid_text(u: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A float as C++'s shortest round-trip form writes it (`3.5`, `1e+300`,
/// `2` for integral values).
pub fn number_text(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let plain = format!("{v}");
    if plain.len() <= 17 {
        return plain;
    }
    let exp = format!("{v:e}");
    match exp.split_once('e') {
        Some((mantissa, e)) if !e.starts_with('-') => format!("{mantissa}e+{e}"),
        _ => exp,
    }
}

/// Decimal digits of a two's-complement varint of any length.
pub fn varint_text(bytes: &[u8]) -> String {
    if let Some(v) = varint_to_i128(bytes) {
        return v.to_string();
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        // Two's complement back to the magnitude: invert, add one.
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
    let mut digits = Vec::new();
    while magnitude.iter().any(|b| *b != 0) {
        let mut remainder = 0u32;
        for b in magnitude.iter_mut() {
            let v = (remainder << 8) | u32::from(*b);
            *b = (v / 10) as u8;
            remainder = v % 10;
        }
        digits.push(b'0' + remainder as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    if negative {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// `unscaled * 10^-scale` in plain notation.
pub fn decimal_text(unscaled: &[u8], scale: i32) -> String {
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
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac}")
}

/// The text of a value as `CAST(... AS text)` gives it.
pub fn value_text(value: &CqlValue) -> String {
    match value {
        CqlValue::Ascii(s) | CqlValue::Text(s) => s.clone(),
        CqlValue::BigInt(v) | CqlValue::Counter(v) => v.to_string(),
        CqlValue::Int(v) => v.to_string(),
        CqlValue::SmallInt(v) => v.to_string(),
        CqlValue::TinyInt(v) => v.to_string(),
        CqlValue::Boolean(b) => b.to_string(),
        CqlValue::Double(d) => number_text(*d),
        CqlValue::Float(f) => number_text(f64::from(*f)),
        CqlValue::Varint(v) => varint_text(v),
        CqlValue::Decimal { unscaled, scale } => decimal_text(unscaled, *scale),
        CqlValue::Timestamp(ms) => timestamp_text(*ms, 'T'),
        CqlValue::Date(d) => date_text(*d),
        CqlValue::Time(t) => time_text(*t),
        CqlValue::Uuid(u) | CqlValue::Timeuuid(u) => uuid_text(u),
        CqlValue::Inet(ip) => ip.to_string(),
        CqlValue::Blob(b) | CqlValue::Custom(b) => b.iter().map(|b| format!("{b:02x}")).collect(),
        CqlValue::Duration {
            months,
            days,
            nanos,
        } => cql_parser::ast::Duration {
            months: *months,
            days: *days,
            nanoseconds: *nanos,
        }
        .to_string(),
        CqlValue::List(items) => {
            let parts: Vec<String> = items.iter().map(value_text).collect();
            format!("[{}]", parts.join(", "))
        }
        CqlValue::Set(items) => {
            let parts: Vec<String> = items.iter().map(value_text).collect();
            format!("{{{}}}", parts.join(", "))
        }
        CqlValue::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", value_text(k), value_text(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        CqlValue::Tuple(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| v.as_ref().map_or("null".into(), value_text))
                .collect();
            format!("({})", parts.join(", "))
        }
        CqlValue::Udt(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(n, v)| format!("{n}: {}", v.as_ref().map_or("null".into(), value_text)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scylla_shard::protocol::value::varint_from_i128;

    #[test]
    fn texts_match_scylla() {
        assert_eq!(
            timestamp_text(1_296_705_900_123, 'T'),
            "2011-02-03T04:05:00.123Z"
        );
        assert_eq!(timestamp_text(-1, ' '), "1969-12-31 23:59:59.999Z");
        assert_eq!(date_text((1u32 << 31) + 19_782), "2024-02-29");
        assert_eq!(time_text(3_600_500_000_000), "01:00:00.500000000");
        assert_eq!(number_text(3.5), "3.5");
        assert_eq!(number_text(2.0), "2");
        assert_eq!(number_text(1e300), "1e+300");
        let big = [vec![0x01], vec![0; 16]].concat();
        assert_eq!(varint_text(&big), "340282366920938463463374607431768211456");
        let negative = [vec![0xff], vec![0; 16]].concat();
        assert_eq!(
            varint_text(&negative),
            "-340282366920938463463374607431768211456"
        );
        assert_eq!(decimal_text(&varint_from_i128(12345), 2), "123.45");
        assert_eq!(decimal_text(&varint_from_i128(-5), 3), "-0.005");
        assert_eq!(decimal_text(&varint_from_i128(7), -2), "700");
    }
}

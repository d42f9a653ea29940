//! JSON for `SELECT JSON`, `toJson()`, `INSERT JSON` and `fromJson()`: a
//! small parser and the per-type representations Scylla uses
//! (`types/json_utils.cc`): numbers for numeric types (null for NaN and
//! infinities), strings for text, uuids, inets, dates, times, timestamps
//! (`yyyy-mm-dd HH:MM:SS.mmmZ`) and blobs (`0x...`), arrays for lists, sets
//! and tuples, objects for maps (keys as strings) and UDTs.

use std::fmt::Write as _;

use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::value::CqlValue;

use super::error::{invalid, EngineError};
use super::text::{decimal_text, number_text, timestamp_text, value_text, varint_text};
use super::values::{literal_from_text, normalize};

/// A parsed JSON document. Numbers keep their text so that integers of any
/// size and decimals keep their precision.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Deepest nesting accepted, as for values on the wire.
const MAX_DEPTH: usize = 64;

pub fn parse(text: &str) -> Result<Json, EngineError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("unexpected trailing characters"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> EngineError {
        invalid(format!(
            "Could not decode JSON string: {what} at offset {}",
            self.pos
        ))
    }

    fn skip_ws(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, EngineError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.skip_ws();
        match self.bytes.get(self.pos) {
            None => Err(self.error("unexpected end")),
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                if self.eat(b'}') {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return Err(self.error("expected ':'"));
                    }
                    members.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Ok(Json::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected ',' or '}'"));
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected ',' or ']'"));
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn word(&mut self, word: &str, value: Json) -> Result<Json, EngineError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Json, EngineError> {
        let start = self.pos;
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        if text.parse::<f64>().is_err() {
            return Err(self.error("invalid number"));
        }
        Ok(Json::Number(text.to_owned()))
    }

    fn string(&mut self) -> Result<String, EngineError> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return Err(self.error("expected a string"));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|b| *b != b'"' && *b != b'\\')
            {
                self.pos += 1;
            }
            out.push_str(
                std::str::from_utf8(&self.bytes[start..self.pos])
                    .map_err(|_| self.error("invalid UTF-8"))?,
            );
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = *self
                        .bytes
                        .get(self.pos)
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.pos += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&unit) {
                                if !self.bytes[self.pos..].starts_with(b"\\u") {
                                    return Err(self.error("unpaired surrogate"));
                                }
                                self.pos += 2;
                                let low = self.hex4()?;
                                let code = 0x10000
                                    + ((unit - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3ff);
                                char::from_u32(code)
                            } else {
                                char::from_u32(unit)
                            };
                            out.push(c.ok_or_else(|| self.error("invalid escape"))?);
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                _ => return Err(self.error("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, EngineError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(digits)
    }
}

/// A JSON string literal, escaped as Scylla escapes it.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The JSON text of a value (`null` for None).
pub fn to_json(value: Option<&CqlValue>) -> String {
    let Some(value) = value else {
        return "null".to_owned();
    };
    match value {
        CqlValue::TinyInt(_)
        | CqlValue::SmallInt(_)
        | CqlValue::Int(_)
        | CqlValue::BigInt(_)
        | CqlValue::Counter(_)
        | CqlValue::Boolean(_) => value_text(value),
        CqlValue::Float(f) if f.is_finite() => number_text(f64::from(*f)),
        CqlValue::Double(d) if d.is_finite() => number_text(*d),
        CqlValue::Float(_) | CqlValue::Double(_) => "null".to_owned(),
        CqlValue::Varint(v) => varint_text(v),
        CqlValue::Decimal { unscaled, scale } => decimal_text(unscaled, *scale),
        CqlValue::Timestamp(ms) => quote(&timestamp_text(*ms, ' ')),
        CqlValue::Blob(_) => quote(&format!("0x{}", value_text(value))),
        CqlValue::List(items) | CqlValue::Set(items) => {
            let parts: Vec<String> = items.iter().map(|v| to_json(Some(v))).collect();
            format!("[{}]", parts.join(", "))
        }
        CqlValue::Tuple(items) => {
            let parts: Vec<String> = items.iter().map(|v| to_json(v.as_ref())).collect();
            format!("[{}]", parts.join(", "))
        }
        CqlValue::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    let key = to_json(Some(k));
                    let key = if key.starts_with('"') {
                        key
                    } else {
                        quote(&key)
                    };
                    format!("{key}: {}", to_json(Some(v)))
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        CqlValue::Udt(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(name, v)| format!("{}: {}", quote(name), to_json(v.as_ref())))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => quote(&value_text(other)),
    }
}

/// Converts a JSON value into a value of `ty` (None for JSON null), with
/// sets and maps in their stored order.
pub fn from_json(ty: &ColumnType, json: &Json) -> Result<Option<CqlValue>, EngineError> {
    Ok(from_json_inner(ty, json, 0)?.map(|v| normalize(v, ty)))
}

fn from_json_inner(
    ty: &ColumnType,
    json: &Json,
    depth: usize,
) -> Result<Option<CqlValue>, EngineError> {
    if depth > MAX_DEPTH {
        return Err(invalid("JSON value nested too deeply"));
    }
    let bad = || {
        invalid(format!(
            "Unable to make {ty} from JSON value {}",
            json_text(json)
        ))
    };
    let value = match (ty, json) {
        (_, Json::Null) => return Ok(None),
        (ColumnType::Boolean, Json::Bool(b)) => CqlValue::Boolean(*b),
        (ColumnType::Boolean, Json::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => CqlValue::Boolean(true),
            "false" => CqlValue::Boolean(false),
            _ => return Err(bad()),
        },
        (ColumnType::Blob, Json::String(s)) => {
            let hex = s
                .strip_prefix("0x")
                .ok_or_else(|| invalid("Blob JSON strings must start with 0x"))?;
            literal_from_text(ty, &format!("0x{hex}")).ok_or_else(bad)?
        }
        (ColumnType::Counter, Json::Number(n)) => {
            CqlValue::Counter(integral(n).ok_or_else(bad)? as i64)
        }
        (
            ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int | ColumnType::BigInt,
            Json::Number(n),
        ) => {
            let v = integral(n).ok_or_else(bad)?;
            literal_from_text(ty, &v.to_string()).ok_or_else(bad)?
        }
        (ColumnType::Timestamp, Json::Number(n)) => {
            CqlValue::Timestamp(i64::try_from(integral(n).ok_or_else(bad)?).map_err(|_| bad())?)
        }
        (
            ColumnType::Float | ColumnType::Double | ColumnType::Decimal | ColumnType::Varint,
            Json::Number(n),
        ) => literal_from_text(ty, n).ok_or_else(bad)?,
        (ColumnType::List(e), Json::Array(items)) => CqlValue::List(elements(e, items, depth)?),
        (ColumnType::Set(e), Json::Array(items)) => CqlValue::Set(elements(e, items, depth)?),
        (ColumnType::Map(k, v), Json::Object(members)) => {
            let mut entries = Vec::with_capacity(members.len());
            for (key, value) in members {
                // Native keys are written as strings; others as the JSON
                // text of their value.
                let key_json = match &**k {
                    ColumnType::List(_)
                    | ColumnType::Set(_)
                    | ColumnType::Map(..)
                    | ColumnType::Tuple(_)
                    | ColumnType::Udt(_) => parse(key)?,
                    _ => Json::String(key.clone()),
                };
                let key = from_json_inner(k, &key_json, depth + 1)?
                    .ok_or_else(|| invalid("null is not supported inside collections"))?;
                let value = from_json_inner(v, value, depth + 1)?
                    .ok_or_else(|| invalid("null is not supported inside collections"))?;
                entries.push((key, value));
            }
            CqlValue::Map(entries)
        }
        (ColumnType::Tuple(types), Json::Array(items)) => {
            if items.len() > types.len() {
                return Err(invalid(format!(
                    "Too many values ({}) for tuple with size {}",
                    items.len(),
                    types.len()
                )));
            }
            let mut values = Vec::with_capacity(types.len());
            for (i, t) in types.iter().enumerate() {
                values.push(match items.get(i) {
                    Some(item) => from_json_inner(t, item, depth + 1)?,
                    None => None,
                });
            }
            CqlValue::Tuple(values)
        }
        (ColumnType::Udt(udt), Json::Object(members)) => {
            if let Some((extra, _)) = members
                .iter()
                .find(|(name, _)| !udt.fields.iter().any(|(f, _)| f == name))
            {
                return Err(invalid(format!(
                    "Extraneous field definition for user type {}: {extra}",
                    udt.name
                )));
            }
            let mut fields = Vec::with_capacity(udt.fields.len());
            for (name, field_ty) in &udt.fields {
                let value = match members.iter().find(|(n, _)| n == name) {
                    Some((_, v)) => from_json_inner(field_ty, v, depth + 1)?,
                    None => None,
                };
                fields.push((name.clone(), value));
            }
            CqlValue::Udt(fields)
        }
        // Every other type is written as a string of its CQL literal form.
        (_, Json::String(s)) => literal_from_text(ty, s).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(Some(value))
}

fn elements(ty: &ColumnType, items: &[Json], depth: usize) -> Result<Vec<CqlValue>, EngineError> {
    items
        .iter()
        .map(|item| {
            from_json_inner(ty, item, depth + 1)?
                .ok_or_else(|| invalid("null is not supported inside collections"))
        })
        .collect()
}

/// An integer written as a JSON number, also in the forms `12.0` and
/// `1.3e8` (Scylla accepts those, but not a fractional part).
fn integral(text: &str) -> Option<i128> {
    if let Ok(v) = text.parse::<i128>() {
        return Some(v);
    }
    let f: f64 = text.parse().ok()?;
    (f.fract() == 0.0 && f.abs() < 1.7e38).then_some(f as i128)
}

/// JSON text of a parsed value, for error messages.
pub fn json_text(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.clone(),
        Json::String(s) => quote(s),
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(json_text).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(members) => format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, v)| format!("{}: {}", quote(k), json_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        let doc =
            parse(r#" {"a": [1, -2.5e3, true, null], "b\u00e9": "x\"\n", "c": {}} "#).unwrap();
        let Json::Object(members) = &doc else {
            panic!()
        };
        assert_eq!(members[1].0, "bé");
        assert_eq!(members[1].1, Json::String("x\"\n".into()));
        assert_eq!(
            json_text(&parse(&json_text(&doc)).unwrap()),
            json_text(&doc)
        );
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "tru",
            "\"\\x\"",
            "1 2",
            "[\"\\ud800\"]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn values_convert_both_ways() {
        let ty = ColumnType::Map(
            Box::new(ColumnType::Int),
            Box::new(ColumnType::Set(Box::new(ColumnType::Text))),
        );
        let value = from_json(&ty, &parse(r#"{"2": ["b", "a"], "1": []}"#).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(to_json(Some(&value)), r#"{"1": [], "2": ["a", "b"]}"#);
        assert_eq!(
            from_json(&ColumnType::Int, &Json::Number("12.0".into())).unwrap(),
            Some(CqlValue::Int(12))
        );
        assert!(from_json(&ColumnType::Int, &Json::Number("12.5".into())).is_err());
        assert_eq!(to_json(Some(&CqlValue::Double(f64::NAN))), "null");
        assert_eq!(
            to_json(Some(&CqlValue::Timestamp(1_296_705_900_000))),
            "\"2011-02-03 04:05:00.000Z\""
        );
        assert_eq!(
            to_json(Some(&CqlValue::Blob(vec![0xca, 0xfe]))),
            "\"0xcafe\""
        );
    }
}

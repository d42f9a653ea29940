//! Scylla's native selector functions: time conversions, `now()`/`uuid()`,
//! `<type>AsBlob`/`blobAs<type>`, `toJson`, `CAST`, and the aggregates
//! `count`, `min`, `max`, `sum`, `avg`.

use cql_parser::types::CqlType;
use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::value::{varint_from_i128, varint_to_i128, CqlValue};

use super::error::{invalid, EngineError};
use super::json::to_json;
use super::schema::native;
use super::text::value_text;
use super::values::{
    compare_values, literal_from_text, now_micros, random_uuid, timeuuid, timeuuid_micros,
};

/// A scalar function resolved for its argument types.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    ToTimestamp,
    ToDate,
    ToUnixTimestamp,
    MinTimeuuid,
    MaxTimeuuid,
    Now,
    Uuid,
    CurrentTimestamp,
    CurrentDate,
    CurrentTime,
    ToJson,
    /// `<type>AsBlob`: the value's bytes.
    AsBlob,
    /// `blobAs<type>`: the bytes read as that type.
    BlobAs(ColumnType),
}

const DAY_MS: i64 = 86_400_000;

fn date_of_ms(ms: i64) -> u32 {
    (ms.div_euclid(DAY_MS) + (1i64 << 31)) as u32
}

fn ms_of_date(date: u32) -> i64 {
    (i64::from(date) - (1i64 << 31)) * DAY_MS
}

/// The native type a function name's suffix or prefix names (`int` in
/// `intAsBlob`).
fn named_type(name: &str) -> Option<ColumnType> {
    match cql_parser::parse_type(name).ok()? {
        CqlType::Native(n) => Some(native(n)),
        _ => None,
    }
}

/// The argument types a function expects (for literal arguments), when the
/// name alone tells.
pub fn argument_hint(name: &str) -> Option<ColumnType> {
    match name {
        "totimestamp" | "todate" | "tounixtimestamp" | "dateof" | "unixtimestampof" => {
            Some(ColumnType::Timeuuid)
        }
        "mintimeuuid" | "maxtimeuuid" => Some(ColumnType::Timestamp),
        _ if name.starts_with("blobas") => Some(ColumnType::Blob),
        _ => name.strip_suffix("asblob").and_then(named_type),
    }
}

/// Resolves `name(args)` to a function and its return type, as Scylla's
/// overloads do.
pub fn resolve_scalar(
    name: &str,
    args: &[ColumnType],
) -> Result<(Scalar, ColumnType), EngineError> {
    use ColumnType as T;
    let one = |allowed: &[T]| args.len() == 1 && allowed.contains(&args[0]);
    let resolved = match name {
        "totimestamp" | "dateof" if one(&[T::Timeuuid, T::Date, T::Timestamp]) => {
            (Scalar::ToTimestamp, T::Timestamp)
        }
        "todate" if one(&[T::Timeuuid, T::Timestamp, T::Date]) => (Scalar::ToDate, T::Date),
        "tounixtimestamp" | "unixtimestampof" if one(&[T::Timeuuid, T::Timestamp, T::Date]) => {
            (Scalar::ToUnixTimestamp, T::BigInt)
        }
        "mintimeuuid" if one(&[T::Timestamp]) => (Scalar::MinTimeuuid, T::Timeuuid),
        "maxtimeuuid" if one(&[T::Timestamp]) => (Scalar::MaxTimeuuid, T::Timeuuid),
        "now" | "currenttimeuuid" if args.is_empty() => (Scalar::Now, T::Timeuuid),
        "uuid" if args.is_empty() => (Scalar::Uuid, T::Uuid),
        "currenttimestamp" if args.is_empty() => (Scalar::CurrentTimestamp, T::Timestamp),
        "currentdate" if args.is_empty() => (Scalar::CurrentDate, T::Date),
        "currenttime" if args.is_empty() => (Scalar::CurrentTime, T::Time),
        "tojson" if args.len() == 1 => (Scalar::ToJson, T::Text),
        _ if name.starts_with("blobas") && one(&[T::Blob]) => {
            let ty = named_type(&name[6..]).ok_or_else(|| unknown(name))?;
            (Scalar::BlobAs(ty.clone()), ty)
        }
        _ if name.ends_with("asblob") && args.len() == 1 => {
            match named_type(&name[..name.len() - 6]) {
                Some(ty) if ty == args[0] => (Scalar::AsBlob, T::Blob),
                Some(_) => return Err(wrong_arguments(name, args)),
                None => return Err(unknown(name)),
            }
        }
        "totimestamp" | "dateof" | "todate" | "tounixtimestamp" | "unixtimestampof"
        | "mintimeuuid" | "maxtimeuuid" | "now" | "currenttimeuuid" | "uuid"
        | "currenttimestamp" | "currentdate" | "currenttime" | "tojson" => {
            return Err(wrong_arguments(name, args))
        }
        _ => return Err(unknown(name)),
    };
    Ok(resolved)
}

fn unknown(name: &str) -> EngineError {
    invalid(format!("Unknown function '{name}'"))
}

fn wrong_arguments(name: &str, args: &[ColumnType]) -> EngineError {
    let types: Vec<String> = args.iter().map(ToString::to_string).collect();
    invalid(format!(
        "Invalid call to function {name}, none of its type signatures match (arguments: {})",
        types.join(", ")
    ))
}

/// Calls a scalar function. Functions of null return null.
pub fn call_scalar(
    function: &Scalar,
    args: &[Option<CqlValue>],
    arg_types: &[ColumnType],
) -> Result<Option<CqlValue>, EngineError> {
    let now_ms = now_micros() / 1000;
    let arg = args.first().cloned().flatten();
    let value = match (function, arg) {
        (Scalar::Now, _) => CqlValue::Timeuuid(timeuuid(now_micros())),
        (Scalar::Uuid, _) => CqlValue::Uuid(random_uuid()),
        (Scalar::CurrentTimestamp, _) => CqlValue::Timestamp(now_ms),
        (Scalar::CurrentDate, _) => CqlValue::Date(date_of_ms(now_ms)),
        (Scalar::CurrentTime, _) => CqlValue::Time(now_ms.rem_euclid(DAY_MS) * 1_000_000),
        (Scalar::ToJson, arg) => CqlValue::Text(to_json(arg.as_ref())),
        (_, None) => return Ok(None),
        (Scalar::ToTimestamp, Some(v)) => CqlValue::Timestamp(millis_of(&v)?),
        (Scalar::ToDate, Some(v)) => CqlValue::Date(date_of_ms(millis_of(&v)?)),
        (Scalar::ToUnixTimestamp, Some(v)) => CqlValue::BigInt(millis_of(&v)?),
        (Scalar::MinTimeuuid | Scalar::MaxTimeuuid, Some(CqlValue::Timestamp(ms))) => {
            // The lowest and highest clock sequence and node (compared as
            // signed bytes) for that millisecond, as Cassandra defines them.
            let mut u = timeuuid(ms * 1000);
            let tail = if *function == Scalar::MinTimeuuid {
                0x80
            } else {
                0x7f
            };
            u[8..].fill(tail);
            CqlValue::Timeuuid(u)
        }
        (Scalar::AsBlob, Some(v)) => {
            CqlValue::Blob(v.to_bytes().map_err(|e| invalid(e.to_string()))?)
        }
        (Scalar::BlobAs(ty), Some(CqlValue::Blob(bytes))) => {
            CqlValue::deserialize(ty, &bytes).map_err(|e| invalid(e.to_string()))?
        }
        (_, Some(other)) => {
            return Err(invalid(format!(
                "Invalid argument {} of type {}",
                value_text(&other),
                arg_types
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )))
        }
    };
    Ok(Some(value))
}

/// Milliseconds since the epoch of a timeuuid, timestamp or date.
fn millis_of(value: &CqlValue) -> Result<i64, EngineError> {
    match value {
        CqlValue::Timeuuid(u) => Ok(timeuuid_micros(u).div_euclid(1000)),
        CqlValue::Timestamp(ms) => Ok(*ms),
        CqlValue::Date(d) => Ok(ms_of_date(*d)),
        other => Err(invalid(format!("Invalid time value {}", value_text(other)))),
    }
}

// ---- numbers --------------------------------------------------------------

/// A number of any CQL numeric type, wide enough to add without overflow.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i128),
    Float(f64),
    /// `unscaled * 10^-scale`
    Decimal(i128, i32),
}

fn is_numeric(ty: &ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::TinyInt
            | ColumnType::SmallInt
            | ColumnType::Int
            | ColumnType::BigInt
            | ColumnType::Counter
            | ColumnType::Varint
            | ColumnType::Float
            | ColumnType::Double
            | ColumnType::Decimal
    )
}

fn num_of(value: &CqlValue) -> Result<Num, EngineError> {
    let too_big = || invalid("Number too large for the emulator's arithmetic (128 bits)");
    Ok(match value {
        CqlValue::TinyInt(v) => Num::Int(i128::from(*v)),
        CqlValue::SmallInt(v) => Num::Int(i128::from(*v)),
        CqlValue::Int(v) => Num::Int(i128::from(*v)),
        CqlValue::BigInt(v) | CqlValue::Counter(v) => Num::Int(i128::from(*v)),
        CqlValue::Varint(b) => Num::Int(varint_to_i128(b).ok_or_else(too_big)?),
        CqlValue::Float(f) => Num::Float(f64::from(*f)),
        CqlValue::Double(d) => Num::Float(*d),
        CqlValue::Decimal { unscaled, scale } => {
            Num::Decimal(varint_to_i128(unscaled).ok_or_else(too_big)?, *scale)
        }
        other => return Err(invalid(format!("{} is not a number", value_text(other)))),
    })
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
        Num::Decimal(u, s) => u as f64 * 10f64.powi(-s),
    }
}

/// `n` as a value of numeric type `ty`; integers that do not fit fail as
/// Scylla's do.
fn num_to_value(n: Num, ty: &ColumnType, overflow: &str) -> Result<CqlValue, EngineError> {
    let int = || -> Result<i128, EngineError> {
        Ok(match n {
            Num::Int(i) => i,
            Num::Float(f) => f.trunc() as i128,
            Num::Decimal(u, s) if s >= 0 => u / 10i128.pow(s.unsigned_abs().min(38)),
            Num::Decimal(u, s) => u * 10i128.pow(s.unsigned_abs().min(38)),
        })
    };
    let fit = |e| invalid(format!("{overflow}{e}"));
    Ok(match ty {
        ColumnType::TinyInt => CqlValue::TinyInt(i8::try_from(int()?).map_err(fit)?),
        ColumnType::SmallInt => CqlValue::SmallInt(i16::try_from(int()?).map_err(fit)?),
        ColumnType::Int => CqlValue::Int(i32::try_from(int()?).map_err(fit)?),
        ColumnType::BigInt => CqlValue::BigInt(i64::try_from(int()?).map_err(fit)?),
        ColumnType::Counter => CqlValue::Counter(i64::try_from(int()?).map_err(fit)?),
        ColumnType::Varint => CqlValue::Varint(varint_from_i128(int()?)),
        ColumnType::Float => CqlValue::Float(as_f64(n) as f32),
        ColumnType::Double => CqlValue::Double(as_f64(n)),
        ColumnType::Decimal => match n {
            Num::Int(i) => CqlValue::Decimal {
                unscaled: varint_from_i128(i),
                scale: 0,
            },
            Num::Decimal(u, s) => CqlValue::Decimal {
                unscaled: varint_from_i128(u),
                scale: s,
            },
            Num::Float(f) => literal_from_text(ty, &format!("{f}"))
                .ok_or_else(|| invalid(format!("{f} cannot be a decimal")))?,
        },
        other => return Err(invalid(format!("{other} is not a numeric type"))),
    })
}

fn add(a: Num, b: Num) -> Result<Num, EngineError> {
    let overflow = || invalid("Sum overflow. Values should be casted to a wider type.");
    Ok(match (a, b) {
        (Num::Int(x), Num::Int(y)) => Num::Int(x.checked_add(y).ok_or_else(overflow)?),
        (Num::Decimal(u1, s1), Num::Decimal(u2, s2)) => {
            let s = s1.max(s2);
            let scale = |u: i128, from: i32| u.checked_mul(10i128.checked_pow((s - from) as u32)?);
            let (x, y) = (
                scale(u1, s1).ok_or_else(overflow)?,
                scale(u2, s2).ok_or_else(overflow)?,
            );
            Num::Decimal(x.checked_add(y).ok_or_else(overflow)?, s)
        }
        (Num::Decimal(u, s), Num::Int(i)) | (Num::Int(i), Num::Decimal(u, s)) => {
            add(Num::Decimal(u, s), Num::Decimal(i, 0))?
        }
        (x, y) => Num::Float(as_f64(x) + as_f64(y)),
    })
}

/// `x / count` as avg does: integer division for integers, half-even
/// rounding at the sum's scale for decimals.
fn divide(x: Num, count: i64) -> Num {
    if count == 0 {
        return match x {
            Num::Float(_) => Num::Float(0.0),
            Num::Decimal(_, s) => Num::Decimal(0, s),
            Num::Int(_) => Num::Int(0),
        };
    }
    let c = i128::from(count);
    match x {
        Num::Int(i) => Num::Int(i / c),
        Num::Float(f) => Num::Float(f / count as f64),
        Num::Decimal(u, s) => {
            let (q, r) = (u.div_euclid(c), u.rem_euclid(c));
            let q = match (2 * r).cmp(&c) {
                std::cmp::Ordering::Greater => q + 1,
                std::cmp::Ordering::Equal if q % 2 != 0 => q + 1,
                _ => q,
            };
            Num::Decimal(q, s)
        }
    }
}

// ---- CAST ------------------------------------------------------------------

/// Whether Scylla's `CAST(x AS to)` exists for values of `from`.
pub fn cast_supported(from: &ColumnType, to: &ColumnType) -> bool {
    use ColumnType as T;
    from == to
        || (is_numeric(from) && is_numeric(to) && *to != T::Counter)
        || (matches!(to, T::Text | T::Ascii)
            && (is_numeric(from)
                || matches!(
                    from,
                    T::Timestamp
                        | T::Date
                        | T::Time
                        | T::Timeuuid
                        | T::Uuid
                        | T::Boolean
                        | T::Inet
                        | T::Ascii
                )))
        || (*to == T::Date && matches!(from, T::Timestamp | T::Timeuuid))
        || (*to == T::Timestamp && matches!(from, T::Date | T::Timeuuid))
}

pub fn cast(value: CqlValue, from: &ColumnType, to: &ColumnType) -> Result<CqlValue, EngineError> {
    use ColumnType as T;
    if from == to {
        return Ok(value);
    }
    Ok(match to {
        T::Text => CqlValue::Text(value_text(&value)),
        T::Ascii => CqlValue::Ascii(value_text(&value)),
        T::Date => CqlValue::Date(date_of_ms(millis_of(&value)?)),
        T::Timestamp => CqlValue::Timestamp(millis_of(&value)?),
        _ => num_to_value(num_of(&value)?, to, "Value out of range for the cast: ")?,
    })
}

// ---- aggregates ------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `count(*)` / `count(1)`: rows.
    CountRows,
    /// `count(x)`: non-null values.
    Count,
    Min,
    Max,
    Sum,
    Avg,
}

impl Aggregate {
    pub fn from_name(name: &str) -> Option<Aggregate> {
        Some(match name {
            "count" => Aggregate::Count,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            _ => return None,
        })
    }

    /// The result type for an argument of type `arg`.
    pub fn result_type(self, arg: Option<&ColumnType>) -> Result<ColumnType, EngineError> {
        match (self, arg) {
            (Aggregate::CountRows | Aggregate::Count, _) => Ok(ColumnType::BigInt),
            (Aggregate::Min | Aggregate::Max, Some(ty)) => Ok(ty.clone()),
            (Aggregate::Sum | Aggregate::Avg, Some(ty)) if is_numeric(ty) => Ok(match ty {
                ColumnType::Counter => ColumnType::BigInt,
                other => other.clone(),
            }),
            (_, Some(ty)) => Err(invalid(format!(
                "Invalid call to function {}, none of its type signatures match (arguments: {ty})",
                self.name()
            ))),
            (_, None) => Err(invalid(format!(
                "Function {} needs an argument",
                self.name()
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Aggregate::CountRows | Aggregate::Count => "count",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
        }
    }
}

/// The running state of one aggregate over a group of rows.
#[derive(Debug, Clone)]
pub struct Accumulator {
    kind: Aggregate,
    ty: ColumnType,
    count: i64,
    best: Option<CqlValue>,
    sum: Option<Num>,
}

impl Accumulator {
    pub fn new(kind: Aggregate, ty: ColumnType) -> Accumulator {
        Accumulator {
            kind,
            ty,
            count: 0,
            best: None,
            sum: None,
        }
    }

    /// Adds one row's argument value (None for null; CountRows ignores it).
    pub fn add(&mut self, value: Option<CqlValue>) -> Result<(), EngineError> {
        if self.kind == Aggregate::CountRows {
            self.count += 1;
            return Ok(());
        }
        let Some(value) = value else {
            return Ok(());
        };
        self.count += 1;
        match self.kind {
            Aggregate::Min | Aggregate::Max => {
                let replace = match &self.best {
                    None => true,
                    Some(best) => {
                        let order = compare_values(&value, best, &self.ty);
                        if self.kind == Aggregate::Min {
                            order.is_lt()
                        } else {
                            order.is_gt()
                        }
                    }
                };
                if replace {
                    self.best = Some(value);
                }
            }
            Aggregate::Sum | Aggregate::Avg => {
                let n = num_of(&value)?;
                self.sum = Some(match self.sum {
                    None => n,
                    Some(s) => add(s, n)?,
                });
            }
            Aggregate::Count | Aggregate::CountRows => {}
        }
        Ok(())
    }

    /// The aggregate's value: a count, the best value (null for no rows),
    /// or the sum / average (0 for no rows, as Scylla).
    pub fn finish(&self, result_type: &ColumnType) -> Result<Option<CqlValue>, EngineError> {
        let zero = match result_type {
            ColumnType::Float | ColumnType::Double => Num::Float(0.0),
            ColumnType::Decimal => Num::Decimal(0, 0),
            _ => Num::Int(0),
        };
        let overflow = "Sum overflow. Values should be casted to a wider type. ";
        Ok(match self.kind {
            Aggregate::CountRows | Aggregate::Count => Some(CqlValue::BigInt(self.count)),
            Aggregate::Min | Aggregate::Max => self.best.clone(),
            Aggregate::Sum => Some(num_to_value(
                self.sum.unwrap_or(zero),
                result_type,
                overflow,
            )?),
            Aggregate::Avg => Some(num_to_value(
                divide(self.sum.unwrap_or(zero), self.count),
                result_type,
                overflow,
            )?),
        })
    }
}

//! Column types as the protocol's `[option]` notation carries them
//! (result and bind metadata), and their CQL names.

use std::fmt;

use super::error::{invalid, ProtocolError};
use super::wire::{put_string, put_u16, Reader};

/// The type of a column, bind variable, collection element or field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// A server-side class name the protocol has no id for.
    Custom(String),
    Ascii,
    BigInt,
    Blob,
    Boolean,
    Counter,
    Decimal,
    Double,
    Float,
    Int,
    Timestamp,
    Uuid,
    Text,
    Varint,
    Timeuuid,
    Inet,
    Date,
    Time,
    SmallInt,
    TinyInt,
    Duration,
    List(Box<ColumnType>),
    Map(Box<ColumnType>, Box<ColumnType>),
    Set(Box<ColumnType>),
    Udt(Box<UdtType>),
    Tuple(Vec<ColumnType>),
}

/// A user-defined type: its keyspace, name and ordered fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UdtType {
    pub keyspace: String,
    pub name: String,
    pub fields: Vec<(String, ColumnType)>,
}

/// Collections and UDTs may not nest deeper than this when decoded, so a
/// hostile frame cannot exhaust the stack.
const MAX_TYPE_DEPTH: usize = 32;

/// Type descriptions one metadata may hold in all (each takes 2 bytes in
/// the frame and tens in memory: a frame of nothing but huge tuple types
/// must not cost gigabytes).
pub const MAX_TYPE_NODES: usize = 1 << 16;

impl ColumnType {
    /// Reads an `[option]` type description.
    pub fn read(r: &mut Reader<'_>) -> Result<ColumnType, ProtocolError> {
        Self::read_counted(r, &mut { MAX_TYPE_NODES })
    }

    /// Reads a type description, taking its nodes from `budget` (types of
    /// one metadata share one budget).
    pub fn read_counted(
        r: &mut Reader<'_>,
        budget: &mut usize,
    ) -> Result<ColumnType, ProtocolError> {
        Self::read_nested(r, 0, budget)
    }

    fn read_nested(
        r: &mut Reader<'_>,
        depth: usize,
        budget: &mut usize,
    ) -> Result<ColumnType, ProtocolError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(invalid("type nesting too deep"));
        }
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| invalid(format!("more than {MAX_TYPE_NODES} type descriptions")))?;
        let id = r.u16()?;
        let nested = |r: &mut Reader<'_>, budget: &mut usize| {
            Self::read_nested(r, depth + 1, budget).map(Box::new)
        };
        Ok(match id {
            0x0000 => ColumnType::Custom(r.string()?.to_owned()),
            0x0001 => ColumnType::Ascii,
            0x0002 => ColumnType::BigInt,
            0x0003 => ColumnType::Blob,
            0x0004 => ColumnType::Boolean,
            0x0005 => ColumnType::Counter,
            0x0006 => ColumnType::Decimal,
            0x0007 => ColumnType::Double,
            0x0008 => ColumnType::Float,
            0x0009 => ColumnType::Int,
            0x000B => ColumnType::Timestamp,
            0x000C => ColumnType::Uuid,
            0x000D => ColumnType::Text,
            0x000E => ColumnType::Varint,
            0x000F => ColumnType::Timeuuid,
            0x0010 => ColumnType::Inet,
            0x0011 => ColumnType::Date,
            0x0012 => ColumnType::Time,
            0x0013 => ColumnType::SmallInt,
            0x0014 => ColumnType::TinyInt,
            0x0015 => ColumnType::Duration,
            0x0020 => ColumnType::List(nested(r, budget)?),
            0x0021 => {
                let key = nested(r, budget)?;
                ColumnType::Map(key, nested(r, budget)?)
            }
            0x0022 => ColumnType::Set(nested(r, budget)?),
            0x0030 => {
                let keyspace = r.string()?.to_owned();
                let name = r.string()?.to_owned();
                let n = r.u16()?;
                // Each field takes at least 4 bytes (name length, type id).
                let mut fields = Vec::with_capacity(usize::from(n).min(r.remaining() / 4));
                for _ in 0..n {
                    let field = r.string()?.to_owned();
                    fields.push((field, Self::read_nested(r, depth + 1, budget)?));
                }
                ColumnType::Udt(Box::new(UdtType {
                    keyspace,
                    name,
                    fields,
                }))
            }
            0x0031 => {
                let n = r.u16()?;
                let mut elements = Vec::with_capacity(usize::from(n).min(r.remaining() / 2));
                for _ in 0..n {
                    elements.push(Self::read_nested(r, depth + 1, budget)?);
                }
                ColumnType::Tuple(elements)
            }
            other => return Err(invalid(format!("unknown type id 0x{other:04x}"))),
        })
    }

    /// Writes the `[option]` type description.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        put_u16(out, self.id());
        match self {
            ColumnType::Custom(class) => put_string(out, class)?,
            ColumnType::List(element) | ColumnType::Set(element) => element.write(out)?,
            ColumnType::Map(key, value) => {
                key.write(out)?;
                value.write(out)?;
            }
            ColumnType::Udt(udt) => {
                put_string(out, &udt.keyspace)?;
                put_string(out, &udt.name)?;
                put_u16(out, field_count(udt.fields.len())?);
                for (name, ty) in &udt.fields {
                    put_string(out, name)?;
                    ty.write(out)?;
                }
            }
            ColumnType::Tuple(elements) => {
                put_u16(out, field_count(elements.len())?);
                for ty in elements {
                    ty.write(out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The protocol's type id.
    pub fn id(&self) -> u16 {
        match self {
            ColumnType::Custom(_) => 0x0000,
            ColumnType::Ascii => 0x0001,
            ColumnType::BigInt => 0x0002,
            ColumnType::Blob => 0x0003,
            ColumnType::Boolean => 0x0004,
            ColumnType::Counter => 0x0005,
            ColumnType::Decimal => 0x0006,
            ColumnType::Double => 0x0007,
            ColumnType::Float => 0x0008,
            ColumnType::Int => 0x0009,
            ColumnType::Timestamp => 0x000B,
            ColumnType::Uuid => 0x000C,
            ColumnType::Text => 0x000D,
            ColumnType::Varint => 0x000E,
            ColumnType::Timeuuid => 0x000F,
            ColumnType::Inet => 0x0010,
            ColumnType::Date => 0x0011,
            ColumnType::Time => 0x0012,
            ColumnType::SmallInt => 0x0013,
            ColumnType::TinyInt => 0x0014,
            ColumnType::Duration => 0x0015,
            ColumnType::List(_) => 0x0020,
            ColumnType::Map(_, _) => 0x0021,
            ColumnType::Set(_) => 0x0022,
            ColumnType::Udt(_) => 0x0030,
            ColumnType::Tuple(_) => 0x0031,
        }
    }

    /// The fixed encoded width of a native type, when it has one.
    pub fn fixed_width(&self) -> Option<usize> {
        match self {
            ColumnType::Boolean | ColumnType::TinyInt => Some(1),
            ColumnType::SmallInt => Some(2),
            ColumnType::Int | ColumnType::Float | ColumnType::Date => Some(4),
            ColumnType::BigInt
            | ColumnType::Counter
            | ColumnType::Double
            | ColumnType::Timestamp
            | ColumnType::Time => Some(8),
            ColumnType::Uuid | ColumnType::Timeuuid => Some(16),
            _ => None,
        }
    }
}

fn field_count(n: usize) -> Result<u16, ProtocolError> {
    u16::try_from(n).map_err(|_| invalid(format!("{n} fields exceed u16")))
}

/// CQL type text, as `system_schema` writes it (collections not frozen).
impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Custom(class) => write!(f, "'{class}'"),
            ColumnType::Ascii => f.write_str("ascii"),
            ColumnType::BigInt => f.write_str("bigint"),
            ColumnType::Blob => f.write_str("blob"),
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Counter => f.write_str("counter"),
            ColumnType::Decimal => f.write_str("decimal"),
            ColumnType::Double => f.write_str("double"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Int => f.write_str("int"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::Uuid => f.write_str("uuid"),
            ColumnType::Text => f.write_str("text"),
            ColumnType::Varint => f.write_str("varint"),
            ColumnType::Timeuuid => f.write_str("timeuuid"),
            ColumnType::Inet => f.write_str("inet"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Time => f.write_str("time"),
            ColumnType::SmallInt => f.write_str("smallint"),
            ColumnType::TinyInt => f.write_str("tinyint"),
            ColumnType::Duration => f.write_str("duration"),
            ColumnType::List(e) => write!(f, "list<{e}>"),
            ColumnType::Set(e) => write!(f, "set<{e}>"),
            ColumnType::Map(k, v) => write!(f, "map<{k}, {v}>"),
            ColumnType::Udt(udt) => f.write_str(&udt.name),
            ColumnType::Tuple(elements) => {
                f.write_str("tuple<")?;
                for (i, e) in elements.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(">")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_round_trip() {
        let ty = ColumnType::Map(
            Box::new(ColumnType::Text),
            Box::new(ColumnType::List(Box::new(ColumnType::Tuple(vec![
                ColumnType::Int,
                ColumnType::Udt(Box::new(UdtType {
                    keyspace: "ks".into(),
                    name: "addr".into(),
                    fields: vec![("street".into(), ColumnType::Text)],
                })),
            ])))),
        );
        let mut out = Vec::new();
        ty.write(&mut out).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(ColumnType::read(&mut r).unwrap(), ty);
        assert!(r.is_empty());
        assert_eq!(ty.to_string(), "map<text, list<tuple<int, addr>>>");
    }

    #[test]
    fn hostile_nesting_is_rejected() {
        let mut bytes = Vec::new();
        for _ in 0..1000 {
            bytes.extend_from_slice(&[0x00, 0x20]);
        }
        bytes.extend_from_slice(&[0x00, 0x09]);
        assert!(ColumnType::read(&mut Reader::new(&bytes)).is_err());
        assert!(ColumnType::read(&mut Reader::new(&[0x00, 0x0A])).is_err());
    }
}

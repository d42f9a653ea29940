//! CQL data types and their canonical text form.

use std::fmt;

use crate::keywords::quote_type_name;

/// The built-in scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NativeType {
    /// `ascii`
    Ascii,
    /// `bigint`
    Bigint,
    /// `blob`
    Blob,
    /// `boolean`
    Boolean,
    /// `counter`
    Counter,
    /// `date`
    Date,
    /// `decimal`
    Decimal,
    /// `double`
    Double,
    /// `duration`
    Duration,
    /// `float`
    Float,
    /// `inet`
    Inet,
    /// `int`
    Int,
    /// `smallint`
    Smallint,
    /// `text`; `varchar` is parsed as this too since they are the same type.
    Text,
    /// `time`
    Time,
    /// `timestamp`
    Timestamp,
    /// `timeuuid`
    Timeuuid,
    /// `tinyint`
    Tinyint,
    /// `uuid`
    Uuid,
    /// `varint`
    Varint,
}

impl NativeType {
    /// Every native type, for exhaustive tests and lookups.
    pub const ALL: [NativeType; 20] = [
        NativeType::Ascii,
        NativeType::Bigint,
        NativeType::Blob,
        NativeType::Boolean,
        NativeType::Counter,
        NativeType::Date,
        NativeType::Decimal,
        NativeType::Double,
        NativeType::Duration,
        NativeType::Float,
        NativeType::Inet,
        NativeType::Int,
        NativeType::Smallint,
        NativeType::Text,
        NativeType::Time,
        NativeType::Timestamp,
        NativeType::Timeuuid,
        NativeType::Tinyint,
        NativeType::Uuid,
        NativeType::Varint,
    ];

    /// Canonical (Scylla) name of the type.
    pub fn name(self) -> &'static str {
        match self {
            NativeType::Ascii => "ascii",
            NativeType::Bigint => "bigint",
            NativeType::Blob => "blob",
            NativeType::Boolean => "boolean",
            NativeType::Counter => "counter",
            NativeType::Date => "date",
            NativeType::Decimal => "decimal",
            NativeType::Double => "double",
            NativeType::Duration => "duration",
            NativeType::Float => "float",
            NativeType::Inet => "inet",
            NativeType::Int => "int",
            NativeType::Smallint => "smallint",
            NativeType::Text => "text",
            NativeType::Time => "time",
            NativeType::Timestamp => "timestamp",
            NativeType::Timeuuid => "timeuuid",
            NativeType::Tinyint => "tinyint",
            NativeType::Uuid => "uuid",
            NativeType::Varint => "varint",
        }
    }

    /// Looks a type up by its lowercase name, accepting the `varchar` alias.
    pub fn from_name(name: &str) -> Option<NativeType> {
        if name == "varchar" {
            return Some(NativeType::Text);
        }
        NativeType::ALL.iter().copied().find(|t| t.name() == name)
    }
}

impl fmt::Display for NativeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CQL type expression, as written in DDL or stored in `system_schema`.
///
/// The tree mirrors the text: `tuple<int>` and `frozen<tuple<int>>` are
/// different values even though Scylla treats tuples as always frozen; the
/// server applies such normalisation itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CqlType {
    /// A built-in scalar type.
    Native(NativeType),
    /// `list<T>`
    List(Box<CqlType>),
    /// `set<T>`
    Set(Box<CqlType>),
    /// `map<K, V>`
    Map(Box<CqlType>, Box<CqlType>),
    /// `tuple<T1, T2, ...>` (at least one element).
    Tuple(Vec<CqlType>),
    /// `frozen<T>`
    Frozen(Box<CqlType>),
    /// `vector<T, N>` (Scylla vector search).
    Vector(Box<CqlType>, u32),
    /// A user-defined type, optionally keyspace-qualified.
    UserDefined {
        /// Keyspace given explicitly as `ks.type`, if any.
        keyspace: Option<String>,
        /// Type name (case preserved when quoted, lowercased otherwise).
        name: String,
    },
    /// A custom type given as a quoted Java class name (`'org.apache...'`).
    Custom(String),
}

impl CqlType {
    /// Strips any `frozen<...>` wrappers, since most type checks ignore them.
    pub fn unfrozen(&self) -> &CqlType {
        let mut t = self;
        while let CqlType::Frozen(inner) = t {
            t = inner;
        }
        t
    }

    /// Whether this is (possibly frozen) `list`, `set` or `map`.
    pub fn is_collection(&self) -> bool {
        matches!(
            self.unfrozen(),
            CqlType::List(_) | CqlType::Set(_) | CqlType::Map(_, _)
        )
    }
}

impl From<NativeType> for CqlType {
    fn from(t: NativeType) -> Self {
        CqlType::Native(t)
    }
}

/// Renders Scylla's canonical type text (`map<text, frozen<list<int>>>`),
/// which is what `system_schema.columns.type` holds. `parse_type` reads it
/// back to an equal value.
///
/// A UDT prints its keyspace only if the value carries one; schema tables
/// always use the bare (quoted if needed) name, so the server should store
/// UDT references without a keyspace.
impl fmt::Display for CqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CqlType::Native(t) => f.write_str(t.name()),
            CqlType::List(t) => write!(f, "list<{t}>"),
            CqlType::Set(t) => write!(f, "set<{t}>"),
            CqlType::Map(k, v) => write!(f, "map<{k}, {v}>"),
            CqlType::Tuple(ts) => {
                f.write_str("tuple<")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(">")
            }
            CqlType::Frozen(t) => write!(f, "frozen<{t}>"),
            CqlType::Vector(t, n) => write!(f, "vector<{t}, {n}>"),
            CqlType::UserDefined { keyspace, name } => {
                if let Some(ks) = keyspace {
                    write!(f, "{}.", crate::keywords::quote_identifier(ks))?;
                }
                f.write_str(&quote_type_name(name))
            }
            CqlType::Custom(class) => write!(f, "'{}'", class.replace('\'', "''")),
        }
    }
}

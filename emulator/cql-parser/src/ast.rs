//! Abstract syntax tree produced by [`parse_statement`](crate::parse_statement).
//!
//! Identifiers are stored the way CQL resolves them: unquoted names are
//! lowercased, quoted names keep their case. Function names follow the same
//! rule, so `toTimestamp(now())` is the call `totimestamp(now())`.
//!
//! The tree is syntactic only: the parser does not know the schema, so checks
//! such as "is this column part of the primary key" are left to the server.

use std::fmt;

use crate::keywords::quote_identifier;
use crate::types::CqlType;

/// `[keyspace.]name`; `keyspace` is `None` when the statement relies on the
/// session's current keyspace (`USE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    /// Explicit keyspace, if any.
    pub keyspace: Option<String>,
    /// Object name.
    pub name: String,
}

impl QualifiedName {
    /// A name without a keyspace.
    pub fn unqualified(name: impl Into<String>) -> Self {
        QualifiedName {
            keyspace: None,
            name: name.into(),
        }
    }

    /// A `keyspace.name` pair.
    pub fn qualified(keyspace: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            keyspace: Some(keyspace.into()),
            name: name.into(),
        }
    }
}

/// Renders as CQL source, quoting parts that need it.
impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ks) = &self.keyspace {
            write!(f, "{}.", quote_identifier(ks))?;
        }
        f.write_str(&quote_identifier(&self.name))
    }
}

/// Sort direction in `ORDER BY` and `CLUSTERING ORDER BY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// `ASC` (the default when omitted).
    Asc,
    /// `DESC`
    Desc,
}

/// A CQL `duration` value, kept in the three independent units of the wire
/// format because months and days have no fixed length in nanoseconds.
/// All non-zero components share one sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Duration {
    /// Months (years are folded in as 12 months).
    pub months: i32,
    /// Days (weeks are folded in as 7 days).
    pub days: i32,
    /// Nanoseconds (hours and smaller units).
    pub nanoseconds: i64,
}

impl Duration {
    /// The same duration with every component negated.
    pub fn negated(self) -> Duration {
        // Components are built from unsigned digits, so they are never MIN.
        Duration {
            months: self.months.wrapping_neg(),
            days: self.days.wrapping_neg(),
            nanoseconds: self.nanoseconds.wrapping_neg(),
        }
    }
}

/// Renders in CQL's compact unit form (`1y2mo3d4h5m6s7ms8us9ns`, `-1h`),
/// which parses back to the same value.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.months == 0 && self.days == 0 && self.nanoseconds == 0 {
            return f.write_str("0s");
        }
        if self.months < 0 || self.days < 0 || self.nanoseconds < 0 {
            f.write_str("-")?;
        }
        let months = self.months.unsigned_abs();
        let days = self.days.unsigned_abs();
        let mut nanos = self.nanoseconds.unsigned_abs();
        if months / 12 > 0 {
            write!(f, "{}y", months / 12)?;
        }
        if months % 12 > 0 {
            write!(f, "{}mo", months % 12)?;
        }
        if days > 0 {
            write!(f, "{days}d")?;
        }
        const UNITS: [(u64, &str); 6] = [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        for (size, unit) in UNITS {
            if nanos >= size {
                write!(f, "{}{unit}", nanos / size)?;
                nanos %= size;
            }
        }
        Ok(())
    }
}

/// A constant written in the statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Literal {
    /// `'text'` or `$$text$$`, unescaped.
    String(String),
    /// An integer exactly as written, including a leading `-`; kept as text
    /// because it may be a `varint` of any size.
    Integer(String),
    /// A floating-point number as written (`1.5e3`, `-0.5`), or `NaN`,
    /// `Infinity`, `-Infinity` in that spelling. Kept as text so `decimal`
    /// values keep their precision.
    Float(String),
    /// `true` / `false`.
    Boolean(bool),
    /// An unquoted UUID constant, as its 16 bytes.
    Uuid([u8; 16]),
    /// A `0x...` blob constant.
    Blob(Vec<u8>),
    /// A duration constant such as `1h30m` or `P1DT2H`.
    Duration(Duration),
    /// `null`
    Null,
}

impl Literal {
    /// The value as plain text, without CQL quoting: strings unquoted, other
    /// constants as they would be written. Used for option maps such as
    /// `replication`, which Scylla stores as `map<text, text>`.
    pub fn plain_text(&self) -> String {
        match self {
            Literal::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The value of an integer literal if it fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Literal::Integer(text) => text.parse().ok(),
            _ => None,
        }
    }
}

/// Renders as CQL source (`'it''s'`, `0xcafe`, `1h`, `null`).
impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::Integer(t) | Literal::Float(t) => f.write_str(t),
            Literal::Boolean(b) => write!(f, "{b}"),
            Literal::Uuid(u) => {
                for (i, b) in u.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            Literal::Blob(bytes) => {
                f.write_str("0x")?;
                for b in bytes {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            Literal::Duration(d) => write!(f, "{d}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

/// A bind marker: `?` or `:name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindMarker {
    /// Position among all markers of the statement, in order of appearance
    /// (counting `USING`/`LIMIT` markers and every statement of a batch),
    /// which is the order the server reports bind variables in.
    pub index: usize,
    /// The name of a `:name` marker (lowercased unless quoted).
    pub name: Option<String>,
}

/// A value expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Term {
    /// A constant.
    Literal(Literal),
    /// `[a, b]`
    List(Vec<Term>),
    /// `{a, b}` (non-empty).
    Set(Vec<Term>),
    /// `{k: v, ...}` (non-empty).
    Map(Vec<(Term, Term)>),
    /// `{}`: an empty set *or* map; only the receiver's type can tell which,
    /// so the parser does not guess.
    EmptyBraces,
    /// `(a, b)`; a one-element `(a)` is also a tuple, as in Cassandra.
    Tuple(Vec<Term>),
    /// `{field: value, ...}` user-defined type literal.
    Udt(Vec<(String, Term)>),
    /// `?` or `:name`.
    BindMarker(BindMarker),
    /// `name(args)`, e.g. `now()`, `uuid()`, `toTimestamp(now())`, `token(?)`.
    FunctionCall {
        /// Function name (lowercased unless quoted), optionally keyspace-qualified.
        name: QualifiedName,
        /// Arguments in order.
        args: Vec<Term>,
    },
    /// `(type) term`, e.g. `(bigint) 3`.
    TypeCast {
        /// Target type.
        ty: CqlType,
        /// The value being cast.
        term: Box<Term>,
    },
}

impl Term {
    /// The bind marker if this term is exactly `?` or `:name`.
    pub fn as_bind_marker(&self) -> Option<&BindMarker> {
        match self {
            Term::BindMarker(m) => Some(m),
            _ => None,
        }
    }

    /// The literal if this term is a constant.
    pub fn as_literal(&self) -> Option<&Literal> {
        match self {
            Term::Literal(l) => Some(l),
            _ => None,
        }
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// Renders as CQL source; useful for error messages and debugging.
impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Literal(l) => write!(f, "{l}"),
            Term::List(items) => {
                f.write_str("[")?;
                write_list(f, items)?;
                f.write_str("]")
            }
            Term::Set(items) => {
                f.write_str("{")?;
                write_list(f, items)?;
                f.write_str("}")
            }
            Term::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Term::EmptyBraces => f.write_str("{}"),
            Term::Tuple(items) => {
                f.write_str("(")?;
                write_list(f, items)?;
                f.write_str(")")
            }
            Term::Udt(fields) => {
                f.write_str("{")?;
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", quote_identifier(name))?;
                }
                f.write_str("}")
            }
            Term::BindMarker(BindMarker { name: None, .. }) => f.write_str("?"),
            Term::BindMarker(BindMarker { name: Some(n), .. }) => {
                write!(f, ":{}", quote_identifier(n))
            }
            Term::FunctionCall { name, args } => {
                write!(f, "{name}(")?;
                write_list(f, args)?;
                f.write_str(")")
            }
            Term::TypeCast { ty, term } => write!(f, "({ty}) {term}"),
        }
    }
}

/// The value of a `WITH name = value` property.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OptionValue {
    /// A constant: `comment = 'x'`, `durable_writes = true`, `gc_grace_seconds = 10`.
    Literal(Literal),
    /// A bare word, which Cassandra accepts for some options (`speculative_retry = NONE`).
    Identifier(String),
    /// A map literal: `replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`.
    Map(Vec<(Literal, Literal)>),
}

impl OptionValue {
    /// The entries of a map value.
    pub fn as_map(&self) -> Option<&[(Literal, Literal)]> {
        match self {
            OptionValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// A scalar value as plain text (see [`Literal::plain_text`]); `None` for maps.
    pub fn as_text(&self) -> Option<String> {
        match self {
            OptionValue::Literal(l) => Some(l.plain_text()),
            OptionValue::Identifier(s) => Some(s.clone()),
            OptionValue::Map(_) => None,
        }
    }

    /// A map value with keys and values as plain text, the form Scylla
    /// stores `replication`, `compaction` etc. in.
    pub fn as_text_map(&self) -> Option<Vec<(String, String)>> {
        self.as_map().map(|entries| {
            entries
                .iter()
                .map(|(k, v)| (k.plain_text(), v.plain_text()))
                .collect()
        })
    }
}

/// The `WITH a = x AND b = y` properties of a DDL statement, in source order.
/// Names are lowercased identifiers; the parser rejects duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Options {
    /// `(name, value)` pairs in the order written.
    pub entries: Vec<(String, OptionValue)>,
}

impl Options {
    /// The value of property `name`, if given.
    pub fn get(&self, name: &str) -> Option<&OptionValue> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether no property was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterates over `(name, value)` pairs in source order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OptionValue)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }
}

/// A column in `CREATE TABLE` or `ALTER TABLE ... ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Declared type.
    pub ty: CqlType,
    /// Declared `STATIC`.
    pub is_static: bool,
}

/// A comparison operator in `WHERE` and `IF` clauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `CONTAINS`
    Contains,
    /// `CONTAINS KEY`
    ContainsKey,
    /// `LIKE`
    Like,
}

/// Renders as written in CQL (`>=`, `CONTAINS KEY`).
impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Eq => "=",
            Operator::Neq => "!=",
            Operator::Lt => "<",
            Operator::Lte => "<=",
            Operator::Gt => ">",
            Operator::Gte => ">=",
            Operator::Contains => "CONTAINS",
            Operator::ContainsKey => "CONTAINS KEY",
            Operator::Like => "LIKE",
        })
    }
}

/// The values of an `IN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InValues {
    /// `IN (t1, t2, ...)`, possibly empty.
    List(Vec<Term>),
    /// `IN ?`: the whole list is bound as one value.
    Marker(BindMarker),
}

/// What a relation or condition tests its left-hand side against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Predicate {
    /// `op value`
    Compare {
        /// The operator.
        op: Operator,
        /// The right-hand side.
        value: Term,
    },
    /// `IN (...)` or `IN ?`.
    In(InValues),
}

/// One restriction of a `WHERE` clause.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Relation {
    /// `col op term`, `col IN (...)`, `col CONTAINS term`, ...
    Column {
        /// Restricted column.
        column: String,
        /// The test.
        predicate: Predicate,
    },
    /// `col[key] op term` (map entry restriction, used with indexes).
    Element {
        /// Collection column.
        column: String,
        /// The map key.
        key: Term,
        /// The test applied to the entry's value.
        predicate: Predicate,
    },
    /// `(c1, c2) op (t1, t2)` or `(c1, c2) IN ((..), (..))`.
    MultiColumn {
        /// Restricted clustering columns, in order.
        columns: Vec<String>,
        /// The test; values are tuples or markers.
        predicate: Predicate,
    },
    /// `token(a, b) op term`.
    Token {
        /// Partition key columns passed to `token`.
        columns: Vec<String>,
        /// The operator.
        op: Operator,
        /// The token bound (a constant, marker or `token(...)` call).
        value: Term,
    },
    /// `col IS NOT NULL` (materialized views).
    IsNotNull {
        /// The column.
        column: String,
    },
}

/// The left-hand side of an `IF` condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConditionTarget {
    /// `IF col ...`
    Column(String),
    /// `IF col[key] ...` (list index or map key).
    Element {
        /// Collection column.
        column: String,
        /// Index or key.
        key: Term,
    },
    /// `IF col.field ...` (UDT field).
    Field {
        /// UDT column.
        column: String,
        /// Field name.
        field: String,
    },
}

/// One `IF` test of a lightweight transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnCondition {
    /// What is tested.
    pub target: ConditionTarget,
    /// The test.
    pub predicate: Predicate,
}

/// The `IF` clause of an `UPDATE` or `DELETE` (for `INSERT`, `IF NOT EXISTS`
/// is the `if_not_exists` flag instead).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    /// `IF EXISTS`
    Exists,
    /// `IF c1 = x AND c2 > y ...`
    Columns(Vec<ColumnCondition>),
}

/// `USING TTL .. AND TIMESTAMP .. AND TIMEOUT ..`; each at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UsingClause {
    /// `TTL t` (seconds).
    pub ttl: Option<Term>,
    /// `TIMESTAMP t` (microseconds).
    pub timestamp: Option<Term>,
    /// `TIMEOUT t` (a duration, Scylla extension).
    pub timeout: Option<Term>,
}

impl UsingClause {
    /// Whether no option was given.
    pub fn is_empty(&self) -> bool {
        self.ttl.is_none() && self.timestamp.is_none() && self.timeout.is_none()
    }
}

/// One `SET` item of an `UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Assignment {
    /// `col = value`
    Set {
        /// Target column.
        column: String,
        /// New value.
        value: Term,
    },
    /// `col = col + value` or `col += value`: counter increment, list
    /// append, set union or map merge.
    Add {
        /// Target column.
        column: String,
        /// The added value.
        value: Term,
    },
    /// `col = value + col`: list prepend.
    Prepend {
        /// Target column.
        column: String,
        /// The prepended list.
        value: Term,
    },
    /// `col = col - value` or `col -= value`: counter decrement or element removal.
    Subtract {
        /// Target column.
        column: String,
        /// The subtracted value.
        value: Term,
    },
    /// `col[key] = value`: list element or map entry.
    SetElement {
        /// Collection column.
        column: String,
        /// List index or map key.
        key: Term,
        /// New element value.
        value: Term,
    },
    /// `col.field = value`: one field of a non-frozen UDT.
    SetField {
        /// UDT column.
        column: String,
        /// Field name.
        field: String,
        /// New field value.
        value: Term,
    },
}

impl Assignment {
    /// The column this assignment modifies.
    pub fn column(&self) -> &str {
        match self {
            Assignment::Set { column, .. }
            | Assignment::Add { column, .. }
            | Assignment::Prepend { column, .. }
            | Assignment::Subtract { column, .. }
            | Assignment::SetElement { column, .. }
            | Assignment::SetField { column, .. } => column,
        }
    }
}

/// What a `DELETE` removes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeleteTarget {
    /// A whole column.
    Column(String),
    /// `col[key]`: a list element or map entry.
    Element {
        /// Collection column.
        column: String,
        /// Index or key.
        key: Term,
    },
    /// `col.field`: a UDT field.
    Field {
        /// UDT column.
        column: String,
        /// Field name.
        field: String,
    },
}

/// A `SELECT` result column expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// A column.
    Column(String),
    /// `COUNT(*)` or `COUNT(1)`: the row count (result column `count`).
    CountRows,
    /// `WRITETIME(col)`
    WriteTime(String),
    /// `TTL(col)`
    Ttl(String),
    /// Any other function call: `token(pk)`, `toJson(c)`, `count(c)`, `max(c)`, ...
    Function {
        /// Function name (lowercased unless quoted).
        name: QualifiedName,
        /// Arguments.
        args: Vec<Selector>,
    },
    /// `CAST(selector AS type)`
    Cast {
        /// The value being cast.
        selector: Box<Selector>,
        /// Target type.
        ty: CqlType,
    },
    /// `selector.field`: a UDT field.
    Field {
        /// The UDT value.
        selector: Box<Selector>,
        /// Field name.
        field: String,
    },
    /// `selector[key]`: a collection element.
    Element {
        /// The collection value.
        selector: Box<Selector>,
        /// Index or key.
        key: Term,
    },
    /// A constant or bind marker, typically a function argument (`blobAsText(0xcafe)`).
    Term(Term),
}

/// Renders as CQL source (`count(*)`, `writetime(v)`, `cast(a AS text)`,
/// `m['k']`), for error messages and default column names.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Column(name) => f.write_str(&quote_identifier(name)),
            Selector::CountRows => f.write_str("count(*)"),
            Selector::WriteTime(c) => write!(f, "writetime({})", quote_identifier(c)),
            Selector::Ttl(c) => write!(f, "ttl({})", quote_identifier(c)),
            Selector::Function { name, args } => {
                write!(f, "{name}(")?;
                write_list(f, args)?;
                f.write_str(")")
            }
            Selector::Cast { selector, ty } => write!(f, "cast({selector} AS {ty})"),
            Selector::Field { selector, field } => {
                write!(f, "{selector}.{}", quote_identifier(field))
            }
            Selector::Element { selector, key } => write!(f, "{selector}[{key}]"),
            Selector::Term(term) => write!(f, "{term}"),
        }
    }
}

/// A selector with its optional `AS alias`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SelectItem {
    /// The expression.
    pub selector: Selector,
    /// `AS alias`, if given.
    pub alias: Option<String>,
}

/// What a `SELECT` returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selection {
    /// `*`
    Star,
    /// An explicit list of selectors.
    Items(Vec<SelectItem>),
}

/// `SELECT`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Select {
    /// `SELECT DISTINCT`
    pub distinct: bool,
    /// `SELECT JSON`
    pub json: bool,
    /// Result columns.
    pub selection: Selection,
    /// Queried table.
    pub table: QualifiedName,
    /// `WHERE` restrictions (joined by `AND`); empty when absent.
    pub where_clause: Vec<Relation>,
    /// `GROUP BY` columns.
    pub group_by: Vec<String>,
    /// `ORDER BY` columns.
    pub order_by: Vec<(String, Order)>,
    /// `PER PARTITION LIMIT`
    pub per_partition_limit: Option<Term>,
    /// `LIMIT`
    pub limit: Option<Term>,
    /// `ALLOW FILTERING`
    pub allow_filtering: bool,
    /// `BYPASS CACHE` (Scylla extension, accepted and recorded).
    pub bypass_cache: bool,
    /// `USING TIMEOUT`, which drivers append after everything else.
    pub timeout: Option<Term>,
}

/// `INSERT INTO t (cols) VALUES (values)`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Insert {
    /// Target table.
    pub table: QualifiedName,
    /// Column names, same length as `values`.
    pub columns: Vec<String>,
    /// Values, one per column.
    pub values: Vec<Term>,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// `USING ...`
    pub using: UsingClause,
}

/// `INSERT INTO t JSON '...'`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InsertJson {
    /// Target table.
    pub table: QualifiedName,
    /// The JSON document (a string literal or marker).
    pub json: Term,
    /// `DEFAULT UNSET` (otherwise omitted columns are set to null).
    pub default_unset: bool,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// `USING ...`
    pub using: UsingClause,
}

/// `UPDATE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Update {
    /// Target table.
    pub table: QualifiedName,
    /// `USING ...`
    pub using: UsingClause,
    /// `SET` items.
    pub assignments: Vec<Assignment>,
    /// `WHERE` restrictions.
    pub where_clause: Vec<Relation>,
    /// `IF ...`
    pub condition: Option<Condition>,
}

/// `DELETE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delete {
    /// Deleted columns/elements; empty means the whole row(s).
    pub targets: Vec<DeleteTarget>,
    /// Target table.
    pub table: QualifiedName,
    /// `USING ...`
    pub using: UsingClause,
    /// `WHERE` restrictions.
    pub where_clause: Vec<Relation>,
    /// `IF ...`
    pub condition: Option<Condition>,
}

/// The kind of a `BATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchKind {
    /// `BEGIN BATCH` (or `BEGIN LOGGED BATCH`).
    Logged,
    /// `BEGIN UNLOGGED BATCH`
    Unlogged,
    /// `BEGIN COUNTER BATCH`
    Counter,
}

/// `BEGIN ... BATCH ... APPLY BATCH`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Batch {
    /// Logged, unlogged or counter.
    pub kind: BatchKind,
    /// `USING ...` applying to the whole batch.
    pub using: UsingClause,
    /// The statements; only `Insert`, `InsertJson`, `Update` and `Delete` occur.
    pub statements: Vec<Statement>,
}

/// `CREATE KEYSPACE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateKeyspace {
    /// Keyspace name.
    pub name: String,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// `replication`, `durable_writes`, `tablets`, ...
    pub options: Options,
}

/// `ALTER KEYSPACE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlterKeyspace {
    /// Keyspace name.
    pub name: String,
    /// The changed options.
    pub options: Options,
}

/// `DROP KEYSPACE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DropKeyspace {
    /// Keyspace name.
    pub name: String,
    /// `IF EXISTS`
    pub if_exists: bool,
}

/// `CREATE TABLE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateTable {
    /// Table name.
    pub name: QualifiedName,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// Columns in declaration order.
    pub columns: Vec<ColumnDef>,
    /// Partition key columns; empty if no `PRIMARY KEY` was given (the
    /// server rejects that, as Cassandra does, with an invalid-query error).
    pub partition_key: Vec<String>,
    /// Clustering columns in key order.
    pub clustering_key: Vec<String>,
    /// `WITH CLUSTERING ORDER BY (...)`
    pub clustering_order: Vec<(String, Order)>,
    /// `WITH COMPACT STORAGE`
    pub compact_storage: bool,
    /// Other `WITH` properties (`compaction`, `comment`, ...).
    pub options: Options,
}

/// What an `ALTER TABLE` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AlterTableAction {
    /// `ADD col type [STATIC]` or `ADD (c1 t1, c2 t2)`.
    Add(Vec<ColumnDef>),
    /// `DROP col` or `DROP (c1, c2)`, optionally `USING TIMESTAMP t`.
    Drop {
        /// Dropped columns.
        columns: Vec<String>,
        /// `USING TIMESTAMP`, if given.
        timestamp: Option<Term>,
    },
    /// `ALTER col TYPE type`.
    AlterType {
        /// The column.
        column: String,
        /// Its new type.
        ty: CqlType,
    },
    /// `RENAME a TO b AND c TO d`.
    Rename(Vec<(String, String)>),
    /// `WITH ...`
    Options(Options),
}

/// `ALTER TABLE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlterTable {
    /// Table name.
    pub name: QualifiedName,
    /// The change.
    pub action: AlterTableAction,
}

/// `DROP TABLE`, `DROP TYPE`, `DROP INDEX` and `DROP MATERIALIZED VIEW`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DropObject {
    /// Object name.
    pub name: QualifiedName,
    /// `IF EXISTS`
    pub if_exists: bool,
}

/// `TRUNCATE [TABLE] t`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Truncate {
    /// Table name.
    pub table: QualifiedName,
    /// `USING TIMEOUT` (Scylla extension).
    pub timeout: Option<Term>,
}

/// `CREATE TYPE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateType {
    /// Type name.
    pub name: QualifiedName,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// Fields in declaration order.
    pub fields: Vec<(String, CqlType)>,
}

/// What an `ALTER TYPE` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AlterTypeAction {
    /// `ADD field type`
    Add {
        /// New field name.
        field: String,
        /// Its type.
        ty: CqlType,
    },
    /// `RENAME a TO b AND c TO d`
    Rename(Vec<(String, String)>),
}

/// `ALTER TYPE`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlterType {
    /// Type name.
    pub name: QualifiedName,
    /// The change.
    pub action: AlterTypeAction,
}

/// What a secondary index covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexTarget {
    /// `col` (values for collections).
    Column(String),
    /// `KEYS(col)`
    Keys(String),
    /// `VALUES(col)`
    Values(String),
    /// `ENTRIES(col)`
    Entries(String),
    /// `FULL(col)`
    Full(String),
    /// `(pk1, pk2)`: the partition key of a Scylla local index.
    PartitionKey(Vec<String>),
}

/// `CREATE [CUSTOM] INDEX`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateIndex {
    /// Index name, if given.
    pub name: Option<String>,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// Indexed table.
    pub table: QualifiedName,
    /// Indexed expressions.
    pub targets: Vec<IndexTarget>,
    /// `USING 'class'` of a custom index.
    pub custom_class: Option<String>,
    /// `WITH ...` (e.g. `OPTIONS = {...}`).
    pub options: Options,
}

/// `CREATE MATERIALIZED VIEW`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateMaterializedView {
    /// View name.
    pub name: QualifiedName,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// Columns selected from the base table.
    pub selection: Selection,
    /// Base table.
    pub base_table: QualifiedName,
    /// `WHERE` of the defining select (usually `IS NOT NULL` restrictions).
    pub where_clause: Vec<Relation>,
    /// Partition key of the view.
    pub partition_key: Vec<String>,
    /// Clustering key of the view.
    pub clustering_key: Vec<String>,
    /// `WITH CLUSTERING ORDER BY (...)`
    pub clustering_order: Vec<(String, Order)>,
    /// Other `WITH` properties.
    pub options: Options,
}

/// `ALTER MATERIALIZED VIEW ... WITH ...`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlterMaterializedView {
    /// View name.
    pub name: QualifiedName,
    /// Changed properties.
    pub options: Options,
}

/// One parsed CQL statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Statement {
    /// `USE ks`
    Use(String),
    /// `CREATE KEYSPACE`
    CreateKeyspace(CreateKeyspace),
    /// `ALTER KEYSPACE`
    AlterKeyspace(AlterKeyspace),
    /// `DROP KEYSPACE`
    DropKeyspace(DropKeyspace),
    /// `CREATE TABLE`
    CreateTable(CreateTable),
    /// `ALTER TABLE`
    AlterTable(AlterTable),
    /// `DROP TABLE`
    DropTable(DropObject),
    /// `TRUNCATE`
    Truncate(Truncate),
    /// `CREATE TYPE`
    CreateType(CreateType),
    /// `ALTER TYPE`
    AlterType(AlterType),
    /// `DROP TYPE`
    DropType(DropObject),
    /// `CREATE INDEX`
    CreateIndex(CreateIndex),
    /// `DROP INDEX`
    DropIndex(DropObject),
    /// `CREATE MATERIALIZED VIEW`
    CreateMaterializedView(CreateMaterializedView),
    /// `ALTER MATERIALIZED VIEW`
    AlterMaterializedView(AlterMaterializedView),
    /// `DROP MATERIALIZED VIEW`
    DropMaterializedView(DropObject),
    /// `SELECT`
    Select(Select),
    /// `INSERT ... VALUES`
    Insert(Insert),
    /// `INSERT ... JSON`
    InsertJson(InsertJson),
    /// `UPDATE`
    Update(Update),
    /// `DELETE`
    Delete(Delete),
    /// `BATCH`
    Batch(Batch),
}

//! Bind-variable receivers: for each marker of a statement, what value it
//! stands for, so the server can report bind-variable names and types in a
//! PREPARE result (the parser knows positions, the server knows the schema).

use std::fmt;

use crate::ast::{
    AlterTableAction, Assignment, BindMarker, Condition, ConditionTarget, DeleteTarget, InValues,
    Operator, Predicate, QualifiedName, Relation, Selection, Selector, Statement, Term,
    UsingClause,
};
use crate::types::CqlType;

/// One step from a column's type down to a component of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// Map key, or list index (`int`): `m[?]`, `{?: v}`, `CONTAINS KEY ?`.
    Key,
    /// Map value, or list/set element: `m[k] = ?`, `[?]`, `{?}`, `CONTAINS ?`.
    Value,
    /// The n-th component of a tuple literal `(a, ?)`.
    TupleField(usize),
    /// A UDT field: `c.f = ?` or `{f: ?}`.
    Field(String),
}

/// What a bind marker is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindReceiver {
    /// A column value, or a component of it when `path` is non-empty
    /// (e.g. `m['k'] = ?` is `Column { name: "m", path: [Value] }`).
    Column {
        /// The column.
        name: String,
        /// Steps from the column type to the bound value's type.
        path: Vec<PathStep>,
    },
    /// `col IN ?`: a list of the (component) type.
    InList {
        /// The column.
        column: String,
        /// Steps from the column type to the list's element type.
        path: Vec<PathStep>,
    },
    /// `(c1, c2) op ?`: a tuple of the columns' types.
    ColumnTuple {
        /// The columns.
        columns: Vec<String>,
    },
    /// `(c1, c2) IN ?`: a list of tuples of the columns' types.
    InTupleList {
        /// The columns.
        columns: Vec<String>,
    },
    /// `token(pk) op ?`: a token (`bigint` for Murmur3).
    Token {
        /// Columns passed to `token`.
        columns: Vec<String>,
    },
    /// The `index`-th argument of a function call (`blobAsInt(?)`,
    /// `token(?)`); the server resolves its type from the function.
    /// Markers nested in literals inside the argument get this receiver too.
    FunctionArgument {
        /// The function.
        function: QualifiedName,
        /// 0-based argument position.
        index: usize,
    },
    /// `(type) ?`: the cast gives the type directly.
    Cast(CqlType),
    /// `INSERT ... JSON ?` (text).
    Json,
    /// `LIMIT ?` (int).
    Limit,
    /// `PER PARTITION LIMIT ?` (int).
    PerPartitionLimit,
    /// `USING TTL ?` (int).
    Ttl,
    /// `USING TIMESTAMP ?` (bigint).
    Timestamp,
    /// `USING TIMEOUT ?` (duration).
    Timeout,
    /// Anything else, described in words (e.g. a bare marker used as a
    /// selector); the server should treat its type as unknown (`blob`).
    Other(String),
}

impl BindReceiver {
    /// The receiver for a component of this one, following `step`.
    fn child(&self, step: PathStep) -> BindReceiver {
        match self {
            BindReceiver::Column { name, path } => {
                let mut path = path.clone();
                path.push(step);
                BindReceiver::Column {
                    name: name.clone(),
                    path,
                }
            }
            BindReceiver::Cast(ty) => match component_type(ty, &step) {
                Some(t) => BindReceiver::Cast(t),
                None => self.clone(),
            },
            other => other.clone(),
        }
    }
}

/// The type of `step` within `ty`, when it can be known without a schema.
fn component_type(ty: &CqlType, step: &PathStep) -> Option<CqlType> {
    match (ty.unfrozen(), step) {
        (CqlType::List(_), PathStep::Key) => Some(CqlType::Native(crate::NativeType::Int)),
        (CqlType::List(t) | CqlType::Set(t), PathStep::Value) => Some((**t).clone()),
        (CqlType::Map(k, _), PathStep::Key) => Some((**k).clone()),
        (CqlType::Map(_, v), PathStep::Value) => Some((**v).clone()),
        (CqlType::Tuple(ts), PathStep::TupleField(i)) => ts.get(*i).cloned(),
        _ => None,
    }
}

/// Cassandra's naming of a column component: `key(m)`, `value(m)`,
/// `t[1]`, `u.f`.
fn path_name(column: &str, path: &[PathStep]) -> String {
    path.iter()
        .fold(column.to_string(), |acc, step| match step {
            PathStep::Key => format!("key({acc})"),
            PathStep::Value => format!("value({acc})"),
            PathStep::TupleField(i) => format!("{acc}[{i}]"),
            PathStep::Field(f) => format!("{acc}.{f}"),
        })
}

/// The name Cassandra/Scylla report for a receiver in PREPARE metadata.
impl fmt::Display for BindReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindReceiver::Column { name, path } => f.write_str(&path_name(name, path)),
            BindReceiver::InList { column, path } => write!(f, "in({})", path_name(column, path)),
            BindReceiver::ColumnTuple { columns } => write!(f, "({})", columns.join(",")),
            BindReceiver::InTupleList { columns } => write!(f, "in(({}))", columns.join(",")),
            BindReceiver::Token { .. } => f.write_str("partition key token"),
            BindReceiver::FunctionArgument { function, index } => {
                write!(f, "arg{index}(")?;
                if let Some(ks) = &function.keyspace {
                    write!(f, "{ks}.")?;
                }
                write!(f, "{})", function.name)
            }
            BindReceiver::Cast(ty) => write!(f, "({ty})"),
            BindReceiver::Json => f.write_str("[json]"),
            BindReceiver::Limit => f.write_str("[limit]"),
            BindReceiver::PerPartitionLimit => f.write_str("[per_partition_limit]"),
            BindReceiver::Ttl => f.write_str("[ttl]"),
            BindReceiver::Timestamp => f.write_str("[timestamp]"),
            BindReceiver::Timeout => f.write_str("[timeout]"),
            BindReceiver::Other(what) => f.write_str(what),
        }
    }
}

/// A bind marker together with what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoundVariable {
    /// The marker (its `index` is its position in the statement).
    pub marker: BindMarker,
    /// What the value is for.
    pub receiver: BindReceiver,
}

impl BoundVariable {
    /// The bind variable name for PREPARE metadata: the marker's own name
    /// for `:name` markers, otherwise derived from the receiver.
    pub fn name(&self) -> String {
        match &self.marker.name {
            Some(n) => n.clone(),
            None => self.receiver.to_string(),
        }
    }
}

impl Statement {
    /// Every bind marker with its receiver, ordered by marker index
    /// (the order the server must report bind variables in).
    pub fn bind_variables(&self) -> Vec<BoundVariable> {
        let mut out = Vec::new();
        collect_statement(self, &mut out);
        out.sort_by_key(|v| v.marker.index);
        out
    }

    /// Number of bind markers in the statement (all statements of a batch).
    pub fn bind_marker_count(&self) -> usize {
        self.bind_variables().len()
    }
}

type Out = Vec<BoundVariable>;

fn column(name: &str) -> BindReceiver {
    BindReceiver::Column {
        name: name.to_string(),
        path: Vec::new(),
    }
}

fn collect_term(term: &Term, receiver: &BindReceiver, out: &mut Out) {
    match term {
        Term::BindMarker(m) => out.push(BoundVariable {
            marker: m.clone(),
            receiver: receiver.clone(),
        }),
        Term::Literal(_) | Term::EmptyBraces => {}
        Term::List(items) | Term::Set(items) => {
            let r = receiver.child(PathStep::Value);
            for item in items {
                collect_term(item, &r, out);
            }
        }
        Term::Map(pairs) => {
            let (rk, rv) = (
                receiver.child(PathStep::Key),
                receiver.child(PathStep::Value),
            );
            for (k, v) in pairs {
                collect_term(k, &rk, out);
                collect_term(v, &rv, out);
            }
        }
        Term::Tuple(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_term(item, &receiver.child(PathStep::TupleField(i)), out);
            }
        }
        Term::Udt(fields) => {
            for (name, value) in fields {
                collect_term(value, &receiver.child(PathStep::Field(name.clone())), out);
            }
        }
        Term::FunctionCall { name, args } => collect_args(name, args, out),
        Term::TypeCast { ty, term } => collect_term(term, &BindReceiver::Cast(ty.clone()), out),
    }
}

fn collect_args(function: &QualifiedName, args: &[Term], out: &mut Out) {
    for (index, arg) in args.iter().enumerate() {
        let r = BindReceiver::FunctionArgument {
            function: function.clone(),
            index,
        };
        collect_term(arg, &r, out);
    }
}

fn collect_opt(term: &Option<Term>, receiver: BindReceiver, out: &mut Out) {
    if let Some(t) = term {
        collect_term(t, &receiver, out);
    }
}

fn collect_using(using: &UsingClause, out: &mut Out) {
    collect_opt(&using.ttl, BindReceiver::Ttl, out);
    collect_opt(&using.timestamp, BindReceiver::Timestamp, out);
    collect_opt(&using.timeout, BindReceiver::Timeout, out);
}

/// A predicate on a single (component of a) column.
fn collect_predicate(name: &str, path: Vec<PathStep>, predicate: &Predicate, out: &mut Out) {
    match predicate {
        Predicate::Compare { op, value } => {
            let base = BindReceiver::Column {
                name: name.to_string(),
                path: path.clone(),
            };
            let r = match op {
                Operator::Contains => base.child(PathStep::Value),
                Operator::ContainsKey => base.child(PathStep::Key),
                _ => base,
            };
            collect_term(value, &r, out);
        }
        Predicate::In(InValues::Marker(m)) => out.push(BoundVariable {
            marker: m.clone(),
            receiver: BindReceiver::InList {
                column: name.to_string(),
                path,
            },
        }),
        Predicate::In(InValues::List(items)) => {
            let r = BindReceiver::Column {
                name: name.to_string(),
                path,
            };
            for item in items {
                collect_term(item, &r, out);
            }
        }
    }
}

/// A value compared against `(c1, c2, ...)`: tuple components map to the
/// individual columns, a marker stands for the whole tuple.
fn collect_column_tuple(columns: &[String], term: &Term, out: &mut Out) {
    match term {
        Term::Tuple(items) => {
            for (i, item) in items.iter().enumerate() {
                let r = match columns.get(i) {
                    Some(c) => column(c),
                    None => BindReceiver::ColumnTuple {
                        columns: columns.to_vec(),
                    },
                };
                collect_term(item, &r, out);
            }
        }
        other => collect_term(
            other,
            &BindReceiver::ColumnTuple {
                columns: columns.to_vec(),
            },
            out,
        ),
    }
}

fn collect_relations(relations: &[Relation], out: &mut Out) {
    for relation in relations {
        match relation {
            Relation::Column { column, predicate } => {
                collect_predicate(column, Vec::new(), predicate, out)
            }
            Relation::Element {
                column: c,
                key,
                predicate,
            } => {
                collect_term(key, &column(c).child(PathStep::Key), out);
                collect_predicate(c, vec![PathStep::Value], predicate, out);
            }
            Relation::MultiColumn { columns, predicate } => match predicate {
                Predicate::Compare { value, .. } => collect_column_tuple(columns, value, out),
                Predicate::In(InValues::Marker(m)) => out.push(BoundVariable {
                    marker: m.clone(),
                    receiver: BindReceiver::InTupleList {
                        columns: columns.clone(),
                    },
                }),
                Predicate::In(InValues::List(items)) => {
                    for item in items {
                        collect_column_tuple(columns, item, out);
                    }
                }
            },
            Relation::Token { columns, value, .. } => collect_term(
                value,
                &BindReceiver::Token {
                    columns: columns.clone(),
                },
                out,
            ),
            Relation::IsNotNull { .. } => {}
        }
    }
}

fn collect_condition(condition: &Option<Condition>, out: &mut Out) {
    let Some(Condition::Columns(conditions)) = condition else {
        return;
    };
    for cond in conditions {
        match &cond.target {
            ConditionTarget::Column(c) => collect_predicate(c, Vec::new(), &cond.predicate, out),
            ConditionTarget::Element { column: c, key } => {
                collect_term(key, &column(c).child(PathStep::Key), out);
                collect_predicate(c, vec![PathStep::Value], &cond.predicate, out);
            }
            ConditionTarget::Field { column: c, field } => collect_predicate(
                c,
                vec![PathStep::Field(field.clone())],
                &cond.predicate,
                out,
            ),
        }
    }
}

fn collect_selector(selector: &Selector, out: &mut Out) {
    match selector {
        Selector::Column(_) | Selector::CountRows | Selector::WriteTime(_) | Selector::Ttl(_) => {}
        Selector::Function { name, args } => {
            for (index, arg) in args.iter().enumerate() {
                match arg {
                    Selector::Term(t) => collect_term(
                        t,
                        &BindReceiver::FunctionArgument {
                            function: name.clone(),
                            index,
                        },
                        out,
                    ),
                    other => collect_selector(other, out),
                }
            }
        }
        Selector::Cast { selector, .. } | Selector::Field { selector, .. } => {
            collect_selector(selector, out)
        }
        Selector::Element { selector, key } => {
            collect_selector(selector, out);
            let r = match selector.as_ref() {
                Selector::Column(c) => column(c).child(PathStep::Key),
                _ => BindReceiver::Other("[selector element]".to_string()),
            };
            collect_term(key, &r, out);
        }
        // A bare marker as a selector has no receiver to describe, but must
        // still be listed so the count and order stay right.
        Selector::Term(t) => collect_term(t, &BindReceiver::Other("[selector]".to_string()), out),
    }
}

fn collect_selection(selection: &Selection, out: &mut Out) {
    if let Selection::Items(items) = selection {
        for item in items {
            collect_selector(&item.selector, out);
        }
    }
}

fn collect_statement(stmt: &Statement, out: &mut Out) {
    match stmt {
        Statement::Select(s) => {
            collect_selection(&s.selection, out);
            collect_relations(&s.where_clause, out);
            collect_opt(&s.per_partition_limit, BindReceiver::PerPartitionLimit, out);
            collect_opt(&s.limit, BindReceiver::Limit, out);
            collect_opt(&s.timeout, BindReceiver::Timeout, out);
        }
        Statement::Insert(i) => {
            for (c, v) in i.columns.iter().zip(&i.values) {
                collect_term(v, &column(c), out);
            }
            collect_using(&i.using, out);
        }
        Statement::InsertJson(i) => {
            collect_term(&i.json, &BindReceiver::Json, out);
            collect_using(&i.using, out);
        }
        Statement::Update(u) => {
            collect_using(&u.using, out);
            for a in &u.assignments {
                match a {
                    Assignment::Set { column: c, value }
                    | Assignment::Add { column: c, value }
                    | Assignment::Prepend { column: c, value }
                    | Assignment::Subtract { column: c, value } => {
                        collect_term(value, &column(c), out)
                    }
                    Assignment::SetElement {
                        column: c,
                        key,
                        value,
                    } => {
                        collect_term(key, &column(c).child(PathStep::Key), out);
                        collect_term(value, &column(c).child(PathStep::Value), out);
                    }
                    Assignment::SetField {
                        column: c,
                        field,
                        value,
                    } => collect_term(value, &column(c).child(PathStep::Field(field.clone())), out),
                }
            }
            collect_relations(&u.where_clause, out);
            collect_condition(&u.condition, out);
        }
        Statement::Delete(d) => {
            for t in &d.targets {
                if let DeleteTarget::Element { column: c, key } = t {
                    collect_term(key, &column(c).child(PathStep::Key), out);
                }
            }
            collect_using(&d.using, out);
            collect_relations(&d.where_clause, out);
            collect_condition(&d.condition, out);
        }
        Statement::Batch(b) => {
            collect_using(&b.using, out);
            for s in &b.statements {
                collect_statement(s, out);
            }
        }
        Statement::Truncate(t) => collect_opt(&t.timeout, BindReceiver::Timeout, out),
        Statement::AlterTable(a) => {
            if let AlterTableAction::Drop {
                timestamp: Some(t), ..
            } = &a.action
            {
                collect_term(t, &BindReceiver::Timestamp, out);
            }
        }
        Statement::CreateMaterializedView(v) => {
            collect_selection(&v.selection, out);
            collect_relations(&v.where_clause, out);
        }
        Statement::Use(_)
        | Statement::CreateKeyspace(_)
        | Statement::AlterKeyspace(_)
        | Statement::DropKeyspace(_)
        | Statement::CreateTable(_)
        | Statement::DropTable(_)
        | Statement::CreateType(_)
        | Statement::AlterType(_)
        | Statement::DropType(_)
        | Statement::CreateIndex(_)
        | Statement::DropIndex(_)
        | Statement::AlterMaterializedView(_)
        | Statement::DropMaterializedView(_) => {}
    }
}

//! The columns a SELECT returns: selectors (columns, `writetime`, `ttl`,
//! `token`, scalar functions, `CAST`, UDT fields, collection elements,
//! constants, aggregates) typed and named as Scylla names them
//! (`system.max(v)`, `cast(v as text)`), evaluated per row or per group,
//! and `SELECT JSON`, which folds them into one `[json]` column.

use cql_parser::ast::{Literal, Select, Selection as AstSelection, Selector, Term};
use scylla_shard::protocol::response::ColumnSpec;
use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::value::CqlValue;

use super::error::{invalid, EngineError};
use super::functions::{argument_hint, call_scalar, cast, cast_supported, resolve_scalar};
use super::functions::{Accumulator, Aggregate, Scalar};
use super::json::{quote, to_json};
use super::schema::{native, ColumnKind, TableSchema};
use super::select::{cell_of, value_of};
use super::storage::{Partition, Row};
use super::values::{to_value, Binds};

/// A typed expression of a selector.
#[derive(Debug, Clone)]
struct Typed {
    expr: Expr,
    ty: ColumnType,
}

#[derive(Debug, Clone)]
enum Expr {
    Column(usize),
    WriteTime(usize),
    Ttl(usize),
    Token,
    Constant(Term),
    Scalar(Scalar, Vec<Typed>),
    Cast(Box<Typed>),
    Field(Box<Typed>, usize),
    Element(Box<Typed>, Term),
    /// An aggregate and its accumulator slot.
    Aggregate(Option<Box<Typed>>, usize),
}

/// One row of a partition being read.
#[derive(Clone, Copy)]
pub struct RowContext<'a> {
    pub schema: &'a TableSchema,
    pub partition: &'a Partition,
    pub row: Option<&'a Row>,
    pub token: i64,
    pub now: i64,
}

/// A SELECT's resolved selection.
pub struct Selection {
    items: Vec<(Typed, ColumnSpec)>,
    /// Accumulator slots: kind and argument type.
    slots: Vec<(Aggregate, ColumnType)>,
    json: bool,
}

fn spec(schema: &TableSchema, name: String, ty: ColumnType) -> ColumnSpec {
    ColumnSpec::new(&schema.keyspace, &schema.name, &name, ty)
}

impl Selection {
    pub fn build(schema: &TableSchema, select: &Select) -> Result<Selection, EngineError> {
        let mut selection = Selection {
            items: Vec::new(),
            slots: Vec::new(),
            json: select.json,
        };
        match &select.selection {
            AstSelection::Star => {
                for (i, c) in schema.columns.iter().enumerate() {
                    let typed = Typed {
                        expr: Expr::Column(i),
                        ty: c.ty.clone(),
                    };
                    selection
                        .items
                        .push((typed, spec(schema, c.name.clone(), c.ty.clone())));
                }
            }
            AstSelection::Items(items) => {
                for item in items {
                    let (typed, name) = selection.build_selector(schema, &item.selector, false)?;
                    let name = item.alias.clone().unwrap_or(name);
                    let column = spec(schema, name, typed.ty.clone());
                    selection.items.push((typed, column));
                }
            }
        }
        Ok(selection)
    }

    /// Whether the selection aggregates rows (into one row per group).
    pub fn is_aggregate(&self) -> bool {
        !self.slots.is_empty()
    }

    /// The result columns: the selected ones, or `[json]` for SELECT JSON.
    pub fn columns(&self, schema: &TableSchema) -> Vec<ColumnSpec> {
        if self.json {
            return vec![spec(schema, "[json]".into(), ColumnType::Text)];
        }
        self.items.iter().map(|(_, s)| s.clone()).collect()
    }

    fn build_selector(
        &mut self,
        schema: &TableSchema,
        selector: &Selector,
        in_aggregate: bool,
    ) -> Result<(Typed, String), EngineError> {
        let typed = |expr, ty| Typed { expr, ty };
        Ok(match selector {
            Selector::Column(name) => {
                let (i, c) = schema.column(name)?;
                (typed(Expr::Column(i), c.ty.clone()), c.name.clone())
            }
            Selector::WriteTime(name) | Selector::Ttl(name) => {
                let writetime = matches!(selector, Selector::WriteTime(_));
                let what = if writetime { "writetime" } else { "ttl" };
                let (i, c) = schema.column(name)?;
                if matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering) {
                    let function = if writetime { "writeTime" } else { "ttl" };
                    return Err(invalid(format!(
                        "Cannot use selection function {function} on PRIMARY KEY part {name}"
                    )));
                }
                let (expr, ty) = if writetime {
                    (Expr::WriteTime(i), ColumnType::BigInt)
                } else {
                    (Expr::Ttl(i), ColumnType::Int)
                };
                (typed(expr, ty), format!("{what}({name})"))
            }
            Selector::CountRows => {
                let slot = self.slot(Aggregate::CountRows, ColumnType::BigInt, in_aggregate)?;
                let expr = Expr::Aggregate(None, slot);
                (typed(expr, ColumnType::BigInt), "count".into())
            }
            Selector::Function { name, args } => {
                if name.keyspace.as_deref().is_some_and(|ks| ks != "system") {
                    return Err(invalid(format!(
                        "Unknown function '{name}' (user-defined functions are not supported by the emulator)"
                    )));
                }
                let fname = name.name.as_str();
                if fname == "token" {
                    return self.token(schema, args);
                }
                if let Some(kind) = Aggregate::from_name(fname) {
                    let [arg] = &args[..] else {
                        return Err(invalid(format!(
                            "Invalid number of arguments in call to function {fname}: 1 required but {} provided",
                            args.len()
                        )));
                    };
                    let (arg, arg_name) = self.build_selector(schema, arg, true)?;
                    let result = kind.result_type(Some(&arg.ty))?;
                    let slot = self.slot(kind, arg.ty.clone(), in_aggregate)?;
                    let expr = Expr::Aggregate(Some(Box::new(arg)), slot);
                    (typed(expr, result), format!("system.{fname}({arg_name})"))
                } else {
                    let hint = argument_hint(fname);
                    let mut built = Vec::with_capacity(args.len());
                    let mut names = Vec::with_capacity(args.len());
                    for arg in args {
                        let (arg, arg_name) = match (arg, &hint) {
                            (Selector::Term(term), hint) => constant(term, hint.as_ref())?,
                            _ => self.build_selector(schema, arg, in_aggregate)?,
                        };
                        built.push(arg);
                        names.push(arg_name);
                    }
                    let types: Vec<ColumnType> = built.iter().map(|a| a.ty.clone()).collect();
                    let (function, ty) = resolve_scalar(fname, &types)?;
                    (
                        typed(Expr::Scalar(function, built), ty),
                        format!("system.{fname}({})", names.join(", ")),
                    )
                }
            }
            Selector::Cast { selector, ty } => {
                let (arg, arg_name) = self.build_selector(schema, selector, in_aggregate)?;
                let to = match ty {
                    cql_parser::types::CqlType::Native(n) => native(*n),
                    other => {
                        return Err(invalid(format!(
                            "Cannot cast to {other}: only native types"
                        )))
                    }
                };
                if !cast_supported(&arg.ty, &to) {
                    return Err(invalid(format!("{} cannot be cast to {to}", arg.ty)));
                }
                (
                    typed(Expr::Cast(Box::new(arg)), to.clone()),
                    format!("cast({arg_name} as {to})"),
                )
            }
            Selector::Field { selector, field } => {
                let (arg, arg_name) = self.build_selector(schema, selector, in_aggregate)?;
                let ColumnType::Udt(udt) = &arg.ty else {
                    return Err(invalid(format!(
                        "Invalid field selection: {arg_name} of type {} is not a user type",
                        arg.ty
                    )));
                };
                let index = udt
                    .fields
                    .iter()
                    .position(|(n, _)| n == field)
                    .ok_or_else(|| {
                        invalid(format!(
                            "{} of type {} has no field {field}",
                            arg_name, arg.ty
                        ))
                    })?;
                let ty = udt.fields[index].1.clone();
                (
                    typed(Expr::Field(Box::new(arg), index), ty),
                    format!("{arg_name}.{field}"),
                )
            }
            Selector::Element { selector, key } => {
                let (arg, arg_name) = self.build_selector(schema, selector, in_aggregate)?;
                let ty = match &arg.ty {
                    ColumnType::Map(_, v) => (**v).clone(),
                    ColumnType::List(e) => (**e).clone(),
                    ColumnType::Set(e) => (**e).clone(),
                    other => {
                        return Err(invalid(format!(
                            "Invalid subscript on {arg_name} of type {other}: not a collection"
                        )))
                    }
                };
                let name = format!("{arg_name}[{key}]");
                (typed(Expr::Element(Box::new(arg), key.clone()), ty), name)
            }
            Selector::Term(term) => constant(term, None)?,
        })
    }

    fn slot(
        &mut self,
        kind: Aggregate,
        ty: ColumnType,
        in_aggregate: bool,
    ) -> Result<usize, EngineError> {
        if in_aggregate {
            return Err(invalid(
                "Aggregate functions cannot be used as arguments of aggregate functions",
            ));
        }
        self.slots.push((kind, ty));
        Ok(self.slots.len() - 1)
    }

    fn token(
        &mut self,
        schema: &TableSchema,
        args: &[Selector],
    ) -> Result<(Typed, String), EngineError> {
        let names: Vec<&str> = args
            .iter()
            .map(|a| match a {
                Selector::Column(c) => Ok(c.as_str()),
                other => Err(invalid(format!(
                    "Invalid argument {other} of token(): a partition key column"
                ))),
            })
            .collect::<Result<_, _>>()?;
        let expected: Vec<&str> = schema
            .partition_key
            .iter()
            .map(|&i| schema.columns[i].name.as_str())
            .collect();
        if names != expected {
            return Err(invalid(format!(
                "Invalid arguments of token(): the partition key columns {} in order",
                expected.join(", ")
            )));
        }
        let typed = Typed {
            expr: Expr::Token,
            ty: ColumnType::BigInt,
        };
        Ok((typed, format!("system.token({})", names.join(", "))))
    }

    /// The output cells of one row of a non-aggregate selection.
    pub fn row(
        &self,
        ctx: &RowContext<'_>,
        binds: &Binds<'_>,
    ) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        let cells = self
            .items
            .iter()
            .map(|(item, _)| cell(item, Some(ctx), binds, None))
            .collect::<Result<Vec<_>, _>>()?;
        self.output(cells)
    }

    pub fn accumulators(&self) -> Vec<Accumulator> {
        self.slots
            .iter()
            .map(|(kind, ty)| Accumulator::new(*kind, ty.clone()))
            .collect()
    }

    /// Feeds one row to every aggregate.
    pub fn accumulate(
        &self,
        ctx: &RowContext<'_>,
        binds: &Binds<'_>,
        states: &mut [Accumulator],
    ) -> Result<(), EngineError> {
        for (item, _) in &self.items {
            feed(item, ctx, binds, states)?;
        }
        Ok(())
    }

    /// The output row of a group: aggregates from `states`, other
    /// selectors from the group's first row (null without one).
    pub fn finish(
        &self,
        first: Option<&RowContext<'_>>,
        binds: &Binds<'_>,
        states: &[Accumulator],
    ) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        let cells = self
            .items
            .iter()
            .map(|(item, _)| cell(item, first, binds, Some(states)))
            .collect::<Result<Vec<_>, _>>()?;
        self.output(cells)
    }

    fn output(&self, cells: Vec<Option<Vec<u8>>>) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        if !self.json {
            return Ok(cells);
        }
        let mut members = Vec::with_capacity(cells.len());
        for ((_, spec), cell) in self.items.iter().zip(cells) {
            let value = cell
                .map(|b| CqlValue::deserialize(&spec.ty, &b).map_err(|e| invalid(e.to_string())))
                .transpose()?;
            // Case-sensitive names keep their double quotes, as in CQL.
            let key = if spec.name.chars().any(|c| c.is_ascii_uppercase()) {
                format!("\"{}\"", spec.name)
            } else {
                spec.name.to_string()
            };
            members.push(format!("{}: {}", quote(&key), to_json(value.as_ref())));
        }
        let document = format!("{{{}}}", members.join(", "));
        Ok(vec![Some(
            CqlValue::Text(document)
                .to_bytes()
                .map_err(|e| invalid(e.to_string()))?,
        )])
    }
}

/// A constant selector: typed by the function argument it feeds, else by
/// the literal's own kind.
fn constant(term: &Term, hint: Option<&ColumnType>) -> Result<(Typed, String), EngineError> {
    let ty = match (hint, term) {
        (Some(ty), _) => ty.clone(),
        (None, Term::Literal(lit)) => match lit {
            Literal::String(_) => ColumnType::Text,
            Literal::Integer(_) => ColumnType::Int,
            Literal::Float(_) => ColumnType::Double,
            Literal::Boolean(_) => ColumnType::Boolean,
            Literal::Uuid(_) => ColumnType::Uuid,
            Literal::Blob(_) => ColumnType::Blob,
            Literal::Duration(_) => ColumnType::Duration,
            Literal::Null => return Err(invalid("Cannot infer the type of null: use a cast")),
        },
        (None, Term::TypeCast { ty, .. }) => match ty {
            cql_parser::types::CqlType::Native(n) => native(*n),
            other => return Err(invalid(format!("Cannot select a constant of type {other}"))),
        },
        (None, other) => {
            return Err(invalid(format!(
                "Cannot infer the type of {other}: use a cast"
            )))
        }
    };
    Ok((
        Typed {
            expr: Expr::Constant(term.clone()),
            ty,
        },
        term.to_string(),
    ))
}

/// Serialized value of an expression; aggregates read `states` (absent
/// while rows are fed, when nothing calls this on them).
fn cell(
    item: &Typed,
    ctx: Option<&RowContext<'_>>,
    binds: &Binds<'_>,
    states: Option<&[Accumulator]>,
) -> Result<Option<Vec<u8>>, EngineError> {
    // Plain cells go out as stored, without decoding.
    if let (Some(ctx), Expr::Column(c)) = (ctx, &item.expr) {
        return Ok(value_of(ctx.schema, ctx.partition, ctx.row, *c, ctx.now).map(<[u8]>::to_vec));
    }
    value(item, ctx, binds, states)?
        .map(|v| v.to_bytes().map_err(|e| invalid(e.to_string())))
        .transpose()
}

fn value(
    item: &Typed,
    ctx: Option<&RowContext<'_>>,
    binds: &Binds<'_>,
    states: Option<&[Accumulator]>,
) -> Result<Option<CqlValue>, EngineError> {
    let decode = |bytes: Option<&[u8]>, ty: &ColumnType| {
        bytes
            .map(|b| CqlValue::deserialize(ty, b).map_err(|e| invalid(e.to_string())))
            .transpose()
    };
    Ok(match &item.expr {
        Expr::Aggregate(_, slot) => match states {
            Some(states) => states[*slot].finish(&item.ty)?,
            None => None,
        },
        Expr::Constant(term) => to_value(term, &item.ty, binds)?,
        Expr::Scalar(function, args) => {
            let values = args
                .iter()
                .map(|a| value(a, ctx, binds, states))
                .collect::<Result<Vec<_>, _>>()?;
            let types: Vec<ColumnType> = args.iter().map(|a| a.ty.clone()).collect();
            call_scalar(function, &values, &types)?
        }
        Expr::Cast(arg) => match value(arg, ctx, binds, states)? {
            Some(v) => Some(cast(v, &arg.ty, &item.ty)?),
            None => None,
        },
        Expr::Field(arg, index) => match value(arg, ctx, binds, states)? {
            Some(CqlValue::Udt(fields)) => fields.into_iter().nth(*index).and_then(|(_, v)| v),
            _ => None,
        },
        Expr::Element(arg, key) => {
            let collection = value(arg, ctx, binds, states)?;
            element(collection, &arg.ty, key, binds)?
        }
        _ => {
            let Some(ctx) = ctx else {
                return Ok(None);
            };
            match &item.expr {
                Expr::Column(c) => decode(
                    value_of(ctx.schema, ctx.partition, ctx.row, *c, ctx.now),
                    &item.ty,
                )?,
                Expr::WriteTime(c) => cell_of(ctx.schema, ctx.partition, ctx.row, *c, ctx.now)
                    .map(|cell| CqlValue::BigInt(cell.timestamp)),
                Expr::Ttl(c) => cell_of(ctx.schema, ctx.partition, ctx.row, *c, ctx.now)
                    .and_then(|cell| cell.expires_at)
                    .map(|t| CqlValue::Int((t - ctx.now).max(0) as i32)),
                Expr::Token => Some(CqlValue::BigInt(ctx.token)),
                _ => unreachable!("handled above"),
            }
        }
    })
}

fn element(
    collection: Option<CqlValue>,
    ty: &ColumnType,
    key: &Term,
    binds: &Binds<'_>,
) -> Result<Option<CqlValue>, EngineError> {
    use super::values::compare_values;
    Ok(match (collection, ty) {
        (Some(CqlValue::Map(entries)), ColumnType::Map(k, _)) => {
            let Some(key) = to_value(key, k, binds)? else {
                return Ok(None);
            };
            entries
                .into_iter()
                .find(|(ek, _)| compare_values(ek, &key, k).is_eq())
                .map(|(_, v)| v)
        }
        (Some(CqlValue::List(items)), ColumnType::List(_)) => {
            match to_value(key, &ColumnType::Int, binds)? {
                Some(CqlValue::Int(i)) => usize::try_from(i)
                    .ok()
                    .and_then(|i| items.into_iter().nth(i)),
                _ => None,
            }
        }
        (Some(CqlValue::Set(items)), ColumnType::Set(e)) => {
            let Some(key) = to_value(key, e, binds)? else {
                return Ok(None);
            };
            items
                .into_iter()
                .find(|v| compare_values(v, &key, e).is_eq())
        }
        _ => None,
    })
}

/// Feeds a row to every aggregate inside `item`.
fn feed(
    item: &Typed,
    ctx: &RowContext<'_>,
    binds: &Binds<'_>,
    states: &mut [Accumulator],
) -> Result<(), EngineError> {
    match &item.expr {
        Expr::Aggregate(arg, slot) => {
            let input = match arg {
                Some(arg) => value(arg, Some(ctx), binds, None)?,
                None => None,
            };
            states[*slot].add(input)
        }
        Expr::Scalar(_, args) => args.iter().try_for_each(|a| feed(a, ctx, binds, states)),
        Expr::Cast(arg) | Expr::Field(arg, _) | Expr::Element(arg, _) => {
            feed(arg, ctx, binds, states)
        }
        _ => Ok(()),
    }
}

//! WHERE clauses, evaluated against a table: which partitions, which token
//! range, which clustering keys, and the row filters that remain.

use std::ops::Bound;

use cql_parser::ast::{InValues, Operator, Predicate, Relation, Term};
use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::value::CqlValue;

use super::error::{invalid, EngineError};
use super::schema::{ColumnKind, TableSchema};
use super::values::{compare_bytes, eval, Binds, Cell};

/// One remaining per-row test.
#[derive(Debug, Clone)]
pub enum Filter {
    Compare {
        column: usize,
        op: Operator,
        value: Vec<u8>,
    },
    In {
        column: usize,
        values: Vec<Vec<u8>>,
    },
    /// `(c1, c2) op (v1, v2)`: lexicographic over the columns.
    Tuple {
        columns: Vec<usize>,
        op: Operator,
        values: Vec<Vec<u8>>,
    },
    TupleIn {
        columns: Vec<usize>,
        tuples: Vec<Vec<Vec<u8>>>,
    },
}

/// A WHERE clause, resolved.
#[derive(Debug, Default)]
pub struct Restrictions {
    /// Candidate values per partition-key column (eq or IN), key order.
    pub partition_values: Vec<Option<Vec<Vec<u8>>>>,
    /// Candidate values per clustering column (eq or IN), key order.
    pub clustering_values: Vec<Option<Vec<Vec<u8>>>>,
    pub token_low: Option<Bound<i64>>,
    pub token_high: Option<Bound<i64>>,
    /// Every restriction that is not a partition-key eq/IN.
    pub filters: Vec<Filter>,
    /// Filters on regular or static columns, or a slice of the partition
    /// key (need ALLOW FILTERING).
    pub filters_non_key: bool,
    /// Some but not all partition-key columns restricted (need ALLOW
    /// FILTERING; they become filters).
    pub partial_partition_key: bool,
    /// Which clustering columns any relation restricts, in key order.
    pub clustering_restricted: Vec<bool>,
}

impl Restrictions {
    /// Every partition key the clause names, when all key columns are
    /// restricted by equality or IN.
    pub fn partition_keys(&self) -> Option<Vec<Vec<Vec<u8>>>> {
        cartesian(&self.partition_values)
    }

    /// Full clustering keys, when every clustering column is eq/IN.
    pub fn clustering_keys(&self) -> Option<Vec<Vec<Vec<u8>>>> {
        cartesian(&self.clustering_values)
    }

    /// The leading clustering columns restricted by a single equality.
    pub fn clustering_eq_prefix(&self) -> Vec<Vec<u8>> {
        let mut prefix = Vec::new();
        for values in &self.clustering_values {
            match values {
                Some(v) if v.len() == 1 => prefix.push(v[0].clone()),
                _ => break,
            }
        }
        prefix
    }

    /// The first clustering column restricted although a preceding one is
    /// not, with that preceding column's position: Scylla refuses such a
    /// clause without ALLOW FILTERING.
    pub fn clustering_gap(&self) -> Option<(usize, usize)> {
        let first_free = self.clustering_restricted.iter().position(|r| !r)?;
        let next = self.clustering_restricted[first_free..]
            .iter()
            .position(|r| *r)?;
        Some((first_free + next, first_free))
    }

    pub fn token_in_range(&self, token: i64) -> bool {
        let low_ok = match self.token_low {
            Some(Bound::Included(t)) => token >= t,
            Some(Bound::Excluded(t)) => token > t,
            _ => true,
        };
        let high_ok = match self.token_high {
            Some(Bound::Included(t)) => token <= t,
            Some(Bound::Excluded(t)) => token < t,
            _ => true,
        };
        low_ok && high_ok
    }
}

/// Every combination of one candidate per column, in key order; None
/// when some column has no candidates.
fn cartesian(columns: &[Option<Vec<Vec<u8>>>]) -> Option<Vec<Vec<Vec<u8>>>> {
    let mut keys: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    for values in columns {
        let values = values.as_ref()?;
        keys = keys
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut k = prefix.clone();
                    k.push(v.clone());
                    k
                })
            })
            .collect();
    }
    Some(keys)
}

fn set_value(cell: Cell, column: &str) -> Result<Vec<u8>, EngineError> {
    match cell {
        Cell::Set(b) => Ok(b),
        Cell::Null => Err(invalid(format!(
            "Invalid null value in condition for column {column}"
        ))),
        Cell::Unset => Err(invalid(format!("Invalid unset value for column {column}"))),
    }
}

/// The serialized values of an IN list for a column of type `ty`.
pub fn in_values(
    values: &InValues,
    ty: &ColumnType,
    column: &str,
    binds: &Binds<'_>,
) -> Result<Vec<Vec<u8>>, EngineError> {
    match values {
        InValues::List(terms) => terms
            .iter()
            .map(|t| set_value(eval(t, ty, binds)?, column))
            .collect(),
        InValues::Marker(marker) => {
            let list_ty = ColumnType::List(Box::new(ty.clone()));
            match eval(&Term::BindMarker(marker.clone()), &list_ty, binds)? {
                Cell::Set(bytes) => match CqlValue::deserialize(&list_ty, &bytes) {
                    Ok(CqlValue::List(items)) => items
                        .iter()
                        .map(|v| v.to_bytes().map_err(|e| invalid(e.to_string())))
                        .collect(),
                    _ => Err(invalid(format!("Invalid IN list for {column}"))),
                },
                _ => Err(invalid(format!(
                    "Invalid null value for IN restriction on {column}"
                ))),
            }
        }
    }
}

fn token_value(term: &Term, binds: &Binds<'_>) -> Result<i64, EngineError> {
    match set_value(eval(term, &ColumnType::BigInt, binds)?, "token")?
        .as_slice()
        .try_into()
    {
        Ok(b) => Ok(i64::from_be_bytes(b)),
        Err(_) => Err(invalid("Invalid token value")),
    }
}

/// Resolves `relations` against `schema`.
pub fn analyze(
    schema: &TableSchema,
    relations: &[Relation],
    binds: &Binds<'_>,
) -> Result<Restrictions, EngineError> {
    let mut r = Restrictions {
        partition_values: vec![None; schema.partition_key.len()],
        clustering_values: vec![None; schema.clustering_key.len()],
        clustering_restricted: vec![false; schema.clustering_key.len()],
        ..Default::default()
    };
    for relation in relations {
        match relation {
            Relation::Column { column, predicate } => {
                let (index, col) = schema.column(column)?;
                if col.kind == ColumnKind::Clustering {
                    r.clustering_restricted[col.position as usize] = true;
                }
                let slot = match col.kind {
                    ColumnKind::PartitionKey => {
                        Some(&mut r.partition_values[col.position as usize])
                    }
                    ColumnKind::Clustering => Some(&mut r.clustering_values[col.position as usize]),
                    _ => {
                        r.filters_non_key = true;
                        None
                    }
                };
                match predicate {
                    Predicate::Compare {
                        op: Operator::Eq,
                        value,
                    } => {
                        let v = set_value(eval(value, &col.ty, binds)?, column)?;
                        if let Some(slot) = slot {
                            *slot = Some(vec![v.clone()]);
                        }
                        if col.kind != ColumnKind::PartitionKey {
                            r.filters.push(Filter::Compare {
                                column: index,
                                op: Operator::Eq,
                                value: v,
                            });
                        }
                    }
                    Predicate::In(values) => {
                        let vs = in_values(values, &col.ty, column, binds)?;
                        if let Some(slot) = slot {
                            *slot = Some(vs.clone());
                        }
                        if col.kind != ColumnKind::PartitionKey {
                            r.filters.push(Filter::In {
                                column: index,
                                values: vs,
                            });
                        }
                    }
                    Predicate::Compare { op, value } => {
                        let ty = match op {
                            Operator::Contains => match &col.ty {
                                ColumnType::List(e) | ColumnType::Set(e) => (**e).clone(),
                                ColumnType::Map(_, v) => (**v).clone(),
                                _ => {
                                    return Err(invalid(format!(
                                        "Cannot use CONTAINS on non-collection column {column}"
                                    )))
                                }
                            },
                            Operator::ContainsKey => match &col.ty {
                                ColumnType::Map(k, _) => (**k).clone(),
                                _ => {
                                    return Err(invalid(format!(
                                        "Cannot use CONTAINS KEY on non-map column {column}"
                                    )))
                                }
                            },
                            Operator::Like => {
                                return Err(invalid("LIKE is not supported by the emulator"))
                            }
                            _ => col.ty.clone(),
                        };
                        let v = set_value(eval(value, &ty, binds)?, column)?;
                        r.filters.push(Filter::Compare {
                            column: index,
                            op: *op,
                            value: v,
                        });
                        if col.kind == ColumnKind::PartitionKey {
                            r.filters_non_key = true;
                        }
                    }
                }
            }
            Relation::MultiColumn { columns, predicate } => {
                let indexes = columns
                    .iter()
                    .map(|c| schema.column(c).map(|(i, _)| i))
                    .collect::<Result<Vec<_>, _>>()?;
                for &i in &indexes {
                    if schema.columns[i].kind == ColumnKind::Clustering {
                        r.clustering_restricted[schema.columns[i].position as usize] = true;
                    }
                }
                let tuple_ty = ColumnType::Tuple(
                    indexes
                        .iter()
                        .map(|&i| schema.columns[i].ty.clone())
                        .collect(),
                );
                let split = |bytes: Vec<u8>| -> Result<Vec<Vec<u8>>, EngineError> {
                    match CqlValue::deserialize(&tuple_ty, &bytes) {
                        Ok(CqlValue::Tuple(items)) => items
                            .into_iter()
                            .map(|v| {
                                v.ok_or_else(|| invalid("Invalid null value in tuple"))
                                    .and_then(|v| v.to_bytes().map_err(|e| invalid(e.to_string())))
                            })
                            .collect(),
                        _ => Err(invalid("Invalid tuple value")),
                    }
                };
                match predicate {
                    Predicate::Compare { op, value } => {
                        let values = split(set_value(eval(value, &tuple_ty, binds)?, "tuple")?)?;
                        r.filters.push(Filter::Tuple {
                            columns: indexes,
                            op: *op,
                            values,
                        });
                    }
                    Predicate::In(values) => {
                        let tuples = in_values(values, &tuple_ty, "tuple", binds)?
                            .into_iter()
                            .map(split)
                            .collect::<Result<Vec<_>, _>>()?;
                        r.filters.push(Filter::TupleIn {
                            columns: indexes,
                            tuples,
                        });
                    }
                }
            }
            Relation::Token { columns, op, value } => {
                let expected: Vec<&str> = schema
                    .partition_key
                    .iter()
                    .map(|&i| schema.columns[i].name.as_str())
                    .collect();
                if columns.iter().map(String::as_str).collect::<Vec<_>>() != expected {
                    return Err(invalid(
                        "The token() function must be applied to all partition key components",
                    ));
                }
                let t = token_value(value, binds)?;
                match op {
                    Operator::Gt => r.token_low = Some(Bound::Excluded(t)),
                    Operator::Gte => r.token_low = Some(Bound::Included(t)),
                    Operator::Lt => r.token_high = Some(Bound::Excluded(t)),
                    Operator::Lte => r.token_high = Some(Bound::Included(t)),
                    Operator::Eq => {
                        r.token_low = Some(Bound::Included(t));
                        r.token_high = Some(Bound::Included(t));
                    }
                    other => return Err(invalid(format!("Unsupported token restriction {other}"))),
                }
            }
            Relation::Element { .. } | Relation::IsNotNull { .. } => {
                return Err(invalid(format!(
                    "Restriction {} is not supported by the emulator",
                    relation_text(relation)
                )))
            }
        }
    }
    // A partially restricted partition key cannot name partitions: its
    // restrictions filter the scanned rows instead.
    let restricted = r.partition_values.iter().filter(|v| v.is_some()).count();
    if restricted > 0 && restricted < schema.partition_key.len() {
        r.partial_partition_key = true;
        for (position, values) in r.partition_values.iter().enumerate() {
            if let Some(values) = values {
                r.filters.push(Filter::In {
                    column: schema.partition_key[position],
                    values: values.clone(),
                });
            }
        }
    }
    Ok(r)
}

/// A relation as CQL text, for error messages.
fn relation_text(relation: &Relation) -> String {
    match relation {
        Relation::Element {
            column,
            key,
            predicate,
        } => format!("{column}[{key}] {}", predicate_text(predicate)),
        Relation::IsNotNull { column } => format!("{column} IS NOT NULL"),
        Relation::Column { column, predicate } => format!("{column} {}", predicate_text(predicate)),
        Relation::MultiColumn { columns, predicate } => {
            format!("({}) {}", columns.join(", "), predicate_text(predicate))
        }
        Relation::Token { columns, op, value } => {
            format!("token({}) {op} {value}", columns.join(", "))
        }
    }
}

fn predicate_text(predicate: &Predicate) -> String {
    match predicate {
        Predicate::Compare { op, value } => format!("{op} {value}"),
        Predicate::In(InValues::Marker(_)) => "IN ?".to_owned(),
        Predicate::In(InValues::List(items)) => format!(
            "IN ({})",
            items
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Evaluates one filter given a way to read a column's serialized value.
pub fn matches<'a>(
    schema: &TableSchema,
    filter: &Filter,
    value_of: impl Fn(usize) -> Option<&'a [u8]>,
) -> bool {
    let compare = |column: usize, op: Operator, expected: &[u8]| -> bool {
        let ty = &schema.columns[column].ty;
        let Some(actual) = value_of(column) else {
            return false;
        };
        match op {
            Operator::Contains | Operator::ContainsKey => match CqlValue::deserialize(ty, actual) {
                Ok(CqlValue::List(items) | CqlValue::Set(items)) if op == Operator::Contains => {
                    items
                        .iter()
                        .any(|v| v.to_bytes().ok().as_deref() == Some(expected))
                }
                Ok(CqlValue::Map(entries)) => entries.iter().any(|(k, v)| {
                    let probe = if op == Operator::ContainsKey { k } else { v };
                    probe.to_bytes().ok().as_deref() == Some(expected)
                }),
                _ => false,
            },
            _ => ordering_holds(op, compare_bytes(actual, expected, ty)),
        }
    };
    match filter {
        Filter::Compare { column, op, value } => compare(*column, *op, value),
        Filter::In { column, values } => values.iter().any(|v| compare(*column, Operator::Eq, v)),
        Filter::Tuple {
            columns,
            op,
            values,
        } => {
            let mut ordering = std::cmp::Ordering::Equal;
            for (&column, expected) in columns.iter().zip(values) {
                let Some(actual) = value_of(column) else {
                    return false;
                };
                ordering = compare_bytes(actual, expected, &schema.columns[column].ty);
                if ordering.is_ne() {
                    break;
                }
            }
            ordering_holds(*op, ordering)
        }
        Filter::TupleIn { columns, tuples } => tuples.iter().any(|tuple| {
            columns.iter().zip(tuple).all(|(&c, expected)| {
                value_of(c)
                    .is_some_and(|a| compare_bytes(a, expected, &schema.columns[c].ty).is_eq())
            })
        }),
    }
}

fn ordering_holds(op: Operator, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Operator::Eq => ordering == Equal,
        Operator::Neq => ordering != Equal,
        Operator::Lt => ordering == Less,
        Operator::Lte => ordering != Greater,
        Operator::Gt => ordering == Greater,
        Operator::Gte => ordering != Less,
        _ => false,
    }
}

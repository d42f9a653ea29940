//! Typed binding of a statement's values: by position or by marker name,
//! checked against the prepared statement's marker types (a simple
//! statement sends each value's own type). The C API's `bind_*` functions
//! and Rust callers both go through here.

use super::types::{Query, Statement};
use crate::protocol::bind::{name_matches, write_bound};
use crate::protocol::{BindError, BindValue, Value};

/// Most values one request can carry (`[short]` count in the protocol).
pub const MAX_VALUES: usize = u16::MAX as usize;

impl Statement {
    /// A simple statement with `count` value slots, all unset, for
    /// [`Statement::bind`].
    pub fn simple_with_values(
        text: impl Into<String>,
        count: usize,
    ) -> Result<Statement, BindError> {
        if count > MAX_VALUES {
            return Err(BindError::Invalid(format!(
                "{count} values: a request carries at most {MAX_VALUES}"
            )));
        }
        let mut statement = Statement::simple(text);
        statement.values = unset_values(count);
        Ok(statement)
    }

    /// A statement executing `prepared`, every marker unset.
    pub fn bound(prepared: std::sync::Arc<super::Prepared>) -> Statement {
        let count = prepared.metadata.bind_columns.len();
        let mut statement = Statement::prepared(prepared);
        statement.values = unset_values(count);
        statement
    }

    /// Stores `value` at position `index`, type-checked against the marker.
    /// A refused value leaves the slot as it was.
    pub fn bind(&mut self, index: usize, value: &BindValue) -> Result<(), BindError> {
        let len = self.values.len();
        let slot = self
            .values
            .get_mut(index)
            .ok_or(BindError::IndexOutOfRange { index, len })?;
        match &self.query {
            Query::Prepared(p) => {
                let column = &p.metadata.bind_columns[index];
                let what = format_args!("marker {index} ({})", column.name);
                write_bound(value, Some(&column.ty), &what, slot)
            }
            Query::Simple(_) => write_bound(value, None, &format_args!("value {index}"), slot),
        }
    }

    /// Stores `value` in every marker named `name` (unquoted: any case;
    /// `"Quoted"`: exact). For a simple statement the name is sent with
    /// the value (`:name` markers); its values must then all be named.
    pub fn bind_by_name(&mut self, name: &str, value: &BindValue) -> Result<(), BindError> {
        match &self.query {
            Query::Prepared(p) => {
                let p = p.clone();
                let mut found = false;
                for (i, column) in p.metadata.bind_columns.iter().enumerate() {
                    if name_matches(&column.name, name) {
                        let what = format_args!("marker {i} ({})", column.name);
                        write_bound(value, Some(&column.ty), &what, &mut self.values[i])?;
                        found = true;
                    }
                }
                if found {
                    Ok(())
                } else {
                    Err(BindError::NoSuchName(format!(
                        "the prepared statement has no marker named {name:?}"
                    )))
                }
            }
            Query::Simple(_) => {
                let len = self.values.len();
                let names = self
                    .value_names
                    .get_or_insert_with(|| vec![String::new(); len]);
                // The slot already named so, else the first unnamed one.
                let slot = names
                    .iter()
                    .position(|n| n == name)
                    .or_else(|| names.iter().position(String::is_empty))
                    .ok_or(BindError::IndexOutOfRange { index: len, len })?;
                write_bound(
                    value,
                    None,
                    &format_args!("value {name:?}"),
                    &mut self.values[slot],
                )?;
                names[slot] = name.to_owned();
                Ok(())
            }
        }
    }
}

/// `n` unset values. (Built one by one: `vec![Value::Unset; n]` clones a
/// value with uninitialized padding, which valgrind reports.)
fn unset_values(n: usize) -> Vec<Value> {
    std::iter::repeat_with(|| Value::Unset).take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_statements_bind_by_position_or_name() {
        assert!(Statement::simple_with_values("q", MAX_VALUES + 1).is_err());
        let mut s = Statement::simple_with_values("q", 2).unwrap();
        s.bind(1, &BindValue::Int(7)).unwrap();
        assert_eq!(s.values[1], Value::Set(7i32.to_be_bytes().to_vec()));
        assert_eq!(
            s.bind(2, &BindValue::Int(7)),
            Err(BindError::IndexOutOfRange { index: 2, len: 2 })
        );
        s.bind_by_name("b", &BindValue::Int(1)).unwrap();
        s.bind_by_name("a", &BindValue::Int(2)).unwrap();
        s.bind_by_name("b", &BindValue::Int(3)).unwrap();
        assert_eq!(
            s.value_names.as_deref(),
            Some(&["b".into(), "a".into()][..])
        );
        assert_eq!(s.values[0], Value::Set(3i32.to_be_bytes().to_vec()));
        assert!(matches!(
            s.bind_by_name("c", &BindValue::Int(1)),
            Err(BindError::IndexOutOfRange { .. })
        ));
    }
}

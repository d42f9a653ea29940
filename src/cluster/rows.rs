//! Reading named columns out of a Rows result, for metadata queries.

use std::collections::HashMap;

use crate::protocol::response::Rows;
use crate::protocol::types::ColumnType;
use crate::protocol::value::{deserialize_cell, CqlValue};
use crate::protocol::ProtocolError;

/// Rows with columns looked up by name.
pub struct NamedRows<'a> {
    rows: &'a Rows,
    index: HashMap<&'a str, usize>,
}

impl<'a> NamedRows<'a> {
    pub fn new(rows: &'a Rows) -> NamedRows<'a> {
        let index = rows
            .metadata
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (&*c.name, i))
            .collect();
        NamedRows { rows, index }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value of `column` in row `row`; `Ok(None)` when null or absent.
    pub fn get(&self, row: usize, column: &str) -> Result<Option<CqlValue>, ProtocolError> {
        let Some(&i) = self.index.get(column) else {
            return Ok(None);
        };
        let ty: &ColumnType = &self.rows.metadata.columns[i].ty;
        deserialize_cell(ty, self.rows.cell(row, i))
    }

    pub fn text(&self, row: usize, column: &str) -> Option<String> {
        match self.get(row, column) {
            Ok(Some(CqlValue::Text(s) | CqlValue::Ascii(s))) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, row: usize, column: &str) -> Option<i32> {
        match self.get(row, column) {
            Ok(Some(CqlValue::Int(v))) => Some(v),
            _ => None,
        }
    }

    pub fn uuid(&self, row: usize, column: &str) -> Option<[u8; 16]> {
        match self.get(row, column) {
            Ok(Some(CqlValue::Uuid(u) | CqlValue::Timeuuid(u))) => Some(u),
            _ => None,
        }
    }

    pub fn inet(&self, row: usize, column: &str) -> Option<std::net::IpAddr> {
        match self.get(row, column) {
            Ok(Some(CqlValue::Inet(ip))) => Some(ip),
            _ => None,
        }
    }

    /// A `set<text>` or `list<text>` column.
    pub fn text_list(&self, row: usize, column: &str) -> Vec<String> {
        match self.get(row, column) {
            Ok(Some(CqlValue::Set(items) | CqlValue::List(items))) => items
                .into_iter()
                .filter_map(|v| match v {
                    CqlValue::Text(s) | CqlValue::Ascii(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A `map<text, text>` column.
    pub fn text_map(&self, row: usize, column: &str) -> Vec<(String, String)> {
        match self.get(row, column) {
            Ok(Some(CqlValue::Map(entries))) => entries
                .into_iter()
                .filter_map(|(k, v)| match (k, v) {
                    (CqlValue::Text(k), CqlValue::Text(v)) => Some((k, v)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

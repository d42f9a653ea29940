//! CQL lexer and recursive-descent parser for the ScyllaDB emulator.
//!
//! Covers the CQL v4 subset that drivers (Python scylla-driver, the Rust
//! `scylla` crate, our own driver) and applications send: DML with bind
//! markers, LWT conditions, batches, Scylla's `USING TIMEOUT`, and the DDL
//! needed to create keyspaces, tables, types, indexes and views.
//!
//! Parsing never panics: any input either yields a [`Statement`] or a
//! [`ParseError`] with a position, which the server reports as a CQL
//! `SyntaxError` (0x2000). The parser is purely syntactic; schema checks
//! (unknown columns, type compatibility) belong to the server.
//!
//! ```
//! use cql_parser::{parse_statement, Statement};
//!
//! let stmt = parse_statement("SELECT * FROM ks.t WHERE pk = ? LIMIT ?").unwrap();
//! let Statement::Select(select) = &stmt else { unreachable!() };
//! assert_eq!(select.table.name, "t");
//! let names: Vec<String> = stmt.bind_variables().iter().map(|v| v.name()).collect();
//! assert_eq!(names, ["pk", "[limit]"]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
mod bind;
mod error;
mod keywords;
mod lexer;
mod parser;
pub mod types;

pub use ast::*;
pub use bind::{BindReceiver, BoundVariable, PathStep};
pub use error::ParseError;
pub use keywords::quote_identifier;
pub use types::{CqlType, NativeType};

/// Parses one CQL statement, optionally followed by `;`.
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    parser::parse_statement(text)
}

/// Parses a sequence of `;`-separated statements (e.g. a schema script).
/// Bind markers are numbered per statement.
pub fn parse_statements(text: &str) -> Result<Vec<Statement>, ParseError> {
    parser::parse_script(text)
}

/// Parses a CQL type expression such as `frozen<map<text, list<int>>>`,
/// e.g. a `system_schema.columns.type` string.
pub fn parse_type(text: &str) -> Result<CqlType, ParseError> {
    parser::parse_type(text)
}

/// Parses one value expression such as `1h30m`, `[1, 2]` or `'text'`, e.g.
/// a value written as text in JSON.
pub fn parse_term(text: &str) -> Result<Term, ParseError> {
    parser::parse_term(text)
}

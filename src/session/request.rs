//! Turning statements and batches into protocol requests, and responses
//! into `QueryResult`s.

use std::net::SocketAddr;

use super::types::{Batch, DriverError, Query, QueryResult, SessionConfig, Statement};
use crate::protocol::request::{Batch as WireBatch, BatchStatement, BatchStatementKind};
use crate::protocol::response::ResultBody;
use crate::protocol::{QueryParameters, Request, ResponseExtensions};

/// The wire request of a statement, with session defaults filled in.
pub fn statement_request(
    statement: &Statement,
    config: &SessionConfig,
) -> Result<Request, DriverError> {
    if let (Query::Prepared(p), None) = (&statement.query, &statement.value_names) {
        let expected = p.metadata.bind_columns.len();
        if statement.values.len() != expected {
            return Err(DriverError::InvalidArgument(format!(
                "the statement has {expected} bind markers but {} values were given",
                statement.values.len()
            )));
        }
    }
    if let Some(names) = &statement.value_names {
        if names.len() != statement.values.len() {
            return Err(DriverError::InvalidArgument(format!(
                "{} value names for {} values",
                names.len(),
                statement.values.len()
            )));
        }
    }
    let page_size = statement.page_size.unwrap_or(config.default_page_size);
    let params = QueryParameters {
        consistency: statement.consistency.unwrap_or(config.default_consistency),
        values: statement.values.clone(),
        value_names: statement.value_names.clone(),
        skip_metadata: false,
        page_size: (page_size > 0).then_some(page_size),
        paging_state: statement.paging_state.clone(),
        serial_consistency: statement
            .serial_consistency
            .or(config.default_serial_consistency),
        timestamp: statement.timestamp,
    };
    Ok(match &statement.query {
        Query::Simple(text) => Request::Query {
            query: text.clone(),
            params,
        },
        Query::Prepared(p) => Request::Execute {
            id: p.id.clone(),
            params,
        },
    })
}

/// The wire request of a batch. Values travel by position only (v4 has no
/// named values in batches).
pub fn batch_request(batch: &Batch, config: &SessionConfig) -> Result<Request, DriverError> {
    if batch.statements.is_empty() {
        return Err(DriverError::InvalidArgument("empty batch".into()));
    }
    let statements = batch
        .statements
        .iter()
        .map(|s| {
            if s.value_names.is_some() {
                return Err(DriverError::InvalidArgument(
                    "batch statements take positional values only".into(),
                ));
            }
            let statement = match &s.query {
                Query::Simple(text) => BatchStatementKind::Query(text.clone()),
                Query::Prepared(p) => {
                    if s.values.len() != p.metadata.bind_columns.len() {
                        return Err(DriverError::InvalidArgument(format!(
                            "batch statement `{}` has {} bind markers but {} values were given",
                            p.query,
                            p.metadata.bind_columns.len(),
                            s.values.len()
                        )));
                    }
                    BatchStatementKind::Prepared(p.id.clone())
                }
            };
            Ok(BatchStatement {
                statement,
                values: s.values.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Request::Batch(WireBatch {
        kind: batch.kind,
        statements,
        consistency: batch.consistency.unwrap_or(config.default_consistency),
        serial_consistency: batch
            .serial_consistency
            .or(config.default_serial_consistency),
        timestamp: batch.timestamp,
    }))
}

/// A RESULT body and its frame extensions as a `QueryResult`.
pub fn query_result(
    body: ResultBody,
    extensions: ResponseExtensions,
    coordinator: SocketAddr,
    shard: Option<u16>,
) -> QueryResult {
    let mut result = QueryResult {
        warnings: extensions.warnings,
        tracing_id: extensions.tracing_id,
        coordinator: Some(coordinator),
        shard,
        ..Default::default()
    };
    match body {
        ResultBody::Void | ResultBody::Prepared(_) => {}
        ResultBody::Rows(rows) => {
            result.paging_state = rows.metadata.paging_state.clone();
            result.rows = Some(rows);
        }
        ResultBody::SetKeyspace(keyspace) => result.keyspace = Some(keyspace),
        ResultBody::SchemaChange(change) => result.schema_change = Some(change),
    }
    result
}

/// `USE <name>` with the exact (case-sensitive) name quoted.
pub fn use_statement(keyspace: &str) -> String {
    if keyspace.len() >= 2 && keyspace.starts_with('"') && keyspace.ends_with('"') {
        return format!("USE {keyspace}");
    }
    format!("USE \"{}\"", keyspace.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Consistency, Value};

    #[test]
    fn defaults_fill_in_and_zero_page_size_means_unpaged() {
        let config = SessionConfig {
            default_page_size: 100,
            default_consistency: Consistency::Quorum,
            ..Default::default()
        };
        let mut st = Statement::simple("SELECT 1");
        let Request::Query { params, .. } = statement_request(&st, &config).unwrap() else {
            panic!()
        };
        assert_eq!(params.page_size, Some(100));
        assert_eq!(params.consistency, Consistency::Quorum);
        st.page_size = Some(0);
        st.consistency = Some(Consistency::One);
        st.values = vec![Value::Null];
        let Request::Query { params, .. } = statement_request(&st, &config).unwrap() else {
            panic!()
        };
        assert_eq!(params.page_size, None);
        assert_eq!(params.consistency, Consistency::One);
        assert_eq!(params.values, vec![Value::Null]);
    }

    #[test]
    fn use_quotes_names() {
        assert_eq!(use_statement("ks"), "USE \"ks\"");
        assert_eq!(use_statement("\"Ks\""), "USE \"Ks\"");
        assert_eq!(use_statement("a\"b"), "USE \"a\"\"b\"");
    }
}

//! Turning statements and batches into protocol requests, and responses
//! into `QueryResult`s.

use std::net::SocketAddr;

use super::hints::Hints;
use super::profile::ExecutionProfile;
use super::types::{Batch, DriverError, Query, QueryResult, SessionConfig, Statement};
use crate::connection::RawRequest;
use crate::protocol::request::{
    write_execute_body, write_query_body, Batch as WireBatch, BatchStatement, BatchStatementKind,
    ParamsRef,
};
use crate::protocol::response::ResultBody;
use crate::protocol::{Consistency, Opcode, ProtocolError, Request, ResponseExtensions, Value};

/// A request encoded once (retries resend the same bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRequest {
    pub opcode: Opcode,
    /// Header flags the body needs (tracing).
    pub flags: u8,
    pub body: Vec<u8>,
    /// Where the body's consistency (a `[short]`) is, for a retry at
    /// another level.
    pub consistency_at: Option<usize>,
}

impl EncodedRequest {
    fn of(request: &Request) -> Result<EncodedRequest, DriverError> {
        let mut body = Vec::new();
        request.write_body(&mut body).map_err(invalid_request)?;
        Ok(EncodedRequest {
            opcode: request.opcode(),
            flags: 0,
            body,
            consistency_at: None,
        })
    }

    /// The request as the connection sends it.
    pub fn raw(&self) -> RawRequest<'_> {
        RawRequest {
            opcode: self.opcode,
            flags: self.flags,
            body: &self.body,
        }
    }
}

/// A copy of `body` whose consistency (the `[short]` at `at`) is
/// `consistency`; `None` if `at` is out of the body.
pub fn with_consistency(body: &[u8], at: usize, consistency: Consistency) -> Option<Vec<u8>> {
    let mut copy = body.to_vec();
    copy.get_mut(at..at + 2)?
        .copy_from_slice(&(consistency as u16).to_be_bytes());
    Some(copy)
}

fn invalid_request(e: ProtocolError) -> DriverError {
    DriverError::InvalidArgument(format!("cannot encode the request: {e}"))
}

/// The consistency levels and timeout of a request: its own, else its
/// profile's, else the session's.
pub struct Levels {
    pub consistency: Consistency,
    pub serial_consistency: Option<Consistency>,
    pub timeout: std::time::Duration,
}

impl Levels {
    pub fn of(
        own: (
            Option<Consistency>,
            Option<Consistency>,
            Option<std::time::Duration>,
        ),
        profile: Option<&ExecutionProfile>,
        config: &SessionConfig,
    ) -> Levels {
        let (consistency, serial_consistency, timeout) = own;
        match profile {
            None => Levels {
                consistency: consistency.unwrap_or(config.default_consistency),
                serial_consistency: serial_consistency.or(config.default_serial_consistency),
                timeout: timeout.unwrap_or(config.request_timeout),
            },
            Some(p) => Levels {
                consistency: consistency
                    .or(p.consistency)
                    .unwrap_or(config.default_consistency),
                serial_consistency: serial_consistency
                    .or(p.serial_consistency)
                    .or(config.default_serial_consistency),
                timeout: timeout
                    .or(p.request_timeout)
                    .unwrap_or(config.request_timeout),
            },
        }
    }
}

/// The wire request of a statement, with its profile's and the session's
/// defaults filled in, encoded straight from the statement's values (no
/// copy of them first). `timestamp` is the client-side timestamp when the
/// statement has none.
pub fn statement_request(
    statement: &Statement,
    config: &SessionConfig,
    levels: &Levels,
    timestamp: Option<i64>,
) -> Result<EncodedRequest, DriverError> {
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
        if names.iter().any(String::is_empty) {
            return Err(DriverError::InvalidArgument(
                "a simple statement's values must be all named or all positional".into(),
            ));
        }
        if names.len() != statement.values.len() {
            return Err(DriverError::InvalidArgument(format!(
                "{} value names for {} values",
                names.len(),
                statement.values.len()
            )));
        }
    }
    let page_size = statement.page_size.unwrap_or(config.default_page_size);
    let params = ParamsRef {
        consistency: levels.consistency,
        values: &statement.values,
        value_names: statement.value_names.as_deref(),
        skip_metadata: false,
        page_size: (page_size > 0).then_some(page_size),
        paging_state: statement.paging_state.as_deref(),
        serial_consistency: levels.serial_consistency,
        timestamp: statement.timestamp.or(timestamp),
    };
    let mut body = Vec::with_capacity(64 + statement.values.iter().map(value_len).sum::<usize>());
    let mut flags = tracing_flag(statement.tracing);
    if config.communicator.is_some() {
        flags |= Hints::of_statement(statement, Some(levels.timeout)).write_payload(&mut body);
    }
    // The custom payload (if any) comes first; then the level follows the
    // query (`[long string]`) or the id (`[short bytes]`).
    let payload_len = body.len();
    let (opcode, consistency_at) = match &statement.query {
        Query::Simple(text) => {
            write_query_body(&mut body, text, &params).map_err(invalid_request)?;
            (Opcode::Query, 4 + text.len())
        }
        Query::Prepared(p) => {
            write_execute_body(&mut body, &p.id, &params).map_err(invalid_request)?;
            (Opcode::Execute, 2 + p.id.len())
        }
    };
    Ok(EncodedRequest {
        opcode,
        flags,
        body,
        consistency_at: Some(payload_len + consistency_at),
    })
}

fn tracing_flag(tracing: bool) -> u8 {
    if tracing {
        crate::protocol::frame::flags::TRACING
    } else {
        0
    }
}

/// Bytes a value takes on the wire (its length prefix included).
fn value_len(value: &Value) -> usize {
    4 + value.as_bytes().map_or(0, <[u8]>::len)
}

/// The wire request of a batch. Values travel by position only (v4 has no
/// named values in batches).
pub fn batch_request(
    batch: &Batch,
    config: &SessionConfig,
    levels: &Levels,
    timestamp: Option<i64>,
) -> Result<EncodedRequest, DriverError> {
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
    let wire = WireBatch {
        kind: batch.kind,
        statements,
        consistency: levels.consistency,
        serial_consistency: levels.serial_consistency,
        timestamp: batch.timestamp.or(timestamp),
    };
    // After the statements: [consistency][flags][serial]?[timestamp]?.
    let tail = 2 + 1 + wire.serial_consistency.map_or(0, |_| 2) + wire.timestamp.map_or(0, |_| 8);
    let mut request = EncodedRequest::of(&Request::Batch(wire))?;
    request.flags = tracing_flag(batch.tracing);
    if config.communicator.is_some() {
        // Routed by its first statement with a routing key, as direct.
        let mut hints = batch
            .statements
            .iter()
            .map(|s| Hints::of_statement(s, None))
            .find(|h| h.routing_key.is_some())
            .unwrap_or_default();
        hints.idempotent = batch.idempotent;
        hints.timeout = Some(levels.timeout);
        let mut body = Vec::with_capacity(request.body.len() + 64);
        request.flags |= hints.write_payload(&mut body);
        body.extend_from_slice(&request.body);
        request.body = body;
    }
    request.consistency_at = request.body.len().checked_sub(tail);
    Ok(request)
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
    use crate::protocol::Consistency;
    use std::sync::Arc;

    fn levels_of_st(st: &Statement, config: &SessionConfig) -> Levels {
        Levels::of(
            (st.consistency, st.serial_consistency, st.timeout),
            None,
            config,
        )
    }

    fn levels_of_batch(b: &Batch, config: &SessionConfig) -> Levels {
        Levels::of(
            (b.consistency, b.serial_consistency, b.timeout),
            None,
            config,
        )
    }

    /// What the server reads from an encoded request.
    fn decoded(request: EncodedRequest) -> Request {
        Request::read_body(request.opcode, &request.body).unwrap()
    }

    #[test]
    fn defaults_fill_in_and_zero_page_size_means_unpaged() {
        let config = SessionConfig {
            default_page_size: 100,
            default_consistency: Consistency::Quorum,
            ..Default::default()
        };
        let mut st = Statement::simple("SELECT 1");
        let Request::Query { params, .. } =
            decoded(statement_request(&st, &config, &levels_of_st(&st, &config), None).unwrap())
        else {
            panic!()
        };
        assert_eq!(params.page_size, Some(100));
        assert_eq!(params.consistency, Consistency::Quorum);
        st.page_size = Some(0);
        st.consistency = Some(Consistency::One);
        st.values = vec![Value::Null];
        let Request::Query { params, .. } =
            decoded(statement_request(&st, &config, &levels_of_st(&st, &config), None).unwrap())
        else {
            panic!()
        };
        assert_eq!(params.page_size, None);
        assert_eq!(params.consistency, Consistency::One);
        assert_eq!(params.values, vec![Value::Null]);
    }

    #[test]
    fn prepared_statements_and_batches_encode_their_id_values_and_options() {
        use crate::protocol::response::{ColumnSpec, PreparedMetadata};
        let column =
            |name: &str| ColumnSpec::new("ks", "t", name, crate::protocol::ColumnType::Int);
        let prepared = Arc::new(crate::session::Prepared {
            id: b"id-1".to_vec(),
            query: "INSERT INTO ks.t (k, v) VALUES (?, ?)".into(),
            keyspace: None,
            metadata: PreparedMetadata {
                is_lwt: false,
                pk_indexes: vec![0],
                bind_columns: vec![column("k"), column("v")],
            },
            result_metadata: Default::default(),
        });
        let mut st = Statement::prepared(prepared.clone());
        st.values = vec![Value::Set(vec![0, 0, 0, 7]), Value::Unset];
        st.paging_state = Some(vec![9, 9]);
        st.timestamp = Some(42);
        st.serial_consistency = Some(Consistency::LocalSerial);
        let config = SessionConfig::default();
        let Request::Execute { id, params } =
            decoded(statement_request(&st, &config, &levels_of_st(&st, &config), None).unwrap())
        else {
            panic!()
        };
        assert_eq!(id, b"id-1");
        assert_eq!(params.values, st.values);
        assert_eq!(params.paging_state, Some(vec![9, 9]));
        assert_eq!(params.timestamp, Some(42));
        assert_eq!(params.serial_consistency, Some(Consistency::LocalSerial));
        assert!(!params.skip_metadata);

        st.values.pop();
        assert!(matches!(
            statement_request(&st, &config, &levels_of_st(&st, &config), None),
            Err(DriverError::InvalidArgument(_))
        ));

        st.values.push(Value::Null);
        let batch = Batch {
            statements: vec![
                st.clone(),
                Statement::simple("DELETE FROM ks.t WHERE k = 1"),
            ],
            ..Batch::new(crate::protocol::request::BatchKind::Unlogged)
        };
        let Request::Batch(wire) = decoded(
            batch_request(&batch, &config, &levels_of_batch(&batch, &config), Some(7)).unwrap(),
        ) else {
            panic!()
        };
        assert_eq!(wire.statements.len(), 2);
        assert_eq!(
            wire.statements[0].statement,
            BatchStatementKind::Prepared(b"id-1".to_vec())
        );
        assert_eq!(wire.statements[0].values, st.values);
        // The client timestamp, unless the batch has its own.
        assert_eq!(wire.timestamp, Some(7));
        let own = Batch {
            timestamp: Some(3),
            ..batch
        };
        let Request::Batch(wire) = decoded(
            batch_request(&own, &config, &levels_of_batch(&own, &config), Some(7)).unwrap(),
        ) else {
            panic!()
        };
        assert_eq!(wire.timestamp, Some(3));
    }

    #[test]
    fn a_retry_at_another_consistency_is_the_request_encoded_at_it() {
        use crate::protocol::response::{ColumnSpec, PreparedMetadata};
        let prepared = Arc::new(crate::session::Prepared {
            id: b"prepared-id".to_vec(),
            query: "SELECT v FROM ks.t WHERE k = ?".into(),
            keyspace: None,
            metadata: PreparedMetadata {
                is_lwt: false,
                pk_indexes: vec![0],
                bind_columns: vec![ColumnSpec::new(
                    "ks",
                    "t",
                    "k",
                    crate::protocol::ColumnType::Int,
                )],
            },
            result_metadata: Default::default(),
        });
        let config = SessionConfig::default();
        let mut simple = Statement::simple("SELECT v FROM ks.t WHERE k = 1");
        let mut execute = Statement::prepared(prepared);
        execute.values = vec![Value::Set(vec![0, 0, 0, 1])];
        execute.serial_consistency = Some(Consistency::Serial);
        for st in [&mut simple, &mut execute] {
            st.consistency = Some(Consistency::Quorum);
            let at_quorum =
                statement_request(st, &config, &levels_of_st(st, &config), Some(5)).unwrap();
            st.consistency = Some(Consistency::Two);
            let at_two =
                statement_request(st, &config, &levels_of_st(st, &config), Some(5)).unwrap();
            let at = at_quorum.consistency_at.unwrap();
            assert_eq!(
                with_consistency(&at_quorum.body, at, Consistency::Two),
                Some(at_two.body)
            );
        }
        for (serial, timestamp) in [(None, None), (Some(Consistency::Serial), Some(9))] {
            let mut batch = Batch {
                statements: vec![execute.clone(), simple.clone()],
                consistency: Some(Consistency::All),
                serial_consistency: serial,
                timestamp,
                ..Batch::new(crate::protocol::request::BatchKind::Logged)
            };
            let at_all =
                batch_request(&batch, &config, &levels_of_batch(&batch, &config), None).unwrap();
            batch.consistency = Some(Consistency::One);
            let at_one =
                batch_request(&batch, &config, &levels_of_batch(&batch, &config), None).unwrap();
            let at = at_all.consistency_at.unwrap();
            assert_eq!(
                with_consistency(&at_all.body, at, Consistency::One),
                Some(at_one.body)
            );
        }
    }

    #[test]
    fn use_quotes_names() {
        assert_eq!(use_statement("ks"), "USE \"ks\"");
        assert_eq!(use_statement("\"Ks\""), "USE \"Ks\"");
        assert_eq!(use_statement("a\"b"), "USE \"a\"\"b\"");
    }
}

//! Errors the engine answers with: a CQL error code and message.

use scylla_shard::protocol::response::{error_code, ErrorBody, ErrorDetails};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError(pub ErrorBody);

impl EngineError {
    pub fn new(code: i32, message: impl Into<String>) -> EngineError {
        EngineError(ErrorBody::new(code, message))
    }
}

pub fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::new(error_code::INVALID, message)
}

pub fn syntax(message: impl Into<String>) -> EngineError {
    EngineError::new(error_code::SYNTAX_ERROR, message)
}

pub fn config_error(message: impl Into<String>) -> EngineError {
    EngineError::new(error_code::CONFIG_ERROR, message)
}

pub fn already_exists(keyspace: &str, table: &str) -> EngineError {
    let message = if table.is_empty() {
        format!("Keyspace {keyspace} already exists")
    } else {
        format!("Object {keyspace}.{table} already exists")
    };
    EngineError(ErrorBody {
        code: error_code::ALREADY_EXISTS,
        message,
        details: ErrorDetails::AlreadyExists {
            keyspace: keyspace.to_owned(),
            table: table.to_owned(),
        },
    })
}

pub fn unprepared(id: &[u8]) -> EngineError {
    EngineError(ErrorBody {
        code: error_code::UNPREPARED,
        message: "Unknown prepared statement, it may have been evicted".to_owned(),
        details: ErrorDetails::Unprepared { id: id.to_vec() },
    })
}

/// Scylla's message for a table that does not exist.
pub fn unconfigured_table(table: &str) -> EngineError {
    invalid(format!("unconfigured table {table}"))
}

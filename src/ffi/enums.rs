//! The C enumerations: plain integer typedefs with `SSHARD_<GROUP>_<NAME>`
//! constants. An integer (not a Rust enum) crosses the boundary, so an
//! out-of-range value from C is an `SSHARD_STATUS_INVALID_ARGUMENT`, never
//! undefined behaviour.

use super::status::{Fail, FfiResult};
use crate::protocol::request::BatchKind;
use crate::protocol::{ColumnType, Consistency};

/// A consistency level (the CQL wire values).
pub type sshard_consistency = u16;
pub const SSHARD_CONSISTENCY_ANY: sshard_consistency = 0x0000;
pub const SSHARD_CONSISTENCY_ONE: sshard_consistency = 0x0001;
pub const SSHARD_CONSISTENCY_TWO: sshard_consistency = 0x0002;
pub const SSHARD_CONSISTENCY_THREE: sshard_consistency = 0x0003;
pub const SSHARD_CONSISTENCY_QUORUM: sshard_consistency = 0x0004;
pub const SSHARD_CONSISTENCY_ALL: sshard_consistency = 0x0005;
pub const SSHARD_CONSISTENCY_LOCAL_QUORUM: sshard_consistency = 0x0006;
pub const SSHARD_CONSISTENCY_EACH_QUORUM: sshard_consistency = 0x0007;
pub const SSHARD_CONSISTENCY_SERIAL: sshard_consistency = 0x0008;
pub const SSHARD_CONSISTENCY_LOCAL_SERIAL: sshard_consistency = 0x0009;
pub const SSHARD_CONSISTENCY_LOCAL_ONE: sshard_consistency = 0x000A;

pub(crate) fn consistency(value: sshard_consistency) -> FfiResult<Consistency> {
    Consistency::from_u16(value).map_err(|_| Fail::invalid(format!("unknown consistency {value}")))
}

pub(crate) fn serial_consistency(value: sshard_consistency) -> FfiResult<Consistency> {
    let c = consistency(value)?;
    if c.is_serial() {
        Ok(c)
    } else {
        Err(Fail::invalid(format!(
            "serial consistency must be SERIAL or LOCAL_SERIAL, not {c}"
        )))
    }
}

/// What a column of a table is.
pub type sshard_column_kind = u8;
pub const SSHARD_COLUMN_KIND_PARTITION_KEY: sshard_column_kind = 0;
pub const SSHARD_COLUMN_KIND_CLUSTERING: sshard_column_kind = 1;
pub const SSHARD_COLUMN_KIND_STATIC: sshard_column_kind = 2;
pub const SSHARD_COLUMN_KIND_REGULAR: sshard_column_kind = 3;

/// A CQL data type (the protocol's type ids).
pub type sshard_type = u16;
pub const SSHARD_TYPE_CUSTOM: sshard_type = 0x0000;
pub const SSHARD_TYPE_ASCII: sshard_type = 0x0001;
pub const SSHARD_TYPE_BIGINT: sshard_type = 0x0002;
pub const SSHARD_TYPE_BLOB: sshard_type = 0x0003;
pub const SSHARD_TYPE_BOOLEAN: sshard_type = 0x0004;
pub const SSHARD_TYPE_COUNTER: sshard_type = 0x0005;
pub const SSHARD_TYPE_DECIMAL: sshard_type = 0x0006;
pub const SSHARD_TYPE_DOUBLE: sshard_type = 0x0007;
pub const SSHARD_TYPE_FLOAT: sshard_type = 0x0008;
pub const SSHARD_TYPE_INT: sshard_type = 0x0009;
pub const SSHARD_TYPE_TIMESTAMP: sshard_type = 0x000B;
pub const SSHARD_TYPE_UUID: sshard_type = 0x000C;
pub const SSHARD_TYPE_TEXT: sshard_type = 0x000D;
pub const SSHARD_TYPE_VARINT: sshard_type = 0x000E;
pub const SSHARD_TYPE_TIMEUUID: sshard_type = 0x000F;
pub const SSHARD_TYPE_INET: sshard_type = 0x0010;
pub const SSHARD_TYPE_DATE: sshard_type = 0x0011;
pub const SSHARD_TYPE_TIME: sshard_type = 0x0012;
pub const SSHARD_TYPE_SMALLINT: sshard_type = 0x0013;
pub const SSHARD_TYPE_TINYINT: sshard_type = 0x0014;
pub const SSHARD_TYPE_DURATION: sshard_type = 0x0015;
pub const SSHARD_TYPE_LIST: sshard_type = 0x0020;
pub const SSHARD_TYPE_MAP: sshard_type = 0x0021;
pub const SSHARD_TYPE_SET: sshard_type = 0x0022;
pub const SSHARD_TYPE_UDT: sshard_type = 0x0030;
pub const SSHARD_TYPE_TUPLE: sshard_type = 0x0031;

pub(crate) fn type_of(ty: &ColumnType) -> sshard_type {
    ty.id()
}

/// Kind of a batch.
pub type sshard_batch_type = u8;
pub const SSHARD_BATCH_TYPE_LOGGED: sshard_batch_type = 0;
pub const SSHARD_BATCH_TYPE_UNLOGGED: sshard_batch_type = 1;
pub const SSHARD_BATCH_TYPE_COUNTER: sshard_batch_type = 2;

pub(crate) fn batch_kind(value: sshard_batch_type) -> FfiResult<BatchKind> {
    match value {
        SSHARD_BATCH_TYPE_LOGGED => Ok(BatchKind::Logged),
        SSHARD_BATCH_TYPE_UNLOGGED => Ok(BatchKind::Unlogged),
        SSHARD_BATCH_TYPE_COUNTER => Ok(BatchKind::Counter),
        other => Err(Fail::invalid(format!("unknown batch type {other}"))),
    }
}

/// What a result carries (the CQL RESULT kinds a request can get).
pub type sshard_result_kind = u32;
/// No rows (an INSERT, UPDATE, DELETE...).
pub const SSHARD_RESULT_KIND_VOID: sshard_result_kind = 1;
/// Rows (a SELECT, or the answer of a conditional statement), maybe none.
pub const SSHARD_RESULT_KIND_ROWS: sshard_result_kind = 2;
/// A `USE` switched the keyspace (`sshard_result_keyspace`).
pub const SSHARD_RESULT_KIND_SET_KEYSPACE: sshard_result_kind = 3;
/// A DDL statement changed the schema (`sshard_result_schema_change`).
pub const SSHARD_RESULT_KIND_SCHEMA_CHANGE: sshard_result_kind = 5;

/// Frame compression.
pub type sshard_compression = u8;
pub const SSHARD_COMPRESSION_NONE: sshard_compression = 0;
pub const SSHARD_COMPRESSION_LZ4: sshard_compression = 1;

/// Log levels, from quietest to most verbose.
pub type sshard_log_level = u8;
pub const SSHARD_LOG_LEVEL_OFF: sshard_log_level = 0;
pub const SSHARD_LOG_LEVEL_ERROR: sshard_log_level = 1;
pub const SSHARD_LOG_LEVEL_WARN: sshard_log_level = 2;
pub const SSHARD_LOG_LEVEL_INFO: sshard_log_level = 3;
pub const SSHARD_LOG_LEVEL_DEBUG: sshard_log_level = 4;
pub const SSHARD_LOG_LEVEL_TRACE: sshard_log_level = 5;

/// What a future (or completion event) carries when it succeeds.
pub type sshard_future_kind = u32;
/// `sshard_session_connect`: a session (`sshard_future_get_session`).
pub const SSHARD_FUTURE_KIND_CONNECT: sshard_future_kind = 1;
/// `sshard_session_prepare`: a prepared statement (`sshard_future_get_prepared`).
pub const SSHARD_FUTURE_KIND_PREPARE: sshard_future_kind = 2;
/// `sshard_session_execute`: a result (`sshard_future_get_result`).
pub const SSHARD_FUTURE_KIND_EXECUTE: sshard_future_kind = 3;
/// `sshard_session_batch`: a result.
pub const SSHARD_FUTURE_KIND_BATCH: sshard_future_kind = 4;
/// `sshard_session_use_keyspace`: nothing.
pub const SSHARD_FUTURE_KIND_USE_KEYSPACE: sshard_future_kind = 5;
/// `sshard_session_close`: nothing.
pub const SSHARD_FUTURE_KIND_CLOSE: sshard_future_kind = 6;

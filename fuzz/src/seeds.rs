//! Valid inputs for every decoder, made with the library's own encoders:
//! every response and request message (each error detail kind, result
//! kind and event), frame extensions, lz4 bodies, a value of every column
//! type, and a tablets payload. Mutations start from these.

use std::collections::HashMap;
use std::net::SocketAddr;

use scylla_shard::protocol::frame::{encode_request, encode_response, HEADER_LEN};
use scylla_shard::protocol::request::{Batch, BatchKind, BatchStatement, BatchStatementKind};
use scylla_shard::protocol::response::{
    error_code, ColumnSpec, ErrorDetails, Event, Prepared, PreparedMetadata, ResultMetadata,
    SchemaChange,
};
use scylla_shard::protocol::tablets_payload::{TabletRoutingInfo, TABLETS_ROUTING_V1_KEY};
use scylla_shard::protocol::types::{ColumnType, UdtType};
use scylla_shard::protocol::value::{put_cell, CqlValue};
use scylla_shard::protocol::{
    Compression, Consistency, ErrorBody, QueryParameters, Request, RequestExtensions, Response,
    ResponseExtensions, ResultBody, Value,
};

use super::targets::{REQUEST_FRAME, RESPONSE_FRAME, TABLETS_PAYLOAD, TYPED_VALUE};

/// Every seed input (selector byte first).
pub fn all() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let plain = ResponseExtensions::default();
    let rich = rich_extensions();
    for response in responses() {
        for (extensions, compression) in [
            (&plain, None),
            (&rich, None),
            (&plain, Some(Compression::Lz4)),
        ] {
            let frame = encode_response(3, &response, extensions, compression)
                .expect("seed response encodes");
            seeds.push(tagged(RESPONSE_FRAME, &frame));
        }
    }
    for body in rows_bodies() {
        seeds.push(tagged(RESPONSE_FRAME, &response_frame(0x08, &body)));
    }
    let traced = RequestExtensions {
        tracing: true,
        custom_payload: Some(HashMap::from([("k".to_owned(), vec![1, 2])])),
    };
    for request in requests() {
        for (extensions, compression) in [
            (&RequestExtensions::default(), None),
            (&traced, Some(Compression::Lz4)),
        ] {
            let frame =
                encode_request(5, &request, extensions, compression).expect("seed request encodes");
            seeds.push(tagged(REQUEST_FRAME, &frame));
        }
    }
    for (ty, value) in typed_values() {
        let mut input = vec![TYPED_VALUE];
        ty.write(&mut input).expect("seed type encodes");
        value.serialize(&mut input).expect("seed value encodes");
        seeds.push(input);
    }
    seeds.push(tagged(TABLETS_PAYLOAD, &tablet().encode()));
    seeds
}

fn tagged(selector: u8, bytes: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(bytes.len() + 1);
    input.push(selector);
    input.extend_from_slice(bytes);
    input
}

fn tablet() -> TabletRoutingInfo {
    TabletRoutingInfo {
        first_token: -100,
        last_token: 5_000,
        replicas: vec![([1; 16], 0), ([2; 16], 3)],
    }
}

fn rich_extensions() -> ResponseExtensions {
    ResponseExtensions {
        tracing_id: Some([7; 16]),
        warnings: vec!["careful".into(), "slow".into()],
        custom_payload: Some(HashMap::from([(
            TABLETS_ROUTING_V1_KEY.to_owned(),
            tablet().encode(),
        )])),
    }
}

fn spec(name: &str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec::new("ks", "t", name, ty)
}

fn error(code: i32, details: ErrorDetails) -> Response {
    Response::Error(ErrorBody {
        code,
        message: "message".into(),
        details,
    })
}

fn responses() -> Vec<Response> {
    let cl = Consistency::Quorum;
    let schema = |target: &str, name: Option<&str>, args: &[&str]| SchemaChange {
        change: "CREATED".into(),
        target: target.into(),
        keyspace: "ks".into(),
        name: name.map(Into::into),
        arg_types: args.iter().map(|a| a.to_string()).collect(),
    };
    let address: SocketAddr = "127.0.0.2:9042".parse().expect("address");
    let v6: SocketAddr = "[::1]:9042".parse().expect("address");
    vec![
        error(error_code::SYNTAX_ERROR, ErrorDetails::None),
        error(0x7777, ErrorDetails::None),
        error(
            error_code::UNAVAILABLE,
            ErrorDetails::Unavailable {
                consistency: cl,
                required: 3,
                alive: 1,
            },
        ),
        error(
            error_code::WRITE_TIMEOUT,
            ErrorDetails::WriteTimeout {
                consistency: cl,
                received: 1,
                block_for: 2,
                write_type: "SIMPLE".into(),
            },
        ),
        error(
            error_code::READ_TIMEOUT,
            ErrorDetails::ReadTimeout {
                consistency: cl,
                received: 1,
                block_for: 2,
                data_present: true,
            },
        ),
        error(
            error_code::READ_FAILURE,
            ErrorDetails::ReadFailure {
                consistency: cl,
                received: 1,
                block_for: 2,
                num_failures: 1,
                data_present: false,
            },
        ),
        error(
            error_code::FUNCTION_FAILURE,
            ErrorDetails::FunctionFailure {
                keyspace: "ks".into(),
                function: "f".into(),
                arg_types: vec!["int".into()],
            },
        ),
        error(
            error_code::WRITE_FAILURE,
            ErrorDetails::WriteFailure {
                consistency: cl,
                received: 1,
                block_for: 2,
                num_failures: 1,
                write_type: "BATCH".into(),
            },
        ),
        error(
            error_code::ALREADY_EXISTS,
            ErrorDetails::AlreadyExists {
                keyspace: "ks".into(),
                table: "t".into(),
            },
        ),
        error(
            error_code::UNPREPARED,
            ErrorDetails::Unprepared { id: vec![9; 16] },
        ),
        error(
            error_code::RATE_LIMIT_REACHED,
            ErrorDetails::RateLimitReached {
                op_type: 1,
                rejected_by_coordinator: true,
            },
        ),
        Response::Ready,
        Response::Authenticate {
            authenticator: "org.apache.cassandra.auth.PasswordAuthenticator".into(),
        },
        Response::Supported {
            options: vec![
                ("COMPRESSION".into(), vec!["lz4".into()]),
                ("SCYLLA_SHARD".into(), vec!["0".into()]),
                ("SCYLLA_NR_SHARDS".into(), vec!["4".into()]),
            ],
        },
        Response::AuthChallenge {
            token: Some(vec![1, 2]),
        },
        Response::AuthSuccess { token: None },
        Response::Result(ResultBody::Void),
        Response::Result(ResultBody::SetKeyspace("ks".into())),
        Response::Result(ResultBody::SchemaChange(schema("KEYSPACE", None, &[]))),
        Response::Result(ResultBody::SchemaChange(schema("TABLE", Some("t"), &[]))),
        Response::Result(ResultBody::SchemaChange(schema(
            "FUNCTION",
            Some("f"),
            &["int", "text"],
        ))),
        Response::Result(ResultBody::Prepared(Prepared {
            id: vec![0xab; 16],
            metadata: PreparedMetadata {
                is_lwt: true,
                pk_indexes: vec![1, 0],
                bind_columns: vec![spec("a", ColumnType::Int), spec("b", ColumnType::Text)],
            },
            result_metadata: ResultMetadata::with_columns(vec![spec("c", ColumnType::Blob)]),
        })),
        Response::Event(Event::TopologyChange {
            change: "NEW_NODE".into(),
            address,
        }),
        Response::Event(Event::StatusChange {
            change: "DOWN".into(),
            address: v6,
        }),
        Response::Event(Event::SchemaChange(schema("TYPE", Some("u"), &[]))),
    ]
}

/// A response frame around a hand-built body (version 4, stream 2).
fn response_frame(opcode: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x84, 0, 0, 2, opcode];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    debug_assert_eq!(frame.len(), HEADER_LEN);
    frame.extend_from_slice(body);
    frame
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// RESULT Rows bodies, written byte by byte (so they do not depend on how
/// the library holds rows): one with a column of every type, one with a
/// paging state and per-column table specs, one without metadata.
fn rows_bodies() -> Vec<Vec<u8>> {
    let values = typed_values();
    let mut every_type = Vec::new();
    put_i32(&mut every_type, 2);
    put_i32(&mut every_type, 0x0001);
    put_i32(&mut every_type, values.len() as i32);
    put_string(&mut every_type, "ks");
    put_string(&mut every_type, "t");
    for (i, (ty, _)) in values.iter().enumerate() {
        put_string(&mut every_type, &format!("c{i}"));
        ty.write(&mut every_type).expect("seed type encodes");
    }
    put_i32(&mut every_type, 2);
    for row in 0..2 {
        for (i, (_, value)) in values.iter().enumerate() {
            let cell = (row == 0 || i % 2 == 0).then_some(value);
            put_cell(&mut every_type, cell).expect("seed cell encodes");
        }
    }

    let mut paged = Vec::new();
    put_i32(&mut paged, 2);
    put_i32(&mut paged, 0x0002);
    put_i32(&mut paged, 2);
    put_i32(&mut paged, 3);
    paged.extend_from_slice(&[1, 2, 3]);
    for (table, name, id) in [("t", "a", 0x0009u16), ("u", "b", 0x000D)] {
        put_string(&mut paged, "ks");
        put_string(&mut paged, table);
        put_string(&mut paged, name);
        paged.extend_from_slice(&id.to_be_bytes());
    }
    put_i32(&mut paged, 1);
    put_cell(&mut paged, Some(&CqlValue::Int(5))).expect("cell");
    put_cell(&mut paged, None).expect("cell");

    let mut no_metadata = Vec::new();
    put_i32(&mut no_metadata, 2);
    put_i32(&mut no_metadata, 0x0004);
    put_i32(&mut no_metadata, 1);
    put_i32(&mut no_metadata, 3);
    for v in 0..3 {
        put_cell(&mut no_metadata, Some(&CqlValue::Int(v))).expect("cell");
    }
    vec![every_type, paged, no_metadata]
}

fn params() -> QueryParameters {
    QueryParameters {
        consistency: Consistency::LocalQuorum,
        values: vec![Value::Set(vec![0, 0, 0, 1]), Value::Null, Value::Unset],
        value_names: Some(vec!["a".into(), "b".into(), "c".into()]),
        skip_metadata: true,
        page_size: Some(100),
        paging_state: Some(vec![4, 5, 6]),
        serial_consistency: Some(Consistency::LocalSerial),
        timestamp: Some(1_700_000_000_000_000),
    }
}

fn requests() -> Vec<Request> {
    vec![
        Request::Startup {
            options: vec![
                ("CQL_VERSION".into(), "3.0.0".into()),
                ("COMPRESSION".into(), "lz4".into()),
            ],
        },
        Request::AuthResponse {
            token: Some(b"\0user\0password".to_vec()),
        },
        Request::Options,
        Request::Query {
            query: "SELECT * FROM ks.t WHERE k = ?".into(),
            params: params(),
        },
        Request::Query {
            query: "SELECT 1".into(),
            params: QueryParameters::default(),
        },
        Request::Prepare {
            query: "INSERT INTO ks.t (k, v) VALUES (?, ?)".into(),
        },
        Request::Execute {
            id: vec![0xab; 16],
            params: params(),
        },
        Request::Register {
            events: vec![
                "TOPOLOGY_CHANGE".into(),
                "STATUS_CHANGE".into(),
                "SCHEMA_CHANGE".into(),
            ],
        },
        Request::Batch(Batch {
            kind: BatchKind::Unlogged,
            statements: vec![
                BatchStatement {
                    statement: BatchStatementKind::Query("INSERT INTO ks.t (k) VALUES (?)".into()),
                    values: vec![Value::Set(vec![1])],
                },
                BatchStatement {
                    statement: BatchStatementKind::Prepared(vec![0xcd; 16]),
                    values: vec![Value::Null],
                },
            ],
            consistency: Consistency::One,
            serial_consistency: Some(Consistency::Serial),
            timestamp: Some(42),
        }),
    ]
}

/// One value of every column type, compound ones included.
pub fn typed_values() -> Vec<(ColumnType, CqlValue)> {
    let text = |s: &str| CqlValue::Text(s.into());
    let udt = UdtType {
        keyspace: "ks".into(),
        name: "address".into(),
        fields: vec![
            ("street".into(), ColumnType::Text),
            ("number".into(), ColumnType::Int),
        ],
    };
    vec![
        (ColumnType::Ascii, CqlValue::Ascii("ascii".into())),
        (ColumnType::BigInt, CqlValue::BigInt(-5)),
        (ColumnType::Blob, CqlValue::Blob(vec![0, 1, 2])),
        (ColumnType::Boolean, CqlValue::Boolean(true)),
        (ColumnType::Counter, CqlValue::Counter(7)),
        (
            ColumnType::Decimal,
            CqlValue::Decimal {
                unscaled: vec![0x01, 0x00],
                scale: 2,
            },
        ),
        (ColumnType::Double, CqlValue::Double(1.5)),
        (ColumnType::Float, CqlValue::Float(-2.25)),
        (ColumnType::Int, CqlValue::Int(123_456)),
        (
            ColumnType::Timestamp,
            CqlValue::Timestamp(1_700_000_000_000),
        ),
        (ColumnType::Uuid, CqlValue::Uuid([3; 16])),
        (ColumnType::Text, text("text é")),
        (ColumnType::Varint, CqlValue::Varint(vec![0xff, 0x00, 0x01])),
        (ColumnType::Timeuuid, CqlValue::Timeuuid([0x10; 16])),
        (
            ColumnType::Inet,
            CqlValue::Inet("10.1.2.3".parse().expect("ip")),
        ),
        (ColumnType::Inet, CqlValue::Inet("::2".parse().expect("ip"))),
        (ColumnType::Date, CqlValue::Date(1 << 31)),
        (ColumnType::Time, CqlValue::Time(3_600_000_000_000)),
        (ColumnType::SmallInt, CqlValue::SmallInt(-3)),
        (ColumnType::TinyInt, CqlValue::TinyInt(9)),
        (
            ColumnType::Duration,
            CqlValue::Duration {
                months: 1,
                days: -2,
                nanos: 3_000,
            },
        ),
        (
            ColumnType::List(Box::new(ColumnType::Int)),
            CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(2)]),
        ),
        (
            ColumnType::Set(Box::new(ColumnType::Text)),
            CqlValue::Set(vec![text("a"), text("b")]),
        ),
        (
            ColumnType::Map(
                Box::new(ColumnType::Text),
                Box::new(ColumnType::List(Box::new(ColumnType::BigInt))),
            ),
            CqlValue::Map(vec![(text("k"), CqlValue::List(vec![CqlValue::BigInt(1)]))]),
        ),
        (
            ColumnType::Tuple(vec![ColumnType::Int, ColumnType::Text, ColumnType::Boolean]),
            CqlValue::Tuple(vec![
                Some(CqlValue::Int(1)),
                None,
                Some(CqlValue::Boolean(false)),
            ]),
        ),
        (
            ColumnType::Udt(Box::new(udt)),
            CqlValue::Udt(vec![
                ("street".into(), Some(text("main"))),
                ("number".into(), None),
            ]),
        ),
        (
            ColumnType::Custom("org.apache.cassandra.db.marshal.DynamicCompositeType".into()),
            CqlValue::Custom(vec![1, 2, 3]),
        ),
    ]
}

//! The hostile cases: what the fake server answers, and what the library
//! must make of it.

use scylla_shard::protocol::frame::{Opcode, MAX_BODY_LEN};
use scylla_shard::protocol::response::error_code;

use super::frames::{
    self, header, simple, ty, Body, RESPONSE_VERSION, RESULT_PREPARED, RESULT_ROWS,
};
use super::server::{After, Hostile, ServerOptions};

/// The outcome the library must give the hostile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Success; `Check` says what the result must hold.
    Ok(Check),
    /// `DriverError::Timeout` (C: `SSHARD_STATUS_TIMEOUT`).
    Timeout,
    /// `DriverError::ConnectionBroken` whose message contains the text
    /// (C: `SSHARD_STATUS_CONNECTION_LOST`).
    Broken(&'static str),
    /// `DriverError::Protocol` whose message contains the text (C:
    /// `SSHARD_STATUS_DECODE`).
    Protocol(&'static str),
}

/// What a successful result must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Exactly one row whose `int` cell is the ordinary value.
    Ordinary,
    /// This many rows, every cell NULL.
    NullRows(usize),
    /// This many rows, cell `i` is `i`.
    IntRows(usize),
    /// One row whose text cell is not UTF-8: reading it as text fails.
    BadUtf8Cell,
    /// No rows, this many columns.
    Columns(usize),
    /// A prepared statement with this many bind and result columns.
    PreparedColumns(usize),
}

/// What must become of the connection that got the hostile answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It stays open and serves the next request.
    Kept,
    /// The library closes it (it can no longer trust the stream).
    ClosedByClient,
    /// The server closes it itself.
    ClosedByServer,
}

/// What the child process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// One hostile QUERY (or PREPARE).
    Single { prepare: bool, idempotent: bool },
    /// Four queries held on two connections, one connection broken with
    /// garbage: the idempotent ones on it are retried, the others fail.
    InFlight,
}

pub struct Case {
    pub name: &'static str,
    pub scenario: Scenario,
    pub expect: Expect,
    pub fate: Fate,
    /// Connections per shard the session keeps.
    pub connections: usize,
    /// Negotiate lz4.
    pub lz4: bool,
    /// The session's frame limit (`ConnectionConfig::max_frame_len`).
    pub max_frame: usize,
    /// Run again under the system allocator (`SSHARD_ALLOCATOR=system`):
    /// the library's allocator must give freed memory back at least as
    /// well.
    pub release_vs_system: bool,
    /// Statement timeout of the hostile request, in seconds.
    pub timeout_secs: u64,
    /// Builds the server's setup (hostile bytes made before measuring).
    pub server: fn() -> ServerOptions,
}

const QUERY: Scenario = Scenario::Single {
    prepare: false,
    idempotent: false,
};

impl Case {
    const fn new(
        name: &'static str,
        expect: Expect,
        fate: Fate,
        server: fn() -> ServerOptions,
    ) -> Case {
        Case {
            name,
            scenario: QUERY,
            expect,
            fate,
            connections: 1,
            lz4: false,
            max_frame: MAX_BODY_LEN,
            release_vs_system: false,
            timeout_secs: 10,
            server,
        }
    }
}

fn answer(hostile: Hostile) -> ServerOptions {
    ServerOptions {
        hostile: Some(hostile),
        ..ServerOptions::default()
    }
}

/// A frame answering the request's stream: header (true length) + body.
fn result(body: Body) -> Hostile {
    Hostile::frame(frames::frame(0, Opcode::Result, &body.0))
}

/// The start of an ordinary answer under a header that announces more.
fn truncated(after: After) -> ServerOptions {
    let body = frames::int_rows(1, |_| Some(7)).0;
    let mut bytes = header(
        RESPONSE_VERSION,
        0,
        0,
        Opcode::Result as u8,
        body.len() as i32 + 100,
    )
    .to_vec();
    bytes.extend_from_slice(&body);
    answer(Hostile::frame(bytes).then(after))
}

/// A header alone, announcing `length` body bytes, then 16 bytes.
fn lying_length(length: i32, after: After) -> ServerOptions {
    let mut bytes = header(RESPONSE_VERSION, 0, 0, Opcode::Result as u8, length).to_vec();
    bytes.extend_from_slice(&[0; 16]);
    answer(Hostile::frame(bytes).then(after))
}

/// An ordinary answer with one header byte changed.
fn ordinary_with(edit: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut bytes = frames::frame(0, Opcode::Result, &frames::int_rows(1, |_| Some(7)).0);
    edit(&mut bytes);
    bytes
}

fn ordinary_on_stream(stream: i16) -> ServerOptions {
    answer(Hostile::raw(ordinary_with(|b| {
        b[2..4].copy_from_slice(&stream.to_be_bytes())
    })))
}

/// Deterministic pseudo-random bytes (xorshift), not starting with a
/// response version byte.
fn garbage(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    out[0] = 0x5a;
    out
}

/// A global table spec with 64 KiB keyspace and table names and
/// `columns` int columns.
fn spec_bomb(body: Body, columns: usize) -> Body {
    let long = vec![b'k'; 65_535];
    let mut body = body.int(frames::GLOBAL_TABLES_SPEC).int(columns as i32);
    body = body.string(&long).string(&long);
    for i in 0..columns {
        body = body.string(format!("c{i}").as_bytes()).short(ty::INT);
    }
    body
}

const SPEC_BOMB_COLUMNS: usize = 20_000;
/// Columns of a few bytes each (a 0.5 MB frame).
const TINY_COLUMNS: usize = 60_000;

/// A Rows result of `n` int columns with names of a few bytes, no rows.
fn tiny_columns(n: usize) -> Body {
    let mut body = Body::new()
        .int(RESULT_ROWS)
        .int(frames::GLOBAL_TABLES_SPEC)
        .int(n as i32)
        .string(b"ks")
        .string(b"t");
    for i in 0..n {
        body = body.string(format!("{i:x}").as_bytes()).short(ty::INT);
    }
    body.int(0)
}
/// 8 million NULL cells: a 32 MB frame.
const NULL_ROWS: usize = 8_000_000;
/// 3 million int rows: a 24 MB frame.
const INT_ROWS: usize = 3_000_000;
/// Timeout of the requests that decode millions of rows (the tests run
/// unoptimised).
const BIG_TIMEOUT: u64 = 30;

pub fn all() -> Vec<Case> {
    use Expect::*;
    use Fate::*;
    vec![
        Case::new(
            "truncated_frame_then_silence",
            Broken("keepalive"),
            ClosedByClient,
            || truncated(After::Silence),
        ),
        Case::new(
            "truncated_frame_then_close",
            Broken("closed the connection"),
            ClosedByServer,
            || truncated(After::Close),
        ),
        Case::new(
            "length_2_gib",
            Broken("frame body length 2147483647"),
            ClosedByClient,
            || lying_length(i32::MAX, After::Serve),
        ),
        Case::new(
            "negative_length",
            Broken("frame body length -1"),
            ClosedByClient,
            || lying_length(-1, After::Serve),
        ),
        Case::new(
            "length_200_mib_then_silence",
            Broken("keepalive"),
            ClosedByClient,
            || lying_length(200 << 20, After::Silence),
        ),
        Case::new(
            "wrong_stream_id",
            Broken("no request in flight"),
            ClosedByClient,
            || ordinary_on_stream(30_000),
        ),
        Case::new(
            "negative_stream_id",
            Broken("reserved stream -5"),
            ClosedByClient,
            || ordinary_on_stream(-5),
        ),
        Case::new(
            "result_on_event_stream",
            Broken("event stream"),
            ClosedByClient,
            || ordinary_on_stream(-1),
        ),
        Case::new(
            "unknown_opcode",
            Protocol("unknown opcode 0x42"),
            ClosedByClient,
            || answer(Hostile::frame(ordinary_with(|b| b[4] = 0x42))),
        ),
        Case::new(
            "request_opcode_as_response",
            Protocol("not a response"),
            ClosedByClient,
            || {
                answer(Hostile::frame(ordinary_with(|b| {
                    b[4] = Opcode::Query as u8
                })))
            },
        ),
        Case::new(
            "wrong_version_byte",
            Broken("version byte 0x83"),
            ClosedByClient,
            || answer(Hostile::frame(ordinary_with(|b| b[0] = 0x83))),
        ),
        Case::new(
            "request_version_byte",
            Broken("version byte 0x04"),
            ClosedByClient,
            || answer(Hostile::frame(ordinary_with(|b| b[0] = 0x04))),
        ),
        Case::new(
            "compressed_flag_without_compression",
            Protocol("compress"),
            ClosedByClient,
            || {
                answer(Hostile::frame(ordinary_with(|b| {
                    b[1] |= frames::COMPRESSION
                })))
            },
        ),
        Case {
            lz4: true,
            ..Case::new(
                "lz4_claims_200_mib",
                Protocol("compression"),
                ClosedByClient,
                || {
                    // 200 MiB claimed; the block holds one literal byte.
                    let body = Body::new().int(200 << 20).raw(&[0x10, b'x']);
                    let mut bytes = frames::frame(0, Opcode::Result, &body.0);
                    bytes[1] |= frames::COMPRESSION;
                    ServerOptions {
                        offer_lz4: true,
                        ..answer(Hostile::frame(bytes))
                    }
                },
            )
        },
        Case {
            max_frame: 64 * 1024,
            ..Case::new(
                "frame_over_configured_limit",
                Broken("over the 65536-byte frame limit"),
                ClosedByClient,
                || answer(result(frames::int_rows(20_000, |i| Some(i as i32)))),
            )
        },
        Case {
            lz4: true,
            max_frame: 64 * 1024,
            ..Case::new(
                "lz4_inflating_over_configured_limit",
                Protocol("over the 65536-byte frame limit"),
                ClosedByClient,
                || {
                    let body = Body::new().int(1 << 20).raw(&[0x10, b'x']);
                    let mut bytes = frames::frame(0, Opcode::Result, &body.0);
                    bytes[1] |= frames::COMPRESSION;
                    ServerOptions {
                        offer_lz4: true,
                        ..answer(Hostile::frame(bytes))
                    }
                },
            )
        },
        Case::new(
            "more_cells_than_columns",
            Protocol("trailing bytes"),
            ClosedByClient,
            || {
                answer(result(
                    frames::int_rows(1, |_| Some(1)).bytes(Some(&[0, 0, 0, 2])),
                ))
            },
        ),
        Case::new("short_cell", Protocol("truncated"), ClosedByClient, || {
            let body = Body::new()
                .int(RESULT_ROWS)
                .rows_metadata(b"ks", b"t", &[(b"v", simple(ty::INT))])
                .int(1)
                .int(1000)
                .raw(&[1; 10]);
            answer(result(body))
        }),
        Case::new("bad_utf8_in_value", Ok(Check::BadUtf8Cell), Kept, || {
            let body = Body::new()
                .int(RESULT_ROWS)
                .rows_metadata(b"ks", b"t", &[(b"s", simple(ty::TEXT))])
                .int(1)
                .bytes(Some(&[b'o', 0xff, 0xfe, b'k']));
            answer(result(body))
        }),
        Case::new(
            "bad_utf8_in_column_name",
            Protocol("UTF-8"),
            ClosedByClient,
            || {
                let body = Body::new()
                    .int(RESULT_ROWS)
                    .rows_metadata(b"ks", b"t", &[(&[0xc3, 0x28], simple(ty::INT))])
                    .int(0);
                answer(result(body))
            },
        ),
        Case::new(
            "bad_utf8_in_error_message",
            Protocol("UTF-8"),
            ClosedByClient,
            || {
                let body = Body::new()
                    .int(error_code::INVALID)
                    .string(&[b'n', 0xff, b'o']);
                answer(Hostile::frame(frames::frame(0, Opcode::Error, &body.0)))
            },
        ),
        Case::new(
            "huge_row_count_few_bytes",
            Protocol(""),
            ClosedByClient,
            || {
                let body = Body::new()
                    .int(RESULT_ROWS)
                    .rows_metadata(b"ks", b"t", &[(b"v", simple(ty::INT))])
                    .int(i32::MAX)
                    .raw(&[0, 0, 0]);
                answer(result(body))
            },
        ),
        Case::new(
            "huge_column_count_no_metadata",
            Protocol(""),
            ClosedByClient,
            || {
                // NO_METADATA: only the count, which nothing backs.
                let body = Body::new()
                    .int(RESULT_ROWS)
                    .int(0x0004)
                    .int(i32::MAX)
                    .int(1)
                    .int(-1);
                answer(result(body))
            },
        ),
        Case::new(
            "deeply_nested_type",
            Protocol("nesting"),
            ClosedByClient,
            || {
                let mut ty_bytes = Vec::new();
                for _ in 0..10_000 {
                    ty_bytes.extend_from_slice(&ty::LIST.to_be_bytes());
                }
                ty_bytes.extend_from_slice(&ty::INT.to_be_bytes());
                let body = Body::new()
                    .int(RESULT_ROWS)
                    .rows_metadata(b"ks", b"t", &[(b"v", ty_bytes)])
                    .int(0);
                answer(result(body))
            },
        ),
        Case::new(
            "unknown_type_id",
            Protocol("unknown type id 0x00ff"),
            ClosedByClient,
            || {
                let body = Body::new()
                    .int(RESULT_ROWS)
                    .rows_metadata(b"ks", b"t", &[(b"v", simple(0x00ff))])
                    .int(0);
                answer(result(body))
            },
        ),
        Case::new(
            "garbage",
            Broken("protocol violation"),
            ClosedByClient,
            || answer(Hostile::raw(garbage(4096))),
        ),
        Case::new(
            "duplicate_response",
            Ok(Check::Ordinary),
            ClosedByClient,
            || {
                let bytes = frames::frame(
                    0,
                    Opcode::Result,
                    &frames::int_rows(1, |_| Some(super::server::ORDINARY_VALUE)).0,
                );
                answer(Hostile::frame(bytes).repeated(2))
            },
        ),
        Case::new(
            "error_with_bad_details",
            Protocol("truncated"),
            ClosedByClient,
            || {
                // UNAVAILABLE announces consistency, required and alive: one byte follows.
                let body = Body::new()
                    .int(error_code::UNAVAILABLE)
                    .string(b"unavailable")
                    .raw(&[0]);
                answer(Hostile::frame(frames::frame(0, Opcode::Error, &body.0)))
            },
        ),
        Case::new(
            "error_with_unknown_consistency",
            Protocol("consistency"),
            ClosedByClient,
            || {
                let body = Body::new()
                    .int(error_code::UNAVAILABLE)
                    .string(b"unavailable")
                    .short(0x7777)
                    .int(3)
                    .int(1);
                answer(Hostile::frame(frames::frame(0, Opcode::Error, &body.0)))
            },
        ),
        Case::new(
            "custom_payload_count_without_entries",
            Protocol("truncated"),
            ClosedByClient,
            || {
                // The 11-byte frame: a payload of 65,535 entries, none present.
                let bytes = header(
                    RESPONSE_VERSION,
                    frames::CUSTOM_PAYLOAD,
                    0,
                    Opcode::Result as u8,
                    2,
                )
                .into_iter()
                .chain([0xff, 0xff])
                .collect();
                answer(Hostile::frame(bytes))
            },
        ),
        Case::new(
            "column_spec_bomb_result",
            Ok(Check::Columns(SPEC_BOMB_COLUMNS)),
            Kept,
            || {
                let body = spec_bomb(Body::new().int(RESULT_ROWS), SPEC_BOMB_COLUMNS).int(0);
                answer(result(body))
            },
        ),
        Case::new(
            "many_tiny_columns",
            Ok(Check::Columns(TINY_COLUMNS)),
            Kept,
            || answer(result(tiny_columns(TINY_COLUMNS))),
        ),
        Case::new("too_many_columns", Protocol(""), ClosedByClient, || {
            answer(result(tiny_columns(500_000)))
        }),
        Case {
            scenario: Scenario::Single {
                prepare: true,
                idempotent: false,
            },
            ..Case::new(
                "column_spec_bomb_prepared",
                Ok(Check::PreparedColumns(SPEC_BOMB_COLUMNS)),
                Kept,
                || {
                    let body = Body::new().int(RESULT_PREPARED).short(2).raw(b"p2");
                    // Bind metadata: flags, count, no partition key, specs.
                    let mut bind = spec_bomb(Body::new(), SPEC_BOMB_COLUMNS).0;
                    bind.splice(8..8, 0i32.to_be_bytes());
                    let body = spec_bomb(body.raw(&bind), SPEC_BOMB_COLUMNS);
                    answer(result(body))
                },
            )
        },
        Case {
            timeout_secs: BIG_TIMEOUT,
            release_vs_system: true,
            ..Case::new(
                "many_null_rows",
                Ok(Check::NullRows(NULL_ROWS)),
                Kept,
                || answer(result(frames::int_rows(NULL_ROWS, |_| None))),
            )
        },
        Case {
            timeout_secs: BIG_TIMEOUT,
            release_vs_system: true,
            ..Case::new(
                "many_small_int_rows",
                Ok(Check::IntRows(INT_ROWS)),
                Kept,
                || answer(result(frames::int_rows(INT_ROWS, |i| Some(i as i32)))),
            )
        },
        Case {
            timeout_secs: 2,
            ..Case::new("no_answer", Timeout, Kept, || {
                answer(Hostile::raw(Vec::new()))
            })
        },
        Case {
            scenario: Scenario::Single {
                prepare: false,
                idempotent: true,
            },
            connections: 2,
            ..Case::new(
                "idempotent_retried_after_bad_frame",
                Ok(Check::Ordinary),
                ClosedByClient,
                || answer(Hostile::raw(garbage(64)).once()),
            )
        },
        Case {
            connections: 2,
            ..Case::new(
                "non_idempotent_not_retried_after_bad_frame",
                Broken("protocol violation"),
                ClosedByClient,
                || answer(Hostile::raw(garbage(64)).once()),
            )
        },
        Case {
            scenario: Scenario::InFlight,
            connections: 2,
            ..Case::new(
                "in_flight_requests_follow_retry_rules",
                Ok(Check::Ordinary),
                ClosedByClient,
                || ServerOptions {
                    hold_until: 4,
                    ..ServerOptions::default()
                },
            )
        },
    ]
}

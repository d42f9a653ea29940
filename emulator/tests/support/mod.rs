//! Shared by the emulator's integration tests: an emulator process (killed
//! on drop) and a blocking CQL client speaking the shared codec over a real
//! socket, with values decoded for assertions.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scylla_shard::protocol::frame::{
    decode_response, encode_request, FrameHeader, RequestExtensions, ResponseExtensions, HEADER_LEN,
};
use scylla_shard::protocol::request::{Batch, BatchKind, BatchStatement, BatchStatementKind};
use scylla_shard::protocol::response::{ErrorBody, Prepared, ResultBody, Rows};
use scylla_shard::protocol::value::CqlValue;
use scylla_shard::protocol::{Consistency, QueryParameters, Request, Response, Value};

/// An emulator process, killed on drop.
pub struct Emulator {
    child: Child,
    pub ip: String,
}

impl Emulator {
    /// One node with four shards on `base_ip`, plus `extra` flags.
    pub fn start(base_ip: &str, extra: &[&str]) -> Emulator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scylla-emulator"))
            .args(["--nodes", "1", "--shards", "4", "--base-ip", base_ip])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("emulator starts");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("READY") {
            assert!(Instant::now() < deadline, "emulator did not print READY");
            let n = stdout.read(&mut buf).expect("read emulator stdout");
            assert!(n > 0, "emulator exited before READY");
            seen.extend_from_slice(&buf[..n]);
        }
        Emulator {
            child,
            ip: base_ip.to_owned(),
        }
    }

    pub fn addr(&self, port: u16) -> SocketAddr {
        format!("{}:{port}", self.ip).parse().unwrap()
    }

    pub fn connect(&self) -> TcpStream {
        let stream =
            TcpStream::connect_timeout(&self.addr(9042), Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// A client past STARTUP.
    pub fn client(&self) -> Client {
        let mut client = Client {
            stream: self.connect(),
            next_stream: 1,
        };
        let startup = Request::Startup {
            options: vec![("CQL_VERSION".into(), "3.0.0".into())],
        };
        match client.request(&startup, false).1 {
            Response::Ready => client,
            other => panic!("expected READY, got {other:?}"),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one response frame, or None at end of stream.
pub fn read_response(
    stream: &mut TcpStream,
) -> Option<(FrameHeader, ResponseExtensions, Response)> {
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header).ok()?;
    let header = FrameHeader::parse(&header).expect("valid header from the emulator");
    let mut body = vec![0u8; header.body_len];
    stream.read_exact(&mut body).expect("whole body");
    let (extensions, response) = decode_response(&header, &body, None).expect("decodable response");
    Some((header, extensions, response))
}

/// A blocking client: one request at a time.
pub struct Client {
    pub stream: TcpStream,
    next_stream: i16,
}

/// A result decoded for assertions: column names and typed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<CqlValue>>>,
}

impl Table {
    pub fn from_rows(rows: &Rows) -> Table {
        let columns = rows
            .metadata
            .columns
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        let rows = (0..rows.len())
            .map(|r| {
                rows.metadata
                    .columns
                    .iter()
                    .zip(rows.row(r))
                    .map(|(spec, cell)| {
                        cell.map(|b| CqlValue::deserialize(&spec.ty, b).expect("decodable cell"))
                    })
                    .collect()
            })
            .collect();
        Table { columns, rows }
    }

    /// The only row's only value.
    pub fn single(&self) -> Option<CqlValue> {
        assert_eq!(self.rows.len(), 1, "{self:?}");
        assert_eq!(self.rows[0].len(), 1, "{self:?}");
        self.rows[0][0].clone()
    }
}

pub fn params(values: Vec<Value>) -> QueryParameters {
    QueryParameters {
        consistency: Consistency::One,
        values,
        ..Default::default()
    }
}

pub fn bound(v: CqlValue) -> Value {
    Value::Set(v.to_bytes().expect("serializable value"))
}

impl Client {
    /// Sends one request and reads its response.
    pub fn request(&mut self, request: &Request, tracing: bool) -> (ResponseExtensions, Response) {
        let stream_id = self.next_stream;
        self.next_stream = self.next_stream.wrapping_add(1).max(1);
        let extensions = RequestExtensions {
            tracing,
            custom_payload: None,
        };
        let frame = encode_request(stream_id, request, &extensions, None).expect("encodable");
        self.stream.write_all(&frame).expect("send");
        let (header, extensions, response) =
            read_response(&mut self.stream).expect("a response before the connection closed");
        assert_eq!(header.stream, stream_id);
        (extensions, response)
    }

    /// QUERY with values; the result or the server's error.
    pub fn try_query(
        &mut self,
        text: &str,
        values: Vec<Value>,
    ) -> Result<(ResponseExtensions, ResultBody), ErrorBody> {
        let request = Request::Query {
            query: text.into(),
            params: params(values),
        };
        match self.request(&request, false) {
            (ext, Response::Result(result)) => Ok((ext, result)),
            (_, Response::Error(e)) => Err(e),
            (_, other) => panic!("unexpected response {other:?}"),
        }
    }

    /// QUERY that must succeed; rows decoded (empty for non-row results).
    pub fn query(&mut self, text: &str, values: Vec<Value>) -> Table {
        match self.try_query(text, values) {
            Ok((_, result)) => result_table(result),
            Err(e) => panic!("{text}: {e:?}"),
        }
    }

    /// QUERY that must fail; returns the error.
    pub fn query_error(&mut self, text: &str, values: Vec<Value>) -> ErrorBody {
        match self.try_query(text, values) {
            Ok((_, result)) => panic!("{text}: expected an error, got {result:?}"),
            Err(e) => e,
        }
    }

    pub fn prepare(&mut self, text: &str) -> Prepared {
        match self
            .request(&Request::Prepare { query: text.into() }, false)
            .1
        {
            Response::Result(ResultBody::Prepared(p)) => p,
            other => panic!("PREPARE {text}: {other:?}"),
        }
    }

    pub fn try_execute(
        &mut self,
        id: &[u8],
        values: Vec<Value>,
    ) -> Result<(ResponseExtensions, ResultBody), ErrorBody> {
        let request = Request::Execute {
            id: id.to_vec(),
            params: params(values),
        };
        match self.request(&request, false) {
            (ext, Response::Result(result)) => Ok((ext, result)),
            (_, Response::Error(e)) => Err(e),
            (_, other) => panic!("unexpected response {other:?}"),
        }
    }

    pub fn execute(&mut self, id: &[u8], values: Vec<Value>) -> Table {
        match self.try_execute(id, values) {
            Ok((_, result)) => result_table(result),
            Err(e) => panic!("EXECUTE: {e:?}"),
        }
    }

    /// A BATCH message of query strings with their values.
    pub fn try_batch(
        &mut self,
        kind: BatchKind,
        statements: Vec<(&str, Vec<Value>)>,
    ) -> Result<(ResponseExtensions, ResultBody), ErrorBody> {
        let batch = Batch {
            kind,
            statements: statements
                .into_iter()
                .map(|(text, values)| BatchStatement {
                    statement: BatchStatementKind::Query(text.into()),
                    values,
                })
                .collect(),
            consistency: Consistency::One,
            serial_consistency: None,
            timestamp: None,
        };
        match self.request(&Request::Batch(batch), false) {
            (ext, Response::Result(result)) => Ok((ext, result)),
            (_, Response::Error(e)) => Err(e),
            (_, other) => panic!("unexpected response {other:?}"),
        }
    }

    /// Creates keyspace `ks` (SimpleStrategy, RF 1) and runs `ddl`.
    pub fn setup(&mut self, ddl: &[&str]) {
        self.query(
            "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            vec![],
        );
        for statement in ddl {
            self.query(statement, vec![]);
        }
    }
}

pub fn result_table(result: ResultBody) -> Table {
    match result {
        ResultBody::Rows(rows) => Table::from_rows(&rows),
        _ => Table {
            columns: Vec::new(),
            rows: Vec::new(),
        },
    }
}

pub fn int(v: i32) -> CqlValue {
    CqlValue::Int(v)
}

pub fn text(s: &str) -> CqlValue {
    CqlValue::Text(s.into())
}

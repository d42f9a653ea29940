//! A fake CQL v4 server: it completes the handshake (OPTIONS/SUPPORTED,
//! STARTUP/READY, REGISTER), describes itself as a one-node cluster
//! (`system.local`, empty `system.peers` and schema), answers ordinary
//! queries with one `int` row, and answers the case's hostile query with
//! the case's bytes.
//!
//! Blocking threads, one per connection: the server is small and its
//! behaviour is easy to follow. It records what it saw (queries per
//! connection, connections the client closed) so the tests can assert
//! the library's side effects, not only its return values.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use scylla_shard::protocol::frame::{decode_request, FrameHeader, Opcode, HEADER_LEN};
use scylla_shard::protocol::response::error_code;
use scylla_shard::protocol::{Compression, Request};

use super::frames::{self, collection, simple, ty, Body, RESULT_PREPARED, RESULT_ROWS};

/// The value of the one cell of an ordinary answer.
pub const ORDINARY_VALUE: i32 = 42;
/// Table names the server recognises in query text.
pub const HOSTILE_TABLE: &str = "hostile.t";
pub const HOLD_TABLE: &str = "hold.t";
/// Largest request the server reads (the library never sends more here).
const MAX_REQUEST: usize = 1 << 20;

/// What the connection does after the hostile answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep answering normally.
    Serve,
    /// Read everything, answer nothing (not even heartbeats).
    Silence,
    /// Close the socket.
    Close,
}

/// The answer to the hostile query.
#[derive(Debug, Clone)]
pub struct Hostile {
    /// Written as they are, except that with `patch_stream` bytes 2..4
    /// become the request's stream id.
    pub bytes: Arc<Vec<u8>>,
    pub patch_stream: bool,
    /// Times the bytes are written (2: a duplicate response).
    pub repeat: usize,
    pub after: After,
    /// Only the first hostile query gets these bytes; later ones (a retry)
    /// get an ordinary answer.
    pub once: bool,
}

impl Hostile {
    /// A frame answering the request's stream, then normal service.
    pub fn frame(bytes: Vec<u8>) -> Hostile {
        Hostile {
            bytes: Arc::new(bytes),
            patch_stream: true,
            repeat: 1,
            after: After::Serve,
            once: false,
        }
    }

    /// Bytes written exactly as given (their own stream id, or none).
    pub fn raw(bytes: Vec<u8>) -> Hostile {
        Hostile {
            patch_stream: false,
            ..Hostile::frame(bytes)
        }
    }

    pub fn then(mut self, after: After) -> Hostile {
        self.after = after;
        self
    }

    pub fn repeated(mut self, times: usize) -> Hostile {
        self.repeat = times;
        self
    }

    pub fn once(mut self) -> Hostile {
        self.once = true;
        self
    }
}

/// How the server is set up for one case.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub hostile: Option<Hostile>,
    /// Offer lz4 in SUPPORTED.
    pub offer_lz4: bool,
    /// Hold queries on `hold.t` until this many are waiting, then break
    /// the connection of the first one with garbage and answer the rest.
    pub hold_until: usize,
}

/// One query as the server received it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub connection: usize,
    pub query: String,
}

#[derive(Default)]
struct Holds {
    /// Waiting: connection, its writer, stream, query.
    waiting: Vec<(usize, Writer, i16, String)>,
    /// The connection broken on purpose, once it is.
    broken: Option<usize>,
}

#[derive(Default)]
struct Record {
    arrivals: Vec<Arrival>,
    /// Connections that were sent a hostile answer.
    hostile_connections: Vec<usize>,
    /// Connections whose client end closed (EOF or reset seen).
    closed_by_client: Vec<usize>,
}

struct State {
    ip: Ipv4Addr,
    options: ServerOptions,
    stop: AtomicBool,
    accepted: AtomicUsize,
    hostile_sent: AtomicUsize,
    record: Mutex<Record>,
    changed: Condvar,
    holds: Mutex<Holds>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Writer = Arc<Mutex<TcpStream>>;

/// A running fake server; stopped (its threads joined) when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Listens on a fresh 127.x.y.z address.
    pub fn start(options: ServerOptions) -> FakeServer {
        let mut last_error = None;
        for attempt in 0..20u32 {
            let seed =
                std::process::id().wrapping_mul(2_654_435_761) ^ attempt.wrapping_mul(40_503);
            let ip = Ipv4Addr::new(
                127,
                1 + (seed % 250) as u8,
                (seed >> 8) as u8,
                1 + (seed >> 16) as u8 % 250,
            );
            let port = 24_000 + (seed >> 3) as u16 % 8_000;
            let addr = SocketAddr::from((ip, port));
            match TcpListener::bind(addr) {
                Ok(listener) => return FakeServer::serve(listener, addr, ip, options),
                Err(e) => last_error = Some(e),
            }
        }
        panic!("fake server: no free loopback address: {last_error:?}");
    }

    fn serve(
        listener: TcpListener,
        addr: SocketAddr,
        ip: Ipv4Addr,
        options: ServerOptions,
    ) -> FakeServer {
        let state = Arc::new(State {
            ip,
            options,
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            hostile_sent: AtomicUsize::new(0),
            record: Mutex::new(Record::default()),
            changed: Condvar::new(),
            holds: Mutex::new(Holds::default()),
        });
        let accept_state = state.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let id = accept_state.accepted.fetch_add(1, Ordering::SeqCst);
                let state = accept_state.clone();
                std::thread::spawn(move || Connection::new(state, id, stream).run());
            }
        });
        FakeServer {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Every query received so far whose text contains `needle`.
    pub fn arrivals(&self, needle: &str) -> Vec<Arrival> {
        lock(&self.state.record)
            .arrivals
            .iter()
            .filter(|a| a.query.contains(needle))
            .cloned()
            .collect()
    }

    /// The connection broken on purpose by the hold logic.
    pub fn broken_hold_connection(&self) -> Option<usize> {
        lock(&self.state.holds).broken
    }

    /// Waits until the client closed every connection of `ids` (at least
    /// one); false after `timeout`.
    pub fn wait_closed_by_client(&self, ids: &[usize], timeout: Duration) -> bool {
        self.wait(timeout, |r| {
            !ids.is_empty() && ids.iter().all(|c| r.closed_by_client.contains(c))
        })
    }

    /// Whether the client closed connection `id`.
    pub fn closed_by_client(&self, id: usize) -> bool {
        lock(&self.state.record).closed_by_client.contains(&id)
    }

    /// Connections that received a hostile answer.
    pub fn hostile_connections(&self) -> Vec<usize> {
        lock(&self.state.record).hostile_connections.clone()
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&Record) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut record = lock(&self.state.record);
        loop {
            if done(&record) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            record = self
                .state
                .changed
                .wait_timeout(record, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One accepted connection.
struct Connection {
    state: Arc<State>,
    id: usize,
    reader: TcpStream,
    writer: Writer,
    compression: Option<Compression>,
    silent: bool,
}

impl Connection {
    fn new(state: Arc<State>, id: usize, stream: TcpStream) -> Connection {
        let _ = stream.set_nodelay(true);
        let writer = Arc::new(Mutex::new(stream.try_clone().expect("clone socket")));
        Connection {
            state,
            id,
            reader: stream,
            writer,
            compression: None,
            silent: false,
        }
    }

    fn run(mut self) {
        // Ends on EOF, a read error, a bad request, or server stop.
        let _ = self
            .reader
            .set_read_timeout(Some(Duration::from_millis(200)));
        loop {
            match self.read_frame() {
                Ok(Some((header, body))) => {
                    if self.silent {
                        continue;
                    }
                    if !self.answer(&header, &body) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(()) => {
                    let mut record = lock(&self.state.record);
                    record.closed_by_client.push(self.id);
                    self.state.changed.notify_all();
                    break;
                }
            }
        }
        let _ = self.reader.shutdown(Shutdown::Both);
    }

    /// Reads one request frame. `Ok(None)`: the server is stopping or the
    /// request is unusable; `Err(())`: the client closed the connection.
    fn read_frame(&mut self) -> Result<Option<(FrameHeader, Vec<u8>)>, ()> {
        let mut head = [0u8; HEADER_LEN];
        if !self.read_exact(&mut head)? {
            return Ok(None);
        }
        let Ok(header) = FrameHeader::parse(&head) else {
            return Ok(None);
        };
        if header.body_len > MAX_REQUEST {
            return Ok(None);
        }
        let mut body = vec![0u8; header.body_len];
        if !self.read_exact(&mut body)? {
            return Ok(None);
        }
        Ok(Some((header, body)))
    }

    /// `Ok(false)` when the server stops first.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<bool, ()> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.state.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => return Err(()),
                Ok(n) => filled += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Err(()),
            }
        }
        Ok(true)
    }

    fn write(&self, bytes: &[u8]) {
        let _ = lock(&self.writer).write_all(bytes);
    }

    /// Answers one request; false to close the connection.
    fn answer(&mut self, header: &FrameHeader, body: &[u8]) -> bool {
        let stream = header.stream;
        let request = match decode_request(header, body, self.compression) {
            Ok((_, request)) => request,
            Err(e) => {
                self.error(stream, error_code::PROTOCOL_ERROR, &format!("{e}"));
                return true;
            }
        };
        match request {
            Request::Options => {
                let mut body = Body::new().short(2);
                body = body.string(b"CQL_VERSION").short(1).string(b"3.4.5");
                body = body.string(b"COMPRESSION");
                body = if self.state.options.offer_lz4 {
                    body.short(1).string(b"lz4")
                } else {
                    body.short(0)
                };
                self.write(&frames::frame(stream, Opcode::Supported, &body.0));
            }
            Request::Startup { options } => {
                self.compression = options
                    .iter()
                    .find(|(k, _)| k == "COMPRESSION")
                    .and_then(|(_, v)| Compression::from_name(v));
                self.write(&frames::frame(stream, Opcode::Ready, &[]));
            }
            Request::Register { .. } => self.write(&frames::frame(stream, Opcode::Ready, &[])),
            Request::Query { query, .. } => return self.query(stream, query),
            Request::Prepare { query, .. } => {
                self.arrive(&query);
                if query.contains(HOSTILE_TABLE) {
                    return self.hostile(stream);
                }
                let body = Body::new()
                    .int(RESULT_PREPARED)
                    .raw(&Body::new().short(2).raw(b"p1").0)
                    .int(0)
                    .int(0)
                    .int(0)
                    .rows_metadata(b"ks", b"t", &[(b"v", simple(ty::INT))]);
                self.write(&frames::frame(stream, Opcode::Result, &body.0));
            }
            Request::Execute { .. } => self.ordinary(stream),
            other => self.error(
                stream,
                error_code::PROTOCOL_ERROR,
                &format!("{:?} not served", other.opcode()),
            ),
        }
        true
    }

    fn arrive(&self, query: &str) {
        lock(&self.state.record).arrivals.push(Arrival {
            connection: self.id,
            query: query.to_owned(),
        });
        self.state.changed.notify_all();
    }

    fn query(&mut self, stream: i16, query: String) -> bool {
        if query.contains("FROM system.local") {
            self.write(&frames::frame(stream, Opcode::Result, &self.local_row()));
        } else if query.contains("FROM system.peers") {
            self.write(&frames::frame(stream, Opcode::Result, &peers_rows()));
        } else if query.contains("system_schema.scylla_keyspaces") {
            self.error(
                stream,
                error_code::INVALID,
                "unconfigured table scylla_keyspaces",
            );
        } else if query.contains("FROM system_schema.keyspaces") {
            self.write(&frames::frame(stream, Opcode::Result, &keyspaces_rows()));
        } else if query.contains(HOSTILE_TABLE) {
            self.arrive(&query);
            return self.hostile(stream);
        } else if query.contains(HOLD_TABLE) {
            self.arrive(&query);
            self.hold(stream, query);
        } else {
            self.arrive(&query);
            self.ordinary(stream);
        }
        true
    }

    fn ordinary(&self, stream: i16) {
        let body = frames::int_rows(1, |_| Some(ORDINARY_VALUE));
        self.write(&frames::frame(stream, Opcode::Result, &body.0));
    }

    fn error(&self, stream: i16, code: i32, message: &str) {
        let body = Body::new().int(code).string(message.as_bytes());
        self.write(&frames::frame(stream, Opcode::Error, &body.0));
    }

    /// Sends the case's bytes; false when the connection is to be closed.
    fn hostile(&mut self, stream: i16) -> bool {
        let Some(hostile) = self.state.options.hostile.clone() else {
            self.error(stream, error_code::INVALID, "no hostile answer configured");
            return true;
        };
        // Claimed before writing: a retry on another connection can arrive
        // while these bytes are still being written.
        let earlier = self.state.hostile_sent.fetch_add(1, Ordering::SeqCst);
        if hostile.once && earlier > 0 {
            self.ordinary(stream);
            return true;
        }
        {
            let mut record = lock(&self.state.record);
            record.hostile_connections.push(self.id);
        }
        {
            let mut writer = lock(&self.writer);
            for _ in 0..hostile.repeat {
                let bytes = &hostile.bytes[..];
                let _ = if hostile.patch_stream && bytes.len() >= HEADER_LEN {
                    let mut head = [0u8; HEADER_LEN];
                    head.copy_from_slice(&bytes[..HEADER_LEN]);
                    head[2..4].copy_from_slice(&stream.to_be_bytes());
                    writer
                        .write_all(&head)
                        .and_then(|_| writer.write_all(&bytes[HEADER_LEN..]))
                } else {
                    writer.write_all(bytes)
                };
            }
            let _ = writer.flush();
        }
        match hostile.after {
            After::Serve => true,
            After::Silence => {
                self.silent = true;
                true
            }
            After::Close => false,
        }
    }

    /// Queries on `hold.t`: kept until `hold_until` wait, then the
    /// connection of the first is broken with garbage and the others are
    /// answered; after that (retries) answered at once.
    fn hold(&self, stream: i16, query: String) {
        let mut holds = lock(&self.state.holds);
        if holds.broken.is_some() {
            drop(holds);
            return self.ordinary(stream);
        }
        holds
            .waiting
            .push((self.id, self.writer.clone(), stream, query));
        if holds.waiting.len() < self.state.options.hold_until.max(1) {
            return;
        }
        let victim = holds.waiting[0].0;
        holds.broken = Some(victim);
        if let Some((_, writer, _, _)) = holds.waiting.iter().find(|w| w.0 == victim) {
            let _ = lock(writer).write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        let body = frames::int_rows(1, |_| Some(ORDINARY_VALUE));
        for (connection, writer, stream, _) in holds.waiting.drain(..) {
            if connection != victim {
                let _ = lock(&writer).write_all(&frames::frame(stream, Opcode::Result, &body.0));
            }
        }
    }

    fn local_row(&self) -> Vec<u8> {
        let text = simple(ty::TEXT);
        let columns: [(&[u8], Vec<u8>); 6] = [
            (b"host_id", simple(ty::UUID)),
            (b"rpc_address", simple(ty::INET)),
            (b"data_center", text.clone()),
            (b"rack", text.clone()),
            (b"tokens", collection(ty::SET, text)),
            (b"cluster_name", simple(ty::TEXT)),
        ];
        let tokens = Body::new().int(1).bytes(Some(b"0"));
        Body::new()
            .int(RESULT_ROWS)
            .rows_metadata(b"system", b"local", &columns)
            .int(1)
            .bytes(Some(&[0x11; 16]))
            .bytes(Some(&self.state.ip.octets()))
            .bytes(Some(b"datacenter1"))
            .bytes(Some(b"rack1"))
            .bytes(Some(&tokens.0))
            .bytes(Some(b"hostile"))
            .0
    }
}

fn peers_rows() -> Vec<u8> {
    let text = simple(ty::TEXT);
    let columns: [(&[u8], Vec<u8>); 5] = [
        (b"host_id", simple(ty::UUID)),
        (b"rpc_address", simple(ty::INET)),
        (b"data_center", text.clone()),
        (b"rack", text.clone()),
        (b"tokens", collection(ty::SET, text)),
    ];
    Body::new()
        .int(RESULT_ROWS)
        .rows_metadata(b"system", b"peers", &columns)
        .int(0)
        .0
}

fn keyspaces_rows() -> Vec<u8> {
    let text = simple(ty::TEXT);
    let map = [simple(ty::MAP), text.clone(), text.clone()].concat();
    Body::new()
        .int(RESULT_ROWS)
        .rows_metadata(
            b"system_schema",
            b"keyspaces",
            &[(b"keyspace_name", text), (b"replication", map)],
        )
        .int(0)
        .0
}

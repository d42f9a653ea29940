//! `sshard-floor`: the least CPU any client can spend per request on this
//! cluster, to read every driver's figures against. No driver at all: one
//! raw connection per shard of every node through the shard-aware port,
//! every request encoded once at start-up and replayed with its stream id
//! patched, results checked in place (SELECTs skip the metadata), one
//! thread on epoll, one write per connection per wake-up. It follows the
//! benchmark client contract of `benches/README.md` for the insert, select
//! and mixed workloads; setup uses only the library's pure codec and token
//! functions.

mod setup;

use std::collections::HashSet;
use std::io::{BufRead, ErrorKind, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_core::{payload, Latencies, Options, Res, Rusage, Workload};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::json;
use setup::{setup, Route};

const NAME: &str = "sshard-floor";
/// Streams per connection the loop uses (far below the protocol's 32768).
const STREAMS: usize = 8192;
const HEADER: usize = 9;
const OPCODE_ERROR: u8 = 0x00;
const OPCODE_RESULT: u8 = 0x08;
const RESULT_VOID: i32 = 1;
const RESULT_ROWS: i32 = 2;
const HAS_MORE_PAGES: i32 = 0x0002;
/// A phase that sees no answer for this long is stuck.
const STALL: Duration = Duration::from_secs(20);

struct Pending {
    number: u64,
    key: u64,
    started: Instant,
}

/// Bytes a connection reads into at most (frames here are small).
const READ_BUFFER: usize = 1 << 20;

struct Conn {
    socket: TcpStream,
    /// Received bytes: `read[..filled]`, complete frames handled first.
    read: Box<[u8]>,
    filled: usize,
    write: Vec<u8>,
    written: usize,
    free: Vec<i16>,
    pending: Vec<Option<Pending>>,
}

impl Conn {
    fn new(socket: std::net::TcpStream) -> Res<Conn> {
        socket.set_nonblocking(true)?;
        Ok(Conn {
            socket: TcpStream::from_std(socket),
            read: vec![0; READ_BUFFER].into_boxed_slice(),
            filled: 0,
            write: Vec::with_capacity(1 << 16),
            written: 0,
            free: (0..STREAMS as i16).rev().collect(),
            pending: (0..STREAMS).map(|_| None).collect(),
        })
    }

    /// Writes what is queued, as far as the socket takes it.
    fn flush(&mut self) -> Res<()> {
        while self.written < self.write.len() {
            match self.socket.write(&self.write[self.written..]) {
                Ok(0) => return Err("connection closed while writing".into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        self.write.clear();
        self.written = 0;
        Ok(())
    }
}

/// What one phase counted.
#[derive(Default)]
struct Phase {
    latencies: Latencies,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    checked: u64,
    mismatches: u64,
    first_mismatch: Option<String>,
}

impl Phase {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// Which requests a phase sends.
enum Plan<'a> {
    /// The workload's request numbers from `next`, until `stop`.
    Workload { next: u64, stop: Stop },
    /// SELECTs of these keys (the read-back), checking the tag too.
    ReadBack { keys: &'a [u64], at: usize },
}

#[derive(Clone, Copy)]
enum Stop {
    At(Instant),
    Before(u64),
}

struct Client<'a> {
    opts: &'a Options,
    poll: Poll,
    conns: Vec<Conn>,
    routes: Vec<Route>,
    payloads: Vec<String>,
    in_flight: usize,
}

impl Client<'_> {
    /// Queues request `number` on key `key` (an INSERT or a SELECT).
    fn issue(&mut self, number: u64, key: u64, insert: bool) -> Res<()> {
        let route = &self.routes[key as usize];
        let conn = &mut self.conns[route.socket];
        let stream = conn.free.pop().ok_or("out of stream ids")?;
        let frame = if insert { &route.insert } else { &route.select };
        let at = conn.write.len();
        conn.write.extend_from_slice(frame);
        conn.write[at + 2..at + 4].copy_from_slice(&stream.to_be_bytes());
        conn.pending[stream as usize] = Some(Pending {
            number,
            key,
            started: Instant::now(),
        });
        self.in_flight += 1;
        Ok(())
    }

    /// The next request of `plan`, if it has one: (number, key, insert).
    fn next(&self, plan: &mut Plan<'_>) -> Option<(u64, u64, bool)> {
        match plan {
            Plan::Workload { next, stop } => {
                let go = match stop {
                    Stop::At(t) => Instant::now() < *t,
                    Stop::Before(end) => *next < *end,
                };
                go.then(|| {
                    let i = *next;
                    *next += 1;
                    (i, i % self.opts.keys, self.opts.workload.is_insert(i))
                })
            }
            Plan::ReadBack { keys, at } => {
                let key = *keys.get(*at)?;
                *at += 1;
                Some((u64::MAX, key, false))
            }
        }
    }

    /// Runs `plan` with `window` requests in flight until it ends and
    /// every answer is in.
    fn run(&mut self, mut plan: Plan<'_>, window: usize, check_tag: bool) -> Res<Phase> {
        let mut phase = Phase {
            latencies: Latencies::with_capacity(1 << 16),
            ..Phase::default()
        };
        let mut exhausted = false;
        let mut events = Events::with_capacity(1024);
        let mut last_answer = Instant::now();
        loop {
            while !exhausted && self.in_flight < window {
                match self.next(&mut plan) {
                    Some((number, key, insert)) => self.issue(number, key, insert)?,
                    None => exhausted = true,
                }
            }
            for conn in &mut self.conns {
                conn.flush()?;
            }
            if exhausted && self.in_flight == 0 {
                return Ok(phase);
            }
            self.poll
                .poll(&mut events, Some(Duration::from_millis(100)))?;
            let mut answered = false;
            for event in &events {
                let c = event.token().0;
                answered |= self.read(c, &mut phase, check_tag)?;
            }
            if answered {
                last_answer = Instant::now();
            } else if last_answer.elapsed() > STALL {
                return Err(
                    format!("no answer for {STALL:?} with {} in flight", self.in_flight).into(),
                );
            }
        }
    }

    /// Reads what connection `c` has and handles its complete frames.
    fn read(&mut self, c: usize, phase: &mut Phase, check_tag: bool) -> Res<bool> {
        let mut answered = false;
        loop {
            let conn = &mut self.conns[c];
            if conn.filled == conn.read.len() {
                return Err("a frame larger than the read buffer".into());
            }
            match conn.socket.read(&mut conn.read[conn.filled..]) {
                Ok(0) => return Err("a node closed its connection".into()),
                Ok(n) => conn.filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(answered),
                Err(e) => return Err(e.into()),
            }
            let buf = std::mem::take(&mut self.conns[c].read);
            let filled = self.conns[c].filled;
            let mut at = 0;
            while filled - at >= HEADER {
                let body_len = i32::from_be_bytes(buf[at + 5..at + 9].try_into()?) as usize;
                if filled - at - HEADER < body_len {
                    break;
                }
                let stream = i16::from_be_bytes([buf[at + 2], buf[at + 3]]);
                let opcode = buf[at + 4];
                let body = &buf[at + HEADER..at + HEADER + body_len];
                at += HEADER + body_len;
                let Some(p) = self.conns[c]
                    .pending
                    .get_mut(stream as usize)
                    .and_then(Option::take)
                else {
                    continue; // an event or a stray answer
                };
                self.conns[c].free.push(stream);
                self.in_flight -= 1;
                answered = true;
                phase
                    .latencies
                    .record(p.started.elapsed().as_nanos() as u64);
                phase.requests += 1;
                self.answer(opcode, body, &p, phase, check_tag);
            }
            let conn = &mut self.conns[c];
            conn.read = buf;
            conn.read.copy_within(at..filled, 0);
            conn.filled = filled - at;
        }
    }

    /// Checks one answer: a VOID for an INSERT, the row for a SELECT.
    fn answer(&self, opcode: u8, body: &[u8], p: &Pending, phase: &mut Phase, check_tag: bool) {
        if opcode == OPCODE_ERROR {
            let message = body
                .get(6..)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            return phase.error(format!("key {}: server error: {message}", p.key));
        }
        let int = |at: usize| {
            body.get(at..at + 4)
                .map(|b| i32::from_be_bytes(b.try_into().unwrap_or([0; 4])))
        };
        match (opcode, int(0)) {
            (OPCODE_RESULT, Some(RESULT_VOID)) => {}
            (OPCODE_RESULT, Some(RESULT_ROWS)) => {
                phase.checked += 1;
                let want = &self.payloads[p.key as usize];
                match select_row(body, int) {
                    Some((v, tag))
                        if v == want.as_bytes() && (!check_tag || tag == self.opts.tag) => {}
                    got => {
                        phase.mismatches += 1;
                        phase.first_mismatch.get_or_insert_with(|| {
                            format!(
                                "key {} (request {}): read {:?}",
                                p.key,
                                p.number,
                                got.map(|(v, t)| (String::from_utf8_lossy(v).into_owned(), t))
                            )
                        });
                    }
                }
            }
            _ => phase.error(format!(
                "key {}: unexpected answer opcode {opcode:#x}",
                p.key
            )),
        }
    }
}

/// `(v, tag)` of a one-row ROWS result sent without metadata.
fn select_row(body: &[u8], int: impl Fn(usize) -> Option<i32>) -> Option<(&[u8], i64)> {
    let flags = int(4)?;
    let mut at = 12; // kind, flags, column count
    if flags & HAS_MORE_PAGES != 0 {
        at += 4 + usize::try_from(int(at)?).ok()?;
    }
    if int(at)? != 1 {
        return None;
    }
    at += 4;
    let v_len = usize::try_from(int(at)?).ok()?;
    let v = body.get(at + 4..at + 4 + v_len)?;
    at += 4 + v_len;
    let tag = body.get(at + 4..at + 12)?;
    Some((v, i64::from_be_bytes(tag.try_into().ok()?)))
}

/// `--sync`: announce the checkpoint and wait for a line on stdin.
fn checkpoint(opts: &Options, at: &str) -> Res<()> {
    if opts.sync {
        println!("{}", json!({"event": "ready", "at": at}));
        std::io::stdout().flush()?;
        std::io::stdin().lock().read_line(&mut String::new())?;
    }
    Ok(())
}

/// The distinct keys of the last inserts among request numbers
/// `[start, end)`, newest first, at most `max`.
fn inserted_keys(opts: &Options, start: u64, end: u64) -> Vec<u64> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for i in (start..end).rev() {
        if out.len() as u64 >= opts.verify_max || seen.len() as u64 >= opts.keys {
            break;
        }
        if opts.workload.is_insert(i) && seen.insert(i % opts.keys) {
            out.push(i % opts.keys);
        }
    }
    out
}

fn run(opts: &Options) -> Res<serde_json::Value> {
    if !matches!(
        opts.workload,
        Workload::Insert | Workload::Select | Workload::Mixed
    ) {
        return Err(format!(
            "the floor runs insert, select and mixed, not {}",
            opts.workload.name()
        )
        .into());
    }
    let started = Instant::now();
    let setup = setup(opts)?;
    if opts.expect_nodes.is_some_and(|n| n != setup.nodes) {
        return Err(format!(
            "found {} nodes, expected {:?}",
            setup.nodes, opts.expect_nodes
        )
        .into());
    }
    let connect_s = started.elapsed().as_secs_f64();
    let poll = Poll::new()?;
    let mut conns = Vec::with_capacity(setup.sockets.len());
    for (i, socket) in setup.sockets.into_iter().enumerate() {
        let mut conn = Conn::new(socket)?;
        poll.registry()
            .register(&mut conn.socket, Token(i), Interest::READABLE)?;
        conns.push(conn);
    }
    let connections = conns.len();
    let mut client = Client {
        opts,
        poll,
        conns,
        routes: setup.routes,
        payloads: (0..opts.keys).map(payload).collect(),
        in_flight: 0,
    };
    let window = opts.concurrency.max(1);
    let warm_stop = match opts.requests {
        Some(_) => Stop::Before(opts.warmup_requests),
        None => Stop::At(Instant::now() + opts.warmup),
    };
    let warm = client.run(
        Plan::Workload {
            next: 0,
            stop: warm_stop,
        },
        window,
        false,
    )?;
    let start = warm.requests;
    checkpoint(opts, "measure")?;
    let cpu0 = Rusage::now();
    let t0 = Instant::now();
    let stop = match opts.requests {
        Some(n) => Stop::Before(start + n),
        None => Stop::At(t0 + opts.duration),
    };
    let measured = client.run(Plan::Workload { next: start, stop }, window, false)?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = Rusage::now().since(&cpu0);
    let keys = inserted_keys(opts, start, start + measured.requests);
    let back = client.run(Plan::ReadBack { keys: &keys, at: 0 }, 32, true)?;
    Ok(json!({
        "event": "result",
        "driver": NAME,
        "workload": opts.workload.name(),
        "concurrency": opts.concurrency,
        "keyspace": opts.keyspace,
        "requests": measured.requests,
        "errors": measured.errors,
        "first_error": measured.first_error,
        "elapsed_s": elapsed,
        "rps": if elapsed > 0.0 { measured.requests as f64 / elapsed } else { 0.0 },
        "cpu_s": cpu.json(),
        "checked": measured.checked,
        "mismatches": measured.mismatches,
        "first_mismatch": measured.first_mismatch,
        "readback": {
            "checked": back.checked,
            "mismatches": back.mismatches,
            "errors": back.errors,
            "first_failure": back.first_mismatch.or(back.first_error),
        },
        "warmup": {"requests": warm.requests, "errors": warm.errors},
        "latency_us": measured.latencies.summary_us(),
        "connect_s": connect_s,
        "pools_full": connections == setup.nodes * usize::from(setup.shards),
        "driver_connections": connections,
        "process_cpu_s": Rusage::now().json(),
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "{}",
                json!({"event": "error", "driver": NAME, "message": e.to_string()})
            );
            eprintln!("{NAME}: {e}");
            ExitCode::FAILURE
        }
    }
}

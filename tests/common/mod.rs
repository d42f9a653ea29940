//! Shared helpers for the integration tests: start the emulator on a fresh
//! loopback block with fresh ports, wait for its READY line, talk to its
//! HTTP admin/metrics port, and kill it on drop.
//!
//! Every wait here has a deadline and says what it was waiting for.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the emulator may take to print READY.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Fresh addresses/ports tried when a start fails (e.g. a port is taken).
const START_ATTEMPTS: usize = 6;

static STARTS: AtomicU32 = AtomicU32::new(0);

/// The emulator binary: `$SCYLLA_EMULATOR`, else the workspace's release
/// build (`cargo build --release -p scylla-emulator`).
pub fn emulator_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SCYLLA_EMULATOR") {
        return PathBuf::from(path);
    }
    // The workspace's target directory, from this crate or a member crate.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|dir| dir.join("target/release/scylla-emulator"))
        .find(|path| path.exists())
        .unwrap_or_else(|| here.join("target/release/scylla-emulator"))
}

/// A pseudo-random number that differs between processes and calls.
fn entropy() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(STARTS.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Settings of one emulator start.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    pub nodes: usize,
    pub shards: u16,
    /// Extra flags, e.g. `["--auth", "user:pw"]`.
    pub args: Vec<String>,
}

impl EmulatorOptions {
    pub fn new(nodes: usize, shards: u16) -> EmulatorOptions {
        EmulatorOptions {
            nodes,
            shards,
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: &str) -> EmulatorOptions {
        self.args.push(arg.to_owned());
        self
    }

    pub fn start(self) -> Emulator {
        Emulator::start_with(self)
    }
}

/// A running emulator; killed when dropped.
pub struct Emulator {
    child: Child,
    pub nodes: usize,
    pub shards: u16,
    pub base_ip: Ipv4Addr,
    pub port: u16,
    pub shard_aware_port: u16,
    pub metrics_port: u16,
    pub ready_line: String,
    stderr: Arc<Mutex<String>>,
}

impl Emulator {
    /// `nodes` x `shards` emulator with extra flags.
    pub fn start(nodes: usize, shards: u16, args: &[&str]) -> Emulator {
        let mut options = EmulatorOptions::new(nodes, shards);
        options.args = args.iter().map(|a| a.to_string()).collect();
        Emulator::start_with(options)
    }

    pub fn start_with(options: EmulatorOptions) -> Emulator {
        let binary = emulator_binary();
        assert!(
            binary.exists(),
            "emulator binary {} not found: run `cargo build --release -p scylla-emulator` or set SCYLLA_EMULATOR",
            binary.display()
        );
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Emulator::try_start(&binary, &options) {
                Ok(emulator) => return emulator,
                Err(why) => failures.push(why),
            }
        }
        panic!("emulator did not start after {START_ATTEMPTS} attempts: {failures:#?}");
    }

    fn try_start(binary: &PathBuf, options: &EmulatorOptions) -> Result<Emulator, String> {
        let seed = entropy();
        // Second octet 1..=250 keeps clear of the Python harness's 127.0.x.y;
        // the last octet leaves room for up to 250 nodes.
        let base_ip = Ipv4Addr::new(127, 1 + (seed % 250) as u8, (seed >> 8) as u8, 1);
        // Below Linux's ephemeral range (32768..), so clients never hold them.
        let port = 20_000 + ((seed >> 16) % 4_000) as u16 * 3;
        let (shard_aware_port, metrics_port) = (port + 1, port + 2);
        let mut child = Command::new(binary)
            .args(["--nodes", &options.nodes.to_string()])
            .args(["--shards", &options.shards.to_string()])
            .args(["--base-ip", &base_ip.to_string()])
            .args(["--port", &port.to_string()])
            .args(["--shard-aware-port", &shard_aware_port.to_string()])
            .args(["--metrics-port", &metrics_port.to_string()])
            .args(&options.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    let mut s = stderr.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
        }
        let (lines_tx, lines_rx) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            // Keeps draining stdout after READY so the emulator never blocks.
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let _ = lines_tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        let ready_line = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) if line.contains("READY") => break line,
                Ok(_) => continue,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let err = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    return Err(format!(
                        "no READY from emulator on {base_ip} port {port} ({e:?}); stderr: {err}"
                    ));
                }
            }
        };
        Ok(Emulator {
            child,
            nodes: options.nodes,
            shards: options.shards,
            base_ip,
            port,
            shard_aware_port,
            metrics_port,
            ready_line,
            stderr,
        })
    }

    /// Process id of the emulator.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Address of node `i` (0-based).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base_ip) + i as u32)
    }

    /// Regular CQL address of node `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.node_ip(i), self.port))
    }

    /// Shard-aware CQL address of node `i`.
    pub fn shard_aware_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.node_ip(i), self.shard_aware_port))
    }

    pub fn metrics_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.node_ip(i), self.metrics_port))
    }

    /// Host id the emulator gives node `i`.
    pub fn host_id(&self, i: usize) -> String {
        format!("00000000-0000-4000-8000-{:012x}", i + 1)
    }

    /// What the emulator wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One HTTP/1.1 request to node `i`'s metrics port; (status, body).
    /// Blocking, with 5 s timeouts.
    pub fn http(&self, i: usize, method: &str, path: &str) -> Result<(u16, String), String> {
        let addr = self.metrics_addr(i);
        let timeout = Duration::from_secs(5);
        let mut stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_read_timeout(Some(timeout));
        let _ = stream.set_write_timeout(Some(timeout));
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("write {addr}: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| format!("read {addr}: {e}"))?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad HTTP response: {head:?}"))?;
        Ok((status, body.to_owned()))
    }

    /// POST an admin path (e.g. `/admin/delay?us=1000`) to node `i`;
    /// panics unless it answers 200.
    pub fn admin(&self, i: usize, path: &str) -> String {
        match self.http(i, "POST", path) {
            Ok((200, body)) => body,
            other => panic!("POST {path} to node {i}: {other:?}"),
        }
    }

    /// Prometheus text of node `i`.
    pub fn metrics(&self, i: usize) -> String {
        match self.http(i, "GET", "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET /metrics from node {i}: {other:?}"),
        }
    }

    /// Value of one sample, e.g.
    /// `emulator_connections_accepted_total{port="19042",shard="1"}`.
    pub fn metric(&self, i: usize, sample: &str) -> Option<f64> {
        self.metrics(i).lines().find_map(|line| {
            let rest = line.strip_prefix(sample)?;
            rest.trim().parse().ok()
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` every 10 ms until it holds; panics after `timeout`
/// naming `what`.
pub async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

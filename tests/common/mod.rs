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
    /// TLS listeners too, with certificates made for this start.
    pub tls: Option<TlsOptions>,
}

/// Which certificate the emulator's TLS listeners present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCert {
    /// Valid, for `scylla.test`, `localhost` and every node address.
    Valid,
    /// The same names, validity over in 2021.
    Expired,
    /// Valid and for `scylla.test`, but for other IP addresses than the
    /// nodes' (an address check fails, a name check passes).
    OtherAddresses,
}

/// The emulator's TLS setup (`--tls-generate` run for the chosen
/// addresses, then `--tls-cert`/`--tls-key`/`--tls-client-ca`).
#[derive(Debug, Clone, Copy)]
pub struct TlsOptions {
    pub cert: ServerCert,
    /// Mutual TLS: client certificates from the test CA required.
    pub require_client_cert: bool,
}

/// The certificates of a TLS emulator (PEM files in a directory removed
/// with the emulator) and its TLS ports.
#[derive(Debug)]
pub struct TlsFiles {
    pub dir: PathBuf,
    pub port: u16,
    pub shard_aware_port: u16,
}

impl TlsFiles {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The text of one generated file: `ca.pem`, `other-ca.pem`,
    /// `client.pem`, `client-key.pem`...
    pub fn pem(&self, name: &str) -> Vec<u8> {
        let path = self.path(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// Writes a test CA and certificates for `nodes` nodes from `base_ip`
/// into `dir` (the emulator's `--tls-generate`).
fn generate_certificates(
    binary: &PathBuf,
    dir: &std::path::Path,
    nodes: usize,
    base_ip: Ipv4Addr,
) -> Result<(), String> {
    let output = Command::new(binary)
        .arg("--tls-generate")
        .arg(dir)
        .args(["--nodes", &nodes.to_string()])
        .args(["--base-ip", &base_ip.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "--tls-generate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

impl EmulatorOptions {
    pub fn new(nodes: usize, shards: u16) -> EmulatorOptions {
        EmulatorOptions {
            nodes,
            shards,
            args: Vec::new(),
            tls: None,
        }
    }

    pub fn tls(mut self, cert: ServerCert, require_client_cert: bool) -> EmulatorOptions {
        self.tls = Some(TlsOptions {
            cert,
            require_client_cert,
        });
        self
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
    /// Set when started with TLS listeners.
    pub tls: Option<TlsFiles>,
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
        let port = 20_000 + ((seed >> 16) % 2_400) as u16 * 5;
        let (shard_aware_port, metrics_port) = (port + 1, port + 2);
        let mut tls_args = Vec::new();
        let tls = match &options.tls {
            None => None,
            Some(tls) => {
                let dir = std::env::temp_dir().join(format!("sshard-tls-{seed:016x}"));
                let files = TlsFiles {
                    dir,
                    port: port + 3,
                    shard_aware_port: port + 4,
                };
                // The certificate names other addresses: those of a block
                // no emulator here uses.
                let names_ip = match tls.cert {
                    ServerCert::OtherAddresses => Ipv4Addr::new(127, 254, 254, 1),
                    _ => base_ip,
                };
                generate_certificates(binary, &files.dir, options.nodes, names_ip)?;
                let (cert, key) = match tls.cert {
                    ServerCert::Expired => ("expired.pem", "expired-key.pem"),
                    _ => ("server.pem", "server-key.pem"),
                };
                tls_args.push("--tls-cert".into());
                tls_args.push(files.path(cert).into_os_string());
                tls_args.push("--tls-key".into());
                tls_args.push(files.path(key).into_os_string());
                if tls.require_client_cert {
                    tls_args.push("--tls-client-ca".into());
                    tls_args.push(files.path("ca.pem").into_os_string());
                }
                tls_args.push("--tls-port".into());
                tls_args.push(files.port.to_string().into());
                tls_args.push("--tls-shard-aware-port".into());
                tls_args.push(files.shard_aware_port.to_string().into());
                Some(files)
            }
        };
        let remove_tls_dir = |tls: &Option<TlsFiles>| {
            if let Some(files) = tls {
                let _ = std::fs::remove_dir_all(&files.dir);
            }
        };
        let mut child = Command::new(binary)
            .args(["--nodes", &options.nodes.to_string()])
            .args(["--shards", &options.shards.to_string()])
            .args(["--base-ip", &base_ip.to_string()])
            .args(["--port", &port.to_string()])
            .args(["--shard-aware-port", &shard_aware_port.to_string()])
            .args(["--metrics-port", &metrics_port.to_string()])
            .args(&options.args)
            .args(&tls_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                remove_tls_dir(&tls);
                format!("cannot run {}: {e}", binary.display())
            })?;
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
                    remove_tls_dir(&tls);
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
            tls,
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

    /// The TLS files and ports; panics unless started with TLS.
    pub fn tls(&self) -> &TlsFiles {
        self.tls.as_ref().expect("an emulator started with TLS")
    }

    /// TLS CQL address of node `i`.
    pub fn tls_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.node_ip(i), self.tls().port))
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
        if let Some(tls) = &self.tls {
            let _ = std::fs::remove_dir_all(&tls.dir);
        }
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

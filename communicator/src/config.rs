//! The daemon's settings: an optional TOML file (`--config`), then flags,
//! which override the file. Every setting has one name, `section.key` in
//! the file and `--section-key` on the command line (see `SETTINGS`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use scylla_shard::connection::tls::{read_pem_file, VERIFY_PEER_CERT, VERIFY_PEER_IDENTITY};
use scylla_shard::connection::{TlsConnector, TlsSettings};
use scylla_shard::protocol::{Compression, Consistency};
use scylla_shard::session::{RetryPolicy, SpeculativeExecution, MAX_SPECULATIVE_ATTEMPTS};

/// Kind of value a setting takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    List,
    Int,
    Bool,
    /// `user = "password"` pairs (a TOML table; a flag takes `user:password,...`).
    Users,
}

/// (section, key, kind, what it does): the help text and the parser.
const SETTINGS: &[(&str, &str, Kind, &str)] = &[
    (
        "cluster",
        "contact_points",
        Kind::List,
        "nodes to bootstrap from (host or host:port)",
    ),
    ("cluster", "port", Kind::Int, "CQL port of the nodes (9042)"),
    ("cluster", "local_dc", Kind::Text, "prefer this datacenter"),
    ("cluster", "local_rack", Kind::Text, "and this rack"),
    (
        "cluster",
        "username",
        Kind::Text,
        "the daemon's own cluster credentials",
    ),
    (
        "cluster",
        "password",
        Kind::Text,
        "(never given to clients)",
    ),
    (
        "cluster",
        "password_file",
        Kind::Text,
        "read the password from this file",
    ),
    (
        "cluster",
        "keyspace",
        Kind::Text,
        "keyspace of the daemon's pools",
    ),
    (
        "cluster",
        "compression",
        Kind::Text,
        "lz4 towards the cluster (none)",
    ),
    (
        "cluster",
        "shard_aware_port",
        Kind::Bool,
        "use the shard-aware port (true)",
    ),
    (
        "cluster",
        "tablets",
        Kind::Bool,
        "learn tablet replicas (true)",
    ),
    (
        "cluster",
        "connect_timeout_ms",
        Kind::Int,
        "connect and handshake bound (5000)",
    ),
    (
        "cluster",
        "tls",
        Kind::Bool,
        "TLS to the cluster (off; set cluster.port to the nodes' TLS port, often 9142)",
    ),
    (
        "cluster",
        "tls_ca_file",
        Kind::Text,
        "PEM bundle of the CA(s) that signed the nodes' certificates",
    ),
    (
        "cluster",
        "tls_system_roots",
        Kind::Bool,
        "trust the system's CA store too, or instead (false)",
    ),
    (
        "cluster",
        "tls_cert_file",
        Kind::Text,
        "client certificate chain, PEM, for mutual TLS",
    ),
    (
        "cluster",
        "tls_key_file",
        Kind::Text,
        "its private key, PEM, unencrypted",
    ),
    (
        "cluster",
        "tls_verify_hostname",
        Kind::Bool,
        "the certificate must name the node's IP or tls_server_name (true)",
    ),
    (
        "cluster",
        "tls_server_name",
        Kind::Text,
        "name sent as SNI and checked instead of the node's IP",
    ),
    (
        "listen",
        "unix",
        Kind::Text,
        "CQL Unix socket (/run/scylla-communicator/cql.sock)",
    ),
    (
        "listen",
        "unix_mode",
        Kind::Text,
        "its permissions, octal (0660)",
    ),
    (
        "listen",
        "unix_owner",
        Kind::Text,
        "its owner (user name or uid)",
    ),
    (
        "listen",
        "unix_group",
        Kind::Text,
        "its group (group name or gid)",
    ),
    (
        "listen",
        "tcp",
        Kind::Text,
        "CQL TCP listener, e.g. 127.0.0.1:9042 (off)",
    ),
    (
        "listen",
        "json_unix",
        Kind::Text,
        "JSON-lines Unix socket (off)",
    ),
    (
        "listen",
        "metrics",
        Kind::Text,
        "Prometheus HTTP address, e.g. 127.0.0.1:9180 (off)",
    ),
    (
        "listen",
        "rpc_address",
        Kind::Text,
        "address clients see in system.local (127.0.0.1 or the TCP one)",
    ),
    (
        "limits",
        "max_clients",
        Kind::Int,
        "client connections at once (4096)",
    ),
    (
        "limits",
        "max_in_flight_per_client",
        Kind::Int,
        "requests of one client at once (1024)",
    ),
    (
        "limits",
        "max_in_flight",
        Kind::Int,
        "requests of all clients at once (16384)",
    ),
    (
        "limits",
        "max_pending_bytes_per_client",
        Kind::Int,
        "responses waiting for a slow reader (4 MiB)",
    ),
    (
        "limits",
        "max_frame_bytes",
        Kind::Int,
        "largest request frame (32 MiB)",
    ),
    (
        "limits",
        "keyspace_connections",
        Kind::Int,
        "keyspaces with their own connection for USE (16)",
    ),
    (
        "limits",
        "shutdown_grace_ms",
        Kind::Int,
        "how long a stopping daemon lets requests finish (10000)",
    ),
    (
        "policy",
        "request_timeout_ms",
        Kind::Int,
        "deadline of every request (12000)",
    ),
    (
        "policy",
        "consistency",
        Kind::Text,
        "consistency forced on every request (off)",
    ),
    (
        "policy",
        "prepared_cache_size",
        Kind::Int,
        "prepared statements kept (10000)",
    ),
    (
        "policy",
        "retry_policy",
        Kind::Text,
        "retries of forwarded requests: default or fallthrough (default)",
    ),
    (
        "policy",
        "speculative_delay_ms",
        Kind::Int,
        "an idempotent request unanswered this long goes to another replica too; 0: never (0)",
    ),
    (
        "policy",
        "speculative_percentile",
        Kind::Text,
        "instead of a fixed delay, the latency of this percentile so far, e.g. 99 (off)",
    ),
    (
        "policy",
        "speculative_max_attempts",
        Kind::Int,
        "executions of one request at most, the first included (2)",
    ),
    (
        "auth",
        "users",
        Kind::Users,
        "clients must log in (PasswordAuthenticator) as one of these",
    ),
    (
        "auth",
        "users_file",
        Kind::Text,
        "or these: one user:password per line",
    ),
    (
        "log",
        "level",
        Kind::Text,
        "error, warn, info, debug or trace (info)",
    ),
];

/// Where a Unix socket goes and who may use it.
#[derive(Debug, Clone)]
pub struct UnixListen {
    pub path: PathBuf,
    pub mode: u32,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// Everything the daemon runs by.
#[derive(Debug, Clone)]
pub struct Config {
    pub contact_points: Vec<String>,
    pub port: u16,
    pub local_dc: Option<String>,
    pub local_rack: Option<String>,
    pub credentials: Option<(String, String)>,
    pub keyspace: Option<String>,
    pub compression: Option<Compression>,
    pub shard_aware_port: bool,
    pub tablets: bool,
    pub connect_timeout: Duration,
    /// TLS to the cluster (`cluster.tls`), checked at startup.
    pub tls: Option<TlsConnector>,
    pub unix: Option<UnixListen>,
    pub tcp: Option<SocketAddr>,
    pub json_unix: Option<UnixListen>,
    pub metrics: Option<SocketAddr>,
    pub rpc_address: std::net::IpAddr,
    pub max_clients: usize,
    pub max_in_flight_per_client: usize,
    pub max_in_flight: usize,
    pub max_pending_bytes_per_client: usize,
    pub max_frame_bytes: usize,
    pub keyspace_connections: usize,
    pub shutdown_grace: Duration,
    pub request_timeout: Duration,
    pub consistency: Option<Consistency>,
    pub prepared_cache_size: usize,
    pub retry_policy: RetryPolicy,
    pub speculative_execution: SpeculativeExecution,
    /// user -> password; empty: no client authentication.
    pub users: HashMap<String, String>,
    pub log_level: tracing::Level,
}

pub const DEFAULT_SOCKET: &str = "/run/scylla-communicator/cql.sock";

/// What the command line asked for.
pub enum Invocation {
    Run(Box<Config>),
    Help(String),
}

/// Reads the flags (`args` without the program name) and the file they
/// name.
pub fn from_args(args: &[String]) -> Result<Invocation, String> {
    let mut values: HashMap<String, toml::Value> = HashMap::new();
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut config_file = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Invocation::Help(help()));
        }
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument `{arg}` (see --help)"));
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (name, None),
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("--{name} needs a value"))?,
        };
        if name == "config" {
            config_file = Some(value);
        } else {
            flags.push((name.to_owned(), value));
        }
    }
    if let Some(path) = &config_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        read_toml(&text, &mut values).map_err(|e| format!("{path}: {e}"))?;
    }
    for (name, value) in flags {
        let (section, key, kind) = SETTINGS
            .iter()
            .find(|(s, k, _, _)| format!("{s}-{}", k.replace('_', "-")) == name)
            .map(|(s, k, kind, _)| (*s, *k, *kind))
            .ok_or_else(|| format!("unknown flag --{name} (see --help)"))?;
        values.insert(format!("{section}.{key}"), flag_value(kind, &value)?);
    }
    build(&values).map(|c| Invocation::Run(Box::new(c)))
}

fn help() -> String {
    let mut out = String::from(
        "scylla-communicator: one shard-aware, tablet-aware session per machine, served as CQL v4\n\
         (and JSON lines) on local sockets.\n\nusage: scylla-communicator [--config FILE] [--SECTION-KEY VALUE]...\n\n\
         Settings (`section.key` in the TOML file):\n",
    );
    for (section, key, _, what) in SETTINGS {
        let flag = format!("--{section}-{}", key.replace('_', "-"));
        out.push_str(&format!("  {flag:<40} {what}\n"));
    }
    out
}

fn read_toml(text: &str, values: &mut HashMap<String, toml::Value>) -> Result<(), String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    for (section, entries) in table {
        let toml::Value::Table(entries) = entries else {
            return Err(format!("`{section}` must be a [section]"));
        };
        for (key, value) in entries {
            let kind = SETTINGS
                .iter()
                .find(|(s, k, _, _)| *s == section && *k == key)
                .map(|(_, _, kind, _)| *kind)
                .ok_or_else(|| format!("unknown setting {section}.{key}"))?;
            let fits = matches!(
                (kind, &value),
                (Kind::Text, toml::Value::String(_))
                    | (Kind::List, toml::Value::Array(_))
                    | (Kind::Int, toml::Value::Integer(_))
                    | (Kind::Bool, toml::Value::Boolean(_))
                    | (Kind::Users, toml::Value::Table(_))
            );
            if !fits {
                return Err(format!("{section}.{key}: wrong kind of value"));
            }
            values.insert(format!("{section}.{key}"), value);
        }
    }
    Ok(())
}

fn flag_value(kind: Kind, text: &str) -> Result<toml::Value, String> {
    Ok(match kind {
        Kind::Text => toml::Value::String(text.to_owned()),
        Kind::List => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        Kind::Int => toml::Value::Integer(
            text.parse()
                .map_err(|_| format!("`{text}` is not a number"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match text {
            "true" | "on" | "yes" | "1" => true,
            "false" | "off" | "no" | "0" => false,
            _ => return Err(format!("`{text}` is not true or false")),
        }),
        Kind::Users => {
            let mut users = toml::Table::new();
            for pair in text.split(',').filter(|s| !s.is_empty()) {
                let (user, password) = pair
                    .split_once(':')
                    .ok_or_else(|| format!("`{pair}` is not user:password"))?;
                users.insert(user.to_owned(), toml::Value::String(password.to_owned()));
            }
            toml::Value::Table(users)
        }
    })
}

/// Typed reads of the flat settings.
struct Values<'a>(&'a HashMap<String, toml::Value>);

impl Values<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_str()).map(str::to_owned)
    }

    fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, String> {
        let v = self
            .0
            .get(name)
            .and_then(|v| v.as_integer())
            .unwrap_or(default);
        if v < min || v > max {
            return Err(format!("{name} = {v}: must be within {min}..={max}"));
        }
        Ok(v)
    }

    fn bool(&self, name: &str, default: bool) -> bool {
        self.0
            .get(name)
            .and_then(|v| v.as_bool())
            .unwrap_or(default)
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn address(&self, name: &str) -> Result<Option<SocketAddr>, String> {
        self.text(name)
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("{name} = {t}: not an ip:port"))
            })
            .transpose()
    }

    fn ms(&self, name: &str, default: i64) -> Result<Duration, String> {
        Ok(Duration::from_millis(
            self.int(name, default, 1, 86_400_000)? as u64,
        ))
    }
}

fn build(values: &HashMap<String, toml::Value>) -> Result<Config, String> {
    let v = Values(values);
    let contact_points = v.list("cluster.contact_points");
    if contact_points.is_empty() {
        return Err(
            "no contact points: set cluster.contact_points (--cluster-contact-points)".into(),
        );
    }
    let tls = tls(&v)?;
    let password = match (v.text("cluster.password"), v.text("cluster.password_file")) {
        (Some(p), _) => Some(p),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cluster.password_file {path}: {e}"))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        (None, None) => None,
    };
    let credentials = match (v.text("cluster.username"), password) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        _ => return Err("cluster.username and a password go together".into()),
    };
    let compression = match v.text("cluster.compression").as_deref() {
        None | Some("none") => None,
        Some("lz4") => Some(Compression::Lz4),
        Some(other) => return Err(format!("cluster.compression = {other}: lz4 or none")),
    };
    let consistency = |name: &str| -> Result<Option<Consistency>, String> {
        v.text(name)
            .map(|t| {
                parse_consistency(&t)
                    .ok_or_else(|| format!("{name} = {t}: not a consistency level"))
            })
            .transpose()
    };
    let unix_listen = |prefix: &str, default: Option<&str>| -> Result<Option<UnixListen>, String> {
        let path = v.text(prefix).or(default.map(str::to_owned));
        let Some(path) = path.filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let mode_text = v.text("listen.unix_mode").unwrap_or_else(|| "0660".into());
        let mode = u32::from_str_radix(mode_text.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| format!("listen.unix_mode = {mode_text}: not an octal mode"))?;
        Ok(Some(UnixListen {
            path: path.into(),
            mode,
            owner: v.text("listen.unix_owner"),
            group: v.text("listen.unix_group"),
        }))
    };
    let mut users = HashMap::new();
    if let Some(table) = values.get("auth.users").and_then(|t| t.as_table()) {
        for (user, password) in table {
            let password = password
                .as_str()
                .ok_or_else(|| format!("auth.users.{user}: the password must be a string"))?;
            users.insert(user.clone(), password.to_owned());
        }
    }
    if let Some(path) = v.text("auth.users_file") {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("auth.users_file {path}: {e}"))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (user, password) = line
                .split_once(':')
                .ok_or_else(|| format!("auth.users_file {path}: `{line}` is not user:password"))?;
            users.insert(user.to_owned(), password.to_owned());
        }
    }
    let tcp = v.address("listen.tcp")?;
    if let Some(addr) = tcp {
        if !addr.ip().is_loopback() && users.is_empty() {
            return Err(format!(
                "listen.tcp = {addr}: a listener beyond loopback needs client authentication (auth.users)"
            ));
        }
    }
    let rpc_address = match v.text("listen.rpc_address") {
        Some(t) => t
            .parse()
            .map_err(|_| format!("listen.rpc_address = {t}: not an ip"))?,
        None => tcp.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |a| a.ip()),
    };
    let level = v.text("log.level").unwrap_or_else(|| "info".into());
    let log_level = level
        .parse()
        .map_err(|_| format!("log.level = {level}: error, warn, info, debug or trace"))?;
    let size =
        |name: &str, default: i64, max: i64| v.int(name, default, 1, max).map(|n| n as usize);
    Ok(Config {
        contact_points,
        port: v.int("cluster.port", 9042, 1, 65535)? as u16,
        local_dc: v.text("cluster.local_dc"),
        local_rack: v.text("cluster.local_rack"),
        credentials,
        keyspace: v.text("cluster.keyspace"),
        compression,
        shard_aware_port: v.bool("cluster.shard_aware_port", true),
        tablets: v.bool("cluster.tablets", true),
        connect_timeout: v.ms("cluster.connect_timeout_ms", 5000)?,
        tls,
        unix: unix_listen("listen.unix", Some(DEFAULT_SOCKET))?,
        tcp,
        json_unix: unix_listen("listen.json_unix", None)?,
        metrics: v.address("listen.metrics")?,
        rpc_address,
        max_clients: size("limits.max_clients", 4096, 1 << 20)?,
        max_in_flight_per_client: size("limits.max_in_flight_per_client", 1024, 32768)?,
        max_in_flight: size("limits.max_in_flight", 16384, 1 << 24)?,
        max_pending_bytes_per_client: size(
            "limits.max_pending_bytes_per_client",
            4 << 20,
            1 << 30,
        )?,
        max_frame_bytes: size("limits.max_frame_bytes", 32 << 20, 256 << 20)?,
        keyspace_connections: size("limits.keyspace_connections", 16, 4096)?,
        shutdown_grace: v.ms("limits.shutdown_grace_ms", 10_000)?,
        request_timeout: v.ms("policy.request_timeout_ms", 12_000)?,
        consistency: consistency("policy.consistency")?,
        prepared_cache_size: size("policy.prepared_cache_size", 10_000, 1 << 24)?,
        retry_policy: retry_policy(&v)?,
        speculative_execution: speculative_execution(&v)?,
        users,
        log_level,
    })
}

/// `policy.retry_policy`. Downgrading is not offered: the daemon would
/// answer a client at a weaker consistency than it asked for.
fn retry_policy(v: &Values<'_>) -> Result<RetryPolicy, String> {
    match v.text("policy.retry_policy").as_deref() {
        None | Some("default") => Ok(RetryPolicy::Default),
        Some("fallthrough") => Ok(RetryPolicy::Fallthrough),
        Some(other) => Err(format!(
            "policy.retry_policy = {other}: default or fallthrough (a client's consistency is never downgraded)"
        )),
    }
}

/// `policy.speculative_*`: a fixed delay or a percentile of the latency
/// so far, not both; reads and what clients mark idempotent speculate.
fn speculative_execution(v: &Values<'_>) -> Result<SpeculativeExecution, String> {
    let delay_ms = v.int("policy.speculative_delay_ms", 0, 0, 86_400_000)?;
    let max_attempts = v.int(
        "policy.speculative_max_attempts",
        2,
        2,
        i64::from(MAX_SPECULATIVE_ATTEMPTS),
    )? as u32;
    let percentile = v
        .text("policy.speculative_percentile")
        .map(|t| match t.parse::<f64>() {
            Ok(p) if p > 0.0 && p < 100.0 => Ok(p),
            _ => Err(format!(
                "policy.speculative_percentile = {t}: a percentile between 0 and 100, e.g. 99"
            )),
        })
        .transpose()?;
    match (delay_ms, percentile) {
        (0, None) => Ok(SpeculativeExecution::None),
        (0, Some(percentile)) => Ok(SpeculativeExecution::Percentile {
            percentile,
            max_attempts,
        }),
        (ms, None) => Ok(SpeculativeExecution::Constant {
            delay: Duration::from_millis(ms as u64),
            max_attempts,
        }),
        (_, Some(_)) => Err(
            "policy.speculative_delay_ms and policy.speculative_percentile: set one of them".into(),
        ),
    }
}

/// The `cluster.tls*` settings as the library's TLS settings (files read
/// and checked now, so that a bad one stops the daemon at startup with
/// its setting named, as `sshard_config_set_ssl` does for a C program).
fn tls(v: &Values<'_>) -> Result<Option<TlsConnector>, String> {
    const FILES: [&str; 3] = [
        "cluster.tls_ca_file",
        "cluster.tls_cert_file",
        "cluster.tls_key_file",
    ];
    if !v.bool("cluster.tls", false) {
        let set = FILES
            .iter()
            .chain(&[
                "cluster.tls_system_roots",
                "cluster.tls_verify_hostname",
                "cluster.tls_server_name",
            ])
            .find(|name| v.0.contains_key(**name));
        return match set {
            // Never plain text to a cluster the settings say is TLS.
            Some(name) => Err(format!(
                "{name} is set but cluster.tls is off: set cluster.tls = true (--cluster-tls true)"
            )),
            None => Ok(None),
        };
    }
    let read = |name: &str| -> Result<Option<(String, Vec<u8>)>, String> {
        v.text(name)
            .map(|path| {
                read_pem_file(path.as_ref())
                    .map(|pem| (path, pem))
                    .map_err(|e| format!("{name}: {e}"))
            })
            .transpose()
    };
    let mut settings = TlsSettings::default();
    let ca = read(FILES[0])?;
    if let Some((path, pem)) = &ca {
        settings
            .add_trusted_pem(pem)
            .map_err(|e| format!("{} {path}: {e}", FILES[0]))?;
    }
    let system_roots = v.bool("cluster.tls_system_roots", false);
    if ca.is_none() && !system_roots {
        return Err(
            "cluster.tls: no CA to check the nodes' certificates against: set cluster.tls_ca_file \
             or cluster.tls_system_roots = true"
                .into(),
        );
    }
    settings.set_system_roots(system_roots);
    match (read(FILES[1])?, read(FILES[2])?) {
        (Some((cert_path, cert)), Some((key_path, key))) => {
            settings
                .set_client_cert_pem(&cert)
                .map_err(|e| format!("{} {cert_path}: {e}", FILES[1]))?;
            settings
                .set_client_key_pem(&key)
                .map_err(|e| format!("{} {key_path}: {e}", FILES[2]))?;
        }
        (None, None) => {}
        _ => return Err("cluster.tls_cert_file and cluster.tls_key_file go together".into()),
    }
    let flags = if v.bool("cluster.tls_verify_hostname", true) {
        VERIFY_PEER_CERT | VERIFY_PEER_IDENTITY
    } else {
        VERIFY_PEER_CERT
    };
    settings
        .set_verify_flags(flags)
        .map_err(|e| format!("cluster.tls_verify_hostname: {e}"))?;
    if let Some(name) = v.text("cluster.tls_server_name") {
        settings
            .set_server_name(&name)
            .map_err(|e| format!("cluster.tls_server_name = {name}: {e}"))?;
    }
    // What is left to check: the key against its certificate, the CA
    // certificates as trust anchors.
    settings
        .build()
        .map(Some)
        .map_err(|e| format!("cluster.tls: {e}"))
}

/// `LOCAL_QUORUM`, `local_quorum`, `LocalQuorum`...
pub fn parse_consistency(text: &str) -> Option<Consistency> {
    let key: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Some(match key.as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCALQUORUM" => Consistency::LocalQuorum,
        "EACHQUORUM" => Consistency::EachQuorum,
        "SERIAL" => Consistency::Serial,
        "LOCALSERIAL" => Consistency::LocalSerial,
        "LOCALONE" => Consistency::LocalOne,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run(list: &[&str]) -> Result<Config, String> {
        match from_args(&args(list))? {
            Invocation::Run(c) => Ok(*c),
            Invocation::Help(_) => Err("help".into()),
        }
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("sshard-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[cluster]\ncontact_points = [\"127.0.0.1\"]\nport = 9000\n[policy]\nconsistency = \"local_quorum\"\n[auth]\nusers = { alice = \"pw\" }\n",
        )
        .unwrap();
        let c = run(&[
            "--config",
            file.to_str().unwrap(),
            "--cluster-port",
            "9100",
            "--listen-tcp=10.0.0.1:9042",
        ])
        .unwrap();
        assert_eq!(c.port, 9100);
        assert_eq!(c.contact_points, vec!["127.0.0.1"]);
        assert_eq!(c.consistency, Some(Consistency::LocalQuorum));
        assert_eq!(c.users.get("alice").map(String::as_str), Some("pw"));
        assert_eq!(c.tcp, Some("10.0.0.1:9042".parse().unwrap()));
        assert_eq!(c.unix.unwrap().path, PathBuf::from(DEFAULT_SOCKET));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retry_and_speculation_policies() {
        let c = run(&["--cluster-contact-points", "10.0.0.1"]).unwrap();
        assert_eq!(c.retry_policy, RetryPolicy::Default);
        assert_eq!(c.speculative_execution, SpeculativeExecution::None);
        let c = run(&[
            "--cluster-contact-points",
            "10.0.0.1",
            "--policy-retry-policy",
            "fallthrough",
            "--policy-speculative-delay-ms",
            "20",
        ])
        .unwrap();
        assert_eq!(c.retry_policy, RetryPolicy::Fallthrough);
        assert_eq!(
            c.speculative_execution,
            SpeculativeExecution::Constant {
                delay: Duration::from_millis(20),
                max_attempts: 2
            }
        );
        let c = run(&[
            "--cluster-contact-points",
            "10.0.0.1",
            "--policy-speculative-percentile",
            "99.5",
            "--policy-speculative-max-attempts",
            "3",
        ])
        .unwrap();
        assert_eq!(
            c.speculative_execution,
            SpeculativeExecution::Percentile {
                percentile: 99.5,
                max_attempts: 3
            }
        );
        for (flags, says) in [
            (
                &["--policy-retry-policy", "downgrading_consistency"][..],
                "never downgraded",
            ),
            (
                &["--policy-speculative-percentile", "100"][..],
                "between 0 and 100",
            ),
            (
                &[
                    "--policy-speculative-delay-ms",
                    "5",
                    "--policy-speculative-percentile",
                    "99",
                ][..],
                "set one of them",
            ),
            (
                &["--policy-speculative-max-attempts", "1"][..],
                "within 2..=16",
            ),
        ] {
            let mut args = vec!["--cluster-contact-points", "10.0.0.1"];
            args.extend_from_slice(flags);
            let e = run(&args).unwrap_err();
            assert!(e.contains(says), "{flags:?}: {e}");
        }
    }

    #[test]
    fn the_manual_page_names_every_setting() {
        let manual = include_str!("../doc/scylla-communicator.8");
        for (section, key, _, _) in SETTINGS {
            // roff writes a flag's dashes as `\-`.
            let flag = format!("--{section}-{}", key.replace('_', "-")).replace('-', "\\-");
            assert!(
                manual.contains(&format!("{flag} ")) || manual.contains(&format!("{flag}\n")),
                "doc/scylla-communicator.8 does not describe {flag}"
            );
        }
    }

    #[test]
    fn the_shipped_example_config_parses() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/communicator.toml");
        // The cluster's password file exists only where it is deployed.
        let c = run(&["--config", file, "--cluster-password", "pw"]).unwrap();
        assert_eq!(c.contact_points.len(), 3);
        assert_eq!(c.local_dc.as_deref(), Some("dc1"));
        assert_eq!(c.credentials, Some(("app".into(), "pw".into())));
        let unix = c.unix.unwrap();
        assert_eq!(unix.path, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(unix.mode, 0o660);
        assert_eq!(
            c.json_unix.unwrap().path,
            PathBuf::from("/run/scylla-communicator/json.sock")
        );
        assert_eq!(c.metrics, Some("127.0.0.1:9181".parse().unwrap()));
        assert_eq!(c.max_in_flight, 65536);
        assert!(c.tls.is_none(), "the TLS block is commented out");
    }

    #[test]
    fn the_shipped_tls_block_parses_when_uncommented() {
        let shipped = include_str!("../deploy/communicator.toml");
        let uncommented: String = shipped
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(setting) if setting.starts_with("tls") || setting.starts_with("port") => {
                    format!("{setting}\n")
                }
                _ => format!("{line}\n"),
            })
            .collect();
        assert_ne!(uncommented.trim_end(), shipped.trim_end());
        let scratch = Scratch::new("tls-shipped");
        let file = scratch.file("c.toml", &uncommented);
        // Every key is known and of the right kind; the first file it
        // reads exists only where it is deployed.
        let e = run(&["--config", &file, "--cluster-password", "pw"]).unwrap_err();
        assert!(
            e.starts_with(
                "cluster.tls_ca_file: cannot read /etc/scylla-communicator/cluster-ca.pem:"
            ),
            "{e}"
        );
    }

    /// A scratch directory of this test process, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("sshard-config-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, text: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The error of a run with contact points and `list`.
    fn fails(list: &[&str]) -> String {
        let mut all = vec!["--cluster-contact-points", "a"];
        all.extend_from_slice(list);
        match run(&all) {
            Ok(c) => panic!("{list:?} accepted: tls = {:?}", c.tls),
            Err(e) => e,
        }
    }

    #[test]
    fn tls_is_off_unless_asked_and_never_half_set() {
        let c = run(&["--cluster-contact-points", "a"]).unwrap();
        assert!(c.tls.is_none());
        let scratch = Scratch::new("tls-off");
        let ca = scratch.file("ca.pem", "");
        // A CA (or any TLS setting) with TLS off would mean plain text to
        // a cluster the config describes as TLS.
        let e = fails(&["--cluster-tls-ca-file", &ca]);
        assert!(
            e.contains("cluster.tls_ca_file") && e.contains("cluster.tls is off"),
            "{e}"
        );
        let e = fails(&[
            "--cluster-tls",
            "false",
            "--cluster-tls-server-name",
            "db.test",
        ]);
        assert!(e.contains("cluster.tls_server_name"), "{e}");
        let e = fails(&["--cluster-tls", "maybe"]);
        assert!(e.contains("maybe"), "{e}");
    }

    #[test]
    fn tls_needs_something_to_trust() {
        let e = fails(&["--cluster-tls", "true"]);
        assert!(
            e.contains("cluster.tls_ca_file") && e.contains("tls_system_roots"),
            "{e}"
        );
    }

    #[test]
    fn unreadable_and_bad_pem_files_are_named() {
        let scratch = Scratch::new("tls-files");
        let missing = scratch.0.join("missing.pem");
        let missing = missing.to_str().unwrap();
        let e = fails(&["--cluster-tls", "on", "--cluster-tls-ca-file", missing]);
        assert!(e.starts_with("cluster.tls_ca_file: cannot read"), "{e}");
        assert!(e.contains(missing), "{e}");
        // A directory is no PEM file either.
        let dir = scratch.0.to_str().unwrap();
        let e = fails(&["--cluster-tls", "on", "--cluster-tls-ca-file", dir]);
        assert!(e.starts_with("cluster.tls_ca_file"), "{e}");

        let garbage = scratch.file("garbage.pem", "not a certificate\n");
        let e = fails(&["--cluster-tls", "on", "--cluster-tls-ca-file", &garbage]);
        assert!(
            e.starts_with(&format!("cluster.tls_ca_file {garbage}:")),
            "{e}"
        );
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let broken = scratch.file(
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\n@@not base64@@\n-----END CERTIFICATE-----\n",
        );
        let e = fails(&["--cluster-tls", "on", "--cluster-tls-ca-file", &broken]);
        assert!(
            e.contains("cluster.tls_ca_file") && e.contains("bad PEM"),
            "{e}"
        );

        // The client certificate and key (the system store as the CA, so
        // that they are what fails).
        let roots = ["--cluster-tls", "on", "--cluster-tls-system-roots", "true"];
        let with = |extra: &[&str]| {
            let mut list = roots.to_vec();
            list.extend_from_slice(extra);
            fails(&list)
        };
        let e = with(&[
            "--cluster-tls-cert-file",
            &garbage,
            "--cluster-tls-key-file",
            &garbage,
        ]);
        assert!(e.starts_with("cluster.tls_cert_file"), "{e}");
        let e = with(&[
            "--cluster-tls-cert-file",
            &garbage,
            "--cluster-tls-key-file",
            missing,
        ]);
        assert!(e.starts_with("cluster.tls_key_file: cannot read"), "{e}");
        let e = with(&["--cluster-tls-cert-file", &garbage]);
        assert!(
            e.contains("tls_cert_file and cluster.tls_key_file go together"),
            "{e}"
        );
        let e = with(&["--cluster-tls-key-file", &garbage]);
        assert!(e.contains("go together"), "{e}");
        let e = with(&["--cluster-tls-server-name", "not a name!"]);
        assert!(
            e.starts_with("cluster.tls_server_name = not a name!"),
            "{e}"
        );
    }

    #[test]
    fn tls_settings_come_from_the_file_too() {
        let scratch = Scratch::new("tls-toml");
        let garbage = scratch.file("garbage.pem", "nothing\n");
        let file = scratch.file(
            "c.toml",
            &format!(
                "[cluster]\ncontact_points = [\"a\"]\ntls = true\ntls_ca_file = \"{garbage}\"\n"
            ),
        );
        let e = run(&["--config", &file]).unwrap_err();
        assert!(e.starts_with("cluster.tls_ca_file"), "{e}");
        let wrong = scratch.file(
            "w.toml",
            "[cluster]\ncontact_points = [\"a\"]\ntls = \"yes\"\n",
        );
        let e = run(&["--config", &wrong]).unwrap_err();
        assert!(e.contains("cluster.tls: wrong kind of value"), "{e}");
        // The flag turns it off again, and nothing else TLS is set.
        let on = scratch.file(
            "on.toml",
            "[cluster]\ncontact_points = [\"a\"]\ntls = true\n",
        );
        assert!(run(&["--config", &on, "--cluster-tls", "off"])
            .unwrap()
            .tls
            .is_none());
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(run(&[]).unwrap_err().contains("contact points"));
        assert!(run(&["--cluster-contact-points", "a", "--nope", "1"])
            .unwrap_err()
            .contains("--nope"));
        assert!(run(&[
            "--cluster-contact-points",
            "a",
            "--listen-tcp",
            "10.1.1.1:1"
        ])
        .unwrap_err()
        .contains("authentication"));
        assert!(run(&[
            "--cluster-contact-points",
            "a",
            "--policy-consistency",
            "most"
        ])
        .unwrap_err()
        .contains("consistency"));
        assert!(run(&[
            "--cluster-contact-points",
            "a",
            "--limits-max-in-flight",
            "0"
        ])
        .unwrap_err()
        .contains("max_in_flight"));
    }
}

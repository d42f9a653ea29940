//! `sshard_config`: cluster and session settings (caller-owned builder, not
//! thread-safe). `sshard_session_connect` copies it.

use std::ffi::c_char;
use std::time::Duration;

use super::enums::{
    consistency, retry_policy, serial_consistency, sshard_compression, sshard_consistency,
    sshard_retry_policy, SSHARD_COMPRESSION_LZ4, SSHARD_COMPRESSION_NONE,
};
use super::handle::{box_free, box_into_raw, box_mut, out_arg, str_arg, Generational};
use super::status::{sshard_status, Fail, FfiResult};
use crate::protocol::frame::MAX_BODY_LEN;
use crate::protocol::Compression;
use crate::routing::sharder::ShardAwarePortRange;
use crate::runtime;
use crate::session::SessionConfig;

/// Most runtime worker threads a config may ask for.
const MAX_WORKER_THREADS: u32 = 256;

/// Longest timeout or interval accepted, in milliseconds (one day).
pub const SSHARD_MAX_TIMEOUT_MS: u64 = 86_400_000;
/// Largest response frame body a session accepts by default and at most
/// (`sshard_config_set_max_frame_size`): 256 MiB, the protocol's limit.
pub const SSHARD_MAX_FRAME_SIZE: u64 = 268_435_456;
/// Smallest frame limit a config may set.
const MIN_FRAME_SIZE: usize = 4096;
/// Most prepared statements a session's cache may keep.
pub const SSHARD_MAX_PREPARED_CACHE_SIZE: usize = 1_048_576;

/// A timeout or interval from C: at most `SSHARD_MAX_TIMEOUT_MS` (deadlines
/// are computed from it, and must not overflow the clock).
pub(crate) fn millis_arg(ms: u64, what: &str) -> FfiResult<Duration> {
    if ms > SSHARD_MAX_TIMEOUT_MS {
        return Err(Fail::invalid(format!(
            "{what} of {ms} ms (at most {SSHARD_MAX_TIMEOUT_MS})"
        )));
    }
    Ok(Duration::from_millis(ms))
}

/// Settings of a session. Caller-owned, not thread-safe; free with
/// `sshard_config_free`.
pub struct sshard_config {
    generation: u64,
    pub(crate) session: SessionConfig,
    /// Runtime worker threads; 0: number of CPUs, at most 4.
    pub(crate) worker_threads: u32,
    /// The threads that wait run the I/O (see `sshard_config_set_caller_driven_io`).
    pub(crate) caller_driven: bool,
}

impl Generational for sshard_config {
    fn generation(&self) -> u64 {
        self.generation
    }
}

/// Makes a config with the defaults: port 9042, shard-aware port on, local
/// ports 49152..65535, 1 connection per shard, LOCAL_ONE, page size 5000,
/// no compression, connect timeout 5 s, request timeout 12 s, tablet
/// awareness on, worker threads = CPUs (at most 4), 1024 cached prepared
/// statements. Free it with `sshard_config_free`; a session made from it
/// keeps its own copy.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_new(config: *mut *mut sshard_config) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(config, "config")?;
        out.write(box_into_raw(sshard_config {
            generation: runtime::generation(),
            session: SessionConfig::default(),
            worker_threads: 0,
            caller_driven: false,
        }));
        Ok(())
    }
}

/// Frees a config (NULL: no-op).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_free(config: *mut sshard_config) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a config the caller gives up (API contract).
        unsafe { box_free(config) }
    }
}

/// Adds a contact point: `host` or `host:port` (IPv6: `[addr]:port`).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_add_contact_point(
    config: *mut sshard_config,
    host: *const c_char,
    host_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: `(host, host_len)` is readable memory (API contract).
        let host = unsafe { str_arg(host, host_len, "host") }?.trim();
        if host.is_empty() {
            return Err(Fail::invalid("empty contact point"));
        }
        config.session.contact_points.push(host.to_owned());
        Ok(())
    }
}

/// The CQL port of every node (default 9042).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_port(
    config: *mut sshard_config,
    port: u16,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        if port == 0 {
            return Err(Fail::invalid("port 0"));
        }
        config.session.port = port;
        Ok(())
    }
}

/// Whether to connect through Scylla's shard-aware port (default on).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_shard_aware_port(
    config: *mut sshard_config,
    enabled: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.shard_aware_port = enabled;
        Ok(())
    }
}

/// Local ports (inclusive, from 1024) bound for shard-aware connections.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_local_port_range(
    config: *mut sshard_config,
    first: u16,
    last: u16,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.local_port_range =
            ShardAwarePortRange::new(first, last).map_err(|e| Fail::invalid(e.to_string()))?;
        Ok(())
    }
}

/// Connections per shard (per node for servers without shards), 1..=64.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_connections_per_shard(
    config: *mut sshard_config,
    connections: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        if !(1..=64).contains(&connections) {
            return Err(Fail::invalid(format!("{connections} connections per shard (1..=64)")));
        }
        config.session.connections_per_shard = connections as usize;
        Ok(())
    }
}

/// Prefer nodes of this datacenter (empty: none).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_local_dc(
    config: *mut sshard_config,
    dc: *const c_char,
    dc_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: `(dc, dc_len)` is readable memory (API contract).
        let dc = unsafe { str_arg(dc, dc_len, "dc") }?;
        config.session.local_dc = (!dc.is_empty()).then(|| dc.to_owned());
        Ok(())
    }
}

/// Prefer nodes of this rack within the local datacenter (empty: none).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_local_rack(
    config: *mut sshard_config,
    rack: *const c_char,
    rack_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: `(rack, rack_len)` is readable memory (API contract).
        let rack = unsafe { str_arg(rack, rack_len, "rack") }?;
        config.session.local_rack = (!rack.is_empty()).then(|| rack.to_owned());
        Ok(())
    }
}

/// Whether other datacenters may serve requests the local one cannot.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_dc_failover(
    config: *mut sshard_config,
    enabled: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.permit_dc_failover = enabled;
        Ok(())
    }
}

/// Credentials for `PasswordAuthenticator`.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_credentials(
    config: *mut sshard_config,
    username: *const c_char,
    username_len: usize,
    password: *const c_char,
    password_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: both `(pointer, length)` pairs are readable memory (API contract).
        let (user, password) = unsafe {
            (str_arg(username, username_len, "username")?, str_arg(password, password_len, "password")?)
        };
        config.session.connection.credentials = Some((user.to_owned(), password.to_owned()));
        Ok(())
    }
}

/// Frame compression: `SSHARD_COMPRESSION_NONE` or `SSHARD_COMPRESSION_LZ4`
/// (used when the server offers it).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_compression(
    config: *mut sshard_config,
    compression: sshard_compression,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.connection.compression = match compression {
            SSHARD_COMPRESSION_NONE => None,
            SSHARD_COMPRESSION_LZ4 => Some(Compression::Lz4),
            other => return Err(Fail::invalid(format!("unknown compression {other}"))),
        };
        Ok(())
    }
}

/// Bound on opening one connection (TCP + handshake), in milliseconds.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_connect_timeout_ms(
    config: *mut sshard_config,
    timeout_ms: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        if timeout_ms == 0 {
            return Err(Fail::invalid("connect timeout 0"));
        }
        config.session.connection.connect_timeout = millis_arg(timeout_ms, "connect timeout")?;
        Ok(())
    }
}

/// Default end-to-end timeout of one request, in milliseconds.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_request_timeout_ms(
    config: *mut sshard_config,
    timeout_ms: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        if timeout_ms == 0 {
            return Err(Fail::invalid("request timeout 0"));
        }
        config.session.request_timeout = millis_arg(timeout_ms, "request timeout")?;
        Ok(())
    }
}

/// Keepalive interval of idle connections in milliseconds (0: off).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_heartbeat_interval_ms(
    config: *mut sshard_config,
    interval_ms: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        let interval = millis_arg(interval_ms, "heartbeat interval")?;
        config.session.connection.heartbeat_interval = (interval_ms > 0).then_some(interval);
        Ok(())
    }
}

/// Largest response frame accepted, in bytes of its body (and the most a
/// compressed body may inflate to): from 4096 to 268435456
/// (`SSHARD_MAX_FRAME_SIZE`, the default). A larger frame closes its
/// connection; the requests on it fail with `SSHARD_STATUS_CONNECTION_LOST`
/// or `SSHARD_STATUS_DECODE` unless the retry rules send them elsewhere.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_max_frame_size(
    config: *mut sshard_config,
    bytes: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        let bytes = usize::try_from(bytes)
            .ok()
            .filter(|b| (MIN_FRAME_SIZE..=MAX_BODY_LEN).contains(b))
            .ok_or_else(|| {
                Fail::invalid(format!(
                    "max frame size {bytes}: from {MIN_FRAME_SIZE} to {MAX_BODY_LEN} bytes"
                ))
            })?;
        config.session.connection.max_frame_len = bytes;
        Ok(())
    }
}

/// Worker threads of the session's runtime (0: CPUs, at most 4).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_worker_threads(
    config: *mut sshard_config,
    threads: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        if threads > MAX_WORKER_THREADS {
            return Err(Fail::invalid(format!("{threads} worker threads (at most {MAX_WORKER_THREADS})")));
        }
        config.worker_threads = threads;
        Ok(())
    }
}

/// Where the session's I/O runs. Off (the default): on the session's own
/// worker threads (`sshard_config_set_worker_threads`); a request goes from
/// the caller's thread to a worker and its completion back, a wake-up of
/// another thread each way when they sleep. On: on one I/O loop that the
/// threads waiting for completions drive themselves
/// (`sshard_queue_wait`, `sshard_future_wait`, `sshard_future_wait_timed`
/// run the connections until what they wait for is ready), and a standby
/// thread drives it while no caller waits (so callbacks, timeouts and
/// heartbeats go on). Best for a program that submits and then waits on one
/// thread; the worker-thread count is then ignored. Callbacks may run on
/// the waiting thread, inside its wait.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_caller_driven_io(
    config: *mut sshard_config,
    enabled: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.caller_driven = enabled;
        Ok(())
    }
}

/// Application name reported to the server (`system.clients`).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_application_name(
    config: *mut sshard_config,
    name: *const c_char,
    name_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        config.session.connection.application_name = (!name.is_empty()).then(|| name.to_owned());
        Ok(())
    }
}

/// Application version reported to the server.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_application_version(
    config: *mut sshard_config,
    version: *const c_char,
    version_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: `(version, version_len)` is readable memory (API contract).
        let version = unsafe { str_arg(version, version_len, "version") }?;
        config.session.connection.application_version =
            (!version.is_empty()).then(|| version.to_owned());
        Ok(())
    }
}

/// Default consistency level of statements (default LOCAL_ONE).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_consistency(
    config: *mut sshard_config,
    level: sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.default_consistency = consistency(level)?;
        Ok(())
    }
}

/// Default serial consistency of conditional statements.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_serial_consistency(
    config: *mut sshard_config,
    level: sshard_consistency,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.default_serial_consistency = Some(serial_consistency(level)?);
        Ok(())
    }
}

/// Default retry policy (`SSHARD_RETRY_POLICY_*`; default
/// `SSHARD_RETRY_POLICY_DEFAULT`). Each decision is counted in
/// `sshard_metrics` (`retry_*`).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_retry_policy(
    config: *mut sshard_config,
    policy: sshard_retry_policy,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.default_retry_policy = retry_policy(policy)?;
        Ok(())
    }
}

/// Default page size (0 or negative: no paging).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_page_size(
    config: *mut sshard_config,
    page_size: i32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.default_page_size = page_size;
        Ok(())
    }
}

/// Keyspace every connection uses (the exact, case-sensitive name; empty:
/// none).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_keyspace(
    config: *mut sshard_config,
    keyspace: *const c_char,
    keyspace_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: `(keyspace, keyspace_len)` is readable memory (API contract).
        let keyspace = unsafe { str_arg(keyspace, keyspace_len, "keyspace") }?;
        let keyspace = (!keyspace.is_empty()).then(|| keyspace.to_owned());
        config.session.keyspace = keyspace.clone();
        config.session.connection.keyspace = keyspace;
        Ok(())
    }
}

/// Use the communicator (the per-machine daemon, `scylla-communicator`)
/// at `path`: its Unix socket path (or `unix:PATH`), or `host:port` of its
/// TCP listener; empty: connect to the cluster directly. In this mode the
/// session opens one connection, to the daemon, and no control connection
/// or pools; contact points are not needed, and the runtime runs one
/// worker thread unless `sshard_config_set_worker_threads` says otherwise.
/// Credentials, if set, are the daemon's users', not the cluster's.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_communicator(
    config: *mut sshard_config,
    path: *const c_char,
    path_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        // SAFETY: `(path, path_len)` is readable memory (API contract).
        let path = unsafe { str_arg(path, path_len, "path") }?.trim();
        config.session.communicator = (!path.is_empty()).then(|| path.to_owned());
        Ok(())
    }
}

/// Prepared statements the session keeps for reuse (default 1024, at most
/// `SSHARD_MAX_PREPARED_CACHE_SIZE`; 0: only those a caller holds). The
/// least recently used go first; a handle the caller holds stays valid
/// whatever the cache does.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_prepared_cache_size(
    config: *mut sshard_config,
    size: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        if size > SSHARD_MAX_PREPARED_CACHE_SIZE {
            return Err(Fail::invalid(format!(
                "prepared cache of {size} (at most {SSHARD_MAX_PREPARED_CACHE_SIZE})"
            )));
        }
        config.session.prepared_cache_size = size;
        Ok(())
    }
}

/// Whether every request gets a client-side write timestamp (default on):
/// microseconds since the epoch, strictly increasing within the session,
/// so its writes to one cell apply in the order it sent them; a
/// statement's or batch's own timestamp wins. Off: the coordinator's
/// clock decides.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_client_timestamps(
    config: *mut sshard_config,
    enabled: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.client_timestamps = enabled;
        Ok(())
    }
}

/// How long a schema change (DDL) waits for every node that is up to
/// report the new schema before its future completes, in milliseconds
/// (default 10000; 0: no wait). See `sshard_result_schema_in_agreement`.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_schema_agreement_timeout_ms(
    config: *mut sshard_config,
    timeout_ms: u64,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.schema_agreement_timeout = millis_arg(timeout_ms, "schema agreement timeout")?;
        Ok(())
    }
}

/// Whether to learn tablet replicas from the server (default on).
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_tablet_awareness(
    config: *mut sshard_config,
    enabled: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        config.session.tablet_awareness = enabled;
        config.session.connection.tablets_routing = enabled;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;
    use std::ptr::null_mut;

    fn s(text: &str) -> (*const c_char, usize) {
        (text.as_ptr().cast(), text.len())
    }

    #[test]
    fn max_frame_size_is_the_protocol_limit() {
        assert_eq!(SSHARD_MAX_FRAME_SIZE, MAX_BODY_LEN as u64);
    }

    #[test]
    fn setters_apply_and_validate() {
        // SAFETY: the config is valid until freed at the end; strings are live.
        unsafe {
            let mut c = null_mut();
            assert_eq!(sshard_config_new(&mut c), 0);
            let (p, n) = s("127.0.0.1:9042");
            assert_eq!(sshard_config_add_contact_point(c, p, n), 0);
            let (p, n) = s("  ");
            assert_eq!(
                sshard_config_add_contact_point(c, p, n),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_config_set_port(c, 19042), 0);
            assert_eq!(sshard_config_set_port(c, 0), SSHARD_STATUS_INVALID_ARGUMENT);
            assert_eq!(sshard_config_set_shard_aware_port(c, false), 0);
            assert_eq!(sshard_config_set_local_port_range(c, 50000, 50100), 0);
            assert_eq!(
                sshard_config_set_local_port_range(c, 100, 50),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_config_set_connections_per_shard(c, 2), 0);
            assert_eq!(
                sshard_config_set_connections_per_shard(c, 0),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            let (p, n) = s("dc1");
            assert_eq!(sshard_config_set_local_dc(c, p, n), 0);
            let (p, n) = s("rack1");
            assert_eq!(sshard_config_set_local_rack(c, p, n), 0);
            assert_eq!(sshard_config_set_dc_failover(c, false), 0);
            let (u, un) = s("user");
            let (pw, pn) = s("pw");
            assert_eq!(sshard_config_set_credentials(c, u, un, pw, pn), 0);
            assert_eq!(
                sshard_config_set_credentials(c, [0xC3u8].as_ptr().cast(), 1, pw, pn),
                SSHARD_STATUS_INVALID_UTF8
            );
            assert_eq!(sshard_config_set_compression(c, SSHARD_COMPRESSION_LZ4), 0);
            assert_eq!(
                sshard_config_set_compression(c, 7),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_config_set_connect_timeout_ms(c, 1500), 0);
            assert_eq!(
                sshard_config_set_connect_timeout_ms(c, 0),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_config_set_request_timeout_ms(c, 2500), 0);
            assert_eq!(
                sshard_config_set_request_timeout_ms(c, 0),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_config_set_heartbeat_interval_ms(c, 0), 0);
            assert_eq!(sshard_config_set_max_frame_size(c, 1 << 20), 0);
            assert_eq!((*c).session.connection.max_frame_len, 1 << 20);
            for bad in [0, 4095, SSHARD_MAX_FRAME_SIZE + 1, u64::MAX] {
                assert_eq!(
                    sshard_config_set_max_frame_size(c, bad),
                    SSHARD_STATUS_INVALID_ARGUMENT
                );
            }
            assert_eq!((*c).session.connection.max_frame_len, 1 << 20);
            assert_eq!(sshard_config_set_worker_threads(c, 3), 0);
            assert_eq!(
                sshard_config_set_worker_threads(c, 100_000),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert!(!(*c).caller_driven);
            assert_eq!(sshard_config_set_caller_driven_io(c, true), 0);
            assert!((*c).caller_driven);
            let (p, n) = s("app");
            assert_eq!(sshard_config_set_application_name(c, p, n), 0);
            let (p, n) = s("1.2");
            assert_eq!(sshard_config_set_application_version(c, p, n), 0);
            assert_eq!(sshard_config_set_consistency(c, 4), 0);
            assert_eq!(
                sshard_config_set_consistency(c, 99),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_config_set_serial_consistency(c, 9), 0);
            assert_eq!(
                sshard_config_set_serial_consistency(c, 1),
                SSHARD_STATUS_INVALID_ARGUMENT
            );
            assert_eq!(sshard_config_set_page_size(c, 100), 0);
            let (p, n) = s("ks");
            assert_eq!(sshard_config_set_keyspace(c, p, n), 0);
            assert_eq!(sshard_config_set_tablet_awareness(c, false), 0);
            assert_eq!(sshard_config_set_client_timestamps(c, false), 0);
            let (p, n) = s(" /run/sshard/cql.sock ");
            assert_eq!(sshard_config_set_communicator(c, p, n), 0);
            assert_eq!(
                (*c).session.communicator.as_deref(),
                Some("/run/sshard/cql.sock")
            );
            let (p, n) = s("");
            assert_eq!(sshard_config_set_communicator(c, p, n), 0);
            assert_eq!((*c).session.communicator, None);
            assert_eq!(
                sshard_config_set_communicator(c, std::ptr::null(), 3),
                SSHARD_STATUS_NULL_ARGUMENT
            );

            let cfg = &(*c).session;
            assert_eq!(cfg.contact_points, vec!["127.0.0.1:9042".to_owned()]);
            assert_eq!(cfg.port, 19042);
            assert!(!cfg.shard_aware_port);
            assert_eq!(cfg.local_port_range.start(), 50000);
            assert_eq!(cfg.connections_per_shard, 2);
            assert_eq!(cfg.local_dc.as_deref(), Some("dc1"));
            assert_eq!(cfg.local_rack.as_deref(), Some("rack1"));
            assert!(!cfg.permit_dc_failover);
            assert!(!cfg.client_timestamps);
            assert_eq!(
                cfg.connection.credentials,
                Some(("user".into(), "pw".into()))
            );
            assert_eq!(cfg.connection.compression, Some(Compression::Lz4));
            assert_eq!(cfg.connection.connect_timeout, Duration::from_millis(1500));
            assert_eq!(cfg.request_timeout, Duration::from_millis(2500));
            assert_eq!(cfg.connection.heartbeat_interval, None);
            assert_eq!((*c).worker_threads, 3);
            assert_eq!(cfg.connection.application_name.as_deref(), Some("app"));
            assert_eq!(cfg.connection.application_version.as_deref(), Some("1.2"));
            assert_eq!(
                cfg.default_consistency,
                crate::protocol::Consistency::Quorum
            );
            assert_eq!(
                cfg.default_serial_consistency,
                Some(crate::protocol::Consistency::LocalSerial)
            );
            assert_eq!(cfg.default_page_size, 100);
            assert_eq!(cfg.keyspace.as_deref(), Some("ks"));
            assert!(!cfg.tablet_awareness);
            assert_eq!(sshard_config_free(c), 0);
        }
    }

    #[test]
    fn null_config_is_refused_everywhere() {
        let c = null_mut();
        let (p, n) = s("x");
        // SAFETY: NULL handles and live strings only.
        unsafe {
            let results = [
                sshard_config_new(null_mut()),
                sshard_config_add_contact_point(c, p, n),
                sshard_config_set_port(c, 1),
                sshard_config_set_shard_aware_port(c, true),
                sshard_config_set_local_port_range(c, 2000, 3000),
                sshard_config_set_connections_per_shard(c, 1),
                sshard_config_set_local_dc(c, p, n),
                sshard_config_set_local_rack(c, p, n),
                sshard_config_set_dc_failover(c, true),
                sshard_config_set_credentials(c, p, n, p, n),
                sshard_config_set_compression(c, 0),
                sshard_config_set_connect_timeout_ms(c, 1),
                sshard_config_set_request_timeout_ms(c, 1),
                sshard_config_set_heartbeat_interval_ms(c, 1),
                sshard_config_set_worker_threads(c, 1),
                sshard_config_set_caller_driven_io(c, true),
                sshard_config_set_application_name(c, p, n),
                sshard_config_set_application_version(c, p, n),
                sshard_config_set_consistency(c, 1),
                sshard_config_set_serial_consistency(c, 8),
                sshard_config_set_page_size(c, 1),
                sshard_config_set_keyspace(c, p, n),
                sshard_config_set_tablet_awareness(c, true),
                sshard_config_set_client_timestamps(std::ptr::null_mut(), true),
            ];
            for (i, r) in results.iter().enumerate() {
                assert_eq!(*r, SSHARD_STATUS_NULL_ARGUMENT, "call {i}");
            }
            assert_eq!(sshard_config_free(c), 0);
            // A NULL string pointer with a non-zero length.
            let mut cfg = null_mut();
            assert_eq!(sshard_config_new(&mut cfg), 0);
            assert_eq!(
                sshard_config_add_contact_point(cfg, std::ptr::null(), 3),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(sshard_config_set_keyspace(cfg, std::ptr::null(), 0), 0);
            assert_eq!(sshard_config_free(cfg), 0);
        }
    }
}

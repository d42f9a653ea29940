//! A session's metrics from C: the totals in a caller-allocated,
//! size-versioned struct (`sshard_session_get_metrics`), and a snapshot
//! (`sshard_session_get_metrics_snapshot`) that holds every node and shard
//! at one moment, however many there are, read by index, and the same
//! figures as Prometheus text. New fields are only ever appended to the
//! structs: a caller built against an older header passes its smaller
//! `sizeof` and gets the fields it knows.

use std::ffi::{c_char, CString};
use std::sync::{Arc, OnceLock};

use super::handle::{arc_free, arc_into_raw, check_index, handle_ref, out_arg, Generational};
use super::session::sshard_session;
use super::status::{sshard_status, Fail, FfiResult};
use crate::runtime;
use crate::session::{LatencySummary, NodeMetrics, SessionMetrics};

/// Version of the `sshard_metrics` and `sshard_node_metrics` layouts this
/// header describes.
pub const SSHARD_METRICS_VERSION: u32 = 4;

/// Latency percentiles in microseconds (from a histogram whose buckets are
/// within 12.5% of the value; 0 before anything was recorded).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct sshard_latency {
    /// Latencies recorded.
    pub count: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl From<&LatencySummary> for sshard_latency {
    fn from(s: &LatencySummary) -> Self {
        sshard_latency {
            count: s.count,
            mean_us: s.mean_us,
            p50_us: s.p50_us,
            p95_us: s.p95_us,
            p99_us: s.p99_us,
            p999_us: s.p999_us,
            max_us: s.max_us,
        }
    }
}

/// A session's totals (see `sshard_session_get_metrics`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sshard_metrics {
    /// Bytes of this struct the library filled in.
    pub struct_size: usize,
    /// `SSHARD_METRICS_VERSION` of the library.
    pub version: u32,
    /// Requests go to their owning shard.
    pub shard_aware: bool,
    /// Nodes known (their details: `sshard_metrics_snapshot_node`).
    pub node_count: u32,
    /// Live connections to all nodes.
    pub connections: u64,
    /// Requests (execute, batch, prepare) accepted from the caller.
    pub requests: u64,
    /// Of those, the ones that failed (the sum of the `errors_*` fields).
    pub errors: u64,
    /// Extra attempts beyond the first of each request.
    pub retries: u64,
    /// Requests that failed with the client-side timeout.
    pub timeouts: u64,
    /// Tables with tablets in the tablet map.
    pub tablet_tables: u64,
    /// Tablets in the tablet map (its size).
    pub tablets: u64,
    /// `tablets-routing-v1` payloads received.
    pub tablet_payloads: u64,
    /// Prepared statements the session's cache keeps alive (at most the
    /// config's `prepared_cache_size`).
    pub prepared_cached: u64,
    /// Requests admitted and not yet completed.
    pub in_flight: u64,
    /// Speculative attempts started.
    pub speculative_executions: u64,
    /// Failed with READ_TIMEOUT or WRITE_TIMEOUT.
    pub errors_server_timeout: u64,
    /// Failed with UNAVAILABLE.
    pub errors_unavailable: u64,
    /// Failed with OVERLOADED, IS_BOOTSTRAPPING or RATE_LIMIT_REACHED.
    pub errors_overloaded: u64,
    /// Failed with any other server error.
    pub errors_server_other: u64,
    /// Failed because a connection broke or the server broke the protocol.
    pub errors_connection: u64,
    /// Failed with no node to try.
    pub errors_no_host: u64,
    /// Refused by the client (bad arguments, closed session).
    pub errors_client: u64,
    /// Latency of caller requests, admission to completion.
    pub latency: sshard_latency,
    /// Retry decisions (version 3): sent again to the same node and shard.
    pub retry_same_target: u64,
    /// Sent to the next node of the plan.
    pub retry_next_target: u64,
    /// Sent again at a lower consistency (`SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY`).
    pub retry_downgraded: u64,
    /// Write timeouts reported as success (downgrading policy: some
    /// replica took the write).
    pub retry_ignored: u64,
    /// Errors the policy could have retried and returned instead.
    pub retry_rethrown: u64,
    /// Requests a speculative execution answered first (version 4; the
    /// attempts started are `speculative_executions`).
    pub speculative_wins: u64,
}

/// One node of a metrics snapshot (see `sshard_metrics_snapshot_node`).
/// Its pointers stay valid as long as the snapshot.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sshard_node_metrics {
    /// Bytes of this struct the library filled in.
    pub struct_size: usize,
    /// `address:port`, NUL-terminated, `address_len` bytes before the NUL.
    pub address: *const c_char,
    pub address_len: usize,
    /// Datacenter, NUL-terminated.
    pub datacenter: *const c_char,
    pub datacenter_len: usize,
    /// Rack, NUL-terminated.
    pub rack: *const c_char,
    pub rack_len: usize,
    /// Host id (uuid bytes).
    pub host_id: [u8; 16],
    /// Up as far as the driver knows.
    pub up: bool,
    /// New connections to this node use the shard-aware port.
    pub shard_aware_port_in_use: bool,
    /// Shards of the node (0: not known yet or not sharded).
    pub nr_shards: u32,
    /// Entries of `connections_per_shard` and `requests_per_shard`.
    pub shard_count: u32,
    /// Live connections per shard (index = shard).
    pub connections_per_shard: *const u32,
    /// Attempts sent per shard (index = shard).
    pub requests_per_shard: *const u64,
    /// Live connections to the node.
    pub connections: u64,
    /// Attempts sent to the node (every shard and `requests_other`).
    pub requests: u64,
    /// Attempts on connections of unknown shard.
    pub requests_other: u64,
    /// Attempts that failed on the node.
    pub errors: u64,
    /// Connections established through the shard-aware port.
    pub opened_shard_aware: u64,
    /// Connections established through the regular port.
    pub opened_regular: u64,
    /// Shard-aware attempts that could not connect (refused, timed out, no
    /// free source port); retried through the shard-aware port unless the
    /// port is judged unreachable, then through the regular port.
    pub shard_aware_fallbacks: u64,
    /// Shard-aware connections that landed on another shard (NAT).
    pub nat_detections: u64,
    /// Latency of attempts on the node.
    pub latency: sshard_latency,
}

/// A session's metrics at one moment. Shared and thread-safe; free with
/// `sshard_metrics_snapshot_free`.
pub struct sshard_metrics_snapshot {
    generation: u64,
    totals: sshard_metrics,
    nodes: Vec<NodeEntry>,
    metrics: SessionMetrics,
    /// Made on first request.
    prometheus: OnceLock<CString>,
}

// SAFETY: the raw pointers inside `sshard_node_metrics` point into the
// snapshot's own immutable `NodeEntry` data, which moves with it and is
// never written after construction.
unsafe impl Send for sshard_metrics_snapshot {}
// SAFETY: as above; every field is read-only once built (`OnceLock` is
// Sync).
unsafe impl Sync for sshard_metrics_snapshot {}

impl Generational for sshard_metrics_snapshot {
    fn generation(&self) -> u64 {
        self.generation
    }
}

struct NodeEntry {
    c: sshard_node_metrics,
    // Owned here; `c` points into them (their heap buffers do not move).
    _address: CString,
    _datacenter: CString,
    _rack: CString,
    _connections: Box<[u32]>,
    _requests: Box<[u64]>,
}

fn sat32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A C string of `text` (an interior NUL, never expected in these names,
/// ends it there).
fn c_string(text: &str) -> CString {
    let end = text.find('\0').unwrap_or(text.len());
    CString::new(&text[..end]).unwrap_or_default()
}

fn node_entry(node: &NodeMetrics) -> NodeEntry {
    let address = c_string(&node.address.to_string());
    let datacenter = c_string(&node.datacenter);
    let rack = c_string(&node.rack);
    let shards = node
        .connections_per_shard
        .len()
        .max(node.requests_per_shard.len());
    let mut connections = vec![0u32; shards].into_boxed_slice();
    for (dst, n) in connections.iter_mut().zip(&node.connections_per_shard) {
        *dst = sat32(*n);
    }
    let mut requests = vec![0u64; shards].into_boxed_slice();
    requests[..node.requests_per_shard.len()].copy_from_slice(&node.requests_per_shard);
    let c = sshard_node_metrics {
        struct_size: std::mem::size_of::<sshard_node_metrics>(),
        address: address.as_ptr(),
        address_len: address.as_bytes().len(),
        datacenter: datacenter.as_ptr(),
        datacenter_len: datacenter.as_bytes().len(),
        rack: rack.as_ptr(),
        rack_len: rack.as_bytes().len(),
        host_id: node.host_id,
        up: node.up,
        shard_aware_port_in_use: node.shard_aware_port_in_use,
        nr_shards: node.nr_shards.map_or(0, u32::from),
        shard_count: sat32(shards),
        connections_per_shard: connections.as_ptr(),
        requests_per_shard: requests.as_ptr(),
        connections: node.connections() as u64,
        requests: node.requests(),
        requests_other: node.requests_other,
        errors: node.errors,
        opened_shard_aware: node.pool.opened_shard_aware,
        opened_regular: node.pool.opened_regular,
        shard_aware_fallbacks: node.pool.shard_aware_failures,
        nat_detections: node.pool.nat_detections,
        latency: (&node.latency).into(),
    };
    NodeEntry {
        c,
        _address: address,
        _datacenter: datacenter,
        _rack: rack,
        _connections: connections,
        _requests: requests,
    }
}

/// The C totals of `m`.
fn totals(m: &SessionMetrics, shard_aware: bool) -> sshard_metrics {
    let e = &m.errors_by_kind;
    sshard_metrics {
        struct_size: std::mem::size_of::<sshard_metrics>(),
        version: SSHARD_METRICS_VERSION,
        shard_aware,
        node_count: sat32(m.nodes.len()),
        connections: m.connections() as u64,
        requests: m.requests,
        errors: m.errors,
        retries: m.retries,
        timeouts: e.client_timeouts,
        tablet_tables: m.tablets.tables as u64,
        tablets: m.tablets.tablets as u64,
        tablet_payloads: m.tablets.payloads_received,
        prepared_cached: m.prepared_cached as u64,
        in_flight: m.in_flight,
        speculative_executions: m.speculative_executions,
        errors_server_timeout: e.server_timeouts,
        errors_unavailable: e.unavailable,
        errors_overloaded: e.overloaded,
        errors_server_other: e.other_server,
        errors_connection: e.connection,
        errors_no_host: e.no_host,
        errors_client: e.client,
        latency: (&m.latency).into(),
        retry_same_target: m.retry_decisions.same_target,
        retry_next_target: m.retry_decisions.next_target,
        retry_downgraded: m.retry_decisions.downgraded,
        retry_ignored: m.retry_decisions.ignored,
        retry_rethrown: m.retry_decisions.rethrown,
        speculative_wins: m.speculative_wins,
    }
}

/// Copies the leading `size` bytes of `value` (at most its size) to the
/// caller's `out`, with `struct_size` (its first field) saying how many.
///
/// # Safety
/// `out` is NULL or `size` writable bytes; `T` is a `repr(C)` struct that
/// starts with a `usize` byte count.
unsafe fn write_versioned<T: Copy>(
    mut value: T,
    out: *mut T,
    size: usize,
    what: &'static str,
) -> FfiResult {
    if out.is_null() {
        return Err(Fail::null(what));
    }
    let minimum = std::mem::size_of::<usize>() + std::mem::size_of::<u32>();
    if size < minimum {
        return Err(Fail::invalid(format!(
            "{what} size {size} is below {minimum}"
        )));
    }
    let n = size.min(std::mem::size_of::<T>());
    let start = (&mut value as *mut T).cast::<usize>();
    // SAFETY: every versioned struct starts with its `usize` byte count
    // (contract), and `value` is our own properly aligned local.
    unsafe { start.write(n) };
    // SAFETY: `out` is non-NULL with `size >= n` writable bytes (contract);
    // the source is our local of at least `n` bytes; they cannot overlap.
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), out.cast::<u8>(), n)
    };
    Ok(())
}

/// Fills the caller's `metrics` (of `metrics_size` bytes, normally
/// `sizeof(sshard_metrics)`; a smaller size from an older header gets the
/// leading fields) with the session's totals now.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_get_metrics(
    session: *const sshard_session,
    metrics: *mut sshard_metrics,
    metrics_size: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { handle_ref(session, "session") }?;
        let session = s.rust_session();
        let m = totals(&session.metrics(), session.is_shard_aware());
        // SAFETY: `metrics` is NULL or `metrics_size` writable bytes (API
        // contract); `sshard_metrics` starts with `struct_size`.
        unsafe { write_versioned(m, metrics, metrics_size, "metrics") }
    }
}

/// Every metric of the session now, nodes and shards included: a new
/// snapshot, freed with `sshard_metrics_snapshot_free`.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_get_metrics_snapshot(
    session: *const sshard_session,
    snapshot: *mut *const sshard_metrics_snapshot,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { handle_ref(session, "session") }?;
        let out = out_arg(snapshot, "snapshot")?;
        let session = s.rust_session();
        let metrics = session.metrics();
        out.write(arc_into_raw(Arc::new(sshard_metrics_snapshot {
            generation: runtime::generation(),
            totals: totals(&metrics, session.is_shard_aware()),
            nodes: metrics.nodes.iter().map(node_entry).collect(),
            metrics,
            prometheus: OnceLock::new(),
        })));
        Ok(())
    }
}

/// Releases the snapshot (NULL: no-op); its node views end with it.
#[no_mangle]
pub unsafe extern "C" fn sshard_metrics_snapshot_free(
    snapshot: *const sshard_metrics_snapshot,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a reference the caller gives up (API contract).
        unsafe { arc_free(snapshot) }
    }
}

/// The snapshot's totals, as `sshard_session_get_metrics` gives them.
#[no_mangle]
pub unsafe extern "C" fn sshard_metrics_snapshot_totals(
    snapshot: *const sshard_metrics_snapshot,
    metrics: *mut sshard_metrics,
    metrics_size: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live snapshot (API contract).
        let s = unsafe { handle_ref(snapshot, "snapshot") }?;
        // SAFETY: `metrics` is NULL or `metrics_size` writable bytes (API
        // contract); `sshard_metrics` starts with `struct_size`.
        unsafe { write_versioned(s.totals, metrics, metrics_size, "metrics") }
    }
}

/// The number of nodes in the snapshot.
#[no_mangle]
pub unsafe extern "C" fn sshard_metrics_snapshot_node_count(
    snapshot: *const sshard_metrics_snapshot,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live snapshot (API contract).
        let s = unsafe { handle_ref(snapshot, "snapshot") }?;
        out_arg(count, "count")?.write(s.nodes.len());
        Ok(())
    }
}

/// Node `index` (in the session's node order) into the caller's `node` of
/// `node_size` bytes (normally `sizeof(sshard_node_metrics)`). Its
/// pointers stay valid until the snapshot is freed.
#[no_mangle]
pub unsafe extern "C" fn sshard_metrics_snapshot_node(
    snapshot: *const sshard_metrics_snapshot,
    index: usize,
    node: *mut sshard_node_metrics,
    node_size: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live snapshot (API contract).
        let s = unsafe { handle_ref(snapshot, "snapshot") }?;
        let i = check_index(index, s.nodes.len())?;
        // SAFETY: `node` is NULL or `node_size` writable bytes (API
        // contract); `sshard_node_metrics` starts with `struct_size`.
        unsafe { write_versioned(s.nodes[i].c, node, node_size, "node") }
    }
}

/// The snapshot in the Prometheus text format (version 0.0.4): `text` is
/// NUL-terminated, `len` bytes before the NUL, valid until the snapshot
/// is freed.
#[no_mangle]
pub unsafe extern "C" fn sshard_metrics_snapshot_prometheus(
    snapshot: *const sshard_metrics_snapshot,
    text: *mut *const c_char,
    len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live snapshot (API contract).
        let s = unsafe { handle_ref(snapshot, "snapshot") }?;
        let text = out_arg(text, "text")?;
        let len = out_arg(len, "len")?;
        let rendered = s
            .prometheus
            .get_or_init(|| c_string(&s.metrics.to_prometheus()));
        text.write(rendered.as_ptr());
        len.write(rendered.as_bytes().len());
        Ok(())
    }
}

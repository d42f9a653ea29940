//! `sshard_metrics`: a session's counters in a caller-allocated,
//! size-versioned struct. New fields are only ever appended: a caller
//! built against an older header passes its smaller `sizeof` and gets the
//! fields it knows.

use std::ffi::c_char;

use super::handle::{handle_ref, Generational as _};
use super::session::sshard_session;
use super::status::{sshard_status, Fail};
use crate::session::SessionMetrics;

/// Nodes reported in `sshard_metrics.nodes` (more are counted in
/// `node_count` but not detailed).
pub const SSHARD_METRICS_MAX_NODES: usize = 32;
/// Shards reported per node (more are summed into `requests_other`).
pub const SSHARD_METRICS_MAX_SHARDS: usize = 64;
/// Version of the `sshard_metrics` layout this header describes.
pub const SSHARD_METRICS_VERSION: u32 = 1;

/// One node's counters.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sshard_node_metrics {
    /// `address:port`, NUL-terminated.
    pub address: [c_char; 64],
    /// Host id (uuid bytes).
    pub host_id: [u8; 16],
    /// Up as far as the driver knows.
    pub up: bool,
    /// New connections to this node use the shard-aware port.
    pub shard_aware_port_in_use: bool,
    /// Shards of the node (0: not known yet or not sharded).
    pub nr_shards: u32,
    /// Live connections to the node.
    pub connections: u32,
    /// Live connections per shard (index = shard).
    pub connections_per_shard: [u32; SSHARD_METRICS_MAX_SHARDS],
    /// Requests sent to the node (every attempt).
    pub requests: u64,
    /// Requests sent per shard (index = shard).
    pub requests_per_shard: [u64; SSHARD_METRICS_MAX_SHARDS],
    /// Requests on connections of unknown shard (or past the last slot).
    pub requests_other: u64,
}

/// A session's counters (see `sshard_session_get_metrics`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sshard_metrics {
    /// Bytes of this struct the library filled in.
    pub struct_size: usize,
    /// `SSHARD_METRICS_VERSION` of the library.
    pub version: u32,
    /// Requests go to their owning shard.
    pub shard_aware: bool,
    /// Nodes known (may exceed `SSHARD_METRICS_MAX_NODES`).
    pub node_count: u32,
    /// Live connections to all nodes.
    pub connections: u64,
    /// Requests (execute, batch, prepare) accepted from the caller.
    pub requests: u64,
    /// Of those, the ones that failed.
    pub errors: u64,
    /// Extra attempts beyond the first of each request.
    pub retries: u64,
    /// Requests that failed with a client-side timeout.
    pub timeouts: u64,
    /// Tables with tablets in the tablet map.
    pub tablet_tables: u64,
    /// Tablets in the tablet map (its size).
    pub tablets: u64,
    /// `tablets-routing-v1` payloads received.
    pub tablet_payloads: u64,
    /// The first `min(node_count, SSHARD_METRICS_MAX_NODES)` nodes.
    pub nodes: [sshard_node_metrics; SSHARD_METRICS_MAX_NODES],
    /// Prepared statements the session's cache keeps alive (at most the
    /// config's `prepared_cache_size`).
    pub prepared_cached: u64,
}

const NODE_ZERO: sshard_node_metrics = sshard_node_metrics {
    address: [0; 64],
    host_id: [0; 16],
    up: false,
    shard_aware_port_in_use: false,
    nr_shards: 0,
    connections: 0,
    connections_per_shard: [0; SSHARD_METRICS_MAX_SHARDS],
    requests: 0,
    requests_per_shard: [0; SSHARD_METRICS_MAX_SHARDS],
    requests_other: 0,
};

fn sat32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Converts the Rust metrics to the C layout.
pub(crate) fn to_c(m: &SessionMetrics, shard_aware: bool) -> Box<sshard_metrics> {
    let mut out = Box::new(sshard_metrics {
        struct_size: std::mem::size_of::<sshard_metrics>(),
        version: SSHARD_METRICS_VERSION,
        shard_aware,
        node_count: sat32(m.nodes.len()),
        connections: 0,
        requests: m.requests,
        errors: m.errors,
        retries: m.retries,
        timeouts: m.timeouts,
        tablet_tables: m.tablets.tables as u64,
        tablets: m.tablets.tablets as u64,
        tablet_payloads: m.tablets.payloads_received,
        nodes: [NODE_ZERO; SSHARD_METRICS_MAX_NODES],
        prepared_cached: m.prepared_cached as u64,
    });
    for (node, slot) in m.nodes.iter().zip(out.nodes.iter_mut()) {
        let address = node.address.to_string();
        for (dst, src) in slot.address.iter_mut().zip(address.bytes().take(63)) {
            *dst = src as c_char;
        }
        slot.host_id = node.host_id;
        slot.up = node.up;
        slot.shard_aware_port_in_use = node.shard_aware_port_in_use;
        slot.nr_shards = node.nr_shards.map_or(0, u32::from);
        slot.connections = sat32(node.connections_per_shard.iter().sum());
        for (i, c) in node.connections_per_shard.iter().enumerate() {
            if let Some(s) = slot.connections_per_shard.get_mut(i) {
                *s = sat32(*c);
            }
        }
        slot.requests_other = node.requests_other;
        for (i, r) in node.requests_per_shard.iter().enumerate() {
            match slot.requests_per_shard.get_mut(i) {
                Some(s) => *s = *r,
                None => slot.requests_other += *r,
            }
        }
        slot.requests = node.requests_per_shard.iter().sum::<u64>() + node.requests_other;
    }
    out.connections = m
        .nodes
        .iter()
        .map(|n| n.connections_per_shard.iter().sum::<usize>() as u64)
        .sum();
    out
}

/// Fills the caller's `metrics` (of `metrics_size` bytes, normally
/// `sizeof(sshard_metrics)`; a smaller size from an older header gets the
/// leading fields) with the session's counters now.
#[no_mangle]
pub unsafe extern "C" fn sshard_session_get_metrics(
    session: *const sshard_session,
    metrics: *mut sshard_metrics,
    metrics_size: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live session (API contract).
        let s = unsafe { handle_ref(session, "session") }?;
        s.check_generation()?;
        if metrics.is_null() {
            return Err(Fail::null("metrics"));
        }
        let minimum = std::mem::size_of::<usize>() + std::mem::size_of::<u32>();
        if metrics_size < minimum {
            return Err(Fail::invalid(format!("metrics_size {metrics_size} is below {minimum}")));
        }
        let session = s.rust_session();
        let mut m = to_c(&session.metrics(), session.is_shard_aware());
        let n = metrics_size.min(std::mem::size_of::<sshard_metrics>());
        m.struct_size = n;
        // SAFETY: `metrics` is non-NULL and the caller promised
        // `metrics_size >= n` writable bytes; the source is our own struct
        // of at least `n` bytes; they cannot overlap (ours is on the heap,
        // freshly allocated).
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&*m as *const sshard_metrics).cast::<u8>(),
                metrics.cast::<u8>(),
                n,
            )
        };
        Ok(())
    }
}

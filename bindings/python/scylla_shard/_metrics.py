"""A session's metrics as Python dicts, read from one snapshot of the C API
(`sshard_session_get_metrics_snapshot`): the totals, every node with its
shards, and the Prometheus text. The library computes every figure; this
module only copies them out."""

import uuid

from scylla_shard._native import ffi, lib
from scylla_shard._errors import check as _check

_TOTAL_COUNTERS = (
    "connections", "requests", "errors", "retries", "timeouts", "tablet_tables", "tablets",
    "tablet_payloads", "prepared_cached", "in_flight", "speculative_executions",
    "errors_server_timeout", "errors_unavailable", "errors_overloaded", "errors_server_other",
    "errors_connection", "errors_no_host", "errors_client",
    "retry_same_target", "retry_next_target", "retry_downgraded", "retry_ignored",
    "retry_rethrown", "speculative_wins",
)
_NODE_COUNTERS = (
    "connections", "requests", "requests_other", "errors", "opened_shard_aware",
    "opened_regular", "shard_aware_fallbacks", "nat_detections",
)
_LATENCY_FIELDS = ("count", "mean_us", "p50_us", "p95_us", "p99_us", "p999_us", "max_us")
_TOTALS_SIZE = ffi.sizeof("sshard_metrics")
_NODE_SIZE = ffi.sizeof("sshard_node_metrics")


def _latency(latency):
    """{count, mean_us, p50_us, p95_us, p99_us, p999_us, max_us}."""
    return {name: getattr(latency, name) for name in _LATENCY_FIELDS}


def _text(pointer, length):
    return ffi.unpack(pointer, length).decode("utf-8", "replace") if length else ""


def _node(n):
    shards = n.shard_count
    node = {
        "address": _text(n.address, n.address_len),
        "datacenter": _text(n.datacenter, n.datacenter_len),
        "rack": _text(n.rack, n.rack_len),
        "host_id": str(uuid.UUID(bytes=bytes(ffi.buffer(n.host_id, 16)))),
        "up": bool(n.up),
        "shard_aware_port": bool(n.shard_aware_port_in_use),
        "shards": n.nr_shards,
        # Indexed by shard number, 0 .. shards - 1, as the server numbers them.
        "connections_per_shard": list(ffi.unpack(n.connections_per_shard, shards)) if shards else [],
        "requests_per_shard": list(ffi.unpack(n.requests_per_shard, shards)) if shards else [],
        "latency": _latency(n.latency),
    }
    for name in _NODE_COUNTERS:
        node[name] = getattr(n, name)
    return node


class _Snapshot(object):
    """One moment of a session's metrics; freed on leaving the block."""

    def __init__(self, handle):
        out = ffi.new("const sshard_metrics_snapshot **")
        _check(lib.sshard_session_get_metrics_snapshot(handle, out))
        self._snapshot = out[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        lib.sshard_metrics_snapshot_free(self._snapshot)
        self._snapshot = ffi.NULL

    def totals(self):
        m = ffi.new("sshard_metrics *")
        _check(lib.sshard_metrics_snapshot_totals(self._snapshot, m, _TOTALS_SIZE))
        out = {"shard_aware": bool(m.shard_aware), "node_count": m.node_count,
               "latency": _latency(m.latency)}
        for name in _TOTAL_COUNTERS:
            out[name] = getattr(m, name)
        return out

    def nodes(self):
        count = ffi.new("size_t *")
        _check(lib.sshard_metrics_snapshot_node_count(self._snapshot, count))
        n = ffi.new("sshard_node_metrics *")
        nodes = []
        for i in range(count[0]):
            _check(lib.sshard_metrics_snapshot_node(self._snapshot, i, n, _NODE_SIZE))
            nodes.append(_node(n))
        return nodes

    def prometheus(self):
        text = ffi.new("const char **")
        length = ffi.new("size_t *")
        _check(lib.sshard_metrics_snapshot_prometheus(self._snapshot, text, length))
        return _text(text[0], length[0])


def read(handle):
    """Totals and nodes, all from one moment."""
    with _Snapshot(handle) as snapshot:
        out = snapshot.totals()
        out["nodes"] = snapshot.nodes()
    return out


def shard_aware_stats(handle):
    """scylla-driver's shape: {"host:port": {"shards_count": S, "connected":
    shards with at least one connection}} per node."""
    with _Snapshot(handle) as snapshot:
        nodes = snapshot.nodes()
    return {n["address"]: {"shards_count": n["shards"],
                           "connected": sum(1 for c in n["connections_per_shard"] if c > 0)}
            for n in nodes}


def prometheus(handle):
    """The Prometheus text exposition (format 0.0.4) of the session now."""
    with _Snapshot(handle) as snapshot:
        return snapshot.prometheus()

"""Helpers for driving the real Python `scylla-driver` against the emulator."""

import collections
import struct

from emulator_harness import wait_until

SIMPLE_RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"


def wait_pool_full(session, emu, nodes=None, timeout=30.0, port=None):
    """Poll (bounded) until the driver has a connection to every shard of the
    given nodes (default: all) and the emulator sees a connection on every
    shard of those nodes. `port`: the CQL port the driver uses (default the
    emulator's plain one). Returns the driver's shard_aware_stats()."""
    nodes = list(range(emu.nodes)) if nodes is None else list(nodes)
    expected = {"%s:%d" % (emu.ip(n), port or emu.port) for n in nodes}
    state = {}

    def full():
        stats = session.cluster.shard_aware_stats() or {}
        state["stats"] = stats
        missing = expected - set(stats)
        if missing:
            state["missing hosts"] = sorted(missing)
            return False
        short = {ep: s for ep, s in stats.items() if ep in expected
                 and (s["shards_count"] != emu.shards or s["connected"] != s["shards_count"])}
        state["not full"] = short
        return not short and stats

    stats = wait_until(full, timeout, interval=0.1, describe=lambda: state,
                       what="the driver's pool to hold a connection per shard on %s" % sorted(expected))

    def emu_full():
        snap = emu.snapshot()
        state["emulator missing (node, shard)"] = [
            (n, s) for n in nodes for s in range(emu.shards)
            if snap.get("emulator_connections_current", node=n, shard=s) < 1]
        return not state["emulator missing (node, shard)"]

    wait_until(emu_full, timeout, interval=0.1, describe=lambda: state,
               what="the emulator to report a connection on every shard")
    return stats


def execute_windowed(session, statement, params_list, window=100):
    """execute_async with at most `window` requests in flight; results in order.
    Each result() is bounded by the driver's request timeout."""
    results = [None] * len(params_list)
    inflight = collections.deque()
    for i, params in enumerate(params_list):
        inflight.append((i, session.execute_async(statement, params)))
        if len(inflight) >= window:
            j, fut = inflight.popleft()
            results[j] = fut.result()
    while inflight:
        j, fut = inflight.popleft()
        results[j] = fut.result()
    return results


def composite_routing_key(*components):
    """Routing key of a composite partition key from already-serialized parts:
    each component is [u16 length][bytes][0x00]."""
    if len(components) == 1:
        return components[0]
    return b"".join(struct.pack(">H", len(c)) + c + b"\x00" for c in components)


def int_bytes(v):
    return struct.pack(">i", v)


def text_bytes(s):
    return s.encode("utf-8")


def assert_routing(delta, emu, nodes=None, require_every_shard=True, min_requests=1):
    """Zero misroutes; requests counted on every shard of `nodes` (default all)."""
    summary = delta.routing_summary()
    assert summary["misrouted_node"] == 0, "misrouted (node) requests: %r\nper shard: %r" % (
        summary, delta.per_shard("emulator_misrouted_node_total"))
    assert summary["misrouted_shard"] == 0, "misrouted (shard) requests: %r\nper shard: %r" % (
        summary, delta.per_shard("emulator_misrouted_shard_total"))
    assert summary["requests"] >= min_requests, summary
    if require_every_shard:
        nodes = range(emu.nodes) if nodes is None else nodes
        per = delta.per_shard("emulator_requests_total")
        idle = [(n, s) for n in nodes for s in range(emu.shards) if per.get((n, s), 0) <= 0]
        assert not idle, "no requests counted on (node, shard) %r; per shard: %r" % (idle, per)
    return summary


def tablet_last_tokens(count):
    """Scylla's tablet boundaries for a power-of-two tablet count: last tokens."""
    k = count.bit_length() - 1
    assert 1 << k == count
    out = []
    for g in range(count):
        last = ((g + 1) << (64 - k)) - 1 - (1 << 63)
        out.append(min(last, (1 << 63) - 1))
    return out

"""Helpers for the tests of this library's Python binding (scylla_shard)."""

import os

import pytest

from emulator_harness import Emulator, EmulatorError, wait_until

SIMPLE_RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"


def start_emulator(binary, log_dir, nodes=3, shards=4, *flags):
    emu = Emulator(binary, nodes, shards, args=[str(f) for f in flags], log_dir=str(log_dir))
    try:
        emu.start()
    except EmulatorError as e:
        pytest.fail(str(e), pytrace=False)
    return emu


def wait_pools(cluster, emu, timeout=30.0):
    """Until the session holds a connection to every shard of every node."""
    def full():
        stats = cluster.shard_aware_stats() or {}
        return len(stats) == emu.nodes and all(
            s["connected"] == s["shards_count"] == emu.shards for s in stats.values()) and stats
    return wait_until(full, timeout, what="scylla_shard pools on every shard",
                      describe=lambda: cluster.shard_aware_stats())


def assert_no_misroutes(delta, min_requests):
    summary = delta.routing_summary()
    assert summary["misrouted_node"] == 0 and summary["misrouted_shard"] == 0, summary
    routable = delta.get("emulator_routable_requests_total")
    assert routable >= min_requests, (routable, summary)
    return summary


def library_env():
    """Environment for a child interpreter that imports scylla_shard the
    same way this one did."""
    import scylla_shard
    env = dict(os.environ)
    env["SCYLLA_SHARD_LIBRARY"] = scylla_shard.library_path
    return env

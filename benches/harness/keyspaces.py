"""The benchmark keyspaces: their names, replication, and the one way every
benchmark creates and fills them (through the reference client)."""

import os

from . import runner

VNODE_KEYSPACE = "bench"
TABLET_KEYSPACE = "bench_tablets"
VNODE_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
TABLET_REPLICATION = ("{'class': 'NetworkTopologyStrategy', 'datacenter1': 1} "
                      "AND tablets = {'enabled': true, 'initial': %d}")
SETUP_TIMEOUT_S = 120.0


def create_and_fill(cluster, reference, keyspaces, keys, logs, progress=None):
    """Creates each (keyspace, replication) of `keyspaces` with its table and
    inserts every key through `reference`, reading all of them back; raises
    RuntimeError when a row is missing or wrong."""
    settings = runner.Settings(keys=keys, duration=1.0, warmup=0.0, verify_max=keys)
    for keyspace, replication in keyspaces:
        base = runner.client_args(cluster, runner.Case("setup", "schema", 1, keyspace),
                                  settings, tag=0)
        runner.run_plain(reference, base + ["--replication", replication],
                         os.path.join(logs, "schema-%s.log" % keyspace), SETUP_TIMEOUT_S)
        fill = runner.client_args(cluster, runner.Case("fill", "insert", 256, keyspace),
                                  settings, tag=0)
        fill += ["--requests", str(keys), "--warmup-requests", "0"]
        r = runner.run_plain(reference, fill, os.path.join(logs, "fill-%s.log" % keyspace),
                             SETUP_TIMEOUT_S)
        back = r.get("readback", {})
        if r.get("errors") or back.get("mismatches") or back.get("checked") != keys:
            raise RuntimeError("filling %s failed: %r" % (keyspace, r))
        if progress:
            progress("setup: %s filled with %d rows (read back and checked)" % (keyspace, keys))

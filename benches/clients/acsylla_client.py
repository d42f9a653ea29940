"""Benchmark client: acsylla (asyncio Python over a native C++ driver core),
the peer the Python binding is measured against.

Prepared statements, LOCAL_ONE, no compression, token-aware routing (its
default), one asyncio loop with `concurrency` tasks, as the asyncio client
of sshard_python.py. Whether its pools are full is read from its session
metrics (total connections >= nodes x shards when --expect-nodes is given;
the shard count comes from system.local's scylla_nr_shards... not exposed,
so from the emulator-free rule: connections stop growing).
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import sshard_python  # noqa: E402


class AcsyllaClient:
    name = "acsylla"

    def __init__(self, cluster, session):
        self.cluster = cluster
        self.session = session

    def connections(self):
        return int(self.session.metrics().stats_total_connections)

    async def prepare(self, keyspace, table):
        self.insert_stmt = await self.session.create_prepared(common.insert_cql(keyspace, table))
        self.select_stmt = await self.session.create_prepared(common.select_cql(keyspace, table))

    async def request(self, insert, key, value, tag):
        if insert:
            await self.session.execute(self.insert_stmt.bind([key, value, tag]))
            return None
        result = await self.session.execute(self.select_stmt.bind([key]))
        row = result.first()
        return None if row is None else (row.column_value("v"), row.column_value("tag"))

    async def query(self, cql):
        await self.session.execute(__import__("acsylla").create_statement(cql))


async def _wait_pools(client, opts):
    """Until the connection count stops growing for 0.5 s (acsylla does not
    report per-shard connections), at most --pool-timeout."""
    deadline = time.monotonic() + opts.pool_timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = client.connections()
        if n != last:
            last, stable_since = n, time.monotonic()
        elif n > 0 and time.monotonic() - stable_since >= 0.5:
            return True
        await asyncio.sleep(0.05)
    return False


async def _run(opts):
    import acsylla
    host, port = common.split_contact(opts.contact)
    started = time.perf_counter()
    cluster = acsylla.create_cluster([host], port=port, consistency=acsylla.Consistency.LOCAL_ONE,
                                     request_timeout=10.0, connect_timeout=opts.pool_timeout,
                                     protocol_version=4, log_level="error")
    session = await cluster.create_session()
    client = AcsyllaClient(cluster, session)
    try:
        pools_full = await _wait_pools(client, opts)
        connect_s = time.perf_counter() - started
        if opts.workload == "schema":
            await client.query("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s"
                               % (opts.keyspace, opts.replication))
            await client.query(common.table_cql(opts.keyspace, opts.table))
            line = {}
        elif opts.workload == "connect":
            await sshard_python._checkpoint(opts, "pools")
            line = {}
        else:
            await client.prepare(opts.keyspace, opts.table)
            line = await sshard_python._measure(client, opts)
        connections = client.connections()
    finally:
        await session.close()
    line.update({
        "event": "result", "driver": AcsyllaClient.name, "workload": opts.workload,
        "concurrency": opts.concurrency, "keyspace": opts.keyspace, "connect_s": connect_s,
        "pools_full": pools_full, "driver_connections": connections,
        "process_cpu_s": common.rusage(),
    })
    return line


def main(argv=None):
    p = common.parser("acsylla benchmark client")
    opts = common.check_args(p, p.parse_args(argv))
    try:
        line = asyncio.run(_run(opts))
    except Exception as exc:
        common.emit({"event": "error", "driver": AcsyllaClient.name, "message": repr(exc)})
        sys.stderr.write("acsylla: %r\n" % (exc,))
        return 1
    common.emit(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

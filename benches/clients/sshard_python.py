"""Benchmark client: this library's Python binding (`scylla_shard`), the
scylla-driver API on libscylla_shard.

The same calls as the scylla-driver client (python_driver.py): prepared
statements, LOCAL_ONE, no compression, tuple rows, execute_async with a
bounded window, each completion callback starting the next request. With
`--asyncio` the requests are coroutines on one asyncio loop instead
(scylla_shard.aio): a window of `concurrency` tasks, completions drained
from the library's queue by `loop.add_reader`.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def _cluster(opts, cluster_class):
    from scylla_shard import ConsistencyLevel, ExecutionProfile, EXEC_PROFILE_DEFAULT
    from scylla_shard.query import tuple_factory

    host, port = common.split_contact(opts.contact)
    profile = ExecutionProfile(consistency_level=ConsistencyLevel.LOCAL_ONE,
                               row_factory=tuple_factory, request_timeout=10.0)
    return cluster_class(contact_points=[host], port=port, compression=False,
                         connect_timeout=opts.pool_timeout,
                         execution_profiles={EXEC_PROFILE_DEFAULT: profile})


def _pools_full(cluster, opts):
    stats = cluster.shard_aware_stats() or {}
    if not stats or (opts.expect_nodes is not None and len(stats) != opts.expect_nodes):
        return False
    return all(s["connected"] == s["shards_count"] for s in stats.values())


def _connections(cluster):
    stats = cluster.shard_aware_stats() or {}
    return sum(s["connected"] for s in stats.values())


class SshardPython:
    """Threaded flavour: execute_async + add_callbacks (common.Phase)."""
    name = "sshard-python"

    def __init__(self, cluster, session):
        self.cluster = cluster
        self.session = session
        self.insert_stmt = None
        self.select_stmt = None

    @classmethod
    def connect(cls, opts):
        from scylla_shard import Cluster
        cluster = _cluster(opts, Cluster)
        try:
            return cls(cluster, cluster.connect())
        except Exception:
            cluster.shutdown()
            raise

    def pools_full(self, opts):
        return _pools_full(self.cluster, opts)

    def connections(self):
        return _connections(self.cluster)

    def query(self, cql):
        self.session.execute(cql)

    def prepare(self, keyspace, table):
        self.insert_stmt = self.session.prepare(common.insert_cql(keyspace, table))
        self.select_stmt = self.session.prepare(common.select_cql(keyspace, table))

    def start(self, is_insert, key, value, tag, done):
        if is_insert:
            future = self.session.execute_async(self.insert_stmt, (key, value, tag))
            future.add_callbacks(lambda rows: done(None, None), lambda exc: done(None, exc))
        else:
            future = self.session.execute_async(self.select_stmt, (key,))
            future.add_callbacks(lambda rows: done(rows[0] if rows else None, None),
                                 lambda exc: done(None, exc))

    def close(self):
        self.cluster.shutdown()


# ---------------------------------------------------------------------------
# asyncio flavour: its own phases on one loop (common.Phase is thread-based)
# ---------------------------------------------------------------------------

class AsyncPhase:
    """`concurrency` tasks on the loop, each taking numbers until take()
    says stop; records latencies and checks rows like common.Phase."""

    def __init__(self, client, payloads, tag, concurrency, take):
        self.client = client
        self.payloads = payloads
        self.tag = tag
        self.concurrency = concurrency
        self.take = take
        self.stats = common.Stats()

    async def _worker(self):
        client, stats, payloads, tag = self.client, self.stats, self.payloads, self.tag
        perf = time.perf_counter_ns
        while True:
            job = self.take()
            if job is None:
                return
            insert, key, want_tag = job
            started = perf()
            try:
                row = await client.request(insert, key, payloads[key], tag)
                error = None
            except Exception as exc:
                row, error = None, exc
            stats.latencies_ns.append(perf() - started)
            stats.requests += 1
            if error is not None:
                stats.error(error)
            elif not insert:
                stats.check(key, row, payloads[key], want_tag)

    async def run(self, timeout_s):
        await asyncio.wait_for(asyncio.gather(*[self._worker() for _ in range(self.concurrency)]),
                               timeout_s)
        return self.stats


class AsyncClient:
    name = "sshard-python-asyncio"

    def __init__(self, cluster, session):
        self.cluster = cluster
        self.session = session

    async def prepare(self, keyspace, table):
        self.insert_stmt = await self.session.prepare(common.insert_cql(keyspace, table))
        self.select_stmt = await self.session.prepare(common.select_cql(keyspace, table))

    async def request(self, insert, key, value, tag):
        if insert:
            await self.session.execute(self.insert_stmt, (key, value, tag))
            return None
        rs = await self.session.execute(self.select_stmt, (key,))
        return rs.one()


async def _checkpoint(opts, at):
    # checkpoint() blocks on stdin; keep the loop free meanwhile.
    await asyncio.get_running_loop().run_in_executor(None, common.checkpoint, opts, at)


async def _measure(client, opts):
    payloads = [common.payload(k) for k in range(opts.keys)]
    counter = common.Counter()
    c = opts.concurrency
    if opts.requests is not None:
        take = common.numbered(counter, opts.workload, opts.keys, stop_before=opts.warmup_requests)
        warm = await AsyncPhase(client, payloads, opts.tag, c, take).run(common.PHASE_SLACK_S + 3600)
    elif opts.warmup > 0:
        take = common.numbered(counter, opts.workload, opts.keys,
                               stop_at=time.perf_counter() + opts.warmup)
        warm = await AsyncPhase(client, payloads, opts.tag, c, take).run(
            opts.warmup + common.PHASE_SLACK_S)
    else:
        warm = common.Stats()
    await _checkpoint(opts, "measure")
    start = counter.next
    cpu0 = common.rusage()
    t0 = time.perf_counter()
    if opts.requests is not None:
        take = common.numbered(counter, opts.workload, opts.keys,
                               stop_before=start + opts.requests)
        stats = await AsyncPhase(client, payloads, opts.tag, c, take).run(
            common.PHASE_SLACK_S + 3600)
    else:
        take = common.numbered(counter, opts.workload, opts.keys, stop_at=t0 + opts.duration)
        stats = await AsyncPhase(client, payloads, opts.tag, c, take).run(
            opts.duration + common.PHASE_SLACK_S)
    elapsed = time.perf_counter() - t0
    cpu = common.cpu_since(cpu0)
    todo = common.inserted_keys(opts.workload, opts.keys, start, counter.next, opts.verify_max)

    def take_back():
        return (False, todo.pop(), opts.tag) if todo else None

    back = await AsyncPhase(client, payloads, opts.tag,
                            min(common.READBACK_CONCURRENCY, max(len(todo), 1)),
                            take_back).run(common.PHASE_SLACK_S)
    return {
        "requests": stats.requests, "errors": stats.errors, "first_error": stats.first_error,
        "elapsed_s": elapsed, "rps": stats.requests / elapsed if elapsed > 0 else 0.0,
        "cpu_s": cpu, "checked": stats.checked, "mismatches": stats.mismatches,
        "first_mismatch": stats.first_mismatch,
        "readback": {"checked": back.checked, "mismatches": back.mismatches,
                     "errors": back.errors,
                     "first_failure": back.first_mismatch or back.first_error},
        "warmup": {"requests": warm.requests, "errors": warm.errors},
        "latency_us": common.latency_summary_us(stats.latencies_ns),
    }


async def _run_async(opts):
    from scylla_shard import aio
    started = time.perf_counter()
    cluster = _cluster(opts, aio.Cluster)
    session = await cluster.connect()
    client = AsyncClient(cluster, session)
    try:
        deadline = time.monotonic() + opts.pool_timeout
        pools_full = False
        while True:
            if _pools_full(cluster, opts):
                pools_full = True
                break
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        connect_s = time.perf_counter() - started
        if opts.workload == "schema":
            await session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s"
                                  % (opts.keyspace, opts.replication))
            await session.execute(common.table_cql(opts.keyspace, opts.table))
            line = {}
        elif opts.workload == "connect":
            await _checkpoint(opts, "pools")
            line = {}
        else:
            await client.prepare(opts.keyspace, opts.table)
            line = await _measure(client, opts)
        connections = _connections(cluster)
    finally:
        await cluster.shutdown()
    line.update({
        "event": "result", "driver": AsyncClient.name, "workload": opts.workload,
        "concurrency": opts.concurrency, "keyspace": opts.keyspace, "connect_s": connect_s,
        "pools_full": pools_full, "driver_connections": connections,
        "process_cpu_s": common.rusage(),
    })
    return line


def main_async(argv=None):
    p = common.parser(AsyncClient.__doc__ or "sshard-python-asyncio")
    p.add_argument("--asyncio", action="store_true")
    opts = common.check_args(p, p.parse_args(argv))
    try:
        line = asyncio.run(_run_async(opts))
    except Exception as exc:
        common.emit({"event": "error", "driver": AsyncClient.name, "message": repr(exc)})
        sys.stderr.write("%s: %r\n" % (AsyncClient.name, exc))
        return 1
    common.emit(line)
    return 0


if __name__ == "__main__":
    if "--asyncio" in sys.argv[1:]:
        sys.exit(main_async())
    SshardPython.add_arguments = staticmethod(lambda p: p.add_argument("--asyncio",
                                                                        action="store_true"))
    sys.exit(common.main(SshardPython))

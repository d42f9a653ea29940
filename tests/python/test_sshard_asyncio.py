"""scylla_shard.aio and awaitable futures against the emulator: many
concurrent requests drained in batches from the completion queue's
descriptor, paging without blocking the loop, cancellation and timeouts."""

import asyncio
import threading

import pytest

from scylla_shard import OperationTimedOut, SimpleStatement, InvalidRequest, aio
from scylla_shard.cluster import _LoopQueue

from sshard_support import SIMPLE_RF1, start_emulator


@pytest.fixture(scope="module")
def emu(emulator_binary, tmp_path_factory):
    e = start_emulator(emulator_binary, tmp_path_factory.mktemp("emu"))
    yield e
    e.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def _connect(emu, keyspace_name):
    cluster = aio.Cluster([emu.ip(0)], port=emu.port)
    session = await cluster.connect()
    await session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s"
                          % (keyspace_name, SIMPLE_RF1))
    return cluster, session


def _loop_queue(session):
    (queue,) = [q for q in session._session._loop_queues.values()
                if q.loop is asyncio.get_running_loop()]
    assert isinstance(queue, _LoopQueue)
    return queue


def test_ten_thousand_concurrent_requests(emu):
    async def main():
        cluster, session = await _connect(emu, "aks1")
        try:
            await session.execute("CREATE TABLE aks1.t (k int PRIMARY KEY, v text)")
            ins = await session.prepare("INSERT INTO aks1.t (k, v) VALUES (?, ?)")
            sel = await session.prepare("SELECT v FROM aks1.t WHERE k = ?")
            threads_before = threading.active_count()
            queue = _loop_queue(session)
            wakeups = queue.wakeups
            n = 10_000
            await asyncio.gather(*[session.execute(ins, (k, "v%d" % k)) for k in range(n)])
            results = await asyncio.gather(*[session.execute(sel, (k,)) for k in range(n)])
            assert [r.one().v for r in results] == ["v%d" % k for k in range(n)]
            # Completions came in batches: far fewer loop wake-ups than requests,
            # and no thread per request.
            woke = queue.wakeups - wakeups
            assert 0 < woke < n, woke
            assert threading.active_count() <= threads_before + 1
            assert not queue.pending
            m = session.metrics()
            assert m["errors"] == 0 and m["requests"] >= 2 * n
        finally:
            await cluster.shutdown()
    run(main())


def test_async_paging_and_errors(emu):
    async def main():
        cluster, session = await _connect(emu, "aks2")
        try:
            await session.execute("CREATE TABLE aks2.p (pk int, c int, PRIMARY KEY (pk, c))")
            ins = await session.prepare("INSERT INTO aks2.p (pk, c) VALUES (0, ?)")
            await asyncio.gather(*[session.execute(ins, (c,)) for c in range(500)])
            rs = await session.execute(SimpleStatement("SELECT c FROM aks2.p WHERE pk = 0",
                                                       fetch_size=50))
            assert rs.has_more_pages and len(rs.current_rows) == 50
            with pytest.raises(TypeError):
                list(rs)  # would block the loop on the next pages
            assert [r.c async for r in rs] == list(range(500))
            rs = await session.execute(SimpleStatement("SELECT c FROM aks2.p WHERE pk = 0",
                                                       fetch_size=64))
            assert [r.c for r in await rs.all()] == list(range(500))
            with pytest.raises(InvalidRequest):
                await session.execute("SELECT * FROM aks2.missing")
            # A future from the synchronous API is awaitable too, and its
            # callbacks run on the loop's thread.
            fut = session.execute_async("SELECT c FROM aks2.p WHERE pk = 0 LIMIT 1")
            seen = []
            fut.add_callback(lambda rows: seen.append(threading.current_thread()))
            assert (await fut).one().c == 0
            assert seen == [threading.current_thread()]
        finally:
            await cluster.shutdown()
    run(main())


def test_cancellation_and_timeouts(emu):
    async def main():
        cluster, session = await _connect(emu, "aks3")
        try:
            await session.execute("CREATE TABLE aks3.t (k int PRIMARY KEY, v int)")
            ins = await session.prepare("INSERT INTO aks3.t (k, v) VALUES (?, ?)")
            queue = _loop_queue(session)
            for node in range(emu.nodes):
                assert emu.admin(node, "/admin/delay?us=300000")[0] == 200
            try:
                # Cancel tasks awaiting requests: the tasks end at once, the
                # requests complete later in the library and are dropped.
                tasks = [asyncio.ensure_future(session.execute(ins, (k, k))) for k in range(100)]
                await asyncio.sleep(0.05)
                for t in tasks:
                    t.cancel()
                results = await asyncio.gather(*tasks, return_exceptions=True)
                assert all(isinstance(r, asyncio.CancelledError) for r in results)
                # wait_for cancels the same way.
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(session.execute(ins, (1000, 1)), 0.05)
                # The request's own timeout fails it with OperationTimedOut.
                with pytest.raises(OperationTimedOut):
                    await session.execute(ins, (1001, 1), timeout=0.05)
            finally:
                for node in range(emu.nodes):
                    emu.admin(node, "/admin/delay?us=0")
            # The abandoned requests still ran; nothing is left pending.
            deadline = asyncio.get_running_loop().time() + 10
            while queue.pending and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            assert not queue.pending
            rs = await session.execute("SELECT k FROM aks3.t")
            assert {r.k for r in rs} >= set(range(100))
            assert (await session.execute("SELECT v FROM aks3.t WHERE k = 5")).one().v == 5
        finally:
            await cluster.shutdown()
    run(main())

"""asyncio API: the same Cluster and statements, with coroutines.

    from scylla_shard.aio import Cluster
    async with Cluster(["127.0.0.1"]) as cluster:
        session = await cluster.connect()
        rs = await session.execute("SELECT * FROM ks.t WHERE k = %s", (1,))
        async for row in rs:          # later pages are awaited, not blocked on
            ...

Completions reach the loop through the library's completion queue: its
eventfd is watched with `loop.add_reader`, and each wake-up drains every
waiting completion in batches, so thousands of concurrent requests cost a
wake-up per batch, with no thread per request and no call from a library
thread into Python. Cancelling an awaiting task abandons the wait; the
request itself still completes (or times out) in the library.
"""

import asyncio

from scylla_shard import cluster as _sync
from scylla_shard.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile  # noqa: F401 (re-exported)
from scylla_shard._errors import ForkedError, FORKED_MESSAGE

_NOT_SET = _sync._NOT_SET


class AsyncResultSet(_sync.ResultSet):
    """A ResultSet whose next pages are awaited, never blocked on:
    `async for`, `await fetch_next_page()`, `await all()`; `current_rows`,
    `one()`, `has_more_pages` and `paging_state` as in the ResultSet."""

    def __iter__(self):
        if self.has_more_pages:
            raise TypeError("more pages follow: iterate with `async for` (or await all())")
        return iter(self.current_rows)

    async def fetch_next_page(self):
        """Replaces the current page by the next one."""
        if not self.has_more_pages:
            return
        page = await self._session._next_page_on_loop(self._page)
        self._set_page(page)

    async def __aiter__(self):
        while True:
            for row in self.current_rows:
                yield row
            if not self.has_more_pages:
                return
            await self.fetch_next_page()

    async def all(self):
        return [row async for row in self]


class AsyncSession(object):
    """A Session whose requests are coroutines on the running loop."""

    def __init__(self, session):
        self._session = session
        self.cluster = session.cluster

    def __getattr__(self, name):  # defaults, metrics, shard awareness...
        return getattr(self._session, name)

    def execute(self, query, parameters=None, timeout=_NOT_SET,
                execution_profile=EXEC_PROFILE_DEFAULT, paging_state=None, trace=False):
        """Awaitable: the request's AsyncResultSet. Submitted at once."""
        return self._session._execute_on_loop(query, parameters, timeout, execution_profile,
                                              paging_state, trace, AsyncResultSet)

    def execute_async(self, *args, **kwargs):
        """The ResponseFuture itself (awaitable, with add_callbacks)."""
        return self._session.execute_async(*args, **kwargs)

    async def prepare(self, query):
        session = self._session
        queue = session._loop_queue(asyncio.get_running_loop())
        return await session._prepare_future(query, queue)

    async def set_keyspace(self, keyspace):
        await asyncio.get_running_loop().run_in_executor(None, self._session.set_keyspace,
                                                         keyspace)

    async def shutdown(self):
        await asyncio.get_running_loop().run_in_executor(None, self._session.shutdown)
        self._session._close_loop_queues()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.shutdown()


class Cluster(_sync.Cluster):
    """scylla_shard.Cluster whose connect() and shutdown() are coroutines."""

    async def connect(self, keyspace=None):
        # Connecting waits on the library's connect future; a worker thread
        # keeps the loop running meanwhile (once per session, not per request).
        self._check_process()
        session = await asyncio.get_running_loop().run_in_executor(
            None, _sync.Cluster.connect, self, keyspace)
        return AsyncSession(session)

    async def shutdown(self):
        await asyncio.get_running_loop().run_in_executor(None, _sync.Cluster.shutdown, self)
        for session in list(self.sessions):
            session._close_loop_queues()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.shutdown()

    def __enter__(self):
        raise TypeError("use `async with` for scylla_shard.aio.Cluster")


__all__ = ["Cluster", "AsyncSession", "AsyncResultSet", "ForkedError", "FORKED_MESSAGE"]

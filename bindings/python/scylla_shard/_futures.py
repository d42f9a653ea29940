"""Requests in flight: ResponseFuture (result(), callbacks, await), and the
completion queues that complete them: one drained by a thread per cluster,
one per asyncio loop drained by `loop.add_reader` on its eventfd."""

import asyncio
import itertools
import threading

from scylla_shard._native import ffi, lib, OK
from scylla_shard._errors import OperationTimedOut, check as _check, future_exception, \
    raise_status as _raise_status
from scylla_shard.query import PreparedStatement
from scylla_shard.results import ResultSet, _Page, _outs

_PENDING = lib.SSHARD_STATUS_PENDING


class QueryExhausted(Exception):
    """start_fetching_next_page() was called on the last page."""



# ---------------------------------------------------------------------------
# Futures
# ---------------------------------------------------------------------------

class ResponseFuture(object):
    """A request in flight: `.result()` waits for it, `add_callbacks` runs
    code when it completes, and it can be awaited."""

    __slots__ = ("session", "_prepared", "row_factory", "timeout", "_cfut", "_lock", "_done",
                 "_page", "_result", "_exception", "_callbacks", "_errbacks", "_loop_queue",
                 "_aio_future", "__weakref__")

    def __init__(self, session, cfuture, row_factory, timeout, loop_queue=None,
                 prepared=None):
        self.session = session
        self._prepared = prepared
        self.row_factory = row_factory
        self.timeout = timeout
        self._cfut = cfuture  # our reference to the sshard_future; freed in __del__
        self._lock = threading.Lock()
        self._done = False
        self._page = None
        self._result = None
        self._exception = None
        self._callbacks = []
        self._errbacks = []
        self._loop_queue = loop_queue
        self._aio_future = None

    def __del__(self):
        cfut, self._cfut = getattr(self, "_cfut", None), None
        if cfut is not None and lib is not None:
            lib.sshard_future_free(cfut)

    # -- completion -----------------------------------------------------
    def _complete(self, status):
        """Reads the outcome once (from whichever thread sees it first)."""
        with self._lock:
            if self._done:
                return False
            if status == OK:
                try:
                    self._page = self._read_page()
                except BaseException as exc:
                    self._exception = exc
            else:
                self._exception = future_exception(self._cfut, status, timeout=self.timeout,
                                                   contact=self.session.cluster._contact_name())
            self._done = True
            # Kept: they run again for each page start_fetching_next_page() fetches.
            callbacks, errbacks = list(self._callbacks), list(self._errbacks)
        self._run_callbacks(callbacks, errbacks)
        return True

    def _read_page(self):
        out = _outs().result
        _check(lib.sshard_future_get_result(self._cfut, out))
        return _Page(out[0], self._prepared)

    def _callback_value(self):
        page = self._page
        if page is None or not page.has_rows:
            return None
        return self.row_factory(page.column_names, page.rows)

    def _run_callbacks(self, callbacks, errbacks):
        if self._exception is None:
            if callbacks:
                value = self._callback_value()
                for fn, args, kwargs in callbacks:
                    fn(value, *args, **kwargs)
        else:
            for fn, args, kwargs in errbacks:
                fn(self._exception, *args, **kwargs)
        aio = self._aio_future
        if aio is not None:
            self._settle_aio(aio)

    def _settle_aio(self, aio):
        if aio.done():  # the awaiting task was cancelled
            return
        if self._exception is not None:
            aio.set_exception(self._exception)
        else:
            aio.set_result(self._final())

    # -- the caller's side ---------------------------------------------
    def _final(self):
        if self._result is None:
            self._result = ResultSet(self.session, self.row_factory, self._page, self)
        return self._result

    def result(self, timeout=None):
        """The ResultSet (waits for it), or raises the request's error."""
        if not self._done:
            self.session._check_process()
            if timeout is None:
                status = lib.sshard_future_wait(self._cfut)
            else:
                status = lib.sshard_future_wait_timed(self._cfut, int(timeout * 1e6))
                if status == _PENDING:
                    raise OperationTimedOut(errors="result() waited %ss" % timeout,
                                            timeout=timeout)
            if status == lib.SSHARD_STATUS_WOULD_DEADLOCK:
                _raise_status(status)
            self._complete(status)
        if self._exception is not None:
            raise self._exception
        return self._final()

    @property
    def has_more_pages(self):
        return bool(self._page is not None and self._page.has_more_pages)

    def start_fetching_next_page(self):
        """Fetches the page after this one; the callbacks run again with its
        rows (manual paging, as scylla-driver does it)."""
        self.session._check_process()
        with self._lock:
            page = self._page
            if not self._done or page is None or not page.has_more_pages:
                raise QueryExhausted()
            fut = ffi.new("const sshard_future **")
            _check(lib.sshard_session_next_page(self.session._handle, page.handle, fut))
            old, self._cfut = self._cfut, fut[0]
            self._done = False
            self._page = self._result = self._exception = None
        lib.sshard_future_free(old)
        queue = self._loop_queue or self.session.cluster._completions()
        queue.add(self)

    def add_callback(self, fn, *args, **kwargs):
        run = False
        with self._lock:
            if self._done:
                run = self._exception is None
            else:
                self._callbacks.append((fn, args, kwargs))
        if run:
            fn(self._callback_value(), *args, **kwargs)
        return self

    def add_errback(self, fn, *args, **kwargs):
        run = False
        with self._lock:
            if self._done:
                run = self._exception is not None
            else:
                self._errbacks.append((fn, args, kwargs))
        if run:
            fn(self._exception, *args, **kwargs)
        return self

    def add_callbacks(self, callback, errback, callback_args=(), callback_kwargs=None,
                      errback_args=(), errback_kwargs=None):
        with self._lock:
            done = self._done
            if not done:
                self._callbacks.append((callback, callback_args, callback_kwargs or {}))
                self._errbacks.append((errback, errback_args, errback_kwargs or {}))
        if done:
            if self._exception is None:
                callback(self._callback_value(), *callback_args, **(callback_kwargs or {}))
            else:
                errback(self._exception, *errback_args, **(errback_kwargs or {}))

    def clear_callbacks(self):
        with self._lock:
            self._callbacks, self._errbacks = [], []

    def __await__(self):
        return self._awaitable().__await__()

    def _awaitable(self):
        loop = asyncio.get_running_loop()
        aio = loop.create_future()
        with self._lock:
            done = self._done
            if not done:
                if self._loop_queue is None or self._loop_queue.loop is not loop:
                    # Completed on another thread: hand over to this loop.
                    def forward(_value=None):
                        loop.call_soon_threadsafe(self._settle_aio, aio)
                    self._callbacks.append((forward, (), {}))
                    self._errbacks.append((forward, (), {}))
                else:
                    self._aio_future = aio
        if done:
            self._settle_aio(aio)
        return aio


# ---------------------------------------------------------------------------
# Completion queues
# ---------------------------------------------------------------------------

class _CompletionQueue(object):
    """An sshard_queue with the futures it will complete, by token."""

    BATCH = 256

    def __init__(self):
        out = ffi.new("const sshard_queue **")
        _check(lib.sshard_queue_new(out))
        self.handle = out[0]
        self.pending = {}
        self.tokens = itertools.count(1)  # next() is atomic under the GIL
        self._events = ffi.new("sshard_event[]", self.BATCH)
        self._count = ffi.new("size_t *")

    def add(self, response_future):
        token = next(self.tokens)
        self.pending[token] = response_future
        status = lib.sshard_future_set_queue(response_future._cfut, self.handle, token)
        if status != OK:
            del self.pending[token]
            _raise_status(status)

    def dispatch(self, count):
        events = self._events
        pending = self.pending
        for i in range(count):
            event = events[i]
            lib.sshard_future_free(event.future)
            rf = pending.pop(event.token, None)
            if rf is not None:
                try:
                    rf._complete(event.status)
                except Exception:
                    import traceback
                    traceback.print_exc()

    def free(self):
        handle, self.handle = self.handle, None
        if handle is not None:
            lib.sshard_queue_free(handle)


class _ThreadQueue(_CompletionQueue):
    """Drained by one daemon thread per cluster, started on first use."""

    def __init__(self):
        _CompletionQueue.__init__(self)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="scylla_shard-completions",
                                        daemon=True)
        self._thread.start()

    def _run(self):
        events, count = self._events, self._count
        while not self._stopping:
            status = lib.sshard_queue_wait(self.handle, events, self.BATCH, 200000, count)
            if status != OK:
                break
            if count[0]:
                self.dispatch(count[0])

    def stop(self):
        self._stopping = True
        if self._thread is not threading.current_thread():
            self._thread.join(5)


class _LoopRequest(object):
    """A request awaited on an asyncio loop (scylla_shard.aio): completes an
    asyncio future directly, with no ResponseFuture in between."""

    __slots__ = ("aio", "cfut", "session", "row_factory", "timeout", "prepared", "wrap")

    def __init__(self, aio, cfut, session, row_factory, timeout, prepared, wrap):
        self.aio = aio
        self.cfut = cfut
        self.session = session
        self.row_factory = row_factory
        self.timeout = timeout
        self.prepared = prepared
        self.wrap = wrap

    def _complete(self, status):
        cfut, self.cfut = self.cfut, None
        aio = self.aio
        try:
            if aio.done():  # the awaiting task was cancelled
                return
            if status != OK:
                aio.set_exception(future_exception(
                    cfut, status, timeout=self.timeout,
                    contact=self.session.cluster._contact_name()))
                return
            out = _outs().result
            _check(lib.sshard_future_get_result(cfut, out))
            page = _Page(out[0], self.prepared)
            wrap = self.wrap
            if wrap is _Page:  # a next page, for a ResultSet that has one
                aio.set_result(page)
            else:
                aio.set_result((wrap or ResultSet)(self.session, self.row_factory, page))
        except BaseException as exc:
            if not aio.done():
                aio.set_exception(exc)
        finally:
            lib.sshard_future_free(cfut)


class _LoopQueue(_CompletionQueue):
    """Drained on an asyncio loop: `loop.add_reader` on the queue's eventfd,
    each wake-up drains every waiting completion in batches."""

    def __init__(self, loop):
        _CompletionQueue.__init__(self)
        self.loop = loop
        fd = ffi.new("int32_t *")
        _check(lib.sshard_queue_fd(self.handle, fd))
        self.fd = fd[0]
        loop.add_reader(self.fd, self.drain)
        self.wakeups = 0

    def drain(self):
        self.wakeups += 1
        events, count = self._events, self._count
        while True:
            lib.sshard_queue_poll(self.handle, events, self.BATCH, count)
            n = count[0]
            if n:
                self.dispatch(n)
            if n < self.BATCH:
                return

    def close(self):
        if self.handle is not None:
            try:
                self.loop.remove_reader(self.fd)
            except Exception:
                pass
            self.free()


class _PrepareFuture(ResponseFuture):
    """A prepare in flight; yields a PreparedStatement."""

    __slots__ = ("query",)

    def __init__(self, session, cfuture, query, queue):
        ResponseFuture.__init__(self, session, cfuture, None, None,
                                queue if isinstance(queue, _LoopQueue) else None)
        self.query = query

    def _read_page(self):
        out = ffi.new("const sshard_prepared **")
        _check(lib.sshard_future_get_prepared(self._cfut, out))
        return PreparedStatement(out[0], self.query, self.session.keyspace)

    def _callback_value(self):
        return self._page

    def _final(self):
        return self._page

    def result_prepared(self):
        return self.result()

"""Cluster and Session with scylla-driver's names and behaviour
(`cassandra.cluster`), on libscylla_shard's core. Futures and completion
queues are in _futures.py, results in results.py.

Threads: a synchronous `execute` waits on its request's future in the
calling thread (the GIL released). `execute_async` outside asyncio delivers
completions to the cluster's completion queue, drained by one Python thread
per cluster (scylla-driver's event-loop thread): callbacks run there. Inside
a running asyncio loop, `execute_async` delivers to that loop's queue,
drained by `loop.add_reader` on its descriptor (see scylla_shard.aio): no
thread hop, callbacks on the loop. The library never calls into Python.
"""

import asyncio
import os
import threading
import weakref

from scylla_shard import _metrics, _tls
from scylla_shard._native import ffi, lib, OK
from scylla_shard._errors import (DriverException, ForkedError, FORKED_MESSAGE,
                                  NoHostAvailable, OperationTimedOut, check as _check,
                                  future_exception, raise_status as _raise_status)
from scylla_shard._futures import (QueryExhausted, ResponseFuture, _LoopQueue,  # noqa: F401
                                   _LoopRequest, _PrepareFuture, _ThreadQueue)
from scylla_shard.results import ResultSet, _Page
from scylla_shard.consistency import ConsistencyLevel
from scylla_shard.query import (BatchStatement, BoundStatement, FETCH_SIZE_UNSET,
                                PreparedStatement, SimpleStatement, named_tuple_factory,
                                new_simple_statement)
from scylla_shard._codec import bind_params
from scylla_shard.metadata import Metadata
from scylla_shard.policies import _apply_speculation, _retry_policy_value

__all__ = ["Cluster", "Session", "ResponseFuture", "ResultSet", "ExecutionProfile",
           "EXEC_PROFILE_DEFAULT", "NoHostAvailable", "QueryExhausted"]

EXEC_PROFILE_DEFAULT = object()
_NOT_SET = object()
_PENDING = lib.SSHARD_STATUS_PENDING
_CONNECT_TIMEOUT = 5.0
# One runtime thread per session by default: it carries far more requests
# than a Python process can submit, and a second one costs about 4 us of CPU
# per request in wake-ups between threads (bindings/python/README.md). Pre-fork
# servers run many processes, where CPU per request is what counts.
# 0: one thread per CPU, at most 4.
_WORKER_THREADS = 1
_SHUTDOWN_WAIT_US = 60 * 1000 * 1000


# Objects remember the pid they were made in. The pid is read on every check
# (about 0.15 us) rather than cached by an os.register_at_fork hook: servers
# such as uWSGI fork from C, where Python's fork hooks do not run.
_getpid = os.getpid


def _utf8(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


class ExecutionProfile(object):
    """Per-request defaults: consistency, serial consistency, timeout (s),
    retry policy, speculative execution policy, row factory;
    `load_balancing_policy` gives the local datacenter and rack.

    The profiles a Cluster has when it connects (by str name) are
    registered with the library (sshard_config_set_execution_profile) and
    chosen per request by name; EXEC_PROFILE_DEFAULT's settings are the
    session's defaults. A statement's own settings beat its profile's."""

    def __init__(self, load_balancing_policy=None, retry_policy=None,
                 consistency_level=ConsistencyLevel.LOCAL_ONE,
                 serial_consistency_level=None, request_timeout=10.0,
                 row_factory=named_tuple_factory, speculative_execution_policy=None,
                 continuous_paging_options=None):
        self.load_balancing_policy = load_balancing_policy
        self.retry_policy = retry_policy
        self.consistency_level = consistency_level
        self.serial_consistency_level = serial_consistency_level
        self.request_timeout = request_timeout
        self.row_factory = row_factory
        self.speculative_execution_policy = speculative_execution_policy


def _register_profile(config, name, profile):
    """Registers `profile` under `name` on a C config."""
    out = ffi.new("sshard_execution_profile **")
    _check(lib.sshard_execution_profile_new(out))
    handle = out[0]
    try:
        _check(lib.sshard_execution_profile_set_consistency(handle, profile.consistency_level))
        if profile.serial_consistency_level is not None:
            _check(lib.sshard_execution_profile_set_serial_consistency(
                handle, profile.serial_consistency_level))
        if profile.request_timeout:
            _check(lib.sshard_execution_profile_set_request_timeout_ms(
                handle, _timeout_ms(profile.request_timeout)))
        retry = _retry_policy_value(profile.retry_policy)
        if retry is not None:
            _check(lib.sshard_execution_profile_set_retry_policy(handle, retry))
        if profile.speculative_execution_policy is not None:
            _apply_speculation(profile.speculative_execution_policy, handle,
                               "execution_profile")
        policy = profile.load_balancing_policy
        for value, setter in ((getattr(policy, "local_dc", None),
                               lib.sshard_execution_profile_set_local_dc),
                              (getattr(policy, "local_rack", None),
                               lib.sshard_execution_profile_set_local_rack)):
            if value:
                b = _utf8(value)
                _check(setter(handle, b, len(b)))
        remote = getattr(getattr(policy, "_child_policy", policy), "used_hosts_per_remote_dc", None)
        if getattr(policy, "local_dc", None) and remote is not None:
            # scylla-driver's DC-aware policies use no remote host by default.
            _check(lib.sshard_execution_profile_set_dc_failover(handle, remote > 0))
        b = _utf8(name)
        _check(lib.sshard_config_set_execution_profile(config, b, len(b), handle))
    finally:
        lib.sshard_execution_profile_free(handle)


# ---------------------------------------------------------------------------
# Cluster and Session
# ---------------------------------------------------------------------------

def _compression(value):
    if value in (True, "lz4"):
        return lib.SSHARD_COMPRESSION_LZ4
    if value in (False, None):
        return lib.SSHARD_COMPRESSION_NONE
    raise ValueError("compression %r is not supported (True/'lz4' or False)" % (value,))


class Cluster(object):
    """The cluster to connect to. Takes scylla-driver's common arguments;
    `connect()` makes a Session (its own shard-aware connection pools)."""

    def __init__(self, contact_points=("127.0.0.1",), port=9042, compression=False,
                 auth_provider=None, load_balancing_policy=None, reconnection_policy=None,
                 default_retry_policy=None, conviction_policy_factory=None,
                 metrics_enabled=False, connection_class=None, ssl_options=None,
                 sockopts=None, cql_version=None, protocol_version=4, executor_threads=None,
                 max_schema_agreement_wait=10, control_connection_timeout=2.0,
                 idle_heartbeat_interval=30, schema_event_refresh_window=2,
                 topology_event_refresh_window=10, connect_timeout=_CONNECT_TIMEOUT,
                 schema_metadata_enabled=True, token_metadata_enabled=True,
                 address_translator=None, status_event_refresh_window=2,
                 prepare_on_all_hosts=True, reprepare_on_up=True, execution_profiles=None,
                 allow_beta_protocol_version=False, timestamp_generator=None,
                 idle_heartbeat_timeout=30, no_compact=False, ssl_context=None,
                 endpoint_factory=None, application_name=None, application_version=None,
                 monitor_reporting_enabled=False, monitor_reporting_interval=30,
                 client_id=None, cloud=None, scylla_cloud=None,
                 shard_aware_options=None, metadata_request_timeout=None,
                 column_encryption_policy=None,
                 # libscylla_shard's own settings (worker_threads: see _WORKER_THREADS)
                 worker_threads=None, connections_per_shard=1, shard_aware_port=True,
                 local_port_range=None, tablet_awareness=True, prepared_cache_size=None,
                 local_dc=None, local_rack=None, caller_driven_io=False,
                 host_allow_list=None, host_deny_list=None, dc_allow_list=None,
                 dc_deny_list=None):
        # TLS through the library (rustls); see scylla_shard._tls.
        self.ssl_context = ssl_context
        self.ssl_options = ssl_options
        if protocol_version is not None and protocol_version != 4 and \
                not isinstance(protocol_version, int):
            raise ValueError("protocol_version must be an int")
        if isinstance(contact_points, str):
            raise TypeError("contact_points should not be a string, it should be a sequence "
                            "(e.g. list) of strings")
        self.contact_points = list(contact_points)
        self.port = port
        self.compression = compression
        self._compression = _compression(compression)
        self.auth_provider = auth_provider
        self.protocol_version = 4
        self.connect_timeout = connect_timeout
        self.idle_heartbeat_interval = idle_heartbeat_interval
        self.max_schema_agreement_wait = max_schema_agreement_wait
        self.application_name = application_name
        self.application_version = application_version
        self.profiles = dict(execution_profiles or {})
        default = self.profiles.get(EXEC_PROFILE_DEFAULT)
        if default is None:
            default = ExecutionProfile(load_balancing_policy=load_balancing_policy)
            self.profiles[EXEC_PROFILE_DEFAULT] = default
        policy = load_balancing_policy or default.load_balancing_policy
        self.default_retry_policy = default_retry_policy
        self.local_dc = local_dc or getattr(policy, "local_dc", None)
        self.local_rack = local_rack or getattr(policy, "local_rack", None)
        # Host filtering (the library's lists): WhiteListRoundRobinPolicy's
        # hosts are an allow list.
        allowed = _address_list(host_allow_list, "host_allow_list")
        allowed.extend(getattr(policy, "allowed_hosts", None) or ())
        self.host_allow_list = _address_list(allowed, "host_allow_list")
        self.host_deny_list = _address_list(host_deny_list, "host_deny_list")
        self.dc_allow_list = _address_list(dc_allow_list, "dc_allow_list")
        self.dc_deny_list = _address_list(dc_deny_list, "dc_deny_list")
        self.address_translator = address_translator
        self._address_map = _address_map(address_translator)
        self.worker_threads = _WORKER_THREADS if worker_threads is None else worker_threads
        self.connections_per_shard = connections_per_shard
        self.caller_driven_io = caller_driven_io
        self.shard_aware_port = shard_aware_port
        self.local_port_range = local_port_range
        self.tablet_awareness = tablet_awareness
        self.prepared_cache_size = prepared_cache_size
        self.sessions = weakref.WeakSet()
        self.is_shutdown = False
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._thread_queue = None

    # -- context manager --------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def _contact_name(self):
        host = self.contact_points[0] if self.contact_points else "?"
        return "%s:%d" % (host, self.port)

    def _check_process(self):
        if self._pid != _getpid():
            raise ForkedError(FORKED_MESSAGE)

    def add_execution_profile(self, name, profile, pool_wait_timeout=5):
        self.profiles[name] = profile

    def _config(self, keyspace):
        out = ffi.new("sshard_config **")
        _check(lib.sshard_config_new(out))
        config = out[0]
        try:
            for cp in self.contact_points:
                b = _utf8(str(cp))
                _check(lib.sshard_config_add_contact_point(config, b, len(b)))
            _check(lib.sshard_config_set_port(config, self.port))
            _check(lib.sshard_config_set_compression(config, self._compression))
            _check(lib.sshard_config_set_connect_timeout_ms(
                config, int(self.connect_timeout * 1000)))
            profile = self.profiles[EXEC_PROFILE_DEFAULT]
            _check(lib.sshard_config_set_consistency(config, profile.consistency_level))
            if profile.request_timeout:
                _check(lib.sshard_config_set_request_timeout_ms(
                    config, int(profile.request_timeout * 1000)))
            retry = _retry_policy_value(profile.retry_policy or self.default_retry_policy)
            if retry is not None:
                _check(lib.sshard_config_set_retry_policy(config, retry))
            if profile.speculative_execution_policy is not None:
                _apply_speculation(profile.speculative_execution_policy, config, "config")
            for name, named in self.profiles.items():
                if isinstance(name, str):
                    _register_profile(config, name, named)
            _check(lib.sshard_config_set_heartbeat_interval_ms(
                config, int((self.idle_heartbeat_interval or 0) * 1000)))
            _check(lib.sshard_config_set_worker_threads(config, self.worker_threads))
            _check(lib.sshard_config_set_caller_driven_io(config, bool(self.caller_driven_io)))
            if self.ssl_context is not None or self.ssl_options is not None:
                _tls.apply(config, self.ssl_context, self.ssl_options)
            # As in scylla-driver, DDL waits this long for schema agreement (0: no wait).
            _check(lib.sshard_config_set_schema_agreement_timeout_ms(
                config, max(0, int((self.max_schema_agreement_wait or 0) * 1000))))
            _check(lib.sshard_config_set_connections_per_shard(config,
                                                               self.connections_per_shard))
            _check(lib.sshard_config_set_shard_aware_port(config, bool(self.shard_aware_port)))
            _check(lib.sshard_config_set_tablet_awareness(config, bool(self.tablet_awareness)))
            _check(lib.sshard_config_set_page_size(config, Session.default_fetch_size))
            if self.local_port_range:
                _check(lib.sshard_config_set_local_port_range(config, *self.local_port_range))
            if self.prepared_cache_size is not None:
                _check(lib.sshard_config_set_prepared_cache_size(config,
                                                                 self.prepared_cache_size))
            if self.local_dc:
                b = _utf8(self.local_dc)
                _check(lib.sshard_config_set_local_dc(config, b, len(b)))
            if self.local_rack:
                b = _utf8(self.local_rack)
                _check(lib.sshard_config_set_local_rack(config, b, len(b)))
            for setter, entries in ((lib.sshard_config_set_host_allow_list, self.host_allow_list),
                                    (lib.sshard_config_set_host_deny_list, self.host_deny_list),
                                    (lib.sshard_config_set_dc_allow_list, self.dc_allow_list),
                                    (lib.sshard_config_set_dc_deny_list, self.dc_deny_list)):
                if entries:
                    b = _utf8(",".join(entries))
                    _check(setter(config, b, len(b)))
            for advertised, reachable in self._address_map.items():
                a, r = _utf8(advertised), _utf8(reachable)
                _check(lib.sshard_config_add_address_translation(config, a, len(a), r, len(r)))
            auth = self.auth_provider
            if auth is not None:
                user, password = _utf8(auth.username or ""), _utf8(auth.password or "")
                _check(lib.sshard_config_set_credentials(config, user, len(user), password,
                                                         len(password)))
            for setter, value in ((lib.sshard_config_set_application_name,
                                   self.application_name),
                                  (lib.sshard_config_set_application_version,
                                   self.application_version)):
                if value:
                    b = _utf8(value)
                    _check(setter(config, b, len(b)))
            if keyspace:
                b = _utf8(keyspace)
                _check(lib.sshard_config_set_keyspace(config, b, len(b)))
        except BaseException:
            lib.sshard_config_free(config)
            raise
        return config

    def _library_profiles(self):
        """The profile names the next session's config registers."""
        return frozenset(name for name in self.profiles if isinstance(name, str))

    def connect(self, keyspace=None, wait_for_all_pools=False):
        """A new connected Session (in `keyspace`, if given)."""
        self._check_process()
        if self.is_shutdown:
            raise DriverException("Cluster is already shut down")
        library_profiles = self._library_profiles()
        config = self._config(keyspace)
        fut = ffi.new("const sshard_future **")
        try:
            _check(lib.sshard_session_connect(config, fut))
        finally:
            lib.sshard_config_free(config)
        cfut = fut[0]
        try:
            # The library bounds each connection attempt by connect_timeout;
            # this only keeps a broken promise from hanging the caller.
            status = lib.sshard_future_wait_timed(cfut, int((self.connect_timeout + 30) * 1e6))
            if status == _PENDING:
                raise OperationTimedOut(errors="connect", timeout=self.connect_timeout)
            if status != OK:
                exc = future_exception(cfut, status, contact=self._contact_name())
                if isinstance(exc, NoHostAvailable) and not exc.errors:
                    exc = NoHostAvailable("Unable to connect to any servers", {
                        "%s:%d" % (cp, self.port): exc.args[0] for cp in self.contact_points})
                raise exc
            out = ffi.new("const sshard_session **")
            _check(lib.sshard_future_get_session(cfut, out))
        finally:
            lib.sshard_future_free(cfut)
        session = Session(self, out[0], keyspace)
        session._library_profiles = library_profiles
        self.sessions.add(session)
        return session

    def _completions(self):
        queue = self._thread_queue
        if queue is None:
            with self._lock:
                if self._thread_queue is None:
                    self._thread_queue = _ThreadQueue()
                queue = self._thread_queue
        return queue

    def shutdown(self):
        """Closes every session (requests in flight finish first)."""
        with self._lock:
            if self.is_shutdown:
                return
            self.is_shutdown = True
        if self._pid != _getpid():
            return  # a forked child: the parent's objects are not ours to close
        for session in list(self.sessions):
            session.shutdown()
        if self._thread_queue is not None:
            self._thread_queue.stop()

    def _first_session(self):
        for session in list(self.sessions):
            if not session.is_shutdown:
                return session
        return None

    def is_shard_aware(self):
        session = self._first_session()
        return bool(session and session.is_shard_aware())

    def shard_aware_stats(self):
        """{"host:port": {"shards_count": S, "connected": shards with a
        connection}} per node, as scylla-driver reports it (None when not
        shard-aware)."""
        session = self._first_session()
        if session is None or not session.is_shard_aware():
            return None
        return session.shard_aware_stats()

    @property
    def metadata(self):
        """Schema and hosts (scylla_shard.metadata.Metadata), always current."""
        return Metadata(self)

    def refresh_schema_metadata(self, max_schema_agreement_wait=None):
        """Nothing to do: the library keeps the schema current (schema change
        events, and DDL through the session waits for schema agreement)."""


def _address_list(entries, what):
    """A list of host addresses or datacenter names: a sequence of strings
    (or one comma-separated string, the C form)."""
    if entries is None:
        return []
    if isinstance(entries, str):
        entries = entries.split(",")
    out = []
    for entry in entries:
        if not isinstance(entry, str):
            raise TypeError("%s: strings expected, got %r" % (what, entry))
        entry = entry.strip()
        if entry and entry not in out:
            out.append(entry)
    return out


def _address_map(translator):
    """The advertised -> reachable map of an address translator: a dict,
    or an object with a `mapping` (StaticAddressTranslator); None or
    IdentityTranslator: no translation. Other translators are refused: the
    library translates on its own threads, where Python is not called."""
    if translator is None:
        return {}
    mapping = translator if isinstance(translator, dict) else getattr(translator, "mapping", None)
    if not isinstance(mapping, dict):
        raise ValueError(
            "address_translator: scylla_shard takes a fixed map (a dict, or "
            "scylla_shard.policies.StaticAddressTranslator); %r translates in Python, "
            "which the library cannot call from its threads" % (translator,))
    for advertised, reachable in mapping.items():
        if not isinstance(advertised, str) or not isinstance(reachable, str):
            raise TypeError("address_translator: {advertised: reachable} strings expected")
    return dict(mapping)


class Session(object):
    """A connected session: its own shard-aware connection pools."""

    default_fetch_size = 5000

    def __init__(self, cluster, handle, keyspace):
        self.cluster = cluster
        self._handle = handle
        self.keyspace = keyspace
        self.is_shutdown = False
        self._pid = cluster._pid
        profile = cluster.profiles[EXEC_PROFILE_DEFAULT]
        # What the config already says: per-request calls only for differences.
        self._config_consistency = profile.consistency_level
        self._config_timeout = profile.request_timeout
        self._config_fetch_size = Session.default_fetch_size
        self._default_profile = profile
        # Profiles the library knows by name (registered at connect).
        self._library_profiles = frozenset()
        self.default_fetch_size = Session.default_fetch_size
        self._loop_queues = {}
        self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None and lib is not None:
            lib.sshard_session_free(handle)

    def _check_process(self):
        if self._pid != _getpid():
            raise ForkedError(FORKED_MESSAGE)

    # -- defaults as scylla-driver names them ----------------------------
    @property
    def row_factory(self):
        return self._default_profile.row_factory

    @row_factory.setter
    def row_factory(self, factory):
        self._default_profile.row_factory = factory

    @property
    def default_timeout(self):
        return self._default_profile.request_timeout

    @default_timeout.setter
    def default_timeout(self, seconds):
        self._default_profile.request_timeout = seconds

    @property
    def default_consistency_level(self):
        return self._default_profile.consistency_level

    @default_consistency_level.setter
    def default_consistency_level(self, cl):
        self._default_profile.consistency_level = cl

    @property
    def default_serial_consistency_level(self):
        return self._default_profile.serial_consistency_level

    @default_serial_consistency_level.setter
    def default_serial_consistency_level(self, cl):
        self._default_profile.serial_consistency_level = cl

    def execution_profile_clone_update(self, ep, **kwargs):
        import copy
        profile = copy.copy(self._profile(ep))
        for k, v in kwargs.items():
            setattr(profile, k, v)
        return profile

    def _profile(self, execution_profile):
        if isinstance(execution_profile, ExecutionProfile):
            return execution_profile
        try:
            return self.cluster.profiles[execution_profile]
        except KeyError:
            raise ValueError("Invalid execution_profile: '%s'; valid profiles are: %s."
                             % (execution_profile, list(self.cluster.profiles)))

    # -- requests ---------------------------------------------------------
    def execute(self, query, parameters=None, timeout=_NOT_SET, trace=False,
                custom_payload=None, execution_profile=EXEC_PROFILE_DEFAULT,
                paging_state=None, host=None, execute_as=None):
        """Runs `query` and returns its ResultSet (the first page; iterating
        fetches the rest). Raises the request's error."""
        rf = self._submit(query, parameters, timeout, execution_profile, paging_state, trace,
                          None)
        return rf.result()

    def execute_async(self, query, parameters=None, trace=False, custom_payload=None,
                      timeout=_NOT_SET, execution_profile=EXEC_PROFILE_DEFAULT,
                      paging_state=None, host=None, execute_as=None):
        """Starts `query`; returns a ResponseFuture (also awaitable)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            queue = self.cluster._completions()
        else:
            queue = self._loop_queue(loop)
        return self._submit(query, parameters, timeout, execution_profile, paging_state, trace,
                            queue)

    def _next_page_on_loop(self, page):
        """An asyncio future of the page after `page`."""
        loop = asyncio.get_running_loop()
        fut = ffi.new("const sshard_future **")
        _check(lib.sshard_session_next_page(self._handle, page.handle, fut))
        return self._await_on_loop(loop, fut[0], None, None, None, _Page)

    def _await_on_loop(self, loop, cfut, row_factory, timeout, prepared, wrap):
        queue = self._loop_queues.get(loop)
        if queue is None or queue.handle is None:
            queue = self._loop_queue(loop)
        aio = loop.create_future()
        request = _LoopRequest(aio, cfut, self, row_factory, timeout, prepared, wrap)
        token = next(queue.tokens)
        queue.pending[token] = request
        status = lib.sshard_future_set_queue(cfut, queue.handle, token)
        if status != OK:
            del queue.pending[token]
            lib.sshard_future_free(cfut)
            _raise_status(status)
        return aio

    def _execute_on_loop(self, query, parameters, timeout, execution_profile, paging_state,
                         trace, wrap=None):
        """An asyncio future of the running loop for `query`'s result, a
        `wrap` (ResultSet or a subclass) made of (session, row factory, page)."""
        loop = asyncio.get_running_loop()
        cfut, row_factory, timeout, prepared = self._start(
            query, parameters, timeout, execution_profile, paging_state, trace)
        return self._await_on_loop(loop, cfut, row_factory, timeout, prepared, wrap)

    def _loop_queue(self, loop):
        queue = self._loop_queues.get(loop)
        if queue is None or queue.handle is None:
            queue = self._loop_queues[loop] = _LoopQueue(loop)
        return queue

    def _submit(self, query, parameters, timeout, execution_profile, paging_state, trace,
                queue):
        cfut, row_factory, timeout, prepared = self._start(
            query, parameters, timeout, execution_profile, paging_state, trace)
        return self._track(cfut, row_factory, timeout, queue, prepared)

    def _track(self, cfut, row_factory, timeout, queue, prepared=None):
        rf = ResponseFuture(self, cfut, row_factory, timeout,
                            queue if isinstance(queue, _LoopQueue) else None, prepared)
        if queue is not None:
            queue.add(rf)
        return rf

    def _start(self, query, parameters, timeout, execution_profile, paging_state, trace):
        """Submits `query`; returns (sshard_future *, row factory, timeout,
        the PreparedStatement or None)."""
        if self._pid != _getpid():
            raise ForkedError(FORKED_MESSAGE)
        if self.is_shutdown:
            raise DriverException("Session is shut down")
        default = execution_profile is EXEC_PROFILE_DEFAULT
        profile = self._default_profile if default else self._profile(execution_profile)
        if timeout is _NOT_SET:
            timeout = profile.request_timeout
        fut = self._fut_out
        if default and type(query) is PreparedStatement and paging_state is None and not trace \
                and query.retry_policy is None \
                and query.consistency_level is None and query.fetch_size is FETCH_SIZE_UNSET \
                and query.serial_consistency_level is None and not query.is_idempotent \
                and profile.consistency_level == self._config_consistency \
                and profile.serial_consistency_level is None \
                and timeout == self._config_timeout \
                and self.default_fetch_size == self._config_fetch_size:
            # The common case: a prepared statement with the session's
            # defaults, bound into this thread's reusable statement.
            stmt = query._scratch_statement(parameters)
            if stmt is not None:
                _check(lib.sshard_session_execute(self._handle, stmt, fut))
                return fut[0], profile.row_factory, timeout, query
        owned = True
        if isinstance(query, str):
            stmt = new_simple_statement(bind_params(query, parameters) if parameters
                                        else query)
            statement = None
        elif isinstance(query, PreparedStatement):
            stmt = query._new_statement(parameters)
            statement = query
        elif isinstance(query, BoundStatement):
            stmt = query._statement()
            owned = False
            statement = query
        elif isinstance(query, SimpleStatement):
            text = query.query_string
            stmt = new_simple_statement(bind_params(text, parameters) if parameters else text)
            statement = query
            try:
                self._routing(stmt, query)
            except BaseException:
                lib.sshard_statement_free(stmt)
                raise
        elif isinstance(query, BatchStatement):
            return self._start_batch(query, timeout, profile, trace, execution_profile), \
                profile.row_factory, timeout, None
        else:
            raise TypeError("cannot execute %r" % (query,))
        try:
            self._options(stmt, statement, profile, timeout, paging_state, trace)
            self._policies(stmt, statement, profile, execution_profile, "statement")
            _check(lib.sshard_session_execute(self._handle, stmt, fut))
        finally:
            if owned:
                lib.sshard_statement_free(stmt)
        prepared = statement if isinstance(statement, PreparedStatement) else \
            statement.prepared_statement if isinstance(statement, BoundStatement) else None
        return fut[0], profile.row_factory, timeout, prepared

    @property
    def _fut_out(self):
        """This thread's out-parameter for submissions."""
        local = self._local
        try:
            return local.fut
        except AttributeError:
            local.fut = ffi.new("const sshard_future **")
            return local.fut

    def _routing(self, stmt, query):
        key = query.routing_key
        if key is not None:
            k = bytes(key)
            _check(lib.sshard_statement_set_routing_key(stmt, ffi.from_buffer("uint8_t[]", k),
                                                        len(k)))
        if query.keyspace is not None or query.table is not None:
            ks = _utf8(query.keyspace or "")
            table = _utf8(query.table or "")
            _check(lib.sshard_statement_set_routing_table(
                stmt, ks if ks else ffi.NULL, len(ks), table if table else ffi.NULL, len(table)))

    def _options(self, stmt, statement, profile, timeout, paging_state, trace):
        cl = statement.consistency_level if statement is not None \
            and statement.consistency_level is not None else profile.consistency_level
        if cl != self._config_consistency:
            _check(lib.sshard_statement_set_consistency(stmt, cl))
        serial = statement.serial_consistency_level if statement is not None \
            and statement.serial_consistency_level is not None \
            else profile.serial_consistency_level
        if serial is not None:
            _check(lib.sshard_statement_set_serial_consistency(stmt, serial))
        fetch = statement.fetch_size if statement is not None \
            and statement.fetch_size is not FETCH_SIZE_UNSET else self.default_fetch_size
        if fetch != self._config_fetch_size or isinstance(statement, BoundStatement):
            _check(lib.sshard_statement_set_page_size(stmt, fetch if fetch else 0))
        if timeout != self._config_timeout:
            _check(lib.sshard_statement_set_timeout_ms(stmt, _timeout_ms(timeout)))
        if paging_state is not None or isinstance(statement, BoundStatement):
            ps = bytes(paging_state or b"")
            _check(lib.sshard_statement_set_paging_state(
                stmt, ffi.from_buffer("uint8_t[]", ps) if ps else ffi.NULL, len(ps)))
        if statement is not None and statement.is_idempotent:
            _check(lib.sshard_statement_set_idempotent(stmt, True))
        if trace:
            _check(lib.sshard_statement_set_tracing(stmt, True))

    def _policies(self, handle, statement, profile, execution_profile, kind):
        """The retry and speculative execution policies of one statement or
        batch: its profile by name when the library knows it, else the
        profile object's; the statement's own retry policy beats both."""
        named = isinstance(execution_profile, str) and execution_profile in self._library_profiles
        if named or isinstance(statement, BoundStatement):
            # A bound statement's C handle is reused: its profile is reset.
            b = _utf8(execution_profile) if named else b""
            _check(getattr(lib, "sshard_%s_set_execution_profile" % kind)(
                handle, b if b else ffi.NULL, len(b)))
        if named or execution_profile is EXEC_PROFILE_DEFAULT:
            pass  # the library applies the profile's (or the config's) policies
        else:
            retry = _retry_policy_value(profile.retry_policy)
            if retry is not None:
                _check(getattr(lib, "sshard_%s_set_retry_policy" % kind)(handle, retry))
            if profile.speculative_execution_policy is not None:
                _apply_speculation(profile.speculative_execution_policy, handle, kind)
        own = _retry_policy_value(getattr(statement, "retry_policy", None))
        if own is not None:
            _check(getattr(lib, "sshard_%s_set_retry_policy" % kind)(handle, own))

    def _start_batch(self, batch, timeout, profile, trace, execution_profile=EXEC_PROFILE_DEFAULT):
        out = ffi.new("sshard_batch **")
        _check(lib.sshard_batch_new(batch.batch_type.value, out))
        cbatch = out[0]
        try:
            for stmt in batch._statements:
                _check(lib.sshard_batch_add_statement(cbatch, stmt))
            cl = batch.consistency_level if batch.consistency_level is not None \
                else profile.consistency_level
            _check(lib.sshard_batch_set_consistency(cbatch, cl))
            serial = batch.serial_consistency_level or profile.serial_consistency_level
            if serial is not None:
                _check(lib.sshard_batch_set_serial_consistency(cbatch, serial))
            if timeout != self._config_timeout:
                _check(lib.sshard_batch_set_timeout_ms(cbatch, _timeout_ms(timeout)))
            if batch.is_idempotent:
                _check(lib.sshard_batch_set_idempotent(cbatch, True))
            if trace:
                _check(lib.sshard_batch_set_tracing(cbatch, True))
            self._policies(cbatch, batch, profile, execution_profile, "batch")
            fut = ffi.new("const sshard_future **")
            _check(lib.sshard_session_batch(self._handle, cbatch, fut))
        finally:
            lib.sshard_batch_free(cbatch)
        return fut[0]

    def _next_page_sync(self, page):
        self._check_process()
        fut = ffi.new("const sshard_future **")
        _check(lib.sshard_session_next_page(self._handle, page.handle, fut))
        cfut = fut[0]
        try:
            status = lib.sshard_future_wait(cfut)
            if status != OK:
                raise future_exception(cfut, status, contact=self.cluster._contact_name())
            out = ffi.new("const sshard_result **")
            _check(lib.sshard_future_get_result(cfut, out))
        finally:
            lib.sshard_future_free(cfut)
        return _Page(out[0])

    def prepare(self, query, custom_payload=None, keyspace=None):
        """Prepares `query` (`?` or `:name` markers) on the cluster."""
        return self._prepare_future(query, None).result_prepared()

    def _prepare_future(self, query, queue):
        self._check_process()
        if self.is_shutdown:
            raise DriverException("Session is shut down")
        if isinstance(query, SimpleStatement):
            query = query.query_string
        q = _utf8(query)
        fut = ffi.new("const sshard_future **")
        _check(lib.sshard_session_prepare(self._handle, q, len(q), fut))
        rf = _PrepareFuture(self, fut[0], query, queue)
        if queue is not None:
            queue.add(rf)
        return rf

    def set_keyspace(self, keyspace):
        """Switches every connection to `keyspace`."""
        self._check_process()
        b = _utf8(keyspace)
        fut = ffi.new("const sshard_future **")
        _check(lib.sshard_session_use_keyspace(self._handle, b, len(b), fut))
        try:
            status = lib.sshard_future_wait(fut[0])
            if status != OK:
                raise future_exception(fut[0], status)
        finally:
            lib.sshard_future_free(fut[0])
        self.keyspace = keyspace

    def shutdown(self):
        """Refuses new requests, lets those in flight finish, closes."""
        if self.is_shutdown:
            return
        self.is_shutdown = True
        if self._pid != _getpid() or self._handle is None:
            return
        fut = ffi.new("const sshard_future **")
        if lib.sshard_session_close(self._handle, fut) == OK:
            lib.sshard_future_wait_timed(fut[0], _SHUTDOWN_WAIT_US)
            lib.sshard_future_free(fut[0])
        self._close_loop_queues()

    def _close_loop_queues(self):
        """Closes the queues of loops that are not running elsewhere (a
        queue is only touched from its loop's thread)."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, queue in list(self._loop_queues.items()):
            if (loop is current or not loop.is_running()) and not queue.pending:
                queue.close()
                del self._loop_queues[loop]

    # -- observability ----------------------------------------------------
    def is_shard_aware(self):
        self._check_process()
        b = ffi.new("bool *")
        _check(lib.sshard_session_is_shard_aware(self._handle, b))
        return bool(b[0])

    def shard_aware_stats(self):
        self._check_process()
        return _metrics.shard_aware_stats(self._handle)

    def metrics(self):
        """The session's counters (requests, errors by kind, retries,
        timeouts, speculative executions, connections, in flight, tablet
        map, prepared cache, latency percentiles) and, per node, its
        datacenter, rack, state, latency and connections and requests per
        shard; all from one moment."""
        self._check_process()
        return _metrics.read(self._handle)

    def metrics_prometheus(self):
        """The same metrics in the Prometheus text format (0.0.4), for a
        /metrics endpoint."""
        self._check_process()
        return _metrics.prometheus(self._handle)


def _timeout_ms(timeout):
    if timeout is None:
        return 0
    ms = int(timeout * 1000)
    return max(ms, 1)



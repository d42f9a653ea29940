"""The scylla_shard Python binding against the emulator: connection and
shard awareness, every CQL type both ways, paging, batches, LWT, errors
mapped to scylla-driver's exception classes, futures and callbacks,
timeouts, routing of prepared and simple statements, library lookup.

One emulator (3 nodes x 4 shards) per module; each test uses its own
keyspace.
"""

import datetime
import decimal
import gc
import ipaddress
import os
import subprocess
import sys
import threading
import uuid
import zipfile

import pytest

import scylla_shard
from scylla_shard import (AlreadyExists, AuthenticationFailed, BatchStatement, BatchType,
                          Cluster, ConsistencyLevel, ExecutionProfile,
                          InvalidRequest, NoHostAvailable, OperationTimedOut,
                          PlainTextAuthProvider, SimpleStatement, Unavailable, dict_factory,
                          named_tuple_factory, ordered_dict_factory, tuple_factory)
from scylla_shard.protocol import SyntaxException
from scylla_shard.query import UNSET_VALUE, ValueSequence
from scylla_shard.util import Date, Duration, OrderedMapSerializedKey, SortedSet, Time

from sshard_support import SIMPLE_RF1, assert_no_misroutes, library_env, start_emulator, wait_pools, \
    wait_until


@pytest.fixture(scope="module")
def emu(emulator_binary, tmp_path_factory):
    e = start_emulator(emulator_binary, tmp_path_factory.mktemp("emu"))
    yield e
    e.stop()


@pytest.fixture(scope="module")
def cluster(emu):
    c = Cluster(contact_points=[emu.ip(0)], port=emu.port)
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def session(cluster, emu):
    s = cluster.connect()
    wait_pools(cluster, emu)
    return s


_keyspaces = iter(range(1, 10**6))


@pytest.fixture
def ks(session):
    name = "pyks%d" % next(_keyspaces)
    session.execute("CREATE KEYSPACE %s WITH replication = %s" % (name, SIMPLE_RF1))
    return name


# ---------------------------------------------------------------------------
# Connection, shard awareness, metrics
# ---------------------------------------------------------------------------

def test_connect_shard_aware_and_metrics(cluster, session, emu):
    assert cluster.is_shard_aware()
    stats = cluster.shard_aware_stats()
    assert set(stats) == {"%s:%d" % (emu.ip(i), emu.port) for i in range(emu.nodes)}
    assert all(s == {"shards_count": emu.shards, "connected": emu.shards}
               for s in stats.values()), stats
    row = session.execute("SELECT cluster_name, release_version FROM system.local").one()
    assert row.cluster_name == "emulated cluster"
    m = session.metrics()
    assert m["shard_aware"] and m["node_count"] == emu.nodes
    assert m["connections"] >= emu.nodes * emu.shards
    assert m["requests"] >= 1 and len(m["nodes"]) == emu.nodes
    assert all(len(n["connections_per_shard"]) == emu.shards for n in m["nodes"])
    assert {n["address"] for n in m["nodes"]} == set(stats)
    for n in m["nodes"]:
        assert n["up"] and n["shards"] == emu.shards and n["datacenter"], n
        assert sum(n["connections_per_shard"]) == n["connections"], n
        assert sum(n["requests_per_shard"]) + n["requests_other"] == n["requests"], n
    assert sum(n["requests"] for n in m["nodes"]) >= 1
    assert m["latency"]["count"] >= 1 and m["latency"]["p50_us"] <= m["latency"]["max_us"]
    text = session.metrics_prometheus()
    assert "# TYPE" in text and text.endswith("\n"), text[:200]
    for n in m["nodes"]:
        assert n["address"] in text, n["address"]


def test_schema_and_host_metadata(cluster, session, emu, ks):
    assert Cluster([emu.ip(0)], port=emu.port).metadata.keyspaces == {}  # not connected
    session.execute("CREATE TYPE %s.addr (street text, no int)" % ks)
    session.execute("CREATE TABLE %s.wide (p int, c1 int, c2 text, s int static, "
                    "v list<int>, a frozen<addr>, PRIMARY KEY ((p), c1, c2)) "
                    "WITH CLUSTERING ORDER BY (c1 DESC, c2 ASC)" % ks)
    keyspace = cluster.metadata.keyspaces[ks]
    assert keyspace.name == ks and not keyspace.uses_tablets
    strategy = keyspace.replication_strategy
    assert strategy.name == "SimpleStrategy" and strategy.replication_factor == 1, strategy
    assert "system_schema" in cluster.metadata.keyspaces
    table = keyspace.tables["wide"]
    assert (table.keyspace_name, table.name) == (ks, "wide")
    # Keys first, then the other columns by name, as scylla-driver orders them.
    assert list(table.columns) == ["p", "c1", "c2", "a", "s", "v"], list(table.columns)
    assert [c.name for c in table.partition_key] == ["p"]
    assert [c.name for c in table.clustering_key] == ["c1", "c2"]
    assert [c.name for c in table.primary_key] == ["p", "c1", "c2"]
    assert table.columns["c1"].is_reversed and not table.columns["c2"].is_reversed
    assert table.columns["s"].is_static and not table.columns["v"].is_static
    assert table.columns["v"].cql_type == "list<int>"
    assert table.columns["c2"].cql_type == "text"
    assert table.columns["a"].cql_type == "addr"
    assert table.columns["p"].table is table
    udt = keyspace.user_types["addr"]
    assert (udt.keyspace, udt.name) == (ks, "addr")
    assert udt.field_names == ["street", "no"] and udt.field_types == ["text", "int"]
    # Later DDL shows in the next read, with nothing to refresh by hand.
    session.execute("DROP TABLE %s.wide" % ks)
    cluster.refresh_schema_metadata()
    assert "wide" not in cluster.metadata.keyspaces[ks].tables
    hosts = cluster.metadata.all_hosts()
    assert sorted(h.endpoint for h in hosts) == sorted(
        "%s:%d" % (emu.ip(i), emu.port) for i in range(emu.nodes))
    assert all(h.is_up and h.datacenter and h.host_id.int for h in hosts), hosts
    assert cluster.metadata.get_host(emu.ip(1)).address == emu.ip(1)
    assert cluster.metadata.get_host("127.0.0.254") is None


def _library_threads():
    """The ids of this process's threads named as the library names its
    runtime threads (the worker threads, or the standby thread of a
    caller-driven session)."""
    tids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/comm" % tid) as f:
                if f.read().strip() == "sshard-worker":
                    tids.add(tid)
        except OSError:  # the thread ended meanwhile
            pass
    return tids


def test_caller_driven_io_serves_sync_async_and_callbacks(emu, ks, session):
    """caller_driven_io=True: the threads that wait (result(), sync execute,
    the completion thread that runs the callbacks) run the library's I/O;
    several of them wait at once, some on one future."""
    session.execute("CREATE TABLE %s.cd (k int PRIMARY KEY, v text)" % ks)
    before = _library_threads()
    # worker_threads is ignored with caller-driven I/O: one standby thread.
    with Cluster([emu.ip(0)], port=emu.port, caller_driven_io=True, worker_threads=3) as driven:
        s = driven.connect(ks)
        assert len(_library_threads() - before) == 1, "one standby thread, no workers"
        insert = s.prepare("INSERT INTO cd (k, v) VALUES (?, ?)")
        for k in range(100):
            s.execute(insert, (k, "d%d" % k))
        # result() on this thread while the completion thread waits on the
        # queue the same futures go to.
        futures = [s.execute_async("SELECT v FROM cd WHERE k = %s", (k,)) for k in range(100)]
        assert [f.result().one().v for f in futures] == ["d%d" % k for k in range(100)]

        seen, failures, threads = [], [], set()
        done = threading.Event()

        def on_rows(rows):
            # Callbacks get the page's rows (a list), as scylla-driver's do.
            try:
                seen.append(rows[0].v)
                threads.add(threading.current_thread().name)
            except Exception as exc:
                failures.append(exc)
            if len(seen) + len(failures) == 50:
                done.set()

        def on_error(exc):
            failures.append(exc)
            done.set()
        for k in range(50):
            s.execute_async("SELECT v FROM cd WHERE k = %s", (k,)).add_callbacks(on_rows, on_error)
        # Sync requests while the callbacks' requests complete.
        assert [s.execute(insert, (k, "d%d" % k)) is not None for k in range(50, 70)] == [True] * 20
        assert done.wait(30), (len(seen), failures)
        assert not failures and sorted(seen) == sorted("d%d" % k for k in range(50)), failures
        assert threads == {"scylla_shard-completions"}, threads

        # Two threads waiting on one future (responses delayed so both wait
        # when it completes), the completion thread waiting on the queue.
        for i in range(emu.nodes):
            assert emu.admin(i, "/admin/delay?us=20000")[0] == 200
        try:
            for k in range(5):
                f = s.execute_async("SELECT v FROM cd WHERE k = %s", (k,))
                got = []
                # No time limit on the waits: a waiter its completion does
                # not wake stays blocked (daemon threads, given up on below).
                waiters = [threading.Thread(target=lambda: got.append(f.result().one().v),
                                            daemon=True) for _ in range(2)]
                for w in waiters:
                    w.start()
                for w in waiters:
                    w.join(30)
                assert got == ["d%d" % k] * 2, "%d of 2 waiters woken" % len(got)
        finally:
            for i in range(emu.nodes):
                emu.admin(i, "/admin/delay?us=0")
    # Once the session's objects are gone too, its runtime and thread go.
    del s, insert, futures, f
    gc.collect()
    wait_until(lambda: not (_library_threads() - before), 10,
               what="the standby thread ends with its session")


def test_context_managers_and_keyspace(emu, ks, session):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % ks)
    with Cluster([emu.ip(1)], port=emu.port) as c:
        with c.connect(ks) as s:
            s.execute("INSERT INTO t (k, v) VALUES (1, 2)")
            assert s.execute("SELECT v FROM t WHERE k = 1").one().v == 2
            assert s.keyspace == ks
        assert s.is_shutdown
        with pytest.raises(scylla_shard.DriverException):
            s.execute("SELECT v FROM t WHERE k = 1")
    assert c.is_shutdown
    with pytest.raises(InvalidRequest) as e:
        Cluster([emu.ip(0)], port=emu.port).connect("no_such_keyspace")
    assert "no_such_keyspace" in str(e.value)


def test_no_host_available(emu):
    c = Cluster(["127.0.0.1"], port=1, connect_timeout=2)
    with pytest.raises(NoHostAvailable) as e:
        c.connect()
    assert e.value.errors and "127.0.0.1:1" in e.value.errors, e.value.errors
    c.shutdown()


def test_authentication(emulator_binary, tmp_path):
    emu = start_emulator(emulator_binary, tmp_path, 1, 2, "--auth", "cassandra:secret")
    try:
        with pytest.raises(NoHostAvailable) as e:
            Cluster([emu.ip(0)], auth_provider=PlainTextAuthProvider("cassandra", "wrong")
                    ).connect()
        (err,) = e.value.errors.values()
        assert isinstance(err, AuthenticationFailed), e.value.errors
        assert "Bad credentials" in str(err) or "credentials" in str(err).lower()
        with Cluster([emu.ip(0)],
                     auth_provider=PlainTextAuthProvider("cassandra", "secret")) as c:
            assert c.connect().execute("SELECT key FROM system.local").one().key == "local"
    finally:
        emu.stop()


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

TYPE_DDL = """CREATE TABLE {ks}.types (k int PRIMARY KEY, a ascii, bi bigint, bl blob,
    bo boolean, d date, de decimal, db double, du duration, f float, i4 inet, i6 inet,
    i int, si smallint, tx text, tm time, ts timestamp, tu timeuuid, ti tinyint, u uuid,
    vi varint, l list<int>, s set<text>, m map<text, int>, tp frozen<tuple<int, text, double>>,
    ud frozen<addr>, nested map<text, frozen<list<int>>>, ls set<frozen<list<int>>>,
    mk map<frozen<tuple<int, int>>, text>, lu list<frozen<addr>>)"""
COLUMNS = ["a", "bi", "bl", "bo", "d", "de", "db", "du", "f", "i4", "i6", "i", "si", "tx", "tm",
           "ts", "tu", "ti", "u", "vi", "l", "s", "m", "tp", "ud", "nested", "ls", "mk", "lu"]


def type_rows():
    return {
        1: dict(a="ascii-ok", bi=-2**63, bl=b"\x00\x01\xfe\xff", bo=True,
                d=datetime.date(2024, 2, 29), de=decimal.Decimal("-123456789.000000000123456789"),
                db=-1.5e300, du=Duration(14, 3, 3_000_000_123), f=3.5, i4="192.168.10.1",
                i6="2001:db8::ff00:42:8329", i=-2**31, si=-2**15, tx="ünïcødé ✓ 'quoted'",
                tm=datetime.time(23, 59, 59, 999999),
                ts=datetime.datetime(2024, 1, 2, 3, 4, 5, 678000), tu=uuid.uuid1(), ti=-128,
                u=uuid.uuid4(), vi=-(2**100) + 7, l=[3, 1, 2, 1], s={"b", "a", "c"},
                m={"x": 1, "y": -2}, tp=(7, "seven", 7.5), ud={"street": "Main St", "zip": 12345},
                nested={"k": [1, 2, 3], "e": [0]}, ls={(1, 2), (0,)},
                mk={(1, 2): "one-two", (-1, 0): "neg"},
                lu=[{"street": "a", "zip": 1}, {"street": None, "zip": 2}]),
        2: dict(a="", bi=2**63 - 1, bl=b"", bo=False, d=Date(2**31 - 1), de=decimal.Decimal("0.001"),
                db=float("inf"), du=Duration(-1, -2, -3), f=-0.25,
                i4=ipaddress.IPv4Address("10.1.2.3"), i6=ipaddress.IPv6Address("::1"),
                i=2**31 - 1, si=2**15 - 1, tx="", tm=Time(86399999999999),
                ts=datetime.datetime(1969, 12, 31, 23, 59, 59, 1000), tu=uuid.uuid1(), ti=127,
                u=uuid.UUID(int=0), vi=2**64, l=[0], s={""}, m={"": 0},
                tp=(None, None, None), ud={"street": None, "zip": None}, nested={"": []},
                ls={()}, mk={(0, 0): ""}, lu=[]),
    }


# Non-frozen collections: Scylla stores an empty one as no cells, read as None.
MULTI_CELL = ("l", "s", "m", "nested", "ls", "mk", "lu")


def expected(column, value):
    """What scylla-driver reads back for `value` written to `column`."""
    if column in MULTI_CELL and not value:
        return None
    if column == "d":
        return Date(value) if not isinstance(value, Date) else value
    if column == "tm":
        return Time(value) if not isinstance(value, Time) else value
    if column in ("i4", "i6"):
        return str(value)
    if column == "ud":
        return tuple(value[f] for f in ("street", "zip"))
    if column == "ls":
        return SortedSet(list(v) for v in value)
    if column == "lu":
        return [tuple(v[f] for f in ("street", "zip")) for v in value]
    return value


def check_row(row, values):
    for c, v in values.items():
        got = getattr(row, c)
        want = expected(c, v)
        assert got == want, "column %s: read %r, wrote %r" % (c, got, v)


def create_types(session, ks):
    session.execute("CREATE TYPE %s.addr (street text, zip int)" % ks)
    session.execute(TYPE_DDL.format(ks=ks))


def test_every_type_round_trips_prepared(session, ks):
    create_types(session, ks)
    ins = session.prepare("INSERT INTO %s.types (k, %s) VALUES (?, %s)" % (
        ks, ", ".join(COLUMNS), ", ".join("?" * len(COLUMNS))))
    assert [t.cql_name() for t in ins.param_types][:3] == ["int", "ascii", "bigint"]
    rows = type_rows()
    for k, vals in rows.items():
        session.execute(ins, [k] + [vals[c] for c in COLUMNS])
    session.execute("INSERT INTO %s.types (k) VALUES (3)" % ks)  # every other column NULL
    sel = session.prepare("SELECT * FROM %s.types WHERE k = ?" % ks)
    for k, vals in rows.items():
        row = session.execute(sel, (k,)).one()
        check_row(row, vals)
    row = session.execute(sel, (1,)).one()
    # The classes scylla-driver reads them as.
    assert isinstance(row.d, Date) and row.d.date() == datetime.date(2024, 2, 29)
    assert isinstance(row.tm, Time) and row.tm.time() == datetime.time(23, 59, 59, 999999)
    assert isinstance(row.s, SortedSet) and list(row.s) == ["a", "b", "c"]
    assert isinstance(row.m, OrderedMapSerializedKey) and row.m["y"] == -2
    assert type(row.ud).__name__ == "addr" and row.ud.street == "Main St" and row.ud.zip == 12345
    assert row.mk[(1, 2)] == "one-two" and isinstance(row.de, decimal.Decimal)
    assert isinstance(row.u, uuid.UUID) and row.tu.version == 1
    out_of_range = session.execute(sel, (2,)).one().d
    assert isinstance(out_of_range, Date) and str(out_of_range) == str(2**31 - 1)
    with pytest.raises(ValueError):
        out_of_range.date()
    row = session.execute(sel, (3,)).one()
    assert all(getattr(row, c) is None for c in COLUMNS), row

    # Unset leaves a column as it was; None writes NULL.
    upd = session.prepare("UPDATE %s.types SET tx = ?, i = ? WHERE k = ?" % ks)
    session.execute(upd, (UNSET_VALUE, None, 1))
    row = session.execute(sel, (1,)).one()
    assert row.tx == rows[1]["tx"] and row.i is None


def test_every_type_round_trips_as_literals(session, ks):
    """%s parameters of simple statements become CQL literals, as scylla-driver sends them."""
    create_types(session, ks)
    rows = type_rows()
    skip = {"ud", "lu", "tp", "mk", "ls"}  # dict/tuple literals: checked separately below
    cols = [c for c in COLUMNS if c not in skip]
    for k, vals in rows.items():
        session.execute("INSERT INTO %s.types (k, %s) VALUES (%%s, %s)" % (
            ks, ", ".join(cols), ", ".join(["%s"] * len(cols))), [k] + [vals[c] for c in cols])
    for k, vals in rows.items():
        row = session.execute("SELECT * FROM %s.types WHERE k = %%(k)s" % ks, {"k": k}).one()
        check_row(row, {c: vals[c] for c in cols})
    session.execute("UPDATE %s.types SET tp = %%s, mk = %%s WHERE k = %%s" % ks,
                    ((1, "x", 2.5), {(1, 2): "v"}, 1))
    row = session.execute("SELECT tp, mk FROM %s.types WHERE k = 1" % ks).one()
    assert row.tp == (1, "x", 2.5) and dict(row.mk) == {(1, 2): "v"}
    rs = session.execute("SELECT k FROM %s.types WHERE k IN %%s" % ks, (ValueSequence([1, 2]),))
    assert sorted(r.k for r in rs) == [1, 2]


def test_bind_type_errors_are_clear(session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v bigint, b blob, s set<int>)" % ks)
    ins = session.prepare("INSERT INTO %s.t (k, v, b, s) VALUES (?, ?, ?, ?)" % ks)
    for bad in [("one", 1, b"", None), (1, 2**63, b"", None), (1, 1, "text", None),
                (1, 1, b"", ["x"])]:
        with pytest.raises(TypeError) as e:
            session.execute(ins, bad)
        assert "Received an argument of invalid type" in str(e.value)
    with pytest.raises(ValueError):
        ins.bind((1, 2, b"", None, "extra"))
    session.execute(ins, (1, 2, b"ok", {3}))  # the session still works
    assert session.execute("SELECT s FROM %s.t WHERE k = 1" % ks).one().s == {3}


def test_named_markers_and_bound_statements(session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
    ins = session.prepare("INSERT INTO %s.t (k, v) VALUES (:k, :v)" % ks)
    session.execute(ins, {"v": "named", "k": 5})
    bound = ins.bind((6, "bound"))
    bound.consistency_level = ConsistencyLevel.ONE
    session.execute(bound)
    sel = session.prepare("SELECT v FROM %s.t WHERE k = ?" % ks)
    assert session.execute(sel.bind([5])).one().v == "named"
    assert session.execute(sel, [6]).one().v == "bound"


# ---------------------------------------------------------------------------
# Row factories, paging
# ---------------------------------------------------------------------------

def test_row_factories(cluster, session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, \"Weird Name\" text)" % ks)
    session.execute("INSERT INTO %s.t (k, \"Weird Name\") VALUES (1, 'w')" % ks)
    q = "SELECT k, \"Weird Name\" FROM %s.t" % ks
    row = session.execute(q).one()
    assert row.k == 1 and row.Weird_Name == "w" and row == (1, "w")
    for factory, want in ((tuple_factory, (1, "w")), (dict_factory, {"k": 1, "Weird Name": "w"}),
                          (ordered_dict_factory, {"k": 1, "Weird Name": "w"})):
        profile = ExecutionProfile(row_factory=factory)
        cluster.add_execution_profile("p_%s" % factory.__name__, profile)
        assert session.execute(q, execution_profile="p_%s" % factory.__name__).one() == want
        assert session.execute(q, execution_profile=profile).one() == want
    assert session.row_factory is named_tuple_factory
    with pytest.raises(ValueError):
        session.execute(q, execution_profile="missing")


def test_transparent_and_manual_paging(session, ks):
    session.execute("CREATE TABLE %s.p (pk int, c int, v text, PRIMARY KEY (pk, c))" % ks)
    ins = session.prepare("INSERT INTO %s.p (pk, c, v) VALUES (1, ?, ?)" % ks)
    for c in range(1000):
        session.execute(ins, (c, "v%d" % c))
    stmt = SimpleStatement("SELECT c, v FROM %s.p WHERE pk = 1" % ks, fetch_size=64)
    rs = session.execute(stmt)
    assert len(rs.current_rows) == 64 and rs.has_more_pages and rs.paging_state
    assert [r.c for r in rs] == list(range(1000))
    assert not rs.has_more_pages and rs.paging_state is None
    # Resume from a paging state, with a prepared statement too.
    first = session.execute(stmt)
    second = session.execute(stmt, paging_state=first.paging_state)
    assert second.current_rows[0].c == 64
    sel = session.prepare("SELECT c FROM %s.p WHERE pk = ?" % ks)
    sel.fetch_size = 100
    rs = session.execute(sel, (1,))
    assert len(rs.current_rows) == 100
    rs2 = session.execute(sel, (1,), paging_state=rs.paging_state)
    assert rs2.current_rows[0].c == 100
    assert [r.c for r in rs.all()] == list(range(1000))
    # Manual paging with callbacks: each page's rows reach the callback.
    pages = []
    done = threading.Event()
    fut = session.execute_async(stmt)

    def on_page(rows):
        pages.append([r.c for r in rows])
        if fut.has_more_pages:
            fut.start_fetching_next_page()
        else:
            done.set()
    fut.add_callbacks(on_page, lambda exc: (pages.append(exc), done.set()))
    assert done.wait(30), pages
    assert [len(p) for p in pages] == [64] * 15 + [40]
    assert sum(pages, []) == list(range(1000))
    from scylla_shard.cluster import QueryExhausted
    with pytest.raises(QueryExhausted):
        fut.start_fetching_next_page()
    # fetch_size 0 turns paging off.
    whole = session.execute(SimpleStatement(stmt.query_string, fetch_size=0))
    assert len(whole.current_rows) == 1000 and not whole.has_more_pages
    assert session.execute("SELECT c FROM %s.p WHERE pk = 2" % ks).one() is None


# ---------------------------------------------------------------------------
# Batches, counters, LWT
# ---------------------------------------------------------------------------

def test_batches_and_counters(session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
    session.execute("CREATE TABLE %s.c (k int PRIMARY KEY, n counter)" % ks)
    ins = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % ks)
    for batch_type in (BatchType.LOGGED, BatchType.UNLOGGED):
        batch = BatchStatement(batch_type=batch_type)
        batch.add(ins, (1, "prepared"))
        batch.add(ins.bind((2, "bound")))
        batch.add(SimpleStatement("INSERT INTO %s.t (k, v) VALUES (%%s, %%s)" % ks), (3, "simple"))
        batch.add("INSERT INTO %s.t (k, v) VALUES (4, 'text')" % ks)
        assert len(batch) == 4
        session.execute(batch)
        got = {r.k: r.v for r in session.execute("SELECT k, v FROM %s.t" % ks)}
        assert got == {1: "prepared", 2: "bound", 3: "simple", 4: "text"}
        session.execute("TRUNCATE %s.t" % ks)
    inc = session.prepare("UPDATE %s.c SET n = n + ? WHERE k = ?" % ks)
    counters = BatchStatement(batch_type=BatchType.COUNTER)
    for k in range(5):
        counters.add(inc, (k + 1, k))
    session.execute(counters)
    session.execute(counters)
    assert {r.k: r.n for r in session.execute("SELECT * FROM %s.c" % ks)} == \
        {k: 2 * (k + 1) for k in range(5)}


def test_lwt(session, ks):
    session.execute("CREATE TABLE %s.l (k int PRIMARY KEY, v text)" % ks)
    ins = session.prepare("INSERT INTO %s.l (k, v) VALUES (?, ?) IF NOT EXISTS" % ks)
    upd = session.prepare("UPDATE %s.l SET v = ? WHERE k = ? IF v = ?" % ks)
    assert ins.is_lwt() and upd.is_lwt()
    assert session.execute(ins, (1, "first")).was_applied
    rs = session.execute(ins, (1, "second"))
    assert not rs.was_applied and rs.one().v == "first"
    assert session.execute(upd, ("new", 1, "first")).was_applied
    assert not session.execute(upd, ("x", 1, "first")).was_applied
    batch = BatchStatement()
    batch.add(SimpleStatement("UPDATE %s.l SET v = 'b' WHERE k = 1 IF v = 'new'" % ks))
    assert session.execute(batch).was_applied
    with pytest.raises(RuntimeError):
        session.execute("SELECT v FROM %s.l WHERE k = 1" % ks).was_applied


# ---------------------------------------------------------------------------
# Errors, futures, timeouts
# ---------------------------------------------------------------------------

def test_errors_map_to_scylla_driver_exceptions(session, ks):
    with pytest.raises(SyntaxException) as e:
        session.execute("SELEC nonsense")
    assert e.value.code == 0x2000 and "SELEC" in e.value.message
    assert str(e.value).startswith("<Error from server: code=2000 [Syntax error in CQL query]")
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM %s.missing" % ks)
    assert str(e.value).startswith("Error from server: code=2200 [Invalid query] message=")
    with pytest.raises(AlreadyExists) as e:
        session.execute("CREATE KEYSPACE %s WITH replication = %s" % (ks, SIMPLE_RF1))
    assert e.value.keyspace == ks and e.value.table is None
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY)" % ks)
    with pytest.raises(AlreadyExists) as e:
        session.execute("CREATE TABLE %s.t (k int PRIMARY KEY)" % ks)
    assert (e.value.keyspace, e.value.table) == (ks, "t")
    with pytest.raises(InvalidRequest):
        session.prepare("SELECT nope FROM %s.t" % ks)
    # Errors of async requests reach errbacks and result().
    fut = session.execute_async("SELECT * FROM %s.missing" % ks)
    with pytest.raises(InvalidRequest):
        fut.result()
    got = []
    done = threading.Event()
    fut.add_errback(lambda exc: (got.append(exc), done.set()))
    assert done.wait(5) and isinstance(got[0], InvalidRequest)


def test_execute_async_callbacks(session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % ks)
    ins = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % ks)
    futures = [session.execute_async(ins, (k, k * k)) for k in range(500)]
    for f in futures:
        f.result()
    sel = session.prepare("SELECT v FROM %s.t WHERE k = ?" % ks)
    results = {}
    errors = []
    done = threading.Event()
    lock = threading.Lock()
    threads = set()

    def ok(rows, k):
        with lock:
            threads.add(threading.current_thread().name)
            results[k] = rows[0].v
            if len(results) == 500:
                done.set()

    for k in range(500):
        session.execute_async(sel, (k,)).add_callbacks(
            ok, lambda exc: (errors.append(exc), done.set()), callback_args=(k,))
    assert done.wait(30), (len(results), errors)
    assert not errors and results == {k: k * k for k in range(500)}
    # Callbacks run on the binding's one completion thread (or on the caller's
    # thread for a request that completed before add_callbacks), never on a
    # library thread.
    assert threads <= {"scylla_shard-completions", threading.current_thread().name}, threads
    # A callback added after completion runs at once, on the caller's thread.
    f = session.execute_async(sel, (3,))
    f.result()
    here = []
    f.add_callback(lambda rows: here.append((rows[0].v, threading.current_thread())))
    assert here == [(9, threading.current_thread())]


def test_timeouts(emu, session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY)" % ks)
    stmt = SimpleStatement("SELECT * FROM %s.t WHERE k = 1" % ks)
    try:
        for node in range(emu.nodes):
            assert emu.admin(node, "/admin/delay?us=400000")[0] == 200
        with pytest.raises(OperationTimedOut):
            session.execute(stmt, timeout=0.1)
        fut = session.execute_async(stmt, timeout=0.1)
        with pytest.raises(OperationTimedOut):
            fut.result()
        # result(timeout) bounds the wait, not the request.
        slow = session.execute_async(stmt, timeout=5)
        with pytest.raises(OperationTimedOut):
            slow.result(timeout=0.05)
        assert slow.result().one() is None
    finally:
        for node in range(emu.nodes):
            emu.admin(node, "/admin/delay?us=0")
    assert session.metrics()["timeouts"] >= 2
    assert session.execute(stmt, timeout=5).one() is None


def test_server_error_codes_map_to_scylla_driver_classes():
    """The emulator sends no UNAVAILABLE / READ_TIMEOUT / WRITE_TIMEOUT /
    failures; their class and message format are checked here (their
    details come from the library's error object)."""
    from scylla_shard import (FunctionFailure, ReadFailure, ReadTimeout, Unauthorized,
                              WriteFailure, WriteTimeout)
    from scylla_shard._errors import server_exception
    from scylla_shard.protocol import (IsBootstrappingErrorMessage, OverloadedErrorMessage,
                                       ServerError, TruncateError)
    cases = {0x1000: Unavailable, 0x1100: WriteTimeout, 0x1200: ReadTimeout,
             0x1300: ReadFailure, 0x1400: FunctionFailure, 0x1500: WriteFailure,
             0x2100: Unauthorized, 0x2200: InvalidRequest, 0x2000: SyntaxException,
             0x0000: ServerError, 0x1001: OverloadedErrorMessage,
             0x1002: IsBootstrappingErrorMessage, 0x1003: TruncateError}
    for code, cls in cases.items():
        exc = server_exception(code, "the message")
        assert type(exc) is cls, (hex(code), exc)
        assert 'code=%04x' % code in str(exc) and 'message="the message"' in str(exc)
    assert str(server_exception(0x1000, "m")).endswith(
        "info={'consistency': 'Not Set', 'required_replicas': None, 'alive_replicas': None}")


# ---------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------

def test_prepared_and_routed_simple_statements_zero_misroutes(emu, session, ks):
    session.execute("CREATE TABLE %s.r (a int, b text, v int, PRIMARY KEY ((a, b)))" % ks)
    ins = session.prepare("INSERT INTO %s.r (a, b, v) VALUES (?, ?, ?)" % ks)
    before = emu.snapshot()
    for i in range(300):
        session.execute(ins, (i, "b%d" % i, i))
    assert_no_misroutes(emu.snapshot() - before, 300)
    before = emu.snapshot()
    for i in range(300):
        stmt = SimpleStatement("SELECT v FROM %s.r WHERE a = %%s AND b = %%s" % ks, keyspace=ks)
        stmt.routing_key = [i.to_bytes(4, "big", signed=True), ("b%d" % i).encode()]
        assert session.execute(stmt, (i, "b%d" % i)).one().v == i
    assert_no_misroutes(emu.snapshot() - before, 300)


def test_tablets_routing(emulator_binary, tmp_path):
    emu = start_emulator(emulator_binary, tmp_path, 3, 4, "--tablets")
    try:
        with Cluster([emu.ip(0)], port=emu.port) as c:
            s = c.connect()
            s.execute("CREATE KEYSPACE tk WITH replication = {'class': "
                      "'NetworkTopologyStrategy', 'replication_factor': 1}")
            s.execute("CREATE TABLE tk.t (k int PRIMARY KEY, v int)")
            ins = s.prepare("INSERT INTO tk.t (k, v) VALUES (?, ?)")
            for i in range(200):  # learns the tablets
                s.execute(ins, (i, i))
            assert s.metrics()["tablets"] > 0
            before = emu.snapshot()
            for i in range(200):
                s.execute(ins, (i, i + 1))
            for i in range(100):
                stmt = SimpleStatement("SELECT v FROM tk.t WHERE k = %d" % i, keyspace="tk",
                                       table="t", routing_key=i.to_bytes(4, "big", signed=True))
                assert s.execute(stmt).one().v == i + 1
            assert_no_misroutes(emu.snapshot() - before, 300)
    finally:
        emu.stop()


# ---------------------------------------------------------------------------
# Compression, library lookup, ABI mode
# ---------------------------------------------------------------------------

def test_lz4_compression(emu, ks):
    with Cluster([emu.ip(0)], port=emu.port, compression=True) as c:
        s = c.connect(ks)
        s.execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
        s.execute("INSERT INTO t (k, v) VALUES (%s, %s)", (1, "z" * 100000))
        assert s.execute("SELECT v FROM t WHERE k = 1").one().v == "z" * 100000
    with pytest.raises(ValueError):
        Cluster(compression="snappy")


SOURCE_TREE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings",
                           "python")


def _child(code, env):
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


def test_library_lookup_order_and_abi_mode(emu, tmp_path):
    env = library_env()
    code = "import scylla_shard as s; print(s.library_path, s.ffi_mode)"
    out = _child(code, env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [env["SCYLLA_SHARD_LIBRARY"], "api"]
    missing = dict(env, SCYLLA_SHARD_LIBRARY=str(tmp_path / "nope.so"))
    out = _child(code, missing)
    assert out.returncode != 0 and "SCYLLA_SHARD_LIBRARY" in out.stderr
    # Without the variable: the copy in the package (wheel) or the loader's path.
    plain = {k: v for k, v in env.items() if k != "SCYLLA_SHARD_LIBRARY"}
    bundled = os.path.join(os.path.dirname(scylla_shard.__file__), "libscylla_shard.so")
    if os.path.exists(bundled):
        out = _child(code, plain)
        assert out.returncode == 0 and out.stdout.split()[0] == bundled, out.stderr
    # The source tree bundles nothing: the loader finds the library on its path.
    source = dict(plain, PYTHONPATH=SOURCE_TREE,
                  LD_LIBRARY_PATH=os.path.dirname(env["SCYLLA_SHARD_LIBRARY"]))
    out = _child(code, source)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["libscylla_shard.so", "abi"]
    # ABI mode (no compiled module): the same API through cffi's dlopen.
    abi = dict(env, SCYLLA_SHARD_FFI="abi")
    out = _child("import scylla_shard as s\n"
                 "c = s.Cluster(['%s'], port=%d)\n"
                 "print(s.ffi_mode, c.connect().execute('SELECT key FROM system.local').one().key)\n"
                 "c.shutdown()" % (emu.ip(0), emu.port), abi)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["abi", "local"]


@pytest.mark.skipif(not os.environ.get("SSHARD_PYTHON_WHEEL_DIR"),
                    reason="make python-binding builds the wheel (SSHARD_PYTHON_WHEEL_DIR)")
def test_wheel_bundles_library_and_compiled_module():
    wheel_dir = os.environ["SSHARD_PYTHON_WHEEL_DIR"]
    (wheel,) = [f for f in os.listdir(wheel_dir) if f.endswith(".whl")]
    assert wheel.startswith("scylla_shard-") and "linux" in wheel, wheel
    with zipfile.ZipFile(os.path.join(wheel_dir, wheel)) as z:
        names = set(z.namelist())
        assert "scylla_shard/libscylla_shard.so" in names, sorted(names)
        assert "scylla_shard/scylla_shard_cdef.h" in names
        assert any(n.startswith("scylla_shard/_sshard_cffi") and n.endswith(".so")
                   for n in names), sorted(names)
        bundled = z.read("scylla_shard/libscylla_shard.so")
    assert bundled[:4] == b"\x7fELF"
    # The package imported here is that wheel, loading its own copy in API mode.
    assert scylla_shard.ffi_mode == "api"
    with open(scylla_shard.library_path, "rb") as f:
        assert f.read() == bundled

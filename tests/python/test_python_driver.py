"""Conformance of scylla-emulator with the real Python `scylla-driver`.

Every test starts its own emulator (own 127.0.N.0/24 block) through
`emulator_factory`, connects a real `cassandra.cluster.Cluster` and checks both
what the driver sees and what the emulator counted (deltas of its Prometheus
counters; there is no reset endpoint).
"""

import datetime
import decimal
import ipaddress
import random
import time
import uuid
from collections import Counter, namedtuple

import pytest

from cassandra import AlreadyExists, AuthenticationFailed, ConsistencyLevel, InvalidRequest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile, NoHostAvailable
from cassandra.policies import (ConstantReconnectionPolicy, DCAwareRoundRobinPolicy,
                                TokenAwarePolicy)
from cassandra.protocol import SyntaxException
from cassandra.query import BatchStatement, BatchType, SimpleStatement, dict_factory
from cassandra.util import Duration, Time

from driver_support import (SIMPLE_RF1, assert_routing, composite_routing_key, execute_windowed,
                            int_bytes, tablet_last_tokens, text_bytes, wait_pool_full)
from emulator_harness import wait_until

MURMUR3 = "org.apache.cassandra.dht.Murmur3Partitioner"


def fresh_reconnect():
    # Retry a lost node every 0.5 s (the default policy backs off exponentially).
    return ConstantReconnectionPolicy(0.5, max_attempts=None)


def create_kv_table(session, ks, table="t", replication=SIMPLE_RF1, extra=""):
    session.execute("CREATE KEYSPACE %s WITH replication = %s%s" % (ks, replication, extra))
    session.execute("CREATE TABLE %s.%s (a int, b text, c int, v text, "
                    "PRIMARY KEY ((a, b), c))" % (ks, table))


def kv_rows(n, seed=0):
    rnd = random.Random(seed)
    return [(rnd.randrange(-2**31, 2**31), "b%d-%d" % (i % 11, rnd.randrange(10**6)), i % 7,
             "v%d-%s" % (i, "z" * rnd.randrange(0, 40))) for i in range(n)]


def prepare_kv(session, ks, table="t"):
    ins = session.prepare("INSERT INTO %s.%s (a, b, c, v) VALUES (?, ?, ?, ?)" % (ks, table))
    sel = session.prepare("SELECT v FROM %s.%s WHERE a = ? AND b = ? AND c = ?" % (ks, table))
    assert ins.routing_key_indexes == [0, 1], "PREPARED pk indexes of INSERT: %r" % (
        ins.routing_key_indexes,)
    assert sel.routing_key_indexes == [0, 1], "PREPARED pk indexes of SELECT: %r" % (
        sel.routing_key_indexes,)
    return ins, sel


def verify_rows(session, sel, rows, use_async=True):
    params = [(a, b, c) for a, b, c, _ in rows]
    if use_async:
        results = execute_windowed(session, sel, params)
    else:
        results = [session.execute(sel, p) for p in params]
    for (a, b, c, v), rs in zip(rows, results):
        got = list(rs)
        assert len(got) == 1 and got[0].v == v, "row (%r, %r, %r): read %r, wrote %r" % (
            a, b, c, got, v)


# ---------------------------------------------------------------------------
# Topology, negotiation, shard awareness
# ---------------------------------------------------------------------------

def test_discovery_negotiation_and_shard_awareness(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 4, "--racks", "2", "--vnodes", "8")
    cluster = cluster_factory(emu)  # protocol_version NOT pinned: v5 -> v4 downgrade
    session = cluster.connect()
    assert cluster.protocol_version == 4, "negotiated protocol v%s" % cluster.protocol_version

    stats = wait_pool_full(session, emu)
    assert session.cluster.is_shard_aware()
    assert stats == {"%s:%d" % (ip, emu.port): {"shards_count": 4, "connected": 4}
                     for ip in emu.ips}

    hosts = sorted(cluster.metadata.all_hosts(), key=lambda h: ipaddress.ip_address(h.address))
    assert [h.address for h in hosts] == emu.ips
    for i, h in enumerate(hosts):
        assert h.datacenter == "datacenter1", (i, h.datacenter)
        assert h.rack == "rack%d" % (i % 2 + 1), (i, h.rack)
        assert str(h.host_id) == emu.host_id(i), (i, h.host_id)
        assert h.is_up
        assert h.sharding_info is not None and h.sharding_info.shards_count == 4
        assert h.sharding_info.shard_aware_port == emu.shard_aware_port

    assert cluster.metadata.partitioner == MURMUR3
    assert cluster.metadata.cluster_name
    tm = cluster.metadata.token_map
    assert tm is not None, "no token map (partitioner/tokens not understood)"
    owners = Counter(h.address for h in tm.token_to_host_owner.values())
    assert owners == {ip: 8 for ip in emu.ips}, owners
    assert len(tm.ring) == 24 and len(set(t.value for t in tm.ring)) == 24
    assert {"system", "system_schema"} <= set(cluster.metadata.keyspaces)

    # The shard connections went through the shard-aware port, one per missing shard.
    snap = emu.snapshot()
    for n in range(3):
        sa = snap.get("emulator_connections_accepted_total", node=n, port=emu.shard_aware_port)
        assert sa >= 3, "node %d: %s connections accepted on the shard-aware port" % (n, sa)
        for s in range(4):
            assert snap.get("emulator_connections_current", node=n, shard=s) >= 1

    # Each node describes itself and its peers consistently.
    for i, h in enumerate(hosts):
        local = session.execute(
            "SELECT host_id, data_center, rack, rpc_address, tokens, partitioner, cluster_name "
            "FROM system.local WHERE key='local'", host=h).one()
        assert str(local.host_id) == emu.host_id(i)
        assert local.rpc_address == emu.ip(i)
        assert (local.data_center, local.rack) == (h.datacenter, h.rack)
        assert len(local.tokens) == 8
        assert local.partitioner == MURMUR3
        assert local.cluster_name == cluster.metadata.cluster_name
        peers = list(session.execute(
            "SELECT peer, host_id, data_center, rack, rpc_address, tokens FROM system.peers",
            host=h))
        assert sorted(p.rpc_address for p in peers) == sorted(
            ip for j, ip in enumerate(emu.ips) if j != i)
        for p in peers:
            j = emu.node_of_ip(p.rpc_address)
            assert str(p.host_id) == emu.host_id(j)
            assert p.rack == "rack%d" % (j % 2 + 1) and p.data_center == "datacenter1"
            assert len(p.tokens) == 8


# ---------------------------------------------------------------------------
# Data path and routing truth
# ---------------------------------------------------------------------------

def test_prepared_roundtrip_zero_misroutes(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 4)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    create_kv_table(session, "ks")
    ins, sel = prepare_kv(session, "ks")
    wait_pool_full(session, emu)

    rows = kv_rows(3000, seed=1)
    before = emu.snapshot()
    for r in rows[:1500]:
        session.execute(ins, r)
    execute_windowed(session, ins, rows[1500:], window=128)
    verify_rows(session, sel, rows[:1500], use_async=False)
    verify_rows(session, sel, rows[1500:], use_async=True)
    delta = emu.snapshot() - before
    assert_routing(delta, emu, min_requests=6000)

    # The driver's replica for each key is also what the emulator says owns it:
    # a second identical read pass is again free of misroutes.
    before = emu.snapshot()
    verify_rows(session, sel, rows[:600])
    assert_routing(emu.snapshot() - before, emu, require_every_shard=False, min_requests=600)


def test_misroute_counters_detect_wrong_routing(emulator_factory, cluster_factory):
    """Negative control for every zero-misroute assertion: requests sent on
    purpose to a non-replica node, or to the replica through a connection of a
    shard that does not own the token, are counted exactly (and still served)."""
    emu = emulator_factory(3, 4)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    create_kv_table(session, "ks")
    ins, sel = prepare_kv(session, "ks")
    wait_pool_full(session, emu)
    tm = cluster.metadata.token_map
    hosts = list(cluster.metadata.all_hosts())
    rows = kv_rows(120, seed=21)

    def replica_of(a, b):
        reps = cluster.metadata.get_replicas("ks", composite_routing_key(int_bytes(a), text_bytes(b)))
        assert len(reps) == 1
        return reps[0]

    # Wrong node.
    before = emu.snapshot()
    for a, b, c, v in rows[:60]:
        other = next(h for h in hosts if h != replica_of(a, b))
        session.execute(ins, (a, b, c, v), host=other)
    d = (emu.snapshot() - before).routing_summary()
    assert d["misrouted_node"] == 60 and d["misrouted_shard"] == 0, d
    verify_rows(session, sel, rows[:60])

    # Right node, wrong shard: a fake routing key steers the driver's shard choice.
    fake_keys = [composite_routing_key(int_bytes(x), text_bytes("fake")) for x in range(64)]
    before = emu.snapshot()
    for a, b, c, v in rows[60:]:
        host = replica_of(a, b)
        real = composite_routing_key(int_bytes(a), text_bytes(b))
        shard_of = lambda key: host.sharding_info.shard_id_from_token(  # noqa: E731
            tm.token_class.from_key(key).value)
        fake = next(k for k in fake_keys if shard_of(k) != shard_of(real))
        bound = ins.bind((a, b, c, v))
        bound._routing_key = fake  # cached value the driver routes by
        session.execute(bound, host=host)
    d = (emu.snapshot() - before).routing_summary()
    assert d["misrouted_shard"] == 60 and d["misrouted_node"] == 0, d
    verify_rows(session, sel, rows[60:])


def test_unprepared_statements_with_routing_key_zero_misroutes(emulator_factory, cluster_factory):
    """Routing truth is counted for unprepared statements that name the full
    partition key as literals: the emulator must compute the same token from
    literals as the driver does from the routing key."""
    emu = emulator_factory(3, 4)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    create_kv_table(session, "ks")
    wait_pool_full(session, emu)
    rows = kv_rows(600, seed=2)
    before = emu.snapshot()
    for a, b, c, v in rows:
        rk = composite_routing_key(int_bytes(a), text_bytes(b))
        session.execute(SimpleStatement(
            "INSERT INTO ks.t (a, b, c, v) VALUES (%s, %s, %s, %s)", routing_key=rk,
            keyspace="ks"), (a, b, c, v))
    for a, b, c, v in rows:
        rk = composite_routing_key(int_bytes(a), text_bytes(b))
        got = session.execute(SimpleStatement(
            "SELECT v FROM ks.t WHERE a = %s AND b = %s AND c = %s", routing_key=rk,
            keyspace="ks"), (a, b, c)).one()
        assert got is not None and got.v == v, (a, b, c, got, v)
    assert_routing(emu.snapshot() - before, emu, min_requests=1200)


def test_paging_large_partition(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 4)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    create_kv_table(session, "ks")
    ins = session.prepare("INSERT INTO ks.t (a, b, c, v) VALUES (?, ?, ?, ?)")
    n = 2500
    order = list(range(n))
    random.Random(3).shuffle(order)  # insertion order must not matter
    execute_windowed(session, ins, [(42, "big", c, "val-%05d" % c) for c in order])

    # Simple statement, automatic paging.
    rs = session.execute(SimpleStatement("SELECT c, v FROM ks.t WHERE a = 42 AND b = 'big'",
                                         fetch_size=100))
    assert len(rs.current_rows) == 100 and rs.has_more_pages
    got = [(r.c, r.v) for r in rs]
    assert got == [(c, "val-%05d" % c) for c in range(n)]

    # Prepared statement, manual paging with paging_state; count the pages.
    sel = session.prepare("SELECT c, v FROM ks.t WHERE a = ? AND b = ?")
    sel.fetch_size = 100
    seen, pages, state = [], 0, None
    deadline = time.monotonic() + 60
    while True:
        rs = session.execute(sel, (42, "big"), paging_state=state)
        pages += 1
        seen.extend(r.c for r in rs.current_rows)
        assert len(rs.current_rows) <= 100
        state = rs.paging_state
        if not rs.has_more_pages:
            break
        assert time.monotonic() < deadline and pages < 1000, "paging does not terminate"
    assert seen == list(range(n))
    assert pages >= 25, pages

    # Paging with a clustering restriction, and LIMIT.
    rs = session.execute(SimpleStatement(
        "SELECT c FROM ks.t WHERE a = 42 AND b = 'big' AND c >= 1000 AND c < 1250",
        fetch_size=100))
    assert [r.c for r in rs] == list(range(1000, 1250))
    rs = session.execute(SimpleStatement(
        "SELECT c FROM ks.t WHERE a = 42 AND b = 'big' LIMIT 333", fetch_size=100))
    assert [r.c for r in rs] == list(range(333))


def test_clustering_order_desc(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 2)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    session.execute("CREATE KEYSPACE ks WITH replication = %s" % SIMPLE_RF1)
    session.execute("CREATE TABLE ks.d (k int, c int, v text, PRIMARY KEY (k, c)) "
                    "WITH CLUSTERING ORDER BY (c DESC)")
    ins = session.prepare("INSERT INTO ks.d (k, c, v) VALUES (?, ?, ?)")
    execute_windowed(session, ins, [(1, c, str(c)) for c in range(300)])
    rs = session.execute(SimpleStatement("SELECT c FROM ks.d WHERE k = 1", fetch_size=50))
    assert [r.c for r in rs] == list(range(299, -1, -1))
    rs = session.execute("SELECT c FROM ks.d WHERE k = 1 ORDER BY c ASC")
    assert [r.c for r in rs] == list(range(300))


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

Addr = namedtuple("Addr", ["street", "zip"])

TYPES_DDL = (
    "CREATE TABLE ks.types (k int PRIMARY KEY, a ascii, bi bigint, bl blob, bo boolean, "
    "d date, de decimal, db double, du duration, f float, i4 inet, i6 inet, i int, "
    "si smallint, tx text, tm time, ts timestamp, tu timeuuid, ti tinyint, u uuid, vi varint, "
    "l list<int>, s set<text>, m map<text, int>, tp tuple<int, text, double>, "
    "ud frozen<addr>, nested map<text, frozen<list<int>>>)")

TYPE_COLUMNS = ["a", "bi", "bl", "bo", "d", "de", "db", "du", "f", "i4", "i6", "i", "si", "tx",
                "tm", "ts", "tu", "ti", "u", "vi", "l", "s", "m", "tp", "ud", "nested"]


def _setup_types(session):
    session.execute("CREATE KEYSPACE ks WITH replication = %s" % SIMPLE_RF1)
    session.execute("CREATE TYPE ks.addr (street text, zip int)")
    session.execute(TYPES_DDL)


def _normalize(col, v):
    """Bring a value (read by the driver, or expected) into a comparable form."""
    if v is None:
        return None
    if col == "d":
        return v if isinstance(v, datetime.date) else v.date()
    if col in ("i4", "i6"):
        return ipaddress.ip_address(v)
    if col == "tm":
        if isinstance(v, Time):
            return v.nanosecond_time
        return v if isinstance(v, int) else Time(v).nanosecond_time
    if col == "s":
        return set(v)
    if col == "m":
        return dict(v)
    if col == "nested":
        return {k: list(x) for k, x in v.items()}
    if col == "l":
        return list(v)
    if col == "ud":
        return (v.street, v.zip)
    if col == "tp":
        return tuple(v)
    return v


def _check_row(row, expected):
    for col, want in expected.items():
        got = _normalize(col, getattr(row, col))
        want = _normalize(col, want)
        assert got == want, "column %s: read %r, expected %r" % (col, got, want)


def test_native_and_collection_types_prepared(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 2)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    _setup_types(session)
    cluster.register_user_type("ks", "addr", Addr)
    ins = session.prepare("INSERT INTO ks.types (k, %s) VALUES (?, %s)" % (
        ", ".join(TYPE_COLUMNS), ", ".join("?" * len(TYPE_COLUMNS))))
    rows = {
        1: dict(a="ascii-ok", bi=-2**63, bl=b"\x00\x01\xfe\xff", bo=True,
                d=datetime.date(2024, 2, 29), de=decimal.Decimal("-123456789.000000000123456789"),
                db=-1.5e300, du=Duration(14, 3, 3_000_000_123), f=3.5, i4="192.168.10.1",
                i6="2001:db8::ff00:42:8329", i=-2**31, si=-2**15, tx="ünïcødé ✓ 'quoted'",
                tm=datetime.time(23, 59, 59, 999999), ts=datetime.datetime(2024, 1, 2, 3, 4, 5, 678000),
                tu=uuid.uuid1(), ti=-128, u=uuid.uuid4(), vi=-(2**100) + 7, l=[3, 1, 2, 1],
                s={"b", "a", "c"}, m={"x": 1, "y": -2}, tp=(7, "seven", 7.5),
                ud=Addr("Main St", 12345), nested={"k": [1, 2, 3], "e": [0]}),
        2: dict(a="", bi=2**63 - 1, bl=b"", bo=False, d=datetime.date(1970, 1, 1),
                de=decimal.Decimal("0.001"), db=0.0, du=Duration(0, 0, 1), f=-0.25,
                i4="0.0.0.0", i6="::1", i=2**31 - 1, si=2**15 - 1, tx="", tm=datetime.time(0, 0),
                ts=datetime.datetime(1969, 12, 31, 23, 59, 59, 1000), tu=uuid.uuid1(), ti=127,
                u=uuid.UUID(int=0), vi=2**64, l=[0], s={""}, m={"": 0}, tp=(None, None, None),
                ud=Addr(None, None), nested={"": []}),
    }
    for k, vals in rows.items():
        session.execute(ins, [k] + [vals[c] for c in TYPE_COLUMNS])
    session.execute("INSERT INTO ks.types (k) VALUES (3)")  # every other column null
    sel = session.prepare("SELECT * FROM ks.types WHERE k = ?")
    for k, vals in rows.items():
        row = session.execute(sel, (k,)).one()
        assert row is not None, k
        _check_row(row, vals)
        assert isinstance(row.ud, Addr)
    row = session.execute(sel, (3,)).one()
    assert all(getattr(row, c) is None for c in TYPE_COLUMNS), row

    # Column metadata the driver parsed from system_schema matches the DDL.
    table = cluster.metadata.keyspaces["ks"].tables["types"]
    assert [c.name for c in table.partition_key] == ["k"]
    assert table.columns["m"].cql_type == "map<text, int>"
    assert table.columns["ud"].cql_type in ("frozen<addr>", "frozen<ks.addr>")
    assert table.columns["du"].cql_type == "duration"


def test_native_and_collection_types_literals(emulator_factory, cluster_factory):
    """CQL literals typed by hand (what cqlsh and client-side interpolation send)."""
    emu = emulator_factory(3, 2)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    _setup_types(session)
    cluster.register_user_type("ks", "addr", Addr)
    session.execute(
        "INSERT INTO ks.types (k, a, bi, bl, bo, d, de, db, du, f, i4, i6, i, si, tx, tm, ts, "
        "tu, ti, u, vi, l, s, m, tp, ud, nested) VALUES (10, 'ascii-lit', 9223372036854775807, "
        "0xCafeBabe, false, '1970-01-01', -3.14159265358979323846264338, 2.5e-10, "
        "1y2mo3w4d5h6m7s8ms9us10ns, -0.25, '10.0.0.1', 'fe80::1', 2147483647, 32767, "
        "'it''s text', '08:12:54.123456789', '2011-02-03 04:05:06.789+0000', "
        "e4b2a250-8b2a-11ee-b9d1-0242ac120002, 127, 550e8400-e29b-41d4-a716-446655440000, "
        "-123456789012345678901234567890, [1, 2, 3], {'x', 'y'}, {'a': 1, 'b': 2}, "
        "(1, 'one', 1.5), {street: 'Lit Ave', zip: 99}, {'q': [9, 8]})")
    row = session.execute("SELECT * FROM ks.types WHERE k = 10").one()
    nanos_5h6m7s = ((5 * 3600 + 6 * 60 + 7) * 10**9) + 8 * 10**6 + 9 * 10**3 + 10
    expected = dict(
        a="ascii-lit", bi=2**63 - 1, bl=b"\xca\xfe\xba\xbe", bo=False, d=datetime.date(1970, 1, 1),
        de=decimal.Decimal("-3.14159265358979323846264338"), db=2.5e-10,
        du=Duration(14, 25, nanos_5h6m7s), f=-0.25, i4="10.0.0.1", i6="fe80::1", i=2**31 - 1,
        si=2**15 - 1, tx="it's text", tm=Time("08:12:54.123456789").nanosecond_time,
        ts=datetime.datetime(2011, 2, 3, 4, 5, 6, 789000),
        tu=uuid.UUID("e4b2a250-8b2a-11ee-b9d1-0242ac120002"), ti=127,
        u=uuid.UUID("550e8400-e29b-41d4-a716-446655440000"),
        vi=-123456789012345678901234567890, l=[1, 2, 3], s={"x", "y"}, m={"a": 1, "b": 2},
        tp=(1, "one", 1.5), ud=Addr("Lit Ave", 99), nested={"q": [9, 8]})
    assert row is not None
    _check_row(row, expected)

    # Client-side interpolation of parameters by the driver (SimpleStatement + %s).
    vals = dict(a="interp", bi=-5, bl=b"\x01\x02", bo=True, d=datetime.date(2000, 1, 1),
                de=decimal.Decimal("12.5"), db=0.5, f=1.25, i4="127.0.0.1", i=-7, si=-3,
                tx="a 'quoted' str", ts=datetime.datetime(2020, 5, 6, 7, 8, 9, 123000),
                ti=-1, u=uuid.UUID("12345678-1234-5678-1234-567812345678"), vi=10**30,
                l=[5, 6], s={"p"}, m={"k": 9})
    cols = sorted(vals)
    session.execute("INSERT INTO ks.types (k, %s) VALUES (11, %s)" % (
        ", ".join(cols), ", ".join(["%s"] * len(cols))), [vals[c] for c in cols])
    row = session.execute("SELECT * FROM ks.types WHERE k = %s", (11,)).one()
    _check_row(row, vals)


def test_counters(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 2)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    session.execute("CREATE KEYSPACE ks WITH replication = %s" % SIMPLE_RF1)
    session.execute("CREATE TABLE ks.cnt (k int PRIMARY KEY, n counter)")
    upd = session.prepare("UPDATE ks.cnt SET n = n + ? WHERE k = ?")
    for delta in (5, 10, -3):
        session.execute(upd, (delta, 1))
    execute_windowed(session, upd, [(1, k) for k in range(100, 150)] * 3)
    session.execute("UPDATE ks.cnt SET n = n - 3 WHERE k = 2")
    session.execute("UPDATE ks.cnt SET n = n + 1 WHERE k = 2")
    assert session.execute("SELECT n FROM ks.cnt WHERE k = 1").one().n == 12
    assert session.execute("SELECT n FROM ks.cnt WHERE k = 2").one().n == -2
    for k in range(100, 150):
        assert session.execute("SELECT n FROM ks.cnt WHERE k = %s", (k,)).one().n == 3
    with pytest.raises(InvalidRequest):
        session.execute("INSERT INTO ks.cnt (k, n) VALUES (3, 1)")


def test_lwt(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 4)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    session.execute("CREATE KEYSPACE ks WITH replication = %s" % SIMPLE_RF1)
    session.execute("CREATE TABLE ks.lwt (k int PRIMARY KEY, v text, w int)")
    ins = session.prepare("INSERT INTO ks.lwt (k, v, w) VALUES (?, ?, ?) IF NOT EXISTS")
    upd = session.prepare("UPDATE ks.lwt SET v = ? WHERE k = ? IF v = ?")
    dele = session.prepare("DELETE FROM ks.lwt WHERE k = ? IF EXISTS")
    plain = session.prepare("INSERT INTO ks.lwt (k, v, w) VALUES (?, ?, ?)")
    assert ins.is_lwt() and upd.is_lwt() and dele.is_lwt(), "LWT metadata mark missing"
    assert not plain.is_lwt()
    wait_pool_full(session, emu)

    before = emu.snapshot()
    r = session.execute(ins, (1, "first", 10))
    assert r.was_applied
    r = session.execute(ins, (1, "second", 20))
    assert not r.was_applied
    session.row_factory = dict_factory
    r = session.execute(ins, (1, "third", 30))
    row = r.one()
    assert row["[applied]"] is False and row["v"] == "first" and row["w"] == 10, row

    r = session.execute(upd, ("updated", 1, "first"))
    assert r.was_applied
    r = session.execute(upd, ("again", 1, "first"))
    assert not r.was_applied and r.one()["v"] == "updated"
    assert not session.execute(dele, (2,)).was_applied
    for k in range(10, 60):
        assert session.execute(ins, (k, "x", k)).was_applied
    assert_routing(emu.snapshot() - before, emu, require_every_shard=False, min_requests=55)

    assert session.execute(dele, (1,)).was_applied
    assert session.execute("SELECT * FROM ks.lwt WHERE k = 1").one() is None
    r = session.execute("INSERT INTO ks.lwt (k, v) VALUES (10, 'lit') IF NOT EXISTS")
    assert not r.was_applied and r.one()["v"] == "x"


def test_batches(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 2)
    cluster = cluster_factory(emu)
    session = cluster.connect()
    create_kv_table(session, "ks")
    session.execute("CREATE TABLE ks.cnt (k int PRIMARY KEY, n counter)")
    ins = session.prepare("INSERT INTO ks.t (a, b, c, v) VALUES (?, ?, ?, ?)")

    logged = BatchStatement(batch_type=BatchType.LOGGED)
    for c in range(50):
        logged.add(ins, (1, "x", c, "logged-%d" % c))
    logged.add(SimpleStatement("INSERT INTO ks.t (a, b, c, v) VALUES (1, 'x', 50, 'simple')"))
    session.execute(logged)
    got = [(r.c, r.v) for r in session.execute("SELECT c, v FROM ks.t WHERE a = 1 AND b = 'x'")]
    assert got == [(c, "logged-%d" % c) for c in range(50)] + [(50, "simple")]

    unlogged = BatchStatement(batch_type=BatchType.UNLOGGED)
    for a in range(20):
        unlogged.add(ins, (a, "u", 0, "u-%d" % a))
    session.execute(unlogged)
    for a in range(20):
        assert session.execute("SELECT v FROM ks.t WHERE a = %s AND b = 'u' AND c = 0",
                               (a,)).one().v == "u-%d" % a

    mixed = BatchStatement()
    mixed.add(session.prepare("UPDATE ks.t SET v = ? WHERE a = ? AND b = ? AND c = ?"),
              ("changed", 1, "x", 0))
    mixed.add(session.prepare("DELETE FROM ks.t WHERE a = ? AND b = ? AND c = ?"), (1, "x", 1))
    mixed.add("INSERT INTO ks.t (a, b, c, v) VALUES (%s, %s, %s, %s)", (1, "x", 99, "interp"))
    session.execute(mixed)
    got = dict((r.c, r.v) for r in session.execute("SELECT c, v FROM ks.t WHERE a = 1 AND b = 'x'"))
    assert got[0] == "changed" and 1 not in got and got[99] == "interp" and len(got) == 51

    cb = BatchStatement(batch_type=BatchType.COUNTER)
    upd = session.prepare("UPDATE ks.cnt SET n = n + ? WHERE k = ?")
    for k in range(5):
        cb.add(upd, (k + 1, k))
    session.execute(cb)
    session.execute(cb)
    for k in range(5):
        assert session.execute("SELECT n FROM ks.cnt WHERE k = %s", (k,)).one().n == 2 * (k + 1)


# ---------------------------------------------------------------------------
# Connection options
# ---------------------------------------------------------------------------

def test_lz4_compression(emulator_factory, cluster_factory):
    from cassandra.connection import locally_supported_compressions
    if "lz4" not in locally_supported_compressions:
        pytest.skip("lz4 module not importable")
    lz4_compress = locally_supported_compressions["lz4"][0]
    emu = emulator_factory(3, 2)
    cluster = cluster_factory(emu, compression=True)
    session = cluster.connect()
    wait_pool_full(session, emu)
    cc = cluster.control_connection._connection
    assert cc.compressor is lz4_compress, "control connection compressor: %r" % (cc.compressor,)
    conns = [c for pool in session.get_pools() for c in pool._connections.values()]
    assert len(conns) == 6
    for c in conns:
        assert c.compressor is lz4_compress, "pool connection %s compressor %r" % (
            c.endpoint, c.compressor)

    create_kv_table(session, "ks")
    ins, sel = prepare_kv(session, "ks")
    rnd = random.Random(5)
    big = [(i, "big", 0, ("compressible-%d " % i) * 4000) for i in range(30)]
    noisy = [(i, "noisy", 0, "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                     for _ in range(150_000))) for i in range(5)]
    small = kv_rows(500, seed=6)
    execute_windowed(session, ins, big + noisy + small)
    verify_rows(session, sel, big + noisy + small)


def test_authentication(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 2, "--auth", "cassandra:secret")
    good = cluster_factory(emu, auth_provider=PlainTextAuthProvider("cassandra", "secret"))
    session = good.connect()
    assert session.execute("SELECT key FROM system.local WHERE key='local'").one().key == "local"
    wait_pool_full(session, emu)  # every shard connection authenticated too
    create_kv_table(session, "ks")
    ins, sel = prepare_kv(session, "ks")
    rows = kv_rows(200, seed=7)
    execute_windowed(session, ins, rows)
    verify_rows(session, sel, rows)

    bad = cluster_factory(emu, auth_provider=PlainTextAuthProvider("cassandra", "wrong"))
    with pytest.raises(NoHostAvailable) as ei:
        bad.connect()
    errors = list(ei.value.errors.values())
    assert errors and all(isinstance(e, AuthenticationFailed) for e in errors), errors

    anon = cluster_factory(emu)
    with pytest.raises(NoHostAvailable) as ei:
        anon.connect()
    errors = list(ei.value.errors.values())
    assert errors and all(isinstance(e, AuthenticationFailed) for e in errors), errors


def test_use_keyspace(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 4)
    setup = cluster_factory(emu)
    s0 = setup.connect()
    create_kv_table(s0, "ks1")
    create_kv_table(s0, "ks2")
    s0.execute('CREATE KEYSPACE "MixedCase" WITH replication = %s' % SIMPLE_RF1)
    s0.execute('CREATE TABLE "MixedCase"."Tbl" ("Key" int PRIMARY KEY, "Val" text)')

    cluster = cluster_factory(emu)
    session = cluster.connect("ks1")
    assert session.keyspace == "ks1"
    wait_pool_full(session, emu)
    ins = session.prepare("INSERT INTO t (a, b, c, v) VALUES (?, ?, ?, ?)")
    sel = session.prepare("SELECT v FROM t WHERE a = ? AND b = ? AND c = ?")
    assert ins.routing_key_indexes == [0, 1]
    assert ins.column_metadata[0].keyspace_name == "ks1"  # bind specs name the keyspace
    rows = kv_rows(400, seed=8)
    before = emu.snapshot()
    execute_windowed(session, ins, rows)
    verify_rows(session, sel, rows)
    assert_routing(emu.snapshot() - before, emu, require_every_shard=False, min_requests=800)

    session.execute("USE ks2")
    assert session.keyspace == "ks2"
    session.execute("INSERT INTO t (a, b, c, v) VALUES (1, 'k', 1, 'in ks2')")
    assert session.execute("SELECT v FROM t WHERE a = 1 AND b = 'k' AND c = 1").one().v == "in ks2"
    assert s0.execute("SELECT v FROM ks1.t WHERE a = 1 AND b = 'k' AND c = 1").one() is None
    # The statement prepared under ks1 still targets ks1.
    a, b, c, v = rows[0]
    assert session.execute(sel, (a, b, c)).one().v == v

    session.set_keyspace("ks1")
    assert session.execute("SELECT v FROM t WHERE a = %s AND b = %s AND c = %s",
                           (a, b, c)).one().v == v

    session.execute('USE "MixedCase"')
    assert session.keyspace == "MixedCase"
    session.execute('INSERT INTO "Tbl" ("Key", "Val") VALUES (1, \'mixed\')')
    row = session.execute('SELECT "Key", "Val" FROM "Tbl" WHERE "Key" = 1').one()
    assert row.Key == 1 and row.Val == "mixed"

    with pytest.raises(InvalidRequest):
        session.execute("USE no_such_keyspace")
    assert session.execute('SELECT "Val" FROM "MixedCase"."Tbl" WHERE "Key" = 1').one().Val == "mixed"


def test_errors(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 2)
    cluster = cluster_factory(emu, protocol_version=4)  # pinned here on purpose
    session = cluster.connect()
    create_kv_table(session, "ks")

    for bad in ("SELEC * FROM system.local", "SELECT * FROM", "INSERT INTO ks.t (a) VALUES",
                "CREATE TABLE ks.x (a int PRIMARY KEY", "SELECT * FROM ks.t WHERE a = 'unterminated"):
        with pytest.raises(SyntaxException):
            session.execute(bad)
    with pytest.raises(InvalidRequest) as ei:
        session.execute("SELECT * FROM ks.no_such_table")
    assert "no_such_table" in str(ei.value)
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM no_such_ks.t")
    with pytest.raises(InvalidRequest):
        session.prepare("SELECT * FROM ks.no_such_table WHERE a = ?")
    with pytest.raises(InvalidRequest):
        session.execute("SELECT no_such_column FROM ks.t")
    with pytest.raises(InvalidRequest):
        session.execute("INSERT INTO ks.t (b, c, v) VALUES ('x', 1, 'missing a')")
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM system.peers_v2")
    with pytest.raises(AlreadyExists):
        session.execute("CREATE KEYSPACE ks WITH replication = %s" % SIMPLE_RF1)
    with pytest.raises(AlreadyExists):
        session.execute("CREATE TABLE ks.t (a int PRIMARY KEY)")
    # Errors do not break the connections.
    session.execute("INSERT INTO ks.t (a, b, c, v) VALUES (1, 'b', 1, 'ok')")
    assert session.execute("SELECT v FROM ks.t WHERE a = 1 AND b = 'b' AND c = 1").one().v == "ok"


def test_schema_change_events(emulator_factory, cluster_factory):
    """A second client learns about DDL through SCHEMA_CHANGE events pushed to
    its control connection (no manual refresh)."""
    emu = emulator_factory(3, 2)
    watcher = cluster_factory(emu, contact_nodes=(2,))
    watcher.connect()
    actor = cluster_factory(emu)
    s = actor.connect()
    create_kv_table(s, "evks")
    s.execute("CREATE TYPE evks.pt (x int, y int)")
    wait_until(lambda: "evks" in watcher.metadata.keyspaces
               and "t" in watcher.metadata.keyspaces["evks"].tables
               and "pt" in watcher.metadata.keyspaces["evks"].user_types, 20, interval=0.1,
               what="the watcher to see keyspace evks, table t and type pt via events")
    s.execute("DROP TABLE evks.t")
    wait_until(lambda: "t" not in watcher.metadata.keyspaces["evks"].tables, 20, interval=0.1,
               what="the watcher to see the table dropped")
    s.execute("DROP KEYSPACE evks")
    wait_until(lambda: "evks" not in watcher.metadata.keyspaces, 20, interval=0.1,
               what="the watcher to see the keyspace dropped")


# ---------------------------------------------------------------------------
# Multi-DC NetworkTopologyStrategy
# ---------------------------------------------------------------------------

def _dc_profile(dc, cl=ConsistencyLevel.LOCAL_ONE):
    return {EXEC_PROFILE_DEFAULT: ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=dc)),
        consistency_level=cl)}


def test_network_topology_two_dcs(emulator_factory, cluster_factory):
    emu = emulator_factory(6, 2, "--datacenters", "dc1,dc2", "--racks", "2")
    dc_of = lambda i: "dc%d" % (i % 2 + 1)  # noqa: E731
    rack_of = lambda i: "rack%d" % ((i // 2) % 2 + 1)  # noqa: E731
    c1 = cluster_factory(emu, contact_nodes=(0,), execution_profiles=_dc_profile("dc1"))
    s1 = c1.connect()
    c2 = cluster_factory(emu, contact_nodes=(1,), execution_profiles=_dc_profile("dc2"))
    s2 = c2.connect()
    for cluster in (c1, c2):
        for i in range(6):
            h = cluster.metadata.get_host(emu.ip(i))
            assert h is not None, "host %s not discovered" % emu.ip(i)
            assert (h.datacenter, h.rack, str(h.host_id)) == (dc_of(i), rack_of(i), emu.host_id(i))

    s1.execute("CREATE KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', "
               "'dc1': 2, 'dc2': 2}")
    s1.execute("CREATE TABLE ks.t (a int, b text, c int, v text, PRIMARY KEY ((a, b), c))")
    c2.refresh_schema_metadata()  # events are tested in test_schema_change_events
    assert "t" in c2.metadata.keyspaces["ks"].tables
    wait_pool_full(s1, emu, nodes=[0, 2, 4])
    wait_pool_full(s2, emu, nodes=[1, 3, 5])
    emu.wait_connections_on_every_shard()

    rows = kv_rows(1000, seed=9)
    # The driver's NTS placement: 2 replicas per DC, on distinct racks.
    for a, b, c, v in rows[:50]:
        rk = composite_routing_key(int_bytes(a), text_bytes(b))
        reps = c1.metadata.get_replicas("ks", rk)
        by_dc = Counter(h.datacenter for h in reps)
        assert by_dc == {"dc1": 2, "dc2": 2}, reps
        for dc in ("dc1", "dc2"):
            assert len({h.rack for h in reps if h.datacenter == dc}) == 2, reps

    ins1 = s1.prepare("INSERT INTO ks.t (a, b, c, v) VALUES (?, ?, ?, ?)")
    ins1.consistency_level = ConsistencyLevel.ALL
    sel2 = s2.prepare("SELECT v FROM ks.t WHERE a = ? AND b = ? AND c = ?")
    sel1 = s1.prepare("SELECT v FROM ks.t WHERE a = ? AND b = ? AND c = ?")
    before = emu.snapshot()
    execute_windowed(s1, ins1, rows)
    verify_rows(s2, sel2, rows)
    verify_rows(s1, sel1, rows[:300])
    assert_routing(emu.snapshot() - before, emu, min_requests=2300)


# ---------------------------------------------------------------------------
# Tablets
# ---------------------------------------------------------------------------

def _cached_tablets(cluster, ks, table):
    return list(cluster.metadata._tablets._tablets.get((ks, table), []))


def _check_tablet_cache(cluster, emu, ks, table, count, rf):
    tablets = _cached_tablets(cluster, ks, table)
    assert 0 < len(tablets) <= count, tablets
    valid_last = set(tablet_last_tokens(count))
    host_ids = {emu.host_id(i) for i in range(emu.nodes)}
    for t in tablets:
        assert t.last_token in valid_last, "tablet (%d, %d] is not on a %d-tablet boundary" % (
            t.first_token, t.last_token, count)
        assert t.first_token < t.last_token
        assert len(t.replicas) == rf, t.replicas
        for host, shard in t.replicas:
            assert str(host) in host_ids and 0 <= shard < emu.shards, t.replicas
    return tablets


def _sequential_pass(session, stmt, params):
    return [session.execute(stmt, p) for p in params]


def test_tablets_payloads_and_convergence(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 4, "--tablets")
    cluster = cluster_factory(emu)
    session = cluster.connect()
    create_kv_table(session, "tks",
                    replication="{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}",
                    extra=" AND tablets = {'enabled': true, 'initial': 8}")
    ins, sel = prepare_kv(session, "tks")
    wait_pool_full(session, emu)

    rows = kv_rows(2000, seed=10)
    before = emu.snapshot()
    _sequential_pass(session, ins, rows)
    d = (emu.snapshot() - before).routing_summary()
    assert d["requests"] >= 2000, d
    assert d["misrouted_node"] + d["misrouted_shard"] <= 8, d
    assert d["payloads"] > 0, d
    assert d["payloads"] == d["misrouted_node"] + d["misrouted_shard"], (
        "one tablets-routing-v1 payload per misrouted request expected: %r" % d)
    _check_tablet_cache(cluster, emu, "tks", "t", 8, 1)

    # All tablets learned: reads are routed exactly.
    before = emu.snapshot()
    verify_rows(session, sel, rows, use_async=False)
    d = (emu.snapshot() - before).routing_summary()
    assert d["misrouted_node"] + d["misrouted_shard"] == 0, d

    status, body = emu.admin(0, "/admin/tablets/shuffle")
    assert status == 200, (status, body)
    before = emu.snapshot()
    verify_rows(session, sel, rows, use_async=False)  # data survives tablet moves
    d = (emu.snapshot() - before).routing_summary()
    assert d["misrouted_node"] + d["misrouted_shard"] <= 8, d
    assert d["payloads"] == d["misrouted_node"] + d["misrouted_shard"], d
    _check_tablet_cache(cluster, emu, "tks", "t", 8, 1)

    before = emu.snapshot()
    _sequential_pass(session, ins, rows[:1000])
    verify_rows(session, sel, rows[:1000], use_async=True)
    d = (emu.snapshot() - before).routing_summary()
    assert d["misrouted_node"] + d["misrouted_shard"] == 0, "not converged after shuffle: %r" % d


def test_tablets_default_and_opt_out(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 4, "--tablets", "--initial-tablets", "4")
    cluster = cluster_factory(emu)
    session = cluster.connect()
    nts = "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"
    create_kv_table(session, "tdefault", replication=nts)
    create_kv_table(session, "vnodes", replication=nts, extra=" AND tablets = {'enabled': false}")
    tins, tsel = prepare_kv(session, "tdefault")
    vins, vsel = prepare_kv(session, "vnodes")
    wait_pool_full(session, emu)
    rows = kv_rows(800, seed=11)

    before = emu.snapshot()
    _sequential_pass(session, vins, rows)
    verify_rows(session, vsel, rows)
    d = (emu.snapshot() - before).routing_summary()
    assert d == dict(d, misrouted_node=0, misrouted_shard=0, payloads=0), d
    assert not _cached_tablets(cluster, "vnodes", "t")

    before = emu.snapshot()
    _sequential_pass(session, tins, rows)
    d = (emu.snapshot() - before).routing_summary()
    assert d["misrouted_node"] + d["misrouted_shard"] <= 4 and d["payloads"] > 0, d
    _check_tablet_cache(cluster, emu, "tdefault", "t", 4, 1)
    before = emu.snapshot()
    verify_rows(session, tsel, rows)
    d = (emu.snapshot() - before).routing_summary()
    assert d["misrouted_node"] + d["misrouted_shard"] == 0, d


# ---------------------------------------------------------------------------
# Failure handling
# ---------------------------------------------------------------------------

def test_simulated_nat_falls_back_and_serves_correctly(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 4, "--simulate-nat")
    cluster = cluster_factory(emu)
    session = cluster.connect()

    def nat_detected():
        pools = session.get_pools()
        return len(pools) == 3 and all(
            p.advanced_shardaware_block_until > time.time() for p in pools)

    wait_until(nat_detected, 30, interval=0.1,
               describe=lambda: {str(p.host): p.advanced_shardaware_block_until
                                 for p in session.get_pools()},
               what="the driver to detect the wrong-shard (NAT) landing on every node")
    snap = emu.snapshot()
    for n in range(3):
        assert snap.get("emulator_connections_accepted_total", node=n,
                        port=emu.shard_aware_port) >= 1

    create_kv_table(session, "ks")
    ins, sel = prepare_kv(session, "ks")
    rows = kv_rows(1500, seed=12)
    execute_windowed(session, ins, rows)
    verify_rows(session, sel, rows)
    # Falling back to the regular port (least-loaded shard) still fills the pools.
    state = {}

    def filled():
        verify_rows(session, sel, rows[:30])  # requests trigger connects to missing shards
        state["stats"] = session.cluster.shard_aware_stats()
        return all(s["connected"] == 4 for s in state["stats"].values())

    wait_until(filled, 60, interval=0.2, describe=lambda: state,
               what="pools to fill through the regular port after NAT detection")
    verify_rows(session, sel, rows)


def test_shard_aware_port_unreachable_still_serves(emulator_factory, cluster_factory):
    """The driver cannot open shard-aware-port connections; whatever pool it
    ends up with, every request is served correctly."""
    emu = emulator_factory(3, 4, "--shard-aware-port-unreachable")
    cluster = cluster_factory(emu, connect_timeout=2)
    session = cluster.connect()
    assert session.cluster.is_shard_aware()
    create_kv_table(session, "ks")
    ins, sel = prepare_kv(session, "ks")
    rows = kv_rows(800, seed=15)
    execute_windowed(session, ins, rows)
    verify_rows(session, sel, rows)
    snap = emu.snapshot()
    assert snap.get("emulator_connections_accepted_total", port=emu.shard_aware_port) == 0


def _median_latency_ms(session, stmt, params_list, host=None):
    samples = []
    for p in params_list:
        t = time.perf_counter()
        session.execute(stmt, p, host=host)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return samples[len(samples) // 2]


def test_admin_delay_and_misroute_penalty(emulator_factory, cluster_factory):
    """Injected latency is a lower bound only (no upper-bound timing asserts)."""
    emu = emulator_factory(3, 2, "--misroute-node-delay-us", "4000")
    cluster = cluster_factory(emu)
    session = cluster.connect()
    create_kv_table(session, "ks")
    ins, sel = prepare_kv(session, "ks")
    wait_pool_full(session, emu)
    rows = kv_rows(60, seed=16)
    execute_windowed(session, ins, rows)
    node0 = cluster.metadata.get_host(emu.ip(0))
    foreign = [(a, b, c) for a, b, c, _ in rows if cluster.metadata.get_replicas(
        "ks", composite_routing_key(int_bytes(a), text_bytes(b)))[0] != node0][:20]
    assert foreign
    assert _median_latency_ms(session, sel, foreign, host=node0) >= 4.0

    status, body = emu.admin(1, "/admin/delay?us=3000")
    assert status == 200, (status, body)
    node1 = cluster.metadata.get_host(emu.ip(1))
    own1 = [(a, b, c) for a, b, c, _ in rows if cluster.metadata.get_replicas(
        "ks", composite_routing_key(int_bytes(a), text_bytes(b)))[0] == node1][:20]
    assert own1
    assert _median_latency_ms(session, sel, own1) >= 3.0
    status, body = emu.admin(1, "/admin/delay?us=0")
    assert status == 200, (status, body)
    verify_rows(session, sel, rows)


@pytest.mark.parametrize("victim", [1, 0], ids=["peer-node", "control-connection-node"])
def test_node_restart(emulator_factory, cluster_factory, victim):
    emu = emulator_factory(3, 4)
    cluster = cluster_factory(emu, reconnection_policy=fresh_reconnect())
    session = cluster.connect()
    create_kv_table(session, "ks")
    ins, sel = prepare_kv(session, "ks")
    wait_pool_full(session, emu)
    rows = kv_rows(900, seed=13)
    execute_windowed(session, ins, rows)

    victim_ip = emu.ip(victim)
    host = cluster.metadata.get_host(victim_ip)
    assert host is not None and host.is_up
    owned = [r for r in rows if victim_ip in {
        h.address for h in cluster.metadata.get_replicas(
            "ks", composite_routing_key(int_bytes(r[0]), text_bytes(r[1])))}]
    assert owned, "no row is owned by %s" % victim_ip

    status, body = emu.admin(victim, "/admin/restart?down_ms=1500")
    assert status == 200, (status, body)

    def seen_down():
        # Requests routed to the restarting node make the driver notice the
        # closed connections (events from the control connection may too).
        for a, b, c, _ in owned[:3]:
            try:
                session.execute(sel, (a, b, c))
            except Exception:
                pass
        return not host.is_up

    wait_until(seen_down, 10, interval=0.05, what="the driver to mark %s down" % victim_ip)
    wait_until(lambda: host.is_up, 60, interval=0.1, what="the driver to mark %s up" % victim_ip)
    wait_pool_full(session, emu, timeout=60)
    # The control connection survives (moved to another node if it was on the victim).
    wait_until(lambda: cluster.control_connection._connection is not None
               and not cluster.control_connection._connection.is_closed, 30,
               what="a live control connection")

    before = emu.snapshot()
    verify_rows(session, sel, rows)  # data written before the restart is still there
    more = kv_rows(300, seed=14)
    execute_windowed(session, ins, more)
    verify_rows(session, sel, more)
    assert_routing(emu.snapshot() - before, emu, min_requests=1500)
    # DDL after the restart still reaches the driver's metadata (events or refresh).
    session.execute("CREATE TABLE ks.after_restart (k int PRIMARY KEY)")
    assert "after_restart" in cluster.metadata.keyspaces["ks"].tables
    assert emu.alive()

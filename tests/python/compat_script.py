"""A program written against scylla-driver's API, and nothing else.

test_sshard_compat.py runs it unchanged twice on the same emulator: with
scylla-driver, and with scylla_shard through scylla_shard.compat (the
`cassandra` modules aliased to scylla_shard's). It prints one line per
step (reprs of rows, exception class names and messages); both runs must
print the same lines.

    python compat_script.py HOST PORT KEYSPACE
"""

import datetime
import decimal
import sys
import threading
import uuid

from cassandra import AlreadyExists, ConsistencyLevel, InvalidRequest
from cassandra.cluster import Cluster
from cassandra.protocol import SyntaxException
from cassandra.query import (BatchStatement, BatchType, SimpleStatement, dict_factory,
                             named_tuple_factory, tuple_factory)
from cassandra.util import Date, Duration, Time

host, port, ks = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def out(step, value):
    print("%s: %s" % (step, str(value).replace(ks, "KS")))


cluster = Cluster(contact_points=[host], port=port, protocol_version=4)
session = cluster.connect()
out("local", session.execute("SELECT key, cluster_name FROM system.local").one())

session.execute("CREATE KEYSPACE %s WITH replication = "
                "{'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
session.set_keyspace(ks)
session.execute("CREATE TYPE addr (street text, zip int)")
session.execute("""CREATE TABLE t (k int PRIMARY KEY, a ascii, bi bigint, bl blob, bo boolean,
    d date, de decimal, db double, du duration, f float, i4 inet, i int, si smallint, tx text,
    tm time, ts timestamp, ti tinyint, u uuid, vi varint, l list<int>, s set<text>,
    m map<text, int>, tp frozen<tuple<int, text>>, ud frozen<addr>)""")

ins = session.prepare("INSERT INTO t (k, a, bi, bl, bo, d, de, db, du, f, i4, i, si, tx, tm, ts, "
                      "ti, u, vi, l, s, m, tp, ud) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
out("prepared", ins.query_string)
values = [1, "ascii", -2**63, b"\x00\xff", True, datetime.date(2024, 2, 29),
          decimal.Decimal("-1.25"), 1e300, Duration(1, 2, 3), 1.5, "10.0.0.1", -7, 300,
          "ünï 'q'", datetime.time(1, 2, 3, 4000), datetime.datetime(2024, 1, 2, 3, 4, 5, 6000),
          -1, uuid.UUID("12345678-1234-5678-1234-567812345678"), 2**70, [3, 1, 2],
          {"b", "a"}, {"y": 2, "x": 1}, (1, "one"), ("Main", 1)]
session.execute(ins, values)
session.execute(ins, [2] + [None] * 23)
session.execute("INSERT INTO t (k, tx, d, tm, l, m) VALUES (%s, %s, %s, %s, %s, %s)",
                (3, "literal", Date(20000), Time(123456789), [9], {"k": 3}))
sel = session.prepare("SELECT * FROM t WHERE k = ?")
for k in (1, 2, 3):
    out("row %d" % k, session.execute(sel, (k,)).one())
out("missing", session.execute(sel, (99,)).one())

for factory in (tuple_factory, dict_factory, named_tuple_factory):
    session.row_factory = factory
    out("factory %s" % factory.__name__,
        session.execute("SELECT k, tx FROM t WHERE k = %s", (3,)).one())

session.execute("CREATE TABLE p (pk int, c int, v text, PRIMARY KEY (pk, c))")
pins = session.prepare("INSERT INTO p (pk, c, v) VALUES (?, ?, ?)")
for c in range(25):
    session.execute(pins, (0, c, "v%d" % c))
stmt = SimpleStatement("SELECT c, v FROM p WHERE pk = 0", fetch_size=7)
rs = session.execute(stmt)
out("first page", (len(rs.current_rows), rs.has_more_pages))
out("all pages", [r.c for r in rs])
first = session.execute(stmt)
resumed = session.execute(stmt, paging_state=first.paging_state)
out("resumed", [r.c for r in resumed.current_rows])
out("one", session.execute(stmt).one())

batch = BatchStatement(batch_type=BatchType.UNLOGGED)
for c in range(3):
    batch.add(pins, (1, c, "batched"))
batch.add(SimpleStatement("INSERT INTO p (pk, c, v) VALUES (%s, %s, %s)"), (1, 9, "simple"))
session.execute(batch)
out("batch", list(session.execute("SELECT c, v FROM p WHERE pk = 1")))

lwt = session.prepare("INSERT INTO p (pk, c, v) VALUES (?, ?, ?) IF NOT EXISTS")
out("lwt first", session.execute(lwt, (2, 0, "a")).was_applied)
rs = session.execute(lwt, (2, 0, "b"))
out("lwt second", (rs.was_applied, rs.one()))

for name, query in (("syntax", "SELEC x"), ("invalid", "SELECT * FROM nope"),
                    ("exists", "CREATE TABLE t (k int PRIMARY KEY)")):
    try:
        session.execute(query)
        out(name, "no error")
    except (SyntaxException, InvalidRequest, AlreadyExists) as exc:
        out(name, "%s %s" % (type(exc).__name__, exc))

futures = [session.execute_async(sel, (k,)) for k in (1, 2, 3)]
out("async", [f.result().one().k for f in futures])
done = threading.Event()
got = []
f = session.execute_async("SELECT c FROM p WHERE pk = 0 LIMIT 2")
f.add_callbacks(lambda rows: (got.append(list(rows)), done.set()),
                lambda exc: (got.append(exc), done.set()))
done.wait(10)
out("callback", got)
err = []
f = session.execute_async("SELECT * FROM nope")
f.add_callbacks(lambda rows: done.set(), lambda exc: (err.append(type(exc).__name__), done.set()))
try:
    f.result()
except InvalidRequest:
    pass
out("errback", err)
s = SimpleStatement("SELECT k FROM t WHERE k = 1", consistency_level=ConsistencyLevel.ONE)
out("consistency", (ConsistencyLevel.value_to_name[s.consistency_level],
                    session.execute(s).one()))
keyspace = cluster.metadata.keyspaces[ks]
out("replication", (keyspace.name, keyspace.replication_strategy.replication_factor))
table = keyspace.tables["p"]
out("table", (table.name, table.keyspace_name, [c.name for c in table.partition_key],
              [c.name for c in table.clustering_key], [c.name for c in table.primary_key]))
out("columns", [(c.name, c.cql_type, c.is_static, c.is_reversed)
                for c in keyspace.tables["t"].columns.values()
                if c.cql_type.split("<")[0] not in ("frozen", "tuple", "addr")])
udt = keyspace.user_types["addr"]
out("user type", (udt.name, list(udt.field_names), list(udt.field_types)))
out("hosts", sorted(h.endpoint.address if hasattr(h.endpoint, "address") else h.address
                    for h in cluster.metadata.all_hosts()))
out("shard aware", cluster.is_shard_aware())
out("shard stats", sorted((h, v["shards_count"]) for h, v in
                          (cluster.shard_aware_stats() or {}).items()))
cluster.shutdown()
out("done", True)

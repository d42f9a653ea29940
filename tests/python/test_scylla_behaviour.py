"""Where ScyllaDB differs from Cassandra, seen through the real Python
`scylla-driver`: stored order of sets and maps, empty collections, LWT
results, request validation, tracing, selector functions and JSON, batch
size warnings, and errors for unsupported syntax in CQL terms.
"""

import datetime

import pytest

from cassandra import InvalidRequest
from cassandra.query import BatchStatement, BatchType, SimpleStatement, dict_factory

from driver_support import SIMPLE_RF1


@pytest.fixture
def session(emulator_factory, cluster_factory):
    emu = emulator_factory(3, 2)
    cluster = cluster_factory(emu)
    s = cluster.connect()
    s.execute("CREATE KEYSPACE ks WITH replication = %s" % SIMPLE_RF1)
    return s


def test_bound_sets_and_maps_are_stored_sorted(session):
    session.execute("CREATE TABLE ks.c (k int PRIMARY KEY, s set<int>, m map<text, int>, "
                    "n map<int, frozen<set<int>>>, fs frozen<set<int>>, v int)")
    ins = session.prepare("INSERT INTO ks.c (k, s, m, n, fs, v) VALUES (?, ?, ?, ?, ?, 1)")
    # Lists and unordered dicts are encoded in the order given.
    session.execute(ins, (1, [3, 1, 2, 3], {"z": 1, "a": 2}, {9: [5, 4], -1: [2, 1, 2]}, [3, 2, 1]))
    row = session.execute("SELECT toJson(s) AS s, toJson(m) AS m, toJson(n) AS n, m AS raw "
                          "FROM ks.c WHERE k = 1").one()
    assert row.s == "[1, 2, 3]"
    assert row.m == '{"a": 2, "z": 1}'
    assert row.n == '{"-1": [1, 2], "9": [4, 5]}'
    assert list(row.raw.keys()) == ["a", "z"]
    upd = session.prepare("UPDATE ks.c SET s = ?, m = ? WHERE k = 2")
    session.execute(upd, ([9, 8, 9], {"y": 1, "b": 0}))
    row = session.execute("SELECT toJson(s) AS s, toJson(m) AS m FROM ks.c WHERE k = 2").one()
    assert (row.s, row.m) == ("[8, 9]", '{"b": 0, "y": 1}')
    # The frozen set compares equal to its sorted literal.
    hit = session.execute("SELECT v FROM ks.c WHERE fs = {1, 2, 3} ALLOW FILTERING").one()
    assert hit is not None and hit.v == 1


def test_empty_collections(session):
    session.execute("CREATE TABLE ks.e (k int PRIMARY KEY, m map<text, int>, s set<int>, "
                    "fm frozen<map<text, int>>)")
    ins = session.prepare("INSERT INTO ks.e (k, m, s) VALUES (?, ?, ?)")
    session.execute(ins, (1, {}, []))
    session.execute("INSERT INTO ks.e (k, m, s) VALUES (2, {}, {})")
    for k in (1, 2):
        row = session.execute("SELECT m, s FROM ks.e WHERE k = %s", (k,)).one()
        assert (row.m, row.s) == (None, None), (k, row)
    session.execute("INSERT INTO ks.e (k, fm) VALUES (3, {'x': 1})")
    session.execute("UPDATE ks.e SET fm = {} WHERE k = 3")
    row = session.execute("SELECT toJson(fm) AS j FROM ks.e WHERE k = 3").one()
    assert row.j == "{}", "an empty frozen map is a value, not a deletion"


def test_lwt_results_carry_the_row_every_time(session):
    session.execute("CREATE TABLE ks.l (k int PRIMARY KEY, v text, w int)")
    ins = session.prepare("INSERT INTO ks.l (k, v, w) VALUES (?, ?, ?) IF NOT EXISTS")
    upd = session.prepare("UPDATE ks.l SET v = ? WHERE k = ? IF w = ?")
    # PREPARED announces the result columns (the driver skips metadata).
    assert [c[2] for c in ins.result_metadata] == ["[applied]", "k", "v", "w"]
    assert [c[2] for c in upd.result_metadata] == ["[applied]", "w"]
    session.row_factory = dict_factory
    first = session.execute(ins, (1, "first", 10))
    assert first.was_applied
    assert first.one() == {"[applied]": True, "k": None, "v": None, "w": None}
    second = session.execute(ins, (1, "second", 20))
    assert not second.was_applied
    assert second.one() == {"[applied]": False, "k": 1, "v": "first", "w": 10}
    applied = session.execute(upd, ("updated", 1, 10))
    assert applied.one() == {"[applied]": True, "w": 10}
    refused = session.execute(upd, ("again", 1, 99))
    assert refused.one() == {"[applied]": False, "w": 10}
    batch = BatchStatement()
    batch.add(SimpleStatement("UPDATE ks.l SET w = 11 WHERE k = 1 IF w = 10"))
    batch.add(SimpleStatement("UPDATE ks.l SET v = 'b' WHERE k = 1"))
    result = session.execute(batch)
    assert result.was_applied
    assert result.column_names == ["[applied]", "k", "w"]
    assert len(result.current_rows) == 2


def test_validation_errors(session):
    session.execute("CREATE TABLE ks.v (k text, c int, c2 int, v int, PRIMARY KEY (k, c, c2))")
    stmt = session.prepare("SELECT * FROM ks.v WHERE k = ?")
    with pytest.raises(InvalidRequest, match="Invalid amount of bind variables: expected 1 received 2"):
        session.execute(_with_extra_value(stmt, "a", "extra"))
    with pytest.raises(InvalidRequest, match="Key may not be empty"):
        session.execute("INSERT INTO ks.v (k, c, c2, v) VALUES ('', 1, 1, 1)")
    with pytest.raises(InvalidRequest, match="might involve data filtering"):
        session.execute("SELECT * FROM ks.v WHERE c = 1")
    with pytest.raises(InvalidRequest, match='PRIMARY KEY column "c2" cannot be restricted'):
        session.execute("SELECT * FROM ks.v WHERE k = 'a' AND c2 = 1")
    assert list(session.execute("SELECT * FROM ks.v WHERE c = 1 ALLOW FILTERING")) == []


def _with_extra_value(prepared, *values):
    """A bound statement carrying more values than the statement has markers
    (the driver refuses to bind them, so the values are set directly)."""
    bound = prepared.bind(values[:1])
    bound.values = list(bound.values) + [v.encode() for v in values[1:]]
    return bound


def test_tracing(session):
    session.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
    rs = session.execute("INSERT INTO ks.t (k, v) VALUES (1, 'x')", trace=True)
    trace = rs.get_query_trace(max_wait_sec=10)
    assert trace.request_type == "Execute CQL3 query"
    assert trace.parameters["query"] == "INSERT INTO ks.t (k, v) VALUES (1, 'x')"
    assert trace.duration is not None and trace.coordinator
    assert [e.description for e in trace.events][0] == "Parsing a statement"
    sel = session.prepare("SELECT v FROM ks.t WHERE k = ?")
    traced = session.execute(sel, (1,), trace=True)
    assert traced.get_query_trace(max_wait_sec=10).request_type.startswith(
        "Execute CQL3 prepared query [")
    untraced = session.execute(sel, (1,))
    assert not untraced.response_future._query_traces, "no tracing id without the flag"


def test_functions_aggregates_and_json(session):
    session.execute("CREATE TABLE ks.f (k int, c int, v int, ts timestamp, PRIMARY KEY (k, c))")
    ins = session.prepare("INSERT INTO ks.f (k, c, v, ts) VALUES (1, ?, ?, ?)")
    for c in (1, 2, 3):
        session.execute(ins, (c, c * 10, datetime.datetime(2011, 2, 3, 4, 5, c)))
    row = session.execute("SELECT count(*), min(v), max(v), sum(v), avg(v) FROM ks.f WHERE k = 1").one()
    assert tuple(row) == (3, 10, 30, 60, 20)
    assert row._fields[1] == "system_min_v"  # the driver's name for system.min(v)
    row = session.execute("SELECT toUnixTimestamp(ts), toDate(ts), CAST(v AS text) FROM ks.f "
                          "WHERE k = 1 AND c = 1").one()
    assert row[0] == 1296705901000 and str(row[1]) == "2011-02-03" and row[2] == "10"
    row = session.execute("SELECT JSON c, v, ts FROM ks.f WHERE k = 1 AND c = 2").one()
    assert row[0] == '{"c": 2, "v": 20, "ts": "2011-02-03 04:05:02.000Z"}'
    session.execute("""INSERT INTO ks.f JSON '{"k": 2, "c": 1, "v": 5}'""")
    assert session.execute("SELECT v FROM ks.f WHERE k = 2 AND c = 1").one().v == 5
    grouped = session.execute("SELECT k, count(*) FROM ks.f GROUP BY k")
    assert sorted(tuple(r) for r in grouped) == [(1, 3), (2, 1)]


def test_large_batch_warning(session):
    session.execute("CREATE TABLE ks.b (k int PRIMARY KEY, v blob)")
    ins = session.prepare("INSERT INTO ks.b (k, v) VALUES (?, ?)")
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    for k in range(3):
        batch.add(ins, (k, b"\x07" * 50000))
    rs = session.execute(batch)
    assert rs.response_future.warnings == [
        "Unlogged batch modifying 3 partitions in ks.b is of size 150012 bytes, exceeding "
        "specified WARN threshold of 131072 by 18940."]
    small = session.execute(ins, (9, b"x"))
    assert not small.response_future.warnings


def test_unsupported_syntax_errors_are_cql_text(session):
    session.execute("CREATE TABLE ks.u (k int PRIMARY KEY, m map<text, int>)")
    for query, fragment in (("SELECT ks.myfn(k) FROM ks.u", "ks.myfn"),
                            ("SELECT * FROM ks.u WHERE m['a'] = 1 ALLOW FILTERING", "m['a'] = 1")):
        with pytest.raises(InvalidRequest) as ei:
            session.execute(query)
        message = str(ei.value)
        assert fragment in message, message
        assert "QualifiedName" not in message and "Selector" not in message, message

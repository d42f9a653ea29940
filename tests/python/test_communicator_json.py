"""The communicator's JSON-lines front end (--listen-json-unix), against a
3-node x 4-shard emulator, through a plain Unix socket as any language
would use it: every CQL type out as JSON (from CQL literals and from typed
params), paging, errors (server and request errors, the connection going
on), and 1,000 concurrent requests on one socket, answered by id.
"""

import json
import socket

import pytest

NODES, SHARDS = 3, 4
REPLICATION = "{'class': 'NetworkTopologyStrategy', 'replication_factor': 2}"


class JsonClient:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buffer = b""

    def send(self, *requests):
        data = b"".join(json.dumps(r).encode() + b"\n" for r in requests)
        self.sock.sendall(data)

    def send_raw(self, data):
        self.sock.sendall(data)

    def receive(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise AssertionError("the daemon closed the JSON connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def call(self, query, **fields):
        self.send(dict(id="call", query=query, **fields))
        response = self.receive()
        assert response["id"] == "call"
        return response

    def ok(self, query, **fields):
        response = self.call(query, **fields)
        assert "error" not in response, response
        return response

    def close(self):
        self.sock.close()


@pytest.fixture
def json_client(emulator_factory, communicator_factory, tmp_path):
    emu = emulator_factory(NODES, SHARDS)
    json_socket = str(tmp_path / "json.sock")
    communicator_factory(emu, "--listen-json-unix", json_socket)
    clients = []

    def connect():
        c = JsonClient(json_socket)
        clients.append(c)
        return c

    yield connect
    for c in clients:
        c.close()


TYPES_DDL = (
    "CREATE TABLE js.types (k int PRIMARY KEY, a ascii, bi bigint, bl blob, bo boolean, "
    "d date, de decimal, db double, du duration, f float, i4 inet, i6 inet, i int, "
    "si smallint, tx text, tm time, ts timestamp, tu timeuuid, ti tinyint, u uuid, vi varint, "
    "l list<int>, s set<text>, m map<text, int>, mi map<int, text>, tp tuple<int, text, double>, "
    "ud frozen<addr>, nested map<text, frozen<list<int>>>)")

# What each column reads back as (the JSON forms of json_values.rs).
EXPECTED = {
    "k": 1, "a": "ascii-ok", "bi": -9223372036854775808, "bl": "0x0001feff", "bo": True,
    "d": "2024-02-29", "de": "-123456789.000000000123456789", "db": -1.5e300,
    "du": "1y2mo3d3s123ns", "f": 3.5, "i4": "192.168.10.1", "i6": "2001:db8::ff00:42:8329",
    "i": -2147483648, "si": -32768, "tx": "ünïcødé ✓ 'quoted'", "tm": "23:59:59.999999000",
    "ts": "2024-01-02T03:04:05.678Z", "tu": "e4b2a250-8b2a-11ee-b9d1-0242ac120002", "ti": -128,
    "u": "550e8400-e29b-41d4-a716-446655440000", "vi": "-1267650600228229401496703205369",
    "l": [3, 1, 2, 1], "s": ["a", "b", "c"], "m": {"x": 1, "y": -2}, "mi": {"1": "one", "2": "two"},
    "tp": [7, "seven", 7.5], "ud": {"street": "Main St", "zip": 12345},
    "nested": {"e": [0], "k": [1, 2, 3]},
}
COLUMNS = [c for c in EXPECTED if c != "k"]


def setup_types(c):
    c.ok("CREATE KEYSPACE js WITH replication = %s" % REPLICATION)
    c.ok("CREATE TYPE js.addr (street text, zip int)")
    c.ok(TYPES_DDL)


def test_every_type_out_as_json_from_literals_and_params(json_client):
    c = json_client()
    setup_types(c)
    # From typed params: each value in the JSON form it reads back as.
    insert = "INSERT INTO js.types (k, %s) VALUES (?, %s)" % (
        ", ".join(COLUMNS), ", ".join("?" * len(COLUMNS)))
    c.ok(insert, params=[EXPECTED[col] for col in ["k"] + COLUMNS])
    # From CQL literals (no params: a simple statement).
    c.ok("INSERT INTO js.types (k, a, bi, bl, bo, d, de, db, du, f, i4, i6, i, si, tx, tm, ts, "
         "tu, ti, u, vi, l, s, m, mi, tp, ud, nested) VALUES (2, 'ascii-ok', "
         "-9223372036854775808, 0x0001FEFF, true, '2024-02-29', -123456789.000000000123456789, "
         "-1.5e300, 1y2mo3d3s123ns, 3.5, '192.168.10.1', '2001:db8::ff00:42:8329', -2147483648, "
         "-32768, 'ünïcødé ✓ ''quoted''', '23:59:59.999999', '2024-01-02 03:04:05.678+0000', "
         "e4b2a250-8b2a-11ee-b9d1-0242ac120002, -128, 550e8400-e29b-41d4-a716-446655440000, "
         "-1267650600228229401496703205369, [3, 1, 2, 1], {'c', 'a', 'b'}, {'x': 1, 'y': -2}, "
         "{1: 'one', 2: 'two'}, (7, 'seven', 7.5), {street: 'Main St', zip: 12345}, "
         "{'k': [1, 2, 3], 'e': [0]})")
    c.ok("INSERT INTO js.types (k) VALUES (3)")
    for k in (1, 2):
        response = c.ok("SELECT * FROM js.types WHERE k = ?", params=[k])
        assert len(response["rows"]) == 1
        row = response["rows"][0]
        assert set(response["columns"]) == set(EXPECTED)
        for col, want in EXPECTED.items():
            if col == "k":
                want = k
            assert row[col] == want, "k=%d column %s: %r, expected %r" % (k, col, row[col], want)
    # Every other column null.
    row = c.ok("SELECT * FROM js.types WHERE k = 3")["rows"][0]
    assert all(row[col] is None for col in COLUMNS), row
    # Params by marker name, a float's special values, and a counter.
    c.ok("CREATE TABLE js.special (k int PRIMARY KEY, db double, f float)")
    c.ok("INSERT INTO js.special (k, db, f) VALUES (:k, :db, :f)",
         params={"k": 1, "db": "NaN", "f": "-Infinity"})
    row = c.ok("SELECT db, f FROM js.special WHERE k = 1")["rows"][0]
    assert row == {"db": "NaN", "f": "-Infinity"}
    c.ok("CREATE TABLE js.hits (k int PRIMARY KEY, n counter)")
    c.ok("UPDATE js.hits SET n = n + ? WHERE k = ?", params=[9007199254740993, 1])
    assert c.ok("SELECT n FROM js.hits WHERE k = 1")["rows"] == [{"n": 9007199254740993}]


def test_paging_and_options(json_client):
    c = json_client()
    c.ok("CREATE KEYSPACE js WITH replication = %s" % REPLICATION)
    c.ok("CREATE TABLE js.kv (k int PRIMARY KEY, v text)")
    for k in range(45):
        c.ok("INSERT INTO js.kv (k, v) VALUES (?, ?)", params=[k, "v%d" % k],
             consistency="QUORUM", options={"idempotent": True, "timeout_ms": 5000})
    keys, state, pages = [], None, 0
    while True:
        options = {"page_size": 10}
        if state:
            options["paging_state"] = state
        response = c.ok("SELECT k, v FROM js.kv", options=options)
        pages += 1
        keys.extend(row["k"] for row in response["rows"])
        assert all(row["v"] == "v%d" % row["k"] for row in response["rows"])
        state = response.get("paging_state")
        if not state:
            break
    assert sorted(keys) == list(range(45))
    assert 5 <= pages <= 6


def test_errors_are_answered_and_the_connection_goes_on(json_client):
    c = json_client()
    c.ok("CREATE KEYSPACE js WITH replication = %s" % REPLICATION)
    error = c.call("SELEC nonsense")["error"]
    assert error["status"] == "SYNTAX_ERROR" and error["code"] == 0x2000
    error = c.call("SELECT * FROM js.no_such_table")["error"]
    assert error["status"] == "INVALID" and error["code"] == 0x2200
    assert "no_such_table" in error["message"]
    # The same through a prepared statement (params).
    assert c.call("SELECT * FROM js.no_such_table WHERE k = ?", params=[1])["error"]["status"] \
        == "INVALID"
    # Request errors name what is wrong.
    c.ok("CREATE TABLE js.kv (k int PRIMARY KEY, v text)")
    error = c.call("INSERT INTO js.kv (k, v) VALUES (?, ?)", params=[1])["error"]
    assert error["status"] == "BAD_REQUEST" and "2 markers" in error["message"]
    error = c.call("INSERT INTO js.kv (k, v) VALUES (?, ?)", params=["one", "x"])["error"]
    assert error["status"] == "BAD_REQUEST" and "integer" in error["message"]
    assert "USE" in c.call("USE js")["error"]["message"]
    assert c.call("SELECT * FROM js.kv", consistency="MOST")["error"]["status"] == "BAD_REQUEST"
    assert "unknown option" in c.call("SELECT * FROM js.kv", options={"bogus": 1})["error"]["message"]
    c.send({"id": 5})
    assert c.receive() == {"id": 5, "error": {"status": "BAD_REQUEST", "code": 0,
                                              "message": "`query` (a string) is required"}}
    # A line that is not JSON: an error without id, and the connection goes on.
    c.send_raw(b"this is not json\n")
    response = c.receive()
    assert response["id"] is None and response["error"]["status"] == "BAD_REQUEST"
    c.send_raw(b"[1, 2]\n")
    assert c.receive()["error"]["status"] == "BAD_REQUEST"
    assert c.ok("SELECT * FROM js.kv")["rows"] == []


def test_a_thousand_concurrent_requests_on_one_socket(json_client):
    c = json_client()
    c.ok("CREATE KEYSPACE js WITH replication = %s" % REPLICATION)
    c.ok("CREATE TABLE js.kv (k int PRIMARY KEY, v int)")
    n = 1000
    # All written before any response is read: the daemon runs them at once
    # and answers in completion order.
    c.send(*[{"id": i, "query": "INSERT INTO js.kv (k, v) VALUES (?, ?)", "params": [i, i * 3]}
             for i in range(n)])
    answers = [c.receive() for _ in range(n)]
    assert sorted(a["id"] for a in answers) == list(range(n))
    assert all("error" not in a for a in answers), [a for a in answers if "error" in a][:3]
    c.send(*[{"id": "read-%d" % i, "query": "SELECT v FROM js.kv WHERE k = ?", "params": [i]}
             for i in range(n)])
    answers = {}
    for _ in range(n):
        a = c.receive()
        answers[a["id"]] = a
    assert len(answers) == n
    for i in range(n):
        assert answers["read-%d" % i]["rows"] == [{"v": i * 3}], answers["read-%d" % i]

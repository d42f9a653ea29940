"""Real clients, unchanged, through scylla-communicator in front of a
3-node x 4-shard emulator: the Python scylla-driver (over TCP and over the
Unix socket) and cqlsh from PyPI (scylla-cqlsh). The daemon is one node to
them; behind it the cluster keeps nodes x shards + 1 connections, and the
daemon routes every prepared request to its replica and shard.
"""

import os
import subprocess
import sys

import pytest

from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from cassandra.connection import UnixSocketEndPoint
from cassandra.policies import RoundRobinPolicy
from cassandra.protocol import SyntaxException
from cassandra.query import BatchStatement, BatchType, SimpleStatement

from emulator_harness import wait_until

NODES, SHARDS = 3, 4
KEYSPACE = "through_daemon"
REPLICATION = "{'class': 'NetworkTopologyStrategy', 'replication_factor': 2}"
CQLSH = os.path.join(os.path.dirname(sys.executable), "cqlsh")


def misroutes(emu):
    s = emu.snapshot()
    return s.get("emulator_misrouted_node_total") + s.get("emulator_misrouted_shard_total")


def cluster_connections(emu):
    return emu.snapshot().get("emulator_connections_current")


@pytest.fixture
def clusters():
    made = []

    def make(*args, **kwargs):
        kwargs.setdefault("connect_timeout", 10)
        kwargs.setdefault("protocol_version", 4)
        c = Cluster(*args, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.shutdown()


def test_python_driver_through_the_communicator(emulator_factory, communicator_factory, clusters):
    emu = emulator_factory(NODES, SHARDS)
    comm = communicator_factory(emu)
    cluster = clusters([comm.host], port=comm.port, schema_event_refresh_window=0.05)
    session = cluster.connect()
    # The daemon is the whole cluster to the driver.
    hosts = cluster.metadata.all_hosts()
    assert [h.endpoint.address for h in hosts] == [comm.host]
    assert cluster.metadata.cluster_name == "scylla-communicator"

    session.execute("CREATE KEYSPACE %s WITH replication = %s" % (KEYSPACE, REPLICATION))
    session.execute("CREATE TABLE %s.kv (k int PRIMARY KEY, v text)" % KEYSPACE)

    # Prepared statements: every one routed to its replica and shard.
    before = misroutes(emu)
    insert = session.prepare("INSERT INTO %s.kv (k, v) VALUES (?, ?)" % KEYSPACE)
    select = session.prepare("SELECT v FROM %s.kv WHERE k = ?" % KEYSPACE)
    total = 200
    for k in range(total):
        session.execute(insert, (k, "v%d" % k))
    for k in range(0, total, 7):
        assert session.execute(select, (k,)).one().v == "v%d" % k
    assert misroutes(emu) == before

    # A batch of prepared inserts.
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    for k in range(total, total + 10):
        batch.add(insert, (k, "batched"))
    session.execute(batch)
    assert session.execute(select, (total + 9,)).one().v == "batched"

    # Paging through the daemon: the paging state goes back as it came.
    result = session.execute(SimpleStatement("SELECT k FROM %s.kv" % KEYSPACE, fetch_size=30))
    pages, keys = 1, [row.k for row in result.current_rows]
    while result.has_more_pages:
        result.fetch_next_page()
        pages += 1
        keys.extend(row.k for row in result.current_rows)
    assert sorted(keys) == list(range(total + 10))
    # Full pages, and at most one more (an empty last page, as a node may send).
    assert -(-(total + 10) // 30) <= pages <= (total + 10) // 30 + 1

    # Server errors reach the driver as the server sent them.
    with pytest.raises(InvalidRequest, match="no_such_table"):
        session.execute("SELECT * FROM %s.no_such_table" % KEYSPACE)
    with pytest.raises(SyntaxException):
        session.execute("SELEC nonsense")
    with pytest.raises(InvalidRequest):
        session.prepare("SELECT * FROM %s.no_such_table WHERE k = ?" % KEYSPACE)
    # The session still works after them.
    assert session.execute(select, (1,)).one().v == "v1"

    # A schema change made by another client reaches this driver as an
    # event (it refreshes its metadata from it).
    other = clusters([comm.host], port=comm.port).connect()
    assert "made_elsewhere" not in cluster.metadata.keyspaces[KEYSPACE].tables
    other.execute("CREATE TABLE %s.made_elsewhere (k int PRIMARY KEY)" % KEYSPACE)
    wait_until(lambda: "made_elsewhere" in cluster.metadata.keyspaces[KEYSPACE].tables, 20,
               what="the SCHEMA_CHANGE event to refresh the first driver's metadata")

    # Two drivers (each a control connection and a pool) cost the cluster
    # nothing: the daemon's pools and its control connection.
    assert cluster_connections(emu) == NODES * SHARDS + 1


def test_python_driver_over_the_unix_socket_keeps_its_keyspace(
        emulator_factory, communicator_factory, clusters):
    emu = emulator_factory(NODES, SHARDS)
    comm = communicator_factory(emu)
    setup = clusters([comm.host], port=comm.port).connect()
    setup.execute("CREATE KEYSPACE %s WITH replication = %s" % (KEYSPACE, REPLICATION))
    setup.execute("CREATE TABLE %s.kv (k int PRIMARY KEY, v int)" % KEYSPACE)
    keys = range(30)
    for k in keys:
        setup.execute("INSERT INTO %s.kv (k, v) VALUES (%d, %d)" % (KEYSPACE, k, k * 10))

    cluster = clusters([UnixSocketEndPoint(comm.socket)],
                       load_balancing_policy=RoundRobinPolicy())
    session = cluster.connect(KEYSPACE)
    # Unqualified names in the keyspace of this client's USE, prepared
    # too: every key's replicas know the statement.
    assert session.execute("SELECT v FROM kv WHERE k = 1").one().v == 10
    prepared = session.prepare("SELECT v FROM kv WHERE k = ?")

    def read_all():
        return all(session.execute(prepared, (k,)).one().v == k * 10 for k in keys)

    assert read_all()
    # A node restart forgets its prepared statements: the daemon prepares
    # the unqualified one again in the keyspace.
    for node in range(NODES):
        status, body = emu.admin(node, "/admin/restart?down_ms=200")
        assert status == 200, body
    wait_until(read_all, 30, what="every key readable after the restarts")
    # The other client has no keyspace: its unqualified name fails.
    with pytest.raises(InvalidRequest):
        setup.execute("SELECT v FROM kv WHERE k = 1")


def run_cqlsh(comm, statements, timeout=60):
    return subprocess.run([CQLSH, comm.host, str(comm.port), "--no-color", "-e", statements],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, CQLSH_NO_BUNDLED="TRUE"))


def test_cqlsh_through_the_communicator(emulator_factory, communicator_factory):
    assert os.access(CQLSH, os.X_OK), "cqlsh is not installed in the venv (scylla-cqlsh)"
    emu = emulator_factory(NODES, SHARDS)
    comm = communicator_factory(emu)
    done = run_cqlsh(comm, "CREATE KEYSPACE %s WITH replication = %s; "
                           "CREATE TABLE %s.kv (k int PRIMARY KEY, v text); "
                           "INSERT INTO %s.kv (k, v) VALUES (1, 'one'); "
                           "INSERT INTO %s.kv (k, v) VALUES (2, 'two');"
                     % (KEYSPACE, REPLICATION, KEYSPACE, KEYSPACE, KEYSPACE))
    assert done.returncode == 0, done.stderr
    done = run_cqlsh(comm, "USE %s; SELECT k, v FROM kv WHERE k IN (1, 2); "
                           "SELECT cluster_name FROM system.local;" % KEYSPACE)
    assert done.returncode == 0, done.stderr
    lines = [line.split("|") for line in done.stdout.splitlines() if "|" in line]
    cells = [[c.strip() for c in line] for line in lines]
    assert ["1", "one"] in cells and ["2", "two"] in cells, done.stdout
    assert "scylla-communicator" in done.stdout
    assert "(2 rows)" in done.stdout
    # An error: cqlsh reports the server's message and fails.
    done = run_cqlsh(comm, "SELECT * FROM %s.no_such_table;" % KEYSPACE)
    assert done.returncode != 0
    assert "unconfigured table no_such_table" in done.stderr

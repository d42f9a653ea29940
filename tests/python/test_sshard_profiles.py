"""Execution profiles, speculative execution and retry policies in the
scylla_shard Python binding, in scylla-driver's shape, against a 3-node
emulator whose node 0 answers 300 ms late (/admin/delay):

- Cluster(execution_profiles={EXEC_PROFILE_DEFAULT: ..., "name": ...}) and
  session.execute(..., execution_profile="name");
- ConstantSpeculativeExecutionPolicy(delay, max_attempts): idempotent reads
  never wait for the slow node, and speculative executions and wins are
  counted; non-idempotent reads never speculate (one attempt each);
- RetryPolicy, FallthroughRetryPolicy, DowngradingConsistencyRetryPolicy:
  a profile's, and a statement's own, reach the library (retry decisions
  counted);
- a profile's consistency and load-balancing preferences reach the request.
"""

import time

import pytest

from scylla_shard import (EXEC_PROFILE_DEFAULT, Cluster, ConsistencyLevel, ExecutionProfile,
                          NoHostAvailable, SimpleStatement, Unavailable)
from scylla_shard.policies import (ConstantSpeculativeExecutionPolicy,
                                   DCAwareRoundRobinPolicy, DowngradingConsistencyRetryPolicy,
                                   FallthroughRetryPolicy, PercentileSpeculativeExecutionPolicy,
                                   RetryPolicy)

from sshard_support import start_emulator, wait_pools

SLOW_S = 0.3
READS = 30


@pytest.fixture(scope="module")
def emu(emulator_binary, tmp_path_factory):
    e = start_emulator(emulator_binary, tmp_path_factory.mktemp("emu"))
    yield e
    e.stop()


@pytest.fixture(scope="module")
def cluster(emu):
    profiles = {
        EXEC_PROFILE_DEFAULT: ExecutionProfile(request_timeout=20.0,
                                               retry_policy=RetryPolicy()),
        "spec": ExecutionProfile(
            request_timeout=20.0,
            speculative_execution_policy=ConstantSpeculativeExecutionPolicy(0.02, 1)),
        "strict": ExecutionProfile(request_timeout=20.0,
                                   consistency_level=ConsistencyLevel.THREE,
                                   retry_policy=FallthroughRetryPolicy()),
        "nowhere": ExecutionProfile(
            request_timeout=20.0,
            load_balancing_policy=DCAwareRoundRobinPolicy(local_dc="no-such-dc")),
    }
    c = Cluster(contact_points=[emu.ip(0)], port=emu.port, execution_profiles=profiles)
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def session(cluster, emu):
    s = cluster.connect()
    wait_pools(cluster, emu)
    s.execute("CREATE KEYSPACE spec WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE spec.kv (k int PRIMARY KEY, v text)")
    s.execute("INSERT INTO spec.kv (k, v) VALUES (1, 'stored')")
    return s


def admin(emu, node, path):
    status, body = emu.admin(node, path)
    assert status == 200, (path, body)


@pytest.fixture
def slow_node(emu):
    admin(emu, 0, "/admin/delay?us=%d" % int(SLOW_S * 1e6))
    yield
    admin(emu, 0, "/admin/delay?us=0")


def read(idempotent=True):
    return SimpleStatement("SELECT v FROM spec.kv WHERE k = 1", is_idempotent=idempotent)


def slowest(session, statement, **kwargs):
    worst = 0.0
    for _ in range(READS):
        started = time.monotonic()
        rows = list(session.execute(statement, **kwargs))
        worst = max(worst, time.monotonic() - started)
        assert [r.v for r in rows] == ["stored"]
    return worst


def totals(session):
    m = session.metrics()
    return m["speculative_executions"], m["speculative_wins"]


def test_policies_have_scylla_drivers_names():
    with pytest.raises(ValueError):
        ConstantSpeculativeExecutionPolicy(-1, 1)
    with pytest.raises(ValueError):
        ConstantSpeculativeExecutionPolicy(0.01, 16)
    with pytest.raises(ValueError):
        PercentileSpeculativeExecutionPolicy(100, 1)
    p = ConstantSpeculativeExecutionPolicy(0.05, 2)
    assert (p.delay, p.max_attempts) == (0.05, 2)
    assert isinstance(DowngradingConsistencyRetryPolicy(), RetryPolicy)
    assert isinstance(FallthroughRetryPolicy(), RetryPolicy)


def test_speculation_through_a_named_profile(session, slow_node):
    before = totals(session)
    assert slowest(session, read()) >= SLOW_S, "without speculation a read waits"
    assert totals(session) == before
    assert slowest(session, read(), execution_profile="spec") < SLOW_S
    started, won = totals(session)
    assert started > before[0]
    assert before[1] < won <= before[1] + (started - before[0])
    text = session.metrics_prometheus()
    assert "scylla_shard_speculative_executions_total %d\n" % started in text
    assert "scylla_shard_speculative_wins_total %d\n" % won in text


def test_non_idempotent_reads_never_speculate(session, emu, slow_node):
    before = totals(session)
    snap = emu.snapshot()
    assert slowest(session, read(idempotent=False), execution_profile="spec") >= SLOW_S
    assert totals(session) == before
    delta = emu.snapshot() - snap
    assert delta.get("emulator_routable_requests_total") == READS


def test_speculation_through_a_profile_object(session, slow_node):
    profile = ExecutionProfile(
        request_timeout=20.0,
        speculative_execution_policy=ConstantSpeculativeExecutionPolicy(0.02, 2))
    before = totals(session)
    assert slowest(session, read(), execution_profile=profile) < SLOW_S
    assert totals(session)[0] > before[0]


def test_profile_and_statement_retry_policies(session, emu):
    fault = "/admin/fail?error=unavailable&required=3&alive=1&consistency=THREE&count=1"
    for node in range(3):
        admin(emu, node, fault)
    rethrown = session.metrics()["retry_rethrown"]
    # "strict": THREE and fallthrough; the first UNAVAILABLE is raised.
    with pytest.raises(Unavailable):
        session.execute(read(idempotent=False), execution_profile="strict")
    assert session.metrics()["retry_rethrown"] == rethrown + 1
    # The statement's own policy beats the profile's: the default retries
    # UNAVAILABLE once, on the next node, which fails too.
    for node in range(3):
        admin(emu, node, fault)
    next_target = session.metrics()["retry_next_target"]
    st = SimpleStatement("SELECT v FROM spec.kv WHERE k = 1", retry_policy=RetryPolicy())
    with pytest.raises(Unavailable):
        session.execute(st, execution_profile="strict")
    assert session.metrics()["retry_next_target"] == next_target + 1
    # The statement's own consistency beats the profile's THREE.
    for node in range(3):
        admin(emu, node, fault)
    one = SimpleStatement("SELECT v FROM spec.kv WHERE k = 1",
                          consistency_level=ConsistencyLevel.ONE)
    assert [r.v for r in session.execute(one, execution_profile="strict")] == ["stored"]


def test_profile_load_balancing(session):
    with pytest.raises(NoHostAvailable):
        session.execute(read(), execution_profile="nowhere")
    assert [r.v for r in session.execute(read())] == ["stored"]


def test_unknown_profile_is_refused(session):
    with pytest.raises(ValueError):
        session.execute(read(), execution_profile="no-such-profile")

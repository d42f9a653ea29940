"""Demo client: thousands of prepared writes and reads through the real
Python scylla-driver, then the emulator's routing counters for them."""
import re
import sys
import time
import urllib.request

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

BASE = sys.argv[1] if len(sys.argv) > 1 else "127.0.42.1"
PREFIX = BASE.rsplit(".", 1)[0]
FIRST = int(BASE.rsplit(".", 1)[1])
NODES = [f"{PREFIX}.{FIRST + i}" for i in range(3)]
ROWS = 3000


def counters():
    totals = {}
    for ip in NODES:
        text = urllib.request.urlopen(f"http://{ip}:9180/metrics", timeout=5).read().decode()
        for m in re.finditer(r"^(emulator_\w+)(\{[^}]*\})? (\d+)$", text, re.M):
            totals[m.group(1)] = totals.get(m.group(1), 0) + int(m.group(3))
    return totals


def run(session, cluster, keyspace, replication):
    session.execute(f"CREATE KEYSPACE {keyspace} WITH replication = {replication}")
    session.execute(f"CREATE TABLE {keyspace}.kv (k int PRIMARY KEY, v text)")
    insert = session.prepare(f"INSERT INTO {keyspace}.kv (k, v) VALUES (?, ?)")
    select = session.prepare(f"SELECT v FROM {keyspace}.kv WHERE k = ?")
    before = counters()
    for k in range(ROWS):
        session.execute(insert, (k, f"value-{k}"))
    for k in range(ROWS):
        row = session.execute(select, (k,)).one()
        assert row.v == f"value-{k}", (k, row)
    after = counters()
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    print(f"[{keyspace}] requests: {d['emulator_routable_requests_total']}, "
          f"misrouted to wrong node: {d['emulator_misrouted_node_total']}, "
          f"misrouted to wrong shard: {d['emulator_misrouted_shard_total']}, "
          f"connections: {after['emulator_connections_current']}")


def main():
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()))
    cluster = Cluster(NODES[:1], protocol_version=4, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    session = cluster.connect()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stats = cluster.shard_aware_stats()
        if len(stats) == 3 and all(s["connected"] == s["shards_count"] for s in stats.values()):
            break
        time.sleep(0.05)
    print(f"client: Python scylla-driver, shard aware: {cluster.is_shard_aware()}, pools: {cluster.shard_aware_stats()}")
    run(session, cluster, "demo_vnodes",
        "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1} AND tablets = {'enabled': false}")
    run(session, cluster, "demo_tablets",
        "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1} AND tablets = {'enabled': true, 'initial': 8}")
    cluster.shutdown()


if __name__ == "__main__":
    main()

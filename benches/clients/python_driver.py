"""Benchmark client: the Python `scylla-driver` (the DataStax driver fork).

Token-aware and shard-aware as the driver is by default, protocol v4,
LOCAL_ONE, no compression (as the other clients), tuple rows (the cheapest
row factory). Concurrency is execute_async with a bounded window: each
completion callback starts the next request. `--reactor asyncio` uses the
driver's asyncio event loop instead of its default (libev).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


class PythonDriver:
    name = "python-driver"

    @staticmethod
    def add_arguments(p):
        p.add_argument("--reactor", choices=("libev", "asyncio"), default="libev")

    def __init__(self, cluster, session):
        self.cluster = cluster
        self.session = session
        self.insert_stmt = None
        self.select_stmt = None

    @classmethod
    def connect(cls, opts):
        from cassandra import ConsistencyLevel
        from cassandra.cluster import (EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile,
                                       ShardAwareOptions)
        from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
        from cassandra.query import tuple_factory

        host, port = common.split_contact(opts.contact)
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            consistency_level=ConsistencyLevel.LOCAL_ONE,
            row_factory=tuple_factory,
            request_timeout=10.0,
        )
        kwargs = {}
        if opts.reactor == "asyncio":
            from cassandra.io.asyncioreactor import AsyncioConnection
            kwargs["connection_class"] = AsyncioConnection
        cluster = Cluster(
            contact_points=[host],
            port=port,
            protocol_version=4,
            compression=False,
            connect_timeout=opts.pool_timeout,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            shard_aware_options=ShardAwareOptions(
                disable_shardaware_port=not opts.shard_aware_port),
            **kwargs,
        )
        try:
            return cls(cluster, cluster.connect())
        except Exception:
            cluster.shutdown()
            raise

    def pools_full(self, opts):
        stats = self.cluster.shard_aware_stats() or {}
        if not stats or (opts.expect_nodes is not None and len(stats) != opts.expect_nodes):
            return False
        return all(s["connected"] == s["shards_count"] for s in stats.values())

    def connections(self):
        stats = self.cluster.shard_aware_stats() or {}
        return sum(s["connected"] for s in stats.values())

    def query(self, cql):
        self.session.execute(cql)

    def prepare(self, keyspace, table):
        self.insert_stmt = self.session.prepare(common.insert_cql(keyspace, table))
        self.select_stmt = self.session.prepare(common.select_cql(keyspace, table))

    def start(self, is_insert, key, value, tag, done):
        if is_insert:
            future = self.session.execute_async(self.insert_stmt, (key, value, tag))
            future.add_callbacks(lambda rows: done(None, None), lambda exc: done(None, exc))
        else:
            future = self.session.execute_async(self.select_stmt, (key,))
            future.add_callbacks(lambda rows: done(rows[0] if rows else None, None),
                                 lambda exc: done(None, exc))

    def close(self):
        self.cluster.shutdown()


if __name__ == "__main__":
    sys.exit(common.main(PythonDriver))

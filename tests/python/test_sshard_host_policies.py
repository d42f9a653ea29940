"""Host policies through the scylla_shard Python binding, against an
emulator whose node N listens on emu.ip(N) but advertises 10.255.0.(N+1)
(--advertise-base-ip, as behind NAT), nodes 0 and 2 in dc1, node 1 in dc2:
address_translator (StaticAddressTranslator or a dict; other translators
refused), host_allow_list / host_deny_list / dc_allow_list / dc_deny_list,
and WhiteListRoundRobinPolicy as an allow list.
"""

import pytest

from scylla_shard import Cluster, NoHostAvailable
from scylla_shard.policies import (AddressTranslator, StaticAddressTranslator, TokenAwarePolicy,
                                   WhiteListRoundRobinPolicy)

from sshard_support import SIMPLE_RF1, assert_no_misroutes, start_emulator, wait_pools, wait_until

WRITES = 300


@pytest.fixture(scope="module")
def emu(emulator_binary, tmp_path_factory):
    e = start_emulator(emulator_binary, tmp_path_factory.mktemp("emu"), 3, 4,
                       "--advertise-base-ip", "10.255.0.1", "--datacenters", "dc1,dc2")
    yield e
    e.stop()


def mapping(emu):
    return {"10.255.0.%d" % (i + 1): emu.ip(i) for i in range(emu.nodes)}


_keyspaces = iter(range(1, 10**6))


def write_keys(session):
    ks = "hp%d" % next(_keyspaces)
    session.execute("CREATE KEYSPACE %s WITH replication = %s" % (ks, SIMPLE_RF1))
    session.execute("CREATE TABLE %s.kv (k int PRIMARY KEY, v int)" % ks)
    insert = session.prepare("INSERT INTO %s.kv (k, v) VALUES (?, ?)" % ks)
    for k in range(WRITES):
        session.execute(insert, (k, k))


def wait_nodes_full(cluster, count, shards=4):
    def full():
        stats = cluster.shard_aware_stats() or {}
        return len(stats) == count and all(
            s["connected"] == s["shards_count"] == shards for s in stats.values()) and stats
    return wait_until(full, 30, what="%d full pools" % count,
                      describe=lambda: cluster.shard_aware_stats())


def test_without_translation_only_the_contact_node_is_reached(emu):
    accepted = emu.snapshot()
    with Cluster(contact_points=[emu.ip(0)], port=emu.port, connect_timeout=0.5) as cluster:
        session = cluster.connect()
        write_keys(session)
        stats = cluster.shard_aware_stats()
        assert set(stats) == {"%s:%d" % (emu.ip(0), emu.port),
                              "10.255.0.2:%d" % emu.port, "10.255.0.3:%d" % emu.port}, stats
        assert stats["10.255.0.2:%d" % emu.port]["connected"] == 0
    delta = emu.snapshot() - accepted
    for peer in (1, 2):
        assert delta.get("emulator_connections_accepted_total", node=peer) == 0
    assert delta.get("emulator_misrouted_node_total") > 0


@pytest.mark.parametrize("shape", ["static", "dict"])
def test_a_static_translator_reaches_every_node(emu, shape):
    translator = StaticAddressTranslator(mapping(emu)) if shape == "static" else mapping(emu)
    with Cluster(contact_points=[emu.ip(0)], port=emu.port, connect_timeout=0.5,
                 address_translator=translator) as cluster:
        session = cluster.connect()
        wait_pools(cluster, emu)
        before = emu.snapshot()
        write_keys(session)
        assert_no_misroutes(emu.snapshot() - before, WRITES)


def test_a_python_translator_is_refused_clearly(emu):
    class Upper(AddressTranslator):
        def translate(self, addr):
            return addr

    with pytest.raises(ValueError, match="fixed map"):
        Cluster(contact_points=[emu.ip(0)], port=emu.port, address_translator=Upper())
    with pytest.raises(TypeError):
        Cluster(contact_points=[emu.ip(0)], port=emu.port, host_deny_list=[1])


def test_deny_and_allow_lists_keep_nodes_out(emu):
    cases = [
        (dict(host_deny_list=[emu.ip(2)]), {0, 1}),
        (dict(dc_allow_list=["dc1"]), {0, 2}),
        (dict(dc_deny_list="dc1"), {1}),
        (dict(host_allow_list="%s, %s" % (emu.ip(0), emu.ip(1))), {0, 1}),
        (dict(load_balancing_policy=TokenAwarePolicy(
            WhiteListRoundRobinPolicy([emu.ip(1), emu.ip(2)]))), {1, 2}),
    ]
    for options, used in cases:
        before = emu.snapshot()
        with Cluster(contact_points=[emu.ip(0)], port=emu.port, connect_timeout=0.5,
                     address_translator=mapping(emu), **options) as cluster:
            session = cluster.connect()
            wait_nodes_full(cluster, len(used))
            assert set(cluster.shard_aware_stats()) == {
                "%s:%d" % (emu.ip(i), emu.port) for i in used}, options
            write_keys(session)
        delta = emu.snapshot() - before
        for node in set(range(emu.nodes)) - used:
            # The contact point, when filtered, serves only the discovery.
            if node == 0:
                assert delta.get("emulator_connections_accepted_total", node=0) == 1, options
                assert delta.get("emulator_routable_requests_total", node=0) == 0, options
            else:
                assert delta.get("emulator_connections_accepted_total", node=node) == 0, options
                assert delta.get("emulator_requests_total", node=node) == 0, options


def test_a_filter_that_excludes_every_node_fails_connect(emu):
    cluster = Cluster(contact_points=[emu.ip(0)], port=emu.port, dc_allow_list=["dc3"])
    try:
        with pytest.raises(NoHostAvailable, match="host filter excludes every node"):
            cluster.connect()
    finally:
        cluster.shutdown()

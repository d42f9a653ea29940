"""The real Python `scylla-driver` against scylla-emulator over TLS.

Every test generates a test CA and certificates for its own addresses
(`scylla-emulator --tls-generate`), starts an emulator with TLS listeners
(CQL 9142, shard-aware 19142 advertised as SCYLLA_SHARD_AWARE_PORT_SSL) and
connects a real `cassandra.cluster.Cluster` with an `ssl.SSLContext`
trusting that CA. Checked on both sides: the driver's rows and shard pools,
and the emulator's per-port connection counters (nothing on the plain
ports, the per-shard connections through the shard-aware TLS port).
"""

import os
import ssl
import subprocess

import pytest

from cassandra.cluster import NoHostAvailable

from driver_support import SIMPLE_RF1, wait_pool_full
from emulator_harness import next_base_ip

TLS_PORT = 9142
TLS_SHARD_AWARE_PORT = 19142
NODES, SHARDS = 3, 4


def generate_certificates(binary, directory, base_ip, nodes=NODES):
    out = subprocess.run([binary, "--tls-generate", str(directory), "--nodes", str(nodes),
                          "--base-ip", base_ip], capture_output=True, timeout=60)
    assert out.returncode == 0, "--tls-generate failed: %s" % out.stderr.decode(errors="replace")
    for name in ("ca.pem", "other-ca.pem", "server.pem", "server-key.pem", "client.pem",
                 "client-key.pem"):
        assert os.path.getsize(os.path.join(str(directory), name)) > 0, name
    return str(directory)


@pytest.fixture
def tls_emulator(emulator_factory, emulator_binary, tmp_path):
    """start(mutual=False): an emulator with TLS listeners; returns (emu, cert dir)."""
    def start(mutual=False):
        base_ip = next_base_ip()
        certs = generate_certificates(emulator_binary, tmp_path / ("certs-" + base_ip), base_ip)
        flags = ["--tls-cert", os.path.join(certs, "server.pem"),
                 "--tls-key", os.path.join(certs, "server-key.pem")]
        if mutual:
            flags += ["--tls-client-ca", os.path.join(certs, "ca.pem")]
        emu = emulator_factory(NODES, SHARDS, *flags, base_ip=base_ip)
        return emu, certs

    return start


def client_context(certs, ca="ca.pem", client_cert=False):
    """What a user writes: verify the server's chain and its name (here, its
    address), optionally present a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.load_verify_locations(os.path.join(certs, ca))
    if client_cert:
        context.load_cert_chain(os.path.join(certs, "client.pem"),
                                os.path.join(certs, "client-key.pem"))
    return context


def round_trip(session, ks):
    session.execute("CREATE KEYSPACE %s WITH replication = %s" % (ks, SIMPLE_RF1))
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
    insert = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % ks)
    select = session.prepare("SELECT v FROM %s.t WHERE k = ?" % ks)
    for k in range(200):
        session.execute(insert, (k, "tls-%d" % k))
    for k in range(0, 200, 17):
        rows = list(session.execute(select, (k,)))
        assert [r.v for r in rows] == ["tls-%d" % k], (k, rows)


def accepted(emu, port):
    return emu.snapshot().get("emulator_connections_accepted_total", port=port)


def test_verified_tls_session_is_shard_aware_on_the_tls_ports(tls_emulator, cluster_factory):
    emu, certs = tls_emulator()
    cluster = cluster_factory(emu, port=TLS_PORT, ssl_context=client_context(certs))
    session = cluster.connect()
    stats = wait_pool_full(session, emu, port=TLS_PORT)
    assert len(stats) == NODES, stats
    round_trip(session, "tls_py")

    snap = emu.snapshot()
    for port in (emu.port, emu.shard_aware_port):
        assert snap.get("emulator_connections_accepted_total", port=port) == 0, (
            "connections on the plain port %d" % port)
    for node in range(NODES):
        on_tls = snap.get("emulator_connections_accepted_total", node=node, port=TLS_PORT)
        on_shard_aware = snap.get("emulator_connections_accepted_total", node=node,
                                  port=TLS_SHARD_AWARE_PORT)
        # The driver's first connection to a node goes to the CQL port; the
        # other shards through SCYLLA_SHARD_AWARE_PORT_SSL.
        assert on_tls >= 1, (node, on_tls)
        assert on_shard_aware >= SHARDS - 1, (node, on_shard_aware, on_tls)
        for shard in range(SHARDS):
            assert snap.get("emulator_connections_current", node=node, shard=shard) >= 1, (
                node, shard)


def test_an_untrusted_ca_is_refused(tls_emulator, cluster_factory):
    emu, certs = tls_emulator()
    cluster = cluster_factory(emu, port=TLS_PORT,
                              ssl_context=client_context(certs, ca="other-ca.pem"))
    with pytest.raises(NoHostAvailable) as failure:
        cluster.connect()
    assert "CERTIFICATE_VERIFY_FAILED" in str(failure.value), failure.value
    assert accepted(emu, TLS_PORT) == 0


def test_mutual_tls_needs_the_client_certificate(tls_emulator, cluster_factory):
    emu, certs = tls_emulator(mutual=True)
    without = cluster_factory(emu, port=TLS_PORT, ssl_context=client_context(certs))
    with pytest.raises(NoHostAvailable):
        without.connect()
    without.shutdown()
    assert accepted(emu, TLS_PORT) == 0

    cluster = cluster_factory(emu, port=TLS_PORT,
                              ssl_context=client_context(certs, client_cert=True))
    session = cluster.connect()
    wait_pool_full(session, emu, port=TLS_PORT)
    round_trip(session, "mtls_py")
    assert accepted(emu, TLS_SHARD_AWARE_PORT) >= NODES * (SHARDS - 1)

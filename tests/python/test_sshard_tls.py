"""scylla_shard (the Python binding) over TLS to the emulator, with
scylla-driver's two forms: `ssl_context` (an ssl.SSLContext trusting the
generated test CA, hostname check on) and `ssl_options` (a dict; also how
a client certificate is given). The emulator's per-port counters show that
every connection used the TLS ports, the per-shard ones through
SCYLLA_SHARD_AWARE_PORT_SSL."""

import os
import ssl

import pytest

from scylla_shard import Cluster, NoHostAvailable

from emulator_harness import Emulator, next_base_ip
from sshard_support import wait_pools
from test_python_tls import TLS_PORT, TLS_SHARD_AWARE_PORT, generate_certificates, round_trip

NODES, SHARDS = 3, 4


@pytest.fixture
def tls_cluster(emulator_binary, tmp_path):
    """start(mutual=False) -> (emulator, certificate directory)."""
    started = []

    def start(mutual=False):
        base_ip = next_base_ip()
        certs = generate_certificates(emulator_binary, tmp_path / ("certs-" + base_ip), base_ip)
        flags = ["--tls-cert", os.path.join(certs, "server.pem"),
                 "--tls-key", os.path.join(certs, "server-key.pem")]
        if mutual:
            flags += ["--tls-client-ca", os.path.join(certs, "ca.pem")]
        emu = Emulator(emulator_binary, NODES, SHARDS, args=flags, base_ip=base_ip,
                       log_dir=str(tmp_path))
        started.append(emu)
        emu.start()
        return emu, certs

    yield start
    for emu in started:
        emu.stop()


def context(certs, ca="ca.pem"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = True
    ctx.load_verify_locations(os.path.join(certs, ca))
    return ctx


def accepted(emu, port, node=None):
    return emu.snapshot().get("emulator_connections_accepted_total", node=node, port=port)


def test_ssl_context_session_is_shard_aware_on_the_tls_ports(tls_cluster):
    emu, certs = tls_cluster()
    with Cluster([emu.ip(0)], port=TLS_PORT, ssl_context=context(certs)) as cluster:
        session = cluster.connect()
        wait_pools(cluster, emu)
        assert cluster.is_shard_aware()
        round_trip(session, "tls_sshard")
    for port in (emu.port, emu.shard_aware_port):
        assert accepted(emu, port) == 0, "connections on the plain port %d" % port
    for node in range(NODES):
        assert accepted(emu, TLS_SHARD_AWARE_PORT, node) >= SHARDS - 1, node


def test_untrusted_ca_and_wrong_name_are_no_host(tls_cluster):
    emu, certs = tls_cluster()
    with Cluster([emu.ip(0)], port=TLS_PORT, ssl_context=context(certs, "other-ca.pem")) as c:
        with pytest.raises(NoHostAvailable) as failure:
            c.connect()
    (cause,) = failure.value.errors.values()
    assert isinstance(cause, ssl.SSLError) and "SSL_INVALID_PEER_CERT" in str(cause), cause
    # The certificates name the nodes' addresses: another name fails the check,
    # and passes with the hostname check off.
    options = {"ca_certs": os.path.join(certs, "ca.pem"), "check_hostname": True,
               "server_hostname": "not-the-node.example"}
    with Cluster([emu.ip(0)], port=TLS_PORT, ssl_options=options) as c:
        with pytest.raises(NoHostAvailable) as failure:
            c.connect()
    assert "SSL_IDENTITY_MISMATCH" in str(failure.value.errors), failure.value.errors
    options["check_hostname"] = False
    with Cluster([emu.ip(0)], port=TLS_PORT, ssl_options=options) as c:
        assert c.connect().execute("SELECT key FROM system.local").one().key == "local"


def test_mutual_tls_with_the_client_certificate_in_ssl_options(tls_cluster):
    emu, certs = tls_cluster(mutual=True)
    with Cluster([emu.ip(0)], port=TLS_PORT, ssl_context=context(certs)) as c:
        with pytest.raises(NoHostAvailable):
            c.connect()
    client = {"certfile": os.path.join(certs, "client.pem"),
              "keyfile": os.path.join(certs, "client-key.pem")}
    with Cluster([emu.ip(0)], port=TLS_PORT, ssl_context=context(certs),
                 ssl_options=client) as cluster:
        session = cluster.connect()
        wait_pools(cluster, emu)
        round_trip(session, "mtls_sshard")


def test_bad_tls_settings_are_refused_before_connecting(tls_cluster, tmp_path):
    with pytest.raises(ValueError):
        Cluster(["127.0.0.1"], ssl_options={"ca_cert": "typo"}).connect()
    missing = {"ca_certs": str(tmp_path / "missing.pem")}
    with pytest.raises(ValueError, match="missing.pem"):
        Cluster(["127.0.0.1"], ssl_options=missing).connect()
    emu, certs = tls_cluster()
    mismatched = {"ca_certs": os.path.join(certs, "ca.pem"),
                  "certfile": os.path.join(certs, "client.pem"),
                  "keyfile": os.path.join(certs, "server-key.pem")}
    with pytest.raises(ValueError, match="SSL_INVALID_PRIVATE_KEY"):
        Cluster([emu.ip(0)], port=TLS_PORT, ssl_options=mismatched).connect()

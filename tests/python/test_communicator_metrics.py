"""The communicator's Prometheus endpoint (--listen-metrics) against a
3-node x 4-shard emulator: request counters and the latency histogram per
front end agree with the requests sent, per-client in-flight shows a
client's outstanding requests (held by the emulator's response delay),
and the session's connections per node and shard are the cluster's
nodes x shards.
"""

import json
import os
import socket
import urllib.error
import urllib.request

from cassandra.cluster import Cluster

from emulator_harness import parse_prometheus, wait_until

NODES, SHARDS = 3, 4
METRICS_PORT = 9190


def scrape(comm):
    url = "http://%s:%d/metrics" % (comm.host, METRICS_PORT)
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return parse_prometheus(r.read().decode())


def value(samples, name, **labels):
    found = [v for n, l, v in samples
             if n == name and all(l.get(k) == str(w) for k, w in labels.items())]
    assert found, "no sample %s%r" % (name, labels)
    return sum(found)


def json_lines(sock, requests):
    sock.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests))


def read_json_lines(sock, n):
    buffer, out = b"", []
    while len(out) < n:
        chunk = sock.recv(1 << 16)
        assert chunk, "the daemon closed the JSON connection"
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            out.append(json.loads(line))
    return out


def test_metrics_endpoint(emulator_factory, communicator_factory, tmp_path):
    emu = emulator_factory(NODES, SHARDS)
    json_socket = str(tmp_path / "json.sock")
    comm = communicator_factory(emu, "--listen-json-unix", json_socket,
                                "--listen-metrics", "%s:%d" % (emu.ip(199), METRICS_PORT))
    before = scrape(comm)
    assert value(before, "scylla_communicator_requests_total", front="json") == 0

    # JSON requests: exactly these are counted, one of them failed.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(json_socket)
    json_lines(sock, [{"id": i, "query": "SELECT key FROM system.local"} for i in range(20)]
               + [{"id": "bad", "query": "SELEC"}])
    answers = read_json_lines(sock, 21)
    assert sum("error" in a for a in answers) == 1

    # CQL requests from a real driver.
    cluster = Cluster([comm.host], port=comm.port, connect_timeout=10, protocol_version=4)
    try:
        session = cluster.connect()
        for _ in range(10):
            session.execute("SELECT key FROM system.local WHERE key = 'local' ALLOW FILTERING")
        m = scrape(comm)
        assert value(m, "scylla_communicator_requests_total", front="json") == 21
        assert value(m, "scylla_communicator_request_errors_total", front="json") == 1
        assert value(m, "scylla_communicator_requests_total", front="cql") >= 10
        # The histogram: cumulative buckets ending at the request count.
        buckets = sorted(((float(l["le"]), v) for n, l, v in m
                          if n == "scylla_communicator_request_duration_seconds_bucket"
                          and l["front"] == "json"), key=lambda b: b[0])
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        assert buckets[-1] == (float("inf"), 21)
        assert value(m, "scylla_communicator_request_duration_seconds_count", front="json") == 21
        assert value(m, "scylla_communicator_request_duration_seconds_sum", front="json") > 0
        # Clients: the JSON socket and the driver's two connections.
        assert value(m, "scylla_communicator_clients", front="json") == 1
        assert value(m, "scylla_communicator_clients", front="cql") == 2
        # Connections per node and shard: one each, 3 x 4.
        per_shard = [(l["node"], l["shard"], v) for n, l, v in m
                     if n == "scylla_shard_connections"]
        assert len(per_shard) == NODES * SHARDS
        assert all(v == 1 for _, _, v in per_shard)

        # In flight per client: 30 requests held by a response delay.
        for node in range(NODES):
            assert emu.admin(node, "/admin/delay?us=3000000")[0] == 200
        json_lines(sock, [{"id": "slow-%d" % i, "query": "SELECT key FROM system.local"}
                          for i in range(30)])
        def mine(samples):
            return [v for n, l, v in samples if n == "scylla_communicator_client_in_flight"
                    and l["front"] == "json" and l["pid"] == str(os.getpid())]

        wait_until(lambda: mine(scrape(comm)) == [30], 10,
                   what="the JSON client's 30 requests in flight",
                   describe=lambda: mine(scrape(comm)))
        assert value(scrape(comm), "scylla_communicator_in_flight") >= 30
        for node in range(NODES):
            assert emu.admin(node, "/admin/delay?us=0")[0] == 200
        assert len(read_json_lines(sock, 30)) == 30
        wait_until(lambda: mine(scrape(comm)) == [0], 10, what="no request in flight")
    finally:
        cluster.shutdown()
        sock.close()

    # Anything but GET /metrics is a 404.
    try:
        urllib.request.urlopen("http://%s:%d/other" % (comm.host, METRICS_PORT), timeout=5)
        raise AssertionError("GET /other answered")
    except urllib.error.HTTPError as e:
        assert e.code == 404

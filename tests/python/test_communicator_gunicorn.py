"""A pre-fork server for real: gunicorn (from PyPI) with 8 workers, run
with the deployment config communicator/deploy/gunicorn.conf.py, each
worker with its own Python driver session to the communicator, serving
HTTP requests that write and read through it. The cluster sees nodes x
shards + 1 connections; the daemon sees each worker's connections.
"""

import json
import os
import signal
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from cassandra.cluster import Cluster

from emulator_harness import parse_prometheus, wait_until

NODES, SHARDS = 3, 4
WORKERS = 8
HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "..", "communicator", "deploy", "gunicorn.conf.py")
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")
METRICS_PORT = 9191


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, json.loads(r.read())


def test_gunicorn_workers_query_through_the_communicator(
        emulator_factory, communicator_factory, tmp_path):
    assert os.access(GUNICORN, os.X_OK), "gunicorn is not installed in the venv"
    emu = emulator_factory(NODES, SHARDS)
    comm = communicator_factory(emu, "--listen-metrics", "%s:%d" % (emu.ip(199), METRICS_PORT))
    setup = Cluster([comm.host], port=comm.port, connect_timeout=10, protocol_version=4)
    try:
        s = setup.connect()
        s.execute("CREATE KEYSPACE web WITH replication = "
                  "{'class': 'NetworkTopologyStrategy', 'replication_factor': 2}")
        s.execute("CREATE TABLE web.kv (k int PRIMARY KEY, v int)")
    finally:
        setup.shutdown()

    bind = "%s:8000" % emu.ip(200)
    env = dict(os.environ, GUNICORN_BIND=bind, GUNICORN_WORKERS=str(WORKERS),
               SCYLLA_COMMUNICATOR_SOCKET=comm.socket)
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([GUNICORN, "-c", CONFIG, "--chdir", HERE, "gunicorn_app:app"],
                                  env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        base = "http://%s" % bind

        def metrics():
            url = "http://%s:%d/metrics" % (comm.host, METRICS_PORT)
            with urllib.request.urlopen(url, timeout=5) as r:
                return parse_prometheus(r.read().decode())

        def cql_clients():
            return sum(v for n, l, v in metrics()
                       if n == "scylla_communicator_clients" and l["front"] == "cql")

        # Every worker connected (a control connection and a pool each).
        wait_until(lambda: cql_clients() == 2 * WORKERS, 60,
                   what="%d workers connected to the communicator" % WORKERS,
                   describe=lambda: (cql_clients(), log_path.read_text(errors="replace")[-3000:]))
        n = 400
        with ThreadPoolExecutor(16) as pool:
            puts = list(pool.map(lambda k: get("%s/put?k=%d&v=%d" % (base, k, k * 7)), range(n)))
            gets = list(pool.map(lambda k: get("%s/get?k=%d" % (base, k)), range(n)))
        assert all(status == 200 for status, _ in puts + gets)
        assert [body["v"] for _, body in gets] == [k * 7 for k in range(n)]
        pids = {body["pid"] for _, body in puts + gets}
        assert len(pids) >= 2, "requests served by several workers: %r" % pids
        assert server.pid not in pids
        # Whatever the number of workers: the daemon's pools and control
        # connection only.
        assert emu.snapshot().get("emulator_connections_current") == NODES * SHARDS + 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

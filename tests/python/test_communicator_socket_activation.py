"""Socket activation: scylla-communicator started as systemd starts a
socket-activated service (the listening socket already bound, passed as
descriptor 3 with LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES). A client that
connects before the daemon runs waits in the socket's backlog and is
served once it does; real drivers then work through the inherited socket;
the daemon leaves the socket file (its owner's) in place when it stops.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import time

from cassandra.cluster import Cluster
from cassandra.connection import UnixSocketEndPoint
from cassandra.policies import RoundRobinPolicy

from emulator_harness import wait_until

OPTIONS = struct.pack(">BBhBI", 4, 0, 1, 0x05, 0)
SUPPORTED = 0x06


def test_inherited_socket_serves_clients_that_came_first(
        emulator_factory, communicator_binary, tmp_path):
    emu = emulator_factory(3, 4)
    path = str(tmp_path / "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    # A client before the daemon exists: it is not refused.
    early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    early.settimeout(30)
    early.connect(path)
    early.sendall(OPTIONS)

    # A second socket of the same unit (so of the same name, as systemd
    # names every socket of a unit alike): its address tells it apart.
    json_path = str(tmp_path / "activated-json.sock")
    json_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    json_listener.bind(json_path)
    json_listener.listen(64)

    stderr_path = tmp_path / "communicator.stderr"
    script = ('export LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=cql:cql; '
              'exec "$0" "$@" 3<&%d 4<&%d' % (json_listener.fileno(), listener.fileno()))
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            ["bash", "-c", script, communicator_binary,
             "--cluster-contact-points", "%s:%d" % (emu.ip(0), emu.port),
             "--listen-unix", path, "--listen-json-unix", json_path, "--log-level", "info"],
            pass_fds=(listener.fileno(), json_listener.fileno()), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=stderr)
    listener.close()
    json_listener.close()
    try:
        log = lambda: stderr_path.read_text(errors="replace")
        wait_until(lambda: "scylla-communicator: ready" in log() or proc.poll() is not None,
                   30, what="the daemon ready", describe=log)
        assert proc.poll() is None, log()
        assert log().count("using an inherited socket") == 2, log()

        header = b""
        while len(header) < 9:
            chunk = early.recv(9 - len(header))
            assert chunk, "the early client was closed"
            header += chunk
        version, _, stream, opcode, length = struct.unpack(">BBhBI", header)
        assert (version, stream, opcode) == (0x84, 1, SUPPORTED)
        early.close()

        cluster = Cluster([UnixSocketEndPoint(path)], load_balancing_policy=RoundRobinPolicy(),
                          connect_timeout=10, protocol_version=4)
        try:
            session = cluster.connect()
            assert session.execute("SELECT key FROM system.local").one().key == "local"
        finally:
            cluster.shutdown()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as js:
            js.settimeout(30)
            js.connect(json_path)
            js.sendall(b'{"id": 1, "query": "SELECT key FROM system.local"}\n')
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = js.recv(65536)
                assert chunk, "the JSON socket was closed"
                answer += chunk
            assert json.loads(answer)["rows"] == [{"key": "local"}]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log()
    # The socket file belongs to whoever bound it (systemd): still there.
    assert os.path.exists(path) and os.path.exists(json_path)

"""Start/stop scylla-communicator in front of an emulator, for the tests
that run real clients through it.

The daemon listens on a Unix socket in the test's directory and on TCP at
an address of the emulator's own 127.0.N.0/24 block that no node uses
(.200), so parallel or repeated runs never share a port. It is stopped by
its pid (SIGTERM, then SIGKILL) at teardown; readiness is its "ready" line
on stderr, polled with a deadline.
"""

import os
import signal
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_COMMUNICATOR = os.path.join(REPO, "target", "release", "scylla-communicator")
# The address in the emulator's block the daemon's TCP listener takes.
TCP_HOST_OFFSET = 199


class CommunicatorError(Exception):
    pass


class Communicator:
    def __init__(self, binary, emulator, log_dir, args=()):
        self.binary = binary
        self.emulator = emulator
        self.socket = os.path.join(log_dir, "cql.sock")
        self.json_socket = os.path.join(log_dir, "json.sock")
        self.host = emulator.ip(TCP_HOST_OFFSET)
        self.port = 9042
        self.stderr_path = os.path.join(log_dir, "communicator-%s.stderr" % emulator.base_ip)
        self.extra_args = list(args)
        self.proc = None

    @property
    def argv(self):
        return [self.binary,
                "--cluster-contact-points", "%s:%d" % (self.emulator.ip(0), self.emulator.port),
                "--listen-unix", self.socket,
                "--listen-tcp", "%s:%d" % (self.host, self.port),
                "--listen-rpc-address", self.host,
                "--log-level", "warn"] + self.extra_args

    def start(self, timeout=30.0):
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise CommunicatorError(
                "scylla-communicator not found at %r: build it with "
                "`cargo build --release -p scylla-communicator` or set SCYLLA_COMMUNICATOR"
                % self.binary)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        while "scylla-communicator: ready" not in self.stderr_text():
            if self.proc.poll() is not None:
                raise CommunicatorError("the communicator exited with %s before ready\n%s"
                                        % (self.proc.returncode, self.describe()))
            if time.monotonic() >= deadline:
                self.stop()
                raise CommunicatorError("the communicator was not ready within %.0fs\n%s"
                                        % (timeout, self.describe()))
            time.sleep(0.05)
        return self

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def describe(self):
        return "command: %s\n--- communicator stderr ---\n%s" % (
            " ".join(self.argv), self.stderr_text()[-8000:])

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s; returns the exit status if the
        daemon had stopped by itself before."""
        if self.proc is None:
            return None
        before = self.proc.poll()
        if before is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stderr.close()
        self.proc = None
        return before

"""The communicator daemon in front of the benchmark's cluster: started
when a driver that goes through it runs, stopped by its process handle.
Readiness is its "ready" line on stderr, polled with a bound."""

import os
import subprocess
import time

from .cluster import stop_process

READY_TIMEOUT_S = 30.0


class CommunicatorError(RuntimeError):
    pass


class Communicator:
    def __init__(self, binary, cluster, socket, log_path):
        self.binary = binary
        self.cluster = cluster
        self.socket = socket
        self.log_path = log_path
        self.proc = None
        self._log_from = 0

    def start(self):
        os.makedirs(os.path.dirname(self.socket), exist_ok=True)
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        argv = [self.binary,
                "--cluster-contact-points", self.cluster.contact(0),
                "--cluster-port", str(self.cluster.port),
                "--listen-unix", self.socket,
                "--log-level", "warn"]
        with open(self.log_path, "ab") as log:
            # This start's own lines: the log keeps every start's.
            self._log_from = log.tell()
            log.write(("$ %s\n" % " ".join(argv)).encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "scylla-communicator: ready" not in self._log():
            if self.proc.poll() is not None:
                raise CommunicatorError("the communicator exited with %s: %s"
                                        % (self.proc.returncode, self._log()[-2000:]))
            if time.monotonic() >= deadline:
                self.stop()
                raise CommunicatorError("the communicator was not ready within %.0f s"
                                        % READY_TIMEOUT_S)
            time.sleep(0.05)
        return self

    def _log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self._log_from)
            return f.read().decode(errors="replace")

    @property
    def pid(self):
        return self.proc.pid if self.proc else 0

    def stop(self):
        # Its shutdown grace lets requests in flight finish.
        stop_process(self.proc, grace_s=15.0)
        self.proc = None

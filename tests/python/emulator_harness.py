"""Start/stop the scylla-emulator binary and read its Prometheus counters.

Used by conftest.py (fixtures) and by the test modules (helpers). Nothing here
sleeps and hopes: every wait polls a condition until a deadline and fails with
a message that says what was last seen.
"""

import ipaddress
import itertools
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict

DEFAULT_EMULATOR = "/work/main/target/release/scylla-emulator"
DEFAULT_PEER = "/work/main/target/release/scylla-peer"

# The counters the contract promises on every node (a missing one would make
# every "zero misroutes" assertion vacuous, so start() checks them).
REQUIRED_METRICS = (
    "emulator_connections_accepted_total",
    "emulator_connections_current",
    "emulator_requests_total",
    "emulator_misrouted_node_total",
    "emulator_misrouted_shard_total",
    "emulator_tablet_payloads_sent_total",
)

# Each emulator gets its own 127.0.N.0/24 block, N incrementing per start, so a
# test never meets the TIME_WAIT sockets or late packets of the previous one.
# The start value moves with the pid so that quick reruns use fresh blocks too.
_NET_COUNTER = itertools.count(20 + (os.getpid() % 100) * 2)


def next_base_ip():
    n = next(_NET_COUNTER)
    return "127.0.%d.1" % (20 + (n - 20) % 230)


def host_id_of(i):
    """Host id the emulator assigns to node i (0-based)."""
    return "00000000-0000-4000-8000-%012x" % (i + 1)


def wait_until(predicate, timeout, interval=0.05, what="condition", describe=None):
    """Poll `predicate` until it returns a truthy value; return that value.

    On timeout raise AssertionError naming `what` and the last value (or
    exception) the predicate produced, or what `describe()` says.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # keep polling; report the last failure
            last = exc
        if time.monotonic() >= deadline:
            if describe is not None:
                try:
                    last = describe()
                except Exception as exc:
                    last = exc
            raise AssertionError("timed out after %.1fs waiting for %s; last seen: %r"
                                 % (timeout, what, last))
        time.sleep(interval)


# --------------------------------------------------------------------------
# Prometheus text parsing and counter snapshots
# --------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """Return a list of (name, labels dict, float value)."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labelstr, value = m.groups()
        labels = dict(_LABEL.findall(labelstr or ""))
        try:
            v = float(value)
        except ValueError:
            continue
        samples.append((name, labels, v))
    return samples


class Snapshot:
    """Counters of every node at one instant.

    values[(node_index, metric_name, shard)] = value summed over other labels
    (e.g. `port`). Samples without a shard label are stored under shard -1.
    by_port[(node_index, metric_name, shard, port)] keeps the port split.
    """

    def __init__(self):
        self.values = defaultdict(float)
        self.by_port = defaultdict(float)

    def add(self, node, samples):
        for name, labels, v in samples:
            shard = int(labels["shard"]) if "shard" in labels else -1
            self.values[(node, name, shard)] += v
            if "port" in labels:
                self.by_port[(node, name, shard, labels["port"])] += v

    def get(self, name, node=None, shard=None, port=None):
        """Sum of `name` over the nodes/shards (/port) that match."""
        total = 0.0
        if port is not None:
            for (n, m, s, p), v in self.by_port.items():
                if m == name and p == str(port) and (node is None or n == node) \
                        and (shard is None or s == shard):
                    total += v
            return total
        for (n, m, s), v in self.values.items():
            if m == name and (node is None or n == node) and (shard is None or s == shard):
                total += v
        return total

    def per_shard(self, name):
        """{(node, shard): value} for `name`."""
        out = {}
        for (n, m, s), v in self.values.items():
            if m == name:
                out[(n, s)] = out.get((n, s), 0.0) + v
        return out

    def names(self):
        return sorted({m for (_, m, _) in self.values})

    def __sub__(self, other):
        d = Snapshot()
        for k in set(self.values) | set(other.values):
            d.values[k] = self.values.get(k, 0.0) - other.values.get(k, 0.0)
        for k in set(self.by_port) | set(other.by_port):
            d.by_port[k] = self.by_port.get(k, 0.0) - other.by_port.get(k, 0.0)
        return d

    def routing_summary(self):
        return {
            "requests": self.get("emulator_requests_total"),
            "misrouted_node": self.get("emulator_misrouted_node_total"),
            "misrouted_shard": self.get("emulator_misrouted_shard_total"),
            "payloads": self.get("emulator_tablet_payloads_sent_total"),
        }


# --------------------------------------------------------------------------
# The emulator process
# --------------------------------------------------------------------------

class EmulatorError(AssertionError):
    pass


class Emulator:
    def __init__(self, binary, nodes, shards, args=(), base_ip=None, port=9042,
                 shard_aware_port=19042, metrics_port=9180, log_dir=None):
        self.binary = binary
        self.nodes = nodes
        self.shards = shards
        self.extra_args = list(args)
        self.base_ip = base_ip or next_base_ip()
        # An address chosen here may be taken by another program's cluster
        # (tests run side by side): start() then moves to the next block.
        self._own_address = base_ip is None
        self.port = port
        self.shard_aware_port = shard_aware_port
        self.metrics_port = metrics_port
        self.log_dir = log_dir
        self.proc = None
        self.stdout_lines = []
        self._ready = threading.Event()
        self._reader = None
        self._stderr_path = None
        self._stderr_file = None
        self.crashed_rc = None
        self.stopping = False
        self.ready_ok = False

    # -- addresses -------------------------------------------------------
    def ip(self, i):
        return str(ipaddress.IPv4Address(self.base_ip) + i)

    @property
    def ips(self):
        return [self.ip(i) for i in range(self.nodes)]

    def host_id(self, i):
        return host_id_of(i)

    def node_of_ip(self, ip):
        return self.ips.index(str(ip))

    @property
    def argv(self):
        return [self.binary, "--nodes", str(self.nodes), "--shards", str(self.shards),
                "--base-ip", self.base_ip, "--port", str(self.port),
                "--shard-aware-port", str(self.shard_aware_port),
                "--metrics-port", str(self.metrics_port)] + self.extra_args

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout=30.0, attempts=5):
        for attempt in range(attempts):
            try:
                return self._start_once(timeout)
            except EmulatorError as e:
                taken = "Address already in use" in str(e)
                if not (taken and self._own_address) or attempt == attempts - 1:
                    raise
                self.base_ip = next_base_ip()

    def _start_once(self, timeout):
        if not os.path.isfile(self.binary) or not os.access(self.binary, os.X_OK):
            raise EmulatorError(
                "emulator binary %r not found or not executable; build it with "
                "`cargo build --release -p scylla-emulator` or set SCYLLA_EMULATOR" % self.binary)
        log_dir = self.log_dir or "/tmp"
        os.makedirs(log_dir, exist_ok=True)
        self._stderr_path = os.path.join(log_dir, "emulator-%s.stderr" % self.base_ip)
        self._stderr_file = open(self._stderr_path, "wb")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr_file, env=env)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            rc = self.proc.poll()
            if rc is not None:
                self._reader.join(2)
                self.stop()
                raise EmulatorError("emulator exited with status %s before READY\n%s"
                                    % (rc, self.describe()))
            if time.monotonic() >= deadline:
                self.stop()
                raise EmulatorError("emulator did not print READY within %.0fs\n%s"
                                    % (timeout, self.describe()))
        # READY promises every listener accepts; the metrics endpoints too.
        try:
            for i in range(self.nodes):
                wait_until(lambda i=i: self.scrape_text(i) is not None, 10,
                           what="metrics endpoint of node %d (%s)" % (i, self.ip(i)))
        except AssertionError as e:
            self.stop()
            raise EmulatorError("%s\n%s" % (e, self.describe()))
        for i in range(self.nodes):
            samples = self.scrape(i)
            names = {name for name, _, _ in samples}
            missing = [m for m in REQUIRED_METRICS if m not in names]
            shards = {int(l["shard"]) for name, l, _ in samples
                      if name == "emulator_requests_total" and "shard" in l}
            if missing or shards != set(range(self.shards)):
                self.stop()
                raise EmulatorError("node %d metrics: missing %r, emulator_requests_total shards %r"
                                    "\n%s" % (i, missing, sorted(shards), self.describe()))
        self.ready_ok = True
        return self

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            if "READY" in line:
                self._ready.set()
        self.proc.stdout.close()

    def stderr_text(self, limit=8000):
        if not self._stderr_path or not os.path.exists(self._stderr_path):
            return ""
        with open(self._stderr_path, "rb") as f:
            data = f.read()
        text = data.decode("utf-8", "replace")
        if len(text) > limit:
            text = "...[%d bytes cut]...\n" % (len(text) - limit) + text[-limit:]
        return text

    def describe(self):
        return ("command: %s\n--- emulator stdout (last 20 lines) ---\n%s\n"
                "--- emulator stderr (%s) ---\n%s"
                % (" ".join(self.argv), "\n".join(self.stdout_lines[-20:]),
                   self._stderr_path, self.stderr_text()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None and not self.stopping:
            raise EmulatorError("emulator died with status %s\n%s"
                                % (self.proc.returncode, self.describe()))

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s. Returns the exit status seen
        before we signalled it (None if it was still running)."""
        if self.proc is None:
            return None
        if self.stopping:
            return self.crashed_rc
        self.stopping = True
        self.crashed_rc = self.proc.poll()
        if self.crashed_rc is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        if self._reader is not None:
            self._reader.join(5)
        if self._stderr_file is not None:
            self._stderr_file.close()
        return self.crashed_rc

    # -- metrics and admin ----------------------------------------------
    def url(self, i, path):
        return "http://%s:%d%s" % (self.ip(i), self.metrics_port, path)

    def scrape_text(self, i, timeout=5.0):
        with urllib.request.urlopen(self.url(i, "/metrics"), timeout=timeout) as r:
            if r.status != 200:
                raise EmulatorError("GET /metrics on node %d: HTTP %s" % (i, r.status))
            return r.read().decode("utf-8", "replace")

    def scrape(self, i):
        return parse_prometheus(self.scrape_text(i))

    def snapshot(self):
        snap = Snapshot()
        for i in range(self.nodes):
            snap.add(i, self.scrape(i))
        return snap

    def admin(self, i, path, timeout=10.0):
        """POST an admin request to node i; return (status, body)."""
        req = urllib.request.Request(self.url(i, path), data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def wait_connections_on_every_shard(self, timeout=30.0, nodes=None):
        """Poll until every shard of every node reports >= 1 open connection."""
        nodes = range(self.nodes) if nodes is None else nodes

        state = {}

        def full():
            snap = self.snapshot()
            state["missing (node, shard)"] = [
                (n, s) for n in nodes for s in range(self.shards)
                if snap.get("emulator_connections_current", node=n, shard=s) < 1]
            return not state["missing (node, shard)"]

        wait_until(full, timeout, interval=0.1, describe=lambda: state,
                   what="an open connection on every shard of every node (emulator metrics)")

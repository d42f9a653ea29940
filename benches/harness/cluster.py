"""The emulated cluster: start, stop, restart a node, read its counters."""

import ipaddress
import re
import subprocess
import threading
import time
import urllib.request
from collections import defaultdict

READY_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 5.0
# The emulator is on loopback: never through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> {(name, shard): value}, summed over other labels."""
    out = defaultdict(float)
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        if not m:
            continue
        name, labels, value = m.groups()
        try:
            v = float(value)
        except ValueError:
            continue
        labels = dict(_LABEL.findall(labels or ""))
        shard = labels.get("shard")
        shard = int(shard) if shard is not None else -1
        out[(name, shard)] += v
        if "port" in labels:
            out[("%s{port=%s}" % (name, labels["port"]), shard)] += v
    return out


class Snapshot:
    """Counters of every node at one instant: {(node, name, shard): value}."""

    def __init__(self, values=None):
        self.values = values or {}

    def total(self, name, node=None):
        return sum(v for (n, m, _), v in self.values.items()
                   if m == name and (node is None or n == node))

    def __sub__(self, other):
        keys = set(self.values) | set(other.values)
        return Snapshot({k: self.values.get(k, 0.0) - other.values.get(k, 0.0) for k in keys})

    def routing(self):
        """The figures the harness reports from a difference of snapshots."""
        return {
            "requests": self.total("emulator_requests_total"),
            "routable": self.total("emulator_routable_requests_total"),
            "misrouted_node": self.total("emulator_misrouted_node_total"),
            "misrouted_shard": self.total("emulator_misrouted_shard_total"),
            "connections_accepted": self.total("emulator_connections_accepted_total"),
            "tablet_payloads": self.total("emulator_tablet_payloads_sent_total"),
        }


class EmulatorError(RuntimeError):
    pass


def stop_process(proc, grace_s=10.0):
    """SIGTERM to a started server (None: nothing), SIGKILL if it has not
    exited after `grace_s`."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class Cluster:
    def __init__(self, binary, nodes, shards, base_ip, tablets=True, port=9042,
                 shard_aware_port=19042, metrics_port=9180, log_path=None, preexec_fn=None):
        self.binary = binary
        self.nodes = nodes
        self.shards = shards
        self.base_ip = base_ip
        self.tablets = tablets
        self.port = port
        self.shard_aware_port = shard_aware_port
        self.metrics_port = metrics_port
        self.log_path = log_path
        self.preexec_fn = preexec_fn
        self.proc = None
        self.ready_line = None

    def ip(self, i):
        return str(ipaddress.IPv4Address(self.base_ip) + i)

    def contact(self, i=0):
        return "%s:%d" % (self.ip(i), self.port)

    def start(self):
        args = [self.binary, "--nodes", str(self.nodes), "--shards", str(self.shards),
                "--base-ip", self.base_ip, "--port", str(self.port),
                "--shard-aware-port", str(self.shard_aware_port),
                "--metrics-port", str(self.metrics_port)]
        if self.tablets:
            args.append("--tablets")
        stderr = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr,
                                     stdin=subprocess.DEVNULL, text=True,
                                     preexec_fn=self.preexec_fn)
        if stderr is not subprocess.DEVNULL:
            stderr.close()
        lines = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_S)
        if not lines or "READY" not in lines[0]:
            self.stop()
            raise EmulatorError("the emulator did not print READY within %.0f s (got %r; log %s)"
                                % (READY_TIMEOUT_S, lines, self.log_path))
        self.ready_line = lines[0].strip()
        # Keep draining stdout so the emulator never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _http(self, i, method, path):
        url = "http://%s:%d%s" % (self.ip(i), self.metrics_port, path)
        req = urllib.request.Request(url, method=method)
        with _HTTP.open(req, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.read().decode()

    def snapshot(self):
        values = {}
        for i in range(self.nodes):
            for (name, shard), v in parse_metrics(self._http(i, "GET", "/metrics")).items():
                values[(i, name, shard)] = v
        return Snapshot(values)

    def set_delay(self, us):
        """Every node adds `us` microseconds to each response."""
        for i in range(self.nodes):
            self._http(i, "POST", "/admin/delay?us=%d" % us)

    def restart(self, i, down_ms):
        self._http(i, "POST", "/admin/restart?down_ms=%d" % down_ms)

    def wait_up(self, i, timeout_s):
        """Polls (bounded) until node i reports emulator_node_up 1."""
        deadline = time.monotonic() + timeout_s
        while True:
            metrics = parse_metrics(self._http(i, "GET", "/metrics"))
            if metrics.get(("emulator_node_up", -1), 0.0) >= 1.0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

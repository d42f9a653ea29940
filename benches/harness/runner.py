"""Running client processes: one measured run, the connection storm, and
instruction counts under callgrind. Every wait is bounded; a client that
overstays is killed (by its own process handle) and the run is reported as
failed, never silently dropped."""

import dataclasses
import json
import os
import queue
import re
import resource
import subprocess
import threading
import time
from dataclasses import dataclass

from . import cpu

# Bounds beyond a run's own warm-up and duration.
CONNECT_SLACK_S = 60.0
FINISH_SLACK_S = 60.0
EXIT_TIMEOUT_S = 30.0
CALLGRIND_TIMEOUT_S = 600.0
STORM_UP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Case:
    """One workload at one concurrency on one keyspace."""
    id: str
    workload: str
    concurrency: int
    keyspace: str
    tablets: bool = False
    throughput: bool = False


@dataclass
class Settings:
    keys: int
    duration: float
    warmup: float
    verify_max: int
    table: str = "kv"


def client_args(cluster, case, settings, tag, contact_node=0):
    return ["--contact", cluster.contact(contact_node),
            "--workload", case.workload,
            "--concurrency", str(case.concurrency),
            "--duration", "%g" % settings.duration,
            "--warmup", "%g" % settings.warmup,
            "--keys", str(settings.keys),
            "--keyspace", case.keyspace,
            "--table", settings.table,
            "--tag", str(tag),
            "--verify-max", str(settings.verify_max),
            "--expect-nodes", str(cluster.nodes)]


# Descriptors a storm process may hold (sessions x nodes x shards sockets).
STORM_FD_LIMIT = 65536


def raise_fd_limit():
    """Raises this process's descriptor limit as far as allowed (up to
    STORM_FD_LIMIT); run in a child before exec."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, STORM_FD_LIMIT)
    for limit in ((want, max(hard, want)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return
        except (ValueError, OSError):
            continue


class ClientProcess:
    """A client process; its stdout JSON events arrive through a queue."""

    def __init__(self, adapter, args, log_path, preexec_fn=None):
        self.log_path = log_path
        self.argv = adapter.argv + args
        with open(log_path, "wb") as log:
            log.write(("$ %s\n" % " ".join(self.argv)).encode())
        log = open(log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log, env=adapter.environment(), text=True,
                                     preexec_fn=preexec_fn)
        log.close()
        self.events = queue.Queue()
        self.other_lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                self.other_lines.append(line.rstrip())
                continue
            if isinstance(event, dict):
                self.events.put(event)
        self.events.put(None)

    def next_event(self, timeout_s):
        """The next JSON event, None at end of output; TimeoutError past the bound."""
        try:
            return self.events.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError("no output from %s within %.0f s"
                               % (self.argv[0], timeout_s)) from None

    def go(self):
        self.send("go")

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait(self, timeout_s):
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError("%s did not exit within %.0f s"
                               % (self.argv[0], timeout_s)) from None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT_S)

    def log_tail(self, lines=5):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return []


def _expect(event, name, process):
    if event is None:
        raise RuntimeError("client ended before %r; rc %s; stderr: %s"
                           % (name, process.proc.poll(), process.log_tail()))
    if event.get("event") == "error":
        raise RuntimeError("client error: %s" % event.get("message"))
    if event.get("event") != name:
        raise RuntimeError("expected %r, got %r" % (name, event))
    return event


def run_measured(adapter, cluster, case, settings, tag, log_path):
    """One measured run. Returns the raw record: the client's result line and
    the emulator's counter differences over the client's lifetime
    ("lifetime") and from the end of warm-up to the client's exit ("measured")."""
    record = {"driver": adapter.name, "case": case.id, "tag": tag, "log": log_path,
              "through_communicator": adapter.communicator}
    before = cluster.snapshot()
    process = ClientProcess(adapter, client_args(cluster, case, settings, tag) + ["--sync"],
                            log_path)
    try:
        _expect(process.next_event(settings.warmup + CONNECT_SLACK_S), "ready", process)
        at_ready = cluster.snapshot()
        cpu0 = _cpu_now(cluster, process)
        process.go()
        result = _expect(process.next_event(settings.duration + FINISH_SLACK_S), "result",
                         process)
        children = cpu.children_cpu_s()
        process.wait(EXIT_TIMEOUT_S)
        client_total = cpu.children_cpu_s() - children
        window = _cpu_window(cpu0, _cpu_now(cluster, None), client_total)
        after = cluster.snapshot()
    except (RuntimeError, TimeoutError, OSError) as exc:
        process.kill()
        record["failure"] = str(exc)
        return record
    record["result"] = result
    record["measured"] = (after - at_ready).routing()
    record["lifetime"] = (after - before).routing()
    record["window"] = window
    return record


def _cpu_now(cluster, process):
    communicator = getattr(cluster, "communicator", None)
    return {
        "t": time.monotonic(),
        "machine_s": cpu.machine_busy_s(),
        "emulator_s": cpu.process_cpu_s(cluster.pid),
        # The communicator daemon, when one runs in front of the cluster.
        "communicator_s": cpu.process_cpu_s(communicator.pid) if communicator else 0.0,
        "harness_s": cpu.own_cpu_s(),
        # Until the client exits, its CPU so far; after, filled by the caller.
        "client_s": cpu.process_cpu_s(process.proc.pid) if process else 0.0,
    }


def _cpu_window(start, end, client_total_s):
    """Where the machine's CPU went from the end of the warm-up to the
    client's exit. `background_cores` is what neither the client, the
    emulator, the communicator nor this harness used: other processes on
    the machine."""
    wall = end["t"] - start["t"]
    used = {k: end[k] - start[k]
            for k in ("machine_s", "emulator_s", "communicator_s", "harness_s")}
    used["client_s"] = client_total_s - start["client_s"]
    other = (used["machine_s"] - used["emulator_s"] - used["communicator_s"]
             - used["harness_s"] - used["client_s"])
    return dict(used, wall_s=wall, background_cores=max(other, 0.0) / wall if wall > 0 else 0.0)


def run_storm(adapter, cluster, settings, clients, down_ms, tag, log_dir):
    """The connection storm: restart node 0, and once it is back, start
    `clients` client processes at once, each connecting a session to it
    and waiting for full pools. Counts the connections the cluster accepted
    while they connected against the ideal nodes x shards x clients."""
    record = {"driver": adapter.name, "clients": clients, "down_ms": down_ms}
    cluster.restart(0, down_ms)
    if not cluster.wait_up(0, STORM_UP_TIMEOUT_S):
        record["failure"] = "node 0 not up again within %.0f s" % STORM_UP_TIMEOUT_S
        return record
    case = Case("storm", "connect", 1, "bench")
    args = client_args(cluster, case, settings, tag) + ["--sync"]
    before = cluster.snapshot()
    started = time.monotonic()
    processes = [ClientProcess(adapter, args, os.path.join(log_dir, "storm-%s-%d.log"
                                                           % (adapter.name, n)))
                 for n in range(clients)]
    try:
        deadline = started + CONNECT_SLACK_S
        for p in processes:
            _expect(p.next_event(max(deadline - time.monotonic(), 0.1)), "ready", p)
        all_ready_s = time.monotonic() - started
        held = cluster.snapshot()
        for p in processes:
            p.go()
        results = [_expect(p.next_event(FINISH_SLACK_S), "result", p) for p in processes]
        for p in processes:
            p.wait(EXIT_TIMEOUT_S)
    except (RuntimeError, TimeoutError, OSError) as exc:
        for p in processes:
            p.kill()
        record["failure"] = str(exc)
        return record
    during = held - before
    ideal = clients * cluster.nodes * cluster.shards
    accepted = during.total("emulator_connections_accepted_total")
    record.update({
        "ideal": ideal,
        "accepted": accepted,
        "held": during.total("emulator_connections_current"),
        # Every connection the cluster holds once all are ready: the
        # clients' own, or the communicator's for all of them.
        "held_total": held.total("emulator_connections_current"),
        "excess_pct": (accepted - ideal) / ideal * 100.0,
        # Drivers open a control connection besides their pools.
        "excess_with_control_pct": (accepted - ideal - clients) / (ideal + clients) * 100.0,
        "all_ready_s": all_ready_s,
        "pools_full": sum(1 for r in results if r.get("pools_full")),
        "connect_s": sorted(r.get("connect_s", 0.0) for r in results),
    })
    return record


def run_processes(adapter, cluster, case, settings, processes, tag, log_dir):
    """`processes` client processes of one case at once, their measured
    phases started together once all have warmed up: the total
    throughput of a machine's workers. They share one tag (every process
    writes the same value for a key), so their read-backs hold."""
    record = {"driver": adapter.name, "case": case.id, "processes": processes}
    args = client_args(cluster, case, settings, tag) + ["--sync"]
    procs = [ClientProcess(adapter, args, os.path.join(
        log_dir, "%s-%s-%d.log" % (case.id.replace("/", "-"), adapter.name, n)))
        for n in range(processes)]
    try:
        deadline = time.monotonic() + settings.warmup + CONNECT_SLACK_S
        for p in procs:
            _expect(p.next_event(max(deadline - time.monotonic(), 0.1)), "ready", p)
        before = cluster.snapshot()
        for p in procs:
            p.go()
        results = [_expect(p.next_event(settings.duration + FINISH_SLACK_S), "result", p)
                   for p in procs]
        for p in procs:
            p.wait(EXIT_TIMEOUT_S)
        after = cluster.snapshot()
    except (RuntimeError, TimeoutError, OSError) as exc:
        for p in procs:
            p.kill()
        record["failure"] = str(exc)
        return record
    record.update({
        "rps": sum(r.get("rps", 0.0) for r in results),
        "requests": sum(r.get("requests", 0) for r in results),
        "errors": sum(r.get("errors", 0) for r in results),
        "mismatches": sum(r.get("mismatches", 0) for r in results),
        "measured": (after - before).routing(),
    })
    return record


def split_sessions(sessions, processes):
    """Sessions per process, as even as possible, no empty process."""
    processes = max(1, min(processes, sessions))
    base, extra = divmod(sessions, processes)
    return [base + (1 if i < extra else 0) for i in range(processes)]


def restart_counts(delta, cluster, node):
    """What node `node` accepted over a snapshot difference: connections per
    port, and those that REGISTERed (control connections)."""
    regular = delta.total("emulator_connections_accepted_total{port=%d}" % cluster.port, node)
    aware = delta.total("emulator_connections_accepted_total{port=%d}" % cluster.shard_aware_port,
                        node)
    control = delta.total("emulator_connections_registered_total", node)
    return {"regular": regular, "shard_aware": aware, "control": control,
            "pool": regular + aware - control}


def run_restart_storm(adapter, cluster, sessions, processes, restart_nodes, down_ms,
                      shard_aware_port, log_dir, connect_timeout_s=600.0, before_exit=None):
    """The restart storm at the founding experiment's scale: `sessions`
    sessions (over `processes` client processes) hold full pools to every
    node; each node of `restart_nodes` in turn restarts (down `down_ms`),
    and the connections it accepts until every session's pools are full
    again are counted against the ideal, sessions x shards (one per shard
    per session), with control connections apart. `before_exit` runs once
    the counts are taken, before the clients are told to exit."""
    mode = "shard-aware port" if shard_aware_port else "regular port only"
    record = {"driver": adapter.name, "mode": mode, "sessions": sessions,
              "processes": 0, "down_ms": down_ms, "restarts": []}
    base = ["--contact", cluster.contact(0), "--workload", "hold",
            "--expect-nodes", str(cluster.nodes), "--pool-timeout", "120"]
    if not shard_aware_port:
        base.append("--no-shard-aware-port")
    shares = split_sessions(sessions, processes)
    record["processes"] = len(shares)
    before = cluster.snapshot()
    started = time.monotonic()
    procs = []
    try:
        for n, share in enumerate(shares):
            log = os.path.join(log_dir, "restart-storm-%s-%s-%d.log"
                               % (adapter.name, "sa" if shard_aware_port else "regular", n))
            procs.append(ClientProcess(adapter, base + ["--sessions", str(share)], log,
                                       preexec_fn=raise_fd_limit))
        deadline = started + connect_timeout_s
        ready = [_expect(p.next_event(max(deadline - time.monotonic(), 0.1)), "ready", p)
                 for p in procs]
        record["connect_s"] = time.monotonic() - started
        record["connected_full"] = all(r.get("pools_full") for r in ready)
        setup = cluster.snapshot() - before
        record["setup_accepted"] = setup.total("emulator_connections_accepted_total")
        for node in restart_nodes:
            snap = cluster.snapshot()
            cluster.restart(node, down_ms)
            for p in procs:
                p.send("restart")
            events = [_expect(p.next_event(180.0), "refilled", p) for p in procs]
            # Attempts still running when the last pool filled are counted.
            time.sleep(1.0)
            after = cluster.snapshot()
            delta = after - snap
            counts = restart_counts(delta, cluster, node)
            # What the node holds, as a check of the drivers' own word that
            # their pools are full: every shard needs one per session.
            per_shard = [v for (n, name, shard), v in after.values.items()
                         if n == node and name == "emulator_connections_current" and shard >= 0]
            diagnostics = {}
            for e in events:
                for k, v in (e.get("diagnostics") or {}).items():
                    diagnostics[k] = diagnostics.get(k, 0) + v
            ideal = sessions * cluster.shards
            record["restarts"].append(dict(
                counts, node=node, ideal=ideal,
                excess_pct=(counts["pool"] - ideal) / ideal * 100.0,
                control_total=delta.total("emulator_connections_registered_total"),
                held=after.total("emulator_connections_current", node),
                held_fewest_on_a_shard=min(per_shard) if per_shard else 0.0,
                full_s=max(e.get("full_s", 0.0) for e in events),
                all_full=all(e.get("pools_full") for e in events),
                saw_drop=all(e.get("saw_drop") for e in events),
                diagnostics=diagnostics,
            ))
        if before_exit:
            before_exit()
        for p in procs:
            p.send("exit")
        for p in procs:
            _expect(p.next_event(FINISH_SLACK_S), "result", p)
            p.wait(EXIT_TIMEOUT_S)
    except (RuntimeError, TimeoutError, OSError) as exc:
        record["failure"] = str(exc)
    finally:
        for p in procs:
            p.kill()
    return record


_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.M)


def callgrind_instructions(path):
    with open(path) as f:
        m = _TOTALS.search(f.read())
    if not m:
        raise RuntimeError("no totals in %s" % path)
    return int(m.group(1))


def run_callgrind(adapter, cluster, settings, requests, warmup_requests, tag, log_dir,
                  valgrind="valgrind", concurrency=1):
    """Instructions per request of the mixed workload at `concurrency`:
    two runs of n1 < n2 measured requests after the same warm-up, so
    (I(n2) - I(n1)) / (n2 - n1) cancels process start, connection and
    warm-up."""
    record = {"driver": adapter.name, "requests": list(requests),
              "warmup_requests": warmup_requests, "concurrency": concurrency}
    case = Case("callgrind", "mixed", concurrency, "bench")
    counts = []
    for n in requests:
        out = os.path.join(log_dir, "callgrind-%s-%d.out" % (adapter.name, n))
        args = client_args(cluster, case, settings, tag)
        args += ["--requests", str(n), "--warmup-requests", str(warmup_requests),
                 "--verify-max", "0"]
        wrapped = dataclasses.replace(adapter, argv=[valgrind, "--tool=callgrind",
                                                     "--callgrind-out-file=" + out]
                                      + adapter.argv)
        process = ClientProcess(wrapped, args, os.path.join(log_dir, "callgrind-%s-%d.log"
                                                            % (adapter.name, n)))
        try:
            result = _expect(process.next_event(CALLGRIND_TIMEOUT_S), "result", process)
            process.wait(EXIT_TIMEOUT_S)
            if result.get("requests") != n or result.get("errors"):
                raise RuntimeError("callgrind run of %d requests: %d done, %d errors"
                                   % (n, result.get("requests", 0), result.get("errors", 0)))
            counts.append(callgrind_instructions(out))
        except (RuntimeError, TimeoutError, OSError) as exc:
            process.kill()
            record["failure"] = str(exc)
            return record
    record["instructions"] = counts
    (n1, n2), (i1, i2) = requests, counts
    record["instructions_per_request"] = (i2 - i1) / (n2 - n1)
    return record


def run_plain(adapter, args, log_path, timeout_s):
    """Runs a client without the checkpoint protocol; returns its result line."""
    process = ClientProcess(adapter, args, log_path)
    try:
        result = _expect(process.next_event(timeout_s), "result", process)
        process.wait(EXIT_TIMEOUT_S)
        return result
    finally:
        process.kill()

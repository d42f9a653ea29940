"""The common side of the Python benchmark clients.

The same command line, workloads, verification and result line as the Rust
clients' `bench-core` (see benches/README.md, "The client contract"). A
Python client supplies a driver object with:

    name                                   reported as "driver"
    connect(opts)      (classmethod)       returns the connected driver
    pools_full(opts)   -> bool             a connection on every shard of every node
    connections()      -> int              connections the driver says it holds
    query(cql)                             unprepared CQL, blocking
    prepare(keyspace, table)               the workload's INSERT and SELECT
    start(is_insert, key, value, tag, done)
                                           starts one request without blocking;
                                           calls done(row, error) exactly once,
                                           from any thread, with row = (v, tag)
                                           or None for a SELECT
    close()

and calls main(DriverClass).
"""

import argparse
import json
import math
import queue
import resource
import sys
import threading
import time

WORKLOADS = ("insert", "select", "mixed", "connect", "schema", "hold")
# Requesters of the read-back after the measured phase (at most).
READBACK_CONCURRENCY = 32
# How long --sync waits for the go-ahead, and the bound on any phase beyond
# its own duration (requests in flight finish within the driver's timeout).
SYNC_TIMEOUT_S = 300.0
PHASE_SLACK_S = 60.0
# Completion callbacks that start the next request nest; past this depth the
# next request is started from the waiting thread instead.
MAX_CALLBACK_DEPTH = 16


def table_cql(keyspace, table):
    return ("CREATE TABLE IF NOT EXISTS %s.%s (k bigint PRIMARY KEY, v text, tag bigint)"
            % (keyspace, table))


def insert_cql(keyspace, table):
    return "INSERT INTO %s.%s (k, v, tag) VALUES (?, ?, ?)" % (keyspace, table)


def select_cql(keyspace, table):
    return "SELECT v, tag FROM %s.%s WHERE k = ?" % (keyspace, table)


def payload(k):
    """The value column of key k: 64 characters, as every client derives it."""
    return ("%016x" % k) * 4


def is_insert(workload, i):
    return workload == "insert" or (workload == "mixed" and i % 2 == 0)


def split_contact(contact):
    host, sep, port = contact.rpartition(":")
    return (host, int(port)) if sep else (contact, 9042)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--contact", default="127.0.0.1:9042", help="HOST:PORT")
    p.add_argument("--workload", choices=WORKLOADS, default="mixed")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--requests", type=int, default=None)
    p.add_argument("--warmup-requests", type=int, default=0)
    p.add_argument("--keys", type=int, default=10000)
    p.add_argument("--keyspace", default="bench")
    p.add_argument("--table", default="kv")
    p.add_argument("--tag", type=int, default=1)
    p.add_argument("--verify-max", type=int, default=1000)
    p.add_argument("--expect-nodes", type=int, default=None)
    p.add_argument("--pool-timeout", type=float, default=30.0)
    p.add_argument("--replication",
                   default="{'class': 'SimpleStrategy', 'replication_factor': 1}")
    p.add_argument("--sync", action="store_true")
    p.add_argument("--sessions", type=int, default=1, help="sessions of the hold workload")
    p.add_argument("--no-shard-aware-port", dest="shard_aware_port", action="store_false")
    return p


def check_args(p, opts):
    if opts.concurrency <= 0 or opts.keys <= 0 or opts.sessions <= 0:
        p.error("--concurrency, --keys and --sessions must be positive")
    if opts.requests is None and opts.duration <= 0:
        p.error("--duration must be positive (or give --requests)")
    return opts


def nearest_rank(sorted_values, p):
    if not sorted_values:
        return 0
    rank = math.ceil(p * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def latency_summary_us(latencies_ns):
    v = sorted(latencies_ns)
    out = {name: nearest_rank(v, p) / 1000.0
           for name, p in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999))}
    out["max"] = (v[-1] if v else 0) / 1000.0
    out["mean"] = (sum(v) / len(v) / 1000.0) if v else 0.0
    return out


def rusage():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"user": ru.ru_utime, "sys": ru.ru_stime}


def cpu_since(before):
    now = rusage()
    return {k: now[k] - before[k] for k in now}


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def checkpoint(opts, at):
    """With --sync: say so on stdout and wait (bounded) for a line on stdin."""
    if not opts.sync:
        return
    emit({"event": "ready", "at": at})
    got = []
    reader = threading.Thread(target=lambda: got.append(sys.stdin.readline()), daemon=True)
    reader.start()
    reader.join(SYNC_TIMEOUT_S)
    if not got:
        raise RuntimeError("no go-ahead on stdin within %.0f s" % SYNC_TIMEOUT_S)


class Stats:
    def __init__(self):
        self.latencies_ns = []
        self.requests = 0
        self.errors = 0
        self.first_error = None
        self.checked = 0
        self.mismatches = 0
        self.first_mismatch = None

    def error(self, what):
        self.errors += 1
        if self.first_error is None:
            self.first_error = str(what)

    def check(self, key, row, want, want_tag):
        self.checked += 1
        ok = row is not None and row[0] == want and (want_tag is None or row[1] == want_tag)
        if not ok:
            self.mismatches += 1
            if self.first_mismatch is None:
                self.first_mismatch = "key %d: read %r, expected (%r, %r)" % (
                    key, row, want, want_tag)


class Phase:
    """Keeps `concurrency` requests in flight until `take()` says stop.

    take() runs under the phase's lock and returns (is_insert, key, want_tag)
    or None; want_tag None means "check the value only". Completions record
    the latency (issue to callback), check SELECT rows and start the next
    request.
    """

    def __init__(self, driver, payloads, tag, concurrency, take):
        self.driver = driver
        self.payloads = payloads
        self.tag = tag
        self.concurrency = concurrency
        self.take = take
        self.stats = Stats()
        self._cond = threading.Condition()
        self._active = 0
        self._deferred = 0
        self._tls = threading.local()

    def run(self, timeout_s):
        with self._cond:
            self._active = self.concurrency
        for _ in range(self.concurrency):
            self._next()
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._active > 0:
                if self._deferred:
                    n, self._deferred = self._deferred, 0
                    self._cond.release()
                    try:
                        for _ in range(n):
                            self._next()
                    finally:
                        self._cond.acquire()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("phase did not finish within %.0f s" % timeout_s)
                self._cond.wait(min(left, 1.0))
        return self.stats

    def _next(self):
        with self._cond:
            job = self.take()
            if job is None:
                self._active -= 1
                if self._active == 0:
                    self._cond.notify_all()
                return
        insert, key, want_tag = job
        started = time.perf_counter_ns()

        def done(row, error):
            elapsed = time.perf_counter_ns() - started
            with self._cond:
                s = self.stats
                s.latencies_ns.append(elapsed)
                s.requests += 1
                if error is not None:
                    s.error(error)
                elif not insert:
                    s.check(key, row, self.payloads[key], want_tag)
            self._continue()

        try:
            self.driver.start(insert, key, self.payloads[key], self.tag, done)
        except Exception as exc:  # a synchronous failure counts as a failed request
            done(None, exc)

    def _continue(self):
        depth = getattr(self._tls, "depth", 0)
        if depth >= MAX_CALLBACK_DEPTH:
            with self._cond:
                self._deferred += 1
                self._cond.notify_all()
            return
        self._tls.depth = depth + 1
        try:
            self._next()
        finally:
            self._tls.depth = depth


class Counter:
    """Request numbers shared by the warm-up and the measured phase."""

    def __init__(self):
        self.next = 0


def numbered(counter, workload, keys, stop_at=None, stop_before=None):
    """take() for a phase: request number i uses key i % keys; stop_at is a
    time.perf_counter() instant, stop_before a request number."""
    def take():
        if stop_at is not None and time.perf_counter() >= stop_at:
            return None
        if stop_before is not None and counter.next >= stop_before:
            return None
        i = counter.next
        counter.next += 1
        return is_insert(workload, i), i % keys, None
    return take


def inserted_keys(workload, keys, start, end, limit):
    """Distinct keys of the newest inserts among request numbers [start, end)."""
    seen, out = set(), []
    for i in range(end - 1, start - 1, -1):
        if len(out) >= limit or len(seen) >= keys:
            break
        if is_insert(workload, i) and (i % keys) not in seen:
            seen.add(i % keys)
            out.append(i % keys)
    return out


def measure(driver, opts):
    payloads = [payload(k) for k in range(opts.keys)]
    counter = Counter()
    c = opts.concurrency
    if opts.requests is not None:
        take = numbered(counter, opts.workload, opts.keys, stop_before=opts.warmup_requests)
        warm = Phase(driver, payloads, opts.tag, c, take).run(PHASE_SLACK_S + 3600)
    elif opts.warmup > 0:
        take = numbered(counter, opts.workload, opts.keys,
                        stop_at=time.perf_counter() + opts.warmup)
        warm = Phase(driver, payloads, opts.tag, c, take).run(opts.warmup + PHASE_SLACK_S)
    else:
        warm = Stats()
    checkpoint(opts, "measure")

    start = counter.next
    cpu0 = rusage()
    t0 = time.perf_counter()
    if opts.requests is not None:
        take = numbered(counter, opts.workload, opts.keys, stop_before=start + opts.requests)
        stats = Phase(driver, payloads, opts.tag, c, take).run(PHASE_SLACK_S + 3600)
    else:
        take = numbered(counter, opts.workload, opts.keys, stop_at=t0 + opts.duration)
        stats = Phase(driver, payloads, opts.tag, c, take).run(opts.duration + PHASE_SLACK_S)
    elapsed = time.perf_counter() - t0
    cpu = cpu_since(cpu0)

    todo = inserted_keys(opts.workload, opts.keys, start, counter.next, opts.verify_max)

    def take_back():
        return (False, todo.pop(), opts.tag) if todo else None

    back = Phase(driver, payloads, opts.tag, min(READBACK_CONCURRENCY, max(len(todo), 1)),
                 take_back).run(PHASE_SLACK_S)
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "first_error": stats.first_error,
        "elapsed_s": elapsed,
        "rps": stats.requests / elapsed if elapsed > 0 else 0.0,
        "cpu_s": cpu,
        "checked": stats.checked,
        "mismatches": stats.mismatches,
        "first_mismatch": stats.first_mismatch,
        "readback": {
            "checked": back.checked,
            "mismatches": back.mismatches,
            "errors": back.errors,
            "first_failure": back.first_mismatch or back.first_error,
        },
        "warmup": {"requests": warm.requests, "errors": warm.errors},
        "latency_us": latency_summary_us(stats.latencies_ns),
    }


def wait_pools(driver, opts):
    deadline = time.monotonic() + opts.pool_timeout
    while True:
        if driver.pools_full(opts):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


# How long a session may take to notice a restarted node dropped its
# connections, and how long the orchestrator may stay silent (hold workload).
DROP_BOUND_S = 3.0
COMMAND_TIMEOUT_S = 600.0


def poll_until(bound_s, done):
    deadline = time.monotonic() + bound_s
    while True:
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def hold(driver_class, opts):
    """The hold workload (one process's share of the restart storm): connect
    --sessions sessions, wait for full pools, then time their refill after
    every `restart` line on stdin; `exit` or end of input ends it. The same
    events as bench-core's hold.rs."""
    started = time.perf_counter()
    drivers = []
    try:
        for _ in range(opts.sessions):
            drivers.append(driver_class.connect(opts))

        def full():
            return all(d.pools_full(opts) for d in drivers)

        def held():
            return sum(d.connections() for d in drivers)

        pools_full = poll_until(opts.pool_timeout, full)
        connect_s = time.perf_counter() - started
        emit({"event": "ready", "at": "pools", "pools_full": pools_full,
              "connect_s": connect_s, "connections": held()})
        commands = queue.Queue()

        def read():
            for line in sys.stdin:
                commands.put(line.strip())
            commands.put(None)
        threading.Thread(target=read, daemon=True).start()
        restarts = []
        while True:
            try:
                command = commands.get(timeout=COMMAND_TIMEOUT_S)
            except queue.Empty:
                raise RuntimeError("no command on stdin within %.0f s"
                                   % COMMAND_TIMEOUT_S) from None
            if command in (None, "exit"):
                break
            if command != "restart":
                raise RuntimeError("unknown command %r" % command)
            t0 = time.perf_counter()
            saw_drop = poll_until(DROP_BOUND_S, lambda: not full())
            refilled = poll_until(opts.pool_timeout, full)
            event = {"event": "refilled", "full_s": time.perf_counter() - t0,
                     "pools_full": refilled, "saw_drop": saw_drop, "connections": held()}
            restarts.append(event)
            emit(event)
        connections = held()
    finally:
        for d in drivers:
            d.close()
    return {"event": "result", "driver": driver_class.name, "workload": "hold",
            "sessions": opts.sessions, "connect_s": connect_s, "pools_full": pools_full,
            "restarts": restarts, "driver_connections": connections,
            "process_cpu_s": rusage()}


def run(driver_class, opts):
    if opts.workload == "hold":
        return hold(driver_class, opts)
    started = time.perf_counter()
    driver = driver_class.connect(opts)
    try:
        pools_full = wait_pools(driver, opts)
        connect_s = time.perf_counter() - started
        if opts.workload == "schema":
            driver.query("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s"
                         % (opts.keyspace, opts.replication))
            driver.query(table_cql(opts.keyspace, opts.table))
            line = {}
        elif opts.workload == "connect":
            checkpoint(opts, "pools")
            line = {}
        else:
            driver.prepare(opts.keyspace, opts.table)
            line = measure(driver, opts)
        connections = driver.connections()
    finally:
        driver.close()
    line.update({
        "event": "result",
        "driver": driver_class.name,
        "workload": opts.workload,
        "concurrency": opts.concurrency,
        "keyspace": opts.keyspace,
        "connect_s": connect_s,
        "pools_full": pools_full,
        "driver_connections": connections,
        "process_cpu_s": rusage(),
    })
    return line


def main(driver_class, argv=None, description=None):
    p = parser(description or driver_class.__doc__)
    if hasattr(driver_class, "add_arguments"):
        driver_class.add_arguments(p)
    opts = check_args(p, p.parse_args(argv))
    try:
        line = run(driver_class, opts)
    except Exception as exc:
        emit({"event": "error", "driver": driver_class.name, "message": repr(exc)})
        sys.stderr.write("%s: %r\n" % (driver_class.name, exc))
        return 1
    emit(line)
    return 0

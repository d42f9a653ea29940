#!/usr/bin/env python3
"""The benchmark orchestrator behind `make bench`.

Starts one emulated cluster, creates and fills the benchmark tables, then
runs every case (workload x concurrency x keyspace) through every available
driver's client process, several repetitions, drivers interleaved; then the
connection storm and the callgrind instruction counts. Prints the table,
writes benches/results/latest.json and latest.png, and (with
--update-readme) the results section of benches/README.md.

Nothing here asserts a figure: a run that fails or reads back wrong rows is
reported as such, and the process still exits 0 unless the harness itself
could not run (no emulator, no reference client, a setup failure).
"""

import argparse
import dataclasses
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches"))

from harness import drivers, report, runner, stats  # noqa: E402
from harness.keyspaces import (TABLET_KEYSPACE, TABLET_REPLICATION, VNODE_KEYSPACE,  # noqa: E402
                                VNODE_REPLICATION, create_and_fill)
from harness.cluster import Cluster, EmulatorError  # noqa: E402
from harness.communicator import Communicator, CommunicatorError  # noqa: E402
from harness.plot import plot  # noqa: E402

MODES = {
    # About 6 minutes with three drivers on 2 cores.
    "full": dict(reps=3, duration=3.0, warmup=1.0, keys=20000, storm_clients=8,
                 callgrind_requests=(1000, 3000), callgrind_warmup=500),
    # About a minute.
    "quick": dict(reps=1, duration=1.0, warmup=0.5, keys=5000, storm_clients=4,
                  callgrind_requests=(200, 700), callgrind_warmup=100),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                   help="about a minute: one repetition, short runs (also BENCH_QUICK=1)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=256,
                   help="concurrency of the throughput cases (latency cases use 1)")
    p.add_argument("--reps", type=int, help="repetitions of every case")
    p.add_argument("--duration", type=float, help="measured seconds per run")
    p.add_argument("--warmup", type=float, help="warm-up seconds per run (excluded)")
    p.add_argument("--keys", type=int, help="key space (rows) per keyspace")
    p.add_argument("--tablets", type=int, default=16, help="tablets of the tablet table")
    p.add_argument("--drivers", help="comma-separated driver names (default: all available)")
    p.add_argument("--cases", help="comma-separated case ids, e.g. mixed/c256,select/c1")
    p.add_argument("--storm-clients", type=int, help="client processes of the storm")
    p.add_argument("--storm-down-ms", type=int, default=300)
    p.add_argument("--no-storm", action="store_true")
    p.add_argument("--workers", type=int, default=16,
                   help="client processes of the workers case (through the communicator "
                        "against a session each)")
    p.add_argument("--workers-delay-ms", type=int, default=10,
                   help="the workers case again with every node answering this late (a "
                        "cluster's service time rather than the emulator's microseconds)")
    p.add_argument("--worker-storm-clients", type=int, default=32,
                   help="workers starting at once after a restart, with and without the "
                        "communicator")
    p.add_argument("--no-callgrind", action="store_true")
    p.add_argument("--callgrind-concurrency", type=int, default=1,
                   help="requests in flight in the callgrind runs (256: the LuaJIT target's case)")
    p.add_argument("--no-tablets", action="store_true")
    p.add_argument("--base-ip", default="127.77.%d.1" % (20 + os.getpid() % 200))
    p.add_argument("--emulator", default=os.path.join(ROOT, "target/release/scylla-emulator"))
    p.add_argument("--out", default=os.path.join(ROOT, "benches/results"))
    p.add_argument("--logs", default=os.path.join(ROOT, "target/bench"))
    p.add_argument("--update-readme", action="store_true",
                   help="write the results section of benches/README.md")
    p.add_argument("--render-only", action="store_true",
                   help="run nothing: print, plot (and --update-readme) from OUT/latest.json")
    args = p.parse_args(argv)
    mode = MODES["quick" if args.quick else "full"]
    for key in ("reps", "duration", "warmup", "keys", "storm_clients"):
        if getattr(args, key) is None:
            setattr(args, key, mode[key])
    args.callgrind_requests = mode["callgrind_requests"]
    args.callgrind_warmup = mode["callgrind_warmup"]
    args.mode = "quick" if args.quick else "full"
    return args


def progress(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def make_cases(args):
    cases = []
    for workload in ("insert", "select", "mixed"):
        for c in (1, args.concurrency):
            cases.append(runner.Case("%s/c%d" % (workload, c), workload, c, VNODE_KEYSPACE,
                                     throughput=c > 1))
    if not args.no_tablets:
        c = args.concurrency
        cases.append(runner.Case("tablets-mixed/c%d" % c, "mixed", c, TABLET_KEYSPACE,
                                 tablets=True, throughput=True))
    if args.cases:
        wanted = set(args.cases.split(","))
        unknown = wanted - {c.id for c in cases}
        if unknown:
            raise SystemExit("unknown cases %s; known: %s"
                             % (sorted(unknown), [c.id for c in cases]))
        cases = [c for c in cases if c.id in wanted]
    return cases


def setup(cluster, reference, args, logs):
    """Creates both keyspaces and fills every key, through the reference."""
    keyspaces = [(VNODE_KEYSPACE, VNODE_REPLICATION)]
    if not args.no_tablets:
        keyspaces.append((TABLET_KEYSPACE, TABLET_REPLICATION % args.tablets))
    create_and_fill(cluster, reference, keyspaces, args.keys, logs, progress)


def rotated(items, k):
    k %= max(len(items), 1)
    return items[k:] + items[:k]


def summarize_storm(records):
    ok = [r for r in records if "failure" not in r]
    problems = ["rep %d: %s" % (i + 1, r["failure"]) for i, r in enumerate(records)
                if "failure" in r]
    problems += ["rep %d: %d of %d clients never had full pools"
                 % (i + 1, r["clients"] - r["pools_full"], r["clients"])
                 for i, r in enumerate(ok) if r["pools_full"] < r["clients"]]
    out = {"runs": records, "problems": problems}
    if ok:
        out["ideal"] = ok[0]["ideal"]
        for key in ("accepted", "held", "excess_pct", "excess_with_control_pct", "all_ready_s"):
            out[key] = stats.spread([r[key] for r in ok])
    return out


def summarize_workers(records):
    """Total throughput of each workers case per driver ({case: {driver:
    ...}}), median over the repetitions, with the failed runs."""
    out = {}
    for case_id, driver in sorted({(r["case"], r["driver"]) for r in records}):
        mine = [r for r in records if r["driver"] == driver and r["case"] == case_id]
        ok = [r for r in mine if "failure" not in r]
        out.setdefault(case_id, {})[driver] = {"case": case_id, "processes": mine[0]["processes"],
                       "rps": stats.spread([r["rps"] for r in ok]),
                       "problems": [r["failure"] for r in mine if "failure" in r]
                       + ["%d errors" % r["errors"] for r in ok if r["errors"]]
                       + ["%d rows wrong" % r["mismatches"] for r in ok if r["mismatches"]]
                       + ["%d misroutes" % (r["measured"]["misrouted_node"]
                                            + r["measured"]["misrouted_shard"])
                          for r in ok if r["measured"]["misrouted_node"]
                          + r["measured"]["misrouted_shard"]]}
    return out


def publish(doc, args):
    """Writes latest.json and latest.png, prints the table, and with
    --update-readme rewrites the README's results section."""
    doc["targets"] = report.targets(doc)
    json_path = os.path.join(args.out, "latest.json")
    png_path = os.path.join(args.out, "latest.png")
    report.write_json(json_path, doc)
    plotted = plot(doc, png_path)
    print(report.text_report(doc))
    print("\nwrote %s%s (run took %.0f s)" % (json_path, " and " + png_path if plotted else "",
                                              doc["elapsed_s"]))
    if args.update_readme:
        readme = os.path.join(ROOT, "benches", "README.md")
        report.update_readme(readme, report.markdown_report(
            doc, os.path.relpath(png_path, os.path.dirname(readme))))
        print("updated %s" % readme)


def main(argv=None):
    args = parse_args(argv)
    if args.render_only:
        publish(report.read_json(os.path.join(args.out, "latest.json")), args)
        return 0
    started = time.monotonic()
    os.makedirs(args.out, exist_ok=True)
    logs = args.logs
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)

    all_adapters = drivers.adapters(ROOT)
    if args.drivers:
        names = args.drivers.split(",")
        known = {a.name for a in all_adapters}
        if set(names) - known:
            raise SystemExit("unknown drivers %s; known: %s" % (sorted(set(names) - known),
                                                                sorted(known)))
        all_adapters = [a for a in all_adapters
                        if a.name in names or a.name == drivers.REFERENCE]
    adapters = [a for a in all_adapters if a.available()]
    reference = next((a for a in adapters if a.name == drivers.REFERENCE), None)
    if reference is None:
        raise SystemExit("the reference client %s is not built: cargo build --release "
                         "-p scylla-peer" % drivers.REFERENCE)
    if not os.path.exists(args.emulator):
        raise SystemExit("no emulator at %s: cargo build --release -p scylla-emulator"
                         % args.emulator)
    notes = ["skipped %s: %s" % (a.name, a.note(ROOT)) for a in all_adapters
             if not a.available()]
    notes += ["not benchmarked yet: %s (%s)" % (name, why) for name, _, why in drivers.PENDING]
    cases = make_cases(args)
    settings = runner.Settings(keys=args.keys, duration=args.duration, warmup=args.warmup,
                               verify_max=1000)
    for n in notes:
        progress("note: " + n)

    cluster = Cluster(args.emulator, args.nodes, args.shards, args.base_ip,
                      tablets=not args.no_tablets, log_path=os.path.join(logs, "emulator.log"))
    machine = report.machine()
    records, storms, callgrind = [], {}, {}
    worker_runs, worker_storms = [], {}
    communicator = None
    try:
        cluster.start()
        progress("cluster: " + cluster.ready_line)
        setup(cluster, reference, args, logs)
        communicator = None
        if any(a.communicator for a in adapters):
            communicator = Communicator(drivers.communicator_binary(ROOT), cluster,
                                        drivers.communicator_socket(ROOT),
                                        os.path.join(logs, "communicator.log")).start()
            cluster.communicator = communicator
        tag = 0
        for rep in range(args.reps):
            for case in cases:
                for adapter in rotated([a for a in adapters if a.runs(case)], rep):
                    tag += 1
                    log = os.path.join(logs, "%s-%s-%d.log"
                                       % (case.id.replace("/", "-"), adapter.name, rep + 1))
                    rec = runner.run_measured(adapter, cluster, case, settings, tag, log)
                    rec["rep"] = rep + 1
                    records.append(rec)
                    figs = stats.run_figures(rec)
                    problems = stats.run_problems(rec, case.workload)
                    progress("[rep %d/%d] %-18s %-22s %s%s" % (
                        rep + 1, args.reps, case.id, adapter.name,
                        "%10.0f req/s  p99 %8.0f us  misroutes %d" % (
                            figs["rps"], figs["p99_us"], figs["misroutes"]) if figs else "failed",
                        "  PROBLEMS: " + "; ".join(problems) if problems else ""))
        worker_pair = [a for a in adapters if a.name in ("sshard-c", "sshard-c-communicator")]
        if communicator and len(worker_pair) == 2 and args.workers > 0:
            # A machine's workers: through one communicator against a
            # session each, 256 in flight in all; with the emulator
            # answering at once (the machine's CPU decides) and as a
            # cluster does, a few milliseconds later.
            per_worker = max(args.concurrency // args.workers, 1)
            name = "workers-mixed/%dx%d" % (args.workers, per_worker)
            variants = [(name, 0)]
            if args.workers_delay_ms > 0:
                variants.append(("%s+%dms" % (name, args.workers_delay_ms),
                                 args.workers_delay_ms))
            for case_id, delay_ms in variants:
                case = runner.Case(case_id, "mixed", per_worker, VNODE_KEYSPACE, throughput=True)
                cluster.set_delay(delay_ms * 1000)
                try:
                    for rep in range(args.reps):
                        for adapter in rotated(worker_pair, rep):
                            tag += 1
                            rec = runner.run_processes(adapter, cluster, case, settings,
                                                       args.workers, tag, logs)
                            worker_runs.append(rec)
                            progress("[rep %d/%d] %s %-22s %s" % (
                                rep + 1, args.reps, case.id, adapter.name,
                                rec.get("failure") or "%.0f req/s, %d errors"
                                % (rec["rps"], rec["errors"])))
                finally:
                    cluster.set_delay(0)
        if communicator:
            # Its reconnections after the storm's restarts would count in
            # the other drivers' storms; the worker storm starts it again.
            communicator.stop()
            cluster.communicator = None
        if not args.no_storm:
            storm_case = runner.Case("storm", "connect", 1, VNODE_KEYSPACE)
            storm_adapters = [a for a in adapters if a.runs(storm_case)]
            for rep in range(args.reps):
                for adapter in rotated(storm_adapters, rep):
                    tag += 1
                    rec = runner.run_storm(adapter, cluster, settings, args.storm_clients,
                                           args.storm_down_ms, tag, logs)
                    storms.setdefault(adapter.name, []).append(rec)
                    progress("[rep %d/%d] storm %-22s %s" % (
                        rep + 1, args.reps, adapter.name,
                        rec.get("failure") or "accepted %d, ideal %d (%+.1f%%)" % (
                            rec["accepted"], rec["ideal"], rec["excess_pct"])))
            if communicator and len(worker_pair) == 2:
                for adapter in worker_pair:
                    tag += 1
                    if adapter.communicator:
                        communicator.start()
                        cluster.communicator = communicator
                    try:
                        rec = runner.run_storm(adapter, cluster, settings,
                                               args.worker_storm_clients, args.storm_down_ms,
                                               tag, logs)
                    finally:
                        communicator.stop()
                        cluster.communicator = None
                    worker_storms[adapter.name] = rec
                    progress("worker storm (%d) %-22s %s" % (
                        args.worker_storm_clients, adapter.name,
                        rec.get("failure") or "accepted %d, held %d" % (rec["accepted"],
                                                                        rec["held_total"])))
        valgrind = shutil.which("valgrind")
        if args.no_callgrind:
            pass
        elif valgrind is None:
            notes.append("instruction counts skipped: valgrind is not installed")
        else:
            for adapter in [a for a in adapters if a.callgrind]:
                tag += 1
                rec = runner.run_callgrind(adapter, cluster, settings, args.callgrind_requests,
                                           args.callgrind_warmup, tag, logs, valgrind,
                                           concurrency=args.callgrind_concurrency)
                callgrind[adapter.name] = rec
                progress("callgrind %-22s %s" % (adapter.name, rec.get("failure") or
                                                 "%.0f instructions/request"
                                                 % rec["instructions_per_request"]))
    except (EmulatorError, CommunicatorError, RuntimeError, OSError) as exc:
        progress("benchmark aborted: %s (logs in %s)" % (exc, logs))
        return 1
    finally:
        if communicator:
            communicator.stop()
        cluster.stop()

    results = {}
    for case in cases:
        by = {}
        for adapter in adapters:
            recs = [r for r in records if r["case"] == case.id and r["driver"] == adapter.name]
            if recs:
                by[adapter.name] = stats.aggregate(recs, case.workload)
        results[case.id] = stats.add_ratios(by, drivers.REFERENCE)

    notes += [
        "req/s: requests completed in the measured phase / its length (warm-up excluded, "
        "requests in flight at its end included)",
        "CPU us/req: the client process's own user+system CPU time (getrusage) over the "
        "measured phase / its requests; the emulator shares the machine and is not counted",
        "latency: per request, issue to completion, in the client, nearest-rank percentiles",
        "conns: connections the cluster accepted during the client's whole life (control "
        "connection included); misroutes: the emulator's misrouted node+shard counters from "
        "the end of warm-up to the client's exit, summed over repetitions",
        "rows ok: SELECT rows checked against the written value during the run, plus up to "
        "1000 inserted rows per run read back after it and checked with the run's tag",
        "python-driver: scylla-driver %s, protocol v4, no compression, tuple rows, "
        "execute_async with a window of `concurrency` requests" % _version("scylla-driver"),
        "sshard-python: this library's Python binding (scylla_shard, cffi API mode), the same "
        "calls as python-driver (execute_async + add_callbacks); sshard-python-asyncio: "
        "scylla_shard.aio, `concurrency` tasks on one loop; acsylla %s: `concurrency` tasks on "
        "one loop, prepared statements" % _version("acsylla"),
    ]
    doc = {
        "schema": 1,
        "date": report.now_utc(),
        "machine": machine,
        "settings": {
            "mode": args.mode, "reps": args.reps, "duration_s": args.duration,
            "warmup_s": args.warmup, "keys": args.keys, "concurrency": args.concurrency,
            "cluster": "%d nodes x %d shards, emulator on the same machine%s" % (
                args.nodes, args.shards, ", tablets enabled" if not args.no_tablets else ""),
            "summary": "warm-up %gs then %gs measured per run, %d keys per keyspace, RF 1" % (
                args.warmup, args.duration, args.keys),
            "storm": "%d client processes connect at once to node 1 right after it restarted "
                     "(down %d ms); ideal = nodes x shards x clients" % (
                         args.storm_clients, args.storm_down_ms),
            "callgrind": "mixed workload at concurrency %d, (I(%d) - I(%d)) / %d requests "
                         "after %d warm-up requests" % (
                             args.callgrind_concurrency, args.callgrind_requests[1], args.callgrind_requests[0],
                             args.callgrind_requests[1] - args.callgrind_requests[0],
                             args.callgrind_warmup),
        },
        "reference": drivers.REFERENCE,
        "drivers": [{"name": a.name, "label": a.label, "available": a.available(),
                     "note": a.note(ROOT)} for a in all_adapters],
        "pending": [{"name": n, "what": what, "why": why} for n, what, why in drivers.PENDING],
        "cases": [dataclasses.asdict(c) for c in cases],
        "results": results,
        "storm": {name: summarize_storm(recs) for name, recs in storms.items()},
        "workers": summarize_workers(worker_runs),
        "worker_storm": worker_storms,
        "callgrind": callgrind,
        "notes": notes,
        "runs": records,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    publish(doc, args)
    return 0


def _version(package):
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())

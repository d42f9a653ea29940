#!/usr/bin/env python3
"""Startup and scale benchmark behind `make bench-scale` (part of `make bench`).

Every driver of the harness (benches/harness/drivers.py) against the Rust
`scylla` crate in the same run, each figure from a fresh client process,
drivers rotated every repetition, the median of the repetitions:

  startup     connect_s of `--workload connect`: from the client's start of
              connecting to every pool full, on a 3 x 4 and a 12-node x
              16-shard cluster
  in flight   CPU per request (client user+system over the measured phase /
              its requests), req/s and p50 of the mixed workload at 1, 16,
              256 and 4,096 requests in flight, 3 nodes x 4 shards
  nodes       the same figures at 256 in flight with 3, 6 and 12 nodes of 4
              shards (the 3-node row is the in-flight sweep's 256 run)

x ref is a driver's median / the crate's; x floor its CPU per request / the
driverless floor client's (sshard-floor) in the same case; x first its CPU
per request / its own in the table's first row (how the cost grows).

Reports, asserts nothing: prints the tables, writes benches/results/scale.json
and (with --update-readme) the scale section of benches/README.md.
"""

import argparse
import ipaddress
import os
import shutil
import sys
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches"))

from harness import drivers, report, runner, stats  # noqa: E402
from harness.cluster import Cluster, EmulatorError  # noqa: E402
from harness.keyspaces import VNODE_KEYSPACE, VNODE_REPLICATION, create_and_fill  # noqa: E402

REFERENCE = drivers.REFERENCE
FLOOR = "sshard-floor"
DEFAULT_DRIVERS = [REFERENCE, "sshard-c", "sshard-rust", FLOOR]
README_BEGIN = "<!-- bench-scale:begin -->"
README_END = "<!-- bench-scale:end -->"
# Its own metrics port and addresses (127.79.x.y): never another bench's or a test's.
METRICS_PORT = 9184
CONNECT_TIMEOUT_S = 120.0
# Addresses between two clusters' base addresses (the largest has 12 nodes).
CLUSTER_STRIDE = 16

MODES = {
    # About 7 minutes on 2 cores.
    "full": dict(reps=3, duration=3.0, warmup=1.0),
    # Under a minute.
    "quick": dict(reps=1, duration=1.0, warmup=0.5),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                   help="under 2 minutes: one repetition, short runs (also BENCH_QUICK=1)")
    p.add_argument("--reps", type=int, help="repetitions (3; 1 with --quick)")
    p.add_argument("--duration", type=float, help="measured seconds per run (3; 1 quick)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per run (1; 0.5 quick)")
    p.add_argument("--keys", type=int, default=5000, help="keys filled and used per cluster")
    p.add_argument("--shards", type=int, default=4, help="shards per node of the scale cases")
    p.add_argument("--inflight", default="1,16,256,4096",
                   help="requests in flight of the sweep, comma-separated")
    p.add_argument("--inflight-nodes", type=int, default=3, help="nodes of the in-flight sweep")
    p.add_argument("--nodes", default="3,6,12", help="node counts of the cluster-size sweep")
    p.add_argument("--nodes-concurrency", type=int, default=256,
                   help="requests in flight of the cluster-size sweep")
    p.add_argument("--startup", default="3x4,12x16",
                   help="clusters (NODESxSHARDS) whose startup is timed, comma-separated")
    p.add_argument("--drivers", default=",".join(DEFAULT_DRIVERS),
                   help="comma-separated driver names (the reference always runs)")
    p.add_argument("--base-ip", default="127.79.%d.1" % (20 + os.getpid() % 200))
    p.add_argument("--metrics-port", type=int, default=METRICS_PORT)
    p.add_argument("--emulator", default=os.path.join(ROOT, "target/release/scylla-emulator"))
    p.add_argument("--out", default=os.path.join(ROOT, "benches/results"))
    p.add_argument("--logs", default=os.path.join(ROOT, "target/bench-scale"))
    p.add_argument("--update-readme", action="store_true")
    p.add_argument("--render-only", action="store_true",
                   help="run nothing: print (and --update-readme) from OUT/scale.json")
    args = p.parse_args(argv)
    mode = MODES["quick" if args.quick else "full"]
    for key, value in mode.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.mode = "quick" if args.quick else "full"
    args.inflight = [int(n) for n in args.inflight.split(",")]
    args.nodes = [int(n) for n in args.nodes.split(",")]
    args.startup = [parse_shape(s) for s in args.startup.split(",")]
    args.drivers = args.drivers.split(",")
    return args


def parse_shape(text):
    """"12x16" -> (12, 16)."""
    try:
        nodes, shards = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("a cluster is NODESxSHARDS, e.g. 3x4, not %r"
                                         % text) from None
    if nodes < 1 or shards < 1:
        raise argparse.ArgumentTypeError("a cluster has at least 1 node and 1 shard: %r" % text)
    return nodes, shards


def shape_id(nodes, shards):
    return "%dx%d" % (nodes, shards)


def case_id(nodes, concurrency):
    return "n%d/c%d" % (nodes, concurrency)


@dataclass
class Stage:
    """One cluster: the startups timed and the mixed cases measured on it."""
    nodes: int
    shards: int
    startup: bool = False
    cases: list = field(default_factory=list)


def plan(args):
    """The clusters to start, in order, each with its work; a case the two
    sweeps share (3 nodes, 256 in flight) runs once."""
    stages = {}

    def stage(nodes, shards):
        return stages.setdefault((nodes, shards), Stage(nodes, shards))

    for nodes, shards in args.startup:
        stage(nodes, shards).startup = True
    wanted = [(args.inflight_nodes, c) for c in args.inflight]
    wanted += [(n, args.nodes_concurrency) for n in args.nodes]
    for nodes, concurrency in wanted:
        s = stage(nodes, args.shards)
        cid = case_id(nodes, concurrency)
        if cid not in [c.id for c in s.cases]:
            s.cases.append(runner.Case(cid, "mixed", concurrency, VNODE_KEYSPACE,
                                       throughput=concurrency > 1))
    # Smallest cluster first: the quick feedback before the long starts.
    return sorted(stages.values(), key=lambda s: (s.nodes * s.shards, s.nodes))


def progress(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def rotated(items, k):
    k %= max(len(items), 1)
    return items[k:] + items[:k]


# ---------------------------------------------------------------------------
# Summaries (pure)


def summarize_startup(records):
    """{shape: {driver: {"connect_s": spread, "pools_full": n, "runs": n,
    "problems": [...], "ratio": median / the reference's}}}."""
    out = {}
    for rec in records:
        entry = out.setdefault(rec["shape"], {}).setdefault(
            rec["driver"], {"values": [], "pools_full": 0, "runs": 0, "problems": []})
        entry["runs"] += 1
        if "failure" in rec:
            entry["problems"].append("rep %d: %s" % (rec["rep"], rec["failure"]))
            continue
        entry["values"].append(rec["connect_s"])
        if rec.get("pools_full"):
            entry["pools_full"] += 1
        else:
            entry["problems"].append("rep %d: pools not full" % rec["rep"])
    for by in out.values():
        for entry in by.values():
            entry["connect_s"] = stats.spread(entry.pop("values"))
        ref = (by.get(REFERENCE) or {}).get("connect_s")
        for entry in by.values():
            mine = entry["connect_s"]
            entry["ratio"] = (mine["median"] / ref["median"]
                              if mine and ref and ref["median"] else None)
    return out


def summarize_cases(records):
    """{case id: {driver: the harness's aggregate, ratios to the reference
    set}} of the measured runs."""
    out = {}
    for cid in sorted({r["case"] for r in records}):
        by = {}
        for driver in sorted({r["driver"] for r in records if r["case"] == cid}):
            recs = [r for r in records if r["case"] == cid and r["driver"] == driver]
            by[driver] = stats.aggregate(recs, "mixed")
        out[cid] = stats.add_ratios(by, REFERENCE)
    return out


def _median(agg, key):
    f = agg["figures"].get(key) if agg else None
    return f["median"] if f else None


def _ratio_text(value):
    return "-" if value is None else "%.2fx" % value


def _spread_text(spread):
    """" ±N%": half the repetitions' range over their median, when there are several."""
    if not spread or len(spread["values"]) < 2:
        return ""
    return " ±%.0f%%" % (spread["spread_pct"] / 2)


def _div(a, b):
    return a / b if a is not None and b else None


def startup_rows(doc):
    """[shape, driver, connect ms, x ref, pools full, problems] per row."""
    rows = []
    for nodes, shards in doc["startup_shapes"]:
        by = doc["startup"].get(shape_id(nodes, shards), {})
        for driver in doc["drivers"]:
            e = by.get(driver)
            if e is None:
                continue
            s = e["connect_s"]
            rows.append([shape_id(nodes, shards), driver,
                         "-" if s is None else report._num(s["median"] * 1000.0)
                         + _spread_text(s),
                         _ratio_text(e["ratio"]),
                         "%d/%d" % (e["pools_full"], e["runs"]),
                         str(len(e["problems"])) if e["problems"] else ""])
    return rows


def sweep_rows(doc, sweep):
    """Rows of the "inflight" or "nodes" sweep: [value, driver, CPU us/req,
    x ref, x floor, x first, req/s, x ref, p50 us, x ref, bg cores, problems]."""
    rows = []
    first = {}
    for value, cid in doc["sweeps"][sweep]:
        by = doc["results"].get(cid, {})
        for driver in doc["drivers"]:
            agg = by.get(driver)
            if agg is None:
                continue
            cpu = _median(agg, "cpu_us")
            first.setdefault(driver, cpu)
            ratio = lambda key: (agg["figures"].get(key) or {}).get("ratio")  # noqa: E731
            rows.append(["{:,}".format(value), driver,
                         report._num(cpu) + _spread_text(agg["figures"].get("cpu_us")),
                         _ratio_text(ratio("cpu_us")),
                         _ratio_text(report.floor_ratio(by, agg)),
                         _ratio_text(_div(cpu, first[driver])),
                         report._num(_median(agg, "rps")), _ratio_text(ratio("rps")),
                         report._num(_median(agg, "p50_us")), _ratio_text(ratio("p50_us")),
                         report._num(_median(agg, "background_cores"), 2),
                         str(len(agg["problems"])) if agg["problems"] else ""])
    return rows


STARTUP_HEADER = ["cluster", "driver", "connect ms", "x ref", "pools full", "problems"]
SWEEP_HEADER = {
    "inflight": ["in flight", "driver", "CPU us/req", "x ref", "x floor", "x first",
                 "req/s", "x ref", "p50 us", "x ref", "bg cores", "problems"],
    "nodes": ["nodes", "driver", "CPU us/req", "x ref", "x floor", "x first",
              "req/s", "x ref", "p50 us", "x ref", "bg cores", "problems"],
}


def all_problems(doc):
    out = list(doc["problems"])
    for shape, by in sorted(doc["startup"].items()):
        for driver, e in sorted(by.items()):
            out += ["startup %s %s %s" % (shape, driver, p) for p in e["problems"]]
    for cid, by in sorted(doc["results"].items()):
        for driver, agg in sorted(by.items()):
            out += ["%s %s %s" % (cid, driver, p) for p in agg["problems"]]
    return out


def _text_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    return ["  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                      for i, (c, w) in enumerate(zip(row, widths))) for row in [header] + rows]


def text_report(doc):
    lines = ["startup (connect to pools full)"]
    lines += _text_table(STARTUP_HEADER, startup_rows(doc))
    lines += ["", "mixed workload, %d nodes x %d shards, by requests in flight"
              % (doc["inflight_nodes"], doc["shards"])]
    lines += _text_table(SWEEP_HEADER["inflight"], sweep_rows(doc, "inflight"))
    lines += ["", "mixed workload, %d in flight, %d shards a node, by nodes"
              % (doc["nodes_concurrency"], doc["shards"])]
    lines += _text_table(SWEEP_HEADER["nodes"], sweep_rows(doc, "nodes"))
    lines += ["problems: %s" % p for p in all_problems(doc)]
    return "\n".join(lines)


def _md_table(header, rows):
    out = ["| %s |" % " | ".join(header),
           "|%s|" % "|".join("---" if i < 2 else "---:" for i in range(len(header)))]
    out += ["| %s |" % " | ".join(row) for row in rows]
    return out


def markdown_report(doc):
    out = ["Run of %s (%s mode): %d repetitions, warm-up %g s then %g s measured per run, "
           "%d keys, mixed workload (half INSERT, half SELECT) on `bench.kv`, RF 1."
           % (doc["date"], doc["mode"], doc["reps"], doc["warmup_s"], doc["duration_s"],
              doc["keys"]), ""]
    if doc.get("machine_note"):
        out += [doc["machine_note"], ""]
    out += ["Startup, from connecting to every pool full:", ""]
    out += _md_table(STARTUP_HEADER, startup_rows(doc))
    out += ["", "By requests in flight, %d nodes x %d shards:"
            % (doc["inflight_nodes"], doc["shards"]), ""]
    out += _md_table(SWEEP_HEADER["inflight"], sweep_rows(doc, "inflight"))
    out += ["", "By cluster size, %d in flight, %d shards a node:"
            % (doc["nodes_concurrency"], doc["shards"]), ""]
    out += _md_table(SWEEP_HEADER["nodes"], sweep_rows(doc, "nodes"))
    problems = all_problems(doc)
    out += ["", "Problems: %s." % ("; ".join(problems) if problems else "none")]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Running


def run_startup(adapter, cluster, settings, shape, rep, tag, logs):
    case = runner.Case("startup", "connect", 1, VNODE_KEYSPACE)
    log = os.path.join(logs, "startup-%s-%s-%d.log" % (shape, adapter.name, rep))
    rec = {"driver": adapter.name, "shape": shape, "rep": rep}
    try:
        r = runner.run_plain(adapter, runner.client_args(cluster, case, settings, tag), log,
                             CONNECT_TIMEOUT_S)
    except (RuntimeError, TimeoutError, OSError) as exc:
        rec["failure"] = str(exc)
        return rec
    rec.update(connect_s=r.get("connect_s"), pools_full=bool(r.get("pools_full")),
               connections=r.get("driver_connections"))
    if rec["connect_s"] is None:
        rec["failure"] = "no connect_s in the result line"
    return rec


def publish(doc, args):
    """Writes scale.json, prints the tables, and with --update-readme rewrites
    the README's scale section."""
    json_path = os.path.join(args.out, "scale.json")
    report.write_json(json_path, doc)
    print(text_report(doc))
    if args.update_readme:
        report.update_readme(os.path.join(ROOT, "benches", "README.md"), markdown_report(doc),
                             (README_BEGIN, README_END))
    print("wrote %s (run took %.0f s)" % (json_path, doc["elapsed_s"]))


def main(argv=None):
    args = parse_args(argv)
    if args.render_only:
        publish(report.read_json(os.path.join(args.out, "scale.json")), args)
        return 0
    started = time.monotonic()
    machine = report.machine()
    os.makedirs(args.out, exist_ok=True)
    shutil.rmtree(args.logs, ignore_errors=True)
    os.makedirs(args.logs)
    known = {a.name: a for a in drivers.adapters(ROOT)}
    unknown = set(args.drivers) - set(known)
    if unknown:
        raise SystemExit("unknown drivers %s; known: %s" % (sorted(unknown), sorted(known)))
    names = [REFERENCE] + [n for n in args.drivers if n != REFERENCE]
    wanted = [known[n] for n in names]
    adapters = [a for a in wanted if a.available()]
    notes = ["skipped %s: %s" % (a.name, a.note(ROOT)) for a in wanted if not a.available()]
    reference = known[REFERENCE]
    if not reference.available():
        raise SystemExit("the reference client is not built: %s" % reference.note(ROOT))
    if not os.path.exists(args.emulator):
        raise SystemExit("no emulator at %s: cargo build --release -p scylla-emulator"
                         % args.emulator)
    for n in notes:
        progress("note: " + n)
    settings = runner.Settings(keys=args.keys, duration=args.duration, warmup=args.warmup,
                               verify_max=1000)
    startup_case = runner.Case("startup", "connect", 1, VNODE_KEYSPACE)
    startups, records, problems = [], [], []
    tag = 0
    for i, stage in enumerate(plan(args)):
        shape = shape_id(stage.nodes, stage.shards)
        base_ip = str(ipaddress.IPv4Address(args.base_ip) + CLUSTER_STRIDE * i)
        cluster = Cluster(args.emulator, stage.nodes, stage.shards, base_ip,
                          metrics_port=args.metrics_port,
                          log_path=os.path.join(args.logs, "emulator-%s.log" % shape))
        try:
            cluster.start()
            progress("cluster %s: %s" % (shape, cluster.ready_line))
            if stage.cases:
                stage_logs = os.path.join(args.logs, shape)
                os.makedirs(stage_logs, exist_ok=True)
                create_and_fill(cluster, reference, [(VNODE_KEYSPACE, VNODE_REPLICATION)],
                                args.keys, stage_logs, progress)
            for rep in range(1, args.reps + 1):
                if stage.startup:
                    for adapter in rotated([a for a in adapters if a.runs(startup_case)], rep):
                        tag += 1
                        rec = run_startup(adapter, cluster, settings, shape, rep, tag, args.logs)
                        startups.append(rec)
                        progress("[rep %d/%d] startup %-6s %-12s %s" % (
                            rep, args.reps, shape, adapter.name, rec.get("failure") or
                            "%.0f ms, pools full: %s" % (rec["connect_s"] * 1000,
                                                         rec["pools_full"])))
                for case in stage.cases:
                    for adapter in rotated([a for a in adapters if a.runs(case)], rep):
                        tag += 1
                        log = os.path.join(args.logs, "%s-%s-%d.log"
                                           % (case.id.replace("/", "-"), adapter.name, rep))
                        rec = runner.run_measured(adapter, cluster, case, settings, tag, log)
                        rec["rep"] = rep
                        records.append(rec)
                        figs = stats.run_figures(rec)
                        errs = stats.run_problems(rec, case.workload)
                        progress("[rep %d/%d] %-10s %-12s %s%s" % (
                            rep, args.reps, case.id, adapter.name,
                            "%8.2f us/req %9.0f req/s  p50 %7.0f us" % (
                                figs["cpu_us"], figs["rps"], figs["p50_us"])
                            if figs else "failed",
                            "  PROBLEMS: " + "; ".join(errs) if errs else ""))
        except (EmulatorError, RuntimeError, OSError) as exc:
            problems.append("cluster %s: %s (logs in %s)" % (shape, exc, args.logs))
            progress("cluster %s aborted: %s" % (shape, exc))
        finally:
            cluster.stop()

    doc = {
        "date": report.now_utc(), "mode": args.mode, "machine": machine,
        "reps": args.reps, "duration_s": args.duration, "warmup_s": args.warmup,
        "keys": args.keys, "shards": args.shards, "reference": REFERENCE, "floor": FLOOR,
        "drivers": [a.name for a in adapters],
        "inflight_nodes": args.inflight_nodes, "nodes_concurrency": args.nodes_concurrency,
        "startup_shapes": args.startup,
        "sweeps": {
            "inflight": [(c, case_id(args.inflight_nodes, c)) for c in args.inflight],
            "nodes": [(n, case_id(n, args.nodes_concurrency)) for n in args.nodes],
        },
        "startup": summarize_startup(startups),
        "results": summarize_cases(records),
        "notes": notes, "problems": problems,
        "startup_runs": startups, "runs": records,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    doc["machine_note"] = "Machine: %s." % report.machine_line(doc["machine"])
    publish(doc, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

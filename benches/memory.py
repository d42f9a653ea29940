#!/usr/bin/env python3
"""Client memory benchmark behind `make bench-memory` (part of `make bench`).

One emulated cluster; this library from C (examples/c/bench_memory.c) and the
Rust `scylla` crate (`scylla-peer memory`) measured in the same run, each
figure in a fresh client process, drivers alternated, the median of the
repetitions, and the ratio against the crate:

  RSS per connection      resident memory after connecting with 4 connections
                          per shard minus after 1 per shard, over the
                          connections added
  session at 1/shard      resident memory a connected session adds (1 per shard)
  bytes per request in    (peak resident memory - before) / N while N SELECTs
  flight, N = 256, 10000  are in flight together (every node delays its answers
                          by --delay-ms, so all are sent before any returns)
  paging peak             peak resident memory over the start while a 100 MB
                          partition is read page by page, every value touched

Reports, asserts nothing: prints the table, writes benches/results/memory.json
and (with --update-readme) the memory section of benches/README.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches"))

from harness import report  # noqa: E402
from harness.cluster import Cluster  # noqa: E402

REFERENCE = "scylla-rust"
README_BEGIN = "<!-- bench-memory:begin -->"
README_END = "<!-- bench-memory:end -->"
RUN_TIMEOUT_S = 300.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    p.add_argument("--reps", type=int, help="repetitions (3; 1 with --quick)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--rows", type=int, default=100_000, help="rows of the paged partition")
    p.add_argument("--value-bytes", type=int, default=1000, help="bytes of each row's blob")
    p.add_argument("--page-size", type=int, default=1000)
    p.add_argument("--inflight", default="256,10000", help="requests in flight, comma-separated")
    p.add_argument("--delay-ms", type=int, default=1000,
                   help="answer delay while requests are in flight")
    p.add_argument("--base-ip", default="127.78.%d.1" % (20 + os.getpid() % 200))
    p.add_argument("--emulator", default=os.path.join(ROOT, "target/release/scylla-emulator"))
    p.add_argument("--out", default=os.path.join(ROOT, "benches/results"))
    p.add_argument("--logs", default=os.path.join(ROOT, "target/bench-memory"))
    p.add_argument("--update-readme", action="store_true")
    args = p.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    args.inflight = [int(n) for n in args.inflight.split(",")]
    return args


def clients():
    release = os.path.join(ROOT, "target", "release")
    return {
        REFERENCE: ([os.path.join(release, "scylla-peer"), "memory"], {}),
        "sshard-c": ([os.path.join(ROOT, "target", "c", "examples", "bench_memory")],
                     {"LD_LIBRARY_PATH": os.path.join(ROOT, "target", "c", "lib")}),
    }


def run(client, cluster, args, log_path, mode, **options):
    """One client process; its JSON result line (or an "error" line)."""
    argv, env = client
    argv = argv + ["--contact", cluster.contact(), "--mode", mode,
                   "--expect-nodes", str(args.nodes)]
    for name, value in options.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    with open(log_path, "ab") as log:
        log.write(("$ %s\n" % " ".join(argv)).encode())
        log.flush()
        try:
            out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, timeout=RUN_TIMEOUT_S,
                                 env=dict(os.environ, **env), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return {"event": "error", "message": "timed out after %.0f s" % RUN_TIMEOUT_S}
        log.write(out.stdout)
    for line in reversed(out.stdout.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"event": "error", "message": "no result line (exit %d)" % out.returncode}


def measure(name, client, cluster, args, logs):
    """Every figure of one driver, one repetition: {figure: value, ...}."""
    log = os.path.join(logs, "%s.log" % name)
    figures, problems = {}, []

    def ok(r, what):
        if r.get("event") != "result":
            problems.append("%s: %s" % (what, r.get("message")))
            return False
        return True

    one = run(client, cluster, args, log, "connections", connections_per_shard=1)
    four = run(client, cluster, args, log, "connections", connections_per_shard=4)
    if ok(one, "connections 1/shard") and ok(four, "connections 4/shard"):
        grown = (four["rss_after_kib"] - four["rss_before_kib"]) - \
                (one["rss_after_kib"] - one["rss_before_kib"])
        added = four["connections"] - one["connections"]
        figures["session_kib"] = one["rss_after_kib"] - one["rss_before_kib"]
        figures["per_connection_kib"] = grown / added if added > 0 else None
    cluster.set_delay(args.delay_ms * 1000)
    try:
        for n in args.inflight:
            r = run(client, cluster, args, log, "inflight", concurrency=n)
            if ok(r, "inflight %d" % n):
                if r["errors"]:
                    problems.append("inflight %d: %d requests failed" % (n, r["errors"]))
                figures["inflight_%d_bytes" % n] = \
                    (r["hwm_kib"] - r["rss_before_kib"]) * 1024 / n
                figures["inflight_%d_s" % n] = r["elapsed_s"]
    finally:
        cluster.set_delay(0)
    r = run(client, cluster, args, log, "paging", page_size=args.page_size)
    if ok(r, "paging"):
        expected = args.rows * args.value_bytes
        if r["rows"] != args.rows or r["bytes"] != expected:
            problems.append("paging read %d rows, %d bytes; expected %d, %d"
                            % (r["rows"], r["bytes"], args.rows, expected))
        figures["paging_peak_mib"] = (r["hwm_kib"] - r["rss_before_kib"]) / 1024
        figures["paging_pages"] = r["pages"]
        figures["paging_checksum"] = r["checksum"]
    return figures, problems


ROWS = [
    # (figure, label, unit format)
    ("per_connection_kib", "RSS per connection", "%.0f KiB"),
    ("session_kib", "session, 1 connection per shard", "%.0f KiB"),
    ("inflight_256_bytes", "bytes per request, 256 in flight", "%.0f B"),
    ("inflight_10000_bytes", "bytes per request, 10,000 in flight", "%.0f B"),
    ("paging_peak_mib", "peak RSS paging 100 MB", "%.1f MiB"),
]


def summarize(runs):
    """{driver: {figure: median}} over the repetitions."""
    out = {}
    for driver, reps in runs.items():
        medians = {}
        for figure in {f for rep in reps for f in rep}:
            values = [rep[figure] for rep in reps if rep.get(figure) is not None]
            if values:
                medians[figure] = statistics.median(values)
        out[driver] = medians
    return out


def table_rows(doc):
    ref = doc["medians"].get(REFERENCE, {})
    mine = doc["medians"].get("sshard-c", {})
    for figure, label, fmt in ROWS:
        if figure not in ref and figure not in mine:
            continue
        cell = lambda m: fmt % m[figure] if figure in m else "-"  # noqa: E731
        ratio = ("%.2f" % (mine[figure] / ref[figure])
                 if figure in mine and ref.get(figure) else "-")
        yield label, cell(mine), cell(ref), ratio


def text_report(doc):
    lines = ["%-38s %14s %14s %8s" % ("figure", "sshard-c", REFERENCE, "x ref")]
    lines += ["%-38s %14s %14s %8s" % row for row in table_rows(doc)]
    lines += ["problems: %s" % p for p in doc["problems"]]
    return "\n".join(lines)


def markdown_report(doc):
    out = ["Run of %s: %d repetitions, %d nodes x %d shards, %d rows x %d bytes paged %d rows "
           "a page, answers delayed %d ms while requests are in flight."
           % (doc["date"], doc["reps"], doc["nodes"], doc["shards"], doc["rows"],
              doc["value_bytes"], doc["page_size"], doc["delay_ms"]), "",
           "| figure | sshard-c | scylla-rust | x ref |", "|---|---:|---:|---:|"]
    out += ["| %s | %s | %s | %s |" % row for row in table_rows(doc)]
    out += ["", "Problems: %s." % ("; ".join(doc["problems"]) if doc["problems"] else "none")]
    return "\n".join(out) + "\n"


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.logs, exist_ok=True)
    for name in os.listdir(args.logs):
        os.unlink(os.path.join(args.logs, name))
    available = clients()
    for name, (argv_, _) in available.items():
        if not os.path.exists(argv_[0]):
            raise SystemExit("%s is not built (%s): make bench-memory builds it" % (name, argv_[0]))
    cluster = Cluster(args.emulator, args.nodes, args.shards, args.base_ip,
                      metrics_port=9180, log_path=os.path.join(args.logs, "emulator.log"))
    cluster.start()
    try:
        fill = run(available[REFERENCE], cluster, args, os.path.join(args.logs, "fill.log"), "fill",
                   rows=args.rows, value_bytes=args.value_bytes)
        if fill.get("event") != "result":
            raise SystemExit("filling bench.big failed: %s" % fill.get("message"))
        print("filled bench.big: %d rows, %.0f MB in %.0f s"
              % (fill["rows"], fill["bytes"] / 1e6, fill["elapsed_s"]), flush=True)
        runs = {name: [] for name in available}
        problems = []
        order = list(available)
        for rep in range(args.reps):
            for name in order[rep % 2:] + order[:rep % 2]:
                figures, errs = measure(name, available[name], cluster, args, args.logs)
                runs[name].append(figures)
                problems += ["%s rep %d: %s" % (name, rep + 1, e) for e in errs]
                print("rep %d %s: %s" % (rep + 1, name, json.dumps(figures)), flush=True)
    finally:
        cluster.stop()
    checksums = {r.get("paging_checksum") for reps in runs.values() for r in reps} - {None}
    if len(checksums) > 1:
        problems.append("the drivers read different values while paging: %s" % sorted(checksums))
    doc = {"date": report.now_utc(), "reps": args.reps, "nodes": args.nodes,
           "shards": args.shards, "rows": args.rows, "value_bytes": args.value_bytes,
           "page_size": args.page_size, "delay_ms": args.delay_ms, "runs": runs,
           "medians": summarize(runs), "problems": problems,
           "elapsed_s": time.monotonic() - started}
    report.write_json(os.path.join(args.out, "memory.json"), doc)
    print(text_report(doc))
    if args.update_readme:
        report.update_readme(os.path.join(ROOT, "benches", "README.md"), markdown_report(doc),
                             (README_BEGIN, README_END))
    print("wrote %s (%.0f s)" % (os.path.join(args.out, "memory.json"), doc["elapsed_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

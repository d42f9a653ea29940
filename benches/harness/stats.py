"""From raw run records to figures: per-run figures, checks, medians with
their spread, and ratios to the reference driver. Pure functions."""

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    # True when a larger value is better (for the reader; ratios are plain
    # value / reference value either way).
    higher_is_better: bool
    # Ratio to the reference makes sense (not for counts expected to be 0).
    ratio: bool = True
    # Decimals in tables (None: by magnitude).
    digits: int = None


FIGURES = [
    Figure("rps", "req/s", True),
    Figure("cpu_us", "CPU us/req", False),
    Figure("p50_us", "p50 us", False),
    Figure("p99_us", "p99 us", False),
    Figure("p999_us", "p999 us", False),
    Figure("connections", "conns", False, digits=0),
    Figure("misroutes", "misroutes", False, ratio=False, digits=0),
    # Not the driver's: CPU (in cores) that other processes on the machine
    # used during the measured phase. High values flag a disturbed run.
    Figure("background_cores", "bg cores", False, ratio=False, digits=2),
]


def run_figures(record):
    """The figures of one successful run, or None for a failed one."""
    result = record.get("result")
    if result is None:
        return None
    requests = result.get("requests", 0)
    cpu = result["cpu_s"]["user"] + result["cpu_s"]["sys"]
    if record.get("through_communicator"):
        # The daemon does the driver's work for the client: both count.
        cpu += record.get("window", {}).get("communicator_s", 0.0)
    lat = result["latency_us"]
    measured = record["measured"]
    return {
        "rps": result["rps"],
        "cpu_us": cpu / requests * 1e6 if requests else None,
        "p50_us": lat["p50"],
        "p99_us": lat["p99"],
        "p999_us": lat["p999"],
        "connections": record["lifetime"]["connections_accepted"],
        "misroutes": measured["misrouted_node"] + measured["misrouted_shard"],
        "background_cores": record.get("window", {}).get("background_cores"),
    }


def run_problems(record, workload):
    """What is wrong with one run: failures, errors, wrong rows, a cluster
    that saw fewer requests than the client claims."""
    if "failure" in record:
        return ["run failed: %s" % record["failure"]]
    r = record["result"]
    problems = []
    if r.get("requests", 0) == 0:
        problems.append("no requests completed")
    if r.get("errors"):
        problems.append("%d errors (first: %s)" % (r["errors"], r.get("first_error")))
    if r.get("mismatches"):
        problems.append("%d rows read back wrong (first: %s)"
                        % (r["mismatches"], r.get("first_mismatch")))
    back = r.get("readback", {})
    if back.get("mismatches") or back.get("errors"):
        problems.append("read-back: %d wrong, %d errors (first: %s)"
                        % (back.get("mismatches", 0), back.get("errors", 0),
                           back.get("first_failure")))
    if workload in ("select", "mixed") and not r.get("checked"):
        problems.append("no SELECT result was checked")
    if workload in ("insert", "mixed") and not back.get("checked"):
        problems.append("no inserted row was read back")
    if not r.get("pools_full"):
        problems.append("the driver's pools were not full before the warm-up")
    if record["measured"]["routable"] < r.get("requests", 0):
        problems.append("the cluster counted %d routable requests, the client claims %d"
                        % (record["measured"]["routable"], r["requests"]))
    return problems


def verified_rows(record):
    r = record.get("result") or {}
    back = r.get("readback", {})
    return (r.get("checked", 0) - r.get("mismatches", 0)
            + back.get("checked", 0) - back.get("mismatches", 0))


def spread(values):
    """Median, min, max and (max - min) / median in percent."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        "median": med,
        "min": lo,
        "max": hi,
        "spread_pct": (hi - lo) / med * 100.0 if med else 0.0,
        "values": values,
    }


def aggregate(records, workload):
    """Medians and spreads of the figures over the repetitions of one
    driver on one case, with the problems of every run."""
    per_run = [run_figures(r) for r in records]
    ok = [f for f in per_run if f is not None]
    problems = []
    for i, r in enumerate(records):
        problems += ["rep %d: %s" % (i + 1, p) for p in run_problems(r, workload)]
    figures = {}
    for fig in FIGURES:
        s = spread([f[fig.key] for f in ok])
        if s is not None:
            if fig.key == "misroutes":
                s["total"] = sum(s["values"])
            figures[fig.key] = s
    return {
        "runs": len(records),
        "completed": len(ok),
        "figures": figures,
        "requests": sum((r.get("result") or {}).get("requests", 0) for r in records),
        "verified": sum(verified_rows(r) for r in records),
        "problems": problems,
    }


def add_ratios(by_driver, reference):
    """Sets figures[key]["ratio"] = median / reference median, per figure."""
    ref = by_driver.get(reference)
    for agg in by_driver.values():
        for fig in FIGURES:
            f = agg["figures"].get(fig.key)
            if f is None:
                continue
            r = ref["figures"].get(fig.key) if ref else None
            f["ratio"] = (f["median"] / r["median"]
                          if fig.ratio and r and r["median"] else None)
    return by_driver

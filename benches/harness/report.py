"""The outputs: targets, the table on stdout, the Markdown for the README,
the JSON document."""

import json
import os
import platform
import statistics
import time

from .stats import FIGURES

DIGITS = {f.key: f.digits for f in FIGURES}


README_BEGIN = "<!-- bench-results:begin -->"
README_END = "<!-- bench-results:end -->"

# The targets. They are reported, never asserted.
CPU_TARGET = 0.8
# The C client's CPU per request against the driverless floor, at 256 in flight.
FLOOR_TARGET = 2.0
FLOOR = "sshard-floor"
PYTHON_BINDING_TARGET = 3.0
# The LuaJIT binding's CPU per request against the C client's, at 256 in flight.
LUAJIT_TARGET = 1.15
STORM_TARGET_PCT = 1.0
COMMUNICATOR_P50_TARGET_US = 50.0
# The Python binding's targets on mixed/c256: (target text, binding, peer,
# figure, factor); the binding's figure must be >= factor x the peer's
# (throughput), or <= peer / factor (CPU per request).
PYTHON_CASE = "mixed/c256"
PYTHON_TARGETS = [
    ("Python binding (asyncio) >= %.0fx the throughput of scylla-driver (asyncio)"
     % PYTHON_BINDING_TARGET, "sshard-python-asyncio", "python-driver-asyncio", "rps",
     PYTHON_BINDING_TARGET),
    ("Python binding >= 2x the throughput of scylla-driver (libev)", "sshard-python",
     "python-driver", "rps", 2.0),
    ("Python binding (best of both) >= acsylla's throughput", "sshard-python*", "acsylla",
     "rps", 1.0),
    ("Python binding client CPU per request <= 1/3 of scylla-driver's (libev)",
     "sshard-python", "python-driver", "cpu_us", 3.0),
]


def python_targets(results):
    """The Python binding's targets, from the mixed/c256 medians."""
    by = results.get(PYTHON_CASE, {})
    out = []
    for text, subject, peer, figure, factor in PYTHON_TARGETS:
        names = ["sshard-python", "sshard-python-asyncio"] if subject.endswith("*") \
            else [subject]
        mine = [by[n]["figures"][figure]["median"] for n in names
                if by.get(n) and figure in by[n]["figures"]]
        theirs = by.get(peer, {}).get("figures", {}).get(figure)
        t = {"target": text, "subject": subject.rstrip("*")}
        if not mine or not theirs or not theirs["median"]:
            t.update(status="pending", value="%s or %s not measured on %s"
                     % (subject.rstrip("*"), peer, PYTHON_CASE))
        elif figure == "cpu_us":
            ratio = theirs["median"] / min(mine)
            t.update(status="met" if ratio >= factor else "not met",
                     value="%.2fx lower (%.1f vs %.1f us)" % (ratio, min(mine), theirs["median"]))
        else:
            ratio = max(mine) / theirs["median"]
            t.update(status="met" if ratio >= factor else "not met",
                     value="%.2fx (%.0f vs %.0f req/s)" % (ratio, max(mine), theirs["median"]))
        out.append(t)
    return out


def machine():
    info = {"cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            info["memory_gib"] = round(kb / 1024 / 1024, 1)
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def machine_line(m):
    return "%s, %s cores, %s GiB, Linux %s, load %s at start" % (
        m.get("cpu", "unknown CPU"), m.get("cores"), m.get("memory_gib", "?"),
        m.get("kernel"), "/".join("%.2f" % x for x in m.get("load_avg", [])))


def _ratio(agg, key):
    f = agg["figures"].get(key) if agg else None
    return f.get("ratio") if f else None


def targets(doc):
    """The issue's targets with what this run shows for each."""
    results, out = doc["results"], []
    available = {d["name"] for d in doc["drivers"] if d["available"]}

    def cpu_target(driver, subject):
        ratios = [_ratio(by.get(driver), "cpu_us") for by in results.values()]
        ratios = [r for r in ratios if r is not None]
        if not ratios:
            return {"target": "client CPU per request <= %.1fx the Rust scylla crate" % CPU_TARGET,
                    "subject": subject, "status": "pending",
                    "value": "%s not measured" % driver}
        worst = max(ratios)
        return {"target": "client CPU per request <= %.1fx the Rust scylla crate" % CPU_TARGET,
                "subject": subject, "status": "met" if worst <= CPU_TARGET else "not met",
                "value": "worst %.2fx, median %.2fx over %d cases"
                         % (worst, statistics.median(ratios), len(ratios))}

    out.append(cpu_target("sshard-c", "libscylla_shard from C"))
    out.append(cpu_target("sshard-rust", "libscylla_shard's Rust core, indicative"))

    out.extend(python_targets(results))

    floor = [floor_ratio(by, by["sshard-c"]) for case_id, by in results.items()
             if "sshard-c" in by and case_id.endswith("/c256")]
    floor = [r for r in floor if r is not None]
    out.append({"target": "C client CPU per request <= %.0fx the driverless floor at 256 in flight"
                          % FLOOR_TARGET, "subject": "libscylla_shard from C",
                "status": ("pending" if not floor else
                           "met" if max(floor) <= FLOOR_TARGET else "not met"),
                "value": ("the floor or the C client not measured" if not floor else
                          "worst %.2fx over %d cases" % (max(floor), len(floor)))})

    lua = [by["sshard-luajit"]["figures"]["cpu_us"]["median"] / by["sshard-c"]["figures"]["cpu_us"]["median"]
           for case_id, by in results.items()
           if case_id.endswith("/c256") and by.get("sshard-luajit") and by.get("sshard-c")
           and "cpu_us" in by["sshard-luajit"]["figures"] and "cpu_us" in by["sshard-c"]["figures"]]
    out.append({"target": "LuaJIT binding CPU per request <= %.2fx the C client at 256 in flight"
                          % LUAJIT_TARGET, "subject": "sshard-luajit",
                "status": ("pending" if not lua else
                           "met" if max(lua) <= LUAJIT_TARGET else "not met"),
                "value": ("the LuaJIT or the C client not measured" if not lua else
                          "worst %.2fx over %d cases" % (max(lua), len(lua)))})

    for driver in [d["name"] for d in doc["drivers"] if d["name"] in available]:
        totals = [by[driver]["figures"]["misroutes"]["total"] for by in results.values()
                  if driver in by and "misroutes" in by[driver]["figures"]]
        if totals:
            n = sum(totals)
            out.append({"target": "zero misroutes after warm-up", "subject": driver,
                        "status": "met" if n == 0 else "not met",
                        "value": "%d misrouted requests over %d runs" % (n, sum(
                            len(by[driver]["figures"]["misroutes"]["values"])
                            for by in results.values()
                            if driver in by and "misroutes" in by[driver]["figures"]))})

    for driver, storm in doc.get("storm", {}).items():
        s = storm.get("excess_pct")
        if s is None:
            out.append({"target": "connection storm within %.0f%% of ideal" % STORM_TARGET_PCT,
                        "subject": driver, "status": "not measured",
                        "value": "; ".join(storm.get("problems", [])) or "no run completed"})
            continue
        out.append({"target": "connection storm within %.0f%% of ideal" % STORM_TARGET_PCT,
                    "subject": driver,
                    "status": "met" if abs(s["median"]) <= STORM_TARGET_PCT else "not met",
                    "value": "%+.1f%% (accepted %g, ideal %d; %+.1f%% against the ideal plus "
                             "one control connection per client)"
                             % (s["median"], storm["accepted"]["median"], storm["ideal"],
                                storm["excess_with_control_pct"]["median"])})

    out.extend(communicator_targets(doc))
    return out


COMMUNICATOR = "sshard-c-communicator"
WORKERS_TARGET = 0.8


def communicator_targets(doc):
    """Latency the communicator adds (the C client through it against the
    same client direct), the throughput of a machine's workers through it
    against a session each, and the connections a machine holds."""
    out = []
    added = []
    for case_id, by in sorted(doc["results"].items()):
        mine, direct = by.get(COMMUNICATOR), by.get("sshard-c")
        if not mine or not direct:
            continue
        try:
            p50 = mine["figures"]["p50_us"]["median"] - direct["figures"]["p50_us"]["median"]
            p99 = mine["figures"]["p99_us"]["median"] - direct["figures"]["p99_us"]["median"]
        except KeyError:
            continue
        added.append((case_id, p50, p99))
    c1 = [p50 for case_id, p50, _ in added if case_id.endswith("/c1")]
    out.append({"target": "communicator adds < %.0f us at p50" % COMMUNICATOR_P50_TARGET_US,
                "subject": "communicator",
                "status": ("pending" if not c1 else
                           "met" if max(c1) < COMMUNICATOR_P50_TARGET_US else "not met"),
                "value": ("the C client was not measured both ways" if not added else
                          "; ".join("%s p50 %+.0f us, p99 %+.0f us" % a for a in added))})

    for case_id, workers in sorted(doc.get("workers", {}).items()) or [("workers", {})]:
        mine, direct = workers.get(COMMUNICATOR, {}), workers.get("sshard-c", {})
        ratio = (mine["rps"]["median"] / direct["rps"]["median"]
                 if mine.get("rps") and direct.get("rps") and direct["rps"]["median"] else None)
        out.append({"target": "workers through the communicator >= %.1fx the throughput of a "
                              "session each" % WORKERS_TARGET,
                    "subject": "communicator",
                    "status": ("pending" if ratio is None else
                               "met" if ratio >= WORKERS_TARGET else "not met"),
                    "value": ("not measured" if ratio is None else
                              "%s: %.0f req/s against %.0f (%.2fx)"
                              % (case_id, mine["rps"]["median"], direct["rps"]["median"],
                                 ratio))})

    storms = doc.get("worker_storm", {})
    mine, direct = storms.get(COMMUNICATOR, {}), storms.get("sshard-c", {})
    if "held_total" in mine:
        per_machine = mine["ideal"] // mine["clients"] + 1
        out.append({"target": "connections from a machine = nodes x shards + 1 whatever its "
                              "workers", "subject": "communicator",
                    "status": "met" if mine["held_total"] == per_machine else "not met",
                    "value": "%d workers started after a restart: %d held, %d accepted "
                             "(a session each: %s held, %s accepted)"
                             % (mine["clients"], mine["held_total"], mine["accepted"],
                                _num(direct.get("held_total")), _num(direct.get("accepted")))})
    else:
        out.append({"target": "connections from a machine = nodes x shards + 1 whatever its "
                              "workers", "subject": "communicator", "status": "pending",
                    "value": mine.get("failure", "not measured")})
    return out


# --------------------------------------------------------------------------
# Formatting


def _num(v, digits=None):
    if v is None:
        return "-"
    if digits is None:
        digits = 0 if abs(v) >= 100 else (1 if abs(v) >= 10 else 2)
    return "{:,.{}f}".format(v, digits)


def _cell(agg, key, with_spread=False):
    f = agg["figures"].get(key)
    if f is None:
        return "-"
    text = _num(f["median"], DIGITS.get(key))
    if with_spread and len(f["values"]) > 1:
        text += " ±%.0f%%" % (f["spread_pct"] / 2)
    return text


def _ratio_cell(agg, key):
    r = _ratio(agg, key)
    return "-" if r is None else "%.2fx" % r


COLUMNS = ["driver", "req/s", "x ref", "CPU us/req", "x ref", "x floor", "p50 us", "p99 us",
           "p999 us", "conns", "misroutes", "rows ok", "bg cores", "problems"]


def floor_ratio(by, agg):
    """CPU per request / the driverless floor's in the same case."""
    floor = by.get(FLOOR)
    mine, least = agg["figures"].get("cpu_us"), floor and floor["figures"].get("cpu_us")
    if not (mine and least and least["median"]):
        return None
    return mine["median"] / least["median"]


def case_rows(doc, case_id):
    rows = []
    by = doc["results"].get(case_id, {})
    for d in doc["drivers"]:
        agg = by.get(d["name"])
        if agg is None:
            continue
        mis = agg["figures"].get("misroutes")
        rows.append([
            d["name"],
            _cell(agg, "rps", True), _ratio_cell(agg, "rps"),
            _cell(agg, "cpu_us", True), _ratio_cell(agg, "cpu_us"),
            "-" if floor_ratio(by, agg) is None else "%.2fx" % floor_ratio(by, agg),
            _cell(agg, "p50_us"), _cell(agg, "p99_us"), _cell(agg, "p999_us"),
            _cell(agg, "connections"),
            "-" if mis is None else "%d" % mis["total"],
            "{:,}".format(agg["verified"]),
            _cell(agg, "background_cores"),
            str(len(agg["problems"])) if agg["problems"] else "",
        ])
    return rows


def _text_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(row):
        cells = zip(row, widths, strict=True)
        return "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                         for i, (c, w) in enumerate(cells))

    lines = [line(r) for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


TEXT_COLUMNS = ("case", "driver", "problems")


def _md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if h in TEXT_COLUMNS else "---:" for h in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _reps(doc):
    n = doc["settings"]["reps"]
    return "%d repetition%s" % (n, "" if n == 1 else "s")


def case_title(case):
    what = {"insert": "prepared INSERT", "select": "prepared SELECT",
            "mixed": "50/50 INSERT/SELECT"}.get(case["workload"], case["workload"])
    return "%s: %s, concurrency %d, %s keyspace" % (
        case["id"], what, case["concurrency"], "tablet" if case["tablets"] else "vnode")


def storm_rows(doc):
    rows = []
    for driver, s in doc.get("storm", {}).items():
        if "excess_pct" not in s:
            rows.append([driver] + ["-"] * 6 + ["; ".join(s.get("problems", []))])
            continue
        rows.append([driver, "%d" % s["ideal"], _num(s["accepted"]["median"], 0),
                     "%+.1f%%" % s["excess_pct"]["median"],
                     "%+.1f%%" % s["excess_with_control_pct"]["median"],
                     _num(s["held"]["median"], 0), _num(s["all_ready_s"]["median"], 2),
                     "; ".join(s.get("problems", []))])
    return rows


STORM_COLUMNS = ["driver", "ideal", "accepted", "excess", "excess over ideal + 1 control/client",
                 "held", "all ready s", "problems"]


def callgrind_rows(doc):
    rows = []
    ref = doc.get("callgrind", {}).get(doc["reference"], {}).get("instructions_per_request")
    for driver, c in doc.get("callgrind", {}).items():
        ipr = c.get("instructions_per_request")
        rows.append([driver, _num(ipr), "-" if not (ipr and ref) else "%.2fx" % (ipr / ref),
                     c.get("failure", "")])
    return rows


CALLGRIND_COLUMNS = ["driver", "instructions/request", "x ref", "problems"]


def text_report(doc):
    out = ["libscylla_shard benchmark, %s" % doc["date"],
           "machine: %s" % machine_line(doc["machine"]),
           "cluster: %s; %s" % (doc["settings"]["cluster"], doc["settings"]["summary"]),
           "figures: medians over %s (± half the max-min spread); x ref = / %s"
           % (_reps(doc), doc["reference"]), ""]
    for case in doc["cases"]:
        rows = case_rows(doc, case["id"])
        if rows:
            out += ["== %s" % case_title(case), _text_table(COLUMNS, rows), ""]
    if doc.get("storm"):
        out += ["== connection storm: %s" % doc["settings"]["storm"],
                _text_table(STORM_COLUMNS, storm_rows(doc)), ""]
    if doc.get("callgrind"):
        out += ["== instructions per request (callgrind): %s" % doc["settings"]["callgrind"],
                _text_table(CALLGRIND_COLUMNS, callgrind_rows(doc)), ""]
    out.append("== targets (reported, not asserted)")
    for t in doc["targets"]:
        out.append("  [%s] %s: %s: %s" % (t["status"], t["target"], t["subject"], t["value"]))
    problems = [(case_id, driver, p) for case_id, by in doc["results"].items()
                for driver, agg in by.items() for p in agg["problems"]]
    if problems:
        out += ["", "== problems"] + ["  %s %s: %s" % p for p in problems]
    out += ["", "== notes"] + ["  %s" % n for n in doc["notes"]]
    return "\n".join(out)


def markdown_report(doc, chart_path):
    rows = []
    for case in doc["cases"]:
        for r in case_rows(doc, case["id"]):
            rows.append([case["id"]] + r)
    out = ["Latest run: **%s**, `%s` mode, on %s." % (doc["date"], doc["settings"]["mode"],
                                                       machine_line(doc["machine"])),
           "Cluster: %s; %s. Medians over %s (± half the max-min spread); "
           "`x ref` divides by the Rust `scylla` crate measured in the same run."
           % (doc["settings"]["cluster"], doc["settings"]["summary"], _reps(doc)),
           "", "![throughput and p99 per driver](%s)" % chart_path, "",
           _md_table(["case"] + COLUMNS, rows), ""]
    if doc.get("storm"):
        out += ["Connection storm (%s):" % doc["settings"]["storm"], "",
                _md_table(STORM_COLUMNS, storm_rows(doc)), ""]
    if doc.get("callgrind"):
        out += ["Instructions per request (%s):" % doc["settings"]["callgrind"], "",
                _md_table(CALLGRIND_COLUMNS, callgrind_rows(doc)), ""]
    out += ["Targets (reported, not asserted):", ""]
    out += ["- **%s** %s (%s): %s" % (t["status"], t["target"], t["subject"], t["value"])
            for t in doc["targets"]]
    out += ["", "Notes:", ""] + ["- %s" % n for n in doc["notes"]]
    return "\n".join(out) + "\n"


def update_readme(path, markdown, markers=(README_BEGIN, README_END)):
    """Replaces the text between the README's result markers."""
    first, last = markers
    with open(path) as f:
        text = f.read()
    begin, end = text.find(first), text.find(last)
    if begin < 0 or end < begin:
        raise ValueError("%s has no %s ... %s section" % (path, first, last))
    text = text[:begin + len(first)] + "\n" + markdown + text[end:]
    with open(path, "w") as f:
        f.write(text)


def write_json(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path):
    """What `write_json` wrote at `path` (for --render-only); exits when absent."""
    if not os.path.exists(path):
        raise SystemExit("no results to render at %s" % path)
    with open(path) as f:
        return json.load(f)


def now_utc():
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


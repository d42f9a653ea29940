"""Unit tests of the benchmark harness and the Python client's common part.

No cluster, no timing: `.venv/bin/python -m pytest -q benches/tests`.
"""

import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients"))

import common  # noqa: E402
from harness import drivers, report, runner, stats  # noqa: E402
from harness.cluster import Snapshot, parse_metrics  # noqa: E402

# ---------------------------------------------------------------------------
# Client common part


def test_payload_and_ops_match_the_rust_clients():
    assert common.payload(255) == "00000000000000ff" * 4
    assert [common.is_insert("mixed", i) for i in range(4)] == [True, False, True, False]
    assert common.is_insert("insert", 3) and not common.is_insert("select", 2)
    assert common.select_cql("ks", "kv") == "SELECT v, tag FROM ks.kv WHERE k = ?"


def test_nearest_rank_percentiles():
    v = list(range(1, 1001))
    assert common.nearest_rank(v, 0.5) == 500
    assert common.nearest_rank(v, 0.99) == 990
    assert common.nearest_rank(v, 0.999) == 999
    assert common.nearest_rank([7], 0.999) == 7
    assert common.nearest_rank([], 0.5) == 0
    s = common.latency_summary_us([3000, 1000, 2000])
    assert s["p50"] == 2.0 and s["max"] == 3.0 and s["mean"] == 2.0


def test_inserted_keys_are_the_newest_distinct_inserts():
    assert common.inserted_keys("insert", 10, 5, 9, 100) == [8, 7, 6, 5]
    assert common.inserted_keys("mixed", 10, 0, 9, 100) == [8, 6, 4, 2, 0]
    assert common.inserted_keys("insert", 3, 0, 100, 100) == [0, 2, 1]
    assert common.inserted_keys("insert", 10, 0, 100, 2) == [9, 8]
    assert common.inserted_keys("select", 10, 0, 100, 100) == []


def test_split_contact():
    assert common.split_contact("127.0.0.7:19999") == ("127.0.0.7", 19999)
    assert common.split_contact("localhost") == ("localhost", 9042)


class FakeDriver:
    """Stores rows; completes synchronously or from a thread."""

    def __init__(self, threaded=False, corrupt_key=None):
        self.rows = {}
        self.threaded = threaded
        self.corrupt_key = corrupt_key
        self.started = 0

    def start(self, is_insert, key, value, tag, done):
        self.started += 1
        if is_insert:
            self.rows[key] = (value, tag)
            result = None
        else:
            result = self.rows.get(key)
            if key == self.corrupt_key:
                result = ("wrong", 0)
        if self.threaded:
            threading.Thread(target=done, args=(result, None)).start()
        else:
            done(result, None)


def _run_phase(driver, workload, n, concurrency, keys=10):
    payloads = [common.payload(k) for k in range(keys)]
    counter = common.Counter()
    take = common.numbered(counter, workload, keys, stop_before=n)
    return common.Phase(driver, payloads, 5, concurrency, take).run(60), counter


def test_phase_runs_exactly_the_numbered_requests_synchronously():
    # Synchronous completions nest; the depth guard hands them to the waiter.
    driver = FakeDriver()
    s, counter = _run_phase(driver, "insert", 500, 4)
    assert (s.requests, s.errors, counter.next, driver.started) == (500, 0, 500, 500)
    assert len(s.latencies_ns) == 500
    assert driver.rows[3] == (common.payload(3), 5)


def test_phase_checks_rows_from_threaded_completions():
    driver = FakeDriver(threaded=True, corrupt_key=3)
    _run_phase(driver, "insert", 10, 3)
    s, _ = _run_phase(driver, "select", 20, 3)
    assert s.requests == 20 and s.checked == 20
    assert s.mismatches == 2 and s.first_mismatch.startswith("key 3")


def test_phase_counts_synchronous_exceptions_as_errors():
    class Failing:
        def start(self, *args):
            raise ValueError("boom")

    s, _ = _run_phase(Failing(), "select", 7, 2)
    assert s.requests == 7 and s.errors == 7 and "boom" in s.first_error

# ---------------------------------------------------------------------------
# Harness


METRICS = """# HELP emulator_requests_total requests
emulator_requests_total{shard="0"} 5
emulator_requests_total{shard="1"} 7
emulator_connections_accepted_total{port="9042",shard="1"} 2
emulator_connections_accepted_total{port="19042",shard="1"} 3
emulator_node_up 1
"""


def test_parse_metrics_and_snapshot_differences():
    m = parse_metrics(METRICS)
    assert m[("emulator_requests_total", 1)] == 7
    assert m[("emulator_connections_accepted_total", 1)] == 5
    assert m[("emulator_node_up", -1)] == 1
    a = Snapshot({(0, name, shard): v for (name, shard), v in m.items()})
    b = Snapshot({(0, "emulator_requests_total", 0): 10.0,
                  (1, "emulator_requests_total", 0): 4.0})
    d = b - a
    assert d.total("emulator_requests_total") == 10 - 12 + 4
    assert d.total("emulator_requests_total", node=1) == 4


def _record(rps, cpu=1.0, requests=1000, misroutes=0, errors=0, mismatches=0, routable=None):
    return {
        "driver": "x", "case": "mixed/c1",
        "result": {
            "requests": requests, "errors": errors, "first_error": None, "rps": rps,
            "cpu_s": {"user": cpu * 0.75, "sys": cpu * 0.25},
            "latency_us": {"p50": 10.0, "p99": 20.0, "p999": 30.0},
            "checked": requests // 2, "mismatches": mismatches, "first_mismatch": None,
            "readback": {"checked": 100, "mismatches": 0, "errors": 0},
            "pools_full": True,
        },
        "measured": {"routable": requests + 100 if routable is None else routable,
                     "misrouted_node": misroutes, "misrouted_shard": 0},
        "lifetime": {"connections_accepted": 13},
    }


def test_run_figures_and_problems():
    r = _record(5000.0, cpu=0.5, requests=1000)
    f = stats.run_figures(r)
    assert f["cpu_us"] == 500.0 and f["connections"] == 13 and f["misroutes"] == 0
    assert stats.run_problems(r, "mixed") == []
    bad = _record(1.0, errors=2, mismatches=1, routable=10)
    problems = stats.run_problems(bad, "mixed")
    assert len(problems) == 3, problems
    assert stats.run_figures({"failure": "x"}) is None
    assert stats.run_problems({"failure": "timed out"}, "insert") == ["run failed: timed out"]
    assert stats.verified_rows(r) == 600


def test_spread_aggregate_and_ratios():
    s = stats.spread([90.0, 100.0, 110.0, None])
    assert s["median"] == 100.0 and s["spread_pct"] == 20.0
    assert stats.spread([None]) is None
    ref = stats.aggregate([_record(100.0), _record(120.0), _record(80.0)], "mixed")
    ours = stats.aggregate([_record(150.0, cpu=0.05), _record(150.0, cpu=0.05, misroutes=2),
                            {"failure": "crashed"}], "mixed")
    assert ours["runs"] == 3 and ours["completed"] == 2
    assert ours["figures"]["misroutes"]["total"] == 2
    assert ours["problems"] == ["rep 3: run failed: crashed"]
    by = stats.add_ratios({"scylla-rust": ref, "ours": ours}, "scylla-rust")
    assert by["ours"]["figures"]["rps"]["ratio"] == 1.5
    assert abs(by["ours"]["figures"]["cpu_us"]["ratio"] - 0.05) < 1e-9
    assert by["ours"]["figures"]["misroutes"]["ratio"] is None


def _doc():
    ref = stats.aggregate([_record(100.0)], "mixed")
    ours = stats.aggregate([_record(150.0, cpu=0.5)], "mixed")
    results = {"mixed/c1": stats.add_ratios({"scylla-rust": ref, "sshard-c": ours},
                                            "scylla-rust")}
    storm = {"runs": [], "problems": [], "ideal": 96,
             "accepted": stats.spread([104.0]), "held": stats.spread([104.0]),
             "excess_pct": stats.spread([8.3]), "excess_with_control_pct": stats.spread([0.0]),
             "all_ready_s": stats.spread([0.5])}
    doc = {
        "date": "2026-01-01 00:00 UTC", "machine": {"cpu": "cpu", "cores": 2},
        "settings": {"mode": "quick", "reps": 1, "cluster": "3 x 4", "summary": "s",
                     "storm": "8 clients", "callgrind": "mixed"},
        "reference": "scylla-rust",
        "drivers": [{"name": "scylla-rust", "available": True},
                    {"name": "sshard-c", "available": True}],
        "cases": [{"id": "mixed/c1", "workload": "mixed", "concurrency": 1,
                   "tablets": False}],
        "results": results,
        "storm": {"sshard-c": storm},
        "callgrind": {"scylla-rust": {"instructions_per_request": 20000.0},
                      "sshard-c": {"instructions_per_request": 10000.0}},
        "notes": ["a note"],
    }
    doc["targets"] = report.targets(doc)
    return doc


def test_targets_are_reported():
    by = {(t["target"].split(" ")[0], t["subject"]): t for t in _doc()["targets"]}
    assert by[("client", "libscylla_shard from C")]["status"] == "met"
    assert by[("client", "libscylla_shard's Rust core, indicative")]["status"] == "pending"
    assert by[("zero", "sshard-c")]["status"] == "met"
    assert by[("connection", "sshard-c")]["status"] == "not met"
    assert by[("Python", "sshard-python")]["status"] == "pending"
    assert by[("Python", "sshard-python-asyncio")]["status"] == "pending"
    assert by[("C", "libscylla_shard from C")]["status"] == "pending"


def test_python_binding_targets():
    def agg(rps, cpu):
        return {"figures": {"rps": {"median": rps}, "cpu_us": {"median": cpu}}}
    results = {"mixed/c256": {"sshard-python": agg(30000, 20.0), "python-driver": agg(12000, 80.0),
                              "sshard-python-asyncio": agg(20000, 25.0),
                              "python-driver-asyncio": agg(6000, 160.0),
                              "acsylla": agg(35000, 12.0)}}
    got = {t["target"]: t["status"] for t in report.python_targets(results)}
    assert list(got.values()) == ["met", "met", "not met", "met"], got


def test_reports_render(tmp_path):
    doc = _doc()
    text = report.text_report(doc)
    assert "mixed/c1" in text and "0.50x" in text and "[met]" in text
    md = report.markdown_report(doc, "results/latest.png")
    assert "![throughput and p99 per driver](results/latest.png)" in md
    assert "| mixed/c1 | sshard-c | 150 | 1.50x |" in md
    readme = tmp_path / "README.md"
    readme.write_text("# x\n%s\nold\n%s\ntail\n" % (report.README_BEGIN, report.README_END))
    report.update_readme(str(readme), md)
    text = readme.read_text()
    assert "old" not in text and text.endswith(report.README_END + "\ntail\n") and md in text
    report.write_json(str(tmp_path / "latest.json"), doc)
    assert (tmp_path / "latest.json").read_text().startswith("{")


def test_adapters_reference_first_and_c_client_hook(tmp_path):
    adapters = drivers.adapters(str(tmp_path))
    assert adapters[0].name == drivers.REFERENCE
    c = next(a for a in adapters if a.name == "sshard-c")
    assert not c.available() and "C client not built" in c.note()
    for p in c.requires:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "w").close()
    assert c.available() and c.note() == ""
    asyncio = next(a for a in adapters if a.name == "python-driver-asyncio")
    assert asyncio.runs(runner.Case("mixed/c256", "mixed", 256, "bench", throughput=True))
    assert not asyncio.runs(runner.Case("mixed/c1", "mixed", 1, "bench"))


def test_client_args_follow_the_contract():
    class C:
        nodes = 3

        def contact(self, i):
            return "127.0.0.1:9042"

    args = runner.client_args(C(), runner.Case("select/c1", "select", 1, "bench"),
                              runner.Settings(keys=10, duration=1.5, warmup=0.5, verify_max=3),
                              tag=7)
    opts = common.check_args(common.parser("t"), common.parser("t").parse_args(args))
    assert (opts.workload, opts.concurrency, opts.duration, opts.keys, opts.tag,
            opts.expect_nodes) == ("select", 1, 1.5, 10, 7, 3)


def test_callgrind_totals(tmp_path):
    out = tmp_path / "cg.out"
    out.write_text("events: Ir\nfn=main\n1 5\nsummary: 123456\ntotals: 123456\n")
    assert runner.callgrind_instructions(str(out)) == 123456


def test_cpu_window_attributes_the_rest_to_background():
    start = {"t": 10.0, "machine_s": 100.0, "emulator_s": 5.0, "communicator_s": 0.0,
             "harness_s": 1.0, "client_s": 2.0}
    end = {"t": 12.0, "machine_s": 104.0, "emulator_s": 6.0, "communicator_s": 0.5,
           "harness_s": 1.0, "client_s": 0.0}
    w = runner._cpu_window(start, end, client_total_s=3.5)
    assert w["client_s"] == 1.5 and w["emulator_s"] == 1.0 and w["wall_s"] == 2.0
    assert w["communicator_s"] == 0.5
    assert w["background_cores"] == (4.0 - 1.0 - 0.5 - 1.5) / 2.0


def test_cpu_readings_are_sane():
    from harness import cpu
    assert cpu.process_cpu_s(os.getpid()) >= 0.0
    assert cpu.process_cpu_s(2 ** 22 + 12345) == 0.0  # no such process
    assert cpu.machine_busy_s() > 0.0
    assert cpu.children_cpu_s() >= 0.0 and cpu.own_cpu_s() > 0.0


def test_floor_ratio_divides_by_the_floor_of_the_same_case():
    fig = lambda cpu: {"figures": {"cpu_us": {"median": cpu}}}
    by = {"sshard-floor": fig(2.0), "sshard-c": fig(5.0)}
    assert report.floor_ratio(by, by["sshard-c"]) == 2.5
    assert report.floor_ratio({"sshard-c": fig(5.0)}, fig(5.0)) is None


# ---------------------------------------------------------------------------
# Memory benchmark (benches/memory.py)

def test_memory_medians_and_ratios():
    sys.path.insert(0, os.path.dirname(HERE))
    import memory
    runs = {"sshard-c": [{"per_connection_kib": 60}, {"per_connection_kib": 40},
                         {"per_connection_kib": 50, "paging_peak_mib": 8.0}],
            "scylla-rust": [{"per_connection_kib": 100}, {"paging_peak_mib": 4.0}]}
    doc = {"date": "d", "reps": 3, "nodes": 3, "shards": 4, "rows": 10, "value_bytes": 1,
           "page_size": 5, "delay_ms": 1, "runs": runs,
           "medians": memory.summarize(runs), "problems": []}
    assert doc["medians"]["sshard-c"] == {"per_connection_kib": 50, "paging_peak_mib": 8.0}
    rows = {label: rest for label, *rest in memory.table_rows(doc)}
    assert rows["RSS per connection"] == ["50 KiB", "100 KiB", "0.50"]
    assert rows["peak RSS paging 100 MB"] == ["8.0 MiB", "4.0 MiB", "2.00"]
    assert "bytes per request, 256 in flight" not in rows
    assert "| RSS per connection | 50 KiB | 100 KiB | 0.50 |" in memory.markdown_report(doc)


# ---------------------------------------------------------------------------
# Restart storm at the post's scale (benches/restart_storm.py)

def test_restart_storm_targets_and_rows():
    sys.path.insert(0, os.path.dirname(HERE))
    import restart_storm

    def record(pool, all_full=True, fewest=150.0):
        return {"connect_s": 1.0, "sessions": 150, "restarts": [
            {"pool": pool, "ideal": 4500, "excess_pct": (pool - 4500) / 45.0, "control": 0.0,
             "full_s": 2.5, "all_full": all_full, "saw_drop": True, "held": pool,
             "held_fewest_on_a_shard": fewest}]}

    runs = []
    for driver, mode, rec in [("sshard-c", "shard-aware port", record(4501)),
                              ("scylla-rust", "shard-aware port", record(4600)),
                              ("python-driver", "shard-aware port", record(4000, fewest=90)),
                              ("sshard-c", "regular port only", record(9000, all_full=False)),
                              ("scylla-rust", "shard-aware port",
                               {"failure": "client error: boom", "restarts": []})]:
        runs.append({"driver": driver, "mode": mode, "record": rec,
                     "summary": restart_storm.summary(rec)})
    doc = {"date": "d", "nodes": 3, "shards": 30, "sessions": 150, "processes": 10,
           "restart_node": 1, "down_ms": 300, "runs": runs}
    doc["targets"] = restart_storm.targets(doc)
    # Within 1%, over it, a shard of the node without every session (not
    # full, whatever the driver says) and a failed run; the regular-port
    # run is no target.
    assert [t.split(":")[1].split("(")[0].strip() for t in doc["targets"]] == [
        "met", "not met", "not met", "not measured"]
    rows = list(restart_storm.rows(doc))
    assert rows[0] == ("sshard-c", "shard-aware port", "4501", "4500", "+0.0%", "0", "2.50", "yes")
    assert rows[2][-1] == "NO (driver says full)"
    assert rows[3][2:] == ("9000", "4500", "+100.0%", "0", "2.50", "NO (driver says not full)")
    assert rows[4][2].startswith("failed: client error: boom")
    text = restart_storm.markdown_report(doc)
    assert "| sshard-c | shard-aware port | 4501 | 4500 | +0.0% | 0 | 2.50 | yes |" in text
    assert "4,830" in text and "15,830" in text


def test_communicator_cpu_counts_for_its_clients_only():
    result = {"requests": 1000, "rps": 1.0, "cpu_s": {"user": 0.002, "sys": 0.0},
              "latency_us": {"p50": 1, "p99": 2, "p999": 3}}
    record = {"result": result, "measured": {"misrouted_node": 0, "misrouted_shard": 0},
              "lifetime": {"connections_accepted": 0},
              "window": {"communicator_s": 0.003, "background_cores": 0.0}}
    assert round(stats.run_figures(record)["cpu_us"], 6) == 2.0
    record["through_communicator"] = True
    assert round(stats.run_figures(record)["cpu_us"], 6) == 5.0


def test_communicator_targets():
    def by(p50, p99):
        return {"figures": {"p50_us": {"median": p50}, "p99_us": {"median": p99}}}
    doc = {"results": {"select/c1": {"sshard-c": by(40, 90),
                                     report.COMMUNICATOR: by(70, 150)},
                       "mixed/c256": {"sshard-c": by(900, 2000),
                                      report.COMMUNICATOR: by(1000, 2600)}},
           "workers": {"workers-mixed/16x16": {
               "sshard-c": {"case": "workers-mixed/16x16", "rps": {"median": 100000}},
               report.COMMUNICATOR: {"case": "workers-mixed/16x16", "rps": {"median": 85000}}}},
           "worker_storm": {"sshard-c": {"clients": 32, "ideal": 384, "held_total": 416,
                                         "accepted": 416},
                            report.COMMUNICATOR: {"clients": 32, "ideal": 384,
                                                  "held_total": 13, "accepted": 4}}}
    latency, workers, machine = report.communicator_targets(doc)
    assert latency["status"] == "met"
    assert "select/c1 p50 +30 us, p99 +60 us" in latency["value"]
    assert "mixed/c256 p50 +100 us" in latency["value"]
    assert workers["status"] == "met" and "0.85x" in workers["value"]
    assert machine["status"] == "met" and "13 held" in machine["value"]
    doc["results"]["select/c1"][report.COMMUNICATOR] = by(100, 150)
    doc["worker_storm"][report.COMMUNICATOR]["held_total"] = 26
    doc["workers"]["workers-mixed/16x16"][report.COMMUNICATOR]["rps"]["median"] = 70000
    assert [t["status"] for t in report.communicator_targets(doc)] == ["not met"] * 3
    assert [t["status"] for t in report.communicator_targets({"results": {}})] == ["pending"] * 3

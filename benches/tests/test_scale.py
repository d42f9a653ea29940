"""Unit tests of the startup and scale benchmark's pure parts
(benches/scale.py): the plan of clusters, the summaries, the ratios and the
tables. No cluster, no timing: `.venv/bin/python -m pytest -q benches/tests`.
"""

import argparse
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import scale  # noqa: E402


def test_shapes_parse_and_bad_ones_are_refused():
    assert scale.parse_shape("12x16") == (12, 16)
    assert scale.parse_shape("3X4") == (3, 4)
    for bad in ("12", "x4", "0x4", "3x4x5", "ax4"):
        with pytest.raises(argparse.ArgumentTypeError):
            scale.parse_shape(bad)


def test_plan_runs_the_shared_case_once_smallest_cluster_first():
    args = scale.parse_args(["--quick"])
    assert (args.reps, args.duration, args.warmup) == (1, 1.0, 0.5)
    stages = scale.plan(args)
    assert [(s.nodes, s.shards) for s in stages] == [(3, 4), (6, 4), (12, 4), (12, 16)]
    assert [c.id for c in stages[0].cases] == ["n3/c1", "n3/c16", "n3/c256", "n3/c4096"]
    assert [c.concurrency for c in stages[0].cases] == [1, 16, 256, 4096]
    assert all(c.workload == "mixed" for s in stages for c in s.cases)
    assert [c.id for c in stages[1].cases] == ["n6/c256"]
    assert [c.id for c in stages[2].cases] == ["n12/c256"]
    assert [s.startup for s in stages] == [True, False, False, True]
    assert stages[3].cases == []
    # The sweeps read their cases back by id, the 3-node row from the sweep.
    args = scale.parse_args(["--nodes", "3,6", "--nodes-concurrency", "64", "--startup", "3x4"])
    stages = scale.plan(args)
    assert [c.id for c in stages[0].cases] == ["n3/c1", "n3/c16", "n3/c256", "n3/c4096",
                                               "n3/c64"]
    assert [(s.nodes, s.shards, s.startup) for s in stages] == [(3, 4, True), (6, 4, False)]


def test_startup_medians_ratios_and_problems():
    def rec(driver, connect_s, rep, shape="3x4", full=True):
        return {"driver": driver, "shape": shape, "rep": rep, "connect_s": connect_s,
                "pools_full": full}
    records = [rec("scylla-rust", 0.20, 1), rec("scylla-rust", 0.10, 2),
               rec("scylla-rust", 0.30, 3),
               rec("sshard-c", 0.05, 1), rec("sshard-c", 0.04, 2, full=False),
               {"driver": "sshard-c", "shape": "3x4", "rep": 3, "failure": "timed out"},
               rec("sshard-c", 1.0, 1, shape="12x16")]
    out = scale.summarize_startup(records)
    ref, mine = out["3x4"]["scylla-rust"], out["3x4"]["sshard-c"]
    assert ref["connect_s"]["median"] == 0.20 and ref["ratio"] == 1.0
    assert mine["connect_s"]["median"] == pytest.approx(0.045)
    assert mine["ratio"] == pytest.approx(0.225)
    assert (mine["pools_full"], mine["runs"]) == (1, 3)
    assert mine["problems"] == ["rep 2: pools not full", "rep 3: timed out"]
    # No reference on that cluster: no ratio.
    assert out["12x16"]["sshard-c"]["ratio"] is None
    doc = {"startup_shapes": [(3, 4), (12, 16)], "startup": out,
           "drivers": ["scylla-rust", "sshard-c"]}
    rows = scale.startup_rows(doc)
    # Half the range over the median: (300 - 100) / 200 / 2.
    assert rows[0] == ["3x4", "scylla-rust", "200 ±50%", "1.00x", "3/3", ""]
    assert rows[1][0:2] == ["3x4", "sshard-c"] and rows[1][4:] == ["1/3", "2"]
    assert rows[2] == ["12x16", "sshard-c", "1,000", "-", "1/1", ""]


def _measured(driver, case, cpu_s, requests=1000, rps=5000.0, p50=100.0, rep=1):
    return {"driver": driver, "case": case, "rep": rep,
            "result": {"requests": requests, "rps": rps, "cpu_s": {"user": cpu_s, "sys": 0.0},
                       "latency_us": {"p50": p50, "p99": p50 * 2, "p999": p50 * 3},
                       "checked": 10, "readback": {"checked": 10}, "pools_full": True},
            "measured": {"routable": requests, "misrouted_node": 0, "misrouted_shard": 0},
            "lifetime": {"connections_accepted": 13}, "window": {"background_cores": 0.1}}


def _doc():
    records = []
    for driver, cpu in (("scylla-rust", 0.020), ("sshard-c", 0.010), ("sshard-floor", 0.005)):
        records.append(_measured(driver, "n3/c1", cpu, p50=50.0))
        # Four times the CPU per request at 256 in flight, twice with 6 nodes.
        records.append(_measured(driver, "n3/c256", cpu * 4, rps=20000.0))
        records.append(_measured(driver, "n6/c256", cpu * 8, rps=10000.0))
    records.append(dict(_measured("sshard-c", "n6/c256", 0.0, rep=2), failure="boom"))
    del records[-1]["result"]
    startup = scale.summarize_startup([
        {"driver": "scylla-rust", "shape": "3x4", "rep": 1, "connect_s": 0.2,
         "pools_full": True},
        {"driver": "sshard-c", "shape": "3x4", "rep": 1, "connect_s": 0.05,
         "pools_full": True}])
    return {"date": "d", "mode": "quick", "reps": 1, "warmup_s": 0.25, "duration_s": 0.5,
            "keys": 5000, "shards": 4, "inflight_nodes": 3, "nodes_concurrency": 256,
            "drivers": ["scylla-rust", "sshard-c", "sshard-floor"],
            "startup_shapes": [(3, 4)],
            "sweeps": {"inflight": [(1, "n3/c1"), (256, "n3/c256")],
                       "nodes": [(3, "n3/c256"), (6, "n6/c256")]},
            "startup": startup, "results": scale.summarize_cases(records), "problems": []}


def test_sweep_rows_ratios_to_reference_floor_and_first_row():
    doc = _doc()
    rows = {(r[0], r[1]): r[2:] for r in scale.sweep_rows(doc, "inflight")}
    # CPU us/req, x ref, x floor, x first, req/s, x ref, p50, x ref, bg, problems
    assert rows[("1", "sshard-c")] == ["10.0", "0.50x", "2.00x", "1.00x", "5,000", "1.00x",
                                       "50.0", "1.00x", "0.10", ""]
    assert rows[("256", "sshard-c")][:4] == ["40.0", "0.50x", "2.00x", "4.00x"]
    assert rows[("256", "scylla-rust")][:4] == ["80.0", "1.00x", "4.00x", "4.00x"]
    assert rows[("256", "sshard-floor")][2] == "1.00x"
    nodes = {(r[0], r[1]): r[2:] for r in scale.sweep_rows(doc, "nodes")}
    # x first of the node sweep is against its own first row (3 nodes at 256).
    assert nodes[("6", "sshard-c")][:4] == ["80.0", "0.50x", "2.00x", "2.00x"]
    assert nodes[("6", "sshard-c")][-1] == "1"
    assert doc["results"]["n6/c256"]["sshard-c"]["completed"] == 1


def test_reports_render_every_table_and_the_problems():
    doc = _doc()
    md = scale.markdown_report(doc)
    assert "| 3x4 | sshard-c | 50.0 | 0.25x | 1/1 |  |" in md
    assert "| 1 | sshard-c | 10.0 | 0.50x | 2.00x | 1.00x | 5,000 | 1.00x | 50.0 | 1.00x" in md
    assert "n6/c256 sshard-c rep 2: run failed: boom" in md
    assert md.count("|---|---|") == 3
    text = scale.text_report(doc)
    assert "by requests in flight" in text and "by nodes" in text
    assert "problems: n6/c256 sshard-c rep 2: run failed: boom" in text

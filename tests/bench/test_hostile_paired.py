"""bench/hostile_paired.py on null cases: the same runs under two names compare equal (every goal met, the same
summaries), and a version that stops slower than all of the baseline's runs, or steps beyond the bound, is caught."""

from __future__ import annotations

import json

from bench.hostile_paired import goals_against, run_row, summary

FLOOD = "flood: 1500 Hz NaN + 500 Hz valid"


def fake_run(folder, estop_max, estop_p50=1.0, beyond=0, load=(6.0, 7.0, 7.5)):
    folder.mkdir(parents=True)
    rows = [{"phase": "fuzz", "metric": "e-stop hold delay max (ms)", "value": estop_max},
            {"phase": "fuzz", "metric": "e-stop hold delay p50 (ms)", "value": estop_p50},
            {"phase": "fuzz", "metric": "protective stop hold delay max (ms)", "value": estop_max},
            {"phase": "fuzz", "metric": "protective stop hold delay p50 (ms)", "value": estop_p50},
            {"phase": FLOOD, "metric": "cycles_ratio", "value": 0.98}]  # fmt: skip
    goals = [{"name": "commands beyond the step bound of their kind", "measured": beyond}]
    notes = f"Node: default scheduling. Load average (1 min) at start / after fuzz / at end: {list(load)} on a shared"
    (folder / "hostile_driver.json").write_text(json.dumps({"rows": rows, "goals": goals, "notes": notes}))
    return folder


def test_the_same_runs_under_two_names_compare_equal(tmp_path):
    runs = [fake_run(tmp_path / f"r{k}", m) for k, m in enumerate((5.0, 8.0, 12.0))]
    a = summary("a", [run_row("a", f) for f in runs])
    b = summary("b", [run_row("b", f) for f in runs])
    assert {k: v for k, v in a.items() if k != "version"} == {k: v for k, v in b.items() if k != "version"}
    assert a["e-stop max (ms)"] == "8 (5-12)" and a["load"] == "6.0-7.5"
    goals = goals_against(a, b)
    assert goals and all(g["met"] for g in goals)


def test_a_slower_version_and_a_step_beyond_the_bound_are_caught(tmp_path):
    base = summary("old", [run_row("old", fake_run(tmp_path / f"o{k}", m)) for k, m in enumerate((5.0, 8.0, 12.0))])
    slow = summary("new", [run_row("new", fake_run(tmp_path / f"n{k}", m, beyond=k)) for k, m in
                           enumerate((13.0, 14.0, 15.0))])  # fmt: skip
    met = {g["name"].split(": ")[1]: g["met"] for g in goals_against(base, slow)}
    assert met["e-stop max (ms), median over runs, within old's spread"] is False
    assert met["commands beyond the step bound of their kind (all runs)"] is False
    assert met["e-stop p50 (ms), median over runs, within old's spread"] is True  # the medians did not move

"""bench/long_context's instruments on null cases: an arm identical to dense is 1.0x, an arm that never
reaches dense's loss has no speed-up, compile time lowers the with-compile figure, the planned run fits
its budget, and the corpus folder holds Python sources up to its size."""

from __future__ import annotations

import argparse

import pytest

from bench.long_context import (
    ARMS,
    annotate,
    arm_config,
    goals,
    parse,
    plan_steps,
    python_sources,
    seconds_to,
)

HISTORY = [(1.0, 4.0), (2.0, 3.5), (3.0, 3.2)]
FIVE = ("dense", "sparse", "gated", "sparse_gated", "random")  # the issue's arms (the *_eager ones are extra)


def rows(arms=FIVE, **overrides) -> list[dict]:
    out = []
    for arm in arms:
        row = {"arm": arm, "context": 1024, "history": list(HISTORY), "final_bits_per_byte": HISTORY[-1][1],
               "compile_seconds": 0.0}  # fmt: skip
        row.update(overrides.get(arm, {}))
        out.append(row)
    return out


def test_an_arm_identical_to_dense_is_one_times_as_fast():
    rs = rows()
    annotate(rs)
    assert all(r["speedup_vs_dense"] == 1.0 and r["seconds_to_dense_final"] == 3.0 for r in rs)
    g = goals(rs)
    assert g[0]["measured"] == 1.0 and g[0]["met"] is False  # 1x is not the 5x goal
    assert g[2]["measured"] == pytest.approx(0.0) and g[2]["met"] is True  # same loss: 0% above dense
    assert g[3]["measured"] == pytest.approx(0.0) and g[3]["met"] is True


def test_time_to_target_speed_up_and_compile():
    fast = {"history": [(0.5, 3.6), (0.6, 3.2), (1.0, 3.1)], "final_bits_per_byte": 3.1, "compile_seconds": 2.0}
    rs = rows(sparse_gated=fast)
    g = goals(rs)
    sg = next(r for r in rs if r["arm"] == "sparse_gated")
    assert sg["seconds_to_dense_final"] == 0.6 and sg["speedup_vs_dense"] == 5.0 and g[0]["met"] is True
    assert sg["speedup_vs_dense_with_compile"] == pytest.approx(3.0 / 2.6, abs=1e-3) and g[1]["met"] is False


def test_an_arm_that_never_reaches_dense_has_no_speed_up():
    slow = {"history": [(1.0, 4.0), (5.0, 3.3)], "final_bits_per_byte": 3.3}
    rs = rows(sparse_gated=slow)
    g = goals(rs)
    assert seconds_to(next(r for r in rs if r["arm"] == "sparse_gated"), 3.2) is None and g[0]["measured"] is None and g[0]["met"] is None
    assert g[2]["met"] is False  # 3.1% above dense


def test_goals_need_the_arms_they_compare():
    assert goals([r for r in rows() if r["arm"] != "sparse_gated"]) == []  # no compound without sparse+gated
    partial = goals([r for r in rows() if r["arm"] != "random"])  # no gate-vs-random without random
    assert len(partial) == 3 and not any("random" in g["name"] for g in partial)
    assert len(goals(rows())) == 4


def test_planned_steps_fit_the_budget():
    timing = {"full": {"step_s": 0.02, "eval_s": 0.005}, "flex": {"step_s": 0.01, "eval_s": 0.004}}
    small = parse(["--time-budget", "100", "--steps", "5000"])
    large = parse(["--time-budget", "400", "--steps", "5000"])
    s_small, s_large = plan_steps(small, timing, 1000), plan_steps(large, timing, 1000)
    assert 10 < s_small < s_large < 5000
    capped = parse(["--time-budget", "1e9", "--steps", "300"])
    assert plan_steps(capped, timing, 1000) == 300


def test_batch_must_be_a_multiple_of_the_micro_batch():
    with pytest.raises(SystemExit):
        parse(["--batch", "8", "--micro-batch", "3"])


def test_corpus_folder_holds_python_sources_up_to_its_size(tmp_path):
    folder = python_sources(tmp_path / "corpus", 200_000)
    files = [p for p in folder.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert files and all(p.suffix == ".py" for p in files)
    assert 200_000 <= total < 200_000 + max(p.stat().st_size for p in files) + 1


def test_arms_are_the_issue_s_five_and_two_eager_controls():
    assert set(ARMS) == {*FIVE, "dense_eager", "sparse_eager"}
    assert ARMS["dense_eager"] == ARMS["dense"] and ARMS["sparse_eager"] == ARMS["sparse"]
    assert isinstance(parse([]), argparse.Namespace)


def test_cuda_graphs_reach_every_arm_but_the_eager_ones():
    args = parse(["--cuda-graphs", "--device", "cpu"])
    args.corpus_path = "stdlib"
    assert arm_config("sparse_gated", args, 10).train.cuda_graphs is True
    assert arm_config("dense_eager", args, 10).train.cuda_graphs is False
    plain = parse(["--device", "cpu"])
    plain.corpus_path = "stdlib"
    assert arm_config("sparse", plain, 10).train.cuda_graphs is False


def test_speed_up_against_the_eager_dense_arm():
    """An eager dense arm identical to dense gives the same 1.0x; one twice as slow doubles the figure."""
    same = rows((*FIVE, "dense_eager"))
    g = goals(same)
    assert len(g) == 5 and "eagerly" in g[3]["name"] and g[3]["measured"] == 1.0 and g[3]["met"] is False
    slow = [(2.0, 4.0), (4.0, 3.5), (6.0, 3.2)]
    twice = rows((*FIVE, "dense_eager"), dense_eager={"history": slow})
    goals(twice)
    assert all(r["speedup_vs_dense_eager"] == 2.0 for r in twice if r["arm"] != "dense_eager")


def test_dense_pays_its_own_compile_in_the_with_compile_figure():
    """With compiled blocks every arm compiles: dense against itself stays 1.0x with compile included,
    and an arm that compiles as long as dense gets the same with-compile figure as without it would."""
    rs = rows(dense={"compile_seconds": 1.0}, sparse={"compile_seconds": 1.0})
    annotate(rs)
    by = {r["arm"]: r for r in rs}
    assert by["dense"]["speedup_vs_dense_with_compile"] == 1.0
    assert by["sparse"]["speedup_vs_dense_with_compile"] == 1.0
    assert by["gated"]["speedup_vs_dense_with_compile"] == pytest.approx(4.0 / 3.0, abs=1e-3)  # compiled nothing

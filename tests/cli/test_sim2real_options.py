"""`ast-robot sim2real`'s speed options: the loop trains with the torch threads asked for (default 1; a
non-positive count is refused before anything runs) and keeps one demonstration pool across rounds when the
config fine-tunes on fresh demos (train.finetune_demos)."""

from __future__ import annotations

import types

import torch


def test_the_loop_runs_its_rounds_with_the_threads_asked_for(tmp_path, monkeypatch):
    from ast_robot import sim2real as loop

    seen = []

    def fake_round(cfg_path, overrides, r, root, args, init_from, weights, demo_pool=None, as_given=False):
        seen.append(torch.get_num_threads())
        return loop.RoundResult(r, 1.0, 1.0, 0.0, 0.0, 0.0, "-", tmp_path / f"round{r}", None), None

    monkeypatch.setattr(loop, "run_round", fake_round)
    console = types.SimpleNamespace(rule=lambda *a: None, print=lambda *a: None)
    config = tmp_path / "c.yaml"
    config.write_text("name: c\n")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        loop.sim2real(config, types.SimpleNamespace(overrides=[], out=str(tmp_path), rounds=2), console)
        assert seen == [1, 1]  # the default: one thread
        torch.set_num_threads(1)
        loop.sim2real(config, types.SimpleNamespace(overrides=[], out=str(tmp_path), rounds=1, torch_threads=2),
                      console)  # fmt: skip
        assert seen == [1, 1, 2]
    finally:
        torch.set_num_threads(before)


def test_a_non_positive_thread_count_is_refused_in_one_line(repo_root, tmp_path, capsys):
    from ast_robot.cli import main

    demo = str(repo_root / "configs/experiments/demo.yaml")
    assert main(["sim2real", demo, "--torch-threads", "0", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "--torch-threads must be > 0, got 2, 10 and 0" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_one_demo_pool_goes_through_the_rounds_only_when_fine_tuning_on_fresh_demos(tmp_path, monkeypatch):
    from ast_robot import sim2real as loop

    pools = []

    def fake_round(cfg_path, overrides, r, root, args, init_from, weights, demo_pool=None, as_given=False):
        pools.append(demo_pool)
        if demo_pool is not None:
            demo_pool.append(r)
        return loop.RoundResult(r, 1.0, 1.0, 0.0, 0.0, 0.0, "-", tmp_path / f"round{r}", None), None

    monkeypatch.setattr(loop, "run_round", fake_round)
    console = types.SimpleNamespace(rule=lambda *a: None, print=lambda *a: None)
    config = tmp_path / "c.yaml"
    config.write_text("name: c\n")
    loop.sim2real(config, types.SimpleNamespace(overrides=["train.finetune_demos=5"], out=str(tmp_path), rounds=3),
                  console)  # fmt: skip
    assert pools[0] is pools[1] is pools[2] and pools[0] == [0, 1, 2]
    pools.clear()
    loop.sim2real(config, types.SimpleNamespace(overrides=[], out=str(tmp_path), rounds=2), console)
    assert pools == [None, None]


def test_no_physical_feedback_keeps_the_weights_from_the_next_round(tmp_path, monkeypatch):
    """The ablation switch: round 0's physical-feedback weights reach round 1 by default and never with
    --no-physical-feedback (the retuned config still does: only the weighting is switched off)."""
    import argparse

    from ast_robot import sim2real as loop
    from ast_robot.cli.sim2real import add_loop_arguments

    seen = []

    def fake_round(cfg_path, overrides, r, root, args, init_from, weights, demo_pool=None, as_given=False):
        seen.append((weights, cfg_path.name))
        retuned = tmp_path / f"retuned{r}.yaml"
        retuned.write_text("name: c\n")
        return loop.RoundResult(r, 1.0, 0.5, 0.5, 0.1, 0.9, "object_mass", tmp_path / f"round{r}", retuned), f"w{r}"

    monkeypatch.setattr(loop, "run_round", fake_round)
    console = types.SimpleNamespace(rule=lambda *a: None, print=lambda *a: None)
    config = tmp_path / "c.yaml"
    config.write_text("name: c\n")
    parser = argparse.ArgumentParser()
    add_loop_arguments(parser, hidden=None)
    for flags, expected in (([], [None, "w0", "w1"]), (["--no-physical-feedback"], [None, None, None])):
        seen.clear()
        args = parser.parse_args(["--rounds", "3", "--out", str(tmp_path), *flags])
        results = loop.sim2real(config, args, console)
        assert [w for w, _ in seen] == expected
        assert [r.trained_with for r in results] == [None if w is None else {} for w in expected]
        assert [name for _, name in seen] == ["c.yaml", "retuned0.yaml", "retuned1.yaml"]

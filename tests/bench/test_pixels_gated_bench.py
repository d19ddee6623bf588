"""bench/robot_learning_pixels_gated.py: the random arm's exact backward budget, and the goals on null cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ast_robot.config import from_dict
from ast_robot.config.gate import GateConfig, SignificanceConfig
from ast_robot.config.train import TrainConfig
from ast_robot.core.callbacks import GateAnneal
from ast_robot.core.data import TensorData
from ast_robot.core.gate import Gate
from ast_robot.core.significance import SignificanceModel
from ast_robot.core.trainer import LossOutput, Trainer
from bench.robot_learning_pixels_gated import QuotaGate, _step_all, goals_of, one_step, parse_args, time_to

X = torch.randn(200, 6, generator=torch.Generator().manual_seed(1))
Y = X[:, :2].sum(1, keepdim=True)


def mse(model, batch):
    return LossOutput((model(batch.inputs) - batch.targets).square().mean(1))


def stale_trainer(weights: dict[str, float], gate_cls: type = Gate) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    cfg = from_dict(TrainConfig, {"type": "bc", "steps": 30, "batch_size": 20, "lr": 1e-2})
    sig = SignificanceModel(SignificanceConfig(weights=weights, stale_scores=True))
    gate = gate_cls(GateConfig(target_rate=0.4, scoring="stale_scores"), seed=0)
    return Trainer(model, mse, torch.optim.AdamW(model.parameters(), lr=cfg.lr), TensorData(X, Y), cfg,
                   significance=sig, gate=gate, seed=0, show_progress=False)  # fmt: skip


def test_quota_gate_keeps_exactly_its_quota_uniformly_with_unbiased_weights():
    gate = QuotaGate(GateConfig(target_rate=0.5), seed=0)
    counts = torch.zeros(10)
    for quota in (0, 3, 7, 10):
        gate.quota = quota
        keep, weights = gate(torch.linspace(0, 1, 10))  # the scores are ignored: only the count matters
        assert int(keep.sum()) == quota
        assert torch.allclose(weights[keep], torch.full((quota,), 10 / quota)) if quota else not weights.any()
    gate.quota = 3
    for _ in range(600):
        counts += gate(torch.linspace(0, 1, 10))[0].float()
    assert counts.min() > 120 and counts.max() < 240  # uniform: 180 each expected, high and low scores alike
    force = torch.tensor([True, True] + [False] * 8)  # never-seen samples: kept outside the quota
    keep, _ = gate(torch.zeros(10), force=force)
    assert keep[:2].all() and int(keep.sum()) == 5


def test_random_arm_backwards_exactly_what_the_gated_arm_does_and_differs_in_which():
    arms = {"ungated": stale_trainer({"loss": 1.0}), "gated": stale_trainer({"loss": 1.0}),
            "random": stale_trainer({"random": 1.0}, QuotaGate)}  # fmt: skip
    arms["ungated"].gated, arms["ungated"].gate = False, None  # forward + backward everything
    state = {a: {"wall_s": 0.0, "curve": [], "step_s": []} for a in arms}
    for step in range(1, 31):  # 3 epochs of 10 batches: the first ungated (unseen samples), then gated
        _step_all(arms, state, step)
        g, r = arms["gated"].counters, arms["random"].counters
        assert (g.backward_samples, g.forward_samples) == (r.backward_samples, r.forward_samples)
    u, g = arms["ungated"].counters, arms["gated"].counters
    assert u.backward_samples == u.forward_samples == 600
    assert 200 < g.backward_samples < 0.5 * 600 + 200  # epoch 1 whole, then about 40% of each batch
    assert not torch.equal(arms["gated"].significance.stale.kept, arms["random"].significance.stale.kept)
    assert all(len(s["step_s"]) == 30 and s["wall_s"] > 0 for s in state.values())


def _curve(*points: tuple[float, float]) -> list[dict]:
    return [{"wall_s": w, "success": s} for w, s in points]


def _rows(ungated: list[dict], gated: list[dict], random: list[dict]) -> dict:
    return {a: {"finished": True, "curve": c} for a, c in (("ungated", ungated), ("gated", gated), ("random", random))}


def test_goals_null_case_identical_arms_meet_nothing():
    same = _curve((100, 0.2), (200, 0.4), (300, 0.5))
    goals = {g["name"].split(" (")[0]: g for g in goals_of(_rows(same, same, same))}
    speed = next(g for n, g in goals.items() if n.startswith("gated: ungated wall-clock"))
    assert speed["measured"] == 1.0 and speed["met"] is False
    assert goals["gated final success - random-subset final success"]["met"] is False


def test_goals_a_faster_gated_arm_meets_them_and_a_never_reaching_one_fails():
    ungated = _curve((100, 0.2), (200, 0.4), (300, 0.5))
    fast = _curve((50, 0.3), (100, 0.49), (150, 0.52))
    goals = goals_of(_rows(ungated, fast, _curve((50, 0.1), (100, 0.3), (150, 0.4))))
    assert [g["met"] for g in goals] == [True, True, True] and goals[0]["measured"] == 3.0  # 0.48 at 100 s vs 300 s
    never = goals_of(_rows(ungated, _curve((50, 0.1), (100, 0.2), (150, 0.3)), ungated))
    assert never[0]["measured"] is None and never[0]["met"] is False and never[1]["met"] is False
    assert time_to(ungated, 0.48) == 300 and time_to(ungated, 0.6) is None
    unfinished = goals_of({"ungated": {"finished": False, "curve": ungated}})
    assert all(g["measured"] is None for g in unfinished)


def test_arms_are_checked():
    with pytest.raises(SystemExit, match="copies the gated arm"):
        parse_args(["--demos", "/x", "--arms", "ungated,random"])
    with pytest.raises(SystemExit, match="unknown"):
        parse_args(["--demos", "/x", "--arms", "gated,best"])


def test_the_bench_steps_run_the_arm_callbacks_so_gate_anneal_trains_the_last_steps_ungated():
    """The bench steps arms itself (not Trainer.fit): gate.anneal must still end the run ungated."""
    trainer = stale_trainer({"loss": 1.0})
    trainer.callback.callbacks.append(GateAnneal(0.2))  # the last 6 of 30 steps ungated
    trainer.callback.init_callback(trainer)
    trainer.callback.on_training_start()
    for _ in range(23):
        one_step(trainer)
    assert trainer.gated and trainer.counters.backward_samples < 23 * 20
    one_step(trainer)  # step 24 is still gated; its callback turns the last 6 ungated
    before = trainer.counters.backward_samples
    for _ in range(6):
        one_step(trainer)
    assert not trainer.gated and trainer.counters.backward_samples - before == 6 * 20


def test_goals_when_the_ungated_arm_learned_nothing_are_not_met():
    """All arms at 0 success: every arm 'reaches' the ungated final at its first point, and the cheaper gated
    arm would pass the speed-up goal by its cost alone; the goals must say nothing was learned instead."""
    zero = _curve((100, 0.0), (200, 0.0))
    goals = goals_of(_rows(zero, _curve((50, 0.0), (100, 0.0)), _curve((50, 0.0), (100, 0.0))))
    assert [g["met"] for g in goals] == [False, False, False]
    assert goals[0]["measured"] is None and "nothing to reach" in goals[0]["name"]


def test_heldout_goals_time_the_perception_error_and_compare_with_random():
    ungated = [{"wall_s": 100, "success": 0.0, "heldout_place_cm": 9.0}, {"wall_s": 200, "success": 0.0, "heldout_place_cm": 8.0}]
    gated = [{"wall_s": 60, "success": 0.0, "heldout_place_cm": 8.5}, {"wall_s": 100, "success": 0.0, "heldout_place_cm": 7.9}]
    random = [{"wall_s": 60, "success": 0.0, "heldout_place_cm": 9.5}, {"wall_s": 100, "success": 0.0, "heldout_place_cm": 8.6}]
    goals = goals_of(_rows(ungated, gated, random))[3:]
    assert [g["measured"] for g in goals] == [2.0, -0.7] and [g["met"] for g in goals] == [True, True]
    same = goals_of(_rows(ungated, ungated, ungated))[3:]  # null case: identical arms
    assert [g["measured"] for g in same] == [1.0, 0.0] and [g["met"] for g in same] == [False, False]
    flat = [{"wall_s": 100, "success": 0.0, "heldout_place_cm": 6.0}, {"wall_s": 200, "success": 0.0, "heldout_place_cm": 6.1}]
    unlearned = goals_of(_rows(flat, gated, random))[3]  # ungated never improved: a cheaper arm "reaches" it at once
    assert unlearned["measured"] is None and unlearned["met"] is False and "flat" in unlearned["name"]
    assert len(goals_of(_rows(_curve((1, 0.5)), _curve((1, 0.5)), _curve((1, 0.5))))) == 3  # no held-out: none

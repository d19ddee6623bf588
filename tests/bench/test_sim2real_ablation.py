"""bench/sim2real.py's weighting-ablation goals and culprit rank, on hand-made rows: the null case (identical
arms) measures no gain and no significant gain; a float-prone 10-point gain (10/10 vs 9/10) reads exactly 10;
unequal budgets and unpaired rows are seen."""

from __future__ import annotations

import copy

from bench.sim2real import ablation_goals, culprit_rank


def _row(real: list[float], physical: bool, samples: float = 1000.0, twin: str = "t") -> dict:
    return {"kind": "pp_twin", "twin": twin, "seed": 0, "config": "c.yaml", "physical_weights": physical,
            "sim_success": [0.9] * len(real), "real_success": real, "real_episodes": 10,
            "cumulative_samples": [samples] * len(real),
            "real_per_1k_samples": [1000.0 * r / samples for r in real]}  # fmt: skip


def _measured(goals: list[dict]) -> dict:
    return {g["name"].split(":")[1].strip(): g["measured"] for g in goals}


def test_identical_arms_gain_nothing():
    on = _row([0.8, 0.9], True)
    off = copy.deepcopy(on) | {"physical_weights": False}
    m = _measured(ablation_goals([on, off]))
    assert m["pairs run (same twin, seed, rounds)"] == 1
    assert m["final-round real success, with minus without weights (points, mean over pairs)"] == 0.0
    assert m["lower end of the 95% (Newcombe) interval of that gain, worst pair (points; > 0"] < 0
    assert m["same budget (relative difference of the arms' simulated samples)"] == 0.0


def test_a_ten_point_gain_reads_ten_and_is_not_significant_at_ten_episodes():
    goals = ablation_goals([_row([0.8, 1.0], True), _row([0.8, 0.9], False, samples=1100.0)])
    m = _measured(goals)
    assert m["final-round real success, with minus without weights (points, mean over pairs)"] == 10.0
    assert [g["met"] for g in goals if "with minus without weights" in g["name"]] == [True]
    assert m["lower end of the 95% (Newcombe) interval of that gain, worst pair (points; > 0"] < 0
    assert abs(m["same budget (relative difference of the arms' simulated samples)"] - 1 / 11) < 1e-9


def test_unpaired_rows_measure_nothing():
    goals = ablation_goals([_row([0.8], True), _row([0.8], False, twin="other"), _row([0.8, 0.9], False)])
    assert all(g["measured"] is None for g in goals)


def test_culprit_rank_reads_the_truth_from_the_hidden_fields():
    ranking = ["friction", "object_mass", "gripper_force"]
    assert culprit_rank({"object_mass_scale": 3.0}, ["object_mass"], ranking) == \
        {"truth": ["object_mass"], "named_first_true": True, "true_rank": 2}
    assert culprit_rank({"object_mass_scale": 3.0}, [], ranking)["named_first_true"] is False
    assert culprit_rank({"finger_friction_scale": 0.1, "object_friction_scale": 0.1}, ["friction"], ranking) == \
        {"truth": ["friction"], "named_first_true": True, "true_rank": 1}
    assert culprit_rank({}, [], ranking) == {"truth": [], "named_first_true": None, "true_rank": None}

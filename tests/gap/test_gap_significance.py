"""The analyzer's absolute scale on the real MuJoCo replay against twin episodes (no ROS): a null twin
names nobody and keeps every range; a cause outside the randomized set is reported as unexplained; a
sensor offset is identified once it is randomized; retuned ranges respect physical and data-sheet
limits; the deployment's latency offset is counted once across rounds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("mujoco")

from ast_robot.config import load_config  # noqa: E402
from ast_robot.config.gap import GapConfig  # noqa: E402
from ast_robot.config.randomization import DistributionConfig, RandomizationConfig  # noqa: E402
from ast_robot.gap.pipeline import data_sheet_limits, run_sysid  # noqa: E402
from ast_robot.gap.replay import MujocoReplay  # noqa: E402
from ast_robot.gap.retune import retune  # noqa: E402
from ast_robot.gap.significance import noise_variance  # noqa: E402
from ast_robot.gap.sysid import SysIdResult, fit, space_from_randomization  # noqa: E402
from tests.gap.helpers import twin_records  # noqa: E402

FAST = GapConfig(cem_iterations=4, cem_population=16, polish_evaluations=30)
RANGES = RandomizationConfig(params={
    "actuator_gain": DistributionConfig(low=0.9, high=1.1),
    "joint_damping": DistributionConfig(low=0.8, high=1.2),
    "payload": DistributionConfig(low=0.0, high=0.5),
})  # fmt: skip
OFFSETS = {f"encoder_offset_{k}": DistributionConfig(low=-0.005, high=0.005) for k in range(6)}


@pytest.fixture(scope="module")
def replay():
    return MujocoReplay("ur5e", "reach")


def _fit(replay, real, ranges=RANGES, cfg=FAST, seed=0):
    limits = data_sheet_limits("ur5e")
    return fit(replay, real, space_from_randomization(ranges, cfg.search_expansion, None, limits, limits), cfg, seed)


def test_noise_variance_is_the_white_noise_and_ignores_a_smooth_error():
    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 0.05, 200)[:, None] * np.ones((1, 6))  # a drift, not noise
    est = noise_variance([smooth + rng.normal(0, 0.002, (200, 6)) for _ in range(3)])
    assert est == pytest.approx(0.002**2, rel=0.1)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_null_twin_names_no_culprit_and_changes_no_range(replay, seed):
    real = twin_records({"joint_noise_rad": 0.001}, seed)  # the nominal arm, only sensor noise
    res = _fit(replay, real, seed=seed)
    assert not res.trajectory_gap() and res.culprits() == () and res.top_parameter() is None
    assert res.widened == () and res.widen_seconds == 0.0  # the box is never widened on a null twin
    assert res.noise_rms == pytest.approx(0.001, rel=0.2)
    assert retune(RANGES, res, FAST) == RANGES  # every range exactly as it was


def test_a_true_culprit_is_named_with_its_value_and_nothing_else(replay):
    real = twin_records({"gain_scale": 0.6, "joint_noise_rad": 0.001}, 0)
    res = _fit(replay, real)
    assert res.culprits() == ("actuator_gain",)
    assert res.estimate()["actuator_gain"] == pytest.approx(0.6, rel=0.02)
    assert res.attribution[res.names.index("actuator_gain")] > 0.9  # of the nominal loss, not renormalised
    new = retune(RANGES, res, FAST)
    assert new.params["actuator_gain"].low <= 0.6 <= new.params["actuator_gain"].high
    assert {n: d for n, d in new.params.items() if n != "actuator_gain"} == \
        {n: d for n, d in RANGES.params.items() if n != "actuator_gain"}  # fmt: skip


def test_a_cause_outside_the_randomized_set_is_reported_unexplained(replay):
    """A 0.05 rad sensor bias on one joint, with no offset randomized: no payload (or other) culprit."""
    real = twin_records({"sensor_bias_rad": [0.0, 0.05, 0.0, 0.0, 0.0, 0.0]}, 0)
    res = _fit(replay, real)
    assert res.trajectory_gap() and res.gap_unexplained()
    assert res.culprits() == () and res.unexplained > 0.5
    assert retune(RANGES, res, FAST) == RANGES


def test_a_sensor_offset_is_identified_once_it_is_randomized(replay):
    real = twin_records({"sensor_bias_rad": [0.0, 0.05, 0.0, 0.0, 0.0, 0.0], "joint_noise_rad": 0.0005}, 0)
    res = _fit(replay, real, RandomizationConfig(params={**RANGES.params, **OFFSETS}))
    assert res.culprits() == ("encoder_offset_1",) and not res.gap_unexplained()
    assert res.estimate()["encoder_offset_1"] == pytest.approx(0.05, rel=0.05)
    assert res.estimate()["payload"] < 0.1  # not blamed on payload any more


def _significant(names, mean, std):
    n = len(names)
    return SysIdResult(tuple(names), tuple(mean), tuple(std), (1.0,) * n, (0.0,) * n, (1.0,) * n, 1.0, 0.001,
                       (0.5,) * n, tuple(names), (), 3, pvalue=(0.0,) * n, significant=(True,) * n)  # fmt: skip


def test_retuned_ranges_never_leave_physical_or_data_sheet_limits():
    rand = RandomizationConfig(params={"payload": DistributionConfig(low=0.0, high=0.5),
                                       "joint_damping": DistributionConfig(low=0.8, high=1.2),
                                       "latency": DistributionConfig(low=0.0, high=0.49)})  # fmt: skip
    res = _significant(["payload", "joint_damping", "latency"], [4.3, 0.02, 0.0], [1.0, 0.5, 0.0])
    new = retune(rand, res, GapConfig(), limits=data_sheet_limits("ur5e"))
    assert 0.0 <= new.params["payload"].low < new.params["payload"].high <= 5.0  # UR5e rated payload
    assert new.params["joint_damping"].low > 0  # no negative (or zero) scale
    assert new.params["latency"].low >= 0
    above = retune(rand, _significant(["payload"], [6.6], [0.2]), GapConfig(), limits={"payload": 5.0})
    assert above.params["payload"].high == 5.0


EXPERIMENT = """\
name: rounds
env: {id: ast_robot/ReachUR5e-v0}
randomization:
  params:
    actuator_gain: {dist: uniform, low: 0.9, high: 1.1}
    latency: {dist: uniform, low: 0.0, high: 0.49}
gap: {cem_iterations: 4, cem_population: 16, polish_evaluations: 20, deployment_latency_steps: 1.0}
"""


def test_the_deployment_latency_offset_is_counted_once_across_rounds(replay, tmp_path):
    """Round 1 on a twin with a 1-step arm delay retunes latency to fit + offset; round 2 on the same twin
    with that retuned config gives the same range (not + another offset); a nominal twin keeps it."""
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT)
    cfg = load_config(path)
    deployed = {"command_interface": "position"}  # the policy node's record: the offset applies
    delayed = twin_records({"latency_s": 0.04, "joint_noise_rad": 0.0005}, 0, meta=deployed)
    rounds = [cfg.randomization]
    for _ in range(2):
        cfg.randomization = rounds[-1]
        res, _, _ = run_sysid(cfg, delayed, replay, 0, None)
        assert res.culprits() == ("latency",) and res.estimate()["latency"] == 1.0
        rounds.append(retune(cfg.randomization, res, cfg.gap, {"latency": 1.0}))
    first, second = rounds[1].params["latency"], rounds[2].params["latency"]
    assert first.low <= 2.0 <= first.high and (first.low, first.high) == (second.low, second.high)
    cfg.randomization = rounds[2]
    res, _, _ = run_sysid(cfg, twin_records({"joint_noise_rad": 0.0005}, 1, meta=deployed), replay, 0, None)
    assert res.culprits() == () and retune(rounds[2], res, cfg.gap, {"latency": 1.0}) == rounds[2]


def test_joint_noise_range_moves_only_when_the_measured_noise_lies_outside_it():
    res = SysIdResult(("payload",), (0.0,), (0.01,), (0.0,), (0.0,), (0.5,), 1e-5, 1e-5, (0.0,), ("payload",), (), 4,
                      pvalue=(1.0,), significant=(False,), noise_rms=0.003, n_residuals=1200)  # fmt: skip
    payload = DistributionConfig(low=0.0, high=0.5)
    inside = RandomizationConfig(params={"joint_noise": DistributionConfig(low=0.0, high=0.005), "payload": payload})
    assert retune(inside, res) == inside
    below = RandomizationConfig(params={"joint_noise": DistributionConfig(low=0.0, high=0.001), "payload": payload})
    d = retune(below, res).params["joint_noise"]
    assert 0.001 < d.low < 0.003 < d.high < 0.004


def test_joint_noise_below_the_replay_floor_keeps_a_zero_range():
    """A nominal twin's readings differ from the replay by float round-off (~1e-8 rad): no noise to retune."""
    res = SysIdResult(("payload",), (0.0,), (0.01,), (0.0,), (0.0,), (0.5,), 1e-5, 1e-5, (0.0,), ("payload",), (), 4,
                      pvalue=(1.0,), significant=(False,), noise_rms=1.15e-8, n_residuals=1200)  # fmt: skip
    zero = RandomizationConfig(params={"joint_noise": DistributionConfig(dist="constant", mean=0.0),
                                       "payload": DistributionConfig(low=0.0, high=0.5)})  # fmt: skip
    assert retune(zero, res) == zero
    loud = SysIdResult(**{**res.to_dict(), "noise_rms": 0.003})
    assert 0.002 < retune(zero, loud).params["joint_noise"].low < 0.003  # a resolvable noise still moves it
    unexplained = SysIdResult(**{**loud.to_dict(), "residual_pvalue": 0.0, "unexplained": 0.08,
                                 "max_unexplained": 0.05, "alpha": 0.05})  # fmt: skip
    assert unexplained.gap_unexplained() and retune(zero, unexplained) == zero  # the residual is the missing cause


def test_a_noisy_twin_is_measured_as_noise_not_blamed_on_physics(replay):
    real = twin_records({"joint_noise_rad": 0.003}, 0)
    res = _fit(replay, real)
    assert res.culprits() == () and res.noise_rms == pytest.approx(0.003, rel=0.15)


def test_intervals_stay_inside_the_physical_box():
    res = SysIdResult(("payload",), (0.01,), (0.1,), (0.0,), (0.0,), (0.5,), 1e-5, 1e-5, (0.0,), ("payload",), (), 4,
                      search_low=(0.0,), search_high=(5.0,))  # fmt: skip
    assert res.interval(0) == (0.0, pytest.approx(0.01 + 1.96 * 0.1))  # never a negative payload
    unpinned = SysIdResult(**{**res.to_dict(), "std": (float("inf"),)})
    assert unpinned.interval(0) == (0.0, 5.0)


def test_a_fit_pinned_at_the_search_box_edge_is_reported_as_a_bound():
    from ast_robot.gap.verdict import physics_sentences

    inside = dataclasses.replace(_significant(["friction"], [0.5], [0.01]), search_low=(0.2,), search_high=(5.0,),
                                 gap_pvalue=0.0)  # fmt: skip
    floor = dataclasses.replace(inside, mean=(0.2,))
    ceiling = dataclasses.replace(inside, mean=(4.99,))
    assert (inside.search_edge(0), floor.search_edge(0), ceiling.search_edge(0)) == ("", "floor", "ceiling")
    assert dataclasses.replace(inside, mean=(0.24,)).search_edge(0) == ""  # 20% above a log box's floor: a value
    at_zero = dataclasses.replace(inside, mean=(0.0001,), search_low=(0.0,), search_high=(5.0,))
    assert at_zero.search_edge(0) == "floor"  # an end at 0 (e.g. payload): a share of the box's width
    assert "AT THE FLOOR of the searched range [0.2, 5]" in " ".join(physics_sentences(floor))
    assert "AT THE" not in " ".join(physics_sentences(inside))
    assert _significant(["friction"], [0.2], [0.01]).search_edge(0) == ""  # no box recorded: nothing claimed


def test_episodes_left_out_of_the_fit_are_said_with_or_without_a_gap():
    """A left-out episode may be the gap itself (the robot stopped where the sim did not): never dropped silently."""
    from ast_robot.gap.verdict import physics_sentences

    why = "episode seed 7: the robot stopped (e-stop or its safety system) at step 59"
    gap = dataclasses.replace(_significant(["friction"], [0.5], [0.01]), gap_pvalue=0.0, left_out=(why,))
    null = dataclasses.replace(gap, gap_pvalue=1.0)
    for res in (gap, null):
        assert f"Left out of the fit: 1 real episode(s) that cannot be replayed: {why}." in physics_sentences(res)
    assert not any("Left out" in s for s in physics_sentences(dataclasses.replace(gap, left_out=())))

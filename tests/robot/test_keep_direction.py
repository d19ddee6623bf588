"""The safety filter's common-scale step (SafetyLimits.keep_direction, issue 20): a command keeps the joint-space
direction it was asked for, inside every bound the per-joint clip keeps; the per-joint clip (the default, the null
case) turns it wherever the joints' bounds differ."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ast_robot.config import DeployConfig
from ast_robot.robot.safety import SafetyLimits, SafetyMonitor
from ast_robot.robot.specs import get_robot
from tests.robot.test_safety import J, assert_safe, fresh_monitor, hostile

PERIOD = 1 / 125
# a far multi-joint request (rad from home), every joint moving: its per-joint clip binds joints unevenly
FAR = np.array([0.6, -0.3, 0.2, 0.8, 0.1, 0.9, -0.2])


def fr3_follow(keep_direction: bool, ticks: int = 40) -> tuple[list[np.ndarray], SafetyLimits]:
    """Steps (cmd - last cmd) of an FR3 monitor whose arm follows each command exactly, towards home + FAR."""
    lim = SafetyLimits.from_robot(get_robot("fr3"), DeployConfig(robot="fr3", command_interface="forward_position"),
                                  keep_direction=keep_direction)  # fmt: skip
    mon, q = SafetyMonitor(lim), np.array(get_robot("fr3").home_qpos)
    for k in range(4):
        mon.observe_state(q, received_s=(k - 4) * PERIOD)
    steps = []
    for k in range(ticks):
        mon.observe_state(q, received_s=k * PERIOD)
        cmd = mon.filter(np.array(get_robot("fr3").home_qpos) + FAR, now_s=k * PERIOD).positions
        steps.append(cmd - q)
        q = cmd
    return steps, lim


def cosines(steps: list[np.ndarray]) -> np.ndarray:
    return np.array([s @ FAR / (np.linalg.norm(s) * np.linalg.norm(FAR)) for s in steps if np.linalg.norm(s) > 0])


def test_common_step_keeps_the_direction_within_the_bounds():
    steps, lim = fr3_follow(True)
    assert cosines(steps).min() > 1 - 1e-9
    last = np.zeros(7)
    for s in steps:  # the velocity and acceleration bounds still hold joint by joint
        assert np.all(np.abs(s) <= lim.max_step * (1 + 1e-12))
        assert np.all(np.abs(s - last) <= lim.max_step_change * (1 + 1e-9))
        last = s
    # the FR3's slowest joint for this request (joints 1-4 at 2.62 rad/s, half scale) paces the others: cruise speed
    np.testing.assert_allclose(np.max(np.abs(steps[-1]) / lim.max_step), 1.0, rtol=1e-9)


def test_per_joint_clip_turns_the_direction():
    """Null case: the default filter (each joint clipped on its own) turns the same request by > 10 degrees."""
    assert cosines(fr3_follow(False)[0]).min() < np.cos(np.radians(10))


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile, min_size=1, max_size=15))
def test_hostile_targets_stay_safe_with_the_common_step(targets):
    mon = fresh_monitor(keep_direction=True)
    previous = np.zeros(J)
    for k, target in enumerate(targets):
        mon.observe_state(previous, received_s=k * PERIOD)
        decision = mon.filter(target, now_s=k * PERIOD + 1e-4)
        assert_safe(mon, decision, previous)
        previous = decision.positions


@pytest.mark.parametrize("seed", range(5))
def test_common_step_is_never_faster_than_the_clip(seed):
    """Random requests and arm motion: each joint's common step lies between the slowest step its acceleration
    bound allows and the per-joint clip's step (never a weaker limit)."""
    from ast_robot.robot.safety.arm import _braking_step, _common_step

    rng = np.random.default_rng(seed)
    change = rng.uniform(1e-4, 1e-3, 7)
    for _ in range(200):
        wanted, last = rng.normal(0, 0.02, 7), rng.normal(0, 0.002, 7)
        step = np.clip(wanted, -0.01, 0.01)
        arriving = np.sign(step) * np.minimum(np.abs(step), _braking_step(np.abs(wanted), change))
        clipped = np.clip(arriving, last - change, last + change)
        common = _common_step(wanted, np.abs(arriving), last, change)
        slowest = np.clip(np.zeros(7), last - change, last + change)
        low, high = np.minimum(slowest, clipped), np.maximum(slowest, clipped)
        assert np.all(common >= low - 1e-15) and np.all(common <= high + 1e-15)


def test_plain_env_step_keeps_the_ik_direction():
    """The plain env's ee_delta path (no deploy pipeline): kernels.scaled_step moves all joints by one fraction
    of the IK's step within each joint's max change; joint_command's per-joint clip alone (null case) turns it."""
    from ast_robot.robot import kernels

    q, max_change = np.zeros(7), np.array([0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2])
    q_ik = FAR * 0.5
    scaled = kernels.scaled_step(q, q_ik, max_change)
    assert np.all(np.abs(scaled - q) <= max_change * (1 + 1e-12))
    np.testing.assert_allclose(np.max(np.abs(scaled) / max_change), 1.0, rtol=1e-12)
    assert cosines([scaled]).min() > 1 - 1e-12
    clipped = kernels.joint_command(q, q_ik, max_change, np.full(7, -3.0), np.full(7, 3.0), 0.04)[:-1]
    assert cosines([clipped]).min() < np.cos(np.radians(10))
    np.testing.assert_array_equal(kernels.scaled_step(q, q_ik * 0.01, max_change), q_ik * 0.01)  # within: as asked

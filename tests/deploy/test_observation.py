"""The deployment builds the observation the envs train on, from what a real robot reports.

A policy trained in simulation runs unchanged on the robot only if every entry of its observation means
the same there: same layout (``kernels.proprio``), same TCP command offset (the integrated TCP target the
latency hides from the measured state), same TCP velocity.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ast_robot.envs  # noqa: F401 - registers the env ids
from ast_robot.config import DeployConfig
from ast_robot.deploy.runner import PolicyRunner
from ast_robot.robot import kernels
from ast_robot.robot.safety.trust import ACQUIRE_STATES


class Replay:
    """Plays fixed actions and keeps the observations the runner handed it."""

    def __init__(self, actions: np.ndarray) -> None:
        self.actions, self.seen = actions, []

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.seen.append({k: np.array(v) for k, v in obs.items()})
        return self.actions[len(self.seen) - 1]


@pytest.mark.parametrize("robot", ["UR5e", "FR3"])
def test_runner_observation_equals_the_envs(robot):
    """Step a Reach env (action latency 1, no other randomization) and feed the runner its joint states at
    the env's rate: every observation the policy gets from the runner equals the env's, the TCP command
    offset included (random actions, some beyond [-1, 1], then a stretch that saturates the anti-windup).
    The gripper opening is measured in sim and assumed open on the arm (its fingers settle within 1 mm)."""
    env = gym.make(f"ast_robot/Reach{robot}-v0",
                   randomization={"params": {"latency": {"dist": "constant", "mean": 1.0}}})  # fmt: skip
    base = env.unwrapped
    rng = np.random.default_rng(3)
    actions = np.concatenate([rng.uniform(-1.3, 1.3, (12, 4)), np.tile([1.0, -1.0, 0.5, 1.0], (8, 1))])
    actions[:, 3] = 1.0  # gripper open, as the deployment assumes
    policy = Replay(actions)
    runner = PolicyRunner.for_robot(policy, robot.lower(), DeployConfig(control_hz=base.cfg.control_hz),
                                    env_cfg=base.cfg)  # one tick per env step  # fmt: skip
    obs, info = env.reset(seed=5)
    runner.set_goal(base.goal)
    expected = []
    for k in range(len(actions)):
        now = k * base.control_dt
        for _ in range(ACQUIRE_STATES if k == 0 else 1):  # the first states of a stream acquire trust
            runner.observe_joint_state(info["joint_positions"], info["joint_velocities"], now)
        runner.step(now)
        assert len(policy.seen) == k + 1, f"the runner did not ask the policy at step {k}"
        expected.append(obs)
        obs, _, _, _, info = env.step(actions[k])
    n = base.robot.n_joints
    assert obs["observation"].shape == (kernels.proprio_size(n),)
    offsets = np.array([e["observation"][2 * n + 7 :] for e in expected])
    assert np.abs(offsets).max() > base.cfg.max_ee_step  # the check covers a TCP target ahead of the arm
    grip = 2 * n + 6
    for k, (sim, real) in enumerate(zip(expected, policy.seen, strict=True)):
        for key in ("achieved_goal", "desired_goal"):
            np.testing.assert_allclose(real[key], sim[key], atol=1e-9, err_msg=f"{key} at step {k}")
        others = np.arange(sim["observation"].size) != grip
        np.testing.assert_allclose(real["observation"][others], sim["observation"][others], atol=1e-9,
                                   err_msg=f"observation at step {k}")  # fmt: skip
        assert abs(real["observation"][grip] - sim["observation"][grip]) < 1e-3
    env.close()


def test_observation_builder_without_a_tcp_target_has_zero_offset():
    """Before the first action (and for joint actions) the offset is 0, as the envs start an episode."""
    from ast_robot.robot.actions import ObservationBuilder

    tcp = np.array([0.4, 0.1, 0.3])
    build = ObservationBuilder(lambda q: tcp, 0.08)
    vector, ee = build(np.zeros(6), np.ones(6), 0.0)
    assert vector.shape == (kernels.proprio_size(6),) and np.array_equal(ee, tcp)
    np.testing.assert_array_equal(vector[12:15], tcp)
    np.testing.assert_array_equal(vector[15:18], 0.0)  # no earlier state: zero TCP velocity
    assert vector[18] == 0.08 and np.array_equal(vector[19:], np.zeros(3))

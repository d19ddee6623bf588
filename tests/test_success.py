"""One success rule and one final-error rule: the envs / `ast-robot eval` and the deployment judge the same
trajectory identically (ast_robot.success)."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config import EnvConfig
from ast_robot.deploy.episode import EpisodeTracker
from ast_robot.envs.reach import ReachEnv
from ast_robot.evaluation import rollout
from ast_robot.success import episode_outcome, goal_distance


def judged_on_the_robot(env: ReachEnv, record, ees: list[np.ndarray], threshold: float):
    """Feed the simulated episode's states to the deployment's tracker, tick by tick, until its timeout: at
    tick k the state after k actions is measured and the k-th command is computed from it."""
    dt, steps = env.control_dt, len(ees) - 1
    tracker = EpisodeTracker("ur5e", "reach", dt, timeout_s=steps * dt * (1 - 1e-9), success_radius=threshold,
                             end_on_success=False)  # run to the end, as a simulated episode does  # fmt: skip
    tracker.start(0.0, env.goal)
    for k in range(steps + 1):
        i = min(k, steps - 1)  # the last state's command is computed too, and is not the episode's
        out = tracker.tick(k * dt, record.joint_positions[k], None, ees[k], record.joint_targets[i], record.actions[i])
        assert (out is None) == (k < steps)
    assert out.meta["end_reason"] == "timeout" and out.steps == steps
    # the same arrays as the env's record: T commands, and T+1 states whose last follows the last command
    for name in ("joint_positions", "joint_targets", "actions"):
        np.testing.assert_array_equal(getattr(out, name), getattr(record, name), err_msg=name)
    return out


@pytest.mark.parametrize("policy", ["toward", "away", "through"])
def test_sim_and_robot_judge_the_same_trajectory_alike(policy):
    """Toward the goal (success), away from it (failure), through it and out again (reached once, failure
    at the end): the sim's record and the robot's record agree on success, final error and time to success."""
    threshold = 0.05
    env = ReachEnv("ur5e", EnvConfig(max_episode_steps=30, success_threshold=threshold))
    state = {"k": 0}

    def act(obs):
        state["k"] += 1
        error = obs["desired_goal"] - obs["achieved_goal"]
        direction = error / max(np.linalg.norm(error), 1e-9)
        if policy == "away" or (policy == "through" and state["k"] > 12):
            direction = -direction if policy == "away" else np.array([0.0, 0.0, 1.0])
        return np.append(direction, 1.0)

    ees: list[np.ndarray] = []
    sim = rollout(_Recording(env, ees), act, seed=4)
    real = judged_on_the_robot(env, sim, ees, threshold)
    assert (real.success, real.final_error) == (sim.success, sim.final_error)
    assert real.time_to_success == pytest.approx(sim.time_to_success) if sim.success else real.time_to_success is None
    assert sim.success == (policy == "toward")
    if policy == "through":  # it did reach the goal on the way: the end decides, on both sides
        assert min(goal_distance(e, env.goal) for e in ees) <= threshold < real.final_error
    env.close()


class _Recording:
    """The env, keeping every achieved goal (after reset and after each step)."""

    def __init__(self, env: ReachEnv, ees: list[np.ndarray]) -> None:
        self.unwrapped, self._env, self._ees = env, env, ees

    def reset(self, seed=None):
        obs, info = self._env.reset(seed=seed)
        self._ees.append(obs["achieved_goal"].copy())
        return obs, info

    def step(self, action):
        out = self._env.step(action)
        self._ees.append(out[0]["achieved_goal"].copy())
        return out


def test_the_threshold_itself_counts_as_success_on_both_sides():
    """The deployment used ``distance < radius`` and the envs ``distance <= threshold``: one rule now."""
    goal = np.array([0.4, 0.0, 0.2])
    at = goal + np.array([0.0, 0.0, 0.05])
    threshold = goal_distance(at, goal)  # exactly the distance of `at`
    env = ReachEnv("ur5e", EnvConfig(success_threshold=threshold))
    env.reset(seed=0)
    env.goal = goal
    assert env._info({}, threshold)["is_success"] is True
    assert env.compute_reward(at, goal, {}) == 0.0  # sparse: the success term pays at the threshold
    tracker = EpisodeTracker("ur5e", "reach", 0.04, timeout_s=1.0, success_radius=threshold)
    tracker.start(0.0, goal)
    record = tracker.tick(0.04, np.zeros(6), None, at, np.zeros(6), np.zeros(4))
    assert record is not None and record.success and record.final_error == threshold
    assert episode_outcome(threshold, threshold) == (True, threshold)
    assert episode_outcome(np.nextafter(threshold, 1.0), threshold)[0] is False
    env.close()

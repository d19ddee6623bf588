"""Every episode runner resets a policy that keeps state across act() calls (``reset_episode``: a `two_stage`
student's estimate filter, issue 20): the ablation probe, the evaluation rollout and DAgger collection."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.cli import main
from ast_robot.config import PolicyConfig
from ast_robot.envs.ablations import probe_episode
from ast_robot.evaluation import evaluate
from ast_robot.policies.policy import TwoStagePolicy, build_policy

ENV = "ast_robot/PickPlaceUR5e-v0"
DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2}


class Counting:
    """A still policy that counts its episode resets and the act() calls since the last one."""

    def __init__(self) -> None:
        self.resets, self.since_reset = 0, []

    def reset_episode(self) -> None:
        self.resets += 1
        self.since_reset.append(0)

    def act(self, obs) -> np.ndarray:
        self.since_reset[-1] += 1
        return np.zeros(4, dtype=np.float32)


def test_the_probe_and_the_rollout_reset_the_policy_before_each_episode():
    env = gym.make(ENV, config={**DEPLOY, "max_episode_steps": 3})
    policy = Counting()
    for seed in (0, 1):
        probe_episode(env, policy.act, seed, "as_given")
    evaluate(env, policy.act, 2)
    assert policy.resets == 4 and policy.since_reset == [
        3,
        3,
        3,
        3,
    ]  # each episode's acts after its own reset
    plain = np.zeros(4, dtype=np.float32)
    assert probe_episode(env, lambda obs: plain, 2, "as_given")["seed"] == 2  # null case: a bare function
    env.close()


def test_dagger_collection_resets_a_filtered_student_per_episode(tmp_path, monkeypatch):
    env = gym.make(ENV, config=DEPLOY)
    cfg = PolicyConfig(
        type="two_stage", aux_weight=1.0, n_keypoints=2, hidden_sizes=[16], estimate_filter=[0]
    )
    build_policy(cfg, env.observation_space, 4).save(tmp_path / "student")
    env.close()
    calls = []
    original = TwoStagePolicy.reset_episode
    monkeypatch.setattr(TwoStagePolicy, "reset_episode", lambda self: (calls.append(1), original(self))[1])
    args = [
        "demos",
        "collect",
        "--env",
        ENV,
        "--observation",
        "deploy",
        "--visual",
        "--objects",
        "2",
        "--pads",
        "2",
        "--episodes",
        "2",
        "--out",
        str(tmp_path / "demos"),
        "--policy",
        str(tmp_path / "student"),
        "--beta",
        "0",
    ]
    assert main(args) == 0
    assert len(calls) == 1 + 2  # the load's construction, then one per episode

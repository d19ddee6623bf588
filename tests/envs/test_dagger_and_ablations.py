"""DAgger collection (the student drives, the expert labels) and the input-ablation instrument (issue 20)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.cli import main
from ast_robot.envs import ablations
from ast_robot.envs.ablations import CONDITIONS, picked_object, probe_episode, summarize, swapped_instruction
from ast_robot.envs.dagger import dagger_episode, student_driver
from ast_robot.envs.demos import Episode, load_demos, read_meta, run_episode
from ast_robot.envs.experts import expert_for
from ast_robot.envs.instructions import COLOURS

ENV = "ast_robot/PickPlaceUR5e-v0"
DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2}
VISUAL_DR = {"preset": "default", "visual": {"enabled": True}}


@pytest.fixture(scope="module")
def env():
    e = gym.make(ENV, config=DEPLOY, randomization=VISUAL_DR)
    yield e
    e.close()


def _still(obs):
    return np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)  # stay put, gripper open


def test_probe_tells_a_policy_that_reads_its_instruction_from_one_that_does_not(env):
    expert = expert_for(env)  # reads the true target, never the instruction or the camera
    seeds = range(2)
    conditions = [c for c in CONDITIONS if c != "blank_instruction"]  # (blank_camera shows the same as it would)
    results = [probe_episode(env, expert.act, s, c, reset=expert.reset) for c in conditions for s in seeds]
    table = summarize(results)
    ok = {**dict.fromkeys(ablations.OUTCOMES, 0), "success": 2}
    assert table["as_given"] == {"episodes": 2, "successes": 2, "followed": 2, "picked_any": 2, "outcomes": ok}
    assert table["swapped"]["outcomes"]["wrong_cube"] == 2
    assert table["swapped"]["failed_reached"] == {"named": 0, "other": 2, "none": 0}  # it went for the other cube
    assert all(r["reached"] == [r["named"]] for r in results if r["condition"] == "as_given")
    # the instruction now names the other cube, the expert still carries the env's target: never "followed"
    assert table["swapped"]["followed"] == 0 and table["swapped"]["successes"] == 0
    assert table["swapped"]["picked_any"] == 2
    assert table["blank_camera"]["successes"] == 2  # a privileged controller needs no camera
    idle = summarize([probe_episode(env, _still, s, "blank_instruction") for s in seeds])["blank_instruction"]
    never = {**dict.fromkeys(ablations.OUTCOMES, 0), "never_lifted": 2}
    assert idle == {"episodes": 2, "successes": 0, "followed": 0, "picked_any": 0, "outcomes": never,
                    "failed_reached": {"named": 0, "other": 0, "none": 2}}  # null case: it reached nothing


def test_swapped_instruction_names_the_other_cube_and_keeps_the_pad(env):
    for seed in range(6):
        env.reset(seed=seed)
        u = env.unwrapped
        text, other = swapped_instruction(env)
        words = [w for w in text.split() if w in COLOURS]
        assert other != u.target_object
        assert words == [u.colour_names["objects"][other], u.colour_names["pads"][u.target_pad]]


def test_picked_object_prefers_lift_then_motion():
    assert picked_object(np.array([0.0, 0.05]), np.array([0.2, 0.0])) == 1  # lifted beats pushed
    assert picked_object(np.array([0.0, 0.001]), np.array([0.04, 0.0])) == 0  # pushed
    assert picked_object(np.array([0.001, 0.0]), np.array([0.01, 0.0])) is None  # nudged: nothing counts
    with pytest.raises(ValueError, match="condition 'mute'"):
        probe_episode(None, _still, 0, "mute")


def test_outcome_says_where_a_failed_episode_ended():
    lift, down, up = np.array([0.10, 0.0]), np.array([0.0, 0.0]), np.array([0.08, 0.0])
    assert ablations.outcome(0, 0, True, lift, down, 0.01, 0.05) == "success"
    assert ablations.outcome(0, 1, False, np.array([0.0, 0.1]), down, 0.3, 0.05) == "wrong_cube"
    assert ablations.outcome(0, None, False, np.array([0.01, 0.0]), down, 0.3, 0.05) == "never_lifted"
    assert ablations.outcome(0, 0, False, lift, up, 0.2, 0.05) == "carried_at_end"
    assert ablations.outcome(0, 0, False, lift, down, 0.07, 0.05) == "placed_off"
    assert ablations.outcome(0, 0, False, lift, down, 0.2, 0.05) == "dropped"


def test_dagger_episode_executes_the_student_and_records_the_expert(env):
    expert = expert_for(env)
    arrays = dagger_episode(env, expert, _still, seed=3)
    assert bool(arrays["relabelled"]) and not bool(arrays["success"])  # the idle student fails ...
    assert np.allclose(arrays["executed_action"], _still(None))  # ... it was what ran
    labels = arrays["action"]
    assert np.abs(labels[:, :3]).max() > 0.5  # ... and the expert's labels point at the cube all along
    clean = run_episode(env, expert_for(env), seed=3)
    np.testing.assert_allclose(labels[0], clean["action"][0])  # same first state, same label
    assert not bool(clean["relabelled"]) and "executed_action" not in clean
    from ast_robot.trainers.bc import DemoData

    data = DemoData.from_episodes([Episode(arrays), Episode(clean)], ["observation"])
    assert len(data) == len(labels) + len(clean["action"])  # the failed DAgger episode is kept, labels and all


def test_student_driver_mixes_by_beta():
    rng = np.random.default_rng(0)
    expert_action = np.ones(4, dtype=np.float32)
    drive = student_driver(_still, 0.5, rng)
    ran = [drive({}, expert_action)[0] for _ in range(400)]
    assert 0.4 < np.mean(ran) < 0.6  # half the steps run the expert's action
    assert np.allclose(student_driver(_still, 0.0, rng)({}, expert_action), _still(None))
    with pytest.raises(ValueError, match="beta must be in"):
        student_driver(_still, 1.5, rng)


def test_demos_collect_policy_appends_dagger_episodes(tmp_path):
    from ast_robot.config import PolicyConfig
    from ast_robot.policies.policy import build_policy

    e = gym.make(ENV, config=DEPLOY, randomization=VISUAL_DR)
    policy = build_policy(PolicyConfig(d_model=16, n_heads=2, n_layers=1, image_tokenizer="keypoints", n_keypoints=4),
                          e.observation_space, 4)  # fmt: skip
    e.close()
    policy.save(tmp_path / "student")
    out = tmp_path / "demos"
    common = ["demos", "collect", "--env", ENV, "--observation", "deploy", "--visual", "--objects", "2", "--pads", "2",
              "--episodes", "1", "--out", str(out)]  # fmt: skip
    assert main(common) == 0
    assert main([*common, "--seed", "7", "--policy", str(tmp_path / "student"), "--append"]) == 0
    meta = read_meta(out)
    assert meta["files"] == ["episode_00000.npz", "episode_00001.npz"] and meta["episodes"] == 2
    assert [c["policy"] for c in meta["collections"][1:]] == [str(tmp_path / "student")]
    first, second = load_demos(out, env_id=ENV)
    assert not first.relabelled and second.relabelled and int(second.arrays["seed"]) == 7

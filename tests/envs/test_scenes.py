"""Single-render scenes (ast_robot.envs.scenes): many cheap labelled scenes for the pixel perception (issue 20)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.envs.projection import image_coords
from ast_robot.envs.scenes import make_scenes, pose_scene, read_scenes, write_scenes

DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2}
VISUAL_DR = {"preset": "default", "visual": {"enabled": True}}


@pytest.fixture(scope="module")
def env():
    env = gym.make("ast_robot/PickPlaceUR5e-v0", config=DEPLOY, randomization=VISUAL_DR)
    yield env
    env.close()


def test_scenes_have_the_observation_and_consistent_labels(env):
    scenes = make_scenes(env, 12, seed=40)
    space = env.observation_space
    for key in ("observation", "camera", "instruction"):
        assert scenes[key].shape[1:] == space[key].shape, key
    u = env.unwrapped
    tcp = scenes["observation"][:, u.robot.n_joints * 2 : u.robot.n_joints * 2 + 3]
    moved = np.linalg.norm(tcp - tcp[0], axis=1).max()
    assert moved > 0.05  # the arm is posed anew in every scene, not left at home
    held = np.linalg.norm(scenes["aux_target"][:, :3] - tcp, axis=1) < 1e-3
    on_table = np.abs(scenes["aux_target"][:, 2] - u.half_size) < 0.01  # (half_size: the last scene's, +-10% DR)
    assert (held | on_table).all() and held.any() and on_table.any()
    # the TCP label is the projection of the true TCP (the observed one carries sensor noise), last scene's camera
    np.testing.assert_allclose(scenes["aux_pixels"][-1, 4:], image_coords(env, u.tcp_pos[None])[0], atol=1e-5)
    assert np.abs(tcp[-1] - u.tcp_pos).max() < 0.01


def test_same_seed_same_scene_other_seed_other_scene(env):
    a, b, c = pose_scene(env, 7), pose_scene(env, 7), pose_scene(env, 8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["camera"], c["camera"]) and not np.allclose(a["aux_target"], c["aux_target"])


def test_scenes_need_the_deploy_layout():
    env = gym.make("ast_robot/PickPlaceUR5e-v0")
    with pytest.raises(ValueError, match="deploy"):
        make_scenes(env, 2, seed=0)
    env.close()


def test_scenes_file_round_trip_and_refusal(env, tmp_path):
    scenes = make_scenes(env, 3, seed=0)
    path = write_scenes(tmp_path / "s.npz", scenes, {"robot": "ur5e"})
    back = read_scenes(path)
    for key in scenes:
        np.testing.assert_array_equal(back[key], scenes[key])
    np.savez(tmp_path / "other.npz", camera=scenes["camera"])
    with pytest.raises(ValueError, match="other.npz: not an ast_robot.scenes file"):
        read_scenes(tmp_path / "other.npz")


def test_scene_rows_train_the_perception_and_never_the_action(env):
    from ast_robot.config import PolicyConfig
    from ast_robot.policies.policy import ACTION_WEIGHT_KEY, build_policy
    from ast_robot.trainers.bc import DemoData

    scenes = make_scenes(env, 4, seed=3)
    demo = {k: scenes[k][:2] for k in ("observation", "camera", "instruction", "aux_target", "aux_pixels")}
    data = DemoData(demo, np.full((2, 4), 0.5, np.float32)).with_scenes(scenes)
    assert len(data) == 6 and data.obs[ACTION_WEIGHT_KEY].tolist() == [1, 1, 0, 0, 0, 0]
    cfg = PolicyConfig(type="two_stage", aux_weight=1.0, n_keypoints=4, hidden_sizes=[32, 32])
    torch.manual_seed(0)
    policy = build_policy(cfg, env.observation_space, 4).eval()
    batch = data.get(torch.arange(6))
    before = policy.per_sample_loss({**batch.inputs, "action": batch.targets})
    after = policy.per_sample_loss({**batch.inputs, "action": batch.targets + 0.7})  # another action label
    assert torch.equal(before[2:], after[2:])  # scene rows: the action does not count
    assert (before[:2] != after[:2]).all()  # demonstration rows: it does
    from ast_robot.trainers.bc import bc_loss

    assert bc_loss(policy, batch).groups.tolist() == [0, 0, 1, 1, 1, 1]  # scene rows: group 1 of the loss score
    with pytest.raises(ValueError, match="train.scenes: scenes lack"):
        DemoData({"observation": demo["observation"]}, np.zeros((2, 4), np.float32)).with_scenes(
            {"camera": scenes["camera"]})

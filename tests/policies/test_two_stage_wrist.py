"""The two-stage pixel student with a wrist camera (WristPerception; issue 20)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from ast_robot.config import PolicyConfig
from ast_robot.policies.encoders import WristPerception
from ast_robot.policies.policy import WRIST_PIXEL_KEY, build_policy, load_policy_weights
from tests.policies.test_two_stage import batch_of

TWO_STAGE = dict(type="two_stage", aux_weight=1.0, n_keypoints=4, hidden_sizes=[32, 32], pixel_weight=0.05)


def wrist_space() -> gym.spaces.Dict:
    space = gym.spaces.Dict({
        "observation": gym.spaces.Box(-1, 1, (22,), np.float64),
        "camera": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8),
        "instruction": gym.spaces.Box(0, 255, (16,), np.uint8),
        "wrist_camera": gym.spaces.Box(0, 255, (32, 48, 3), np.uint8),
    })  # fmt: skip
    space.seed(0)
    return space


def test_wrist_student_acts_and_survives_a_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    space = wrist_space()
    policy = build_policy(PolicyConfig(**TWO_STAGE), space, 4).eval()
    assert policy.wrist is not None
    obs = {k: space[k].sample() for k in space.spaces}
    action = policy.act(obs)
    assert action.shape == (4,) and np.isfinite(action).all()
    policy.save(tmp_path)
    again = load_policy_weights(tmp_path)
    np.testing.assert_array_equal(again.act(obs), action)
    with pytest.raises(ValueError, match="wrist_camera"):  # the layout's key is required, as every other
        policy.act({k: v for k, v in obs.items() if k != "wrist_camera"})


def test_the_fused_estimate_starts_near_the_scene_cameras_and_moves_with_the_wrist_image():
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**TWO_STAGE), wrist_space(), 4).eval()
    batch = batch_of(wrist_space(), 6)
    with torch.no_grad():
        fused, _, (wrist, _) = policy.perceive_all(batch)
        scene = policy.perception(batch["camera"], batch["instruction"], 10 * batch["observation"][:, -10:-7].float())[0]
        gate = (fused - scene) / (wrist - scene)
    torch.testing.assert_close(gate, torch.full_like(gate, torch.sigmoid(torch.tensor(-2.0)).item()), atol=1e-4, rtol=0)
    black = dict(batch, wrist_camera=torch.zeros_like(batch["wrist_camera"]))
    with torch.no_grad():
        assert not torch.allclose(policy.perceive(black)[0], fused)  # the wrist image is an input


def test_wrist_loss_counts_an_object_only_where_it_is_in_the_wrist_image():
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**TWO_STAGE), wrist_space(), 4)
    batch = batch_of(wrist_space(), 4)
    truth = policy.relative_truth(batch)
    estimate, xy = torch.zeros(4, 6), torch.zeros(4, 2, 2)
    inside = torch.tensor([[0.5, -0.5, 0.2, 0.1]]).expand(4, -1).clone()
    loss_in = policy._wrist_loss((estimate, xy), truth, inside)
    outside = inside.clone()
    outside[:2, :2] = torch.tensor([1.5, 0.0])  # the cube outside the image in samples 0, 1
    outside[2, :2] = float("nan")  # behind the camera in sample 2
    loss_out = policy._wrist_loss((estimate, xy), truth, outside)
    assert torch.isfinite(loss_out).all() and (loss_in > 0).all()
    assert (loss_out[:3] < loss_in[:3]).all() and loss_out[3] == loss_in[3]
    # only the place counts there: the cube's half of the loss is gone
    cube_part = loss_in[:3] - loss_out[:3]
    world = (estimate - truth).square().unflatten(-1, (2, 3)).mean(-1)[:3, 0]
    image = (policy.wrist_pixel_scale * (xy[:3, 0] - inside[:3, :2])).square().mean(-1)
    torch.testing.assert_close(cube_part, (world + 0.05 * image) / 2)


def test_a_training_step_with_wrist_targets_trains_the_wrist_perception():
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**TWO_STAGE), wrist_space(), 4).train()
    batch = batch_of(wrist_space(), 4)
    batch[WRIST_PIXEL_KEY] = torch.zeros(4, 4)
    policy.per_sample_loss(batch).mean().backward()
    assert policy.wrist.stem[0].weight.grad.abs().sum() > 0
    assert WristPerception((30, 30)).grid.shape == (15 * 15, 2)
    with pytest.raises(ValueError, match="even image size"):
        WristPerception((31, 30))


def test_the_wrist_estimate_reads_the_grippers_opening_and_the_scene_estimate_does_not():
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**TWO_STAGE), wrist_space(), 4).eval()
    batch = batch_of(wrist_space(), 3)
    wider = dict(batch, observation=batch["observation"].clone())
    wider["observation"][:, policy.width] += 0.04  # the fingers 4 cm further apart
    with torch.no_grad():
        _, xy, (wrist, _) = policy.perceive_all(batch)
        _, xy_wider, (wrist_wider, _) = policy.perceive_all(wider)
    assert policy.width == 22 - 4  # proprioception 2n + 10: the opening at 2n + 6
    assert not torch.allclose(wrist, wrist_wider)
    torch.testing.assert_close(xy, xy_wider)  # the scene camera's maps do not see it

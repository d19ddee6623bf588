"""The two-stage pixel student (issue 20): perception of the named cube and place, then a state policy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from ast_robot.config import PolicyConfig
from ast_robot.policies.encoders import ScenePerception
from ast_robot.policies.policy import AUX_KEY, PIXEL_KEY, build_policy, load_policy_weights

TWO_STAGE = dict(type="two_stage", aux_weight=1.0, n_keypoints=4, hidden_sizes=[32, 32])


def deploy_space(joints: int = 6) -> gym.spaces.Dict:
    """The deploy layout: proprioception (2n + 10), a 64x64 camera, the instruction bytes."""
    space = gym.spaces.Dict({
        "observation": gym.spaces.Box(-1, 1, (2 * joints + 10,), np.float64),
        "camera": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8),
        "instruction": gym.spaces.Box(0, 255, (16,), np.uint8),
    })  # fmt: skip
    space.seed(0)
    return space


def batch_of(space: gym.spaces.Dict, n: int) -> dict[str, torch.Tensor]:
    batch = {k: torch.as_tensor(np.stack([space[k].sample() for _ in range(n)])) for k in space.spaces}
    batch["action"] = torch.rand(n, 4) * 1.8 - 0.9
    batch[AUX_KEY] = torch.rand(n, 6)
    return batch


def test_named_heat_maps_find_the_pixels_that_match_each_query():
    net = ScenePerception((64, 64), 16, n_keypoints=2, channels=3)
    net.stem = torch.nn.MaxPool2d(2)  # features = the image's RGB at half resolution

    class RedAndBlue(torch.nn.Module):  # query 0 = "red", query 1 = "blue", whatever the text says
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[60.0, -30, -30, -30, -30, 60]]).expand(t.shape[0], -1)

    net.queries = RedAndBlue()
    with torch.no_grad():
        net.temperature.fill_(1.0)
    image = torch.zeros(2, 64, 64, 3, dtype=torch.uint8)
    image[:, 10, 40] = torch.tensor([255, 0, 0])  # red at (10, 40), blue at (50, 6): half-res (5, 20), (25, 3)
    image[:, 50, 6] = torch.tensor([0, 0, 255])
    image[1] = image[1].flip(0)  # the second image upside down: red at (53, 40), blue at (13, 6)
    with torch.no_grad():
        positions, named = net(image, torch.zeros(2, 16, dtype=torch.uint8), torch.zeros(2, 3))
    grid = torch.linspace(-1, 1, 32)
    expected = torch.tensor([[[grid[5], grid[20]], [grid[25], grid[3]]], [[grid[26], grid[20]], [grid[6], grid[3]]]])
    torch.testing.assert_close(named[:, :2], expected, atol=2e-3, rtol=0)
    assert positions.shape == (2, 6)


def test_two_stage_refuses_a_layout_it_cannot_serve():
    space = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (22,), np.float64)})
    with pytest.raises(ValueError, match="camera and instruction"):
        build_policy(PolicyConfig(**TWO_STAGE), space, 4)
    with pytest.raises(ValueError, match="aux_weight > 0"):
        build_policy(PolicyConfig(**{**TWO_STAGE, "aux_weight": 0.0}), deploy_space(), 4)


def test_action_stage_learns_from_the_truth_and_perception_only_from_its_targets():
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**TWO_STAGE, teacher_noise=0.0), deploy_space(), 4)
    batch = batch_of(deploy_space(), 8)
    policy.train()
    h = policy(batch, per_sample=True)[1]
    truth = policy.relative_truth(batch)
    torch.testing.assert_close(h, policy.embed(batch, truth))  # teacher forcing: the action stage saw the truth
    # the action loss alone sends no gradient into the perception
    loss = policy.head.loss(policy.embed(batch, truth), batch["action"]).mean()
    loss.backward()
    assert all(p.grad is None for p in policy.perception.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.net.parameters())
    # the perception's regression and the pixel supervision each add to the loss
    policy.zero_grad()
    base = policy.per_sample_loss({k: v for k, v in batch.items()})
    with_pixels = policy.per_sample_loss({**batch, PIXEL_KEY: torch.full((8, 4), 0.9)})
    assert (with_pixels > base).all()


def test_tcp_slice_and_relative_truth():
    policy = build_policy(PolicyConfig(**TWO_STAGE), deploy_space(joints=7), 4)
    obs = torch.zeros(1, 24, dtype=torch.float64)
    obs[0, 14:17] = torch.tensor([0.4, -0.1, 0.3])  # TCP of a 7-joint arm at [2n, 2n + 3)
    truth = policy.relative_truth({"observation": obs, AUX_KEY: torch.tensor([[0.5, 0.0, 0.02, 0.4, 0.2, 0.02]])})
    torch.testing.assert_close(truth, torch.tensor([[1.0, 1.0, -2.8, 0.0, 3.0, -2.8]]))


def test_two_stage_trains_and_round_trips(tmp_path):
    torch.manual_seed(0)
    space = deploy_space()
    policy = build_policy(PolicyConfig(**TWO_STAGE), space, 4)
    batch = batch_of(space, 16)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss, _ = policy(batch)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    obs = {k: space[k].sample() for k in space.spaces}
    policy.eval()
    action = policy.act(obs)
    assert action.shape == (4,) and np.isfinite(action).all()
    policy.save(tmp_path)
    np.testing.assert_array_equal(load_policy_weights(tmp_path).act(obs), action)
    policy.optimize_for_inference()
    np.testing.assert_allclose(policy.act(obs), action, atol=1e-5)


def test_pixel_scale_maps_the_normalized_grid_onto_half_resolution_pixels():
    from ast_robot.policies.policy import pixel_scale

    # soft-argmax coordinates run -1..1 across the centres of the h/2 cells of the half-resolution grid
    assert pixel_scale((64, 64)) == 15.5  # 32 cells: centres 31 cells apart, 15.5 per normalized unit
    assert pixel_scale((96, 96)) == 23.5

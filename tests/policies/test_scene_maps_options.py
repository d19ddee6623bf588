"""The scene perception's options (issue 20, session 12): full-resolution heat maps and the gripper prior.

The defaults must keep every existing checkpoint loading and acting exactly as before (the old layout and the old
function, checked against a copy of the old forward); each option is checked on its null case."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ast_robot.config import PolicyConfig
from ast_robot.policies import encoders
from ast_robot.policies.encoders import FullResolutionMaps, ScenePerception
from ast_robot.policies.policy import PIXEL_KEY, build_policy
from tests.policies.test_two_stage import TWO_STAGE, batch_of, deploy_space

OLD_KEYS = {"stem.0.weight", "stem.0.bias", "stem.2.weight", "stem.2.bias", "stem.4.weight", "stem.4.bias",
            "text.bytes.weight", "text.conv.weight", "text.conv.bias", "text.out.weight", "text.out.bias",
            "queries.weight", "queries.bias", "gripper", "free.weight", "free.bias", "temperature", "grid",
            "geometry.0.weight", "geometry.0.bias", "geometry.2.weight", "geometry.2.bias", "geometry.4.weight",
            "geometry.4.bias"}  # fmt: skip  (ScenePerception's state before the options)


def old_forward(net: ScenePerception, image, text, tcp):
    """ScenePerception.forward as it was before the options (session 11), verbatim but for `self`."""
    maps = net.stem(encoders.prepare_image(image))
    queries = net.queries(net.text(text)[:, 0]).unflatten(-1, (2, -1))
    queries = torch.cat([queries, net.gripper.expand(queries.shape[0], -1, -1)], 1)
    named = (queries @ maps.flatten(2)) * net.temperature
    free = net.free(nn.functional.gelu(maps)).flatten(2)
    logits = torch.cat([named, free], 1)
    xy = logits.softmax(-1) @ net.grid
    presence = (logits.logsumexp(-1) - logits.mean(-1)) * 0.1
    context = torch.cat([xy[:, 2:].flatten(1), presence, tcp], -1)
    out = net.geometry(context).unflatten(-1, (2, 9))
    offsets = (xy[:, :2] - xy[:, 2:3]).unsqueeze(-1)
    world = (out[..., :6].unflatten(-1, (3, 2)) @ offsets).squeeze(-1) + out[..., 6:]
    return world.flatten(1), xy[:, :3]


def inputs(n: int = 5, hw: int = 64):
    torch.manual_seed(1)
    return (torch.randint(0, 256, (n, hw, hw, 3), dtype=torch.uint8), torch.randint(0, 256, (n, 16), dtype=torch.uint8),
            torch.randn(n, 3))  # fmt: skip


def test_the_defaults_keep_the_old_state_layout_and_the_old_function_exactly():
    torch.manual_seed(0)
    net = ScenePerception((64, 64), 16, n_keypoints=4).eval()
    assert set(net.state_dict()) == OLD_KEYS  # an old checkpoint loads strictly, nothing is added
    with torch.no_grad():
        new, old = net(*inputs()), old_forward(net, *inputs())
    assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])
    cfg = PolicyConfig(**TWO_STAGE)
    assert (cfg.scene_resolution, cfg.gripper_prior) == ("half", 0.0)


def test_the_full_grid_has_the_half_grids_units():
    half, full = encoders._half_resolution_grid((64, 48)), encoders._full_resolution_grid((64, 48))
    blocks = full.reshape(32, 2, 24, 2, 2).mean((1, 3)).reshape(-1, 2)  # each 2x2 block's centre
    torch.testing.assert_close(blocks, half)


def test_full_maps_place_a_pixel_finer_than_a_half_resolution_cell():
    net = ScenePerception((64, 64), 16, n_keypoints=2, channels=3, resolution="full")
    class Nothing(nn.Module):  # no half-resolution features: the full-resolution image only
        def forward(self, x):
            return torch.zeros(x.shape[0], 3, 32, 32)

    net.stem = Nothing()
    net.full = FullResolutionMaps((64, 64), 3, image_channels=3)
    with torch.no_grad():
        net.full.image.weight.zero_()
        net.full.image.bias.zero_()
        net.full.image.weight[:, :, 1, 1] = torch.eye(3)  # the image itself
        net.full.merge.weight.copy_(torch.eye(3))
        net.temperature.fill_(1.0)

    class Red(nn.Module):
        def forward(self, t):
            return torch.tensor([[200.0, -100, -100] * 2]).expand(t.shape[0], -1)

    net.queries = Red()
    image = torch.zeros(2, 64, 64, 3, dtype=torch.uint8)
    image[0, 10, 40] = torch.tensor([255, 0, 0])  # rows 10 and 11 share half-resolution cell 5
    image[1, 11, 41] = torch.tensor([255, 0, 0])
    with torch.no_grad():
        _, xy = net(image, torch.zeros(2, 16, dtype=torch.uint8), torch.zeros(2, 3))
    # pixel j's centre (j + 0.5) in envs/projection.py's normalization: -1 + (j + 0.5 - 1) / (64 / 2 - 1)
    expected = torch.tensor([[-1 + 9.5 / 31, -1 + 39.5 / 31], [-1 + 10.5 / 31, -1 + 40.5 / 31]])
    torch.testing.assert_close(xy[:, 0], expected, atol=2e-3, rtol=0)


def test_an_extended_full_resolution_student_starts_near_its_half_resolution_self():
    torch.manual_seed(0)
    space = deploy_space()
    half = build_policy(PolicyConfig(**TWO_STAGE), space, 4).eval()
    full = build_policy(PolicyConfig(**TWO_STAGE, scene_resolution="full"), space, 4).eval()
    fresh = full.load_extended(half.state_dict())
    assert fresh == ["perception.full.grid", "perception.full.image.bias", "perception.full.image.weight",
                     "perception.full.merge.bias", "perception.full.merge.weight"]  # fmt: skip
    batch = batch_of(space, 8)
    with torch.no_grad():
        (a, xa), (b, xb) = half.perceive(batch), full.perceive(batch)
    # bilinear upsampling is linear: the named maps' logits are the upsampled old ones; positions agree to a
    # small part of a half-resolution cell (2 / 31 here)
    assert (xa - xb).abs().max() < 0.2 * 2 / 31
    assert (a - b).abs().max() < 0.1 * a.abs().max()


def test_load_extended_refuses_weights_that_have_no_place():
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**TWO_STAGE), deploy_space(), 4)
    state = dict(policy.state_dict())
    state["perception.gripper"] = torch.zeros(1, 1, 7)
    with pytest.raises(ValueError, match="perception.gripper"):
        policy.load_extended(state, "old.pt")


def test_the_gripper_prior_pulls_the_gripper_map_to_its_centre_and_a_flat_prior_does_nothing():
    torch.manual_seed(0)
    free = ScenePerception((64, 64), 16, n_keypoints=4).eval()
    args = inputs()
    for sigma, close in ((1e6, True), (0.5, False)):
        net = ScenePerception((64, 64), 16, n_keypoints=4, gripper_prior=sigma).eval()
        assert net.load_state_dict(free.state_dict(), strict=False).unexpected_keys == []
        with torch.no_grad():
            net.prior[-1].weight.zero_()
            net.prior[-1].bias.copy_(torch.tensor([0.5, -0.25]))  # the centre, whatever the inputs
            (world, xy), (world0, xy0) = net(*args), free(*args)
        assert xy.shape == (5, 4, 2)  # the cube, the pad, the gripper, the prior's centre
        torch.testing.assert_close(xy[:, 3], torch.tensor([0.5, -0.25]).expand(5, -1))
        torch.testing.assert_close(xy[:, :2], xy0[:, :2])  # the objects' maps are untouched
        if close:  # a flat prior: the old function
            torch.testing.assert_close(world, world0)
            torch.testing.assert_close(xy[:, 2], xy0[:, 2])
        else:  # a sharp one: the gripper's position is the centre (to a part of a cell)
            assert (xy[:, 2] - torch.tensor([0.5, -0.25])).abs().max() < 0.5 / 15.5


def test_the_prior_centre_learns_the_tcps_pixels_and_the_maps_still_get_gradients():
    torch.manual_seed(0)
    space = deploy_space()
    policy = build_policy(PolicyConfig(**TWO_STAGE, scene_resolution="full", gripper_prior=2.0), space, 4)
    batch = batch_of(space, 6)
    batch[PIXEL_KEY] = torch.rand(6, 6) * 2 - 1  # cube, pad, TCP
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    for _ in range(2):  # the merge starts at zero: the full-resolution conv gets gradients from the 2nd step on
        optimizer.zero_grad()
        policy(batch)[0].backward()
        optimizer.step()
    for name in ("perception.prior.4.weight", "perception.full.merge.weight", "perception.full.image.weight",
                 "perception.gripper", "perception.stem.0.weight"):  # fmt: skip
        grad = policy.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    without = dict(batch)
    del without[PIXEL_KEY]
    policy.zero_grad()
    policy(without)[0].backward()  # no pixel targets: nothing trains the centre (only the world loss through it)
    assert policy.get_parameter("perception.prior.4.weight").grad is not None

"""The pixel student's tokenizers (issue 20): keypoint image tokens, the pooled instruction, FiLM, the aux loss."""

from __future__ import annotations

import pytest
import torch

from ast_robot.config import PolicyConfig
from ast_robot.policies.encoders import KeypointImageTokenizer, PooledInstructionTokenizer
from ast_robot.policies.policy import AUX_KEY, build_policy, load_policy_weights
from tests.policies.conftest import make_batch

PIXEL = dict(image_tokenizer="keypoints", n_keypoints=8, instruction_tokenizer="pooled", instruction_film=True,
             aux_weight=1.0)  # fmt: skip


def test_keypoint_is_the_soft_argmax_of_its_map():
    tok = KeypointImageTokenizer(16, (64, 64), n_keypoints=2)
    h, w = 32, 32

    class Peaked(torch.nn.Module):  # channel 0 peaks at (row 5, col 20), channel 1 at (30, 2)
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.full((x.shape[0], 2, h, w), -50.0)
            out[:, 0, 5, 20] = 50.0
            out[:, 1, 30, 2] = 50.0
            return out

    tok.head = Peaked()
    tok.point = torch.nn.Identity()  # the token is (row, col, presence) in [-1, 1] itself
    tok.ids = torch.nn.Parameter(torch.zeros(2, 3))
    xy = tok(torch.zeros(1, 64, 64, 3, dtype=torch.uint8))[0, :, :2]
    grid = torch.linspace(-1, 1, 32)
    torch.testing.assert_close(xy, torch.stack([torch.stack([grid[5], grid[20]]), torch.stack([grid[30], grid[2]])]))


def test_pooled_instruction_tells_which_colour_is_the_cube_and_survives_a_blank():
    torch.manual_seed(0)
    tok = PooledInstructionTokenizer(8, 40)

    def text(t: bytes) -> torch.Tensor:
        out = torch.zeros(1, 40, dtype=torch.uint8)
        out[0, : len(t)] = torch.tensor(list(t))
        return out

    # the same bytes in another order: a bag of bytes could not tell these apart, the 9-byte windows can
    red_cube, blue_cube = text(b"put the red block on the blue pad"), text(b"put the blue block on the red pad")
    assert (tok(red_cube) - tok(blue_cube)).abs().max() > 1e-3
    blank = tok(torch.zeros(2, 40, dtype=torch.uint8))  # every position padding: no -inf, no NaN
    assert blank.shape == (2, 1, 8) and torch.isfinite(blank).all()


def test_pixel_policy_trains_round_trips_and_film_starts_neutral(tmp_path, space):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**PIXEL), space, 4)
    assert policy.tokenizer.num_tokens() == 2 + 3 + 1 + 8  # summary, 3 vectors, 1 instruction, 8 keypoints
    batch = make_batch(space, 6, 4)
    plain = policy.per_sample_loss(batch)
    with_aux = policy.per_sample_loss({**batch, AUX_KEY: torch.ones(6, 6)})
    assert (with_aux > plain).all()  # the auxiliary regression counts only when its targets are in the batch
    loss, _ = policy({**batch, AUX_KEY: torch.ones(6, 6)})
    loss.backward()
    assert policy.tokenizer.film.weight.grad.abs().sum() > 0  # the instruction reaches the image stem
    obs = {k: v[0].numpy() for k, v in batch.items() if k in space.spaces}
    policy.save(tmp_path / "p")
    torch.testing.assert_close(torch.as_tensor(load_policy_weights(tmp_path / "p").act(obs)), torch.as_tensor(policy.act(obs)))


def test_film_needs_keypoints_and_an_instruction(space):
    with pytest.raises(ValueError, match="instruction_film needs image_tokenizer 'keypoints'"):
        build_policy(PolicyConfig(instruction_film=True), space, 4)

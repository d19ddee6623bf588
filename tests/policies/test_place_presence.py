"""The place median's gate on the scene pad map's confidence (``policy.place_presence``, issue 20): off by default
with the old outputs bit for bit; a low-confidence frame is left out; all frames low (or NaN) -> exactly what
``estimate_filter`` alone gives, never NaN; the student hands the filter its own pad presence."""

from __future__ import annotations

import math

import pytest
import torch

from ast_robot.config import PolicyConfig
from ast_robot.policies.estimate_filter import EstimateFilter
from ast_robot.policies.policy import AUX_SCALE, build_policy
from tests.policies.test_estimate_filter import observations
from tests.policies.test_two_stage import batch_of
from tests.policies.test_two_stage_wrist import TWO_STAGE, wrist_space


def student(seed: int = 0, **options):
    torch.manual_seed(seed)
    return build_policy(PolicyConfig(**TWO_STAGE, **options), wrist_space(), 4).eval()


def test_off_by_default_every_output_is_the_old_one_bit_for_bit():
    """Default place_presence (0): the config, the scene perception's outputs, perceive_all, the training loss and
    act() (unfiltered and with estimate_filter [10]) are exactly those without the option."""
    assert PolicyConfig(**TWO_STAGE).place_presence == 0.0
    plain, gated_off = student(), student(place_presence=0.0)
    batch = batch_of(wrist_space(), 5)
    tcp = AUX_SCALE * batch["observation"][:, plain.tcp].float()
    with torch.no_grad():
        world, xy = plain.perception(batch["camera"], batch["instruction"], tcp)
        world2, xy2, presence = plain.perception(batch["camera"], batch["instruction"], tcp, with_presence=True)
        assert torch.equal(world, world2) and torch.equal(xy, xy2) and presence.shape == (5, 3)
        a, b = plain.perceive_all(batch), gated_off.perceive_all(batch)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[2][0], b[2][0])
    train = dict(batch, action=torch.zeros(5, 4))
    plain.train(), gated_off.train()
    torch.manual_seed(1)
    loss_a = plain(train, per_sample=True)[0]
    torch.manual_seed(1)
    loss_b = gated_off(train, per_sample=True)[0]
    assert torch.equal(loss_a, loss_b)
    plain.eval(), gated_off.eval()
    filtered, filtered_off = student(estimate_filter=[10]), student(estimate_filter=[10], place_presence=0.0)
    for obs in observations(6, seed=3):
        assert torch.equal(torch.as_tensor(plain.act(obs)), torch.as_tensor(gated_off.act(obs)))
        assert torch.equal(torch.as_tensor(filtered.act(obs)), torch.as_tensor(filtered_off.act(obs)))


def _frames(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, 6, generator=g), torch.randn(1, 3, generator=g)) for _ in range(n)]


@pytest.mark.parametrize("presence", [0.5, float("nan"), 0.0])
def test_all_frames_low_confidence_falls_back_to_the_filter_alone_never_nan(presence):
    """The hostile case: no frame passes the gate (low, NaN or zero presence): each output is [10]'s exactly."""
    gated, alone = EstimateFilter(10, 0, presence_min=1.6), EstimateFilter(10, 0)
    for est, tcp in _frames(25):
        out = gated(est, tcp, 0.08, presence)
        assert torch.equal(out, alone(est, tcp, 0.08)) and not out.isnan().any()


def test_a_low_confidence_frame_is_left_out_of_the_place_median():
    """A wrong blob (the place 3 dm off) on three of five frames outvotes the median of [5] alone; with the gate
    its frames (presence 1.2 < 1.6) are left out and the place stays the confident frames' answer."""
    place = torch.tensor([4.0, 1.0, 0.2])
    gated, alone = EstimateFilter(5, 0, presence_min=1.6), EstimateFilter(5, 0)
    for k in range(5):
        tcp = torch.tensor([[3.0 + 0.1 * k, -1.0, 1.5]])
        wrong = k >= 2
        est = torch.cat([torch.zeros(3), place - tcp[0] + (torch.tensor([3.0, 0, 0]) if wrong else 0)])[None]
        out, out_alone = gated(est, tcp, 0.08, 1.2 if wrong else 2.1), alone(est, tcp, 0.08)
    torch.testing.assert_close(out[0, 3:], place - tcp[0])
    assert (out_alone[0, 3:] - (place - tcp[0])).abs().max() > 2.9  # without the gate the wrong blob wins


def test_the_gate_never_reaches_behind_the_window():
    """A confident frame older than the last place_frames does not come back: low frames only -> their median."""
    f = EstimateFilter(3, 0, presence_min=1.6)
    tcp = torch.zeros(1, 3)
    f(torch.tensor([[0.0, 0, 0, 9.0, 9.0, 0]]), tcp, 0.08, 3.0)  # confident, then pushed out of the window
    for _ in range(3):
        out = f(torch.tensor([[0.0, 0, 0, 1.0, 1.0, 0]]), tcp, 0.08, 1.0)
    torch.testing.assert_close(out[0, 3:], torch.tensor([1.0, 1.0, 0.0]))


def test_the_filter_needs_the_presence_and_bad_settings_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="needs each frame's pad presence"):
        EstimateFilter(10, 0, presence_min=1.6)(torch.zeros(1, 6), torch.zeros(1, 3), 0.08)
    with pytest.raises(ValueError, match="presence_min >= 0"):
        EstimateFilter(10, 0, presence_min=-1.0)
    with pytest.raises(ValueError, match=r"policy.place_presence \(1.6\) gates the frames of policy.estimate_filter"):
        PolicyConfig(**TWO_STAGE, place_presence=1.6)
    with pytest.raises(ValueError, match="place_presence"):
        PolicyConfig(**TWO_STAGE, estimate_filter=[10], place_presence=-0.5)


def test_the_student_hands_the_filter_its_own_scene_pad_presence():
    policy, seen = student(estimate_filter=[10], place_presence=1.6), []
    real = policy.__dict__["_filter"]

    def spy(estimate, tcp, opening, presence=None):
        seen.append((estimate.clone(), presence))
        return real(estimate, tcp, opening, presence)

    policy.__dict__["_filter"] = spy
    obs = observations(1, seed=5)[0]
    action = policy.act(obs)
    batch = {k: torch.as_tensor(v)[None] for k, v in obs.items()}
    tcp = AUX_SCALE * batch["observation"][:, policy.tcp].float()
    with torch.no_grad():
        _, _, presence = policy.perception(batch["camera"], batch["instruction"], tcp, with_presence=True)
        assert torch.equal(seen[0][0], policy.perceive(batch)[0])
    assert seen[0][1] == pytest.approx(float(presence[0, 1]), abs=0) and math.isfinite(seen[0][1])
    assert action.shape == (4,)

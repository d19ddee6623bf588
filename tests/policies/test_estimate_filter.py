"""The `two_stage` student's per-episode estimate filter (``policy.estimate_filter``, issue 20): off by default with
the old act() exactly; on a static scene it changes nothing; it drops a tail frame; it resets at each episode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ast_robot.config import PolicyConfig
from ast_robot.policies.estimate_filter import CLOSED_M, EstimateFilter
from ast_robot.policies.policy import AUX_SCALE, PolicyBase, build_policy, load_policy_weights
from tests.policies.test_two_stage_wrist import TWO_STAGE, wrist_space


def student(estimate_filter: list[int] | None = None, seed: int = 0):
    torch.manual_seed(seed)
    cfg = PolicyConfig(
        **TWO_STAGE, **({} if estimate_filter is None else {"estimate_filter": estimate_filter})
    )
    return build_policy(cfg, wrist_space(), 4).eval()


def observations(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    space = wrist_space()
    space.seed(seed)
    return [{k: space[k].sample() for k in space.spaces} for _ in range(n)]


def test_off_by_default_act_and_state_are_the_old_ones():
    """No filter: act() IS PolicyBase.act (head.mode(embed(obs)) on the perceived estimate), the state dict holds
    nothing new, and a filtered student of the same weights has the same state dict."""
    plain, filtered = student(), student([0, 5])
    assert plain.cfg.estimate_filter == [] and plain.__dict__["_filter"] is None
    assert list(plain.state_dict()) == list(filtered.state_dict())
    for k, v in plain.state_dict().items():
        assert torch.equal(v, filtered.state_dict()[k]), k
    for obs in observations(4, seed=1):
        batch = {k: torch.as_tensor(v)[None] for k, v in obs.items()}
        with torch.no_grad():
            old = plain.head.mode(plain.embed(batch))[0].numpy()  # the old act's function, op for op
        assert torch.equal(torch.as_tensor(plain.act(obs)), torch.as_tensor(old))
        assert torch.equal(torch.as_tensor(plain.act(obs)), torch.as_tensor(PolicyBase.act(plain, obs)))


@pytest.mark.parametrize("frames", [[0], [10], [0, 5], [3, 3]])
def test_on_a_static_scene_the_filter_changes_nothing(frames):
    """The same frame again and again (nothing moves): every filtered action is the unfiltered one."""
    plain, filtered = student(), student(frames)
    obs = observations(1, seed=2)[0]
    for _ in range(12):
        np.testing.assert_allclose(filtered.act(obs), plain.act(obs), rtol=0, atol=1e-5)


def test_each_episode_starts_afresh():
    """After reset_episode() the first action on a new table is a fresh student's: nothing of the last table's
    estimates is inherited (without the reset it is: the test can see a leak)."""
    a, b = observations(6, seed=3), observations(1, seed=4)[0]
    filtered, fresh = student([0, 5]), student([0, 5])
    for obs in a:
        filtered.act(obs)
    leaked = filtered.act(b)
    assert not np.allclose(leaked, fresh.act(b), atol=1e-5)  # the last table's frames moved it
    for obs in a:
        filtered.act(obs)
    filtered.reset_episode()
    fresh.reset_episode()
    np.testing.assert_allclose(filtered.act(b), fresh.act(b), rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        filtered.act(b), student().act(b), rtol=0, atol=1e-5
    )  # one frame: the estimate


def test_a_saved_filtered_student_loads_with_its_filter(tmp_path):
    policy = student([10])
    policy.save(tmp_path)
    again = load_policy_weights(tmp_path)
    assert again.cfg.estimate_filter == [10] and isinstance(again.__dict__["_filter"], EstimateFilter)


def test_the_place_median_keeps_the_good_frames_through_a_tail():
    """The pad never moves: one frame whose place estimate is 20 cm off (the arm hides the pad) is outvoted."""
    f = EstimateFilter(place_frames=0, cube_frames=0)
    place = torch.tensor([4.0, 1.0, 0.2])  # world, dm
    for k in range(7):
        tcp = torch.tensor([[3.0 + 0.1 * k, -1.0, 1.5]])
        est = torch.cat([torch.tensor([0.5, 0.5, -1.0]), place - tcp[0]])[None]
        if k == 5:
            est[0, 3] += 2.0
        out = f(est, tcp, 0.08)
        torch.testing.assert_close(out[0, 3:], place - tcp[0])
        torch.testing.assert_close(out[0, :3], est[0, :3])  # cube_frames 0: the cube as estimated


def test_the_cube_median_rides_the_tcp_while_held_and_follows_the_estimate_while_open():
    f = EstimateFilter(place_frames=1, cube_frames=5)
    cube = torch.tensor([5.0, 0.0, 0.2])  # world dm, resting
    for k in range(
        4
    ):  # open: the cube as estimated (the wrist refines it on the approach), a tail frame included
        tcp = torch.tensor([[4.0 + 0.15 * k, 0.0, 1.0 - 0.1 * k]])
        est = torch.cat([cube - tcp[0], torch.zeros(3)])[None]
        if k == 2:
            est[0, 1] += 1.5
        torch.testing.assert_close(f(est, tcp, 0.08)[0, :3], est[0, :3])
    held = torch.tensor([0.0, 0.05, -0.1])  # closed: the cube rides in the hand, the TCP carries it away
    for k in range(6):
        tcp = torch.tensor([[5.0 - 0.3 * k, 0.5 * k, 0.5 + 0.1 * k]])
        est = held[None].repeat(1, 2)
        if k == 4:
            est[0, 0] += 1.0  # a tail frame: outvoted
        torch.testing.assert_close(f(est, tcp, CLOSED_M - 0.02)[0, :3], held)
    tcp = torch.tensor([[3.0, 2.0, 1.0]])
    opened = torch.tensor([[0.3, -0.2, -0.4, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(f(opened, tcp, 0.08)[0, :3], opened[0, :3])  # released: as estimated at once
    regrasp = torch.tensor([[0.1, 0.1, -0.05, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(
        f(regrasp, tcp, 0.04)[0, :3], regrasp[0, :3]
    )  # a new grasp: the last hold forgotten


def test_bad_filter_settings_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"policy.estimate_filter: expected \[\], \[place_frames\]"):
        PolicyConfig(**TWO_STAGE, estimate_filter=[1, 2, 3])
    with pytest.raises(ValueError, match="frames >= 0"):
        PolicyConfig(**TWO_STAGE, estimate_filter=[-1])


def test_the_filter_uses_the_observed_tcp_and_opening():
    """The student hands the filter the TCP (dm) and the opening (m) of the observation it acts on."""
    policy, seen = student([0]), []
    real = policy.__dict__["_filter"]

    def spy(estimate, tcp, opening):
        seen.append((tcp.clone(), opening))
        return real(estimate, tcp, opening)

    policy.__dict__["_filter"] = spy
    obs = observations(1, seed=5)[0]
    policy.act(obs)
    torch.testing.assert_close(
        seen[0][0][0], AUX_SCALE * torch.as_tensor(obs["observation"][policy.tcp]).float()
    )
    assert seen[0][1] == pytest.approx(float(obs["observation"][policy.width]))

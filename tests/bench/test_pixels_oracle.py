"""bench/pixels_oracle.py's instrument: with a perception that returns the truth, the two modes are one (issue 20)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.pixels_oracle import MODES, _positions, measure, oracle_act, truth_dm

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "experiments" / "pickplace_fr3_pixels_bc.yaml"


def _student_and_env():
    """An untrained two-stage FR3 student with the wrist camera and its env (the pipeline config, 6-step episodes)."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import build_policy

    cfg = load_config(CONFIG, ["env.max_episode_steps=6", "deploy.episode_timeout_s=0.24", "env.wrist_camera=true"])
    env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
    policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0])).eval()
    return policy, env


def test_a_perception_that_returns_the_truth_has_no_error_and_no_gap():
    policy, env = _student_and_env()
    seeds = [2_000_000, 2_000_001]
    untrained = measure(policy, env, "estimate", seeds)
    assert untrained["cube_xy_err_near_mm"] is None or untrained["cube_xy_err_near_mm"] > 0  # it sees a gap when there is one
    assert untrained["place_xy_err_mm"] > 1.0
    policy.perceive = lambda batch: (truth_dm(env, batch["observation"][0, policy.tcp].float()), None)  # null case
    policy.perceive_all = lambda batch: (None, None, (policy.perceive(batch)[0], None))  # the wrist's too
    as_deployed = measure(policy, env, "estimate", seeds)
    for mode in MODES[1:]:  # every oracle mode is the deployed one when the estimate is the truth
        oracle = measure(policy, env, mode, seeds)
        assert as_deployed["place_xy_err_mm"] == 0.0 and oracle["place_xy_err_mm"] == 0.0
        for key in ("success", "outcomes", "failed_seeds"):
            assert as_deployed[key] == oracle[key]
        np.testing.assert_array_equal(as_deployed["ci"], oracle["ci"])
    actions = {}
    for mode in MODES:  # step by step, the same actions
        act, obs, actions[mode] = oracle_act(policy, env, mode, []), env.reset(seed=seeds[0])[0], []
        for _ in range(6):
            actions[mode].append(act(obs))
            obs, *_ = env.step(actions[mode][-1])
    for mode in MODES[1:]:
        np.testing.assert_array_equal(actions["estimate"], actions[mode])
    env.close()


def test_the_split_modes_take_the_truth_for_one_object_and_the_estimate_for_the_other():
    import pytest
    import torch

    estimate, truth = torch.arange(6.0)[None], -torch.arange(6.0)[None] - 1
    assert torch.equal(_positions("estimate", estimate, truth), estimate)
    assert torch.equal(_positions("true", estimate, truth), truth)
    assert torch.equal(_positions("true_cube", estimate, truth), torch.cat([truth[:, :3], estimate[:, 3:]], -1))
    assert torch.equal(_positions("true_place", estimate, truth), torch.cat([estimate[:, :3], truth[:, 3:]], -1))
    with pytest.raises(ValueError, match=r"oracle mode 'truth': choose from"):
        _positions("truth", estimate, truth)


def test_wrist_seen_takes_the_wrist_estimate_exactly_for_the_objects_inside_the_wrist_image():
    import torch

    from ast_robot.envs.projection import image_coords
    from ast_robot.envs.wrist import WRIST_CAMERA
    from bench.pixels_oracle import _wrist_seen

    policy, env = _student_and_env()
    u = env.unwrapped
    fused, wrist = torch.zeros(1, 6), torch.arange(1.0, 7.0)[None]
    policy.perceive_all = lambda batch: (fused, None, (wrist, None))
    kinds = set()
    for seed in range(6):
        env.reset(seed=seed)
        points = np.stack([u.object_pos(u.target_object), u.goal])
        seen = (np.abs(image_coords(env, points, WRIST_CAMERA, u.cfg.wrist_camera_size)) <= 1).all(-1)  # (cube, place)
        got = _wrist_seen(policy, env, {}, fused)[0].numpy()
        expected = np.concatenate([wrist[0, :3].numpy() if seen[0] else np.zeros(3), wrist[0, 3:].numpy() if seen[1] else np.zeros(3)])
        np.testing.assert_array_equal(got, expected)
        kinds.add(tuple(seen))
    env.close()
    assert {(True, True), (False, True), (True, False)} <= kinds  # seeds 0-5 at reset: both, place only, cube only


def test_the_filtered_mode_is_the_estimate_when_the_estimate_is_the_truth():
    """Null case of `filtered`: with a perception that returns the truth, the per-episode median of a place that
    never moves is that place: the same outcomes as deployed, what the action stage saw has no place error."""
    from bench.pixels_oracle import FILTERED

    policy, env = _student_and_env()
    seeds = [2_000_000, 2_000_001]
    policy.perceive = lambda batch: (truth_dm(env, batch["observation"][0, policy.tcp].float()), None)
    as_deployed, filtered = measure(policy, env, "estimate", seeds), measure(policy, env, FILTERED, seeds, (0, 0))
    for key in ("success", "outcomes", "failed_seeds"):
        assert as_deployed[key] == filtered[key]
    assert filtered["acted_place_xy_err_mm"] < 1e-3 and filtered["place_xy_err_mm"] == 0.0
    env.close()


def test_the_filtered_mode_acts_on_the_filters_output_and_resets_per_episode():
    from ast_robot.policies.estimate_filter import EstimateFilter
    from bench.pixels_oracle import FILTERED

    policy, env = _student_and_env()
    calls = []

    class Spy(EstimateFilter):
        def __call__(self, estimate, tcp, opening):
            calls.append(len(self._place))  # frames it holds before this one
            return super().__call__(estimate, tcp, opening)

    filt = Spy(0, 0)
    act = oracle_act(policy, env, FILTERED, [], filt)
    for seed in (2_000_000, 2_000_001):
        obs, _ = env.reset(seed=seed)
        filt.reset()
        for _ in range(3):
            obs, *_ = env.step(act(obs))
    assert calls == [0, 1, 2, 0, 1, 2]
    env.close()

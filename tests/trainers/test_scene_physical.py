"""Scene rows under physical feedback (issue 21): a loop round that trains the pixel student on its scenes and on
demonstrations weighted by the gap analyzer. The scene rows weigh as the steps' mean (trainers/bc.
scene_physical_weight), so the feedback re-ranks steps without moving the gate between steps and scenes; the
bench instrument that counts the gate's kept rows per kind (bench/sim2real_pixels_physical_scenes.py) is checked on
its null case (every step weighing the same: the design keeps exactly the rows no feedback keeps)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ast_robot.config import load_config
from ast_robot.envs import make_env
from ast_robot.trainers.bc import DemoData, scene_physical_weight

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
SMALL = ["env.camera_size=[32,32]", "env.wrist_camera=true", "env.wrist_camera_size=[32,32]", "seed=0",
         "policy.hidden_sizes=[32,32]", "policy.n_keypoints=4", "train.batch_size=16"]  # fmt: skip
INPUTS = ("observation", "camera", "wrist_camera", "instruction", "aux_target", "aux_pixels", "aux_wrist_pixels")


@pytest.fixture(scope="module")
def small():
    from ast_robot.envs.scenes import make_scenes
    from bench.sim2real_pixels_physical_scenes import GATED

    cfg = load_config(CONFIG, [*SMALL, *GATED, "gate.mode=top_fraction"])
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed)
    rows = make_scenes(env, 24, seed=3)  # real renders: 12 serve as steps, 12 as scenes
    yield cfg, env, rows
    env.close()


def _data(rows: dict[str, np.ndarray], physical: np.ndarray | None) -> DemoData:
    steps = {k: v[:12] for k, v in rows.items() if k in INPUTS}
    actions = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    return DemoData(steps, actions, physical).with_scenes({k: v[12:] for k, v in rows.items() if k in INPUTS})


def test_scene_rows_weigh_as_the_mean_step_and_the_steps_keep_their_episode_s_weight():
    from test_scene_pool import _episode, _scenes_like

    rng = np.random.default_rng(0)
    episodes = [_episode(rng, 3), _episode(rng, 5), _episode(rng, 2)]
    for i, ep in enumerate(episodes):
        ep.arrays["dr_values"] = np.asarray([[0.2, 0.6, 1.0][i]])  # its friction draw
    keys, scenes = ["observation", "camera", "wrist_camera", "instruction"], _scenes_like(rng, 4)
    weight = lambda dr: dr["friction"] / 2  # noqa: E731  (the analyzer's weights: a function of the draws)
    built = DemoData.from_episodes(episodes, keys, physical_weight=weight, aux=True, scenes=scenes)
    steps = [0.1] * 3 + [0.3] * 5 + [0.5] * 2
    assert built.physical.tolist() == pytest.approx(steps + [np.mean(steps)] * 4)
    added = DemoData.from_episodes(episodes, keys, physical_weight=weight, aux=True).with_scenes(scenes)
    assert torch.equal(added.physical, built.physical)  # the two ways of adding scenes agree
    # null case: no feedback, no physical column (the gate's physical component stays silent)
    assert DemoData.from_episodes(episodes, keys, aux=True, scenes=scenes).physical is None
    assert scene_physical_weight(np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match=r"^with_scenes: these data already hold 4 scene rows after 10 steps"):
        added.with_scenes(scenes)


def test_gate_keeps_the_same_rows_with_uniform_weights_and_more_scenes_with_scene_weight_one(small):
    from ast_robot.policies.policy import build_policy
    from bench.sim2real_pixels_physical_scenes import arm_data, kept_counts

    cfg, env, rows = small
    data = _data(rows, np.full(12, 0.3, np.float32))
    weights = data.physical.numpy().copy()
    assert weights.tolist() == pytest.approx([0.3] * 24)  # uniform steps: scenes at their mean, 0.3
    kept = {}
    for arm in ("none", "mean", "one"):
        torch.manual_seed(0)
        policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0]))
        policy.normalizer.fit({k: v[:12] for k, v in data.obs.items()})
        kept[arm] = kept_counts(cfg, policy, arm_data(data, weights, arm), steps=6)
    # null case: a constant added to every row's score changes no top-fraction choice, step for step
    assert kept["mean"]["kept_indices"] == kept["none"]["kept_indices"]
    assert kept["mean"]["scene_share_kept"] == kept["none"]["scene_share_kept"]
    # weight 1 for scenes against 0.3 for steps: the gate turns to the scenes
    assert kept["one"]["scene_share_kept"] > kept["none"]["scene_share_kept"]
    assert kept["none"]["drawn"] == 6 * 16 and kept["none"]["kept"] == 6 * 8  # top_fraction: half of each batch


def test_the_loop_says_when_physical_feedback_cannot_act():
    from ast_robot.sim2real import feedback_unused

    pixels = load_config(CONFIG, [])
    assert "gate.enabled is false" in feedback_unused(pixels)  # the pixel recipe trains ungated
    gated = load_config(CONFIG, ["gate.enabled=true", "significance.weights={loss: 1.0}"])
    assert "give 'physical' no weight" in feedback_unused(gated)
    assert feedback_unused(load_config(ROOT / "configs/experiments/pickplace_demo.yaml", [])) is None

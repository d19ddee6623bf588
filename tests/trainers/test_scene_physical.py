"""Scene rows under physical feedback (issue 21): a loop round that trains the pixel student on its scenes and on
demonstrations weighted by the gap analyzer. The feedback is a per-row loss weight of mean 1 over the steps
(trainers/feedback.py); scene rows weigh as the steps' mean, 1 (trainers/bc.scene_physical_weight), so the feedback
moves loss among the steps, not between steps and scenes. Session 11's gate-side instrument
(bench/sim2real_pixels_physical_scenes.py, the gate's physical component) measured a path bc no longer feeds."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ast_robot.config import load_config
from ast_robot.trainers.bc import DemoData, scene_physical_weight

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"


def test_scene_rows_weigh_as_the_mean_step_and_the_steps_keep_their_episode_s_weight():
    from test_scene_pool import _episode, _scenes_like

    rng = np.random.default_rng(0)
    episodes = [_episode(rng, 3), _episode(rng, 5), _episode(rng, 2)]
    for i, ep in enumerate(episodes):
        ep.arrays["dr_values"] = np.asarray([[0.2, 0.6, 1.0][i]])  # its friction draw
    keys, scenes = ["observation", "camera", "wrist_camera", "instruction"], _scenes_like(rng, 4)
    weight = lambda dr: dr["friction"] / 2  # noqa: E731  (the analyzer's weights: a function of the draws)
    built = DemoData.from_episodes(episodes, keys, physical_weight=weight, aux=True, scenes=scenes)
    raw = np.array([0.1] * 3 + [0.3] * 5 + [0.5] * 2)
    steps = 0.5 + 0.5 * raw / raw.mean()  # train.feedback_mix 0.5: mean 1 over the steps, none below 0.5
    assert built.physical.tolist() == pytest.approx([*steps, 1.0, 1.0, 1.0, 1.0])
    added = DemoData.from_episodes(episodes, keys, physical_weight=weight, aux=True).with_scenes(scenes)
    assert torch.equal(added.physical, built.physical)  # the two ways of adding scenes agree
    # null case: no feedback, no physical column (the gate's physical component stays silent)
    assert DemoData.from_episodes(episodes, keys, aux=True, scenes=scenes).physical is None
    assert scene_physical_weight(np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match=r"^with_scenes: these data already hold 4 scene rows after 10 steps"):
        added.with_scenes(scenes)


def test_the_loop_says_how_physical_feedback_acts_in_every_recipe():
    from ast_robot.sim2real import feedback_mode

    pixels = load_config(CONFIG, [])  # ungated, as the pixel recipe trains: the feedback acts there too
    assert feedback_mode(pixels).startswith("per-demonstration loss weight (1 - 0.5) + 0.5 * score / mean")
    assert feedback_mode(load_config(ROOT / "configs/experiments/pickplace_demo.yaml", [])) == feedback_mode(pixels)
    assert feedback_mode(load_config(CONFIG, ["train.feedback_mix=0"])).startswith("off: train.feedback_mix is 0")
    with pytest.raises(ValueError, match="feedback_mix"):
        load_config(CONFIG, ["train.feedback_mix=1.0"])

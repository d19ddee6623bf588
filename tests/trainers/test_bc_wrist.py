"""BC of the two_stage student from demonstrations that record the wrist image (issue 20)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ast_robot.cli import main
from ast_robot.config import load_config
from ast_robot.envs.demos import load_demos
from ast_robot.fileio import BadFile
from ast_robot.policies.policy import WRIST_PIXEL_KEY, PolicyBase
from ast_robot.run_layout import POLICY_DIR
from ast_robot.trainers import TRAINERS
from ast_robot.trainers.bc import DemoData, bc_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
ENV = "ast_robot/PickPlaceUR5e-v0"
CONFIG = Path(__file__).resolve().parents[2] / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
SMALL = ["env.camera_size=[48,48]", "policy.hidden_sizes=[32,32]", "policy.n_keypoints=2", "train.scenes=0",
         "train.eval_episodes=1", "train.batch_size=8", "gate.enabled=false"]  # fmt: skip


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two expert episodes without the wrist camera, and the same two replayed with it."""
    tmp = tmp_path_factory.mktemp("wrist_demos")
    common = ["demos", "collect", "--env", ENV, "--observation", "deploy", "--visual", "--objects", "2", "--pads", "2",
              "--camera-size", "48", "48", "--episodes", "2"]  # fmt: skip
    assert main([*common, "--out", str(tmp / "old")]) == 0
    assert main([*common, "--wrist-camera", "--replay", str(tmp / "old"), "--out", str(tmp / "wrist")]) == 0
    return tmp / "old", tmp / "wrist"


def _cfg(tmp_path, demos, *overrides):
    return load_config(CONFIG, [f"run_root={tmp_path}", f"train.demos={demos}", "env.wrist_camera=true",
                                "env.wrist_camera_size=[64,64]", *SMALL, *overrides])  # fmt: skip


def test_the_batch_carries_both_images_and_the_wrist_targets_reach_the_wrist_perception(folders, tmp_path):
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import build_policy

    episodes = load_demos(folders[1], env_id=ENV)
    keys = ["observation", "camera", "instruction", "wrist_camera"]
    data = DemoData.from_episodes(episodes, keys, aux=True)
    steps = sum(len(e) for e in episodes)
    assert data.obs["camera"].shape == (steps, 48, 48, 3) and data.obs["wrist_camera"].shape == (steps, 64, 64, 3)
    np.testing.assert_allclose(data.obs[WRIST_PIXEL_KEY][: len(episodes[0])].numpy(), episodes[0].arrays["wrist_pixels"][:-1])
    plain = DemoData.from_episodes(episodes, keys[:3], aux=True)  # no wrist key asked for: no wrist targets either
    assert "wrist_camera" not in plain.obs and WRIST_PIXEL_KEY not in plain.obs
    cfg = _cfg(tmp_path, folders[1])
    env = make_env(cfg.env, cfg.randomization, seed=0)
    torch.manual_seed(0)
    policy = build_policy(cfg.policy, env.observation_space, 4)
    env.close()
    batch = data.get(torch.arange(0, steps, 7))
    out = bc_loss(policy, batch)
    out.losses.mean().backward()
    grads = [p.grad for n, p in policy.named_parameters() if n.startswith("wrist.")]
    assert grads and all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    without = {k: v for k, v in batch.inputs.items() if k != WRIST_PIXEL_KEY}  # the wrist-image term counts
    with torch.no_grad():
        loss_without = policy({**without, "action": batch.targets}, per_sample=True)[0]
    assert not torch.allclose(loss_without, out.losses.detach())


def test_bc_trains_a_wrist_student_from_wrist_demos_and_refuses_old_ones(folders, tmp_path):
    metrics = TRAINERS.get("bc")(_cfg(tmp_path, folders[1], "train.steps=3", "name=w"), None, show_progress=False)
    assert metrics["demos"] == 2 and metrics["demo_steps"] == sum(len(e) for e in load_demos(folders[1])) and np.isfinite(metrics["last_loss"])
    policy = PolicyBase.load(tmp_path / "w" / POLICY_DIR)
    assert policy.wrist is not None
    with pytest.raises(BadFile, match=r"episode_00000.npz: the observation 'wrist_camera' is missing .*--wrist-camera"):
        TRAINERS.get("bc")(_cfg(tmp_path, folders[0], "train.steps=1", "name=old"), None, show_progress=False)

"""bench/device/gated_pixels.py's assumptions: the numba stand-in computes what numba does, work split by seed
ranges equals the unsplit work, and the bench's --device reaches the arms' config."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench.device.gated_pixels import NONUMBA, REPO, split
from bench.robot_learning_pixels_gated import arm_config, parse_args

COLLECT = "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
OVERRIDES = ["env.camera_size=[48,48]", "env.wrist_camera=true"]

EPISODE = r"""
import json, sys
import numpy as np
from ast_robot.config import load_config
from ast_robot.envs import make_env
from ast_robot.envs.demos import run_episode
from ast_robot.envs.experts import expert_for
cfg = load_config(sys.argv[1], json.loads(sys.argv[2]))
env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
ep = run_episode(env, expert_for(env), 3, noise=0.1)
import numba
np.savez(sys.argv[3], standin=np.array(not hasattr(numba, "__version__")),
         **{k: v for k, v in ep.items() if isinstance(v, np.ndarray) and v.dtype != object})
"""


def _episode(tmp_path, name: str, pythonpath: str | None) -> dict:
    env = dict(os.environ, MUJOCO_GL="egl", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = tmp_path / f"{name}.npz"
    subprocess.run([sys.executable, "-c", EPISODE, COLLECT, json.dumps(OVERRIDES), str(out)], cwd=REPO, env=env,
                   check=True, timeout=300)  # fmt: skip
    return dict(np.load(out))


def test_nonumba_standin_runs_the_kernels_to_the_same_bits_as_numba(tmp_path):
    """One deploy-pipeline expert episode (IK + safety every tick) with numba, then with the stand-in first on
    the path: every recorded array (observations, images, actions, rewards) identical."""
    pytest.importorskip("numba")
    compiled, interpreted = _episode(tmp_path, "numba", None), _episode(tmp_path, "standin", str(NONUMBA))
    assert not compiled.pop("standin") and interpreted.pop("standin")  # each ran the kernels it was meant to
    assert compiled.keys() == interpreted.keys() and "joint_positions" in compiled
    for key in compiled:
        np.testing.assert_array_equal(compiled[key], interpreted[key], err_msg=key)


def test_scenes_split_by_seed_ranges_equal_one_call():
    """The scenes stage's parts (fresh env each, seeds by range) concatenate to what the bench renders in one go."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.envs.scenes import make_scenes

    cfg = load_config(REPO / COLLECT, OVERRIDES)

    def fresh():
        return make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)

    env = fresh()
    whole = make_scenes(env, 5, seed=7)
    env.close()
    parts = []
    for first, count in split(5, 2):
        env = fresh()
        parts.append(make_scenes(env, count, seed=7 + first))
        env.close()
    assert whole.keys() == parts[0].keys()
    for key in whole:
        np.testing.assert_array_equal(whole[key], np.concatenate([p[key] for p in parts]), err_msg=key)
    assert whole["camera"].std() > 1.0  # the scenes were drawn, not blank


def test_split_covers_every_index_once_in_order():
    assert split(10, 4) == [(0, 3), (3, 3), (6, 2), (8, 2)]
    assert split(3, 5) == [(0, 1), (1, 1), (2, 1)]  # more workers than items: no empty parts
    assert split(0, 3) == []


def test_device_flag_reaches_every_arm_config(tmp_path):
    args = parse_args(["--demos", str(tmp_path), "--device", "cuda:1", "--eval-workers", "3"])
    assert args.eval_workers == 3
    assert {arm_config(arm, args).train.device for arm in ("ungated", "gated", "random")} == {"cuda:1"}
    assert arm_config("gated", parse_args(["--demos", str(tmp_path)])).train.device == "cpu"  # the default

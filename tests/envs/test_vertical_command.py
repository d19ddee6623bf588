"""A pure vertical ee_delta action (xy = 0) moves the TCP vertically through the deployment's command path (the
pick-and-place envs with env.deploy_pipeline, as the pixel students train), on the FR3 and the UR5e (issue 20).

Before the safety filter's common-scale step (SafetyLimits.keep_direction), its per-joint clip turned the joint
step: 8 steps of -z from home drifted 12-25 mm sideways on the FR3 (5-17 mm on the UR5e), and +z from ~5 mm above
the table held half the FR3 tables still (the bent path left the workspace box) and moved the others 43-53 mm
sideways (UR5e 34-46 mm); after it, 2-7 and 0.4-10 mm (bench/vertical_path.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ast_robot.config import load_config
from ast_robot.envs import make_env

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "experiments"
SEEDS = (2003000, 2003001, 2003002, 2003003)


def pipeline_env(robot: str):
    cfg = load_config(CONFIGS / f"pickplace_{robot}_pixels_bc.yaml")
    cfg.env.camera, cfg.env.wrist_camera = False, False  # the command path only: no renders (nor a pixel observation)
    cfg.env.observation = "privileged"
    return make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)


def act(z: float) -> np.ndarray:
    return np.array([0.0, 0.0, z, 1.0], dtype=np.float32)


@pytest.mark.parametrize("robot", ["fr3", "ur5e"])
def test_vertical_command_from_home_stays_vertical(robot):
    env = pipeline_env(robot)
    u = env.unwrapped
    assert u._pipeline is not None and u._pipeline.limits.keep_direction
    for seed in SEEDS:
        env.reset(seed=seed)
        for _ in range(5):
            env.step(act(0.0))
        start = u.tcp_pos.copy()
        for _ in range(8):
            env.step(act(-0.5))
        moved = u.tcp_pos - start
        assert moved[2] < -0.035, (robot, seed, moved)  # it goes down
        assert np.linalg.norm(moved[:2]) < 0.008, (robot, seed, moved)  # and not sideways (before: up to 25 mm)


@pytest.mark.parametrize("robot", ["fr3", "ur5e"])
def test_vertical_command_near_the_table_rises_vertically(robot):
    env = pipeline_env(robot)
    u = env.unwrapped
    for seed in SEEDS:
        env.reset(seed=seed)
        for _ in range(80):  # down to ~5 mm above the table, then settle
            if u.tcp_pos[2] < 0.05:
                break
            env.step(act(-0.5 if u.tcp_pos[2] > 0.12 else -0.15))
        for _ in range(10):
            env.step(act(0.0))
        start = u.tcp_pos.copy()
        for _ in range(6):
            env.step(act(0.6))
        moved = u.tcp_pos - start
        assert moved[2] > 0.01, (robot, seed, moved)  # it rises (before: half the FR3 tables held still)
        assert np.linalg.norm(moved[:2]) < 0.012, (robot, seed, moved)  # (before: 34-53 mm sideways)

"""The UR5e pixel config trains as it deploys: the deployment's command path, and an episode long enough for it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ast_robot.config import load_config
from ast_robot.config.deploy import driver_command_interface
from ast_robot.envs import make_env
from ast_robot.envs.demos import run_episode
from ast_robot.envs.experts import expert_for

CONFIG = Path(__file__).resolve().parents[2] / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"


def _expert_successes(cfg, seeds: range) -> int:
    env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
    try:
        return sum(bool(run_episode(env, expert_for(env), seed)["success"]) for seed in seeds)
    finally:
        env.close()


def test_the_pixel_config_runs_the_deployments_command_path_for_the_real_episode_budget():
    cfg = load_config(CONFIG, ["env.camera_size=[32,32]"])  # a small image: the test is about the arm
    assert cfg.env.deploy_pipeline and cfg.deploy.command_interface == driver_command_interface("ur5e")
    assert cfg.deploy.episode_timeout_s == cfg.env.max_episode_steps / cfg.env.control_hz
    seeds = range(900_000, 900_003)
    assert _expert_successes(cfg, seeds) == 3  # the budget fits the task as the deployment moves the arm
    # null case: the old 2 s budget through the same path fits no episode (the students' twin gap, issue 20/21)
    short = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, max_episode_steps=50))
    assert _expert_successes(short, seeds) == 0

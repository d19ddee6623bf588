"""Every experiment YAML loads, and the issue's CLI configs exist with the trainer and env they name."""

from __future__ import annotations

import pytest

from ast_robot.config import load_config


def test_every_experiment_config_loads(repo_root):
    paths = sorted((repo_root / "configs/experiments").glob("*.yaml"))
    assert len(paths) >= 8
    for path in paths:
        load_config(path)  # unknown keys or bad values raise


@pytest.mark.parametrize("name, env_id, trainer", [
    ("reach_ur5e", "ast_robot/ReachUR5e-v0", "sac"),
    ("reach_fr3", "ast_robot/ReachFR3-v0", "sac"),
    ("pickplace_ur5e_bc", "ast_robot/PickPlaceUR5e-v0", "bc"),
    ("pickplace_fr3_bc", "ast_robot/PickPlaceFR3-v0", "bc"),
])  # fmt: skip
def test_issue_configs_name_their_task_and_trainer(repo_root, name, env_id, trainer):
    cfg = load_config(repo_root / f"configs/experiments/{name}.yaml")
    assert (cfg.name, cfg.env.id, cfg.train.type_name) == (name, env_id, trainer)
    if trainer == "sac":
        assert cfg.train.her and cfg.train.normalize_obs and cfg.policy.type == "mlp"
    else:  # pick-place BC observes state, camera and instruction (issue 6)
        assert cfg.env.camera and cfg.env.instruction and cfg.train.n_demos <= 500

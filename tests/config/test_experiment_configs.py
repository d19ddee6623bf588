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


def test_validating_every_shipped_config_imports_no_simulator_torch_or_numba(repo_root):
    """The name tables the config checks against live in ast_robot.config.names: a fresh interpreter that loads
    and validates every shipped experiment config has not imported mujoco, torch or numba."""
    import subprocess
    import sys

    script = (
        "import sys, pathlib\n"
        "from ast_robot.config import load_config\n"
        f"paths = sorted(pathlib.Path({str(repo_root / 'configs/experiments')!r}).glob('*.yaml'))\n"
        "assert len(paths) >= 8, paths\n"
        "for p in paths: load_config(p)\n"
        "print(sorted(m for m in ('mujoco', 'torch', 'numba') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_name_tables_are_the_ones_the_envs_use():
    from ast_robot.config.names import RANDOMIZATION_PARAMS, REWARD_TERMS
    from ast_robot.envs.randomization import PARAMS
    from ast_robot.envs.rewards import TERMS

    assert PARAMS is RANDOMIZATION_PARAMS and TERMS is REWARD_TERMS

"""Smoke tests of every `ast-robot` subcommand, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

from ast_robot.cli import SUBCOMMANDS


def ast_robot(*args, cwd=None):
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.run([sys.executable, "-m", "ast_robot", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)  # fmt: skip


def test_help_lists_only_registered_subcommands():
    out = ast_robot("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        assert name in out.stdout


def test_config_show_prints_resolved_yaml(repo_root):
    out = ast_robot("config", "show", str(repo_root / "configs/experiments/demo.yaml"), "--set", "train.lr=0.01")
    assert out.returncode == 0, out.stderr
    assert "lr: 0.01" in out.stdout and "name: demo" in out.stdout


def test_config_show_bad_value_names_field(repo_root):
    out = ast_robot("config", "show", str(repo_root / "configs/experiments/demo.yaml"), "--set", "train.lr=abc")
    assert out.returncode != 0
    assert "train.lr" in out.stderr and "abc" in out.stderr
    assert "Traceback" not in out.stderr


def test_demo_runs_end_to_end(repo_root, tmp_path):
    out = ast_robot("demo", str(repo_root / "configs/experiments/demo.yaml"), "--out", str(tmp_path), cwd=repo_root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "demo finished" in out.stdout
    assert (tmp_path / "demo" / "config.yaml").is_file()

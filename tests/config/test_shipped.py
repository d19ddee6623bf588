"""The config folders the package reads are found, and setup.py ships every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ast_robot.config.shipped import PACKAGES, shipped_dir

ROOT = Path(__file__).resolve().parents[2]


def test_each_shipped_folder_is_mapped_in_setup_py_and_holds_its_files():
    setup_py = (ROOT / "setup.py").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    for kind, package in PACKAGES.items():
        assert f'"{package}": "configs/{kind}"' in setup_py, f"setup.py does not ship configs/{kind}"
        assert f'"{package}" = ["*.yaml"]' in pyproject, f"pyproject.toml has no package data for {package}"
        assert sorted(p.name for p in shipped_dir(kind).glob("*.yaml")) == sorted(
            p.name for p in (ROOT / "configs" / kind).glob("*.yaml"))


def test_env_override_and_unknown_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("AST_ROBOT_CONFIGS", str(tmp_path))
    assert shipped_dir("deploy") == tmp_path / "deploy"
    with pytest.raises(ValueError, match=r"'policy' is not a shipped config folder; known: \['deploy'"):
        shipped_dir("policy")

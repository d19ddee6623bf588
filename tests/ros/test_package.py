"""The ament_python package is well formed: metadata, entry points, configs, launch files."""

from __future__ import annotations

import ast
import importlib
import re
import xml.etree.ElementTree as ET

import pytest

PKG = "ros2_ws/src/ast_robot_ros"


def test_package_xml_and_setup_agree(repo_root):
    root = ET.parse(repo_root / PKG / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "ast_robot_ros"
    assert root.find("export/build_type").text == "ament_python"
    assert (repo_root / PKG / "resource" / "ast_robot_ros").is_file()
    setup_text = (repo_root / PKG / "setup.py").read_text()
    for module, func in re.findall(r"= \{PACKAGE\}\.(\w+):(\w+)", setup_text):
        assert callable(getattr(importlib.import_module(f"ast_robot_ros.{module}"), func))


def test_ros_configs_are_the_deploy_configs(repo_root):
    from ast_robot.deploy.robot_io import load_robot_io

    for robot in ("ur5e", "fr3"):
        installed = repo_root / PKG / "config" / f"{robot}.yaml"
        assert installed.read_text() == (repo_root / "configs" / "deploy" / f"{robot}.yaml").read_text()
        assert load_robot_io(installed).robot == robot


@pytest.mark.parametrize("name", ["deploy_launch.py", "twin_launch.py"])
def test_launch_files_define_a_launch_description(repo_root, name):
    tree = ast.parse((repo_root / PKG / "launch" / name).read_text())
    assert "generate_launch_description" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_robot_config_errors_name_the_field(tmp_path):
    from ast_robot.config import ConfigError
    from ast_robot.deploy.robot_io import load_robot_io

    bad = tmp_path / "bad.yaml"
    bad.write_text("robot: ur5e\njoint_names: [a, b]\n")
    with pytest.raises(ValueError, match="joint_names"):
        load_robot_io(bad)
    bad.write_text("robot: ur10\n")
    with pytest.raises(ConfigError, match="robot"):
        load_robot_io(bad)
    with pytest.raises(ValueError, match="unknown robot 'ur10'"):
        load_robot_io("ur10")


def test_a_robot_without_its_driver_wiring_is_an_error_not_ur_defaults(tmp_path, monkeypatch):
    from ast_robot.deploy.robot_io import load_robot_io

    monkeypatch.setenv("AST_ROBOT_CONFIGS", str(tmp_path))  # a configs folder without deploy/fr3.yaml
    with pytest.raises(FileNotFoundError, match="fr3.yaml does not exist .*driver wiring of 'fr3'"):
        load_robot_io("fr3")

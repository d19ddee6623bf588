"""Every ROS topic and service name is spelled once: in RosNames (config/deploy.py); every user reads it there."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from ast_robot.config.deploy import RosNames

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "ast_robot" / "config" / "deploy.py"


def _sources() -> list[Path]:
    """The code that talks ROS: the package, the ROS 2 package and the benches (tests may spell names)."""
    return [*sorted((ROOT / "ast_robot").rglob("*.py")), *sorted((ROOT / "ros2_ws" / "src").rglob("*.py")),
            *sorted((ROOT / "bench").glob("*.py"))]  # fmt: skip


def _spelled(path: Path, names: set[str]) -> list[str]:
    """Where ``path`` holds one of ``names`` as a whole string literal."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.value}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in names]  # fmt: skip


def test_names_are_spelled_only_in_rosnames():
    names = {f.default for f in dataclasses.fields(RosNames)} - {""}  # "" (gripper_command): not wired by default
    assert {"/ast/outcome", "/ast/start_episode", "/twin/reset", "/ast/tick", "/clock"} <= names
    assert len(_spelled(HOME, names)) == len(names)  # the scanner finds each default where it is defined
    found = [hit for path in _sources() if path != HOME for hit in _spelled(path, names)]
    assert not found, "ROS names spelled outside RosNames:\n" + "\n".join(found)

"""Scene assembly: robot MJCF + table work cell + the task's elements, as a ``mujoco.MjSpec``.

MJCF files live in the top-level ``envs/`` folder, installed as the package ``ast_robot.mjcf``. The robot
and table files are joined with MJCF ``<include>``; task elements (reach target, pick-and-place objects
and pads) are added through the MjSpec API so their number can come from options.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import mujoco

from ast_robot.registry import Registry
from ast_robot.robot.specs import RobotSpec

TASK_SCENES: Registry[Callable[..., None]] = Registry("task")
OBJECT_HALF_SIZE = 0.02  # nominal cube half edge (m); object size randomization scales it
OBJECT_MASS = 0.1  # kg
PAD_RADIUS = 0.04  # m

# mujoco-menagerie folders of the arms this project supports (used only with model="menagerie").
_MENAGERIE = {"ur5e": "universal_robots_ur5e/ur5e.xml", "fr3": "franka_fr3/fr3.xml"}


def mjcf_root() -> Path:
    """The folder that holds the MJCF files (``envs/`` in the source tree)."""
    return Path(str(resources.files("ast_robot.mjcf")))


def build_spec(robot: RobotSpec, task: str, model: str = "primitive", **options: Any) -> mujoco.MjSpec:
    """Robot on the table plus ``task``'s elements. ``model``: "primitive" (ours) or "menagerie"."""
    add_task = TASK_SCENES.get(task)
    robot_file = _robot_file(robot, model)
    table = mjcf_root() / "scenes" / "table.xml"
    xml = f'<mujoco model="{task}_{robot.name}"><include file="{robot_file}"/><include file="{table}"/></mujoco>'
    spec = mujoco.MjSpec.from_string(xml)
    add_task(spec, **options)
    return spec


def _robot_file(robot: RobotSpec, model: str) -> Path:
    if model == "primitive":
        return mjcf_root() / robot.mjcf
    if model != "menagerie":
        raise ValueError(f"robot model {model!r} is unknown; use 'primitive' or 'menagerie'")
    root = os.environ.get("MENAGERIE_ROOT")
    if not root:
        raise FileNotFoundError(
            "robot model 'menagerie' needs a local copy of mujoco_menagerie: set MENAGERIE_ROOT to its folder "
            "(the mujoco-menagerie wheel downloads models at run time, which fails offline)"
        )
    path = Path(root) / _MENAGERIE[robot.name]
    if not path.is_file():
        raise FileNotFoundError(
            f"MENAGERIE_ROOT={root} has no {_MENAGERIE[robot.name]} for robot {robot.name!r}"
        )
    return path


@TASK_SCENES.register("reach")
def add_reach(spec: mujoco.MjSpec) -> None:
    """A visual-only target sphere (site `target`), moved at every reset through ``model.site_pos``."""
    spec.worldbody.add_site(name="target", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.02, 0, 0],
                            pos=[0.45, 0.0, 0.2], rgba=[0.9, 0.2, 0.2, 0.6])  # fmt: skip


@TASK_SCENES.register("pickplace")
def add_pick_place(spec: mujoco.MjSpec, n_objects: int = 3, n_pads: int = 2) -> None:
    """``n_objects`` free cubes (`object{i}`) and ``n_pads`` flat place pads (sites `pad{j}`) on the table."""
    if not isinstance(n_objects, int) or not 1 <= n_objects <= 8:
        raise ValueError(f"n_objects must be an integer in [1, 8], got {n_objects!r}")
    if not isinstance(n_pads, int) or not 1 <= n_pads <= 4:
        raise ValueError(f"n_pads must be an integer in [1, 4], got {n_pads!r}")
    h = OBJECT_HALF_SIZE
    for i in range(n_objects):
        body = spec.worldbody.add_body(name=f"object{i}", pos=[0.45, -0.2 + 0.1 * i, h])
        body.add_freejoint(name=f"object{i}_joint")
        body.add_geom(name=f"object{i}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[h, h, h], mass=OBJECT_MASS,
                      rgba=[0.5, 0.5, 0.5, 1], friction=[1.0, 0.005, 0.0001], condim=4,
                      contype=1, conaffinity=3)  # fmt: skip
    for j in range(n_pads):
        spec.worldbody.add_site(name=f"pad{j}", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[PAD_RADIUS, 0.001, 0],
                                pos=[0.45, 0.15 * j, 0.001], rgba=[0.2, 0.8, 0.2, 1])  # fmt: skip

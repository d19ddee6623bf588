"""Loading a robot's driver wiring (joint names, topics, command interface) from `configs/deploy/`."""

from __future__ import annotations

from pathlib import Path

from ast_robot.config.deploy import RobotIOConfig
from ast_robot.config.shipped import shipped_dir


def load_robot_io(robot_or_path: str | Path) -> RobotIOConfig:
    """``"ur5e"``/``"fr3"`` (the YAML in configs/deploy/) or a path to such a YAML file.

    Joint names default to the robot spec's and must name the same number of joints.
    """
    from ast_robot.config import load_config
    from ast_robot.robot.specs import get_robot

    text = str(robot_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) else shipped_dir("deploy") / f"{text}.yaml"
    if not path.is_file():
        if not text.endswith((".yaml", ".yml")):
            get_robot(text)  # an unknown robot name raises with the list of known ones
        # no silent defaults: another robot's topics and interface would be wrong, maybe unsafe
        raise FileNotFoundError(f"robot config: {path} does not exist (the driver wiring of {text!r}: its "
                                "topics, command interface and safety inputs; see configs/deploy/ur5e.yaml)")  # fmt: skip
    cfg = load_config(path, cls=RobotIOConfig)  # safe YAML; errors name the file and the field
    spec = get_robot(cfg.robot)
    if not cfg.joint_names:
        cfg.joint_names = list(spec.joint_names)
    if len(cfg.joint_names) != spec.n_joints or len(set(cfg.joint_names)) != spec.n_joints:
        raise ValueError(f"joint_names: expected {spec.n_joints} distinct names for {cfg.robot}, "
                         f"got {cfg.joint_names}")  # fmt: skip
    _check_gripper(cfg, path)
    return cfg


def _check_gripper(cfg: RobotIOConfig, path: Path) -> None:
    """The gripper section against its data sheet (the safety module's limits), before anything starts."""
    from ast_robot.robot.safety import GripperLimits

    g = cfg.gripper
    try:
        GripperLimits.for_gripper(g.model, g.force_n, g.speed_mps, g.max_rate_hz)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if g.interface == "forward_position" and g.position_open == g.position_closed:
        raise ValueError(f"{path}: gripper.position_open/position_closed: must differ (the width maps linearly)")

"""Deployment (policy node + safety) configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ast_robot.config.schema import doc


@dataclass
class DeployConfig:
    """How the policy drives a robot (real or twin) and which limits every command obeys."""

    robot: Literal["ur5e", "fr3"] = doc("ur5e", "Robot; topic and joint names come from its YAML file.")
    control_hz: float = doc(125.0, "Control loop rate (Hz).", gt=0)
    command_interface: Literal["trajectory", "forward_position"] = doc(
        "trajectory", "JointTrajectory to a trajectory controller, or Float64MultiArray to a forward controller."
    )
    max_joint_speed_scale: float = doc(0.5, "Fraction of the data-sheet joint speed allowed per step.", gt=0, le=1)
    workspace_min: tuple[float, float, float] = doc((-0.9, -0.9, 0.0), "End-effector box lower corner (m, base frame).")
    workspace_max: tuple[float, float, float] = doc((0.9, 0.9, 1.2), "End-effector box upper corner (m, base frame).")
    watchdog_periods: float = doc(2.0, "Hold when no joint state arrived for this many control periods.", gt=0)
    episode_timeout_s: float = doc(10.0, "Episode time limit (s).", gt=0)
    episodes: int = doc(10, "Episodes per deployment round.", gt=0)

"""Deployment without ROS: the policy runner (built from the checkpoint's contract), input checks, the
session and episode bookkeeping. Every command passes the one safety module, :mod:`ast_robot.robot.safety`.

Import-light on purpose: nothing heavy (torch, mujoco) is imported until a submodule is used, and nothing
here ever imports rclpy (the ROS 2 nodes in ``ast_robot_ros`` and ``ast_robot.twin.node`` are thin adapters).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PolicyRunner": "ast_robot.deploy.runner",
    "ReachController": "ast_robot.deploy.runner",
    "load_deploy_policy": "ast_robot.deploy.runner",
    "load_deployable": "ast_robot.deploy.loader",
    "DeploymentSession": "ast_robot.deploy.session",
    "EpisodeTracker": "ast_robot.deploy.episode",
    "load_robot_io": "ast_robot.deploy.robot_io",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ast_robot.deploy' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)

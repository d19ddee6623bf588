"""Simulated robot tasks (gymnasium ids ``ast_robot/<Task><Robot>-v0``).

This module must stay light: ``import ast_robot`` calls :func:`register_envs`, and machines without
MuJoCo (the GPU benchmark host) import it too. Everything heavy is imported inside functions.
"""

from __future__ import annotations

from typing import Any

# id -> (entry point, kwargs). Entry points are strings so gymnasium imports MuJoCo only on make().
ENV_IDS: dict[str, tuple[str, dict[str, Any]]] = {
    "ast_robot/ReachUR5e-v0": ("ast_robot.envs.reach:ReachEnv", {"robot": "ur5e"}),
    "ast_robot/ReachFR3-v0": ("ast_robot.envs.reach:ReachEnv", {"robot": "fr3"}),
    "ast_robot/PickPlaceUR5e-v0": ("ast_robot.envs.pick_place:PickPlaceEnv", {"robot": "ur5e"}),
    "ast_robot/PickPlaceFR3-v0": ("ast_robot.envs.pick_place:PickPlaceEnv", {"robot": "fr3"}),
}


def register_envs() -> None:
    """Register every id with gymnasium (idempotent; a no-op when gymnasium is missing)."""
    try:
        import gymnasium
    except ImportError:
        return
    for env_id, (entry_point, kwargs) in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs))

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


def make_env(env_cfg: Any = None, rand_cfg: Any = None, seed: int | None = None, **kwargs: Any):
    """Build ``env_cfg.id`` from an :class:`~ast_robot.config.EnvConfig` and a RandomizationConfig.

    The env is reset once with ``seed`` (so its RNG is seeded) and its action space seeded too;
    ``kwargs`` go to ``gymnasium.make`` (e.g. ``render_mode``).
    """
    import gymnasium

    from ast_robot.config import EnvConfig

    env_cfg = env_cfg if env_cfg is not None else EnvConfig()
    if env_cfg.id not in ENV_IDS:
        raise ValueError(f"env.id {env_cfg.id!r} is unknown; known: {sorted(ENV_IDS)}")
    register_envs()
    env = gymnasium.make(env_cfg.id, config=env_cfg, randomization=rand_cfg, **kwargs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env

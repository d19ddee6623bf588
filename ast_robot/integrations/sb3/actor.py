"""A saved SAC model as ``act(obs) -> action``: what ``ast-robot eval`` and the deployment loader run.

The policy is rebuilt from the run's (safely loaded) config and only the zip's ``policy.pth`` is read, with
``torch.load(weights_only=True)``. ``SAC.load`` would unpickle the zip's ``:serialized:`` entries (cloudpickle:
code runs) unless every one is replaced through ``custom_objects``; here the zip's ``data`` entry is never
parsed at all. The observation statistics beside the model (``obs_norm.json``) are applied as SB3's
VecNormalize applied them in training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.integrations.sb3.features import policy_kwargs
from ast_robot.run_layout import NORM_FILE, SAC_FILE

try:
    from stable_baselines3.sac.policies import MultiInputPolicy
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError('loading a SAC model needs stable-baselines3: pip install "ast-robot[sb3]"') from err

SAC_EXPECTED = "an SB3 SAC model zip of this run's config (its policy.pth: the policy's weights)"
NORM_EXPECTED = "JSON observation statistics {clip_obs, epsilon, stats: {key: {mean, var}}} with finite numbers"
Normalizer = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def load_sac_actor(cfg: Any, folder: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """``act(obs)`` (deterministic) of the SAC model in ``folder`` (``sac.zip`` + ``obs_norm.json``) of run ``cfg``."""
    folder = Path(folder)
    policy = load_sac_policy(cfg, folder / SAC_FILE)  # weights only: the zip's pickles are never read
    norm_file = folder / NORM_FILE
    if getattr(cfg.train, "normalize_obs", False) and not norm_file.is_file():
        raise FileNotFoundError(f"{norm_file} is missing: the run trained on normalized observations "
                                "(train.normalize_obs) and acting needs their statistics")  # fmt: skip
    normalize = read_obs_norm(norm_file) if norm_file.is_file() else obs_normalizer(None)
    return lambda obs: policy.predict(normalize(obs), deterministic=True)[0]


def load_sac_policy(cfg: Any, path: str | Path) -> Any:
    """The acting policy of a saved SAC model, rebuilt from ``cfg``; only the zip's ``policy.pth`` is read."""
    from ast_robot.core.checkpoint import load_module_state
    from ast_robot.envs import make_env
    from ast_robot.fileio import check_nonempty, reading

    path = check_nonempty(path, SAC_EXPECTED)
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed)
    try:
        policy = MultiInputPolicy(env.observation_space, env.action_space, lambda _: 0.0, **policy_kwargs(cfg))
    finally:
        env.close()
    with reading(path, SAC_EXPECTED):
        load_module_state(policy, read_policy_weights(path), "SAC policy")
    return policy.eval()


def read_policy_weights(path: Path) -> dict[str, Any]:
    """``policy.pth`` of an SB3 zip as a state dict (tensors and plain data only)."""
    import io
    import zipfile

    import torch

    with zipfile.ZipFile(path) as archive:
        if "policy.pth" not in archive.namelist():
            raise ValueError(f"holds no policy.pth: not an SB3 model, or cut short (entries: "
                             f"{sorted(archive.namelist())[:8]})")  # fmt: skip
        raw = archive.read("policy.pth")
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"policy.pth holds a {type(state).__name__}, not a state dict")
    return state


def read_obs_norm(path: Path) -> Normalizer:
    """The observation normalizer of ``obs_norm.json`` (see ``trainers.sac.save_obs_norm``), checked."""
    from ast_robot.fileio import read_json, reading

    stats = read_json(path, NORM_EXPECTED)
    with reading(path, NORM_EXPECTED):
        normalize = obs_normalizer(stats)
        for key, entry in stats["stats"].items():
            values = np.asarray([entry["mean"], entry["var"]], dtype=np.float64)
            if not np.all(np.isfinite(values)) or np.any(values[1] < 0):
                raise ValueError(f"stats[{key!r}] holds non-finite values or a negative variance")
    return normalize


def obs_normalizer(stats: dict[str, Any] | None) -> Normalizer:
    """``obs -> normalized obs`` as VecNormalize computes it (identity for ``None``)."""
    if stats is None:
        return lambda obs: obs
    clip, eps = float(stats["clip_obs"]), float(stats["epsilon"])
    table = {k: (np.asarray(v["mean"]), np.sqrt(np.asarray(v["var"]) + eps)) for k, v in stats["stats"].items()}

    def normalize(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(obs)
        for key, (mean, std) in table.items():
            out[key] = np.clip((obs[key] - mean) / std, -clip, clip).astype(np.float32)
        return out

    return normalize

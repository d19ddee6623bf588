"""Rewards as named terms with scales: ``reward = sum(scale[t] * term[t])``, vectorized over a batch.

| term     | value                                   | unit |
|----------|-----------------------------------------|------|
| time     | -1 every step                           | -    |
| success  | 1 when the goal distance <= threshold   | -    |
| distance | -goal distance                          | m    |

The success term is the one success rule (:func:`ast_robot.success.reached`).

Default scales: ``sparse`` = time + success (-1 until success, 0 after, as in gymnasium-robotics);
``dense`` = distance. ``EnvConfig.reward_scales`` overrides single terms.
"""

from __future__ import annotations

import numpy as np

from ast_robot.config.names import REWARD_TERMS
from ast_robot.success import reached

TERMS = REWARD_TERMS  # the names live in config (validating a config imports no simulator)
DEFAULT_SCALES = {
    "sparse": {"time": 1.0, "success": 1.0, "distance": 0.0},
    "dense": {"time": 0.0, "success": 0.0, "distance": 1.0},
}


def reward_scales(reward_type: str, overrides: dict[str, float]) -> dict[str, float]:
    """Scales of ``reward_type`` with ``overrides`` applied (unknown terms are a ValueError)."""
    if reward_type not in DEFAULT_SCALES:
        raise ValueError(f"reward_type {reward_type!r} is unknown; use one of {sorted(DEFAULT_SCALES)}")
    unknown = sorted(set(overrides) - set(TERMS))
    if unknown:
        raise ValueError(f"reward_scales: unknown term(s) {unknown}; known terms: {list(TERMS)}")
    return {**DEFAULT_SCALES[reward_type], **{k: float(v) for k, v in overrides.items()}}


def weighted_reward(
    dist: np.ndarray | float, threshold: float, scales: dict[str, float]
) -> np.ndarray | float:
    """Reward for goal distances ``dist`` (...,) in m -> (...,) float64; a float gives a float."""
    if isinstance(dist, float):  # one env step: the same IEEE operations without array overhead
        success = 1.0 if reached(dist, threshold) else 0.0
        return -scales["time"] + scales["success"] * success - scales["distance"] * dist
    dist = np.asarray(dist, dtype=np.float64)
    success = reached(dist, threshold).astype(np.float64)
    return -scales["time"] + scales["success"] * success - scales["distance"] * dist

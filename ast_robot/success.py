"""The one success rule and the one final-error rule, for simulated and real episodes alike.

The envs (``info["is_success"]``, the reward's success term), ``ast-robot eval`` (its episode records) and
the deployment (:mod:`ast_robot.deploy.episode`) all judge with these functions, so a sim and a real
episode that end in the same place get the same verdict:

- the *goal distance* is the Euclidean distance (m) from the achieved goal (the TCP for reach, the object
  for pick-and-place) to the desired goal;
- a state *reaches* the goal when its distance is at most the success threshold (``env.success_threshold``,
  carried to the deployment by the checkpoint's contract);
- an episode *succeeds* when its last state reaches the goal, and its *final error* is that state's goal
  distance. (A deployment that ends an episode on success ends it on the first state that reaches the
  goal, so that state is its last.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def goal_distance(achieved: Any, desired: Any) -> float:
    """Euclidean distance (m) between two (3,) positions, as one float."""
    (ax, ay, az), (gx, gy, gz) = _floats(achieved), _floats(desired)
    dx, dy, dz = ax - gx, ay - gy, az - gz
    return math.sqrt(dx * dx + dy * dy + dz * dz)


def _floats(xyz: Any) -> list[float]:
    """Three Python floats (an env step computes on floats: no array operations for three numbers)."""
    return xyz.tolist() if isinstance(xyz, np.ndarray) else [float(v) for v in xyz]


def reached(distance: Any, threshold: float) -> Any:
    """Whether goal distance(s) (m) count as success: ``distance <= threshold`` (a bool, or a bool array)."""
    return distance <= threshold


def episode_outcome(final_distance: float, threshold: float) -> tuple[bool, float]:
    """(success, final error m) of an episode whose last state is ``final_distance`` m from its goal."""
    final_distance = float(final_distance)
    return bool(reached(final_distance, threshold)), final_distance

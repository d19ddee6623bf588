"""DAgger (Ross et al. 2011): the student drives, the scripted expert labels the states the student visits.

Behaviour cloning trains on the expert's state distribution; a cloned policy drifts off it and has never
seen how to recover. DART-style noise (``run_episode(noise=...)``) widens the expert's own distribution;
DAgger goes further: the student's actions are executed (with probability ``1 - beta`` per step, else the
expert's), the expert's action at every visited state is the label, and the aggregated data are cloned again.
The scripted expert reads the true simulator state every step, so it labels any state, its phase machine
following the scene (a cube the student dropped sends it back to the approach).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Act = Callable[[dict[str, np.ndarray]], np.ndarray]


def student_driver(act: Act, beta: float, rng: np.random.Generator) -> Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]:
    """``driver(obs, expert_action)`` for ``run_episode``: the student's action, or with probability ``beta``
    the expert's (beta 0: pure DAgger, the student alone drives; beta 1: plain expert demonstrations)."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1] (probability of executing the expert's action), got {beta}")

    def drive(obs: dict[str, np.ndarray], expert_action: np.ndarray) -> np.ndarray:
        if beta > 0 and rng.random() < beta:
            return expert_action
        return np.clip(np.asarray(act(obs), dtype=np.float32), -1.0, 1.0)

    return drive


def dagger_episode(env: Any, expert: Any, act: Act, seed: int, beta: float = 0.0,
                   noise: float = 0.0) -> dict[str, np.ndarray]:  # fmt: skip
    """One episode driven by ``act`` (mixed with the expert by ``beta``), labelled by ``expert``: the arrays of
    :func:`ast_robot.envs.demos.run_episode` with ``relabelled`` set and ``executed_action`` the driven ones
    (plus ``noise``, DART-style, on top)."""
    from ast_robot.envs.demos import run_episode

    rng = np.random.default_rng([seed, 0xDA66E5])
    return run_episode(env, expert, seed, noise=noise, driver=student_driver(act, beta, rng))


def replay_driver(actions: np.ndarray) -> Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]:
    """``driver(obs, expert_action)`` that executes a recorded episode's ``actions`` (T, A) in order, then the
    expert's: re-running an old episode from its seed with a changed observation (a wrist camera added) so that
    the expert labels the states it visits and the new images are recorded. The env's random draws after reset
    (action noise, image noise) differ once an image is added, so the states drift a little from the recorded
    ones: the labels are the expert's at the states visited now, never the old ones."""
    queue = [np.asarray(a, dtype=np.float32) for a in actions]

    def drive(obs: dict[str, np.ndarray], expert_action: np.ndarray) -> np.ndarray:
        return queue.pop(0) if queue else expert_action

    return drive

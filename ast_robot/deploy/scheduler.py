"""Runs the policy at its own rate, beside a faster command loop.

A policy trained in the envs chose one action per env step (25 Hz) and that action held for the whole
step. The command loop ticks faster (125-500 Hz) and must never wait for inference, so the policy runs
in a worker thread (torch releases the GIL while it computes): each tick hands in the newest observation
when an answer is due and uses the newest action. An action older than ``max_age_s`` is not used (the
tick holds), so a stalled policy cannot keep driving the robot. ``synchronous=True`` calls the policy
inline instead (deterministic; for tests and offline replays).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

# Rounding of tick times: five 8 ms ticks sum to 0.039999... s, and an exact '>= period' asked the policy
# a tick late (every 6th tick instead of 5th, about once in 12 periods at 125 Hz / 25 Hz).
CLOCK_EPS_S = 1e-6


class PolicyScheduler:
    """Asks ``policy.act`` every ``period_s`` and serves the latest action."""

    def __init__(self, policy: Any, period_s: float, max_age_s: float, synchronous: bool = False) -> None:
        if not period_s > 0 or not max_age_s >= period_s:
            raise ValueError(f"period_s/max_age_s: expected 0 < period_s <= max_age_s, got {period_s}, {max_age_s}")
        self.policy, self.period_s, self.max_age_s, self.synchronous = policy, period_s, max_age_s, synchronous
        self._pool = None if synchronous else ThreadPoolExecutor(1, thread_name_prefix="policy")
        self._pending: tuple[float, Future] | None = None  # (observation time, running act())
        self._latest: tuple[float, np.ndarray] | None = None  # (observation time, action)
        self._asked_s = -np.inf

    def reset(self) -> None:
        """Forget actions (new episode); a running request is left to finish and discarded. A policy that keeps
        state across its calls (``reset_episode``: a `two_stage` student's estimate filter) starts afresh too: a
        new table must not inherit the last one's estimate."""
        self._pending, self._latest, self._asked_s = None, None, -np.inf
        reset_episode = getattr(self.policy, "reset_episode", None)
        if callable(reset_episode):
            reset_episode()

    def action(self, obs: dict[str, np.ndarray], now_s: float) -> np.ndarray | None:
        """The newest action no older than ``max_age_s`` (None: none yet, or stale). Raises policy errors."""
        self._collect()
        if now_s - self._asked_s >= self.period_s - CLOCK_EPS_S and self._pending is None:
            self._asked_s = now_s
            if self.synchronous:
                self._latest = (now_s, _as_action(self.policy.act(obs)))
            else:
                self._pending = (now_s, self._pool.submit(self.policy.act, obs))
                self._collect()
        if self._latest is None or now_s - self._latest[0] > self.max_age_s:
            return None
        return self._latest[1]

    def _collect(self) -> None:
        if self._pending is not None and self._pending[1].done():
            stamp, future = self._pending
            self._pending = None
            self._latest = (stamp, _as_action(future.result()))  # re-raises the policy's exception

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _as_action(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(-1)

"""The deployment's slower streams on simulated time: when a sample is taken, and a tracker's velocity.

A lab's object tracker (about :data:`TRACKER_RATE_HZ`) and the cameras run slower than the control tick. On
simulated time the twin takes their samples on the physics' time grid (:func:`sample_due`, :func:`next_due`),
each published before the joint state of its tick; the deployment differentiates consecutive tracker samples for
the cubes' velocities (:func:`finite_velocity`). An env with the deployment pipeline observes through the same
schedule and arithmetic (:class:`ast_robot.envs.pipeline.TrackerSamples`), so a tracker-fed policy trains on what
it will see (issue 21: the env read every cube at every step, the deployment a 10 Hz sample: the second policy
step's actions differed by 4e-3 on a nominal twin).

Intervals are rounded to the microsecond (:func:`interval_s`), as the safety module's speed measurement is: the
deployment's stamps are absolute times and the env's start at 0, and unrounded their float rounding differs.
"""

from __future__ import annotations

import numpy as np

# The tracker's nominal rate (Hz): a lab's overhead tag tracker at camera rate (mocap runs faster); the twin
# publishes its cubes' poses at this rate. One sample per 25 Hz policy step: at 10 Hz a tracker-fed FR3 student,
# trained as it deploys, fell from 25/30 to 16/30 at the nominal point (its BC expert sees the true state; 25 Hz:
# 29/30), and the nominal FR3 loop reported a significant gap (sim 80%, twin 4/10) that was the policy's own.
TRACKER_RATE_HZ = 25.0
DUE_EPS_S = 1e-9  # a sample due at t is taken at a tick this close before t (float rounding of summed steps)


def sample_due(now_s: float, due_s: float | None) -> bool:
    """Whether a sample is due at ``now_s`` (s) when the next one is due at ``due_s`` (None: none taken yet)."""
    return due_s is None or now_s >= due_s - DUE_EPS_S


def next_due(now_s: float, due_s: float | None, rate_hz: float, restart: bool = False) -> float:
    """When the sample after one taken at ``now_s`` is due: a period after the last due time (on the grid), or a
    period from now after a ``restart``, for the first one, or when the clock jumped a period past ``due_s``."""
    period = 1.0 / rate_hz
    return now_s + period if restart or due_s is None or now_s - due_s >= period else due_s + period


def interval_s(t_s: float, earlier_s: float) -> float:
    """Seconds from ``earlier_s`` to ``t_s``, rounded to the microsecond (no dependence on the absolute time)."""
    return round(t_s - earlier_s, 6)


def finite_velocity(positions: np.ndarray, previous: np.ndarray, dt_s: float, max_age_s: float) -> np.ndarray:
    """Velocities (n, 3) m/s of ``positions`` over ``dt_s`` since ``previous`` (n, 3) m; zeros unless
    0 < dt_s <= max_age_s (the same sample again, or one after an outage, says nothing about motion)."""
    return (positions - previous) / dt_s if 0.0 < dt_s <= max_age_s else np.zeros_like(positions)

"""What commands look like on the wire: a trajectory point's time, and a gripper's command and reported opening.

One definition for every place that writes, reads or models them: the deployment writes commands and reads the
measured opening (:mod:`ast_robot.deploy.gripper`, the ROS package's ``convert``), the twin reads commands and
reports its opening (:mod:`ast_robot.twin`), and an env with the deployment pipeline models both
(:mod:`ast_robot.envs.pipeline`): what arrives is rounded (a segment time to whole nanoseconds, a width sent as a
knuckle position), and the policy must train on what the deployed controller gets and reports (issue 21).

Gripper forms (``GripperIOConfig.interface``):

- ``forward_position``: ``[p]``, linear from ``position_open`` (widest, the stroke's top) to ``position_closed``;
  the opening comes back as that joint's position (clamped to the stroke);
- ``width_speed_force``: ``[width m, speed m/s, force N]`` (force 0: a move, which pushes as hard as the configured
  force); the opening comes back as the fingers' travels (their sum).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def duration_parts(seconds: float) -> tuple[int, int]:
    """(sec, nanosec) of a builtin_interfaces/Duration of ``seconds`` >= 0 (whole nanoseconds)."""
    whole = int(seconds)
    return whole, int(round((seconds - whole) * 1e9))


def duration_seconds(sec: int, nanosec: int) -> float:
    """Seconds of a builtin_interfaces/Duration (or Time) as its reader computes them."""
    return sec + nanosec * 1e-9


def as_sent(seconds: float) -> float:
    """A duration as a trajectory controller reads it after the wire: rounded to whole nanoseconds (a UR5e
    segment's time, 0.5 ns off, moved the twin's setpoint 1.6e-13 rad from the env's in one tick; contact grew it
    to 4e-6 rad over a pick-and-place episode)."""
    return duration_seconds(*duration_parts(seconds))


def command_data(cfg: Any, stroke: tuple[float, float], width: float, speed: float, force: float) -> list[float]:
    """The Float64MultiArray data of a command to open to ``width`` (m) (``cfg``: a GripperIOConfig)."""
    if cfg.interface == "width_speed_force":
        return [float(width), float(speed), float(force)]
    return [position_of(cfg, stroke, float(width))]


def position_of(cfg: Any, stroke: tuple[float, float], width: float) -> float:
    """forward_position: the controller position for an opening ``width`` (m)."""
    lo, hi = stroke
    frac = (width - lo) / (hi - lo)  # 1 = widest
    return cfg.position_closed + frac * (cfg.position_open - cfg.position_closed)


def command_width(cfg: Any, stroke: tuple[float, float], values: np.ndarray) -> tuple[float, float]:
    """(opening width m, grasp force N) a gripper controller reads from a command's ``values`` (as sent:
    the count and finiteness are the reader's checks)."""
    if cfg.interface == "width_speed_force":
        return float(values[0]), float(values[2]) if values[2] > 0 else float(cfg.force_n)  # a move pushes as hard
    lo, hi = stroke
    frac = (values[0] - cfg.position_closed) / (cfg.position_open - cfg.position_closed)
    return float(lo + frac * (hi - lo)), float(cfg.force_n)  # the driver's configured force


def reported_positions(cfg: Any, stroke: tuple[float, float], fingers: Sequence[float]) -> list[float]:
    """Joint-state positions of ``cfg.state_joints`` for finger travels ``fingers`` (m each), as the drivers
    report the opening."""
    if cfg.interface == "width_speed_force":  # one entry per finger (m of travel)
        return [float(f) for f in fingers][: len(cfg.state_joints)]
    lo, hi = stroke
    width = float(sum(float(f) for f in fingers))
    frac = (min(max(width, lo), hi) - lo) / (hi - lo)
    return [cfg.position_closed + frac * (cfg.position_open - cfg.position_closed)]


def reported_width(cfg: Any, stroke: tuple[float, float], values: np.ndarray) -> float:
    """The opening (m) that joint-state positions ``values`` of ``cfg.state_joints`` measure."""
    if cfg.interface == "width_speed_force":  # finger travels (m): the opening is their sum
        return float(values.sum())
    lo, hi = stroke
    frac = (values[0] - cfg.position_closed) / (cfg.position_open - cfg.position_closed)
    return float(lo + min(max(frac, 0.0), 1.0) * (hi - lo))


def measured_width(cfg: Any, stroke: tuple[float, float], fingers: Sequence[float]) -> float:
    """The opening the deployment measures when the fingers have travelled ``fingers`` (m each): through the
    driver's report and back (what the policy observes)."""
    return reported_width(cfg, stroke, np.array(reported_positions(cfg, stroke, fingers), dtype=np.float64))

"""A joint of the FR3 twin held by a kinematic block, then freed, under the safety filter: the instrument of the
held-lead and yield-lead tests (tests/robot/test_held_lead.py, test_yield_lead.py), bench/fr3_overspeed's own."""

from __future__ import annotations

from ast_robot.robot.safety import SafetyLimits
from ast_robot.robot.specs import get_robot
from bench.fr3_overspeed import freed_peak

PERIOD = 1 / 125
SPEC = get_robot("fr3")


def freed_ratio(lim: SafetyLimits, joint: int, accel: float, start: float, hold: int, ticks: int = 120) -> float:
    """An FR3 twin joint driven by the filter towards home - 1 rad while a kinematic block moves it towards the
    target from ``start`` x its allowed speed, speeding up at ``accel`` x its acceleration limit, for ``hold``
    ticks, then lets go: peak |qvel| / data sheet after the release (speed stop off: how fast, not whether the
    twin stops)."""
    return freed_peak(lim, joint, start, hold, ticks, accel) / SPEC.velocity_limits[joint]

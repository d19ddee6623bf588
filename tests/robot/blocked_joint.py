"""A joint of the FR3 twin held by a kinematic block, then freed, under the safety filter: the instrument of the
held-lead and yield-lead tests (tests/robot/test_held_lead.py, test_yield_lead.py)."""

from __future__ import annotations

import numpy as np

from ast_robot.robot.safety import SafetyLimits, SafetyMonitor
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.robot.specs import get_robot
from ast_robot.twin.sim import TwinSim

PERIOD = 1 / 125
SPEC = get_robot("fr3")


def freed_ratio(
    lim: SafetyLimits, joint: int, accel: float, start: float, hold: int, ticks: int = 120
) -> float:
    """An FR3 twin joint driven by the filter towards home - 1 rad while a kinematic block moves it towards the
    target from ``start`` x its allowed speed, speeding up at ``accel`` x its acceleration limit, for ``hold``
    ticks, then lets go: peak |qvel| / data sheet after the release (speed stop off: how fast, not whether the
    twin stops)."""
    sim, mon = TwinSim("fr3"), SafetyMonitor(lim)
    sim.speed_limit[:] = np.inf
    q0, dt = sim.true_positions(), sim.model.opt.timestep
    for k in range(ACQUIRE_STATES):
        mon.observe_state(q0, received_s=(k - ACQUIRE_STATES) * PERIOD)
    target = q0 - np.eye(7)[joint]
    v0, a = -start * lim.max_step[joint] / PERIOD, -accel * lim.max_acceleration[joint]
    qadr, dof, peak = sim.idx.qpos[joint], sim.idx.dof[joint], 0.0
    for k in range(ticks):
        mon.observe_state(sim.true_positions(), received_s=k * PERIOD)
        sim.command_positions(mon.filter(target, now_s=k * PERIOD).positions)
        for _ in range(round(PERIOD / dt)):
            sim.step_to(sim.time + dt)
            if k < hold:
                t = sim.time
                sim.data.qpos[qadr], sim.data.qvel[dof] = q0[joint] + v0 * t + 0.5 * a * t * t, v0 + a * t
            else:
                peak = max(peak, abs(float(sim.data.qvel[dof])))
    return peak / SPEC.velocity_limits[joint]

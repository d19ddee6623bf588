"""A blocked joint freed under the safety filter stays under its data-sheet speed (issue 21), in real MuJoCo.

The FR3 wrist (joint 6, 12 Nm, 4.18 rad/s) of the twin's sim is held still for a while (a held cube pressed
on the table did this in the twin), then let go, while the safety filter drives it towards a far target.
The position servo closes whatever gap the command has opened at its torque limit: the filter must not lead
a joint that does not move by more than its stall allowance.
"""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config import DeployConfig
from ast_robot.robot.safety import SafetyLimits, SafetyMonitor
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.robot.specs import get_robot
from ast_robot.twin.sim import SAFETY_NORMAL, TwinSim

WRIST = 5  # FR3 joint 6
PERIOD = 1 / 125
SUBSTEPS = 4  # 2 ms physics steps per 8 ms tick


def fr3_limits() -> SafetyLimits:
    return SafetyLimits.from_robot(get_robot("fr3"), DeployConfig(robot="fr3", command_interface="forward_position"))


def drive(ticks: int, blocked_ticks: int, command=None) -> tuple[TwinSim, float, SafetyMonitor]:
    """Drive the FR3 twin's wrist towards home - 1 rad for ``ticks`` ticks, held still (a kinematic block)
    for the first ``blocked_ticks``. ``command(monitor, q, target, t)`` -> joint command (default: the
    safety filter's). Returns the sim, the wrist's peak speed over every physics step, and the monitor
    (driving ends at a protective stop)."""
    sim = TwinSim("fr3")
    mon = SafetyMonitor(fr3_limits())
    q0 = sim.true_positions()
    for k in range(ACQUIRE_STATES):
        mon.observe_state(q0, received_s=(k - ACQUIRE_STATES) * PERIOD)
    target = q0.copy()
    target[WRIST] -= 1.0
    wrist_qpos, wrist_dof = sim.idx.qpos[WRIST], sim.idx.dof[WRIST]
    peak = 0.0
    for k in range(ticks):
        if sim.safety_mode != SAFETY_NORMAL:
            break  # the twin refuses commands in a protective stop
        t = k * PERIOD
        q = sim.true_positions()
        mon.observe_state(q, received_s=t)
        cmd = command(mon, q, target, t) if command else mon.filter(target, now_s=t).positions
        sim.command_positions(cmd)
        for _ in range(SUBSTEPS):
            sim.step_to(sim.time + sim.model.opt.timestep)
            if k < blocked_ticks:
                sim.data.qpos[wrist_qpos], sim.data.qvel[wrist_dof] = q0[WRIST], 0.0
            peak = max(peak, abs(float(sim.data.qvel[wrist_dof])))
    return sim, peak, mon


def test_freed_wrist_stays_under_the_data_sheet_speed():
    sim, peak, mon = drive(ticks=120, blocked_ticks=50)
    assert sim.safety_mode == SAFETY_NORMAL, sim.stop_reason
    assert peak < get_robot("fr3").velocity_limits[WRIST], peak
    assert abs(sim.true_positions()[WRIST] - (get_robot("fr3").home_qpos[WRIST] - 1.0)) < 0.1  # it got there


def test_blocked_wrist_is_led_by_the_stall_allowance_only():
    sim, _, mon = drive(ticks=50, blocked_ticks=50)
    lead = abs(mon.reference[WRIST] - sim.true_positions()[WRIST])
    lim = mon.limits
    assert lead == pytest.approx(lim.stall_lead[WRIST], rel=1e-6)
    assert lim.stall_lead[WRIST] <= 0.5 * lim.max_lead[WRIST]  # max_lead: 0.1 s at 2.09 rad/s = 0.209 rad


def test_null_case_a_max_lead_gap_trips_the_twin():
    """What the filter did before: a stalled joint led by max_lead (lead_s at the allowed speed). Freed, the
    servo overshoots the data sheet x 1.05 and the twin stops: the scenario above can fail."""

    def old_window(mon: SafetyMonitor, q: np.ndarray, target: np.ndarray, t: float) -> np.ndarray:
        lead = mon.limits.max_lead
        return np.clip(target, q - lead, q + lead)

    sim, peak, _ = drive(ticks=120, blocked_ticks=50, command=old_window)
    assert sim.safety_mode != SAFETY_NORMAL and "joint speed above the limit" in sim.stop_reason, peak


def test_free_arm_is_never_held_back_by_the_lead_limit():
    """Null case of the fix: a wrist that follows (no block) is never clamped by the lead window and runs
    at the allowed speed (half the data sheet, 2.09 rad/s), as before."""
    sim, peak, mon = drive(ticks=120, blocked_ticks=0)
    assert mon.counters.get("clamped to lead limit", 0) == 0, mon.counters
    assert sim.safety_mode == SAFETY_NORMAL
    cap = float(mon.limits.max_step[WRIST] / PERIOD)
    assert 0.95 * cap < peak < 1.1 * cap, (peak, cap)


def fr3_monitor() -> SafetyMonitor:
    mon = SafetyMonitor(fr3_limits())
    for k in range(ACQUIRE_STATES):
        mon.observe_state(np.array(get_robot("fr3").home_qpos), received_s=(k - ACQUIRE_STATES) * PERIOD)
    return mon


def window(mon: SafetyMonitor) -> tuple[np.ndarray, np.ndarray]:
    low, high = mon._lead_window()
    return mon.measured - low, high - mon.measured


def test_a_following_joint_is_led_further_in_its_direction_only():
    """Measured moving up at 1 rad/s: up to stall + 2 x lead_s x 1 rad/s ahead (at most max_lead), the stall
    allowance behind; a joint pushed away from its command keeps the stall allowance on the command's side."""
    mon, lim = fr3_monitor(), fr3_limits()
    q = np.array(get_robot("fr3").home_qpos)
    for k in range(3):  # 1 kHz states: the speed is taken over at least one control period
        for i in range(8):
            t = k * PERIOD + i * 1e-3
            mon.observe_state(q + 1.0 * t, received_s=t)
    behind, ahead = window(mon)
    np.testing.assert_allclose(behind, lim.stall_lead, rtol=1e-9)
    np.testing.assert_allclose(ahead, np.minimum(lim.stall_lead + 0.2 * 1.0, lim.max_lead), rtol=1e-6)
    assert np.all(ahead > behind)


def test_speed_after_a_gap_counts_as_rest():
    """After no state for longer than the watchdog the speed is unknown: the stall allowance on both sides."""
    mon, lim = fr3_monitor(), fr3_limits()
    q = np.array(get_robot("fr3").home_qpos)
    mon.observe_state(q, received_s=0.0)
    mon.observe_state(q + 0.01, received_s=PERIOD)  # 1.25 rad/s
    assert np.all(window(mon)[1] > lim.stall_lead)
    for k in range(ACQUIRE_STATES):  # reacquired 0.5 s later, 0.3 rad on
        mon.observe_state(q + 0.3, received_s=0.5 + k * 1e-3)
    np.testing.assert_allclose(window(mon), [lim.stall_lead, lim.stall_lead], rtol=1e-9)


@pytest.mark.parametrize("stamped", [False, True])
def test_the_window_does_not_depend_on_the_absolute_time(stamped):
    """The same states at another absolute time give the same window to the bit (stamped: timed by the
    stamps). Speeds from unrounded intervals differed in the last bits (8 ms after 1234.568 s is
    0.008000000000038 s), a binding window moved them into the commands, and the same episode on
    simulated time differed run to run."""

    def windows(t0: float) -> list[np.ndarray]:
        mon, out = fr3_monitor(), []
        q = np.array(get_robot("fr3").home_qpos)
        for k in range(12):
            t = t0 + k * PERIOD
            if stamped:
                mon.observe_state(q + 0.7 * k * PERIOD, received_s=k * PERIOD + 1e-4 * (k % 3), stamp_s=t)
            else:
                mon.observe_state(q + 0.7 * k * PERIOD, received_s=t)
            out.append(np.concatenate(window(mon)))
        return out

    for a, b in zip(windows(1.0), windows(1234.568), strict=True):
        assert np.array_equal(a, b), a - b

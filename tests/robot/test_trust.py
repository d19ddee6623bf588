"""Which joint states the safety monitor believes, and what a stop commands when hostile states arrive.

The monitor uses UR5e limits at 125 Hz; the "driver" publishes the true arm at 500 Hz (2 ms apart)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ast_robot.config import DeployConfig
from ast_robot.robot.safety import SafetyLimits, SafetyMonitor
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.robot.specs import get_robot

LIM = SafetyLimits.from_robot(get_robot("ur5e"), DeployConfig())
HOME = np.array([-0.3006, -1.6927, 1.9236, -1.8017, -1.571, -1.8712])
DT = 0.002  # driver period (s)


def monitor_at(q=HOME, t0: float = 0.0) -> tuple[SafetyMonitor, float]:
    """A monitor that trusts ``q`` (offered at 500 Hz from ``t0``); returns it and the next state time."""
    mon = SafetyMonitor(LIM)
    t = t0
    for _ in range(ACQUIRE_STATES):
        reason = mon.observe_state(q, t, stamp_s=100.0 + t)
        t += DT
    assert reason is None
    return mon, t


@pytest.mark.parametrize("bad,reason", [
    (HOME + np.array([0, 0, 10.0, 0, 0, 0]), "outside joint limits"),  # elbow beyond +-pi
    (np.full(6, 1e9), "outside joint limits"),
    (HOME + 0.5, "unreachable"),  # 0.5 rad in 2 ms: 250 rad/s on a 3.14 rad/s arm
    (np.zeros(6), "unreachable"),  # a stray all-zeros publisher
])  # fmt: skip
def test_hostile_states_are_not_trusted_and_leave_the_measurement(bad, reason):
    mon, t = monitor_at()
    assert reason in mon.observe_state(bad, t, stamp_s=100.0 + t)
    np.testing.assert_array_equal(mon.measured, HOME)
    assert mon.observe_state(HOME + 0.001, t + DT, stamp_s=100.0 + t + DT) is None  # the driver goes on


def test_first_states_acquire_trust_and_a_long_gap_does_not_grow_the_reach():
    mon = SafetyMonitor(LIM)
    assert mon.observe_state(HOME, 0.0) == "acquiring trust" and mon.measured is None
    mon, t = monitor_at()
    far = HOME + 1.0  # reachable at 3.14 rad/s in the 1 s gap, but nothing vouches for it
    assert mon.observe_state(far, t + 1.0) == "acquiring trust"
    np.testing.assert_array_equal(mon.measured, HOME)
    assert "stale" in mon.hold_reasons(t + 1.0)[0]
    assert mon.observe_state(far, t + 1.002) == "acquiring trust"
    assert mon.observe_state(far, t + 1.004) is None  # a consistent stream: trusted again
    np.testing.assert_array_equal(mon.measured, far)


def test_a_stray_burst_during_a_driver_outage_is_not_trusted_but_a_moved_arm_is():
    mon, t = monitor_at()
    for k in range(5):  # 0.25 s after the driver went silent: a burst of zeros 2 ms apart
        assert mon.observe_state(np.zeros(6), t + 0.25 + k * DT) is not None
    assert mon.measured is not None and np.array_equal(mon.measured, HOME)
    moved = HOME + 0.5  # the arm itself, moved 0.5 rad during the 0.25 s outage: reachable at 3.9 rad/s
    for k in range(ACQUIRE_STATES):
        last = mon.observe_state(moved, t + 0.3 + k * DT)
    assert last is None and np.array_equal(mon.measured, moved)


def test_slow_stray_publisher_is_never_trusted():
    """All-zeros at 10 Hz interleaved with the driver at 500 Hz, the stray first at start-up."""
    mon = SafetyMonitor(LIM)
    for k in range(1500):  # 3 s
        t = k * DT
        if k % 50 == 0:
            assert mon.observe_state(np.zeros(6), t) is not None
        mon.observe_state(HOME, t + 1e-4)
        if k > 5:
            np.testing.assert_array_equal(mon.measured, HOME)
    zeros_alone = SafetyMonitor(LIM)
    assert all(zeros_alone.observe_state(np.zeros(6), k * 0.1) for k in range(30))  # never, even alone
    assert zeros_alone.measured is None


def test_two_streams_at_driver_rate_fail_closed_until_one_stops():
    mon, t = monitor_at()
    for k in range(20):  # a stray at the driver's rate: which one is the arm cannot be told
        mon.observe_state(np.zeros(6), t + k * DT)
        mon.observe_state(HOME, t + k * DT + 1e-4)
    t += 20 * DT
    assert mon.hold_reasons(t), "two disagreeing streams must hold"
    for k in range(ACQUIRE_STATES):  # the stray stops: the driver is believed again at once
        last = mon.observe_state(HOME, t + k * DT)
    assert last is None and not mon.hold_reasons(t + ACQUIRE_STATES * DT)


def test_forged_stamps_buy_no_reach_and_do_not_lock_out_the_driver():
    mon, t = monitor_at()
    assert "unreachable" in mon.observe_state(HOME + 0.3, t, stamp_s=100.0 + t + 0.4)  # 0.4 s "later"
    assert "stamp before" in mon.observe_state(HOME, t + DT, stamp_s=100.0 + t - 0.5)
    assert mon.observe_state(HOME, t + 2 * DT, stamp_s=100.0 + t + 2 * DT) is None


def test_estop_after_a_hostile_state_holds_at_the_last_trusted_state():
    """The issue's case: a stray zeros state just before the e-stop froze the hold 6 rad from the arm."""
    mon, t = monitor_at()
    for k in range(4):
        mon.observe_state(HOME, t + k * DT, stamp_s=100.0 + t + k * DT)
        cmd = mon.filter(HOME + 0.05, now_s=t + k * DT + 1e-4).positions
    mon.observe_state(np.zeros(6), t + 4 * DT)
    mon.set_estop(True)
    hold = mon.filter(None, now_s=t + 4 * DT + 1e-4).positions
    assert np.all(np.abs(hold - cmd) <= LIM.max_step + 1e-12)
    assert np.all(np.abs(hold - HOME) <= np.abs(cmd - HOME) + 1e-12)  # towards the arm, not towards zeros


# ----- property: interleavings of valid and hostile states, e-stops and safety-mode toggles ---------------
EVENTS = st.sampled_from(["valid"] * 6 + ["zeros", "limits", "huge", "jump", "old", "future", "random",
                                          "estop", "mode", "gap", "target", "episode"])  # fmt: skip
TAU = 0.03  # s, the simulated arm's time constant following its command


def hostile_state(kind: str, q_true: np.ndarray, history: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    if kind == "zeros":
        return np.zeros(6)
    if kind == "limits":
        return np.where(rng.random(6) < 0.5, LIM.upper + 0.5, LIM.lower - 0.5)
    if kind == "huge":
        return np.full(6, 1e9)
    if kind == "jump":
        return q_true + rng.choice([-0.5, 0.5], 6)
    if kind == "old":
        return history[max(0, len(history) - 50)]  # the arm 0.1 s ago
    return rng.uniform(LIM.lower, LIM.upper)  # "future" stamps and "random" positions


@settings(max_examples=60, deadline=None)
@given(st.lists(EVENTS, min_size=200, max_size=700), st.integers(0, 2**31 - 1))
def test_commands_stay_in_limits_step_and_lead_bounds_of_the_true_arm(events, seed):
    rng = np.random.default_rng(seed)
    mon, t = monitor_at()
    mon.set_safety_mode(True)
    q, history, prev, target = HOME.copy(), [HOME.copy()], None, HOME + 0.8
    slack = LIM.max_velocity * LIM.stale_after_s  # the arm moves while the measurement ages
    for k, kind in enumerate(events):
        t += DT
        if kind in ("valid", "gap", "target", "estop", "mode", "episode"):
            if kind == "gap":
                t += rng.uniform(0.01, 0.2)
            elif kind == "estop":
                mon.set_estop(not mon.estop)
            elif kind == "mode":
                mon.set_safety_mode(not mon.hold_reasons(t) or rng.random() < 0.5, "toggle")
            elif kind == "target":
                target = rng.uniform(LIM.lower, LIM.upper)
            elif kind == "episode":  # an episode ends and the next starts
                mon.reset_reference()
            mon.observe_state(q, t, stamp_s=100.0 + t)
        else:
            stamp = 100.0 + t + (0.4 if kind == "future" else 0.0)
            mon.observe_state(hostile_state(kind, q, history, rng), t + 1e-4, stamp_s=stamp)
        if k % 4 == 3:  # a 125 Hz control tick
            cmd = mon.filter(target, now_s=t + 2e-4).positions
            assert cmd is not None and np.all(cmd >= LIM.lower) and np.all(cmd <= LIM.upper)
            if prev is not None:
                assert np.all(np.abs(cmd - prev) <= LIM.max_step + 1e-12), (k, kind, np.abs(cmd - prev).max())
            assert np.all(np.abs(cmd - q) <= LIM.max_lead + slack), (k, kind, np.abs(cmd - q).max())
            prev = cmd
        if prev is not None:  # the arm follows the last command (first order, within the data-sheet speed)
            move = (prev - q) * (1.0 - np.exp(-DT / TAU))
            q = q + np.clip(move, -LIM.max_velocity * DT, LIM.max_velocity * DT)
        history.append(q.copy())


def test_restart_from_rest_at_the_last_command_not_a_step_back_to_the_trailing_arm():
    mon, t = monitor_at()
    for k in range(30):  # commands run ahead of an arm that stays put (within the lead window)
        mon.observe_state(HOME, t + k * DT)
        cmd = mon.filter(HOME + 1.0, now_s=t + k * DT + 1e-4).positions
    assert np.all(np.abs(cmd - HOME) > LIM.max_step)
    mon.reset_reference()  # an episode stops and the next starts
    nxt = mon.filter(HOME + 1.0, now_s=t + 30 * DT).positions
    assert np.all(np.abs(nxt - cmd) <= LIM.max_step_change + 1e-12)
    mon.observe_state(HOME, t + 31 * DT)
    acquire_far = HOME + 0.5  # the arm was moved (a gap, then a consistent stream elsewhere)
    for k in range(ACQUIRE_STATES):
        mon.observe_state(acquire_far, t + 1.0 + k * DT)
    mon.reset_reference()
    np.testing.assert_allclose(mon.reference, acquire_far)

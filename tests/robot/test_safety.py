"""The safety filter under hostile input: every command it emits is finite, in limits and step-bounded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ast_robot.config import DeployConfig
from ast_robot.config.errors import ConfigError
from ast_robot.robot.safety import MAX_WATCHDOG_S, SafetyLimits, SafetyMonitor
from ast_robot.robot.safety.arm import STALL_SHARE
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.robot.specs import get_robot

J = 6
PERIOD = 1 / 125
LOWER = np.array([-6.28, -6.28, -3.14, -6.28, -6.28, -6.28])
UPPER = -LOWER
VELOCITY = np.full(J, np.pi)  # rad/s, UR5e data sheet
STEP = VELOCITY * 0.5 * PERIOD
ACCEL = np.full(J, 5.0)  # rad/s^2
CHANGE = ACCEL * PERIOD**2  # most a step may change per tick (rad)
INSTANT = 1e9  # an acceleration limit that never binds (tests of the other limits)


def make_limits(**kw) -> SafetyLimits:
    args = dict(joint_names=tuple(f"j{i}" for i in range(J)), lower=LOWER, upper=UPPER, max_step=STEP,
                max_velocity=VELOCITY, max_acceleration=ACCEL,
                workspace_min=(-0.5, -0.5, 0.0), workspace_max=(0.5, 0.5, 1.0), period_s=PERIOD)
    args.update(kw)
    return SafetyLimits(**args)


def acquire(mon: SafetyMonitor, q, received_s: float) -> None:
    """Offer ``q`` as often as trust needs to be (re)acquired; the last offer must be trusted."""
    for _ in range(ACQUIRE_STATES - 1):
        mon.observe_state(q, received_s=received_s)
    assert mon.observe_state(q, received_s=received_s) is None


def fresh_monitor(q=None, ee=None, **limits) -> SafetyMonitor:
    mon = SafetyMonitor(make_limits(**limits), ee_position=ee)
    acquire(mon, np.zeros(J) if q is None else q, 0.0)
    return mon


def assert_safe(mon: SafetyMonitor, decision, previous: np.ndarray) -> None:
    pos = decision.positions
    assert pos is not None and pos.shape == (J,)
    assert np.all(np.isfinite(pos))
    assert np.all(pos >= LOWER) and np.all(pos <= UPPER)
    assert np.all(np.abs(pos - previous) <= STEP + 1e-12)


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
hostile = st.one_of(
    arrays(np.float64, st.integers(0, 20), elements=floats),
    arrays(np.float64, J, elements=floats),
    st.lists(floats, min_size=J, max_size=J),
    st.just("not a number"),
    st.none(),
    st.just([[1.0, 2.0], [3.0]]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(hostile, min_size=1, max_size=15))
def test_hostile_targets_never_produce_unsafe_commands(targets):
    mon = fresh_monitor()
    previous = np.zeros(J)
    for k, target in enumerate(targets):
        mon.observe_state(previous, received_s=k * PERIOD)
        decision = mon.filter(target, now_s=k * PERIOD + 1e-4)
        assert_safe(mon, decision, previous)
        previous = decision.positions


def test_valid_target_passes_unchanged():
    mon = fresh_monitor()
    target = CHANGE * 0.5  # from rest, within the acceleration limit
    decision = mon.filter(target, now_s=0.001)
    assert not decision.held and not decision.clamped and decision.reasons == ()
    np.testing.assert_array_equal(decision.positions, target)


def test_far_target_is_step_limited_and_joint_limited():
    mon = fresh_monitor(q=UPPER - 1e-4)
    decision = mon.filter(UPPER + 5.0, now_s=0.001)
    assert decision.clamped and not decision.held
    assert "clamped to joint limits" in decision.reasons
    np.testing.assert_array_equal(decision.positions, UPPER)
    mon2 = fresh_monitor(max_acceleration=np.full(J, INSTANT))
    d2 = mon2.filter(np.full(J, 1.0), now_s=0.001)
    np.testing.assert_allclose(d2.positions, STEP)
    assert "clamped to per-step velocity limit" in d2.reasons


@pytest.mark.parametrize("bad", [[np.nan] * J, [np.inf] + [0.0] * (J - 1), [0.0] * (J - 1), [], "x", None])
def test_malformed_target_holds_previous_command(bad):
    mon = fresh_monitor()
    first = mon.filter(STEP * 0.5, now_s=0.001).positions
    decision = mon.filter(bad, now_s=0.002)
    assert decision.held and decision.reasons
    np.testing.assert_array_equal(decision.positions, first)


def test_watchdog_trips_after_two_periods_and_recovers():
    mon = fresh_monitor()
    assert not mon.filter(np.zeros(J), now_s=2 * PERIOD - 1e-6).held
    held = mon.filter(np.full(J, 0.01), now_s=2 * PERIOD + 1e-6)
    assert held.held and "joint state stale" in held.reasons[0]
    # after the gap one state is not enough: trust is reacquired from ACQUIRE_STATES consistent states
    assert mon.observe_state(np.zeros(J), received_s=3 * PERIOD) == "acquiring trust"
    assert mon.filter(np.zeros(J), now_s=3 * PERIOD + 1e-3).held
    acquire(mon, np.zeros(J), 3 * PERIOD + 1e-3)
    assert not mon.filter(np.zeros(J), now_s=3 * PERIOD + 2e-3).held


def test_estop_and_safety_mode_hold_until_released():
    mon = fresh_monitor()
    mon.set_estop(True)
    d = mon.filter(np.full(J, 0.01), now_s=0.001)
    assert d.held and d.reasons == ("e-stop engaged",)
    mon.set_estop(False)
    mon.set_safety_mode(False, "PROTECTIVE_STOP")
    d = mon.filter(np.full(J, 0.01), now_s=0.002)
    assert d.held and "PROTECTIVE_STOP" in d.reasons[0]
    mon.set_safety_mode(True)
    assert not mon.filter(np.full(J, 0.001), now_s=0.003).held
    assert mon.counters["e-stop engaged"] == 1


def test_no_state_means_nothing_to_send():
    mon = SafetyMonitor(make_limits())
    decision = mon.filter(np.zeros(J), now_s=0.0)
    assert decision.positions is None and decision.held


def test_workspace_box_blocks_leaving_but_allows_returning():
    def ee(q):  # a toy arm: the end effector sits at the first three joint values
        return np.asarray(q[:3], dtype=float)

    mon = fresh_monitor(q=np.array([0.5 - 1e-3, 0, 0.5, 0, 0, 0]), ee=ee, max_acceleration=np.full(J, INSTANT))
    out = mon.filter(np.array([0.6, 0, 0.5, 0, 0, 0]), now_s=0.001)
    assert out.held and "workspace" in out.reasons[0]
    outside = fresh_monitor(q=np.array([0.7, 0, 0.5, 0, 0, 0]), ee=ee)
    back = outside.filter(np.array([0.0, 0, 0.5, 0, 0, 0]), now_s=0.001)
    assert not back.held and back.positions[0] < 0.7


@pytest.mark.parametrize("field,value,match", [
    ("lower", UPPER, "lower limit must be below"),
    ("max_step", np.zeros(J), "max_step"),
    ("lower", LOWER[:3], "expected 6 values"),
    ("workspace_min", (0.0, 0.0, 2.0), "workspace_min/max"),
    ("period_s", -1.0, "period_s"),
    ("upper", [np.nan] * J, "finite"),
    ("max_step", VELOCITY * PERIOD * 5.0, "exceeds the data-sheet speed"),  # speed scale 5
    ("max_acceleration", -ACCEL, "max_acceleration"),
    ("watchdog_periods", 1e6, "watchdog_periods: expected > 0 and at most"),
    ("watchdog_periods", MAX_WATCHDOG_S / PERIOD * 1.01, "at most"),
    ("watchdog_periods", np.nan, "watchdog_periods"),
    ("lead_s", PERIOD / 2, "lead_s: expected one control period"),
    ("lead_s", 1e6, "lead_s"),
])  # fmt: skip
def test_bad_limits_name_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        make_limits(**{field: value})


def test_observe_state_rejects_garbage():
    mon = SafetyMonitor(make_limits())
    with pytest.raises(ValueError, match="joint_state.position"):
        mon.observe_state([np.nan] * J, 0.0)
    with pytest.raises(ValueError, match="expected 6 values"):
        mon.observe_state([0.0] * 3, 0.0)


def test_segment_time_keeps_the_speed_from_the_measured_position():
    mon = fresh_monitor()
    assert mon.segment_time(STEP * 0.5) == pytest.approx(2 * PERIOD)
    far = np.zeros(J)
    far[0] = 10 * STEP[0]  # the robot lags ten steps behind this command
    assert mon.segment_time(far) == pytest.approx(10 * PERIOD)


@pytest.mark.parametrize("field,value", [("max_joint_speed_scale", 5.0), ("max_joint_speed_scale", 0.0),
                                         ("max_joint_speed_scale", float("nan")), ("watchdog_periods", -1.0),
                                         ("control_hz", 0.0), ("episode_timeout_s", float("inf") * 0 )])  # fmt: skip
def test_deploy_config_enforces_its_documented_bounds_however_built(field, value):
    with pytest.raises(ConfigError, match=f"deploy.{field}"):
        DeployConfig(**{field: value})  # keywords, as the ROS node builds it: no from_dict involved


def test_from_robot_refuses_limits_beyond_the_data_sheet():
    class Hostile:  # a config that skipped DeployConfig's checks (duck-typed, e.g. a namespace)
        control_hz, max_joint_speed_scale, watchdog_periods = 125.0, 5.0, 2.0
        workspace_min, workspace_max = (-0.9, -0.9, 0.0), (0.9, 0.9, 1.2)

    with pytest.raises(ValueError, match=r"max_joint_speed_scale: expected .* \(0, 1\], got 5.0"):
        SafetyLimits.from_robot(get_robot("ur5e"), Hostile())
    Hostile.max_joint_speed_scale, Hostile.watchdog_periods = 1.0, 1e6  # 8000 s of blind motion
    with pytest.raises(ValueError, match="watchdog_periods"):
        SafetyLimits.from_robot(get_robot("ur5e"), Hostile())
    Hostile.watchdog_periods = 2.0
    lim = SafetyLimits.from_robot(get_robot("fr3"), Hostile())
    np.testing.assert_allclose(lim.max_step / PERIOD, get_robot("fr3").velocity_limits)  # scale 1: the data sheet
    np.testing.assert_allclose(lim.max_acceleration, [15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])


lags = st.lists(st.floats(0.0, 1.0), min_size=30, max_size=120)


@settings(max_examples=150, deadline=None)
@given(lags, st.lists(st.floats(-7.0, 7.0), min_size=J, max_size=J), st.integers(0, 2**31 - 1))
def test_lagging_arm_bounds_lead_and_acceleration(lag, far, seed):
    """The arm follows a fraction (0: stalled .. 1: ideal servo) of the way to each command; targets jump
    around far away. Every command stays within max_lead of the measured position, in the joint limits,
    and changes its step by at most the acceleration limit."""
    rng = np.random.default_rng(seed)
    mon = fresh_monitor()
    lim = mon.limits
    q, prev_cmd, prev_step = np.zeros(J), np.zeros(J), np.zeros(J)
    for k, alpha in enumerate(lag):
        mon.observe_state(q, received_s=k * PERIOD)
        target = np.asarray(far) if rng.random() < 0.7 else rng.uniform(LOWER, UPPER)
        out = mon.filter(target, now_s=k * PERIOD + 1e-4)
        cmd = out.positions
        step = cmd - prev_cmd
        assert np.all(np.abs(cmd - q) <= lim.max_lead + 1e-12), (k, np.abs(cmd - q).max())
        assert np.all(np.abs(step) <= STEP + 1e-12)
        if "clamped to lead limit (command ahead of the measured position)" not in out.reasons:
            # the arm followed: the step changed by at most the acceleration limit (at the lead edge the
            # lead bound wins and the command stops there)
            assert np.all(np.abs(step - prev_step) <= CHANGE + 1e-12), (k, np.abs(step - prev_step).max())
        assert np.all(cmd >= LOWER) and np.all(cmd <= UPPER)
        # the arm lags behind (stalls at alpha = 0), never faster than the data-sheet speed
        q = q + np.clip(alpha * (cmd - q), -VELOCITY * PERIOD, VELOCITY * PERIOD)
        prev_cmd, prev_step = cmd, step


def test_stalled_arm_is_not_led_beyond_the_stall_lead():
    """A joint that has not moved towards a command ahead of it for 2 s (longer than STALL_AFTER_S) is led by
    the stall allowance only (STALL_SHARE of max_lead), not by lead_s at the allowed speed (0.157 rad here):
    freed, its servo closes that gap."""
    mon = fresh_monitor()
    for k in range(250):  # 2 s of a far target while the arm does not move
        mon.observe_state(np.zeros(J), received_s=k * PERIOD)
        out = mon.filter(np.full(J, 3.0), now_s=k * PERIOD + 1e-4)
    lim = mon.limits
    np.testing.assert_allclose(lim.stall_lead, STALL_SHARE * lim.max_lead)
    assert 0 < STALL_SHARE < 1
    assert np.all(lim.stall_lead < lim.max_lead)
    np.testing.assert_allclose(out.positions, lim.stall_lead, rtol=1e-6)
    assert "clamped to lead limit (command ahead of the measured position)" in out.reasons


def moving_monitor(ticks: int = 40, follow: float = 0.5) -> tuple[SafetyMonitor, np.ndarray]:
    """A monitor whose commands run ahead of an arm that covers ``follow`` of its lag each tick (returns it
    and the last command)."""
    mon = fresh_monitor()
    q = np.zeros(J)
    for k in range(ticks):
        mon.observe_state(q, received_s=k * PERIOD)
        cmd = mon.filter(np.full(J, 1.0), now_s=k * PERIOD + 1e-4).positions
        q = q + follow * (cmd - q)
    mon.observe_state(q, received_s=ticks * PERIOD)
    return mon, cmd


@pytest.mark.parametrize("stop", ["estop", "safety"])
def test_stop_holds_towards_the_arm_within_one_step_and_restarts_from_rest(stop):
    mon, last_cmd = moving_monitor(follow=0.2)
    measured = mon.measured
    assert np.all(last_cmd > measured + STEP)  # the command leads the arm by more than a step
    (mon.set_estop(True) if stop == "estop" else mon.set_safety_mode(False, "PROTECTIVE_STOP"))
    now = 40 * PERIOD + 1e-4
    for _ in range(3):
        held = mon.filter(np.full(J, 1.0), now_s=now)
        assert held.held
        # one step back from the last command towards the arm: the step bound holds for the first hold too
        np.testing.assert_allclose(held.positions, last_cmd - STEP, rtol=0, atol=1e-12)
    hold = held.positions
    (mon.set_estop(False) if stop == "estop" else mon.set_safety_mode(True))
    resumed = mon.filter(np.full(J, 1.0), now_s=now + 1e-3)
    assert not resumed.held
    assert np.all(np.abs(resumed.positions - hold) <= CHANGE + 1e-12)  # from rest, at the hold point


def test_stop_hold_at_the_measured_position_when_within_a_step():
    mon = fresh_monitor()
    first = mon.filter(CHANGE * 0.5, now_s=0.001).positions  # a command half an acceleration step ahead
    mon.set_estop(True)
    np.testing.assert_array_equal(mon.filter(None, now_s=0.002).positions, np.zeros(J))
    assert np.all(np.abs(first) <= STEP)


def test_stale_state_repeats_the_last_command():
    mon, last_cmd = moving_monitor()
    stale = mon.filter(np.full(J, 1.0), now_s=40 * PERIOD + 3 * PERIOD)
    assert stale.held and "joint state stale" in stale.reasons[0]
    np.testing.assert_array_equal(stale.positions, last_cmd)


def test_soft_hold_brakes_within_the_acceleration_limit():
    mon, last_cmd = moving_monitor()
    prev, prev_step = last_cmd, None
    for _ in range(40):
        out = mon.filter([np.nan] * J, now_s=40 * PERIOD + 1e-4)
        step = out.positions - prev
        assert out.held and "finite" in out.reasons[0]
        if prev_step is not None:
            assert np.all(np.abs(step - prev_step) <= CHANGE + 1e-12)
        prev, prev_step = out.positions, step
    np.testing.assert_allclose(prev_step, 0.0, atol=1e-15)  # stopped


def test_stop_hold_stays_put_while_the_arm_sags():
    """The stop point is fixed when the e-stop begins: a sagging (or pushed) arm does not drag it along."""
    mon, _ = moving_monitor()
    mon.set_estop(True)
    now = 40 * PERIOD + 1e-4
    first = mon.filter(None, now_s=now).positions
    q = mon.measured.copy()
    for k in range(50):  # 0.4 s of the arm sinking 2 mrad per tick under the hold
        q = q - 0.002
        mon.observe_state(q, received_s=now + k * PERIOD)
        np.testing.assert_array_equal(mon.filter(None, now_s=now + k * PERIOD + 1e-4).positions, first)
    mon.set_estop(False)
    resumed = mon.filter(np.full(J, 1.0), now_s=now + 49 * PERIOD + 2e-4).positions
    assert np.all(np.abs(resumed - first) <= STEP + 1e-12)  # no jump: from the hold point, towards the arm


@pytest.mark.parametrize("rate_hz", [125.0, 500.0])
def test_lead_limit_does_not_cap_the_speed_of_a_following_arm(rate_hz):
    """An arm that tracks its command (one tick behind) reaches the full allowed speed at any rate."""
    period = 1.0 / rate_hz
    mon = fresh_monitor(period_s=period, max_step=VELOCITY * 0.5 * period, watchdog_periods=2.0)
    q, prev = np.zeros(J), np.zeros(J)
    speeds = []
    for k in range(int(1.5 * rate_hz)):  # 1.5 s towards a target 2 rad away
        mon.observe_state(q, received_s=k * period)
        cmd = mon.filter(np.full(J, 2.0), now_s=k * period + 1e-5).positions
        speeds.append(np.abs(cmd - prev).max() / period)
        q, prev = cmd.copy(), cmd
    assert max(speeds) == pytest.approx(np.pi * 0.5, rel=1e-6)  # the speed scale's 1.57 rad/s


def test_command_far_from_a_pushed_arm_walks_back_one_step_at_a_time():
    """The arm is pushed 0.5 rad away from its command: no jump, the command steps towards the arm."""
    mon, last = moving_monitor()
    pushed = mon.measured - 0.5  # believed only after a gap long enough to move there, from a fresh chain
    t0 = 41 * PERIOD + 0.2
    acquire(mon, pushed, t0)
    prev = last
    for k in range(10):
        assert mon.observe_state(pushed, received_s=t0 + (1 + k) * PERIOD) is None
        cmd = mon.filter(np.full(J, 1.0), now_s=t0 + (1 + k) * PERIOD + 1e-4).positions
        assert np.all(np.abs(cmd - prev) <= STEP + 1e-12)  # never more than one step
        assert np.all(cmd < prev)  # towards the arm, not on towards the target
        prev = cmd

"""The safety filter under hostile input: every command it emits is finite, in limits and step-bounded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ast_robot.deploy.safety import SafetyLimits, SafetyMonitor

J = 6
PERIOD = 1 / 125
LOWER = np.array([-6.28, -6.28, -3.14, -6.28, -6.28, -6.28])
UPPER = -LOWER
STEP = np.full(J, np.pi) * 0.5 * PERIOD


def make_limits(**kw) -> SafetyLimits:
    args = dict(joint_names=tuple(f"j{i}" for i in range(J)), lower=LOWER, upper=UPPER, max_step=STEP,
                workspace_min=(-0.5, -0.5, 0.0), workspace_max=(0.5, 0.5, 1.0), period_s=PERIOD)
    args.update(kw)
    return SafetyLimits(**args)


def fresh_monitor(q=None, ee=None) -> SafetyMonitor:
    mon = SafetyMonitor(make_limits(), ee_position=ee)
    mon.observe_state(np.zeros(J) if q is None else q, received_s=0.0)
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
    target = STEP * 0.5
    decision = mon.filter(target, now_s=0.001)
    assert not decision.held and not decision.clamped and decision.reasons == ()
    np.testing.assert_array_equal(decision.positions, target)


def test_far_target_is_step_limited_and_joint_limited():
    mon = fresh_monitor(q=UPPER - 1e-4)
    decision = mon.filter(UPPER + 5.0, now_s=0.001)
    assert decision.clamped and not decision.held
    assert "clamped to joint limits" in decision.reasons
    np.testing.assert_array_equal(decision.positions, UPPER)
    mon2 = fresh_monitor()
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
    mon.observe_state(np.zeros(J), received_s=3 * PERIOD)
    assert not mon.filter(np.zeros(J), now_s=3 * PERIOD + 1e-3).held


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

    mon = fresh_monitor(q=np.array([0.5 - 1e-3, 0, 0.5, 0, 0, 0]), ee=ee)
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

"""The gripper's gate in the one safety module: data-sheet limits, hostile widths, rate, stops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ast_robot.robot.safety import GRIPPERS, GripperLimits, GripperMonitor


def _monitor(model: str = "franka_hand", force: float = 40.0, speed: float = 0.05, rate: float = 10.0):
    return GripperMonitor(GripperLimits.for_gripper(model, force, speed, rate))


def test_data_sheet_values_are_the_cited_ones():
    hand, robotiq = GRIPPERS["franka_hand"], GRIPPERS["robotiq_2f85"]
    assert (hand.max_width, hand.min_force, hand.max_force, hand.peak_force, hand.max_speed) == (0.08, 30.0, 70.0, 140.0, 0.1)
    assert (robotiq.max_width, robotiq.min_force, robotiq.max_force, robotiq.max_speed) == (0.085, 20.0, 235.0, 0.15)


@pytest.mark.parametrize("model,force,speed,rate,field", [
    ("franka_hand", 71.0, 0.05, 10.0, "force_n"),  # above the continuous force (140 N is a peak, never asked)
    ("franka_hand", 140.0, 0.05, 10.0, "force_n"),
    ("franka_hand", float("nan"), 0.05, 10.0, "force_n"),
    ("franka_hand", 0.0, 0.05, 10.0, "force_n"),
    ("franka_hand", 29.0, 0.05, 10.0, "force_n"),  # below the Franka Hand's adjustable 30-70 N
    ("robotiq_2f85", 10.0, 0.05, 10.0, "force_n"),  # below the 2F-85's 20 N
    ("robotiq_2f85", 236.0, 0.05, 10.0, "force_n"),
    ("franka_hand", 40.0, 0.11, 10.0, "speed_mps"),
    ("robotiq_2f85", 40.0, -0.01, 10.0, "speed_mps"),
    ("franka_hand", 40.0, 0.05, 100.0, "max_rate_hz"),
    ("franka_hand", 40.0, 0.05, float("inf"), "max_rate_hz"),
])  # fmt: skip
def test_limits_beyond_the_data_sheet_are_refused(model, force, speed, rate, field):
    with pytest.raises(ValueError, match=f"gripper.{field}"):
        GripperLimits.for_gripper(model, force, speed, rate)


def test_the_data_sheet_bounds_themselves_are_allowed():
    """Null case of the refusals above: each gripper's own force and speed range ends pass."""
    for spec in GRIPPERS.values():
        for force in (spec.min_force, spec.max_force):
            assert GripperLimits.for_gripper(spec.name, force, spec.max_speed).force == force


def test_unknown_gripper_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown; known: \['franka_hand', 'robotiq_2f85'\]"):
        GripperLimits.for_gripper("suction", 10.0, 0.05)


@pytest.mark.parametrize("width", [float("nan"), float("inf"), -float("inf"), None, "0.02", [0.01, 0.02], object()])
def test_hostile_widths_send_nothing(width):
    m = _monitor()
    d = m.filter(width, 0.0)
    assert d.width is None and d.reasons, d
    # the gate still works afterwards, and the first real command is not treated as "too fast"
    assert m.filter(0.04, 0.0).width == 0.04


@pytest.mark.parametrize("model", sorted(GRIPPERS))
def test_out_of_stroke_widths_are_clamped_to_the_data_sheet(model):
    m, spec = _monitor(model), GRIPPERS[model]
    d = m.filter(1.0, 0.0)
    assert d.width == spec.max_width and "clamped" in d.reasons[0]
    d = m.filter(-0.5, 1.0)
    assert d.width == spec.min_width and "clamped" in d.reasons[0]


def test_commands_faster_than_the_rate_are_withheld():
    m = _monitor(rate=10.0)
    assert m.filter(0.08, 0.0).width == 0.08
    for t in (0.01, 0.05, 0.099):  # within 100 ms of the last one sent
        d = m.filter(0.0, t)
        assert d.width is None and d.reasons[0].startswith("gripper rate")
    assert m.filter(0.0, 0.1).width == 0.0
    # a flood of 1000 commands in one second: at most 10 go out
    sent = sum(m.filter(w, 1.0 + k / 1000).width is not None for k, w in enumerate(np.linspace(0, 0.08, 1000)))
    assert sent <= 10


def test_non_finite_time_is_withheld():
    assert _monitor().filter(0.02, math.nan).width is None


def test_nothing_goes_out_while_the_arm_is_stopped():
    m = _monitor()
    assert m.filter(0.08, 0.0).width == 0.08
    d = m.filter(0.08, 1.0, stopped=True)  # opening now would drop what the hand holds
    assert d.width is None and "stopped" in d.reasons[0]


def test_closing_is_a_grasp_with_the_configured_force_opening_a_move():
    m = _monitor(force=40.0)
    assert m.filter(0.08, 0.0).force == 0.0  # from open to open: a move
    close = m.filter(0.0, 1.0)
    assert close.width == 0.0 and close.force == 40.0 and close.speed == 0.05
    assert m.filter(0.08, 2.0).force == 0.0
    assert _monitor().filter(0.01, 0.0).force == 40.0  # the first command: the hand counts as open


def test_an_unchanged_width_is_not_sent_again():
    """A repeated close would reach the Franka Hand as a Move to the same width, preempting the Grasp."""
    m = _monitor()
    assert m.filter(0.0, 0.0).force == 40.0
    for t in (1.0, 2.0, 3.0):
        d = m.filter(0.0005, t)  # within the deadband
        assert d.width is None and d.reasons == ()
    assert m.filter(0.03, 4.0).width == 0.03
    m.reset()  # a new episode: the hand may have been opened meanwhile, the first command goes out again
    assert m.filter(0.03, 4.01).width == 0.03 and m.filter(0.03, 5.0).width is None


def test_random_hostile_sequences_never_leave_the_limits():
    rng = np.random.default_rng(0)
    for model in GRIPPERS:
        m, spec = _monitor(model, force=50.0), GRIPPERS[model]
        pool = [np.nan, np.inf, -np.inf, -1.0, 0.0, spec.max_width, 2.0, 1e300, -1e-300]
        t = 0.0
        for _ in range(2000):
            t += float(rng.choice([0.0, 1e-3, 0.05, 0.2]))
            width = float(rng.choice(pool)) if rng.random() < 0.5 else float(rng.uniform(-0.1, 0.2))
            d = m.filter(width, t, stopped=bool(rng.random() < 0.1))
            if d.width is not None:
                assert spec.min_width <= d.width <= spec.max_width and d.force in (0.0, 50.0)

"""An episode starts from rest at the measured arm only where a command may jump there (issue 21, hostile driver).

bench/hostile_driver.py stops and starts an episode each second while its arm moves: every command beyond the
per-tick step bound (4-10 per run, 2.2-2.4 x max_step) was an episode's first command, put on the measured arm
(reset_reference(from_measured=True), ddbe9e8) while the arm still moved towards the last command 0.034-0.037 rad
ahead: a step back against its motion. Now the jump happens only when the arm is within one step of the last
command or measured at rest (ddbe9e8's case: moved home meanwhile, at rest); the session does not start before.
Each decision also says which path of the monitor made it (SafetyDecision.kind), for the bench's instrument.
"""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config import DeployConfig
from ast_robot.robot.safety import SafetyLimits, SafetyMonitor, arm
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.robot.specs import get_robot

LIM = SafetyLimits.from_robot(get_robot("ur5e"), DeployConfig())
HOME = np.array([-0.3006, -1.6927, 1.9236, -1.8017, -1.571, -1.8712])
DT = 0.002  # a 500 Hz joint-state stream


def monitor_at(q: np.ndarray, t0: float = 0.0, states: int = ACQUIRE_STATES + 12) -> tuple[SafetyMonitor, float]:
    mon = SafetyMonitor(LIM)
    reasons = [mon.observe_state(q, t0 + k * DT) for k in range(states)]
    assert reasons[-1] is None and mon.at_rest, reasons
    return mon, t0 + (states - 1) * DT


def drive_moving(mon: SafetyMonitor, t: float, ticks: int, tau: float = 0.03) -> tuple[np.ndarray, float]:
    """The filter drives joint 0 towards +1 rad at its allowed speed; the arm follows its command as a first-order
    servo of time constant ``tau`` (the bench's arm). Returns the arm and the time of the last state."""
    q, target = mon.measured, mon.measured + np.eye(6)[0]
    for _ in range(ticks):
        cmd = mon.filter(target, t + 1e-4).positions
        for _ in range(4):  # four states per 8 ms tick
            t += DT
            q = q + (cmd - q) * (1 - np.exp(-DT / tau))
            assert mon.observe_state(q, t) is None
    return q, t


def test_a_moving_arm_is_not_jumped_to_the_first_command_starts_one_step_from_the_last():
    mon, t = monitor_at(HOME)
    q, t = drive_moving(mon, t, 60)  # cruising: the command leads the arm by ~0.05 rad
    last = mon.reference.copy()
    assert np.abs(last - q).max() > 2 * LIM.max_step.max() and not mon.at_rest and not mon.settled
    mon.reset_reference(from_measured=True)  # an episode's start
    first = mon.filter(q, t + 1e-4)  # the policy asks for the arm where it is
    assert np.abs(first.positions - last).max() <= LIM.max_step.max() + 1e-12, "a step back against the motion"
    assert first.kind == arm.KIND_MOTION


def test_settled_once_the_arm_reaches_its_command_then_the_episode_starts_at_the_measured_arm():
    mon, t = monitor_at(HOME)
    q, t = drive_moving(mon, t, 60)
    last = mon.reference.copy()
    target = last.copy()
    for _ in range(40):  # the command stops; the arm closes the gap
        mon.filter(target, t + 1e-4)
        for _ in range(4):
            t += DT
            q = q + (mon.reference - q) * (1 - np.exp(-DT / 0.03))
            mon.observe_state(q, t)
        if mon.settled:
            break
    assert mon.settled and np.abs(mon.reference - q).max() <= LIM.max_step.max()
    mon.reset_reference(from_measured=True)
    first = mon.filter(q, t + 1e-4)
    np.testing.assert_allclose(first.positions, q, atol=1e-12)  # from rest at the measured arm, as the envs start
    assert first.kind == f"{arm.KIND_FROM_MEASURED} (episode start)"


def test_an_arm_at_rest_away_from_its_command_starts_at_the_arm_as_ddbe9e8_fixed():
    """Moved home between episodes (an operator; the twin's reset), at rest there: the command jumps to it (asks
    for no motion), however far the last command was."""
    mon, t = monitor_at(HOME)
    q, t = drive_moving(mon, t, 12)
    assert np.abs(mon.reference - HOME).max() < LIM.max_lead.min()  # the last command inside the lead window
    for k in range(1, ACQUIRE_STATES + 20):  # states at rest at home
        mon.observe_state(HOME, t + k * DT)
    assert mon.at_rest and mon.settled
    mon.reset_reference(from_measured=True)
    first = mon.filter(HOME, t + (ACQUIRE_STATES + 20) * DT)
    np.testing.assert_allclose(first.positions, HOME, atol=1e-12)


def test_rest_is_not_known_after_a_gap_in_the_states():
    mon, t = monitor_at(HOME)
    drive_moving(mon, t, 12)
    far = HOME + 0.02  # teleported a little while nothing was heard: one state after a gap proves no rest
    assert mon.observe_state(far, t + 1.0) is not None or not mon.at_rest
    assert not mon.at_rest


@pytest.mark.parametrize("case,kind", [("stop", arm.KIND_STOP), ("stale", arm.KIND_STALE), ("brake", arm.KIND_BRAKE),
                                       ("first", f"{arm.KIND_FROM_MEASURED} (first command)")])  # fmt: skip
def test_each_decision_names_the_path_that_made_it(case, kind):
    mon, t = monitor_at(HOME)
    if case == "stop":
        mon.set_estop(True)
    if case in ("stale", "brake"):
        mon.filter(HOME, t)  # a command before: the path is not the first command's
        t += 1.0 if case == "stale" else 0.0
    decision = mon.filter(None if case == "brake" else HOME, t + 1e-4)
    assert decision.kind == kind, decision


def test_a_walk_back_after_a_dragged_arm_is_named():
    """Joint 0 dragged away from its command faster than the allowed speed: the command walks after it at the
    arm's measured speed (walk_steps), more than max_step a tick, and says so."""
    mon, t = monitor_at(HOME)
    q, kinds, steps = HOME.copy(), [], []
    last = mon.filter(HOME, t + 1e-4).positions
    for _ in range(40):
        for _ in range(4):
            t += DT
            q = q + np.eye(6)[0] * 0.9 * LIM.max_velocity[0] * DT  # 0.9 x the data sheet: 1.8 x the allowed speed
            assert mon.observe_state(q, t) is None
        d = mon.filter(HOME, t + 1e-4)
        kinds.append(d.kind)
        steps.append(np.abs(d.positions - last).max())
        last = d.positions
    walks = [s for k, s in zip(kinds, steps) if k == arm.KIND_WALK]
    assert walks and max(walks) > LIM.max_step[0] and max(walks) <= LIM.max_velocity[0] * LIM.period_s + 1e-12
    assert all(s <= LIM.max_step[0] + 1e-12 for k, s in zip(kinds, steps) if k != arm.KIND_WALK)


def test_a_reset_that_dropped_the_reference_still_does_not_jump_onto_a_moving_arm():
    """The arm dragged on after the commands stopped, beyond the lead window of the last command sent: the reset
    at a stop drops it as the reference (the arm moved while nothing was commanded), yet the controller still holds
    it. While the arm moves the start is not settled, and the episode's first command walks from that last command
    (at most the data-sheet step), never jumping the ~0.2 rad onto the arm."""
    mon, t = monitor_at(HOME)
    last = mon.filter(HOME, t + 1e-4).positions
    q = HOME.copy()
    for _ in range(100):  # 0.2 s dragged at 0.9 x the data sheet, no commands
        t += DT
        q = q + np.eye(6)[0] * 0.9 * LIM.max_velocity[0] * DT
        assert mon.observe_state(q, t) is None
    mon.reset_reference()  # a stop / activation: beyond the window, the reference is the measurement
    assert np.abs(q - last).max() > LIM.max_lead.max() and not mon.settled
    mon.reset_reference(from_measured=True)
    first = mon.filter(q, t + 1e-4).positions
    assert np.abs(first - last).max() <= LIM.max_velocity[0] * LIM.period_s + 1e-12

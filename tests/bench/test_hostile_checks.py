"""The hostile-driver bench's instruments on null cases: a safe stream has no violation, unsafe ones are
caught, and every hostile joint state it sends is refused by the node's checks (or, "old arm", bounded)."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config import DeployConfig
from ast_robot.deploy.inputs import JointStateChecker, Rejected
from ast_robot.robot.safety import SafetyLimits, SafetyMonitor
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.robot.specs import get_robot
from bench.hostile_checks import HOSTILE_KINDS, CommandLog, constant_from, hostile_state

LIM = SafetyLimits.from_robot(get_robot("ur5e"), DeployConfig())
HOME = np.array([-0.3006, -1.6927, 1.9236, -1.8017, -1.571, -1.8712])
NAMES = list(get_robot("ur5e").joint_names)


def safe_stream() -> CommandLog:
    log = CommandLog(LIM)
    for k in range(40):  # a command moving at the step limit, the arm right behind it
        cmd = HOME + k * LIM.max_step
        log.add(k * LIM.period_s, cmd, cmd - LIM.max_step)
    return log


def test_a_safe_stream_has_no_violation():
    v = safe_stream().violations()
    assert v["beyond_limits"] == v["beyond_step"] == v["beyond_lead"] == v["non_finite"] == 0
    assert v["worst_step_rad"] == pytest.approx(LIM.max_step.max())
    assert CommandLog(LIM).violations()["commands"] == 0


@pytest.mark.parametrize("fault,field", [("jump", "beyond_step"), ("limit", "beyond_limits"),
                                         ("lead", "beyond_lead"), ("nan", "non_finite")])  # fmt: skip
def test_each_kind_of_unsafe_command_is_caught(fault, field):
    log = safe_stream()
    cmd, arm = log.commands[20].copy(), log.arm[20]
    if fault == "jump":
        cmd[0] += 2 * LIM.max_step[0]
        log.arm[20] = cmd  # keep the lead fine: only the step is wrong
    elif fault == "limit":
        cmd[2] = LIM.upper[2] + 0.1
    elif fault == "lead":
        log.arm[20] = arm - 1.0
    else:
        cmd[1] = np.nan
    log.commands[20] = cmd
    assert log.violations()[field] >= 1


def test_a_command_lost_on_the_way_is_not_a_step_when_the_stamps_show_the_gap():
    log = safe_stream()
    stamped = CommandLog(LIM)
    for k, (t, cmd, arm) in enumerate(zip(log.times, log.commands, log.arm)):
        stamped.add(t, cmd, arm, sent=1000.0 + k * LIM.period_s)
    for lost in (stamped.times, stamped.sent, stamped.commands, stamped.arm):
        del lost[20]  # published, never received: the next one moved two periods' worth
    assert stamped.violations()["beyond_step"] == 0
    stamped.sent = [float("nan")] * len(stamped.sent)  # null case: without the stamps it reads as one 2x step
    assert stamped.violations()["beyond_step"] == 1
    stamped.sent = [1000.0 + k * LIM.period_s for k in range(len(stamped.sent))]  # stamps claim no gap
    assert stamped.violations()["beyond_step"] == 1


def test_constant_from_finds_where_the_hold_starts():
    cmds = np.array([[0.0], [1.0], [2.0], [2.0], [2.0]])
    assert constant_from(cmds) == 2 and constant_from(np.ones((3, 2))) == 0


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_every_hostile_state_is_refused_by_the_node_checks(kind):
    """Through the checker and a monitor that trusts HOME: none is trusted ("old arm" is the arm 0.1 s ago,
    plausible by design: it may be trusted only while within reach of HOME)."""
    import time

    mon = SafetyMonitor(LIM)
    now = time.time()
    for _ in range(ACQUIRE_STATES):
        mon.observe_state(HOME, 0.0, stamp_s=now - 0.001)
    past = HOME - 0.3  # the arm moved 0.3 rad in the last 0.1 s
    _, names, pos, stamp = hostile_state(kind, HOME, past, NAMES, LIM, np.random.default_rng(0))
    try:
        reading = JointStateChecker(NAMES, max_age_s=LIM.stale_after_s).check(names, pos, [], stamp, now)
    except Rejected:
        return
    assert mon.observe_state(reading.positions, 0.001, reading.stamp_s) is not None, kind
    assert len(HOSTILE_KINDS) == 26


def test_a_walk_back_is_held_to_the_walk_bound_at_the_arms_speed_not_to_max_step():
    """A command the node labels a walk-back may step up to SafetyLimits.walk_steps at the arm's speed (the data
    sheet at most); the same step labelled as motion, or a walk-back faster than the arm moved, is caught."""
    sheet = LIM.max_velocity * LIM.period_s

    def walked(kind: str, arm_speed: float) -> CommandLog:
        log = safe_stream()
        log.commands[20] = log.commands[19] + 0.9 * sheet  # 1.8 x max_step at speed scale 0.5
        log.arm[20] = log.commands[20]
        for k in range(21, 40):
            log.commands[k] = log.commands[20] + (k - 20) * LIM.max_step
            log.arm[k] = log.commands[k] - LIM.max_step
        log.kinds[20] = kind
        log.speeds[18:21] = [np.full(6, arm_speed)] * 3
        return log

    fast = 0.95 * LIM.max_velocity[0]  # the arm dragged at 0.95 x its data sheet
    ok = walked("walk-back", fast).violations()
    assert ok["beyond_step"] == ok["walk_beyond_data_sheet"] == 0
    assert walked("motion", fast).violations()["beyond_step"] == 1
    assert walked("walk-back", 0.1).violations()["beyond_step"] == 1  # faster than the arm moved
    too_far = walked("walk-back", fast)
    too_far.commands[20] = too_far.commands[19] + 1.1 * sheet
    v = too_far.violations()
    assert v["beyond_step"] >= 1 and v["walk_beyond_data_sheet"] == 1


def test_step_details_name_the_kind_and_the_arms_motion_and_label_matches_stamps():
    """The null case: a clean labelled run has no details; a planted jump is reported with its kind (matched by
    stamp from the node's command-kind messages), the previous command's lead and the arm's speed then."""
    log = CommandLog(LIM)
    for k in range(40):
        cmd = HOME + k * LIM.max_step
        log.add(k * LIM.period_s, cmd, cmd - LIM.max_step, sent=1000.0 + k * LIM.period_s,
                speed=LIM.max_step / LIM.period_s)  # fmt: skip
    log.label({1000.0 + k * LIM.period_s: "motion" for k in range(40)})
    assert log.step_details() == [] and log.violations()["commands_by_kind"] == {"motion": 40}
    log.arm[29] = log.commands[29] - 2.5 * LIM.max_step  # the arm trails its command by 2.5 steps
    for k in range(30, 40):  # back onto the arm (the shape of an episode-start reset), then on from there
        log.commands[k] = log.arm[29] + (k - 30) * LIM.max_step
        log.arm[k] = log.commands[k] - LIM.max_step
    log.label({1000.0 + 30 * LIM.period_s: "from the measured arm (episode start)"})
    (detail,) = log.step_details()
    assert detail["index"] == 30 and detail["previous kind"] == "motion"
    assert detail["kind"] == "from the measured arm (episode start)"
    assert detail["step / max_step"] == pytest.approx(2.5, abs=1e-3)
    assert detail["previous command's lead (rad)"] == pytest.approx(2.5 * LIM.max_step[detail["joint"]], abs=1e-4)
    assert detail["arm speed / allowed"] == pytest.approx(1.0)
    assert log.violations()["beyond_step_by_kind"] == {"from the measured arm (episode start)": 1}

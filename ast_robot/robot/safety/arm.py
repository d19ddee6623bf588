"""The one gate every joint command passes through before it reaches a robot (real or twin).

Pure Python + numpy, no ROS. A :class:`SafetyMonitor` keeps what it knows about the robot (last joint
state and when it arrived, e-stop, the robot's safety mode, the last command sent) and turns any
requested joint target into a command that is finite, inside the joint limits, at most one velocity-limited
step from the previous command (a command the arm was dragged away from walks back at the arm's measured
speed, never faster than the data sheet: :meth:`SafetyLimits.walk_steps`), changes its step by at most the
acceleration limit per tick while the arm follows, leads the *measured* position by at most ``lead_s`` at the
allowed speed, and a *blocked* joint
(one that has lagged a command ahead of it for longer than the servo's lag, or is pushed away from it) by a
stall allowance plus the motion its measured speed covers in ``FOLLOW_LAG x lead_s`` on the side it moves
towards; a joint *held still* under a command ahead of it (blocked or not yet) by no more than its servo,
freed, closes under the data-sheet speed (:meth:`SafetyLimits.freed_lead`), and one that moves towards it (held
back, following, or gaining speed) by the lag it would trail by at that speed and acceleration plus that bound on
the rest (:meth:`SafetyLimits.held_lead`); and keeps the end effector in the workspace box, or into a *hold* with
the reasons why.

Measurements are *trusted* before anything uses them (:class:`~ast_robot.robot.safety.trust.MeasurementTrust`): a joint state counts
only when every position is inside the joint limits and reachable from the last trusted state at the
data-sheet speed over the time between them. Everything below (holds, the lead window, the watchdog) reads
the last *trusted* state only; a stream with no trusted state for the watchdog period is stale.

Holds, from the hardest:

- e-stop engaged or the robot reports a non-normal safety mode: hold at the point nearest the last trusted
  measurement that is one step from the last command (the step bound holds for the first hold command too),
  fixed for the whole stop; release restarts from rest at that point.
- no trusted joint state for more than ``watchdog_periods`` periods: repeat the last command (see
  :meth:`SafetyMonitor.filter` for why).
- a malformed target (wrong size, NaN/inf), a failed policy, no action: brake to a stop within the
  acceleration limit (the command keeps inside every other limit).
- a target whose end effector leaves the workspace box: hold the last command (moving back *towards* the
  box is allowed, so a robot that starts outside it is never stuck).

Every arm limit lives here (the gripper's: :mod:`.gripper`). :class:`SafetyLimits` refuses limits beyond the data sheet: a speed scale outside
(0, 1], a step faster than the data-sheet speed, a watchdog longer than :data:`MAX_WATCHDOG_S`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ast_robot.robot.safety.trust import MeasurementTrust

EEFunction = Callable[[np.ndarray], np.ndarray]  # joint positions (J,) -> end-effector position (3,)

# The longest a joint state may be missing before we hold (s). At the UR5e's 3.14 rad/s that is 0.31 rad
# travelled blind; a watchdog of thousands of seconds (a typo in a parameter) is refused, not obeyed.
MAX_WATCHDOG_S = 0.1
# How far the command may lead the measured position, as travel time (lead_s) at the allowed speed
# (SafetyLimits.max_lead), unless the joint is *blocked*: the command has stood ahead of it and it has not
# followed for longer than the servo's lag (STALL_AFTER_S). A blocked joint (a held cube pressed on the
# table, a collision) gets a stall allowance plus the motion its measured speed covers in FOLLOW_LAG x lead_s
# (SafetyLimits.lead_at). Issue 21: with lead_s x the allowed speed whatever the arm did, an FR3 wrist blocked
# by a cube on the table was led 0.21 rad; when the cube slipped, its position servo closed that gap at its
# torque limit and reached 4.96 rad/s (data sheet 4.18; the twin's protective stop). Judged by speed alone
# (every joint at rest got the stall allowance) a weak arm starting from rest was starved of the lead it needs
# to start: `make demo`'s twin (actuator gain x0.35, 120 ms latency) at 0.35 of max_lead left real success
# 80% and the gap report named latency 4 steps (truth 3).
DEFAULT_LEAD_S = 0.1
# The speed term of a blocked joint's window, in lead_s: a joint pushed away from its command or creeping
# keeps the stall allowance on the command's side and a little more on the side it moves towards.
FOLLOW_LAG = 2.0
# The stall allowance of a blocked joint, as a share of max_lead. Judged by speed alone (every joint at rest
# or pushed away counted as stalled) the recorded FR3 twin episodes' wrist peaked at 4.06 rad/s (0.97 x data
# sheet) at 0.5 and 3.13 at 0.35; 0.25 slowed the UR5e and FR3 pick-and-place experts on 1 and 7 of 20 seeds.
# Judged by time (below) at 0.35: 3.47 rad/s (0.83 x data sheet) over the same 50 recorded episodes' actions,
# none over the twin's stop, and `make demo` real 100% / 100% with latency 3 and gain 0.35 named in both
# rounds (bench/results/fr3_overspeed.md, labels stalltime*).
STALL_SHARE = 0.35
# How long (s) a joint may lag a command standing ahead of it before it counts as blocked: longer than the
# servo's lag (the twin's arms trail a moving command by up to ~56 ms; `make demo`'s twin adds 120 ms of
# latency before a weak arm starts), so a joint starting from rest gets the full lead (that twin's UR5e, a
# 0.1-0.2 rad move from rest: 138 ticks, as under the old window; 0.15 s: 148; speed-judged 0.35: 155).
STALL_AFTER_S = 0.2
# Until then a joint held still from rest (a grasped object caught, not pushed away) looks like a servo that
# has not started (a weak arm's latency), and with max_lead the FR3 wrist held still 0.07-0.27 s and freed
# reached up to 5.44 rad/s = 1.3 x its data-sheet speed (bench/fr3_overspeed.py --held). Its position servo
# closes a static gap g at about sqrt(K g), K = SERVO_ACCEL_SHARE x the data-sheet acceleration (the twin's
# FR3 wrist: gaps 0.10 / 0.125 / 0.21 rad freed peak at 3.05 / 3.49 / 4.49 rad/s, K ~ 90-100 for A = 20),
# and behind a command still moving at u at about u + sqrt(K g) (held 0.088 s: gap ~0.08 rad, u ~1.8 rad/s,
# 4.3 rad/s). So a joint that a command leads and that does not move towards it at STILL_SHARE of its
# allowed speed is led only as far as keeps u + sqrt(K g) at most FREED_SPEED_SHARE of the data-sheet speed
# (SafetyLimits.freed_lead): the held FR3 wrist freed after 0.05-0.3 s peaks at <= 3.14 rad/s = 0.75 x. The UR5e (A = 5)
# reaches that bound only near max_lead at > 0.5 rad/s: make demo's weak twin keeps its 138 ticks (even with
# every lagging joint bounded); STILL_SHARE 0.01 (not FOLLOW_MIN_SHARE) because a starting FR3 joint that
# already moves is following: bounded at 0.1, the FR3 pick-and-place expert changed on 4 of 20 seeds.
SERVO_ACCEL_SHARE = 5.0
FREED_SPEED_SHARE = 0.8
STILL_SHARE = 0.01
# A joint creeping towards its command at 1-10% of its allowed speed (a slipping grasp, a weak servo against
# gravity) kept max_lead until STALL_AFTER_S, and above FOLLOW_MIN_SHARE for ever: the FR3 wrist creeping at 2-8%
# and freed after 0.08-0.24 s closed at up to 1.25 x its data-sheet speed. Bounded at 10% (STILL_SHARE 0.1) the
# FR3 pick-and-place expert changed on 4 of 20 seeds: a joint starting from rest also moves that slowly for a
# few ticks, but its servo accelerates it (the experts' ticks with a joint led and moving at 1-10%: it gained a
# median 0.6-0.7 x its acceleration limit, 5th percentile 0.12 on the FR3, 0.27 on the UR5e; the FR3's lower tail
# is the wrist held by the grasp), a creeping joint about 0 (noise of 1e-4 rad on the states: the creeping FR3
# wrist still <= 0.83 x). So a joint slower than FOLLOW_MIN_SHARE that gains less than GAIN_SHARE x its
# acceleration limit counts as still, and freed_lead takes its speed off the bound. Measured (creep rows of
# bench/results/fr3_overspeed.md, speed stop off): every FR3 joint creeping at 0-8% for 0.05-0.4 s, then freed,
# <= 0.79 x its data sheet (before: 1.72 x); the pick-and-place experts through the pipeline: UR5e actions
# identical on 20 of 20 seeds, FR3 on 13 (the 7 others part only while the hand grips the cube, steps to
# success unchanged). A joint held back while it still moves at >= FOLLOW_MIN_SHARE without gaining speed: see
# SERVO_LAG_S (the freed model alone cannot judge it: a joint in free cruise trails its command by its lag x its
# speed without gaining speed, far past what sqrt(K g) allows).
GAIN_SHARE = 0.05
# "Ahead": the command leads the joint by at least this share of the stall allowance (a joint sagging under
# gravity a little below its command is not blocked); "not following": the joint moves towards the command
# slower than this share of its allowed speed.
PRESS_SHARE = 0.5
FOLLOW_MIN_SHARE = 0.1
MAX_LEAD_S = 0.5
# An episode starts from rest at the measured arm (SafetyMonitor.reset_reference(from_measured=True)) only when the
# command may jump there: the last command within one step of the arm, or the arm measured at rest (slower than
# REST_SHARE of its allowed speed over REST_INTERVALS speed intervals in a row), where a command at the arm asks for
# no motion (moved home by an operator or the twin's reset, the controller's setpoint with it). A command jumping to
# an arm still moving towards it is a step back against the motion: bench/hostile_driver.py (stop + start each
# second while the arm moves at 0.63-0.69 of its allowed speed, its command 0.034-0.037 rad ahead) measured 4-10
# such first commands at 2.2-2.4 x max_step (issue 21; first bad commit ddbe9e8).
REST_SHARE = 0.01
REST_INTERVALS = 2
# Joint acceleration limits (rad/s^2), per robot, in the spec's joint order.
JOINT_ACCELERATION = {
    # Franka FR3: libfranka include/franka/rate_limiting.h, kMaxJointAcceleration (the values of Franka's
    # "Robot and interface specifications" for FR3).
    "fr3": (15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
    # UR5e: the data sheet publishes no joint acceleration limit. 5 rad/s^2 is what Universal Robots' own
    # ur_moveit_config (Universal_Robots_ROS2_Driver, config/joint_limits.yaml) allows on every joint:
    # conservative against the controller's own limits, and ~0.3 s from rest to the default speed scale.
    "ur5e": (5.0,) * 6,
}


# K of freed_lead's servo model per joint (rad/s^2), measured on the twins' position servos through the forward
# position interface (bench/servo_gap.py: each joint held still at home under a static gap of 0.05-0.26 rad,
# then freed; K = the largest peak^2 / gap, x 1.1, rounded up to 5). SERVO_ACCEL_SHARE x the data-sheet
# acceleration was fitted on the FR3 wrist only and is below what joints 1-5 and 7 do (measured 125 / 55 / 118 /
# 111 / 98 / 83 / 109 against 75 / 37.5 / 50 / 62.5 / 75 / 100 / 100): held still from rest under the filter
# 0.08-0.34 s and freed, joint 3 closed at up to 1.03 x its data-sheet speed, joints 1 / 4 / 5 / 7 at 0.76 /
# 0.85 / 0.91 / 0.86 x; with these K every FR3 joint <= 0.79 x. A robot commanded through trajectory segments
# (the UR5e) keeps the data-sheet model: its controller ramps each segment from the measured position at the
# allowed speed (segment_seconds), so a freed servo never sees the gap as a step (the UR5e twin's wrist 3, held
# still or creeping at 0-50% of its allowed speed for 0.05-0.4 s, then freed: <= 0.93 x its data sheet; the
# same joint commanded by forward positions reaches 1.25 x).
SERVO_CLOSING = {
    "fr3": (140.0, 65.0, 130.0, 125.0, 110.0, 100.0, 120.0),
    "ur5e": (25.0, 50.0, 125.0, 100.0, 110.0, 140.0),  # forward position only (not its deployed interface)
}
# How long (s) each joint trails a command it follows freely (SafetyLimits.held_lead): at a steady speed v its
# lead over the measured position is about lag x v (one control period + its position servo's lag), and that lead
# stores no push: the servo's force goes into the motion. A joint held back while it still moves towards its
# command at >= FOLLOW_MIN_SHARE (10-50% of its allowed speed: a grasp dragging on the table, a slipping contact)
# without gaining speed kept max_lead, and freed, its servo closed the lead beyond its lag: FR3 joints 1-4 at up to
# 1.73 x their data sheet, the wrist 1.28 x. So such a joint is led by lag x v + freed_lead of the lead beyond it.
# Measured on the FR3 twin through the forward position interface (a ramp target at 10-100% of the allowed speed
# through the filter, the lead / speed's median over the steady part, flat in the speed to 1%). LAG_ALLOWANCE_S
# is the delay of the command path on top: what a joint following freely behind a latency also trails by, though
# its servo holds no push for it (a latency is invisible to the monitor; counting it shrinks the protection by
# allowance x v where the arm has none). The env randomizes a latency of 0-1 policy steps (40 ms at 25 Hz, acting on
# 8 ms ticks); the FR3 pick-and-place expert through the pipeline (20 seeds) at 0 / 0.04 / 0.05 / 0.06 s: actions
# changed on 18 / 14 / 12 / 11 seeds, steps to success on 17 / 6 / 2 / 1 (at 0.05 every seed's first change falls
# while the hand grips the cube: the wrist held by the grasp at 10-35% of its speed, leading it 5-18 x its lag,
# which is what the bound is for); every FR3 joint held back at 10-50% for 0.05-0.4 s on the nominal twin (no
# latency), then freed: <= 0.73 / 0.75 / 0.86 / 0.93 x its data sheet (bench/results/fr3_overspeed.md, creep2 rows).
# Trained on the changed demos, the pick-and-place BC policy (seeds 0 / 1 / 2) succeeded 87 / 93 / 67% in sim against
# main's 97 / 73 / 57% (training noise dominates); main's seed-0 policy under this bound: 97%, as under main's.
# A joint gaining speed (a servo starting it, or a block that yields) is led the same way, plus the lead its
# acceleration a needs (ACCEL_LEAD_SHARE): before, it kept max_lead, and an FR3 joint sped up by a yielding block at
# 6-40% of its acceleration limit, then freed, reached 1.75 x its data sheet (bench yield rows). The FR3 pick-and-place
# expert through the pipeline (seeds 0-19): actions changed on 11 seeds, steps to success on none; 10 first change
# while the hand grips the cube (62-83 N, 40 ms latency), seed 16 for one tick of a start behind 40 ms (gain 0.84).
# Nominal FR3 loop (sim2real, 1 round, hidden {}, load 4.9-8.6): sim 93%, real 9/10, gap +3 [-13, +34], nothing named;
# its episodes' joints <= 0.73 x their data sheet.
SERVO_LAG_S = {"fr3": (0.0152, 0.0338, 0.0145, 0.0179, 0.0194, 0.0204, 0.0181)}
# What the monitor granted for the command path's delay before deployments declared it (records of schema < 5; the
# same lead as a declared LAG_ALLOWANCE_S - LAG_MARGIN_S = 0.04 s: PRE_DECLARATION_LATENCY_S). No longer granted to
# anyone: an undeclared latency gets the strict filter (servo_lag).
LAG_ALLOWANCE_S = 0.05
# A joint trailing its command by a delay D (q(t) = cmd(t - D)) leads it by D v + D^2 a / 2 while it gains speed at a
# (the delay's Taylor expansion; a critically damped servo alone: D^2 a / 4). Its measured acceleration trails the
# command's at a start, so the model takes ACCEL_LEAD_SHARE x D^2 a / 2: every FR3 joint following steps of
# 0.05-0.5 rad and ramps at 20-100% of its allowed speed, 0 / 40 ms latency, actuator gain 0.8-1.2, is never clamped
# at 1.5 or 2 (at 1: one tick on joints 1 and 4 at 40 ms; without the term: 1-35 ticks per move on every joint).
# What it cannot close: a lead the monitor grants for a command latency (LAG_ALLOWANCE_S x v) is push where the arm
# has none, and a block that yields at a while the command rides the window looks exactly like a servo behind that
# latency (both lead by D v + D^2 a / 2). On the nominal twin (no latency) the yielding block freed still reaches up
# to 1.46 x (1.75 before), and a joint held back at a steady 70-80% of its allowed speed for 0.4-0.6 s 1.14 x (as
# before: the held rule's sweep stopped at 50%); declaring the latency (from_robot(command_latency_s=0): LAG_MARGIN_S
# in place of the allowance) closes both: <= 0.76 x wherever the block itself left the joint under 0.8 x its data
# sheet, <= 0.67 x (bench yield / fast rows). LAG_ALLOWANCE_S 0 for all would slow the env's 40 ms episodes (the
# expert: 15 of 20 seeds slower, by 2-43 steps); each episode declaring its own latency changes none's steps. So the
# latency is declared (issue 21, wired): the deployment's by configs/deploy/<robot>.yaml (command_latency_s, what its
# user measured), the env's by each episode's randomized latency (envs.pipeline), and one not declared gets none.
# Measured wired (bench fr3_overspeed, labels wired*, load 4-7): yielding block freed <= 0.764 x wherever the block left
# the joint under 0.8 x (the grant of before: 1.457 x), held back at 60-95% 0.666 x (1.135 x); normal following with its
# latency declared never clamped (252 cases), but behind 40 ms undeclared 93 of them are (a full-speed ramp followed at
# 35-43% of its speed: the cost of not declaring); experts through the pipeline (seeds 0-19) against main: steps to
# success unchanged on every seed (UR5e actions identical, FR3 4 seeds' actions differ). The FR3 pick-and-place BC
# policy (pickplace_demo_fr3, same seed) trained and evaluated on 100 held-out episodes through each command path:
# 89/100 declared, 88/100 at main (latency 0: 80 / 83%, 1 step: 95 / 92%); the nominal loop's policy on 100 seeds:
# 89/100 with each latency declared and with the grant of before, no outcome differing (load 6-10).
ACCEL_LEAD_SHARE = 2.0
# What a declared command latency gets on top (s): the 8 ms tick the command is held for and the measurement's
# rounding (the FR3 pick-and-place expert with each episode's own latency declared: margin 0 slowed 2 latency-free
# seeds by 2-4 steps in free motion, 0.01 none).
LAG_MARGIN_S = 0.01
# The declared latency that reproduces the filter of records made before declarations (LAG_ALLOWANCE_S in all).
PRE_DECLARATION_LATENCY_S = LAG_ALLOWANCE_S - LAG_MARGIN_S


def servo_closing(robot: str, command_interface: str | None, acceleration: Sequence[float]) -> np.ndarray:
    """(J,) rad/s^2: K of the servo model of ``robot`` deployed through ``command_interface``: the larger of
    :data:`SERVO_ACCEL_SHARE` x its data-sheet ``acceleration`` and what its position servo was measured to
    do (:data:`SERVO_CLOSING`), except through trajectory segments (an unknown interface: the larger)."""
    model = SERVO_ACCEL_SHARE * np.asarray(acceleration, dtype=float)
    if command_interface == "trajectory" or robot not in SERVO_CLOSING:
        return model
    return np.maximum(model, np.asarray(SERVO_CLOSING[robot], dtype=float))


def servo_lag(robot: str, command_interface: str | None, command_latency_s: float | None = None) -> np.ndarray | None:
    """(J,) s: how long ``robot``'s joints trail a command they follow freely through ``command_interface``:
    :data:`SERVO_LAG_S` + the declared delay of the command path ``command_latency_s`` + :data:`LAG_MARGIN_S`;
    None where it was not measured or through trajectory segments (the controller ramps each segment's setpoint: a
    freed UR5e joint stays under its data sheet). ``command_latency_s`` None (undeclared): the strict filter, as if
    0 were declared: lead granted for a latency the arm does not have is push a yielding block turns into speed
    (1.46 x the data sheet), while an arm slower than declared only gets its free motion slowed."""
    check_command_latency(command_latency_s)
    if command_interface == "trajectory" or robot not in SERVO_LAG_S:
        return None
    declared = 0.0 if command_latency_s is None else command_latency_s
    return np.asarray(SERVO_LAG_S[robot], dtype=float) + (declared + LAG_MARGIN_S)


def check_command_latency(value: Any) -> None:
    """ValueError (one line naming the field) unless ``value`` is None (undeclared) or a delay of 0-MAX_LEAD_S s."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is not None and not (number and np.isfinite(value) and 0 <= value <= MAX_LEAD_S):
        raise ValueError(f"command_latency_s: expected a delay of 0-{MAX_LEAD_S:g} s (the measured command "
                         f"latency; null: undeclared, the strict filter), got {value!r}")  # fmt: skip


def finite_vector(name: str, value: Any, size: int | None = None) -> np.ndarray:
    """A finite float64 1-D copy of ``value``; TypeError/ValueError naming the field and the problem.

    The one check of joint vectors (limits, measured states, targets, warm-up joints)."""
    try:
        arr = np.array(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected a sequence of numbers, got {type(value).__name__}") from err
    if size is not None and arr.shape != (size,):
        raise ValueError(f"{name}: expected {size} values, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite, got non-finite values at {np.flatnonzero(~np.isfinite(arr)).tolist()}")
    return arr


@dataclass(frozen=True)
class SafetyLimits:
    """The limits a command must respect. Arrays are per joint, in the robot's joint order."""

    joint_names: tuple[str, ...]
    lower: np.ndarray  # (J,) rad
    upper: np.ndarray  # (J,) rad
    max_step: np.ndarray  # (J,) rad per control period (velocity limit x speed scale x period)
    max_velocity: np.ndarray  # (J,) rad/s, the data sheet's: max_step may not exceed max_velocity * period
    max_acceleration: np.ndarray  # (J,) rad/s^2: bound on the change of the per-tick step
    workspace_min: np.ndarray  # (3,) m, base frame
    workspace_max: np.ndarray  # (3,) m, base frame
    period_s: float  # control period (s)
    watchdog_periods: float = 2.0  # hold when the joint state is older than this many periods
    lead_s: float = DEFAULT_LEAD_S  # |command - measured| <= lead_s * allowed speed, per joint
    # (J,) rad/s^2: K of the servo model sqrt(K g) (freed_lead); None: SERVO_ACCEL_SHARE x max_acceleration
    servo_closing: np.ndarray | None = None
    # (J,) s: how long each joint trails a command it follows freely (held_lead); None: not known, a joint held
    # back while it moves keeps max_lead
    servo_lag: np.ndarray | None = None
    # s: the command path's delay the deployment declared (from_robot: servo_lag includes it; recorded with each
    # episode, so that a replay rebuilds these limits); None: undeclared (the strict filter)
    command_latency_s: float | None = None

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n:
            raise ValueError(f"joint_names: expected unique names, got {self.joint_names!r}")
        per_joint = ("lower", "upper", "max_step", "max_velocity", "max_acceleration")
        for name, size in (*((f, n) for f in per_joint), ("workspace_min", 3), ("workspace_max", 3)):
            object.__setattr__(self, name, finite_vector(name, getattr(self, name), size))
        if np.any(self.lower >= self.upper):
            raise ValueError(f"lower/upper: every lower limit must be below its upper limit, got "
                             f"{self.lower.tolist()} / {self.upper.tolist()}")  # fmt: skip
        if np.any(self.workspace_min >= self.workspace_max):
            raise ValueError(f"workspace_min/max: expected min < max per axis, got "
                             f"{self.workspace_min.tolist()} / {self.workspace_max.tolist()}")  # fmt: skip
        if not (np.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"period_s: expected a positive control period (s), got {self.period_s!r}")
        if self.servo_closing is None:
            object.__setattr__(self, "servo_closing", SERVO_ACCEL_SHARE * self.max_acceleration)
        object.__setattr__(self, "servo_closing", finite_vector("servo_closing", self.servo_closing, n))
        if self.servo_lag is not None:
            object.__setattr__(self, "servo_lag", finite_vector("servo_lag", self.servo_lag, n))
            if np.any(self.servo_lag < 0):
                raise ValueError(f"servo_lag: expected lags >= 0 s, got {self.servo_lag.tolist()}")
        self._check_motion_limits()
        check_command_latency(self.command_latency_s)
        if not (np.isfinite(self.watchdog_periods) and 0 < self.stale_after_s <= MAX_WATCHDOG_S):
            raise ValueError(f"watchdog_periods: expected > 0 and at most {MAX_WATCHDOG_S} s of control periods "
                             f"({MAX_WATCHDOG_S / self.period_s:g} at {1 / self.period_s:g} Hz), got "
                             f"{self.watchdog_periods!r}")  # fmt: skip
        if not (np.isfinite(self.lead_s) and self.period_s <= self.lead_s <= MAX_LEAD_S):
            raise ValueError(f"lead_s: expected one control period ({self.period_s:g} s) .. {MAX_LEAD_S:g} s, "
                             f"got {self.lead_s!r}")  # fmt: skip

    def _check_motion_limits(self) -> None:
        for name in ("max_velocity", "max_acceleration", "max_step", "servo_closing"):
            if np.any(getattr(self, name) <= 0):
                raise ValueError(f"{name}: expected positive values, got {getattr(self, name).tolist()}")
        fastest = self.max_velocity * self.period_s
        if np.any(self.max_step > fastest * (1 + 1e-9)):
            raise ValueError(f"max_step: {self.max_step.tolist()} rad/period exceeds the data-sheet speed x period "
                             f"{fastest.tolist()}; allowed: 0 < max_step <= max_velocity * period_s")  # fmt: skip

    @property
    def max_step_change(self) -> np.ndarray:
        """(J,) rad/period: the most a per-tick step may change from one tick to the next (accel x period^2)."""
        return self.max_acceleration * self.period_s**2

    @property
    def max_lead(self) -> np.ndarray:
        """(J,) rad: the most a command may lead the measured position (``lead_s`` at the allowed speed)."""
        return self.max_step * (self.lead_s / self.period_s)

    def walk_steps(self, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(down, up) (J,) rad: the most a command outside its lead window (the arm moved away from it) may move
        back towards it in one tick, downwards / upwards: :attr:`max_step`, or, where the joint is measured moving
        that way at ``speed`` (J,) rad/s faster than that, its speed + one tick of the acceleration limit, never
        more than the data-sheet speed. Why: a command left behind an arm dragged faster than the allowed speed is
        a gap its servo closes at up to sqrt(K g) once the arm stops. Issue 21 (bench/fr3_overspeed.py, trace rows):
        FR3 joint 4 dragged by a yielding block to 0.91 x its data sheet passed its command, which walked after it at
        the allowed 0.5 x and stood 0.067 rad behind it at the release (1.9 x freed_lead's bound); the joint stopped
        at its lower limit and its servo returned at 1.066 x the data sheet. Walking at the measured speed: 0.026 rad
        behind, peak 0.72 x; every yield case whose block left its joint under the data sheet <= 0.89 x (those past
        it 0.99 x, were 1.285 x); the experts' actions through the pipeline identical on seeds 0-19, both robots;
        normal following never clamped. The monitor passes the speed both of the last two intervals of trusted
        states show (:func:`_sustained`: one glitch state buys nothing); after a gap in the states it is unknown (0)."""
        v = np.asarray(speed, dtype=float) * self.period_s
        v = np.where(np.isfinite(v), v, 0.0)  # a speed not measured (non-finite) buys nothing beyond max_step
        sheet = self.max_velocity * self.period_s
        return tuple(np.minimum(sheet, np.maximum(self.max_step, s + self.max_step_change)) for s in (-v, v))

    @property
    def stall_lead(self) -> np.ndarray:
        """(J,) rad: the most a command may lead a *blocked* joint that measures no speed (or moves away from
        the command): :data:`STALL_SHARE` of :attr:`max_lead`. A blocked joint's position servo closes at most
        this gap when it is freed, not ``max_lead``; one moving is allowed more in its direction
        (:meth:`lead_at`)."""
        return STALL_SHARE * self.max_lead

    @property
    def follow_min_speed(self) -> np.ndarray:
        """(J,) rad/s: below this speed towards its command a joint does not follow it
        (:data:`FOLLOW_MIN_SHARE` of the allowed speed)."""
        return FOLLOW_MIN_SHARE * self.max_step / self.period_s

    def freed_lead(self, gap: np.ndarray, toward: np.ndarray | None = None) -> np.ndarray:
        """(J,) rad: the most a command now ``gap`` (J,) rad ahead of a joint held still may lead it after this
        tick: the largest g' whose step from ``gap`` (a speed u = (g' - gap) / period) keeps u + sqrt(K g')
        at most :data:`FREED_SPEED_SHARE` of the data-sheet speed V (K: :data:`SERVO_ACCEL_SHARE` x the
        data-sheet acceleration), so the servo freed at any tick stays under it; V^2 / K (walk back) when
        even standing still would not; at most :attr:`max_lead`. Judged by the step, not by the last
        command's speed: a window that shrank with the speed walked the command back, which let the window
        grow again (a command chattering against the acceleration limit). A joint already moving towards
        its command at ``toward`` (J,) rad/s (creeping) adds that speed: the bound is V - toward."""
        k, v, t = self.servo_closing, FREED_SPEED_SHARE * self.max_velocity, self.period_s
        if toward is not None:
            v = np.maximum(v - np.maximum(np.asarray(toward, dtype=float), 0.0), 0.0)
        gap = np.maximum(np.asarray(gap, dtype=float), 0.0)
        root = 0.5 * t * (np.sqrt(k + 4.0 * (v + gap / t) / t) - np.sqrt(k))  # sqrt(g'): g'/t + sqrt(k g') = v + gap/t
        reach = np.where(k * gap <= v**2, np.maximum(root**2, gap), v**2 / k)
        return np.minimum(reach, self.max_lead)

    def held_lead(self, gap: np.ndarray, toward: np.ndarray, accel: np.ndarray | None = None) -> np.ndarray:
        """(J,) rad: the most a command now ``gap`` (J,) rad ahead of a joint that moves towards it at ``toward``
        (J,) rad/s, gaining ``accel`` (J,) rad/s^2 (None: 0), may lead it after this tick: the lag it trails a
        command by when it follows freely so (``servo_lag`` x toward + :data:`ACCEL_LEAD_SHARE` x servo_lag^2 x
        accel / 2: no stored push) plus :meth:`freed_lead` of the gap beyond that lag (the push its servo turns
        into speed when freed, on top of the speed it has). ``servo_lag`` None: :attr:`max_lead`."""
        if self.servo_lag is None:
            return np.array(self.max_lead)
        toward = np.maximum(np.asarray(toward, dtype=float), 0.0)
        lag = self.servo_lag * toward
        if accel is not None:
            lag = lag + ACCEL_LEAD_SHARE * 0.5 * self.servo_lag**2 * np.maximum(np.asarray(accel, dtype=float), 0.0)
        excess = np.maximum(np.asarray(gap, dtype=float) - lag, 0.0)
        return np.minimum(lag + self.freed_lead(excess, toward), self.max_lead)

    def lead_at(self, speed: np.ndarray, blocked: np.ndarray | None = None, still: np.ndarray | None = None,
                gap: np.ndarray | None = None, toward: np.ndarray | None = None, held: np.ndarray | None = None,
                accel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(behind, ahead) (J,) rad: how far a command may lie below / above joints measured moving at
        ``speed`` (J,) rad/s. A joint not ``blocked`` (J,) bool (None: every joint blocked): :attr:`max_lead`
        on both sides. A blocked one: the stall allowance, + :data:`FOLLOW_LAG` x ``lead_s`` of motion at its
        speed on the side it moves towards, at most :attr:`max_lead`; a joint pushed away from its command
        (the cube on the table drove the FR3 wrist backwards while the command stayed ahead on the other
        side) gets the stall allowance on the command's side. A ``still`` (J,) bool joint (led by a command
        it does not move towards, blocked or not yet): at most :meth:`freed_lead` of its command's ``gap`` (J,) rad;
        a ``held`` (J,) bool one (led by a command it moves towards, gaining ``accel`` (J,) rad/s^2): :meth:`held_lead`."""
        follow = FOLLOW_LAG * self.lead_s * np.asarray(speed, dtype=float)
        behind = np.minimum(self.stall_lead + np.maximum(-follow, 0.0), self.max_lead)
        ahead = np.minimum(self.stall_lead + np.maximum(follow, 0.0), self.max_lead)
        if blocked is not None:
            behind, ahead = np.where(blocked, behind, self.max_lead), np.where(blocked, ahead, self.max_lead)
        gap, toward = (np.zeros(self.n_joints) if x is None else x for x in (gap, toward))
        for mask, cap in ((still, self.freed_lead(gap, toward)), (held, self.held_lead(gap, toward, accel))):
            if mask is not None:
                behind, ahead = np.where(mask, np.minimum(behind, cap), behind), np.where(mask, np.minimum(ahead, cap), ahead)
        return behind, ahead

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def stale_after_s(self) -> float:
        """Age (s) beyond which the last joint state no longer counts as fresh."""
        return self.watchdog_periods * self.period_s

    @classmethod
    def from_robot(cls, spec: Any, cfg: Any, command_latency_s: float | None = None) -> SafetyLimits:
        """Limits from a RobotSpec (data-sheet limits) and a DeployConfig (rate, speed scale, box);
        ``command_latency_s``: the delay (s) of the deployment's command path before its controller acts, as
        declared (configs/deploy/<robot>.yaml; an env episode: its randomized latency); None: undeclared, the
        strict filter (:func:`servo_lag`).

        ValueError for a speed scale outside (0, 1], a robot without acceleration limits here or a latency
        outside 0-MAX_LEAD_S."""
        scale, hz = cfg.max_joint_speed_scale, cfg.control_hz
        if not (isinstance(scale, (int, float)) and 0 < scale <= 1):
            raise ValueError(f"max_joint_speed_scale: expected a fraction of the data-sheet speed in (0, 1], got {scale!r}")
        if not (isinstance(hz, (int, float)) and np.isfinite(hz) and hz > 0):
            raise ValueError(f"control_hz: expected a positive rate (Hz), got {hz!r}")
        if spec.name not in JOINT_ACCELERATION:
            raise ValueError(f"robot {spec.name!r}: no joint acceleration limits known; known: {sorted(JOINT_ACCELERATION)}")
        period = 1.0 / hz
        velocity = np.asarray(spec.velocity_limits, dtype=float)
        return cls(
            joint_names=tuple(spec.joint_names),
            lower=np.asarray(spec.joint_lower, dtype=float),
            upper=np.asarray(spec.joint_upper, dtype=float),
            max_step=velocity * scale * period,
            max_velocity=velocity,
            max_acceleration=np.asarray(JOINT_ACCELERATION[spec.name], dtype=float),
            workspace_min=np.asarray(cfg.workspace_min, dtype=float),
            workspace_max=np.asarray(cfg.workspace_max, dtype=float),
            period_s=period,
            watchdog_periods=cfg.watchdog_periods,
            servo_closing=servo_closing(spec.name, getattr(cfg, "command_interface", None), JOINT_ACCELERATION[spec.name]),
            servo_lag=servo_lag(spec.name, getattr(cfg, "command_interface", None), command_latency_s),
            command_latency_s=None if command_latency_s is None else float(command_latency_s),
        )


# Why the monitor produced a command (SafetyDecision.kind), from its own state, so that an instrument outside it
# (bench/hostile_driver.py) can hold each command to the bound that applies to it instead of guessing afterwards.
KIND_MOTION = "motion"  # one step (<= max_step) from the last command towards the target
KIND_WALK = "walk-back"  # a joint outside its lead window walked back faster than max_step (walk_steps)
KIND_FROM_MEASURED = "from the measured arm"  # the reference was the measurement, not a last command (+ why)
KIND_STOP = "stop hold"  # e-stop or non-normal safety mode (_hold_here)
KIND_STALE = "stale repeat"  # the watchdog: the last command repeated
KIND_BRAKE = "brake"  # no usable target: decelerating
KIND_BOX = "workspace hold"  # the target left the workspace box: the last command held
KIND_NONE = "none"  # no command (no trusted state yet)


@dataclass(frozen=True)
class SafetyDecision:
    """What to send. ``positions`` is None only before the first joint state (nothing is known to hold)."""

    positions: np.ndarray | None  # (J,) rad, always finite and inside the limits when not None
    held: bool
    reasons: tuple[str, ...] = ()  # why the target was held or changed (empty: passed unchanged)
    clamped: bool = False  # the target was moved to satisfy position or step limits
    kind: str = KIND_MOTION  # which path of the monitor produced it (the KIND_* constants)


@dataclass
class _RobotState:
    positions: np.ndarray | None = None  # (J,) last *trusted* measured joint positions
    received_s: float = -np.inf  # monotonic receipt time of that state (earlier once trust is revoked)
    estop: bool = False
    safety_normal: bool = True
    safety_detail: str = ""
    last_command: np.ndarray | None = None  # (J,) last command that was sent (None: the next starts at the measurement)
    last_sent: np.ndarray | None = None  # (J,) last command that was sent, kept when last_command is dropped (settled)
    last_step: np.ndarray | None = None  # (J,) last command - the one before (None: at rest)
    speed: np.ndarray | None = None  # (J,) rad/s, measured: trusted positions at least a period apart
    speed_ref: tuple[np.ndarray, float, float] | None = None  # (positions, stamp or receipt s, receipt s) of the
    # state the next speed is taken from
    stalled_us: np.ndarray | None = None  # (J,) int: how long (us) each joint has lagged a command ahead of it
    still: np.ndarray | None = None  # (J,) bool: a command leads it and it does not move towards it at all
    held: np.ndarray | None = None  # (J,) bool: a command leads it and it moves towards it (not still)
    accel: np.ndarray | None = None  # (J,) rad/s^2: the speed it gained towards the command over the last interval
    drag_speed: np.ndarray | None = None  # (J,) rad/s: the speed of the last two intervals, where they agree (walk_steps)
    stop_point: np.ndarray | None = None  # (J,) where an e-stop / safety stop holds, fixed when it began
    restart: str = "first command"  # why the next command starts at the measurement (last_command None)
    rest_intervals: int = 0  # speed intervals in a row in which every joint moved slower than REST_SHARE (at_rest)
    counters: dict[str, int] = field(default_factory=dict)


def segment_seconds(command: np.ndarray, measured: np.ndarray, speed: np.ndarray, period_s: float) -> np.ndarray:
    """Trajectory segment time (s) of ``command`` (..., J) from ``measured`` (..., J) at joint speeds
    ``speed`` (J,) rad/s: at least two control periods; one value per leading index. Shared by the
    policy node's safety filter and the gap replay that reproduces what it sent."""
    return np.maximum(2.0 * period_s, np.max(np.abs(command - measured) / speed, axis=-1))


class SafetyMonitor:
    """Stateful safety filter. Call :meth:`observe_state` on each joint state and :meth:`filter` per tick."""

    def __init__(self, limits: SafetyLimits, ee_position: EEFunction | None = None) -> None:
        self.limits = limits
        self.ee_position = ee_position
        self.trust = MeasurementTrust(limits)
        self._s = _RobotState()

    # ----- inputs -------------------------------------------------------------------------------
    def observe_state(self, positions: Sequence[float] | np.ndarray, received_s: float, stamp_s: float = 0.0
                      ) -> str | None:  # fmt: skip
        """Offer a joint state (robot joint order), its monotonic receipt time (s) and header stamp (s, 0:
        none). Returns None when it is trusted and recorded, else why not (:class:`MeasurementTrust`);
        ValueError for a malformed vector or time."""
        q = finite_vector("joint_state.position", positions, self.limits.n_joints)
        if not (np.isfinite(received_s) and np.isfinite(stamp_s)):
            raise ValueError(f"received_s/stamp_s: expected finite times (s), got {received_s!r}/{stamp_s!r}")
        reason = self.trust.judge(q, received_s, stamp_s)
        if reason is None:
            self._s.positions, self._s.received_s = q, float(received_s)
            self._measure_speed(q, float(stamp_s) if stamp_s > 0 else float(received_s), float(received_s))
        elif self.trust.trusted is None and self._s.positions is not None:
            self._s.received_s = min(self._s.received_s, float(received_s) - self.limits.stale_after_s - 1e-9)
        return reason

    def _measure_speed(self, q: np.ndarray, t: float, received_s: float) -> None:
        """Joint speeds from trusted positions at least one control period apart (a 1 kHz stream's noise is
        not divided by 1 ms), timed by the robot's stamps where the states carry them (DDS may deliver two
        states at once), else by receipt. The interval is rounded to the microsecond: unrounded, the float
        rounding of large absolute times (~1e-12 relative) moved a binding window, and the same episode on
        simulated time differed run to run (7e-7 rad after 150 steps of contact). After a gap longer than the
        watchdog, by stamp or by receipt (frozen stamps), the speed is unknown: taken as rest, and a joint
        with a command ahead of it as blocked (the smaller window: a stream that says nothing buys no lead)."""
        ref, lim = self._s.speed_ref, self.limits
        dt = round(t - ref[1], 6) if ref is not None else -1.0
        late = ref is not None and received_s - ref[2] > lim.stale_after_s + lim.period_s
        before = self._s.speed
        if late or not 0 <= dt <= lim.stale_after_s + lim.period_s:
            self._s.speed, self._s.speed_ref = np.zeros_like(q), (q, t, received_s)
            self._s.drag_speed = np.zeros_like(q)
            self._s.rest_intervals = 0  # unknown after a gap: taken as rest for the window, never as *known* rest
            self._time_stall(q, None, None)
        elif dt >= round(lim.period_s, 6):
            self._s.speed, self._s.speed_ref = (q - ref[0]) / dt, (q, t, received_s)
            self._s.drag_speed = _sustained(before, self._s.speed)
            calm = np.all(np.abs(self._s.speed) <= REST_SHARE * lim.max_step / lim.period_s)
            self._s.rest_intervals = self._s.rest_intervals + 1 if calm else 0
            self._time_stall(q, round(dt * 1e6), before)

    def _time_stall(self, q: np.ndarray, dt_us: int | None, last_speed: np.ndarray | None) -> None:
        """Add ``dt_us`` to the time each joint has lagged its command: the last command leads it by at
        least :data:`PRESS_SHARE` of the stall allowance and it moves towards it slower than
        :attr:`SafetyLimits.follow_min_speed`; any other joint's time restarts at 0. In whole microseconds
        (sums of rounded intervals: no dependence on the absolute time). A joint moving *away* from a command
        ahead of it at that speed or more is pushed (a contact drove the FR3 wrist 0.2 rad from its command in
        0.1 s, then its servo closed the gap at 4.96 rad/s): blocked at once, as is a lagging joint after an
        interval of unknown length (``dt_us`` None). *Still* (led only by :meth:`SafetyLimits.freed_lead`): a joint
        the command leads that moves towards it slower than :data:`STILL_SHARE` of its allowed speed, or slower
        than :attr:`SafetyLimits.follow_min_speed` without gaining speed towards it at :data:`GAIN_SHARE` of
        its acceleration limit since ``last_speed`` (J,) rad/s (a creeping joint: what it does, not how long).
        *Held* (led by :meth:`SafetyLimits.held_lead` at the speed it gained over this interval): every other joint
        the command leads (held back while it moves, following, or gaining speed: its servo starting it or a
        block that yields; a free servo's lag then fits the bound)."""
        lim, cmd = self.limits, self._s.last_command
        if cmd is None:
            self._s.stalled_us = np.zeros(q.shape, dtype=np.int64)
            self._s.still = np.zeros(q.shape, dtype=bool)
            self._s.held = np.zeros(q.shape, dtype=bool)
            self._s.accel = np.zeros(q.shape)
            return
        gap = cmd - q
        toward = np.sign(gap) * self._s.speed
        ahead = np.abs(gap) >= PRESS_SHARE * lim.stall_lead
        before = self._s.stalled_us if self._s.stalled_us is not None else np.zeros(q.shape, dtype=np.int64)
        grown = before + dt_us if dt_us is not None else np.full(q.shape, self._stall_after_us + 1, dtype=np.int64)
        grown = np.where(toward <= -lim.follow_min_speed, np.maximum(grown, self._stall_after_us + 1), grown)
        self._s.stalled_us = np.where(ahead & (toward < lim.follow_min_speed), grown, 0)
        allowed = lim.max_step / lim.period_s
        gain = toward - (0.0 if last_speed is None else np.sign(gap) * last_speed)  # rad/s over this interval
        interval = lim.period_s if dt_us is None else dt_us * 1e-6
        steady = gain < GAIN_SHARE * lim.max_acceleration * interval
        slow = toward < lim.follow_min_speed
        self._s.still = ahead & ((toward < STILL_SHARE * allowed) | (slow & steady))
        self._s.held = ahead & ~self._s.still
        self._s.accel = gain / interval

    @property
    def _stall_after_us(self) -> int:
        return round(STALL_AFTER_S * 1e6)

    @property
    def blocked(self) -> np.ndarray:
        """(J,) bool: joints blocked now: they have lagged a command ahead of them for longer than
        :data:`STALL_AFTER_S` (their lead window shrinks to the stall allowance, :meth:`SafetyLimits.lead_at`)."""
        if self._s.stalled_us is None:
            return np.zeros(self.limits.n_joints, dtype=bool)
        return self._s.stalled_us > self._stall_after_us

    def set_estop(self, engaged: bool) -> None:
        """Engage (True) or release (False) the e-stop. Either way motion restarts from rest at the last
        command (the hold point during a stop): never a jump (see :meth:`_hold_here`)."""
        if bool(engaged) != self._s.estop:
            self._s.last_step = None
        self._s.estop = bool(engaged)
        self._end_stop_if_clear()

    def set_safety_mode(self, normal: bool, detail: str = "") -> None:
        """The robot's own safety state (e.g. UR safety mode); anything but normal makes us hold.

        The robot stopped on its own, so on return to normal motion restarts from rest at the hold point.
        """
        if not self._s.safety_normal and normal:
            self._s.last_step = None
        self._s.safety_normal, self._s.safety_detail = bool(normal), detail
        self._end_stop_if_clear()

    def _end_stop_if_clear(self) -> None:
        """Forget the stop's hold point once no stop reason is left (the next stop takes a new one)."""
        if not self.stop_reasons():
            self._s.stop_point = None

    def reset_reference(self, from_measured: bool = False) -> None:
        """Forget the velocity: the next command starts from rest (call on activation, at episode start,
        after any stop). From the last command while that is within the lead window of the last trusted
        measurement (the controller holds its last point, so the arm is there or on its way: starting at
        the measurement would step back up to ``max_lead`` in one tick), else from the measurement (the arm
        was moved while nothing was commanded). ``from_measured`` (an episode's start, the arm at rest): from
        the measurement always: the arm may have been moved home meanwhile (an operator, the twin's reset)
        with the last command still inside the window (a UR5e episode then began 0.13 rad from the arm, at
        the previous episode's last command: issue 21); but only when :attr:`settled`: while the arm still moves
        towards a last command more than a step away, from rest at that command (the session does not start an
        episode then: it waits for the arm to settle), so no command ever steps back onto a moving arm."""
        last, q = self._s.last_command, self._s.positions
        if from_measured and not self.settled:  # from rest at the last command sent: the arm is on its way there
            self._s.last_command, self._s.last_step = self._s.last_sent.copy(), None
            return
        if last is not None and (from_measured or q is None or np.any(np.abs(last - q) > self.limits.max_lead)):
            self._s.last_command = None
            self._s.restart = "episode start" if from_measured else "reset, last command outside the lead window"
        self._s.last_step = None

    @property
    def at_rest(self) -> bool:
        """Whether the arm is measured at rest: every joint slower than :data:`REST_SHARE` of its allowed speed
        over the last :data:`REST_INTERVALS` speed intervals of trusted states (not known after a gap)."""
        return self._s.rest_intervals >= REST_INTERVALS

    @property
    def settled(self) -> bool:
        """Whether a command may jump from the last command to the measured arm: no command yet, the two within
        one step (max_step per joint), or the arm :attr:`at_rest` (a command where a still arm stands asks for
        no motion). Not while the arm moves towards a command more than a step away: the jump would be a step
        back against its motion (:data:`REST_SHARE`). Judged from the last command *sent*, also where a reset
        dropped it as the reference (one outside the lead window): the arm's controller still holds it."""
        last, q = self._s.last_sent, self._s.positions
        if last is None or q is None:
            return True
        return bool(np.all(np.abs(last - q) <= self.limits.max_step)) or self.at_rest

    # ----- queries ------------------------------------------------------------------------------
    @property
    def estop(self) -> bool:
        """Whether the e-stop is engaged."""
        return self._s.estop

    @property
    def measured(self) -> np.ndarray | None:
        """The last trusted joint positions (J,) rad (None before the first)."""
        return None if self._s.positions is None else self._s.positions.copy()

    @property
    def reference(self) -> np.ndarray | None:
        """Where the next command starts from: the last command sent, else the measured joints."""
        return None if self._s.positions is None else self._reference()

    @property
    def counters(self) -> dict[str, int]:
        """How often each reason fired since construction (for logs and tests)."""
        return dict(self._s.counters)

    def hold_reasons(self, now_s: float) -> list[str]:
        """Reasons that force a hold right now, independent of the requested target."""
        return [*self.stop_reasons(), *self._stale_reasons(now_s)]

    def stop_reasons(self) -> list[str]:
        """Why the robot is stopped (e-stop, safety mode); empty when neither."""
        reasons = []
        if self._s.estop:
            reasons.append("e-stop engaged")
        if not self._s.safety_normal:
            reasons.append(f"robot safety mode not normal ({self._s.safety_detail or 'unknown'})")
        return reasons

    def _stale_reasons(self, now_s: float) -> list[str]:
        age = now_s - self._s.received_s
        if self._s.positions is not None and not age <= self.limits.stale_after_s:
            return [f"joint state stale: no trusted state for {age * 1e3:.1f} ms > "
                    f"{self.limits.stale_after_s * 1e3:.1f} ms"]  # fmt: skip
        return []

    # ----- the filter ---------------------------------------------------------------------------
    def filter(self, target: Any, now_s: float) -> SafetyDecision:
        """Turn a requested joint target (J,) rad into a safe command, or a hold with reasons.

        A stale joint state repeats the last command and does not advance: the measured value is stale
        too, so holding "where the arm is" would command where it *was* (a reversal of up to speed x
        watchdog), and sending nothing leaves a trajectory controller on its last point anyway. The last
        command is at most ``max_lead`` from the last measured position, so the arm stops within that.
        """
        if self._s.positions is None:
            return self._count(SafetyDecision(None, True, ("no trusted joint state yet",), kind=KIND_NONE))
        if stop := self.stop_reasons():
            return self._count(self._hold_here(stop + self._stale_reasons(now_s)))
        if stale := self._stale_reasons(now_s):
            self._s.last_step = None
            return self._count(SafetyDecision(self._reference(), True, tuple(stale), kind=KIND_STALE))
        candidate, problem = self._parse_target(target)
        if problem:
            return self._count(self._brake(problem))
        return self._count(self._limit(candidate))

    def segment_time(self, command: np.ndarray) -> float:
        """Time (s) to give a trajectory point so that no joint needs more than the allowed speed to
        reach it from the *measured* position: at least two periods (commands that arrive bunched,
        as DDS on a busy machine delivers them, then still imply at most the allowed speed), longer
        when the robot lags behind."""
        if self._s.positions is None:
            return 2.0 * self.limits.period_s
        speed = self.limits.max_step / self.limits.period_s  # (J,) rad/s
        return float(segment_seconds(command, self._s.positions, speed, self.limits.period_s))

    def hold(self, reason: str) -> SafetyDecision:
        """A hold for an external reason (e.g. the policy raised): brake to a stop within the limits (an
        e-stop or safety stop still holds where the arm is). None before any state."""
        if self._s.positions is None:
            return self._count(SafetyDecision(None, True, ("no trusted joint state yet", reason), kind=KIND_NONE))
        if stop := self.stop_reasons():
            return self._count(self._hold_here([*stop, reason]))
        return self._count(self._brake(reason))

    def _parse_target(self, target: Any) -> tuple[np.ndarray | None, str]:
        try:
            return finite_vector("target", target, self.limits.n_joints), ""
        except (TypeError, ValueError) as err:
            return None, str(err)

    def _reference(self) -> np.ndarray:
        ref = self._s.last_command if self._s.last_command is not None else self._s.positions
        return np.clip(ref, self.limits.lower, self.limits.upper)

    def _hold_here(self, reasons: list[str]) -> SafetyDecision:
        """Hold, for the whole stop, at the point nearest the last *trusted* measurement that is at most
        one step from the last command (inside the lead window where that step allows): the arm, which
        trails the command, stops between the two, and the first hold command keeps the step and lead bounds
        like any other (jumping straight to the measurement moved up to ``max_lead`` in one tick). It stops
        within one tick, so it does not keep the acceleration bound: stopping from the speed limit inside
        it would take ~0.3 s and ~0.25 rad on a UR5e. The point is fixed when the stop begins: re-reading
        the measurement each tick would let a sagging or pushed arm walk the hold along with it. Motion
        restarts from rest at the hold point afterwards."""
        if self._s.stop_point is None:
            lim, ref = self.limits, self._reference()
            low, high = self._lead_window()
            toward = np.clip(np.clip(self._s.positions, low, high), ref - lim.max_step, ref + lim.max_step)
            self._s.stop_point = np.clip(toward, lim.lower, lim.upper)
            self._s.last_step = None
        return SafetyDecision(self._s.stop_point.copy(), True, tuple(reasons), kind=KIND_STOP)

    def _brake(self, reason: str) -> SafetyDecision:
        """Decelerate towards a stop (no new target) within the acceleration and lead limits."""
        ref = self._reference()
        cmd, _, self._s.last_step = self._step_from(ref, np.zeros_like(ref), brake_at_edge=True)
        return SafetyDecision(cmd, True, (reason,), kind=self._motion_kind(cmd, ref, KIND_BRAKE))

    def _step_from(self, ref: np.ndarray, wanted: np.ndarray, brake_at_edge: bool = False
                   ) -> tuple[np.ndarray, list[str], np.ndarray]:  # fmt: skip
        """The command nearest ``ref + wanted`` that keeps the step, acceleration and lead limits, the
        reasons for each limit that changed it, and the step the next tick's acceleration bound starts from.

        The step limit, the joint limits and the lead window (:meth:`_lead_window` around the measured position)
        always hold. The acceleration bound holds while the arm follows: when the arm stalls or is pushed
        so that the window edge stops the command, the command stops there at once (the lead bound
        wins), and a command outside the window (the arm moved away from it) walks back towards it by at
        most :meth:`SafetyLimits.walk_steps` per tick (one step, or the arm's measured speed where it is dragged
        faster) and stops there (that walk is the window's, not a motion to continue: carried
        on at the acceleration limit, a blocked FR3 wrist's command walked back past the joint and 0.02 rad
        beyond it, away from its target). ``brake_at_edge`` (a soft hold, which stops anyway): also slow down early
        enough to stop inside the window at the acceleration limit, as if its edge stood still (for normal
        motion that would cap the speed at sqrt(2 x acceleration x lead), below the speed limit)."""
        lim = self.limits
        change = lim.max_step_change
        last = np.zeros_like(ref) if self._s.last_step is None else self._s.last_step
        step = np.clip(wanted, -lim.max_step, lim.max_step)
        reasons = ["clamped to per-step velocity limit"] if not np.array_equal(step, wanted) else []
        # Arrive at the target without overshoot: no faster than a stop at the acceleration limit allows.
        # (A bang-bang step with a bounded change oscillates around the target instead.)
        arriving = np.sign(step) * np.minimum(np.abs(step), _braking_step(np.abs(wanted), change))
        smooth = np.clip(arriving, last - change, last + change)
        if not np.array_equal(smooth, arriving):
            reasons.append("clamped to acceleration limit")
        low, high = self._lead_window()
        if brake_at_edge:
            smooth = np.clip(smooth, -_braking_step(ref - low, change), _braking_step(high - ref, change))
        down, up = lim.walk_steps(np.zeros_like(ref) if self._s.drag_speed is None else self._s.drag_speed)
        bounded = np.clip(np.clip(ref + smooth, low, high) - ref, -down, up)  # beyond max_step: a walk back only
        # (ref + s) - ref differs from s in the last bits: only a real move by the window is a clamp (the
        # reason fired on ~390 of 400 ticks of every FR3 pick-and-place episode before)
        if np.any(np.abs(bounded - smooth) > 1e-12):
            reasons.append("clamped to lead limit (command ahead of the measured position)")
        cmd = np.clip(ref + bounded, lim.lower, lim.upper)
        walked_back = (bounded * smooth < 0) | ((smooth == 0) & (bounded != 0))
        # a walk at the arm's speed leaves the next tick's acceleration bound at most one allowed step
        return cmd, reasons, np.where(walked_back, 0.0, np.clip(cmd - ref, -lim.max_step, lim.max_step))

    def _lead_window(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) (J,): the positions a command may take, :meth:`SafetyLimits.lead_at` the measured
        speed around the measured position and inside the joint limits (a measured position beyond a limit
        by more than the lead: that limit)."""
        lim, measured = self.limits, self._s.positions
        speed = np.zeros_like(measured) if self._s.speed is None else self._s.speed
        none = np.zeros(lim.n_joints, dtype=bool)
        still = self._s.still if self._s.still is not None else none
        held = self._s.held if self._s.held is not None else none
        lead = np.zeros_like(measured) if self._s.last_command is None else self._s.last_command - measured
        behind, ahead = lim.lead_at(speed, self.blocked, still, np.abs(lead), np.sign(lead) * speed, held, self._s.accel)
        low = np.maximum(lim.lower, measured - behind)
        high = np.minimum(lim.upper, measured + ahead)
        edge = np.clip(measured, lim.lower, lim.upper)
        return np.where(low > high, edge, low), np.where(low > high, edge, high)

    def _limit(self, target: np.ndarray) -> SafetyDecision:
        lim, ref = self.limits, self._reference()
        reasons = []
        cmd = np.clip(target, lim.lower, lim.upper)
        if not np.array_equal(cmd, target):
            reasons.append("clamped to joint limits")
        cmd, step_reasons, step = self._step_from(ref, cmd - ref)
        reasons += step_reasons
        if self._leaves_workspace(cmd, ref):
            self._s.last_step = None  # the box is a hard limit: stop at the last command
            return SafetyDecision(ref, True, ("end effector would leave the workspace box",), kind=KIND_BOX)
        self._s.last_step = step
        return SafetyDecision(cmd, False, tuple(reasons), clamped=bool(reasons), kind=self._motion_kind(cmd, ref))

    def _motion_kind(self, cmd: np.ndarray, ref: np.ndarray, plain: str = KIND_MOTION) -> str:
        """The kind of a command one step from ``ref``: from the measured arm (no last command: why it was
        dropped), a walk-back (a joint moved more than max_step: :meth:`SafetyLimits.walk_steps`), else ``plain``."""
        if self._s.last_command is None:
            return f"{KIND_FROM_MEASURED} ({self._s.restart})"
        if np.any(np.abs(cmd - ref) > self.limits.max_step * (1 + 1e-9)):
            return KIND_WALK
        return plain

    def _leaves_workspace(self, cmd: np.ndarray, ref: np.ndarray) -> bool:
        """True when ``cmd`` puts the end effector outside the box, unless it moves back towards it."""
        if self.ee_position is None:
            return False
        outside = self._box_violation(cmd)
        return outside > 0 and outside >= self._box_violation(ref)

    def _box_violation(self, q: np.ndarray) -> float:
        p = np.asarray(self.ee_position(q), dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(p)):
            return np.inf
        below = np.maximum(self.limits.workspace_min - p, 0.0)
        above = np.maximum(p - self.limits.workspace_max, 0.0)
        return float(np.linalg.norm(below + above))

    def _count(self, decision: SafetyDecision) -> SafetyDecision:
        for reason in decision.reasons:
            key = reason.split(":")[0].split("(")[0].strip()
            self._s.counters[key] = self._s.counters.get(key, 0) + 1
        if decision.positions is not None:
            pos = decision.positions
            assert pos.shape == (self.limits.n_joints,) and np.all(np.isfinite(pos))
            assert np.all(pos >= self.limits.lower) and np.all(pos <= self.limits.upper)
            self._s.last_command, self._s.last_sent = pos.copy(), pos.copy()
        return decision


def _sustained(before: np.ndarray | None, now: np.ndarray) -> np.ndarray:
    """(J,) rad/s: the speed both of the last two measured intervals show (the slower, where they move the same way;
    0 elsewhere). A command walks after an arm at this speed (SafetyLimits.walk_steps): one state off the arm (a
    glitch the trust rule let through: up to 1.25 x the data-sheet reach) moves no command faster than max_step."""
    if before is None:
        return np.zeros_like(now)
    return np.where(before * now > 0, np.sign(now) * np.minimum(np.abs(before), np.abs(now)), 0.0)


def _braking_step(room: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Largest step towards an edge ``room`` away (J,) after which a stop within it is still possible,
    decelerating by ``change`` per tick: s + s^2 / (2 change) <= room, or the whole room when that is at
    most one change (the next tick can stop). Negative room (already beyond the edge): step back."""
    ahead = np.maximum(room, 0.0)
    stopping = np.maximum(change * (np.sqrt(1.0 + 2.0 * ahead / change) - 1.0), np.minimum(ahead, change))
    return np.where(room > 0, stopping, room)

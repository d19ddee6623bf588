"""Episode bookkeeping on a robot: start/stop, timeout, success from the goal, and the outcome record.

Success and final error follow the one rule of :mod:`ast_robot.success` that the envs and ``ast-robot eval``
use: the episode's last state decides, with the threshold the policy was trained with (the checkpoint's
contract). Each finished episode becomes one :class:`ast_robot.records.EpisodeRecord` with ``source="real"``
(the twin counts as real: its physics is hidden from the learning side).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ast_robot.deploy.scheduler import CLOCK_EPS_S
from ast_robot.pick_outcome import PickJudge
from ast_robot.records import EpisodeRecord, PickOutcome
from ast_robot.success import episode_outcome, goal_distance, reached

JUDGE_PERIOD_S = 0.1  # without an object tracker: how often the pick judge samples the gripper's opening


@dataclass
class _Trace:
    """What one episode accumulated, one row per control tick."""

    start_s: float
    seed: int
    goal: np.ndarray  # (3,) m
    q: list[np.ndarray] = field(default_factory=list)  # measured joints before each tick, then the last
    targets: list[np.ndarray] = field(default_factory=list)  # commanded joint targets (J,)
    actions: list[np.ndarray | None] = field(default_factory=list)  # policy actions (A,), None when held
    ee: list[np.ndarray] = field(default_factory=list)  # end-effector positions (3,)
    max_speed: float = 0.0  # rad/s
    held: int = 0  # ticks whose command was a hold (safety or no policy action)
    success_s: float | None = None  # first time the goal was reached (s after the start)
    judge: PickJudge | None = None  # pick-and-place: events and the object's final pose (ast_robot.pick_outcome)
    table: str | None = None  # pick-and-place: the table JSON the operator set for this episode (its replay's start)
    gripper: list[tuple[int, float]] | None = None  # pick-and-place: (tick, width m) of each gripper command sent
    stopped_at: int | None = None  # first tick at which the robot was stopped (e-stop or its own safety system)
    stamps: list[float] = field(default_factory=list)  # header stamp (s) of each row of q (0.0: unstamped)


class EpisodeTracker:
    """One episode at a time. :meth:`tick` returns a record when the episode ends (success or timeout)."""

    def __init__(self, robot: str, task: str, control_dt: float, timeout_s: float,
                 success_radius: float = 0.05, meta: dict[str, Any] | None = None,
                 end_on_success: bool = True, command_latency_s: float | None = None) -> None:  # fmt: skip
        if not control_dt > 0 or not timeout_s > 0 or not success_radius > 0:
            raise ValueError(f"control_dt, timeout_s and success_radius must be > 0, got "
                             f"{control_dt}, {timeout_s}, {success_radius}")  # fmt: skip
        self.robot, self.task, self.control_dt, self.timeout_s = robot, task, control_dt, timeout_s
        self.success_radius, self.meta, self.end_on_success = success_radius, dict(meta or {}), end_on_success
        self.command_latency_s = command_latency_s  # s, declared to the safety filter: each record carries it
        self._trace: _Trace | None = None
        self.episodes = 0
        self.gripper_width: tuple[float, float] | None = None  # pick-and-place: (closed, open) m, judge's bounds
        self.target_object: int | None = None  # pick-and-place: the target cube's index in the tracker's poses
        self._objects: np.ndarray | None = None  # latest measured cube positions (n, 3), None: none measured
        self._fresh = False  # a pose message arrived since the judge's last step
        self._judged_s = -np.inf  # episode time of the judge's last step (s)

    @property
    def active(self) -> bool:
        return self._trace is not None

    def set_goal(self, goal: np.ndarray) -> None:
        """Move the running episode's goal (a tracking task); the final error is measured to the latest one."""
        if self._trace is not None:
            self._trace.goal = np.array(goal, dtype=float)

    def start(self, now_s: float, goal: np.ndarray | None, table: str | None = None) -> str:
        """Begin an episode; ValueError (with the reason) when one runs or no goal is set. ``table``: the table
        JSON the operator set (pick-and-place), written into the record's ``meta.table`` for its replay."""
        if self._trace is not None:
            raise ValueError("an episode is already running; stop it first")
        if goal is None:
            raise ValueError("no goal received yet; publish a goal before starting an episode")
        self._trace = _Trace(start_s=now_s, seed=self.episodes, goal=np.array(goal, dtype=float), table=table)
        if self.gripper_width is not None:  # judged on the object: the goal is the target's place on its pad
            self._trace.gripper = []
            self._trace.judge = PickJudge(self.gripper_width, goal, self.target_object, self.success_radius,
                                          pose_source="tracker")  # fmt: skip
        self._objects, self._fresh = None, False  # poses from before the start belong to the last table
        self._judged_s = -np.inf
        return f"episode {self.episodes} started"

    def observe_objects(self, positions: Any) -> None:
        """The latest cube positions (n, 3, m, world) from a lab's tracker (recorded, never seen by the policy)."""
        self._objects, self._fresh = np.array(positions, dtype=float).reshape(-1, 3), True

    def tick(self, now_s: float, q: np.ndarray | None, dq: np.ndarray | None, ee: np.ndarray | None,
             target: np.ndarray | None, action: np.ndarray | None, held: bool | None = None,
             width: float | None = None, gripper_sent: float | None = None, stopped: bool = False,
             stamp_s: float = 0.0) -> Any:  # fmt: skip
        """Log one control tick; returns an EpisodeRecord when the episode ends here, else None.

        ``held``: the safety filter held this tick (default: no policy action counts as held); ``width``:
        the measured gripper opening (m) for pick-and-place events; ``gripper_sent``: the opening (m) of the
        gripper command sent at this tick (None: none), recorded so a replay applies what was sent, when;
        ``stopped``: the robot is stopped (e-stop or its own safety system, e.g. a protective stop on a joint
        over its speed limit): the record's meta says from which tick (``stopped_at_step``), since from there
        the arm stood on its brakes, refusing commands, and no replay of the commands reproduces it.
        ``stamp_s``: the header stamp (s, the robot's clock; 0: unstamped) of the joint state ``q`` was measured
        in: the record's ``joint_stamps``, by which camera frames are placed in their episode."""
        tr = self._trace
        if tr is None or q is None or ee is None or target is None:
            return None
        if dq is not None:
            tr.max_speed = max(tr.max_speed, float(np.max(np.abs(dq))))
        elapsed = round(now_s - tr.start_s, 9)  # to the ns: the same episode started at another time reads the same
        if tr.judge is not None and width is not None:
            self._judge(tr.judge, elapsed, width, ee)
        end = None
        if tr.success_s is None and reached(self._distance(tr, ee), self.success_radius):
            tr.success_s = elapsed
            end = "success" if self.end_on_success else None
        if end is None and now_s - tr.start_s >= self.timeout_s - CLOCK_EPS_S:  # float sums: 2.0 s may read 1.99999...
            end = "timeout"
        if end is not None and tr.targets:
            # This state is the episode's last (as an env's episode ends at the state after its last action):
            # the command computed at it is not the episode's. Logging it too would pair a command with no
            # state after it, and the record's last row would repeat this state (issue 21: one period of
            # motion, up to 9 mrad, was most of a nominal pick-and-place replay's loss).
            return self._finish(q, ee, end, stamp_s)
        tr.q.append(np.array(q, dtype=float))
        tr.stamps.append(float(stamp_s))
        tr.ee.append(np.array(ee, dtype=float))
        tr.targets.append(np.array(target, dtype=float))
        tr.actions.append(None if action is None else np.array(action, dtype=float))
        tr.held += bool(action is None if held is None else held or action is None)
        if stopped and tr.stopped_at is None:
            tr.stopped_at = len(tr.targets) - 1
        if tr.gripper is not None and gripper_sent is not None:
            tr.gripper.append((len(tr.targets) - 1, float(gripper_sent)))
        return None if end is None else self._finish(q, ee, end, stamp_s)  # ended at its first state: one step kept

    def stop(self, q: np.ndarray | None, ee: np.ndarray | None, reason: str = "stopped", stamp_s: float = 0.0) -> Any:
        """End the running episode early; returns its record (None if it had no control tick)."""
        if self._trace is None:
            raise ValueError("no episode is running")
        if not self._trace.targets or q is None or ee is None:
            self._trace = None
            return None
        return self._finish(q, ee, reason, stamp_s)

    def _judge(self, judge: PickJudge, t_s: float, width: float, ee: np.ndarray) -> None:
        """Step the judge once per tracker message (the cube and TCP of one moment: a pose 0.1 s old beside
        this tick's TCP would look like a cube sliding in the hand), or at ``JUDGE_PERIOD_S`` without a
        tracker (the opening's stillness is judged over that period, as the env's over one control step)."""
        if self._fresh or (self._objects is None and t_s - self._judged_s >= JUDGE_PERIOD_S - CLOCK_EPS_S):
            judge.step(t_s, width, ee, self._objects)
            self._fresh, self._judged_s = False, t_s

    def _distance(self, tr: _Trace, ee: np.ndarray) -> float:
        """Goal distance by the one rule: the target cube's when a tracker measures it, else the TCP's."""
        cube = None if tr.judge is None else tr.judge.target_distance()
        return goal_distance(ee, tr.goal) if cube is None else cube

    def _finish(self, q: np.ndarray, ee: np.ndarray, reason: str, stamp_s: float = 0.0) -> EpisodeRecord:
        tr, self._trace = self._trace, None
        stamps = np.array([*tr.stamps, stamp_s])  # (T+1,) s; unknown when any state was unstamped
        stamps = stamps if stamps.min() > 0.0 and (np.diff(stamps) >= 0).all() else None
        self.episodes += 1
        ees = np.array([*tr.ee, ee])  # (T+1, 3)
        success, final_error = episode_outcome(self._distance(tr, ee), self.success_radius)
        pick = None if tr.judge is None else PickOutcome(**tr.judge.outcome())
        judged = "tcp" if pick is None or pick.pose_source == "none" else "object"
        width = max((a.size for a in tr.actions if a is not None), default=3)
        actions = np.array([np.zeros(width) if a is None else a for a in tr.actions])  # (T, A)
        table = {} if tr.table is None else {"table": tr.table}
        stop = {} if tr.stopped_at is None else {"stopped_at_step": tr.stopped_at}
        return EpisodeRecord(
            robot=self.robot, task=self.task, seed=tr.seed, source="real", success=success,
            final_error=final_error, time_to_success=_success_time(tr, self.control_dt) if success else None,
            path_length=float(np.sum(np.linalg.norm(np.diff(ees, axis=0), axis=1))),
            max_joint_velocity=tr.max_speed, control_dt=self.control_dt, actions=actions,
            joint_positions=np.array([*tr.q, q]), joint_targets=np.array(tr.targets),
            meta={**self.meta, "end_reason": reason, "held_steps": tr.held, "judged_on": judged,
                  "goal": ",".join(f"{v:.4f}" for v in tr.goal), **table, **stop}, pick=pick,
            gripper_commands=None if tr.gripper is None else tuple(tr.gripper), joint_stamps=stamps,
            command_latency_s=self.command_latency_s,
        )  # fmt: skip


def _success_time(tr: _Trace, control_dt: float) -> float:
    """First time the goal was reached; the last tick's time when only the final state reached it."""
    return tr.success_s if tr.success_s is not None else len(tr.targets) * control_dt

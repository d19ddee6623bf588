"""Everything the policy node does, minus ROS: message checks, safety, episodes, per-tick commands.

The rclpy node (``ast_robot_ros.policy_node``) converts messages to plain values, calls these methods and
publishes what they return. That keeps the node thin and this logic testable without DDS. The node uses
only the public methods and properties of :class:`DeploymentSession`, never its runner, safety monitor or
episode tracker: what a node may ask is listed in one place.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.deploy.episode import EpisodeTracker
from ast_robot.deploy.inputs import JointStateChecker, Rejected, check_image, resize_nearest
from ast_robot.deploy.runner import PolicyRunner
from ast_robot.deploy.table import Table, parse_table

SAFETY_MODE_NORMAL = 1  # ur_dashboard_msgs/SafetyMode.NORMAL
# Simulated time: a start is accepted against the latest joint state and happens at a later one (the node ticks
# on states, :meth:`DeploymentSession.request_start`). The state it happens at may be one the start must wait
# for: after /twin/reset the stream resumes a pause later with the arm teleported home, and trust in it is
# reacquired over ``ACQUIRE_STATES`` states (a hold meanwhile). The start waits this long (simulated s, from the
# first state after the request) for such a hold to clear: ACQUIRE_STATES states of any stream above 12 Hz.
START_WAIT_S = 0.25


@dataclass(frozen=True)
class TickOutput:
    """What one control tick produced. ``command`` is None when nothing may be sent yet."""

    command: np.ndarray | None  # (J,) rad, safe
    held: bool
    reasons: tuple[str, ...]
    record: Any = None  # an EpisodeRecord when an episode ended on this tick
    gripper: list[float] | None = None  # gripper command data (deploy.gripper) to publish, None: nothing
    kind: str = "none"  # which path of the safety module produced ``command`` (SafetyDecision.kind)


class RejectionLog:
    """Rejections counted per kind and reason; :meth:`summary` gives at most one line per ``interval_s``.

    A flood of bad messages must not cost a log line each (~0.4 ms in rclpy): that starved control at
    1500 rejected states/s. Constant work per rejection; the line names the counts and the last reason."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self.totals: Counter[str] = Counter()  # "kind: reason key" -> count since start
        self._pending: Counter[str] = Counter()  # since the last summary
        self._last_reason = ""
        self._last_line_s = -np.inf

    def add(self, kind: str, key: str, reason: str) -> None:
        self.totals[f"{kind}: {key}"] += 1
        self._pending[f"{kind}: {key}"] += 1
        self._last_reason = reason

    def summary(self, now_s: float) -> str | None:
        """One line of the rejections since the last line, or None (nothing new, or too soon)."""
        if not self._pending or now_s - self._last_line_s < self.interval_s:
            return None
        window = now_s - self._last_line_s
        counts = ", ".join(f"{k} x{n}" for k, n in self._pending.most_common())
        span = f"in the last {window:.1f} s" if np.isfinite(window) else "so far"
        line = f"rejected {sum(self._pending.values())} messages {span} ({counts}); last: {self._last_reason}"
        self._pending.clear()
        self._last_line_s = now_s
        return line


class DeploymentSession:
    """Policy runner + input checks + episodes. Times are monotonic seconds supplied by the caller.

    ``require_safety_mode`` (fail closed, the default): the robot's safety mode counts as not normal, and
    no episode starts, until :meth:`on_safety_mode` has been called (robots without a safety-mode topic,
    e.g. FR3 behind franka_ros2, pass False).
    """

    def __init__(self, runner: PolicyRunner, joint_names: list[str], robot: str, task: str | None = None,
                 timeout_s: float = 10.0, meta: dict[str, Any] | None = None, end_on_success: bool = True,
                 require_safety_mode: bool = True) -> None:  # fmt: skip
        self.runner = runner
        self.checker = JointStateChecker(joint_names, max_age_s=runner.limits.stale_after_s)
        # task and success threshold as trained (the checkpoint's contract): one success rule, sim and robot
        task = task or runner.task
        # pick-and-place is judged on the object and, as in the env, by its last state: no end on success
        self.episodes = EpisodeTracker(robot, task, runner.limits.period_s, timeout_s,
                                       success_radius=runner.success_threshold, meta=meta,
                                       end_on_success=end_on_success and task != "pickplace",
                                       command_latency_s=runner.limits.command_latency_s)  # fmt: skip
        self.table: Table | None = None  # pick-and-place: the table the operator set (deploy.table)
        self.table_text: str | None = None  # ... as it was sent (each pick-and-place record's meta.table)
        self.width: float | None = None  # latest measured gripper opening (m)
        self.state_stamp_s = 0.0  # header stamp (s) of the trusted joint state (0: unstamped), for the record
        if task == "pickplace" and runner.gripper is not None:
            self.episodes.gripper_width = (runner.gripper.closed, runner.gripper.opened)
        self.rejections: Counter[str] = Counter()  # per kind of message, since start
        self.log = RejectionLog()
        self._start_asked = False  # request_start accepted a start that has not happened (or run out) yet
        self._start_by: float | None = None  # its deadline, set at the first state after the request
        if require_safety_mode:
            runner.safety.set_safety_mode(False, "no safety-mode message received yet")

    # ----- inputs: each returns None when accepted, or the rejection reason ---------------------
    def on_joint_state(self, names: list[str], positions: Any, velocities: Any, stamp_s: float,
                       now_s: float, wall_now_s: float) -> str | None:  # fmt: skip
        """``stamp_s`` and ``wall_now_s`` are ROS times (s) for stamp checks; ``now_s`` is monotonic."""
        try:
            reading = self.checker.check(names, positions, velocities, stamp_s, wall_now_s)
        except (Rejected, TypeError, ValueError) as err:
            return self.reject("joint_state", err)
        untrusted = self.runner.observe_joint_state(reading.positions, reading.velocities, now_s, reading.stamp_s)
        if untrusted is not None:  # well formed, but not a measurement the safety monitor believes
            return self.reject("joint_state", Rejected(f"not trusted: {untrusted}", untrusted))
        self.state_stamp_s = float(reading.stamp_s)  # when the measurement now trusted was taken (robot's clock)
        if self.runner.gripper is not None:  # the gripper's joints ride along in the same message
            width = self.runner.gripper.width_from_state(names, positions)
            if width is not None:
                self.runner.set_gripper_width(width)
                self.width = width
        return None

    def on_table(self, text: str) -> str | None:
        """The table the operator set, with its episode sheet (deploy.table): the next episode's judge."""
        try:
            self.table = parse_table(text)
        except ValueError as err:
            return self.reject("table", err)
        self.table_text = text
        self.episodes.target_object = self.table.target_object
        self.runner.set_table(self.table)  # a tracker-fed policy's target cube and place
        return None

    def on_object_poses(self, positions: Any, now_s: float | None = None, stamp_s: float = 0.0) -> str | None:
        """Cube positions (n, 3, m) from a lab's tracker, received at ``now_s`` (the node's clock, s) and
        measured at ``stamp_s``: recorded in the outcome; a tracker-fed policy observes them once the safety
        package trusts them (:mod:`ast_robot.deploy.tracker`; rate and age are checked with ``now_s``)."""
        try:
            arr = np.asarray(positions, dtype=float).reshape(-1, 3)
            if not np.isfinite(arr).all() or len(arr) == 0:
                raise ValueError(f"object poses: expected finite (n >= 1, 3) positions, got {arr.shape}")
        except (TypeError, ValueError) as err:
            return self.reject("object_poses", err)
        self.episodes.observe_objects(arr)  # the outcome's judge records every well-formed sample
        if self.runner.tracker is not None and now_s is not None:
            try:
                self.runner.tracker.offer(arr, now_s, stamp_s)
            except Rejected as err:
                return self.reject("object_poses", err)
        return None

    def on_image(self, encoding: str, height: int, width: int, step: int, data: bytes,
                 now_s: float | None = None) -> str | None:  # fmt: skip
        """A camera frame received at ``now_s`` (monotonic s; with the runner's camera input, rate and age
        are checked: :mod:`ast_robot.deploy.camera`)."""
        camera = self.runner.camera_input
        try:
            if camera is not None and now_s is not None:
                camera.offer(encoding, height, width, step, data, now_s)  # the runner reads camera.latest()
                return None
            img = check_image(encoding, height, width, step, data)
        except (Rejected, TypeError, ValueError) as err:
            return self.reject("image", err)
        size = self.runner.camera_size  # what the policy's image encoder takes (H, W)
        self.runner.camera = resize_nearest(img, *size) if img.shape[:2] != size else img
        return None

    def on_wrist_image(self, encoding: str, height: int, width: int, step: int, data: bytes,
                       now_s: float) -> str | None:  # fmt: skip
        """A wrist camera frame received at ``now_s`` (monotonic s): encoding, size, rate and age checked as the
        scene camera's (:mod:`ast_robot.deploy.camera`); refused when the policy has no wrist camera."""
        wrist = self.runner.wrist_input
        try:
            if wrist is None:
                raise Rejected("this policy observes no wrist camera (its contract has no wrist_camera_size)", "unused")
            wrist.offer(encoding, height, width, step, data, now_s)  # the runner reads wrist.latest()
        except (Rejected, TypeError, ValueError) as err:
            return self.reject("wrist_image", err)
        return None

    def on_goal(self, xyz: Any) -> str | None:
        try:
            self.runner.set_goal(xyz)
        except (TypeError, ValueError) as err:
            return self.reject("goal", err)
        self.episodes.set_goal(self._episode_goal())  # a table, once set, stays the pick-and-place judge's goal
        return None

    def on_instruction(self, text: str) -> str | None:
        if not isinstance(text, str) or len(text) > 4096:
            return self.reject("instruction", ValueError("instruction must be a string of <= 4096 chars"))
        self.runner.set_instruction(text)
        return None

    def on_estop(self, engaged: bool, now_s: float) -> np.ndarray | None:
        """Engage/release the e-stop. Returns the hold command to publish at once (None: nothing to send)."""
        self.runner.safety.set_estop(bool(engaged))
        if engaged and self.episodes.active:
            return self.runner.safety.filter(None, now_s).positions
        return None

    def on_safety_mode(self, mode: int, now_s: float | None = None) -> np.ndarray | None:
        """The robot's safety mode, UR SafetyMode numbering (1 = NORMAL); anything else holds. With ``now_s``:
        returns the hold command to publish at once when a stop begins during an episode (None otherwise)."""
        safety = self.runner.safety
        was_stopped = bool(safety.stop_reasons())
        safety.set_safety_mode(mode == SAFETY_MODE_NORMAL, f"safety mode {mode}")
        if now_s is not None and not was_stopped and safety.stop_reasons() and self.episodes.active:
            return safety.filter(None, now_s).positions
        return None

    # ----- episodes and ticks -------------------------------------------------------------------
    def start_refusal(self, now_s: float) -> str | None:
        """Why an episode may not start at ``now_s`` (None: it may)."""
        if self.episodes.active:
            return "an episode is already running; stop it first"
        if self.runner.safety.measured is None:
            return "no trusted joint state yet"
        if self._episode_goal() is None:
            return "no goal received yet; publish a goal (pick-and-place: the table) before starting an episode"
        if reasons := self.runner.safety.hold_reasons(now_s):
            return f"cannot start an episode while holding: {'; '.join(reasons)}"
        if not self.runner.safety.settled:  # a first command at the arm would step back against its motion
            return ("the arm still moves towards the last command, more than one step from it: an episode starts "
                    "from rest at the measured arm; start again once it has settled")  # fmt: skip
        return None

    def start_episode(self, now_s: float) -> str:
        """Start an episode (ValueError saying why not)."""
        if reason := self.start_refusal(now_s):
            raise ValueError(reason)
        table = self.table_text if self.episodes.task == "pickplace" else None
        message = self.episodes.start(now_s, self._episode_goal(), table)
        if callable(set_table := getattr(self.runner.policy, "set_table", None)):  # scripted:pickplace
            set_table(self.table)
        self.runner.reset()
        self.runner.safety.reset_reference(from_measured=True)  # from rest where the arm is, as the envs start
        return message

    def request_start(self, now_s: float) -> str:
        """Accept a start that happens at a later state's time (:meth:`start_requested`); ValueError saying why
        it may not start now. Simulated time: the node has seen the state stamped ``now_s``, not the next one."""
        if reason := self.start_refusal(now_s):
            raise ValueError(reason)
        self._start_asked, self._start_by = True, None
        return f"episode starts at the next joint state (waits up to {START_WAIT_S:g} s for a hold to clear)"

    @property
    def start_pending(self) -> bool:
        """Whether a start was accepted (:meth:`request_start`) and has not happened or run out yet."""
        return self._start_asked

    def start_requested(self, now_s: float) -> bool:
        """At a state's time ``now_s``: start the requested episode if it may start now (True). False while it
        waits (up to :data:`START_WAIT_S` from the first state after the request) or none is requested;
        ValueError with the refusal once the wait ran out or the robot is stopped (e-stop, safety mode): the
        request is dropped, the operator starts again.

        Checked once at the request and once here, a refusal in between (the reset's stream jump) used to drop
        the start silently after the operator had been told it would happen (issue 21)."""
        if not self._start_asked:
            return False
        if self._start_by is None:  # the first state after the request: the wait starts here
            self._start_by = now_s + START_WAIT_S
        reason = self.start_refusal(now_s)
        waiting = now_s < self._start_by - 1e-9
        if reason is None and waiting and self.runner.missing_inputs(now_s):
            # the policy's other inputs (camera frame, tracker sample) are not there yet: an episode started now
            # would hold its first ticks, for as many as the wall time of their arrival decided (issue 21: 17 vs
            # 15 held ticks from one run to the next); it starts at the first state that has them (or, as
            # before, holding once the wait ran out)
            return False
        if reason is None:
            self._start_asked = False
            self.start_episode(now_s)
            return True
        if not waiting or self.runner.safety.stop_reasons():  # never on a stop's release
            self._start_asked = False
            raise ValueError(f"{reason} (for {START_WAIT_S:g} s after the start request)")
        return False

    def _episode_goal(self) -> Any:
        """What the episode is judged against: the target's place on its pad (pick-and-place with a table),
        else the goal (without a table a pick-and-place episode is judged at the TCP, as ``meta.judged_on`` says)."""
        if self.episodes.task == "pickplace" and self.table is not None:
            return np.array(self.table.place)
        return self.runner.goal

    def stop_episode(self, reason: str = "stopped") -> Any:
        """Stop the running episode or cancel a requested one (ValueError when neither); returns its record
        (None when it had no tick). The next command starts from rest at the measured position."""
        if self._start_asked and not self.episodes.active:
            self._start_asked = False
            return None
        q = self.runner.safety.measured
        ee = None if q is None else self.runner.ee_at(q)
        record = self.episodes.stop(q, ee, reason, self.state_stamp_s)
        self.runner.safety.reset_reference()
        return record

    def tick(self, now_s: float) -> TickOutput:
        """One control period: policy -> safety -> command; episode bookkeeping."""
        if not self.episodes.active:  # between episodes the policy does not drive the robot
            return TickOutput(None, True, ("no episode running",))
        q = self.runner.safety.measured
        result = self.runner.step(now_s)
        d = result.decision
        ee = result.ee if result.ee is not None else (None if q is None else self.runner.ee_at(q))
        record = self.episodes.tick(now_s, q, self.runner.velocity, ee, d.positions, result.action, d.held,
                                    width=self.width, gripper_sent=result.gripper_width,
                                    stopped=bool(self.runner.safety.stop_reasons()), stamp_s=self.state_stamp_s)  # fmt: skip
        return TickOutput(d.positions, d.held, d.reasons, record, result.gripper, d.kind)

    # ----- what the node reads and asks besides messages and ticks --------------------------------
    @property
    def period_s(self) -> float:
        """Control period (s), as the policy was trained."""
        return self.runner.limits.period_s

    @property
    def command_latency_s(self) -> float | None:
        """The command latency (s) declared to the safety module (configs/deploy/<robot>.yaml; None: undeclared, the
        strict filter); every episode record carries it."""
        return self.runner.limits.command_latency_s

    @property
    def episode_active(self) -> bool:
        return self.episodes.active

    @property
    def estop_engaged(self) -> bool:
        return self.runner.safety.estop

    @property
    def judges_objects(self) -> bool:
        """Whether episodes are pick-and-place ones, judged on the objects: the node then reads the table and
        the object tracker's poses for the outcome (never for the policy)."""
        return self.episodes.gripper_width is not None

    @property
    def sees_wrist_camera(self) -> bool:
        """Whether the policy observes the camera on the gripper: the node then subscribes its topic."""
        return self.runner.wrist_input is not None

    @property
    def gripper_wired(self) -> bool:
        """Whether the policy commands a gripper (pick-and-place): the node then publishes its commands."""
        return self.runner.gripper is not None

    def warm_up(self) -> None:
        """Pay first-call costs (numba IK, imports) now, not in the first control tick."""
        self.runner.warm_up()

    def rest_at_measured(self) -> None:
        """The next command starts from rest at the measured position (not from a stale command)."""
        self.runner.safety.reset_reference()

    def segment_time(self, positions: np.ndarray) -> float:
        """Seconds a trajectory controller must take to reach ``positions`` (never faster than allowed)."""
        return self.runner.safety.segment_time(positions)

    def close(self) -> None:
        """Stop the policy's worker thread."""
        self.runner.scheduler.close()

    def rejection_summary(self, now_s: float) -> str | None:
        """One line of the rejections since the last line, at most once a second (None: nothing due)."""
        return self.log.summary(now_s)

    def rejection_report(self, now_s: float) -> tuple[str | None, str]:
        """At exit: (the rejections not yet summarized or None, one line of the counts per kind and reason)."""
        self.log.interval_s = 0.0
        pending = self.log.summary(now_s)
        counts = {k: self.rejections.get(k, 0) for k in ("joint_state", "image", "goal", "instruction")}
        if self.sees_wrist_camera:
            counts["wrist_image"] = self.rejections.get("wrist_image", 0)
        reasons = "; ".join(f"{k} x{n}" for k, n in sorted(self.log.totals.items()))
        total = ("rejected messages: " + " ".join(f"{k}={v}" for k, v in counts.items())
                 + (f" (by reason: {reasons})" if reasons else ""))  # fmt: skip
        return pending, total

    def reject(self, kind: str, err: Exception) -> str:
        """Count a rejected ``kind`` of message (per kind and per reason); returns the one-line reason."""
        reason = f"{kind} rejected: {err}"
        self.rejections[kind] += 1
        self.log.add(kind, getattr(err, "key", type(err).__name__), reason)
        return reason

"""Everything the policy node does, minus ROS: message checks, safety, episodes, per-tick commands.

The rclpy node (``ast_robot_ros.policy_node``) converts messages to plain values, calls these methods and
publishes what they return. That keeps the node thin and this logic testable without DDS.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.deploy.episode import EpisodeTracker
from ast_robot.deploy.inputs import JointStateChecker, Rejected, check_image, resize_nearest
from ast_robot.deploy.runner import PolicyRunner

SAFETY_MODE_NORMAL = 1  # ur_dashboard_msgs/SafetyMode.NORMAL


@dataclass(frozen=True)
class TickOutput:
    """What one control tick produced. ``command`` is None when nothing may be sent yet."""

    command: np.ndarray | None  # (J,) rad, safe
    held: bool
    reasons: tuple[str, ...]
    record: Any = None  # an EpisodeRecord when an episode ended on this tick


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
        self.episodes = EpisodeTracker(robot, task or runner.task, runner.limits.period_s, timeout_s,
                                       success_radius=runner.success_threshold, meta=meta,
                                       end_on_success=end_on_success)  # fmt: skip
        self.rejections: Counter[str] = Counter()
        if require_safety_mode:
            runner.safety.set_safety_mode(False, "no safety-mode message received yet")

    # ----- inputs: each returns None when accepted, or the rejection reason ---------------------
    def on_joint_state(self, names: list[str], positions: Any, velocities: Any, stamp_s: float,
                       now_s: float, wall_now_s: float) -> str | None:  # fmt: skip
        """``stamp_s`` and ``wall_now_s`` are ROS times (s) for stamp checks; ``now_s`` is monotonic."""
        try:
            reading = self.checker.check(names, positions, velocities, stamp_s, wall_now_s)
        except (Rejected, TypeError, ValueError) as err:
            return self._reject("joint_state", err)
        self.runner.observe_joint_state(reading.positions, reading.velocities, now_s)
        return None

    def on_image(self, encoding: str, height: int, width: int, step: int, data: bytes) -> str | None:
        try:
            img = check_image(encoding, height, width, step, data)
        except (Rejected, TypeError, ValueError) as err:
            return self._reject("image", err)
        size = self.runner.camera_size  # what the policy's image encoder takes (H, W)
        self.runner.camera = resize_nearest(img, *size) if img.shape[:2] != size else img
        return None

    def on_goal(self, xyz: Any) -> str | None:
        try:
            self.runner.set_goal(xyz)
        except (TypeError, ValueError) as err:
            return self._reject("goal", err)
        self.episodes.set_goal(self.runner.goal)
        return None

    def on_instruction(self, text: str) -> str | None:
        if not isinstance(text, str) or len(text) > 4096:
            return self._reject("instruction", ValueError("instruction must be a string of <= 4096 chars"))
        self.runner.set_instruction(text)
        return None

    def on_estop(self, engaged: bool, now_s: float) -> np.ndarray | None:
        """Engage/release the e-stop. Returns the hold command to publish at once (None: nothing to send)."""
        self.runner.safety.set_estop(bool(engaged))
        if engaged and self.episodes.active:
            return self.runner.safety.filter(None, now_s).positions
        return None

    def on_safety_mode(self, mode: int) -> None:
        """The robot's safety mode, UR SafetyMode numbering (1 = NORMAL); anything else holds."""
        self.runner.safety.set_safety_mode(mode == SAFETY_MODE_NORMAL, f"safety mode {mode}")

    # ----- episodes and ticks -------------------------------------------------------------------
    def start_episode(self, now_s: float) -> str:
        """Start an episode (ValueError saying why not)."""
        if self.runner.safety.measured is None:
            raise ValueError("no joint state received yet")
        if reasons := self.runner.safety.hold_reasons(now_s):
            raise ValueError(f"cannot start an episode while holding: {'; '.join(reasons)}")
        message = self.episodes.start(now_s, self.runner.goal)
        self.runner.reset()
        return message

    def stop_episode(self, reason: str = "stopped") -> Any:
        """Stop the running episode (ValueError when none runs); returns its record (None when it had no
        tick). The next command starts from rest at the measured position."""
        q = self.runner.safety.measured
        ee = None if q is None else self.runner.ee_at(q)
        record = self.episodes.stop(q, ee, reason)
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
        record = self.episodes.tick(now_s, q, self.runner.velocity, ee, d.positions, result.action, d.held)
        return TickOutput(d.positions, d.held, d.reasons, record)

    def _reject(self, kind: str, err: Exception) -> str:
        reason = f"{kind} rejected: {err}"
        self.rejections[kind] += 1
        return reason

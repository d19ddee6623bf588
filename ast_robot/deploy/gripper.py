"""The policy's gripper action -> a gripper command as the robot's setup takes it, through the safety module.

The envs read the last action entry as the opening width, linearly from the robot spec's closed width
(action -1) to its open width (+1) (``RobotEnv._command``). This module does the same, passes the width through
:class:`~ast_robot.robot.safety.GripperMonitor` (stroke, force, speed, rate; nothing while the arm is stopped)
and writes the std_msgs/Float64MultiArray data of the configured interface (``GripperIOConfig``):

- ``forward_position``: ``[p]``, the gripper joint position of a ros2_control forward position controller,
  linear from ``position_open`` (widest) to ``position_closed`` (UR5e + Robotiq 2F-85 knuckle joint);
- ``width_speed_force``: ``[width m, speed m/s, force N]``, which a one-line relay on the robot PC turns into
  franka_msgs/action/Grasp (force > 0) or Move (force 0) goals (FR3 + Franka Hand; README, deployment).

The measured opening comes back through ``/joint_states`` (``state_joints``) for the observation.
No ROS here: the node publishes the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ast_robot.robot import wire
from ast_robot.robot.safety import GripperDecision, GripperLimits, GripperMonitor


class GripperCommander:
    """Action entry -> safe gripper command data; joint-state entries -> measured opening width (m)."""

    def __init__(self, cfg: Any, action_width: tuple[float, float]) -> None:
        """``cfg``: a GripperIOConfig; ``action_width``: (closed, open) widths (m) the policy's -1/+1 meant in
        training (the robot spec's ``gripper_width``)."""
        self.cfg = cfg
        self.monitor = GripperMonitor(GripperLimits.for_gripper(cfg.model, cfg.force_n, cfg.speed_mps, cfg.max_rate_hz))
        self.closed, self.opened = (float(w) for w in action_width)
        spec = self.monitor.limits.spec
        if cfg.interface == "forward_position" and not np.isfinite(cfg.position_closed - cfg.position_open):
            raise ValueError("gripper.position_open/position_closed: expected finite positions")
        if cfg.interface == "forward_position" and cfg.position_closed == cfg.position_open:
            raise ValueError("gripper.position_open/position_closed: must differ (the width maps linearly between)")
        self._stroke = (spec.min_width, spec.max_width)

    def width_of(self, action_value: Any) -> float:
        """The opening width (m) an action's gripper entry asks for, as the envs map it (NaN stays NaN)."""
        a = float(action_value)
        return self.closed + (min(max(a, -1.0), 1.0) + 1.0) / 2.0 * (self.opened - self.closed) if np.isfinite(a) else a

    def command(self, action: Any, now_s: float, stopped: bool) -> tuple[GripperDecision, list[float] | None]:
        """(the safety decision, the Float64MultiArray data to publish or None) for a policy action (A,)."""
        try:
            value = np.asarray(action, dtype=np.float64).reshape(-1)[-1]
        except (TypeError, ValueError, IndexError):
            value = float("nan")
        decision = self.monitor.filter(self.width_of(value), now_s, stopped)
        return decision, None if decision.width is None else self.data(decision)

    def data(self, decision: GripperDecision) -> list[float]:
        """The message data of a decision with a width (see the module docstring)."""
        return wire.command_data(self.cfg, self._stroke, float(decision.width), decision.speed, decision.force)

    def position_of(self, width: float) -> float:
        """forward_position: controller position for an opening ``width`` (m)."""
        return wire.position_of(self.cfg, self._stroke, width)

    def width_from_state(self, names: Sequence[str], positions: Sequence[float]) -> float | None:
        """Measured opening (m) from a joint state's entries, or None when they are absent or not finite."""
        joints = self.cfg.state_joints
        if not joints:
            return None
        lookup = dict(zip(names, positions))
        if any(j not in lookup for j in joints):
            return None
        values = np.array([lookup[j] for j in joints], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            return None
        return wire.reported_width(self.cfg, self._stroke, values)

    def reset(self) -> None:
        self.monitor.reset()

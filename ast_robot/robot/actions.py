"""Policy actions -> joint targets, and robot state -> policy observation, as the reach environments do.

A policy trained in ``ast_robot.envs`` must see the same observation layout and have its actions mean the
same thing on the robot. The environments step at ``EnvConfig.control_hz`` (25 Hz) with
``max_ee_step`` metres per step; deployment ticks faster (125 Hz), so each tick moves the TCP target by
the same *speed*: ``max_ee_step * env_hz / control_hz`` per tick. Orientation is held pointing down
(``R_DOWN``) and the TCP target may lead the measured TCP by at most ``lead_m`` metres per axis (up to
sqrt(3) x ``lead_m`` in all): the envs' anti-windup of two *environment* steps, the same distance at any tick rate (two ticks' worth would
starve a soft or delayed arm of the lead it gets in training).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ast_robot.robot import kernels


class EEDeltaAction:
    """Action (3 TCP deltas in [-1, 1] + gripper) -> arm joint targets through the shared DLS IK."""

    def __init__(self, solver: Any, step_m: float, workspace: tuple[np.ndarray, np.ndarray],
                 orientation: np.ndarray | None, ik_iterations: int = 1, lead_m: float | None = None) -> None:  # fmt: skip
        if not step_m > 0:
            raise ValueError(f"step_m: expected a positive TCP step (m per tick), got {step_m}")
        self.lead_m = 2.0 * step_m if lead_m is None else float(lead_m)
        if not self.lead_m >= step_m:
            raise ValueError(f"lead_m: the TCP target must be allowed to lead by at least one step ({step_m} m), "
                             f"got {lead_m}")  # fmt: skip
        self.solver, self.step_m, self.iterations = solver, step_m, ik_iterations
        self.low, self.high = (np.asarray(w, dtype=float) for w in workspace)
        self.orientation = orientation
        self.ee_cmd: np.ndarray | None = None  # integrated TCP target (3,) m

    def reset(self) -> None:
        self.ee_cmd = None

    def __call__(self, action: np.ndarray, q_ref: np.ndarray, q_measured: np.ndarray | None = None) -> np.ndarray:
        """``q_ref`` (J,): the previous command (or measured joints), where the IK starts; ``q_measured``
        (J,): the measured joints, about whose TCP the lead is limited (default ``q_ref``). Returns joint
        targets (J,)."""
        if action.ndim != 1 or action.size < 3 or not np.all(np.isfinite(action[:3])):
            raise ValueError(f"action: expected >= 3 finite values (TCP deltas [+ gripper]), got {action.tolist()}")
        pos, _ = self.solver.forward(q_ref if q_measured is None else q_measured)  # (3,) m
        base = pos if self.ee_cmd is None else self.ee_cmd
        # the envs' own integration (one kernel for both, so sim and robot cannot drift apart)
        self.ee_cmd = kernels.tcp_target(np.asarray(base, dtype=np.float64), np.asarray(pos, dtype=np.float64),
                                         np.asarray(action, dtype=np.float64), self.step_m, self.low, self.high,
                                         self.lead_m)  # fmt: skip
        q = np.asarray(q_ref, dtype=float)
        for _ in range(self.iterations):
            q = self.solver.step(q, self.ee_cmd, self.orientation)
        return q


class JointDeltaAction:
    """Action (n joint deltas in [-1, 1] + gripper) -> joint targets, as the envs' ``joint_delta`` mode:
    targets integrate from the previous command by ``step_rad`` per unit action (the envs' ``max_joint_step``
    times the tick's share of a training step), within the joint limits."""

    def __init__(self, step_rad: float, lower: Any, upper: Any) -> None:
        if not step_rad > 0:
            raise ValueError(f"step_rad: expected a positive joint step (rad per tick), got {step_rad}")
        self.step_rad = float(step_rad)
        self.lower, self.upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)

    def __call__(self, action: np.ndarray, q_ref: np.ndarray, q_measured: np.ndarray | None = None) -> np.ndarray:
        """``q_ref`` (J,): the previous command, where the step starts. Returns joint targets (J,)."""
        n = self.lower.size
        if action.ndim != 1 or action.size < n or not np.all(np.isfinite(action[:n])):
            raise ValueError(f"action: expected >= {n} finite joint deltas [+ gripper], got {action.tolist()}")
        return np.clip(np.asarray(q_ref, dtype=float) + np.clip(action[:n], -1.0, 1.0) * self.step_rad,
                       self.lower, self.upper)  # fmt: skip


class ObservationBuilder:
    """``observation`` as the envs build it: :func:`~ast_robot.robot.kernels.proprio`, the one layout.

    [q (J), dq (J), tcp (3), tcp velocity (3), gripper width (1), TCP command offset (3)]. The gripper width is
    the measured opening once one is set (``measured_width``: where the contract's ``gripper_observed`` says
    measured and the robot reports it), else the fixed ``gripper_width`` (open). ``tcp_command()``
    returns the TCP target the action mapping has integrated so far (``EEDeltaAction.ee_cmd``; None before
    the first action or without a TCP target: offset 0, as the envs start an episode).
    """

    def __init__(self, ee_position: Callable[[np.ndarray], np.ndarray], gripper_width: float,
                 tcp_command: Callable[[], np.ndarray | None] | None = None) -> None:  # fmt: skip
        self.ee_position, self.gripper_width = ee_position, float(gripper_width)
        self.measured_width: float | None = None  # the measured opening (m) once known; else ``gripper_width``
        self.tcp_command = tcp_command or (lambda: None)
        self._prev: tuple[float, np.ndarray] | None = None  # (time s, tcp (3,))

    def reset(self) -> None:
        self._prev = None

    def __call__(self, q: np.ndarray, dq: np.ndarray, now_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(observation (2J+10,) float64, tcp (3,) m)."""
        q, dq = np.asarray(q, dtype=np.float64), np.asarray(dq, dtype=np.float64)
        ee = np.asarray(self.ee_position(q), dtype=np.float64)
        prev, inv_dt = ee, 0.0  # no earlier state: zero TCP velocity
        if self._prev is not None and now_s > self._prev[0]:
            prev, inv_dt = self._prev[1], 1.0 / (now_s - self._prev[0])
        self._prev = (now_s, ee)
        cmd = self.tcp_command()
        cmd = ee if cmd is None else np.asarray(cmd, dtype=np.float64)
        width = self.gripper_width if self.measured_width is None else self.measured_width
        return kernels.proprio(q, dq, ee, prev, inv_dt, width, cmd), ee

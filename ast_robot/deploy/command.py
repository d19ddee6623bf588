"""Actions -> joint targets, and measurements -> the proprioceptive observation, shared by sim and robot.

A policy learns what an action means in simulation; on the robot the same action must mean the same
thing. The environments and the deployment runner therefore both use :class:`Commander` (how an action
becomes joint position targets) and :func:`proprio_vector` (the layout of the ``observation`` vector).

Targets integrate from the previous *command*, not from the measured state, so a constant action moves
the arm at a constant speed instead of restarting a step response every control period; the TCP target
may lead the measured TCP by at most two steps (anti-windup), joint changes are limited to the data-sheet
speeds over one control period, and targets are clipped to the joint limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

R_DOWN = np.diag([1.0, -1.0, -1.0])  # TCP pointing down, fingers closing along world y
WORKSPACE_LOW = np.array([0.2, -0.4, 0.0])  # TCP box (m, world); the table top is z = 0
WORKSPACE_HIGH = np.array([0.75, 0.4, 0.5])


def proprio_vector(q: np.ndarray, dq: np.ndarray, ee: np.ndarray, ee_vel: np.ndarray, width: float) -> np.ndarray:
    """``[q (n), dq (n), tcp (3), tcp velocity (3), gripper width (1)]``: (2n + 7,) in rad, rad/s, m, m/s, m."""
    return np.concatenate([q, dq, ee, ee_vel, [width]])


def _clip(x: np.ndarray, low: np.ndarray | float, high: np.ndarray | float) -> np.ndarray:
    return np.minimum(np.maximum(x, low), high)  # np.clip's dispatch costs more on 3-6 element arrays


@dataclass
class CommandSettings:
    """How far one action of 1.0 moves the arm, and how the IK runs (values of the env config)."""

    action_mode: str  # "ee_delta" or "joint_delta"
    max_ee_step: float  # m per control step
    max_joint_step: float  # rad per control step
    control_dt: float  # s
    ik_iterations: int = 1


class Commander:
    """Stateful action -> joint-target map of one arm (see the module docstring)."""

    def __init__(self, ik: object, velocity_limits: np.ndarray, gripper_width: tuple[float, float],
                 settings: CommandSettings) -> None:  # fmt: skip
        self.ik, self.s = ik, settings
        self.vel_step = np.asarray(velocity_limits, dtype=float) * settings.control_dt  # rad per step
        self.gripper_width = gripper_width
        self.q_cmd = np.zeros(len(self.vel_step))
        self.ee_cmd = np.zeros(3)

    def reset(self, q: np.ndarray, ee: np.ndarray) -> None:
        """Start from the measured joint positions (n,) and TCP position (3,)."""
        self.q_cmd = np.array(q, dtype=float)
        self.ee_cmd = np.array(ee, dtype=float)

    def __call__(self, action: np.ndarray, ee: np.ndarray) -> np.ndarray:
        """Arm joint targets (n,) + gripper width (1,) for a clipped action and the measured TCP ``ee``."""
        q_prev = self.q_cmd
        if self.s.action_mode == "ee_delta":
            lead = 2.0 * self.s.max_ee_step
            target = _clip(self.ee_cmd + action[:3] * self.s.max_ee_step, WORKSPACE_LOW, WORKSPACE_HIGH)
            self.ee_cmd = ee + _clip(target - ee, -lead, lead)
            q_t = q_prev
            for _ in range(self.s.ik_iterations):
                q_t = self.ik.step(q_t, self.ee_cmd, R_DOWN)
        else:
            q_t = q_prev + action[:-1] * self.s.max_joint_step
        q_t = q_prev + _clip(q_t - q_prev, -self.vel_step, self.vel_step)  # data-sheet joint speeds
        self.q_cmd = _clip(q_t, self.ik.lower, self.ik.upper)
        closed, opened = self.gripper_width
        width = closed + (action[-1] + 1.0) / 2.0 * (opened - closed)  # -1 closed, +1 open
        return np.concatenate([self.q_cmd, [width]])

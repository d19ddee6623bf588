"""Reach: bring the tool centre point to a target position (``ast_robot/Reach<Robot>-v0``)."""

from __future__ import annotations

import numpy as np

from ast_robot.envs.base import RobotEnv
from ast_robot.envs.instructions import COLOURS, REACH_TEMPLATES, choose_colours, fill

GOAL_LOW = np.array([0.3, -0.25, 0.05])  # target box (m, world; table top z = 0)
GOAL_HIGH = np.array([0.6, 0.25, 0.35])


class ReachEnv(RobotEnv):
    """Move the TCP within ``success_threshold`` (default 5 cm) of a target sampled in a box.

    Actions (Box [-1, 1], float32):

    | index | ee_delta mode                                        | joint_delta mode                           |
    |-------|------------------------------------------------------|--------------------------------------------|
    | 0-2   | TCP displacement x, y, z (x ``max_ee_step`` m/step)  | 0..n-1: joint deltas (x ``max_joint_step`` rad) |
    | last  | gripper: -1 closed ... +1 open (width, m)            | same                                       |

    The TCP target goes through damped-least-squares IK (orientation held pointing down), then the joint
    speed limits; position actuators track the joint targets at the physics rate.

    Observation ``observation`` (float64, n = robot joints; the layout of ``robot.kernels.proprio``, which
    the deployment builds too): joint positions (n, rad), joint velocities (n, rad/s), TCP position (3, m,
    world), TCP velocity (3, m/s), gripper opening (1, m), TCP command offset (3, m: the integrated TCP
    target minus the TCP; 0 in joint_delta mode). The position readings (joints, TCP, gripper) carry the
    ``proprio_noise`` randomization; velocities, the command offset and both goals are exact.
    ``achieved_goal``: TCP position (3, m); ``desired_goal``: target position (3, m). Optional ``camera``
    (H, W, 3 uint8) and ``instruction`` (UTF-8 bytes, zero padded). MJCF: site ``tcp``, site ``target``.
    """

    task = "reach"

    def _scene_options(self) -> dict:
        if self.cfg.observation != "privileged":  # its goal is the target position: no deploy layout (yet)
            raise ValueError(f"env.observation {self.cfg.observation!r}: reach envs have only 'privileged'; "
                             "'deploy' is a pick-and-place layout")  # fmt: skip
        return {}

    def _reset_task(self, rng: np.random.Generator) -> None:
        self.goal = rng.uniform(GOAL_LOW, GOAL_HIGH)
        (colour,) = choose_colours(rng, 1)
        site = self.model.site("target").id
        self.model.site_pos[site] = self.goal
        self.model.site_rgba[site, :3] = COLOURS[colour]
        self._set_instruction(fill(REACH_TEMPLATES, rng, colour=colour))

    def _achieved_goal(self) -> np.ndarray:
        return self.data.site_xpos[self._site]

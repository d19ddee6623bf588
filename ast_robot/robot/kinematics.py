"""Forward kinematics of the arm from a MuJoCo model, for the workspace check and the observation.

Positions are in the model's world frame, which is the robot's mounting frame (ROS ``base_link``; the UR
"base" frame is rotated 180 deg about z from it). The environments, the IK and the goal topic all use it.
Owns a private MjData so it never disturbs a simulation that shares the model. No ROS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class ArmKinematics:
    """End-effector position of ``site`` for arm joint positions given in ``joint_names`` order."""

    def __init__(self, model, joint_names: Sequence[str], site: str) -> None:
        import mujoco

        self._mujoco = mujoco
        self.model = model
        self.data = mujoco.MjData(model)
        self.qpos_index = np.array([model.jnt_qposadr[_joint_id(model, n)] for n in joint_names])
        self.site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
        if self.site_id < 0:
            raise ValueError(f"site: {site!r} is not a site of the model")

    def ee_position(self, q: np.ndarray) -> np.ndarray:
        """(J,) joint positions (rad) -> (3,) site position (m, mounting frame)."""
        self.data.qpos[self.qpos_index] = q
        self._mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site_id].copy()


def _joint_id(model, name: str) -> int:
    import mujoco

    jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
    if jid < 0:
        names = [model.joint(i).name for i in range(model.njnt)]
        raise ValueError(f"joint_names: {name!r} is not a joint of the model; joints: {names}")
    return jid

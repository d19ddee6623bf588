"""The MuJoCo simulator that system identification replays real episodes in.

``MujocoReplay(robot, task)(params, record)`` puts the nominal arm at the record's first measured joint
positions, applies the randomization ``params`` through ``ast_robot.envs.randomization.apply``, and
drives the position actuators with the record's commanded joint targets (delayed by ``latency``
control steps), returning the simulated joint positions at every control step, shape (T+1, J).
Replaying the joint targets rather than the policy actions keeps the fit about the arm's physics,
not the policy or the IK.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ast_robot.gap.outcomes import EpisodeRecord


class MujocoReplay:
    """A reusable replay simulator for one robot and task (the model is loaded once)."""

    def __init__(self, robot: str, task: str = "reach") -> None:
        import mujoco

        from ast_robot.envs import randomization as dr
        from ast_robot.envs.robots import get_robot, load_model

        self._mj, self._dr = mujoco, dr
        self.robot, self.task = robot, task
        self.spec = get_robot(robot)
        self.model = load_model(robot, task)
        self.data = mujoco.MjData(self.model)
        self.nominal = dr.nominal(self.model, self.spec)
        self.qadr = np.array([self.model.jnt_qposadr[self.model.joint(n).id] for n in self.spec.joint_names])
        self.act = np.array([self.model.actuator(a).id for a in self.spec.actuator_names])

    def __call__(self, params: Mapping[str, float], record: EpisodeRecord) -> np.ndarray:
        """Simulated joint positions (T+1, J) of ``record``'s commands under ``params``."""
        self._check(record)
        unknown = [k for k in params if k not in self._dr.PARAMS]
        if unknown:
            raise ValueError(
                f"unknown randomization parameter(s) {unknown}; known: {sorted(self._dr.PARAMS)}"
            )
        self._dr.apply(self.model, dict(params), self.nominal)
        latency = int(round(float(params.get("latency", 0.0))))
        q0 = record.joint_positions[0]
        self._reset(q0)
        substeps = max(1, int(round(record.control_dt / self.model.opt.timestep)))
        out = np.empty_like(record.joint_positions)  # (T+1, J)
        out[0] = q0
        for t in range(record.steps):
            k = t - latency  # a delayed command: the arm holds its start until the first one arrives
            self.data.ctrl[self.act] = record.joint_targets[k] if k >= 0 else q0
            self._mj.mj_step(self.model, self.data, nstep=substeps)
            out[t + 1] = self.data.qpos[self.qadr]
        return out

    def _reset(self, q0: np.ndarray) -> None:
        self._mj.mj_resetData(self.model, self.data)
        self.data.qpos[self.qadr] = q0
        self.data.ctrl[self.act] = q0
        self._mj.mj_forward(self.model, self.data)

    def _check(self, record: EpisodeRecord) -> None:
        if (record.robot, record.task) != (self.robot, self.task):
            raise ValueError(
                f"record is {record.robot}/{record.task} but this replay simulates {self.robot}/{self.task}"
            )
        if record.joint_targets is None:
            raise ValueError(f"episode seed {record.seed} has no joint_targets; system identification replays the "
                             f"commanded joint targets, so real records must include them")  # fmt: skip
        if record.joint_positions.shape[1] != self.spec.n_joints:
            raise ValueError(
                f"record has {record.joint_positions.shape[1]} joints; {self.robot} has {self.spec.n_joints}"
            )

"""The MuJoCo simulator that system identification replays real episodes in.

``MujocoReplay(robot, task)(params, record)`` puts the nominal arm at the record's first measured joint
positions, applies the randomization ``params`` through ``ast_robot.envs.randomization.apply``, and
drives the position actuators with the record's commanded joint targets, returning the simulated joint
positions at every control step, shape (T+1, J). Replaying the joint targets rather than the policy
actions keeps the fit about the arm's physics, not the policy or the IK.

The replay reproduces how the targets reached the arm:

- ``latency`` is in *environment* control steps (``env_dt``, 40 ms at 25 Hz), as the randomization
  samples it, whatever rate the record was taken at (a deployed episode ticks at 125 Hz);
- a record whose ``meta["command_interface"]`` is ``"trajectory"`` (the policy node driving a joint
  trajectory controller) gets the driver's semantics: each target is a one-point trajectory reached
  after its segment time (the safety filter's: at least two periods, longer when the arm lags), starting
  from the current setpoint; the next target replaces it. Other records step the setpoint to each target
  (forward position controller, and the environments themselves).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ast_robot.config.deploy import DeployConfig
from ast_robot.records import EpisodeRecord
from ast_robot.robot.safety import segment_seconds

ENV_DT = 0.04  # s: the environments' default control period (EnvConfig.control_hz = 25)


class MujocoReplay:
    """A reusable replay simulator for one robot and task (the model is loaded once)."""

    def __init__(self, robot: str, task: str = "reach", env_dt: float = ENV_DT, use_rollout: bool = True) -> None:
        import mujoco

        from ast_robot.envs import randomization as dr
        from ast_robot.robot.specs import get_robot, load_model

        if not env_dt > 0:
            raise ValueError(f"env_dt must be a positive control period (s), got {env_dt!r}")
        self._mj, self._dr = mujoco, dr
        self.robot, self.task, self.env_dt = robot, task, float(env_dt)
        self.use_rollout = use_rollout  # mujoco.rollout steps the physics in C (bench/gap_sysid.py measures it)
        self.threads = 1  # > 1: ``many`` steps several records at once on that many threads
        # True: ``latency`` is not rounded to whole env steps (the envs' resolution) but to physics steps
        # (gap.latency.sub_step_latency: a delay between whole steps, for the latency line only)
        self.fractional_latency = False
        self._datas: list = []
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
        h = self.model.opt.timestep
        substeps = max(1, int(round(record.control_dt / h)))
        delay = self.delay_steps(params, h)  # physics steps
        # encoder offsets: the record reads true angle + offset; the arm starts at (and its servo tracks)
        # the true angle, and the simulated reading carries the same offset
        offset = self._dr.encoder_offsets(dict(params), self.spec.n_joints)  # (J,) rad
        q0 = record.joint_positions[0] - offset
        ctrl = self.setpoints(record, substeps, delay, q0)  # (T * substeps, J)
        self._reset(q0)
        out = np.empty_like(record.joint_positions)  # (T+1, J)
        out[0] = q0
        if self.use_rollout:
            out[1:] = self._rollout(ctrl, substeps)
            return out + offset
        for t in range(record.steps):
            for i in range(t * substeps, (t + 1) * substeps):
                self.data.ctrl[self.act] = ctrl[i]
                self._mj.mj_step(self.model, self.data)
            out[t + 1] = self.data.qpos[self.qadr]
        return out + offset

    def delay_steps(self, params: Mapping[str, float], h: float) -> int:
        """Physics steps (of ``h`` s) from a command to its arrival: ``latency`` env steps, whole as the envs
        sample it (``fractional_latency``: as given)."""
        latency = float(params.get("latency", 0.0))
        return int(round((latency if self.fractional_latency else round(latency)) * self.env_dt / h))

    def many(self, params: Mapping[str, float], records: list[EpisodeRecord]) -> list[np.ndarray]:
        """``[self(params, r) for r in records]``, with records of one length and rate stepped together by
        one ``mujoco.rollout`` call on ``threads`` threads (bench/gap_sysid.py measures it: it pays on idle
        cores only)."""
        if not self.use_rollout or self.threads <= 1 or len(records) < 2:
            return [self(params, r) for r in records]
        out: list[np.ndarray | None] = [None] * len(records)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(records):
            groups.setdefault((r.steps, r.control_dt), []).append(i)
        for idx in groups.values():
            for i, q in zip(idx, self._batch(params, [records[i] for i in idx])):
                out[i] = q
        return out  # type: ignore[return-value]

    def _batch(self, params: Mapping[str, float], records: list[EpisodeRecord]) -> list[np.ndarray]:
        """Replays of equal-length records in one threaded rollout (same physics as ``__call__``)."""
        from mujoco import rollout

        for r in records:
            self._check(r)
        self._dr.apply(self.model, dict(params), self.nominal)
        h = self.model.opt.timestep
        substeps = max(1, int(round(records[0].control_dt / h)))
        delay = self.delay_steps(params, h)
        offset = self._dr.encoder_offsets(dict(params), self.spec.n_joints)
        spec = self._mj.mjtState.mjSTATE_FULLPHYSICS
        states, controls, starts = [], [], []
        for r in records:
            q0 = r.joint_positions[0] - offset
            self._reset(q0)
            state0 = np.empty(self._mj.mj_stateSize(self.model, spec))
            self._mj.mj_getState(self.model, self.data, state0, spec)
            full = np.tile(self.data.ctrl, (r.steps * substeps, 1))
            full[:, self.act] = self.setpoints(r, substeps, delay, q0)
            states.append(state0)
            controls.append(full)
            starts.append(q0)
        if len(self._datas) < self.threads:
            self._datas = [self._mj.MjData(self.model) for _ in range(self.threads)]
        state, _ = rollout.rollout(self.model, self._datas, np.stack(states), np.stack(controls),
                                   persistent_pool=True)  # (B, n, nstate)
        qpos = state[:, substeps - 1 :: substeps, 1 : 1 + self.model.nq][:, :, self.qadr]  # (B, T, J)
        return [np.vstack([q0[None], q]) + offset for q0, q in zip(starts, qpos)]

    def _rollout(self, ctrl: np.ndarray, substeps: int) -> np.ndarray:
        """The arm's joint positions (T, J) after each control tick, stepped by ``mujoco.rollout`` (the
        physics loop in C, bit-identical to ``mj_step``); other actuators keep their reset command."""
        from mujoco import rollout

        spec = self._mj.mjtState.mjSTATE_FULLPHYSICS
        state0 = np.empty(self._mj.mj_stateSize(self.model, spec))
        self._mj.mj_getState(self.model, self.data, state0, spec)
        full = np.tile(self.data.ctrl, (ctrl.shape[0], 1))  # (T * substeps, nu)
        full[:, self.act] = ctrl
        state, _ = rollout.rollout(self.model, self.data, state0[None], full[None])  # (1, T * substeps, nstate)
        qpos = state[0, substeps - 1 :: substeps, 1 : 1 + self.model.nq]  # state = [time, qpos, qvel, ...]
        return qpos[:, self.qadr]

    def setpoints(self, record: EpisodeRecord, substeps: int, delay: int, q0: np.ndarray | None = None) -> np.ndarray:
        """The position setpoint (T * substeps, J) during each physics step: target k arrives ``delay``
        physics steps after tick k; before the first arrives the arm holds its start ``q0`` (default: the
        first measured position)."""
        targets = record.joint_targets
        q0 = record.joint_positions[0] if q0 is None else q0
        n = record.steps * substeps
        seg = self._segment_steps(record, substeps)  # (T,) physics steps to reach each target; 0: a step
        out = np.empty((n, q0.size))
        out[: min(delay, n)] = q0
        start = q0.copy()
        for k in range(record.steps):
            a = k * substeps + delay  # physics step at which target k arrives
            if a >= n:
                break
            b = min(n, a + substeps)  # target k+1 arrives here and replaces it
            if seg[k] <= 0:
                out[a:b] = targets[k]
            else:
                frac = np.minimum(1.0, np.arange(b - a + 1) / seg[k])[:, None]  # (b-a+1, 1)
                ramp = start + (targets[k] - start) * frac
                out[a:b], start = ramp[:-1], ramp[-1]
                continue
            start = targets[k].copy()
        return out

    def _segment_steps(self, record: EpisodeRecord, substeps: int) -> np.ndarray:
        """Per tick, the trajectory segment time in physics steps (0 for a forward position command):
        as the policy node's safety filter sets it, from the measured position at that tick."""
        if record.meta.get("command_interface") != "trajectory":
            return np.zeros(record.steps)
        scale = float(record.meta.get("max_joint_speed_scale", DeployConfig().max_joint_speed_scale))
        speed = np.asarray(self.spec.velocity_limits) * scale  # (J,) rad/s
        seconds = segment_seconds(record.joint_targets, record.joint_positions[:-1], speed, record.control_dt)
        return seconds / self.model.opt.timestep  # (T,)

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

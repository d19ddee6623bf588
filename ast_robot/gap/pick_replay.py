"""The MuJoCo simulator that pick-and-place system identification replays real episodes in.

``PickReplay(robot)(params, record)`` sets the episode's table (:mod:`ast_robot.gap.pick_table`) in the
envs' pick-and-place scene, puts the arm at the record's first measured joints with the fingers open, and
drives the arm with the record's commanded joint targets (the trajectory semantics of
:class:`~ast_robot.gap.replay.MujocoReplay`) and the gripper with the commands the deployment derived from
the record's actions, returning the simulated arm joints at every control step, (T+1, J). Cube mass,
friction and grasp force change how the hand and the arm carry the cube; their fit is the same fit as the
reach one (:func:`ast_robot.gap.sysid.fit`).

The gripper gets the commands the deployment sent, at the ticks it sent them (``record.gripper_commands``,
schema version 3). Older records are rebuilt as the deployment built them (:mod:`ast_robot.deploy.gripper`):
the action's last entry mapped linearly from the closed width (-1) to the open one (+1), sent when it moves
by at least the safety gate's dead band and at most ``max_rate_hz`` times a second, applied at the tick it
was sent; a held tick (an all-zero action row) sends nothing. The grasp force is the one the robot's deploy
YAML sets (``gripper.force_n``), times ``gripper_force``.

:meth:`PickReplay.final_objects` gives the cubes' final positions of a replay, the other observable of
an episode (compared with ``record.pick.object_positions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ast_robot.gap.pick_table import TableSheets
from ast_robot.gap.replay import ENV_DT, MujocoReplay
from ast_robot.records import EpisodeRecord
from ast_robot.robot.safety import GRIPPER_DEADBAND_M  # the gate's: a width this close is not re-sent

N_OBJECTS, N_PADS = 2, 2  # the deployable pick-and-place table (ast_robot.twin.pickplace serves the same)


class PickReplay(MujocoReplay):
    """A reusable pick-and-place replay for one robot (the scene is compiled once)."""

    def __init__(self, robot: str, env_dt: float = ENV_DT, sheets: TableSheets | None = None,
                 force_n: float | None = None, max_rate_hz: float | None = None) -> None:  # fmt: skip
        import mujoco

        from ast_robot.envs import randomization as dr
        from ast_robot.robot.specs import load_model

        super().__init__(robot, "reach", env_dt)  # the arm's spec, indices and setpoint semantics; scene below
        self.task = "pickplace"
        self.model = load_model(robot, "pickplace", n_objects=N_OBJECTS, n_pads=N_PADS)
        self.data = mujoco.MjData(self.model)
        self.nominal = dr.nominal(self.model, self.spec)
        self.qadr = np.array([self.model.jnt_qposadr[self.model.joint(n).id] for n in self.spec.joint_names])
        self.act = np.array([self.model.actuator(a).id for a in self.spec.actuator_names])
        self.grip = self.model.actuator(self.spec.gripper_actuator).id
        self.fingers = np.array([self.model.jnt_qposadr[self.model.joint(j).id] for j in self.spec.gripper_joints])
        self.cubes = [int(self.model.jnt_qposadr[self.model.body(f"object{i}").jntadr[0]]) for i in range(N_OBJECTS)]
        io = _robot_io(robot)
        self.force_n = float(io.gripper.force_n if force_n is None else force_n)
        # the sim's own grasp force (the envs' actuator, what randomization's gripper_force scales): a fitted
        # gripper_force (a scale of the deployment's force_n) is this share of it in the sim's units
        self.sim_force_n = float(self.model.actuator_forcerange[self.grip, 1])
        self.max_rate_hz = float(io.gripper.max_rate_hz if max_rate_hz is None else max_rate_hz)
        self.sheets = sheets or TableSheets(robot)
        self.use_rollout = True
        self._last_qpos: np.ndarray | None = None  # the full qpos at the end of the latest replay
        self._input_memo: dict[tuple[int, int, int], tuple[EpisodeRecord, np.ndarray, np.ndarray]] = {}

    # ----- the replay ------------------------------------------------------------------------
    def __call__(self, params: Mapping[str, float], record: EpisodeRecord) -> np.ndarray:
        """Simulated arm joints (T+1, J) of ``record``'s commands under ``params``."""
        return self.many(params, [record])[0]

    def final_objects(self, params: Mapping[str, float], record: EpisodeRecord) -> np.ndarray:
        """The cubes' positions (n, 3) at the end of the replay of ``record`` under ``params``."""
        self(params, record)
        last = self._last_qpos
        return np.array([last[a : a + 3] for a in self.cubes])

    def many(self, params: Mapping[str, float], records: list[EpisodeRecord]) -> list[np.ndarray]:
        """Simulated arm joints (T+1, J) of each record under ``params``: the model set once, the records of one
        length stepped together by one ``mujoco.rollout`` call, each from its own table, on ``threads`` threads;
        bit-identical to one call each (every roll starts with the solver's warm start zeroed, as a reset leaves
        it: passed explicitly, though rollout does the same without it). bench/sysid_refit_cost.py measures it on 8 heavy-slippery episodes, on
        2 shared cores: one call each 1043 / 453 ms, all in one 1016 / 492 ms, on 2 threads 788 / 747 ms (load 6.5 /
        8.1): the batch saves its inputs' rebuilding, not physics; threads win or lose with the load (off by default)."""
        from mujoco import rollout

        for r in records:
            self._check(r)
        self._apply(params)
        h = self.model.opt.timestep
        delay = self.delay_steps(params, h)
        out: list[np.ndarray] = [np.empty(0)] * len(records)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, r in enumerate(records):
            groups.setdefault((r.steps, r.control_dt), []).append(i)
        for (_, control_dt), idx in groups.items():
            substeps = max(1, int(round(control_dt / h)))
            inputs = [self._inputs(records[i], substeps, delay) for i in idx]
            pool = self.threads > 1 and len(idx) > 1  # mujoco.rollout's threads (gap.replay_threads): same bits
            if pool and len(self._datas) < self.threads:
                self._datas = [self._mj.MjData(self.model) for _ in range(self.threads)]
            state, _ = rollout.rollout(self.model, self._datas if pool else self.data, np.stack([s for s, _ in inputs]),
                                       np.stack([c for _, c in inputs]), persistent_pool=pool,
                                       initial_warmstart=np.zeros((len(idx), self.model.nv)))  # fmt: skip
            qpos = state[:, substeps - 1 :: substeps, 1 : 1 + self.model.nq]  # (B, T, nq)
            for k, i in enumerate(idx):
                q = np.empty_like(records[i].joint_positions)
                q[0], q[1:] = records[i].joint_positions[0], qpos[k][:, self.qadr]
                out[i] = q
            self._last_qpos = qpos[-1, -1].copy()
        return out

    def _inputs(self, record: EpisodeRecord, substeps: int, delay: int) -> tuple[np.ndarray, np.ndarray]:
        """(initial state, controls (T * substeps, nu)) of ``record``'s replay: its table and first joints, its
        setpoints and gripper commands. Independent of the physical parameters, so kept per record (building
        them was 8% of a pick fit's time: the setpoints are a Python loop over the ticks)."""
        key = (id(record), substeps, delay)
        hit = self._input_memo.get(key)
        if hit is not None and hit[0] is record:
            return hit[1], hit[2]
        q0 = np.asarray(record.joint_positions[0], dtype=float)
        self._reset(q0, record)
        spec = self._mj.mjtState.mjSTATE_FULLPHYSICS
        state0 = np.empty(self._mj.mj_stateSize(self.model, spec))
        self._mj.mj_getState(self.model, self.data, state0, spec)
        ctrl = np.tile(self.data.ctrl, (record.steps * substeps, 1))  # (T * substeps, nu)
        ctrl[:, self.act] = self.setpoints(record, substeps, delay, q0)
        ctrl[:, self.grip] = np.repeat(self.gripper_widths(record), substeps)
        if len(self._input_memo) >= 64:
            self._input_memo.clear()
        self._input_memo[key] = (record, state0, ctrl)
        return state0, ctrl

    def replayable(self, record: EpisodeRecord) -> str:
        """Why ``record`` cannot be replayed ("" when it can): no joint targets, no known table, or the robot
        stopped during it (from then its brakes held the arm and it refused commands: issue 21, an FR3 wrist
        over its speed limit put the twin in a protective stop, and replaying the commands after it made 99% of
        a nominal round's trajectory loss)."""
        if record.joint_targets is None:
            return f"episode seed {record.seed} has no joint_targets"
        if "stopped_at_step" in record.meta:
            return (f"episode seed {record.seed}: the robot stopped (e-stop or its safety system) at step "
                    f"{record.meta['stopped_at_step']}")  # fmt: skip
        return self.sheets.why_not(record)

    def gripper_widths(self, record: EpisodeRecord) -> np.ndarray:
        """The gripper's commanded opening (T,) m during each tick, as the deployment's commander sent it."""
        closed, opened = (float(w) for w in self.spec.gripper_width)
        if record.gripper_commands is not None:  # what was sent, when (the fingers start open: the twin's reset)
            out = np.full(record.steps, opened)
            for step, width in record.gripper_commands:
                out[step:] = width
            return out
        out = np.empty(record.steps)
        width, last_sent = opened, -np.inf  # the fingers start open (the twin's reset)
        sent: float | None = None
        for k, row in enumerate(np.asarray(record.actions)):
            if np.any(row):  # an all-zero row is a held tick: nothing was commanded
                a = float(np.clip(row[-1], -1.0, 1.0))
                want = closed + (a + 1.0) / 2.0 * (opened - closed)
                now = k * record.control_dt
                fresh = sent is None or abs(want - sent) >= GRIPPER_DEADBAND_M
                if fresh and now - last_sent >= 1.0 / self.max_rate_hz - 1e-9:
                    width, sent, last_sent = want, want, now
            out[k] = width
        return out

    # ----- model and state -------------------------------------------------------------------
    def _apply(self, params: Mapping[str, float]) -> None:
        unknown = [k for k in params if k not in self._dr.PARAMS]
        if unknown:
            raise ValueError(f"unknown randomization parameter(s) {unknown}; known: {sorted(self._dr.PARAMS)}")
        self._dr.apply(self.model, {k: v for k, v in params.items() if k != "gripper_force"}, self.nominal)
        force = self.force_n * float(params.get("gripper_force", 1.0))  # the driver's force, scaled
        self.model.actuator_forcerange[self.grip] = (-force, force)
        # masses feed the constraint solver's inverse weights: recompute them, as the twin's model has them
        self._mj.mj_setConst(self.model, self.data)

    def _reset(self, q0: np.ndarray, record: EpisodeRecord | None = None) -> None:  # type: ignore[override]
        from ast_robot.robot.scene import OBJECT_HALF_SIZE

        self._mj.mj_resetData(self.model, self.data)
        self.data.qpos[self.qadr] = q0
        self.data.ctrl[self.act] = q0
        opened = float(self.spec.gripper_width[1])
        self.data.qpos[self.fingers] = opened / 2.0
        self.data.ctrl[self.grip] = opened
        if record is not None:
            table = self.sheets.table_of(record)
            for adr, (x, y, yaw) in zip(self.cubes, table.objects):
                self.data.qpos[adr : adr + 7] = [x, y, OBJECT_HALF_SIZE, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        self._mj.mj_forward(self.model, self.data)


def _robot_io(robot: str) -> Any:
    """The robot's deploy YAML (gripper force and command rate as the deployment set them)."""
    from ast_robot.deploy.robot_io import load_robot_io

    return load_robot_io(robot)

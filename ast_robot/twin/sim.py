"""The twin's physics: a MuJoCo arm with hidden parameters that obeys the drivers' command semantics.

No ROS here (``ast_robot.twin.node`` is the adapter). Semantics copied from the drivers' documented
behaviour, not their code:

- ``JointTrajectory``: joints are matched by name (any order, all arm joints required); a new trajectory
  replaces the running one when it activates (receipt + the hidden ``latency_s``), starting from the
  setpoint at that moment; each point is reached at activation + ``time_from_start`` with linear
  interpolation in between; times must increase.
- ``Float64MultiArray`` (forward position controller): one value per arm joint in controller order.
- A command beyond the joint limits, or a measured joint speed above the data-sheet limit (+5%), triggers
  a *protective stop*: the arm holds where it is, later commands are refused and the safety mode reads
  PROTECTIVE_STOP until :meth:`TwinSim.unlock` (UR's "unlock protective stop").
- Commands act after the hidden ``latency_s``; published joint positions carry the hidden sensor bias.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from ast_robot.twin.hidden import HiddenParams

# Values of ur_dashboard_msgs/SafetyMode (UR's numbering), published as std_msgs/UInt8.
SAFETY_NORMAL, SAFETY_PROTECTIVE_STOP = 1, 3
SPEED_TOLERANCE = 1.05  # measured joint speeds up to 5% over the data sheet pass


class CommandRefused(ValueError):
    """A command the twin's controller rejects (as a driver would); ``str()`` says why."""


class TwinSim:
    """One simulated arm. Time is simulation time in seconds (the node maps wall time onto it)."""

    def __init__(self, robot: str, hidden: HiddenParams | None = None, seed: int = 0, model: Any = None,
                 joint_names: Sequence[str] | None = None) -> None:  # fmt: skip
        import mujoco

        from ast_robot.robot.specs import get_robot, load_model
        from ast_robot.twin.physics import apply_hidden, arm_indices

        self._mj = mujoco
        self.spec = get_robot(robot)
        self.hidden = hidden or HiddenParams()
        self.model = load_model(robot, "reach") if model is None else model
        apply_hidden(self.model, self.spec, self.hidden)
        self.data = mujoco.MjData(self.model)
        self.idx = arm_indices(self.model, self.spec)
        self.joint_names = tuple(joint_names or self.spec.joint_names)  # names the driver uses in messages
        self.lower, self.upper = np.array(self.spec.joint_lower), np.array(self.spec.joint_upper)
        self.speed_limit = np.array(self.spec.velocity_limits) * SPEED_TOLERANCE  # (J,) rad/s
        self.bias = _bias(self.hidden.sensor_bias_rad, self.spec.n_joints)
        self.rng = np.random.default_rng(seed)
        self.reset()

    # ----- state --------------------------------------------------------------------------------
    def reset(self, qpos: Sequence[float] | None = None) -> None:
        """Put the arm at ``qpos`` (default: home) at rest; clears commands and the protective stop."""
        self._mj.mj_resetData(self.model, self.data)
        q = np.array(self.spec.home_qpos if qpos is None else qpos, dtype=float)
        self.data.qpos[self.idx.qpos] = q
        self._open_gripper()
        # the running command's setpoints: (time s after its activation at _origin, target (J,))
        self._origin, self._waypoints = 0.0, [(0.0, q.copy())]
        self._pending: deque[tuple[float, list[tuple[float, np.ndarray]] | np.ndarray]] = deque()
        self.safety_mode, self.stop_reason = SAFETY_NORMAL, ""
        self._apply_ctrl(q)
        self._mj.mj_forward(self.model, self.data)

    def _open_gripper(self) -> None:
        """Fingers open and held open, as the envs start a reach episode: the drivers' topics carry no
        gripper command, and closed fingers would move the tool's mass away from what the policy trained on."""
        model, spec = self.model, self.spec
        if not spec.gripper_joints:
            return
        for name in spec.gripper_joints:
            self.data.qpos[model.jnt_qposadr[model.joint(name).id]] = spec.gripper_width[1] / 2
        self.data.ctrl[model.actuator(spec.gripper_actuator).id] = spec.gripper_width[1]

    @property
    def time(self) -> float:
        return float(self.data.time)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions + hidden bias/noise, velocities, actuator efforts), each (J,), in spec joint order."""
        noise = self.rng.normal(0.0, self.hidden.joint_noise_rad, self.spec.n_joints) if self.hidden.joint_noise_rad else 0.0
        q = self.data.qpos[self.idx.qpos] + self.bias + noise
        return q, self.data.qvel[self.idx.dof].copy(), self.data.actuator_force[self.idx.act].copy()

    def true_positions(self) -> np.ndarray:
        return self.data.qpos[self.idx.qpos].copy()

    def ee_position(self) -> np.ndarray:
        return self.data.site_xpos[self.idx.site].copy()

    # ----- commands -----------------------------------------------------------------------------
    def command_positions(self, positions: Sequence[float]) -> None:
        """Forward position controller: one target per arm joint, in spec joint order."""
        q = np.asarray(positions, dtype=float).reshape(-1)
        if q.shape != (self.spec.n_joints,):
            raise CommandRefused(f"forward command has {q.size} values, controller has {self.spec.n_joints} joints")
        self._refuse_if_stopped()
        self._check_targets(q)
        self._pending.append((self.time + self.hidden.latency_s, q))

    def command_trajectory(self, names: Sequence[str], points: Sequence[tuple[Sequence[float], float]]) -> None:
        """Joint trajectory: ``points`` are (positions in ``names`` order, time_from_start s)."""
        order = _match_names(list(names), self.joint_names)
        if not points:
            raise CommandRefused("trajectory has no points")
        self._refuse_if_stopped()
        plan, last_t = [], 0.0
        for k, (positions, t_from_start) in enumerate(points):
            q = np.asarray(positions, dtype=float).reshape(-1)
            if q.size != len(names):
                raise CommandRefused(f"trajectory point {k} has {q.size} positions for {len(names)} joints")
            if not (np.isfinite(t_from_start) and t_from_start >= last_t and (t_from_start > last_t or k == 0)):
                raise CommandRefused(f"trajectory point {k}: time_from_start {t_from_start} must increase")
            q = q[order]
            self._check_targets(q)
            plan.append((float(t_from_start), q))
            last_t = t_from_start
        self._pending.append((self.time + self.hidden.latency_s, plan))

    def unlock(self) -> None:
        """Leave a protective stop, holding the current position."""
        self.safety_mode, self.stop_reason = SAFETY_NORMAL, ""
        self._hold_here()

    # ----- physics ------------------------------------------------------------------------------
    def step_to(self, t: float) -> None:
        """Advance the physics to simulation time ``t`` (s), activating commands whose latency elapsed."""
        dt = self.model.opt.timestep
        while self.data.time + 0.5 * dt <= t:
            self._activate_due()
            self._apply_ctrl(self._target_at(self.data.time))
            self._mj.mj_step(self.model, self.data)
            speed = np.abs(self.data.qvel[self.idx.dof])
            if self.safety_mode == SAFETY_NORMAL and np.any(speed > self.speed_limit):
                bad = np.flatnonzero(speed > self.speed_limit).tolist()
                self._protective_stop(f"joint speed above the limit at joints {bad}: {speed[bad].round(2).tolist()} rad/s")

    def _activate_due(self) -> None:
        while self._pending and self._pending[0][0] <= self.data.time + 1e-12:
            t0, cmd = self._pending.popleft()
            if self.safety_mode != SAFETY_NORMAL:
                continue
            start = self._target_at(t0)
            self._origin = t0
            if isinstance(cmd, np.ndarray):
                self._waypoints = [(0.0, cmd)]
                continue
            self._waypoints = [(0.0, start)] + cmd if cmd[0][0] > 0.0 else cmd

    def _target_at(self, t: float) -> np.ndarray:
        """Setpoint at time t: linear interpolation through the waypoints, held after the last one.

        In time since the command's activation and its own time_from_start values, as the env's pipeline
        (:class:`ast_robot.envs.pipeline.Setpoint`) computes them: over absolute times, (t0 + s) - t0 differs
        from s in the last bit for 94% of a UR5e episode's segments, and an outcome must not depend on the
        absolute time's float rounding (contact grows last-bit differences to micro-radians: issue 21)."""
        wps, e = self._waypoints, t - self._origin
        if e <= wps[0][0] or len(wps) == 1:
            return wps[0][1] if e <= wps[0][0] else wps[-1][1]
        for (ta, qa), (tb, qb) in zip(wps, wps[1:]):
            if e < tb:
                return qa + (qb - qa) * ((e - ta) / (tb - ta))
        return wps[-1][1]

    def _apply_ctrl(self, q: np.ndarray) -> None:
        self.data.ctrl[self.idx.act] = q

    def _check_targets(self, q: np.ndarray) -> None:
        if not np.all(np.isfinite(q)):
            raise CommandRefused(f"command has non-finite positions {q.tolist()}")
        if np.any(q < self.lower) or np.any(q > self.upper):
            bad = np.flatnonzero((q < self.lower) | (q > self.upper)).tolist()
            self._protective_stop(f"commanded beyond joint limits at joints {bad}")
            raise CommandRefused(f"protective stop: commanded beyond joint limits at joints {bad}")

    def _refuse_if_stopped(self) -> None:
        if self.safety_mode != SAFETY_NORMAL:
            raise CommandRefused(f"robot is in protective stop ({self.stop_reason}); unlock it first")

    def _protective_stop(self, reason: str) -> None:
        self.safety_mode, self.stop_reason = SAFETY_PROTECTIVE_STOP, reason
        self._pending.clear()
        self._hold_here()

    def _hold_here(self) -> None:
        self._origin, self._waypoints = self.time, [(0.0, self.true_positions())]


def _match_names(names: list[str], joints: tuple[str, ...]) -> np.ndarray:
    """Index that reorders a message's joints into ``joints`` order; CommandRefused on any mismatch."""
    if len(set(names)) != len(names):
        raise CommandRefused(f"trajectory repeats joint names {names}")
    if sorted(names) != sorted(joints):
        raise CommandRefused(f"trajectory joints {names} do not match the controller's joints {list(joints)}")
    return np.array([names.index(n) for n in joints])


def _bias(values: list[float], n: int) -> np.ndarray:
    if len(values) in (0, 1, n):
        return np.broadcast_to(np.array(values or [0.0], dtype=float), (n,)).copy()
    raise ValueError(f"sensor_bias_rad: expected 0, 1 or {n} values, got {len(values)} ({values})")

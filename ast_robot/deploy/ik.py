"""Damped-least-squares inverse kinematics with joint limits, on a MjModel and a joint vector.

No environment is needed: the solver owns a scratch ``MjData``, writes the arm joints into it, runs
MuJoCo's kinematics and Jacobian of one site, and iterates

    dq = J^T (J J^T + lambda^2 I)^-1 e  +  (I - J^+ J) k_null (q_rest - q)

clipping ``q`` to the joint limits after every step. ``e`` stacks the position error (m) and, when a
target orientation is given, the rotation-vector error (rad) times ``orientation_weight`` (m/rad).
Simulation envs and the robot deployment both call it, so a policy trained through it sees the same
mapping from end-effector deltas to joint targets on the real robot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class IKResult:
    """Solution of one :meth:`DLSIK.solve` call."""

    q: np.ndarray  # (n,) joint positions within the limits (rad)
    pos_error: float  # remaining position error (m)
    rot_error: float  # remaining orientation error (rad); 0 without a target orientation
    iterations: int
    converged: bool


class DLSIK:
    """Damped least squares IK for ``site`` over ``joints`` (hinge or slide joints of ``model``)."""

    def __init__(self, model: mujoco.MjModel, site: str, joints: Sequence[str], *, damping: float = 0.05,
                 lower: Sequence[float] | None = None, upper: Sequence[float] | None = None,
                 rest_qpos: Sequence[float] | None = None, nullspace_gain: float = 0.0,
                 orientation_weight: float = 0.3, max_step: float = 0.2) -> None:  # fmt: skip
        if damping <= 0:
            raise ValueError(f"damping must be > 0, got {damping}")
        if max_step <= 0:
            raise ValueError(f"max_step must be > 0 rad, got {max_step}")
        self.model = model
        self.data = mujoco.MjData(model)  # scratch: never the simulation's own data
        self.site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
        if self.site_id < 0:
            raise ValueError(f"site {site!r} is not in the model")
        ids = [self._joint_id(name) for name in joints]
        self.qadr = np.array([model.jnt_qposadr[i] for i in ids])
        self.dofadr = np.array([model.jnt_dofadr[i] for i in ids])
        self.lower = np.array(lower if lower is not None else model.jnt_range[ids, 0], dtype=float)
        self.upper = np.array(upper if upper is not None else model.jnt_range[ids, 1], dtype=float)
        self.rest = None if rest_qpos is None else np.asarray(rest_qpos, dtype=float)
        self.damping, self.nullspace_gain = float(damping), float(nullspace_gain)
        self.orientation_weight, self.max_step = float(orientation_weight), float(max_step)
        self._qidx = _as_index(self.qadr)
        self._cols = _as_index(self.dofadr)
        # lambda^2 I for 3 (position) and 6 (pose) rows; adding it whole is cheaper than indexing the diagonal
        self._damping_eye = {rows: self.damping**2 * np.eye(rows) for rows in (3, 6)}
        self._jac = np.zeros((6, model.nv))  # rows: translational (3), rotational (3)
        self._err = np.zeros(6)  # stacked pose error of the last step (position m, weighted rotation)
        self._rot_err = np.zeros(3)  # unweighted rotation error of the last step (rad)
        self._quat_now, self._quat_inv, self._quat_turn = np.zeros(4), np.zeros(4), np.zeros(4)  # scratch
        self._rot_key, self._rot_quat = b"", None  # last target orientation (bytes) and its quaternion
        self._bind_views()

    def _bind_views(self) -> None:
        """Views into the scratch data and buffers, reused by every step (a view costs as much as the math).

        Pickling copies views as separate arrays, so ``__setstate__`` binds them again.
        """
        self._qpos = self.data.qpos
        self._site_xpos, self._site_xmat = (
            self.data.site_xpos[self.site_id],
            self.data.site_xmat[self.site_id],
        )
        self._jacp, self._jacr = self._jac[:3], self._jac[3:]
        self._err_pos, self._err_rot = self._err[:3], self._err[3:]

    def __getstate__(self) -> dict:
        views = ("_qpos", "_site_xpos", "_site_xmat", "_jacp", "_jacr", "_err_pos", "_err_rot")
        return {k: v for k, v in self.__dict__.items() if k not in views}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind_views()

    def _joint_id(self, name: str) -> int:
        jid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            raise ValueError(f"joint {name!r} is not in the model")
        if int(self.model.jnt_type[jid]) not in (
            int(mujoco.mjtJoint.mjJNT_HINGE),
            int(mujoco.mjtJoint.mjJNT_SLIDE),
        ):
            raise ValueError(f"joint {name!r} must be a hinge or slide joint for IK")
        return jid

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Site position (3,) and rotation matrix (3, 3) at joint positions ``q`` (n,)."""
        self._kinematics(q)
        return self._site_xpos.copy(), self._site_xmat.reshape(3, 3).copy()

    def _kinematics(self, q: np.ndarray) -> None:
        self._qpos[self._qidx] = q
        mujoco.mj_kinematics(self.model, self.data)

    def solve(self, q0: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None,
              max_iters: int = 50, tol: float = 1e-4, rot_tol: float = 1e-3) -> IKResult:  # fmt: skip
        """Joint positions that bring the site to ``target_pos`` (3,) [and ``target_rot`` (3, 3)], from ``q0``."""
        q = _clip(np.asarray(q0, dtype=float), self.lower, self.upper)
        target_pos, target_quat = np.asarray(target_pos, dtype=float), self._target_quat(target_rot)
        for it in range(max_iters + 1):
            err = self._error(q, target_pos, target_quat)
            pos_err = math.sqrt(self._err_pos @ self._err_pos)
            rot_err = 0.0 if target_quat is None else math.sqrt(self._rot_err @ self._rot_err)
            if pos_err < tol and rot_err < rot_tol:
                return IKResult(q, pos_err, rot_err, it, True)
            if it == max_iters:
                break
            q = _clip(q + self._step(q, err), self.lower, self.upper)
        return IKResult(q, pos_err, rot_err, max_iters, False)

    def step(self, q: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None) -> np.ndarray:
        """One damped-least-squares iteration from ``q`` (n,): the cheap per-control-step update."""
        q = _clip(np.asarray(q, dtype=float), self.lower, self.upper)
        err = self._error(q, np.asarray(target_pos, dtype=float), self._target_quat(target_rot))
        return _clip(q + self._step(q, err), self.lower, self.upper)

    def _target_quat(self, rot: np.ndarray | None) -> np.ndarray | None:
        """Quaternion (4,) of ``rot``, cached by value: callers hold one orientation over many steps."""
        if rot is None:
            return None
        key = np.asarray(rot, dtype=float).tobytes()
        if key != self._rot_key:
            self._rot_key, self._rot_quat = key, _quat(rot)
        return self._rot_quat

    def _error(self, q: np.ndarray, target_pos: np.ndarray, target_quat: np.ndarray | None) -> np.ndarray:
        """Stacked error at ``q``: position (3,) m [+ weighted rotation vector (3,) with a target orientation].

        A view of a reused buffer, valid until the next call; ``_rot_err`` keeps the unweighted rotation (rad).
        """
        self._kinematics(q)
        np.subtract(target_pos, self._site_xpos, out=self._err_pos)
        if target_quat is None:
            return self._err_pos
        mujoco.mju_mat2Quat(self._quat_now, self._site_xmat)
        _quat_error(target_quat, self._quat_now, out=self._rot_err, scratch=(self._quat_inv, self._quat_turn))
        np.multiply(self._rot_err, self.orientation_weight, out=self._err_rot)
        return self._err

    def _step(self, q: np.ndarray, err: np.ndarray) -> np.ndarray:
        """The DLS joint update (n,) for the error ``err`` (3,) or (6,) at ``q`` (kinematics already run)."""
        mujoco.mj_comPos(self.model, self.data)  # cdof, needed by the Jacobian
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site_id)
        rows = err.shape[0]
        if rows == 6:
            self._jacr *= self.orientation_weight  # rotation rows in the units of the weighted error
        jac = self._jac[:rows, self._cols]  # (m, n)
        jjt = jac @ jac.T  # (m, m)
        jjt += self._damping_eye[rows]
        mujoco.mju_cholFactor(jjt, 0.0)  # small SPD solves in C: numpy's solve costs more than the math
        dq = jac.T @ self._chol_solve(jjt, err)  # (n,)
        if self.rest is not None and self.nullspace_gain > 0:
            # (I - J^+ J) z with the damped pseudo-inverse J^+ = J^T (J J^T + lambda^2 I)^-1
            z = self.nullspace_gain * (self.rest - q)
            dq += z - jac.T @ self._chol_solve(jjt, jac @ z)
        norm = math.sqrt(dq @ dq)
        return dq * (self.max_step / norm) if norm > self.max_step else dq

    @staticmethod
    def _chol_solve(factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        out = np.empty(rhs.shape[0])
        mujoco.mju_cholSolve(out, factor, rhs)
        return out


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (3,), world frame, of the shortest turn from ``current`` (3, 3) to ``target`` (3, 3)."""
    return _quat_error(_quat(target), _quat(current))


def _quat(rot: np.ndarray | None) -> np.ndarray | None:
    """Unit quaternion (4,) of a rotation matrix given as (3, 3) or (9,)."""
    if rot is None:
        return None
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(rot, dtype=float).reshape(9))
    return quat


def _quat_error(target: np.ndarray, current: np.ndarray, out: np.ndarray | None = None,
                scratch: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:  # fmt: skip
    """Rotation vector (3,) from quaternion ``current`` to ``target``, into ``out`` when given."""
    inv, turn = scratch if scratch is not None else (np.empty(4), np.empty(4))
    err = out if out is not None else np.empty(3)
    mujoco.mju_negQuat(inv, current)
    mujoco.mju_mulQuat(turn, target, inv)  # target * current^-1: a turn expressed in the world frame
    mujoco.mju_quat2Vel(err, turn, 1.0)  # axis * angle, angle wrapped to [-pi, pi]
    return err


def _clip(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, low), high)  # np.clip's dispatch costs more than the work here


def _as_index(addresses: np.ndarray) -> slice | np.ndarray:
    """A slice when the addresses are consecutive (views, no fancy-indexing copies), else the array."""
    first = int(addresses[0])
    if np.array_equal(addresses, np.arange(first, first + len(addresses))):
        return slice(first, first + len(addresses))
    return addresses


def for_robot(model: mujoco.MjModel, robot, **kwargs) -> DLSIK:
    """A :class:`DLSIK` for a :class:`~ast_robot.envs.robots.RobotSpec`'s arm and TCP site.

    Redundant arms (more than 6 joints) pull toward the home posture in the null space by default.
    """
    defaults = {"rest_qpos": robot.home_qpos, "nullspace_gain": 0.5 if robot.n_joints > 6 else 0.0}
    return DLSIK(model, robot.ee_site, robot.joint_names, lower=robot.joint_lower, upper=robot.joint_upper,
                 **{**defaults, **kwargs})  # fmt: skip

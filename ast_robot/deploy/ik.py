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
        self._jac = np.zeros((6, model.nv))  # rows: translational (3), rotational (3)
        contiguous = np.array_equal(self.dofadr, np.arange(self.dofadr[0], self.dofadr[0] + len(ids)))
        self._cols = slice(self.dofadr[0], self.dofadr[0] + len(ids)) if contiguous else self.dofadr
        self._row_weights = np.array([1.0, 1.0, 1.0, *(3 * [self.orientation_weight])])

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
        xmat = self.data.site_xmat[self.site_id].reshape(3, 3)
        return self.data.site_xpos[self.site_id].copy(), xmat.copy()

    def _kinematics(self, q: np.ndarray) -> None:
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)

    def solve(self, q0: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None,
              max_iters: int = 50, tol: float = 1e-4, rot_tol: float = 1e-3) -> IKResult:  # fmt: skip
        """Joint positions that bring the site to ``target_pos`` (3,) [and ``target_rot`` (3, 3)], from ``q0``."""
        q = _clip(np.asarray(q0, dtype=float), self.lower, self.upper)
        target_pos, target_quat = np.asarray(target_pos, dtype=float), _quat(target_rot)
        for it in range(max_iters + 1):
            err, pos_err, rot_err = self._error(q, target_pos, target_quat)
            if pos_err < tol and rot_err < rot_tol:
                return IKResult(q, pos_err, rot_err, it, True)
            if it == max_iters:
                break
            q = _clip(q + self._step(q, err, target_quat is not None), self.lower, self.upper)
        return IKResult(q, pos_err, rot_err, max_iters, False)

    def step(self, q: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None) -> np.ndarray:
        """One damped-least-squares iteration from ``q`` (n,): the cheap per-control-step update."""
        q = _clip(np.asarray(q, dtype=float), self.lower, self.upper)
        target_quat = _quat(target_rot)
        err, _, _ = self._error(q, np.asarray(target_pos, dtype=float), target_quat)
        return _clip(q + self._step(q, err, target_quat is not None), self.lower, self.upper)

    def _error(self, q: np.ndarray, target_pos: np.ndarray, target_quat: np.ndarray | None):
        """Stacked error (3,) or (6,), position error (m), orientation error (rad) at ``q``."""
        self._kinematics(q)
        e_pos = target_pos - self.data.site_xpos[self.site_id]  # (3,)
        if target_quat is None:
            return e_pos, math.sqrt(e_pos @ e_pos), 0.0
        e_rot = _quat_error(target_quat, _quat(self.data.site_xmat[self.site_id]))  # (3,) world frame
        err = np.concatenate([e_pos, self.orientation_weight * e_rot])  # (6,)
        return err, math.sqrt(e_pos @ e_pos), math.sqrt(e_rot @ e_rot)

    def _step(self, q: np.ndarray, err: np.ndarray, with_rot: bool) -> np.ndarray:
        mujoco.mj_comPos(self.model, self.data)  # cdof, needed by the Jacobian
        mujoco.mj_jacSite(self.model, self.data, self._jac[:3], self._jac[3:], self.site_id)
        rows = 6 if with_rot else 3
        jac = self._jac[:rows, self._cols]  # (m, n)
        if with_rot:
            jac = jac * self._row_weights[:, None]
        jjt = jac @ jac.T  # (m, m)
        jjt.flat[:: rows + 1] += self.damping**2
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
        mujoco.mju_cholSolve(out, factor, np.ascontiguousarray(rhs))
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


def _quat_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    inv, turn, err = np.empty(4), np.empty(4), np.empty(3)
    mujoco.mju_negQuat(inv, current)
    mujoco.mju_mulQuat(turn, target, inv)  # target * current^-1: a turn expressed in the world frame
    mujoco.mju_quat2Vel(err, turn, 1.0)  # axis * angle, angle wrapped to [-pi, pi]
    return err


def _clip(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, low), high)  # np.clip's dispatch costs more than the work here


def for_robot(model: mujoco.MjModel, robot, **kwargs) -> DLSIK:
    """A :class:`DLSIK` for a :class:`~ast_robot.envs.robots.RobotSpec`'s arm and TCP site.

    Redundant arms (more than 6 joints) pull toward the home posture in the null space by default.
    """
    defaults = {"rest_qpos": robot.home_qpos, "nullspace_gain": 0.5 if robot.n_joints > 6 else 0.0}
    return DLSIK(model, robot.ee_site, robot.joint_names, lower=robot.joint_lower, upper=robot.joint_upper,
                 **{**defaults, **kwargs})  # fmt: skip

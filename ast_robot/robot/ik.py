"""Damped-least-squares inverse kinematics with joint limits, on a MjModel and a joint vector.

No environment is needed: the solver owns a scratch ``MjData``, writes the arm joints into it, runs
MuJoCo's kinematics and Jacobian of one site, and iterates

    dq = J^T (J J^T + lambda^2 I)^-1 e  +  (I - J^T (J J^T)^-1 J) k_null (q_rest - q)

clipping ``q`` to the joint limits after every step. The null-space projector uses the undamped
pseudo-inverse, so the pull toward the rest posture never moves the task (the damped one left the FR3 TCP
millimetres off its target). ``e`` stacks the position error (m) and, when a
target orientation is given, the rotation-vector error (rad) times ``orientation_weight`` (m/rad).
The iterations run compiled, MuJoCo's kinematics included (:mod:`ast_robot.robot.kernels`).
Simulation envs and the robot deployment both call it, so a policy trained through it sees the same
mapping from end-effector deltas to joint targets on the real robot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from ast_robot.robot import kernels


@dataclass(frozen=True)
class IKResult:
    """Solution of one :meth:`DLSIK.solve` call."""

    q: np.ndarray  # (n,) joint positions within the limits (rad)
    pos_error: float  # remaining position error (m)
    rot_error: float  # remaining orientation error (rad); 0 without a target orientation
    iterations: int
    converged: bool


class DLSIK:
    """Damped least squares IK for ``site`` over ``joints`` (hinge or slide joints of ``model``).

    The limits, damping, gains and rest posture are packed for the compiled kernels at construction:
    changing the attributes afterwards has no effect; make a new solver instead.
    """

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
        self._index = np.stack([self.qadr, self.dofadr]).astype(np.int64)  # for the kernels
        # the kernel's settings and bounds (see kernels.dls_step); no rest posture = zero null-space gain
        use_rest = self.rest is not None and self.nullspace_gain > 0
        rest = self.rest if use_rest else np.zeros(len(ids))
        self._settings = np.array([0.0, self.orientation_weight, self.damping,
                                   self.nullspace_gain if use_rest else 0.0, self.max_step])  # fmt: skip
        self._bounds = np.stack([self.lower, self.upper, rest])
        self._jac = np.zeros((6, model.nv))  # rows: translational (3), rotational (3)
        self._no_quat = np.zeros(4)  # the target orientation argument when there is none
        self._rot_key, self._rot_quat = b"", None  # last target orientation (bytes) and its quaternion
        self._bind_views()

    def _bind_views(self) -> None:
        """Views into the scratch data and its C addresses, for the compiled kernels.

        Pickling copies views apart and makes new MjData, so ``__setstate__`` binds them again.
        """
        self._qpos = self.data.qpos
        self._site_xpos, self._site_xmat = (
            self.data.site_xpos[self.site_id],
            self.data.site_xmat[self.site_id],
        )
        self._handles = np.array([self.model._address, self.data._address, self.site_id], dtype=np.int64)

    def __getstate__(self) -> dict:
        views = ("_qpos", "_site_xpos", "_site_xmat", "_handles")
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
        self._qpos[self._qidx] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self._site_xpos.copy(), self._site_xmat.reshape(3, 3).copy()

    def solve(self, q0: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None,
              max_iters: int = 50, tol: float = 1e-4, rot_tol: float = 1e-3) -> IKResult:  # fmt: skip
        """Joint positions that bring the site to ``target_pos`` (3,) [and ``target_rot`` (3, 3)], from ``q0``."""
        report = np.zeros(4)  # position error, rotation error, updates, converged
        q = kernels.dls_solve(*self.kernel_args(target_rot), np.asarray(q0, dtype=float),
                              np.asarray(target_pos, dtype=float), max_iters, tol, rot_tol, report)  # fmt: skip
        pos_err, rot_err, iterations, converged = report.tolist()
        return IKResult(q, pos_err, rot_err, int(iterations), bool(converged))

    def step(self, q: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None,
             iterations: int = 1) -> np.ndarray:  # fmt: skip
        """``iterations`` damped-least-squares updates from ``q`` (n,): the cheap per-control-step update."""
        return kernels.dls_steps(*self.kernel_args(target_rot), np.asarray(q, dtype=float),
                                 np.asarray(target_pos, dtype=float), iterations)  # fmt: skip

    def kernel_args(self, target_rot: np.ndarray | None) -> tuple:
        """This solver's leading arguments of the compiled kernels (:func:`kernels.dls_steps` documents them)."""
        target_quat = self._target_quat(target_rot)
        self._settings[0] = 0.0 if target_quat is None else 1.0
        return (self._handles, self._index, self._qpos, self._site_xpos, self._site_xmat, self._jac,
                self._no_quat if target_quat is None else target_quat, self._settings, self._bounds)  # fmt: skip

    def _target_quat(self, rot: np.ndarray | None) -> np.ndarray | None:
        """Quaternion (4,) of ``rot``, cached by value: callers hold one orientation over many steps."""
        if rot is None:
            return None
        key = np.asarray(rot, dtype=float).tobytes()
        if key != self._rot_key:
            self._rot_key, self._rot_quat = key, _quat(rot)
        return self._rot_quat


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (3,), world frame, of the shortest turn from ``current`` (3, 3) to ``target`` (3, 3)."""
    out = np.empty(3)
    kernels.rotation_error(_quat(target), _quat(current), out)
    return out


def _quat(rot: np.ndarray | None) -> np.ndarray | None:
    """Unit quaternion (4,) of a rotation matrix given as (3, 3) or (9,)."""
    if rot is None:
        return None
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(rot, dtype=float).reshape(9))
    return quat


def _as_index(addresses: np.ndarray) -> slice | np.ndarray:
    """A slice when the addresses are consecutive (views, no fancy-indexing copies), else the array."""
    first = int(addresses[0])
    if np.array_equal(addresses, np.arange(first, first + len(addresses))):
        return slice(first, first + len(addresses))
    return addresses


def for_robot(model: mujoco.MjModel, robot, **kwargs) -> DLSIK:
    """A :class:`DLSIK` for a :class:`~ast_robot.robot.specs.RobotSpec`'s arm and TCP site.

    Redundant arms (more than 6 joints) pull toward the home posture in the null space by default.
    """
    defaults = {"rest_qpos": robot.home_qpos, "nullspace_gain": 0.5 if robot.n_joints > 6 else 0.0}
    return DLSIK(model, robot.ee_site, robot.joint_names, lower=robot.joint_lower, upper=robot.joint_upper,
                 **{**defaults, **kwargs})  # fmt: skip

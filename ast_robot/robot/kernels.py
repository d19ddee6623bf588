"""The per-step arithmetic of the action mapping (TCP target, DLS IK update, joint step), compiled.

The envs run it every control step and the deployment every tick. On 6-7 joints it is a few hundred
flops, but as NumPy calls it cost ~30 us per env step (each call's dispatch outweighs its math), a
sixth of the physics the step runs; compiled with numba, each function is one call of ~1 us.
The IK calls MuJoCo's kinematics and site Jacobian from compiled code too (its C API, by symbol), so
one control step is one call. ``cache=True`` keeps the compiled code beside this file: only the first
process after an install compiles (~10 s); each later process loads it on first use (~1 s).

The IK update:

    dq = J^T (J J^T + lambda^2 I)^-1 e  +  (I - J^T (J J^T)^-1 J) k_null (q_rest - q),   |dq| <= max_step

The first term is damped (robust near singularities); the null-space projector is not (a damped one
leaks the posture pull into the task: see :func:`_nullspace_step`).

The error ``e`` stacks the position error (m) and, with a target orientation, the rotation vector
(rad) times ``orientation_weight`` (m/rad); the Jacobian's rotation rows are weighted alike.
"""

from __future__ import annotations

import glob
import math
import os

import llvmlite.binding
import mujoco
import numba
import numpy as np
from numba import types


def _load_mujoco() -> None:
    """Makes the C library the mujoco bindings use callable from compiled code, by symbol name."""
    folder = os.path.dirname(mujoco.__file__)
    found = [p for pattern in ("libmujoco.so*", "libmujoco*.dylib", "mujoco.dll")
             for p in sorted(glob.glob(os.path.join(folder, pattern)))]  # fmt: skip
    if not found:
        raise ImportError(f"no MuJoCo C library in {folder}: ast_robot.robot.kernels calls MuJoCo's C API")
    llvmlite.binding.load_library_permanently(found[0])


_load_mujoco()
# Pointers travel as integers (intp): the bindings give mjModel/mjData addresses as ``_address``.
_mj_kinematics = types.ExternalFunction("mj_kinematics", types.void(types.intp, types.intp))
_mj_comPos = types.ExternalFunction("mj_comPos", types.void(types.intp, types.intp))
_mj_jacSite = types.ExternalFunction(
    "mj_jacSite", types.void(types.intp, types.intp, types.intp, types.intp, types.int32)
)
_mju_mat2Quat = types.ExternalFunction("mju_mat2Quat", types.void(types.intp, types.intp))


@numba.njit(cache=True)
def rotation_error(target: np.ndarray, current: np.ndarray, out: np.ndarray) -> None:
    """Rotation vector (3,), world frame, of the shortest turn from quaternion ``current`` to ``target``.

    turn = target * conj(current); axis * angle with the angle wrapped to [-pi, pi] (mju_quat2Vel).
    """
    tw, tx, ty, tz = target[0], target[1], target[2], target[3]
    cw, cx, cy, cz = current[0], -current[1], -current[2], -current[3]
    w = tw * cw - tx * cx - ty * cy - tz * cz
    x = tw * cx + tx * cw + ty * cz - tz * cy
    y = tw * cy - tx * cz + ty * cw + tz * cx
    z = tw * cz + tx * cy - ty * cx + tz * cw
    sin_half = math.sqrt(x * x + y * y + z * z)
    if sin_half < 1e-15:
        out[0] = out[1] = out[2] = 0.0
        return
    angle = 2.0 * math.atan2(sin_half, w)
    if angle > math.pi:
        angle -= 2.0 * math.pi
    out[0], out[1], out[2] = x / sin_half * angle, y / sin_half * angle, z / sin_half * angle


@numba.njit(cache=True)
def _solve_spd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x with a x = b for a small symmetric positive definite ``a`` (Cholesky, in place on a copy)."""
    m = a.shape[0]
    low = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1):
            s = a[i, j]
            for k in range(j):
                s -= low[i, k] * low[j, k]
            low[i, j] = math.sqrt(s) if i == j else s / low[j, j]
    y = np.empty(m)
    for i in range(m):
        s = b[i]
        for k in range(i):
            s -= low[i, k] * y[k]
        y[i] = s / low[i, i]
    x = np.empty(m)
    for i in range(m - 1, -1, -1):
        s = y[i]
        for k in range(i + 1, m):
            s -= low[k, i] * x[k]
        x[i] = s / low[i, i]
    return x


@numba.njit(cache=True)
def _transpose_times(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """a.T @ x for a (m, n) and x (m,)."""
    out = np.zeros(a.shape[1])
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j] * x[i]
    return out


@numba.njit(cache=True)
def clip(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """A copy of ``x`` (n,) within [lower, upper]."""
    out = np.empty(x.shape[0])
    for j in range(x.shape[0]):
        out[j] = min(max(x[j], lower[j]), upper[j])
    return out


@numba.njit(cache=True)
def _kinematics(handles: np.ndarray, index: np.ndarray, qpos: np.ndarray, q: np.ndarray, jac: np.ndarray) -> None:
    """Writes the arm joints ``q`` into ``qpos`` and runs MuJoCo's kinematics and the site Jacobian."""
    model, data, nv = handles[0], handles[1], jac.shape[1]
    for j in range(q.shape[0]):
        qpos[index[0, j]] = q[j]
    _mj_kinematics(model, data)
    _mj_comPos(model, data)  # cdof, needed by the Jacobian
    _mj_jacSite(model, data, jac.ctypes.data, jac.ctypes.data + 3 * nv * 8, np.int32(handles[2]))


@numba.njit(cache=True)
def _pose_error(site_pos: np.ndarray, site_mat: np.ndarray, target_pos: np.ndarray, target_quat: np.ndarray,
                settings: np.ndarray, errors: np.ndarray) -> np.ndarray:  # fmt: skip
    """The stacked error (3,) or (6,) of the site's pose; ``errors`` gets its position (m) and rotation (rad) norm."""
    use_rotation = settings[0] > 0.5
    err = np.empty(6 if use_rotation else 3)
    for i in range(3):
        err[i] = target_pos[i] - site_pos[i]
    errors[0] = math.sqrt(err[0] * err[0] + err[1] * err[1] + err[2] * err[2])
    errors[1] = 0.0
    if use_rotation:
        quat, rot = np.empty(4), np.empty(3)
        _mju_mat2Quat(quat.ctypes.data, site_mat.ctypes.data)
        rotation_error(target_quat, quat, rot)
        errors[1] = math.sqrt(rot[0] * rot[0] + rot[1] * rot[1] + rot[2] * rot[2])
        for i in range(3):
            err[3 + i] = rot[i] * settings[1]
    return err


NULLSPACE_EPS = 1e-10  # (m^2) keeps J J^T invertible at a singularity; leaves ~1e-10 / sigma_min^2 of a leak


@numba.njit(cache=True)
def _nullspace_step(jac: np.ndarray, jjt_damped: np.ndarray, damping_sq: float, z: np.ndarray) -> np.ndarray:
    """(I - J^T (J J^T)^-1 J) z: the part of the joint step ``z`` (n,) that does not move the task.

    The projector must use the *undamped* pseudo-inverse: with the damped one, J (I - J^+ J) z =
    lambda^2 (J J^T + lambda^2 I)^-1 J z is not zero, so the pull toward the rest posture leaks into the
    task space and the IK settles where both balance (a steady FR3 TCP error of millimetres). ``jjt_damped``
    is J J^T + lambda^2 I, reused without its damping; ``NULLSPACE_EPS`` only guards the Cholesky: the
    projector's eigenvalues stay in [0, 1] at any rank.
    """
    rows, n = jac.shape
    jjt = jjt_damped.copy()
    for i in range(rows):
        jjt[i, i] += NULLSPACE_EPS - damping_sq
    jz = np.zeros(rows)
    for i in range(rows):
        for j in range(n):
            jz[i] += jac[i, j] * z[j]
    return z - _transpose_times(jac, _solve_spd(jjt, jz))


@numba.njit(cache=True)
def _dls_update(q: np.ndarray, err: np.ndarray, jac_full: np.ndarray, cols: np.ndarray, settings: np.ndarray,
                bounds: np.ndarray) -> np.ndarray:  # fmt: skip
    """The next joint vector (n,) within the bounds, for the error ``err`` at ``q`` (see the module docstring)."""
    orientation_weight, damping, nullspace_gain, max_step = settings[1], settings[2], settings[3], settings[4]
    n, rows = q.shape[0], err.shape[0]
    jac = np.empty((rows, n))
    for j in range(n):
        for i in range(3):
            jac[i, j] = jac_full[i, cols[j]]
        for i in range(3, rows):  # rotation rows in the units of the weighted error
            jac[i, j] = jac_full[i, cols[j]] * orientation_weight
    jjt = np.empty((rows, rows))  # loops, not BLAS: calls on a 6x7 matrix cost more than the math
    for i in range(rows):
        for k in range(i + 1):
            s = 0.0
            for j in range(n):
                s += jac[i, j] * jac[k, j]
            jjt[i, k] = jjt[k, i] = s
        jjt[i, i] += damping * damping
    dq = _transpose_times(jac, _solve_spd(jjt, err))
    if nullspace_gain > 0.0:
        dq += _nullspace_step(jac, jjt, damping * damping, nullspace_gain * (bounds[2] - q))
    norm = math.sqrt(np.sum(dq * dq))
    if norm > max_step:
        dq *= max_step / norm
    return clip(q + dq, bounds[0], bounds[1])


@numba.njit(cache=True)
def dls_steps(handles: np.ndarray, index: np.ndarray, qpos: np.ndarray, site_pos: np.ndarray,
              site_mat: np.ndarray, jac: np.ndarray, target_quat: np.ndarray, settings: np.ndarray,
              bounds: np.ndarray, q: np.ndarray, target_pos: np.ndarray, iterations: int) -> np.ndarray:  # fmt: skip
    """``iterations`` DLS updates from ``q`` (n,, clipped to the bounds first): the per-control-step IK.

    The solver's arguments (``DLSIK.kernel_args``): handles (model address, data address, site id);
    index (2, n): the arm's qpos and dof addresses; qpos, site_pos (3,), site_mat (9,): views into the
    solver's scratch MjData; jac (6, nv) scratch; target_quat (4,), ignored unless settings[0] is 1;
    settings: (use_rotation, orientation_weight m/rad, damping, nullspace_gain, max_step rad);
    bounds (3, n): lower, upper, rest posture.
    """
    q = clip(q, bounds[0], bounds[1])
    errors = np.empty(2)
    for _ in range(iterations):
        _kinematics(handles, index, qpos, q, jac)
        err = _pose_error(site_pos, site_mat, target_pos, target_quat, settings, errors)
        q = _dls_update(q, err, jac, index[1], settings, bounds)
    return q


@numba.njit(cache=True)
def dls_solve(handles: np.ndarray, index: np.ndarray, qpos: np.ndarray, site_pos: np.ndarray,
              site_mat: np.ndarray, jac: np.ndarray, target_quat: np.ndarray, settings: np.ndarray,
              bounds: np.ndarray, q: np.ndarray, target_pos: np.ndarray, max_iters: int, tol: float,
              rot_tol: float, report: np.ndarray) -> np.ndarray:  # fmt: skip
    """DLS updates from ``q`` until the errors are below (tol m, rot_tol rad) or after ``max_iters`` updates.

    Arguments as :func:`dls_steps`; ``report`` (4,) gets (position error m, rotation error rad,
    updates made, converged 0/1) of the returned q.
    """
    q = clip(q, bounds[0], bounds[1])
    errors = np.empty(2)
    for it in range(max_iters + 1):
        _kinematics(handles, index, qpos, q, jac)
        err = _pose_error(site_pos, site_mat, target_pos, target_quat, settings, errors)
        converged = errors[0] < tol and errors[1] < rot_tol
        if converged or it == max_iters:
            report[0], report[1], report[2], report[3] = errors[0], errors[1], it, 1.0 if converged else 0.0
            return q
        q = _dls_update(q, err, jac, index[1], settings, bounds)
    return q


@numba.njit(cache=True)
def tcp_target(base: np.ndarray, tcp: np.ndarray, action: np.ndarray, step_m: float, low: np.ndarray,
               high: np.ndarray, lead_m: float) -> np.ndarray:  # fmt: skip
    """The integrated TCP target (3,) m: ``base`` moved by ``action[:3]`` (clipped to [-1, 1]) x ``step_m``,
    kept in the workspace box [low, high] and within ``lead_m`` of the measured ``tcp`` (anti-windup) per axis."""
    out = np.empty(3)
    for i in range(3):
        target = min(max(base[i] + min(max(action[i], -1.0), 1.0) * step_m, low[i]), high[i])
        out[i] = tcp[i] + min(max(target - tcp[i], -lead_m), lead_m)
    return out


@numba.njit(cache=True)
def joint_command(q_prev: np.ndarray, q_target: np.ndarray, max_change: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray, gripper: float) -> np.ndarray:  # fmt: skip
    """[q (n,), gripper]: ``q_target`` reached from ``q_prev`` by at most ``max_change`` (n,) per joint,
    within [lower, upper]; the gripper value appended, as the env's actuators take it."""
    n = q_prev.shape[0]
    out = np.empty(n + 1)
    for j in range(n):
        q = q_prev[j] + min(max(q_target[j] - q_prev[j], -max_change[j]), max_change[j])
        out[j] = min(max(q, lower[j]), upper[j])
    out[n] = gripper
    return out


@numba.njit(cache=True)
def ee_delta_command(handles: np.ndarray, index: np.ndarray, qpos: np.ndarray, site_pos: np.ndarray,
                     site_mat: np.ndarray, jac: np.ndarray, target_quat: np.ndarray, settings: np.ndarray,
                     bounds: np.ndarray, q_prev: np.ndarray, ee_cmd: np.ndarray, tcp: np.ndarray,
                     action: np.ndarray, motion: np.ndarray, iterations: int) -> np.ndarray:  # fmt: skip
    """An env's end-effector-delta action -> [arm joint targets (n,), gripper width]; one call per step.

    The solver's arguments as in :func:`dls_steps`; ``ee_cmd`` (3,): the integrated TCP target, updated
    in place (:func:`tcp_target`); ``action`` (4,): TCP deltas and gripper in [-1, 1] (clipped here);
    motion: (TCP step m, lead m, workspace low (3), workspace high (3), gripper closed m, gripper open m,
    max joint change per step (n) rad). The joints move from ``q_prev`` toward the IK's answer by at
    most the max change, within the bounds (:func:`joint_command`).
    """
    n = q_prev.shape[0]
    target = tcp_target(ee_cmd, tcp, action, motion[0], motion[2:5], motion[5:8], motion[1])
    ee_cmd[:] = target
    q_ik = dls_steps(handles, index, qpos, site_pos, site_mat, jac, target_quat, settings, bounds, q_prev,
                     target, iterations)  # fmt: skip
    closed, opened = motion[8], motion[9]
    width = closed + (min(max(action[3], -1.0), 1.0) + 1.0) / 2.0 * (opened - closed)  # -1 closed, +1 open
    return joint_command(q_prev, q_ik, motion[10 : 10 + n], bounds[0], bounds[1], width)


PROPRIO_FIXED = 10  # entries of the proprio observation besides the 2n joint entries (see proprio)


def proprio_size(n_joints: int) -> int:
    """Length of :func:`proprio` for an arm of ``n_joints`` joints: 2n + 10."""
    return 2 * n_joints + PROPRIO_FIXED


@numba.njit(cache=True)
def proprio(q: np.ndarray, dq: np.ndarray, tcp: np.ndarray, prev_tcp: np.ndarray, inv_dt: float,
            gripper_width: float, tcp_cmd: np.ndarray) -> np.ndarray:  # fmt: skip
    """The proprioceptive observation (2n + 10,), the one layout the envs and the deployment build:

    | slice          | entry                                                       | unit  |
    |----------------|-------------------------------------------------------------|-------|
    | 0 .. n-1       | joint positions q                                           | rad   |
    | n .. 2n-1      | joint velocities dq                                         | rad/s |
    | 2n .. 2n+2     | TCP position (world)                                        | m     |
    | 2n+3 .. 2n+5   | TCP velocity = (tcp - prev_tcp) * inv_dt (0: no previous)   | m/s   |
    | 2n+6           | gripper opening                                             | m     |
    | 2n+7 .. 2n+9   | TCP command offset = tcp_cmd - tcp                          | m     |

    ``tcp_cmd`` is the TCP target the ee_delta controller has integrated up to the last action (the envs'
    ``tcp_command``, the deployment's ``EEDeltaAction.ee_cmd``; the measured TCP when there is none, so the
    offset is 0). The arm tracks that target late (randomized action latency, actuator lag): the offset
    shows the policy what it has already commanded but the arm has not yet done, which the measured state
    alone cannot tell.
    """
    n = q.shape[0]
    out = np.empty(2 * n + 10)
    for j in range(n):
        out[j], out[n + j] = q[j], dq[j]
    for i in range(3):
        out[2 * n + i] = tcp[i]
        out[2 * n + 3 + i] = (tcp[i] - prev_tcp[i]) * inv_dt
        out[2 * n + 7 + i] = tcp_cmd[i] - tcp[i]
    out[2 * n + 6] = gripper_width
    return out

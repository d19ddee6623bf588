"""Damped-least-squares IK: reaches reachable targets, stays inside joint limits, needs no env."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from ast_robot.robot.ik import DLSIK, for_robot, rotation_error
from ast_robot.robot.kernels import NULLSPACE_EPS
from ast_robot.robot.specs import get_robot, load_model


@pytest.mark.parametrize("name", ["ur5e", "fr3"])
def test_reaches_reachable_poses(name):
    robot = get_robot(name)
    model = load_model(name)
    ik = for_robot(model, robot, nullspace_gain=0.0)
    rng = np.random.default_rng(0)
    home = np.array(robot.home_qpos)
    errors = []
    for _ in range(30):
        # Targets are FK of configurations near home, so they are reachable by construction.
        q_goal = np.clip(home + rng.uniform(-0.4, 0.4, robot.n_joints), robot.joint_lower, robot.joint_upper)
        pos, rot = ik.forward(q_goal)
        res = ik.solve(home, pos, rot, max_iters=200)
        errors.append(res.pos_error)
        assert np.all(res.q >= ik.lower) and np.all(res.q <= ik.upper)
        check_pos, _ = ik.forward(res.q)
        assert np.linalg.norm(check_pos - pos) == pytest.approx(res.pos_error, abs=1e-9)
    assert np.mean(np.array(errors) < 1e-3) >= 0.9, errors


@pytest.mark.parametrize("name", ["ur5e", "fr3"])
def test_respects_limits_on_unreachable_target(name):
    robot = get_robot(name)
    ik = for_robot(load_model(name), robot)
    res = ik.solve(np.array(robot.home_qpos), np.array([2.0, 0.0, 0.3]), max_iters=100)
    assert not res.converged and res.pos_error > 0.5
    assert np.all(res.q >= np.array(robot.joint_lower) - 1e-12)
    assert np.all(res.q <= np.array(robot.joint_upper) + 1e-12)


def test_narrow_limits_are_honoured():
    robot = get_robot("ur5e")
    model = load_model("ur5e")
    lower = np.array(robot.home_qpos) - 0.05
    upper = np.array(robot.home_qpos) + 0.05
    ik = DLSIK(model, "tcp", robot.joint_names, lower=lower, upper=upper)
    res = ik.solve(np.array(robot.home_qpos), np.array([0.3, 0.3, 0.1]))
    assert np.all(res.q >= lower) and np.all(res.q <= upper)
    assert np.any(np.isclose(res.q, lower) | np.isclose(res.q, upper))  # pushed against a limit


def test_works_from_model_and_vector_without_touching_sim_data():
    model = load_model("fr3")
    sim = mujoco.MjData(model)
    before = sim.qpos.copy()
    ik = for_robot(model, get_robot("fr3"))
    ik.solve(np.array(get_robot("fr3").home_qpos), np.array([0.5, 0.1, 0.2]))
    assert np.array_equal(sim.qpos, before)


def test_pickled_solver_gives_the_same_steps():
    # the solver keeps views into its scratch data and its C addresses; unpickling must bind them again
    import gc
    import pickle

    robot = get_robot("fr3")
    ik = for_robot(load_model("fr3"), robot)
    clone = pickle.loads(pickle.dumps(ik))
    q, target, rot = np.array(robot.home_qpos), np.array([0.5, 0.1, 0.2]), np.diag([1.0, -1.0, -1.0])
    expected = [q]
    for _ in range(3):
        expected.append(ik.step(expected[-1], target, rot))
    del ik
    gc.collect()  # a clone still pointing at the original's MjData would now read freed memory
    for before, after in zip(expected[:-1], expected[1:], strict=True):
        stepped = clone.step(before, target, rot)
        assert np.array_equal(stepped, after) and not np.array_equal(stepped, before)
        np.testing.assert_array_equal(clone.data.qpos[: robot.n_joints], before)  # its own scratch data


def _reference_step(model, robot, ik, q, target, rot, weight=0.3):
    """One DLS update written out with NumPy and MuJoCo's Python API: the compiled kernel must equal it."""
    data = mujoco.MjData(model)
    data.qpos[: robot.n_joints] = q
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    site = model.site(robot.ee_site).id
    mujoco.mj_jacSite(model, data, jacp, jacr, site)
    err_rot = rotation_error(rot, data.site_xmat[site].reshape(3, 3))
    err = np.concatenate([target - data.site_xpos[site], weight * err_rot])
    jac = np.vstack([jacp, weight * jacr])[:, : robot.n_joints]
    inv = jac.T @ np.linalg.inv(jac @ jac.T + ik.damping**2 * np.eye(6))
    dq = inv @ err
    if ik.nullspace_gain > 0:  # the projector of the undamped pseudo-inverse (guarded at singularities)
        pinv = jac.T @ np.linalg.inv(jac @ jac.T + NULLSPACE_EPS * np.eye(6))
        dq += (np.eye(robot.n_joints) - pinv @ jac) @ (ik.nullspace_gain * (ik.rest - q))
    dq *= min(1.0, ik.max_step / np.linalg.norm(dq))
    return np.clip(q + dq, ik.lower, ik.upper)


@pytest.mark.parametrize("name", ["ur5e", "fr3"])
def test_step_is_the_damped_least_squares_update(name):
    robot, model = get_robot(name), load_model(name)
    ik = for_robot(model, robot)
    rng = np.random.default_rng(1)
    rot = np.diag([1.0, -1.0, -1.0])
    for _ in range(50):
        q = rng.uniform(ik.lower, ik.upper)
        target = rng.uniform([0.2, -0.4, 0.0], [0.75, 0.4, 0.5])
        np.testing.assert_allclose(ik.step(q, target, rot), _reference_step(model, robot, ik, q, target, rot),
                                   atol=1e-9)  # fmt: skip


def test_rotation_error_is_the_rotation_vector():
    angle, axis = 0.7, np.array([0.0, 0.6, 0.8])
    rot = np.zeros(9)
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, axis, angle)
    mujoco.mju_quat2Mat(rot, quat)
    np.testing.assert_allclose(rotation_error(rot.reshape(3, 3), np.eye(3)), angle * axis, atol=1e-12)
    half = rotation_error(np.diag([1.0, -1.0, -1.0]), np.eye(3))  # half turn about x
    np.testing.assert_allclose(np.abs(half), [np.pi, 0, 0], atol=1e-9)


def test_bad_arguments_name_the_problem():
    model = load_model("ur5e")
    with pytest.raises(ValueError, match="site 'nope'"):
        DLSIK(model, "nope", ["shoulder_pan_joint"])
    with pytest.raises(ValueError, match="joint 'elbow'"):
        DLSIK(model, "tcp", ["elbow"])
    with pytest.raises(ValueError, match="damping must be > 0"):
        DLSIK(model, "tcp", ["elbow_joint"], damping=0.0)


def _reach_goals(n=100):
    from ast_robot.envs.reach import GOAL_HIGH, GOAL_LOW

    return np.random.default_rng(0).uniform(GOAL_LOW, GOAL_HIGH, size=(n, 3))


@pytest.mark.parametrize("name", ["ur5e", "fr3"])
def test_default_solver_reaches_every_reach_goal_within_a_tenth_of_a_millimetre(name):
    # With the damped pseudo-inverse in the null-space projector the FR3 settled 3.0 mm (median) / 5.7 mm
    # (max) off these goals: the pull toward home leaked into the task space. More iterations do not help.
    robot, rot = get_robot(name), np.diag([1.0, -1.0, -1.0])
    ik = for_robot(load_model(name), robot)
    assert (ik.nullspace_gain > 0) == (robot.n_joints > 6)  # the defaults under test
    errors = [ik.solve(np.array(robot.home_qpos), g, rot, max_iters=300, tol=1e-7, rot_tol=1e-6)
              for g in _reach_goals()]  # fmt: skip
    assert max(r.pos_error for r in errors) <= 1e-4, sorted(r.pos_error for r in errors)[-5:]
    assert max(r.rot_error for r in errors) <= 1e-3


def test_nullspace_pull_moves_the_posture_but_not_the_tcp():
    robot, rot = get_robot("fr3"), np.diag([1.0, -1.0, -1.0])
    model = load_model("fr3")
    pulled, free = for_robot(model, robot), for_robot(model, robot, nullspace_gain=0.0)
    home = np.array(robot.home_qpos)
    rng = np.random.default_rng(3)
    gains = []
    for target in _reach_goals(10):
        start = free.solve(home + rng.uniform(-0.3, 0.3, robot.n_joints), target, rot, max_iters=300).q
        q = start.copy()
        for _ in range(200):  # at the goal already: only the null-space term moves the joints
            q = pulled.step(q, target, rot)
        assert np.linalg.norm(pulled.forward(q)[0] - target) <= 1e-4
        gains.append(np.linalg.norm(start - home) - np.linalg.norm(q - home))
    assert min(gains) > 0.0, gains  # every posture moved toward home

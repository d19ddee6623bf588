"""Damped-least-squares IK: reaches reachable targets, stays inside joint limits, needs no env."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from ast_robot.deploy.ik import DLSIK, for_robot, rotation_error
from ast_robot.envs.robots import get_robot, load_model


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
    # the solver keeps views into its scratch data and buffers; unpickling must bind them again
    import pickle

    robot = get_robot("fr3")
    ik = for_robot(load_model("fr3"), robot)
    clone = pickle.loads(pickle.dumps(ik))
    q, target, rot = np.array(robot.home_qpos), np.array([0.5, 0.1, 0.2]), np.diag([1.0, -1.0, -1.0])
    for _ in range(3):
        q_a, q_b = ik.step(q, target, rot), clone.step(q, target, rot)
        assert np.array_equal(q_a, q_b) and not np.array_equal(q_a, q)
        q = q_a


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

"""Robot models: MuJoCo forward kinematics equal the published DH kinematics; specs match the MJCF."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from ast_robot.robot.specs import ROBOTS, get_robot, load_model


def _flange_in_base(model: mujoco.MjModel, data: mujoco.MjData, robot) -> np.ndarray:
    base, flange = data.body(robot.base_body), data.body(robot.flange_body)
    rot_b = base.xmat.reshape(3, 3)
    pose = np.eye(4)
    pose[:3, :3] = rot_b.T @ flange.xmat.reshape(3, 3)
    pose[:3, 3] = rot_b.T @ (flange.xpos - base.xpos)
    return pose


@pytest.mark.parametrize("name", ["ur5e", "fr3"])
def test_mujoco_fk_equals_dh_fk(name):
    robot = get_robot(name)
    model = load_model(name, "reach")
    data = mujoco.MjData(model)
    qadr = [model.joint(j).qposadr[0] for j in robot.joint_names]
    rng = np.random.default_rng(123)
    for _ in range(100):
        q = rng.uniform(robot.joint_lower, robot.joint_upper)
        data.qpos[qadr] = q
        mujoco.mj_kinematics(model, data)
        sim, dh = _flange_in_base(model, data, robot), robot.dh_fk(q)
        assert np.linalg.norm(sim[:3, 3] - dh[:3, 3]) < 1e-4  # 0.1 mm
        assert np.abs(sim[:3, :3] - dh[:3, :3]).max() < 1e-6


@pytest.mark.parametrize("name", ["ur5e", "fr3"])
def test_spec_matches_mjcf(name):
    robot = get_robot(name)
    model = load_model(name, "reach")
    for i, joint in enumerate(robot.joint_names):
        jnt = model.joint(joint)
        assert jnt.range[0] == pytest.approx(robot.joint_lower[i], abs=1e-5)
        assert jnt.range[1] == pytest.approx(robot.joint_upper[i], abs=1e-5)
        act = model.actuator(robot.actuator_names[i])
        assert act.forcerange[1] == pytest.approx(robot.effort_limits[i])
        assert robot.joint_lower[i] <= robot.home_qpos[i] <= robot.joint_upper[i]
    assert model.actuator(robot.gripper_actuator).forcerange[1] == pytest.approx(robot.grip_force)
    model.site(robot.ee_site)  # raises KeyError when the site is missing
    assert model.opt.timestep == pytest.approx(0.002)


def test_fr3_limits_from_datasheet():
    fr3 = get_robot("fr3")
    assert fr3.velocity_limits == (2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26)
    assert fr3.joint_upper[3] == pytest.approx(-0.1518) and fr3.joint_lower[5] == pytest.approx(0.5445)


def test_unknown_robot_lists_known():
    with pytest.raises(ValueError, match=r"unknown robot 'ur10'.*\['fr3', 'ur5e'\]"):
        get_robot("ur10")
    assert ROBOTS.names() == ["fr3", "ur5e"]


def test_unknown_task_and_bad_options():
    with pytest.raises(ValueError, match="unknown task 'push'"):
        load_model("ur5e", "push")
    with pytest.raises(ValueError, match="n_objects"):
        load_model("fr3", "pickplace", n_objects=0)
    with pytest.raises(ValueError, match="robot model 'mesh'"):
        load_model("fr3", "reach", model="mesh")


def test_menagerie_without_files_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="MENAGERIE_ROOT"):
        load_model("ur5e", "reach", model="menagerie")
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="universal_robots_ur5e"):
        load_model("ur5e", "reach", model="menagerie")


def test_pick_place_scene_has_objects_and_pads():
    model = load_model("ur5e", "pickplace", n_objects=4, n_pads=2)
    assert [model.body(f"object{i}").mass[0] for i in range(4)] == pytest.approx([0.1] * 4)
    model.site("pad1")  # raises KeyError when the site is missing
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, nstep=50)  # objects rest on the table, nothing explodes
    assert np.all(np.isfinite(data.qpos))

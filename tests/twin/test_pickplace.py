"""The twin's pick-and-place table: set as an operator sets it, a gripper in the robot's interface form, a
camera of the twin's own scene, and hidden differences that only the twin knows."""

from __future__ import annotations

import json

import mujoco
import numpy as np
import pytest

from ast_robot.deploy.gripper import GripperCommander
from ast_robot.deploy.robot_io import load_robot_io
from ast_robot.twin.hidden import HiddenParams
from ast_robot.twin.pickplace import PickPlaceTable, SceneRefused, build_model, parse_scene
from ast_robot.twin.sim import TwinSim

TABLE = {"objects": [{"colour": "red", "x": 0.45, "y": -0.1, "yaw": 0.2}, {"colour": "blue", "x": 0.5, "y": 0.1}],
         "pads": [{"colour": "green", "x": 0.4, "y": 0.15}, {"colour": "yellow", "x": 0.55, "y": -0.15}]}  # fmt: skip


def twin(robot: str = "ur5e", **hidden) -> tuple[TwinSim, PickPlaceTable]:
    params = HiddenParams(**hidden)
    io = load_robot_io(robot)
    sim = TwinSim(robot, params, model=build_model(robot, params), joint_names=io.joint_names)
    return sim, PickPlaceTable(sim, io.gripper, params)


def render(sim: TwinSim, table: PickPlaceTable) -> np.ndarray:
    renderer = mujoco.Renderer(sim.model, 64, 64)
    try:
        renderer.update_scene(sim.data, camera="scene")
        return table.post_process(renderer.render())
    finally:
        renderer.close()


@pytest.mark.parametrize("change,field", [
    ({"objects": TABLE["objects"][:1]}, "scene.objects: expected a list of 2"),
    ({"pads": [{"colour": "mauve", "x": 0.4, "y": 0.0}, TABLE["pads"][1]]}, r"scene.pads\[0\].colour"),
    ({"objects": [{"colour": "red", "x": 0.9, "y": 0.0}, TABLE["objects"][1]]}, r"scene.objects\[0\]: .* inside the table"),
    ({"objects": [{"colour": "red", "x": "NaN", "y": 0.0}, TABLE["objects"][1]]}, r"scene.objects\[0\]: .* finite"),
    ({"objects": [{"colour": "red", "x": [1], "y": 0.0}, TABLE["objects"][1]]}, r"x, y, yaw must be numbers"),
    ({"pads": [TABLE["pads"][0], TABLE["pads"][0]]}, "colours must differ"),
])  # fmt: skip
def test_bad_tables_are_refused_naming_the_field(change, field):
    with pytest.raises(SceneRefused, match=field):
        parse_scene(json.dumps({**TABLE, **change}))


@pytest.mark.parametrize("text", ["not json", "[1, 2]", "x" * 5000])
def test_non_tables_are_refused(text):
    with pytest.raises(SceneRefused, match="scene"):
        parse_scene(text)


def test_the_table_is_set_and_stays_set_across_resets():
    sim, table = twin()
    table.set_scene(parse_scene(json.dumps(TABLE)))
    np.testing.assert_allclose(table.object_position(1)[:2], [0.5, 0.1])
    sim.step_to(0.5)
    sim.reset()
    table.after_reset()
    np.testing.assert_allclose(table.object_position(0), [0.45, -0.1, 0.02], atol=1e-9)
    assert sim.model.site_pos[sim.model.site("pad1").id][:2].tolist() == [0.55, -0.15]
    np.testing.assert_allclose(sim.model.geom_rgba[sim.model.geom("object1").id, :3], [0.15, 0.3, 0.85])


@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_gripper_commands_in_the_robots_form_close_and_open_it(robot):
    sim, table = twin(robot, gripper_force_scale=0.5)
    commander = GripperCommander(table.cfg, sim.spec.gripper_width)
    for width in (0.0, 0.06):
        decision, data = commander.command(np.array([0, 0, 0, width / sim.spec.gripper_width[1] * 2 - 1]),
                                           1.0 + 10 * width, stopped=False)  # fmt: skip
        table.command(data)
        sim.step_to(sim.time + 0.5)
        assert table.width() == pytest.approx(width, abs=2e-3)
        names, positions = table.state_entries()  # what the twin publishes in /joint_states ...
        assert commander.width_from_state(names, positions) == pytest.approx(table.width(), abs=1e-9)  # ... read back
    # the hidden force scale: the hand squeezes with half the force the command asked for
    assert sim.model.actuator_forcerange[sim.model.actuator("gripper").id, 1] == pytest.approx(0.5 * table.cfg.force_n)
    bad = [[np.nan] * len(data), [1.0] * 5, [5.0] * len(data) if robot == "fr3" else [-3.0]]
    for values in bad:
        with pytest.raises(ValueError, match="gripper command"):
            table.command(values)


def test_hidden_cube_and_finger_physics():
    nominal_sim, _ = twin()
    sim, _ = twin(object_mass_scale=2.0, object_friction_scale=0.5, finger_friction_scale=0.3)
    m0, m = nominal_sim.model, sim.model
    body, geom, pad = m.body("object0").id, m.geom("object0").id, m.geom("left_pad").id
    assert m.body_mass[body] == pytest.approx(2.0 * m0.body_mass[body])
    assert m.geom_friction[geom, 0] == pytest.approx(0.5 * m0.geom_friction[geom, 0])
    assert m.geom_friction[pad, 0] == pytest.approx(0.3 * m0.geom_friction[pad, 0])
    arm = m.body(sim.spec.flange_body).id
    assert m.body_mass[arm] == m0.body_mass[arm]  # the arm is not the cube


def test_hidden_camera_light_and_colour_change_the_image_and_nominal_does_not():
    base = render(*twin())
    assert np.array_equal(render(*twin()), base)  # null case: the nominal twin renders the same image
    shifted = render(*twin(colour_shift=[0.1, 0.0, 0.0])).astype(float)
    gain = shifted[..., 0].mean() - base[..., 0].mean()
    assert 15 < gain <= 25.5 and abs(shifted[..., 1].mean() - base[..., 1].mean()) < 1e-9
    assert render(*twin(light_scale=0.4)).mean() < base.mean() - 5
    moved = render(*twin(camera_offset_m=[0.0, 0.05, 0.0], camera_rotation_deg=[0.0, 0.0, 3.0]))
    assert np.abs(moved.astype(float) - base).mean() > 5


def test_the_envs_table_sets_the_twins():
    """An episode driver publishes the env's sampled table: the twin's cubes and pads are where the env's are."""
    from ast_robot.config import EnvConfig
    from ast_robot.envs.instructions import COLOURS
    from ast_robot.envs.pick_place import PickPlaceEnv
    from ast_robot.twin.pickplace import table_of_env

    env = PickPlaceEnv("ur5e", EnvConfig(id="ast_robot/PickPlaceUR5e-v0", n_objects=2, n_pads=2),
                       randomization={"enabled": False})  # fmt: skip
    env.reset(seed=11)
    sim, table = twin()
    table.set_scene(parse_scene(table_of_env(env)))
    for i in range(2):
        np.testing.assert_allclose(table.object_position(i), env.object_pos(i), atol=1e-9)
        np.testing.assert_allclose(sim.data.qpos[table._objects[i] + 3 : table._objects[i] + 7],
                                   env.data.qpos[env._obj_qadr[i] + 3 : env._obj_qadr[i] + 7], atol=1e-9)  # fmt: skip
        np.testing.assert_allclose(sim.model.geom_rgba[sim.model.geom(f"object{i}").id, :3],
                                   COLOURS[env.colour_names["objects"][i]], atol=1e-6)  # float32 colours
    for j in range(2):
        np.testing.assert_allclose(sim.model.site_pos[sim.model.site(f"pad{j}").id, :2],
                                   env.model.site_pos[env.model.site(f"pad{j}").id, :2])  # fmt: skip
    env.close()

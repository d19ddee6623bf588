"""The twin's wrist camera: the envs' camera on the gripper in the twin's own scene, on a mount whose offset only
the twin knows (HiddenParams.wrist_camera_*), moved exactly as the envs' mount jitter moves it."""

from __future__ import annotations

from dataclasses import replace

import mujoco
import numpy as np
import pytest

from ast_robot.config import EnvConfig
from ast_robot.deploy.robot_io import load_robot_io
from ast_robot.envs import wrist
from ast_robot.envs.pick_place import PickPlaceEnv
from ast_robot.twin.hidden import HiddenParams
from ast_robot.twin.pickplace import PickPlaceTable, build_model, parse_scene, table_of_env
from ast_robot.twin.sim import TwinSim

IDS = {"ur5e": "ast_robot/PickPlaceUR5e-v0", "fr3": "ast_robot/PickPlaceFR3-v0"}
MOUNT = {"wrist_camera_offset_m": [0.003, -0.004, 0.002], "wrist_camera_rotation_deg": [1.5, -2.0, 1.0]}


def twin(robot: str, **hidden) -> tuple[TwinSim, PickPlaceTable]:
    params = HiddenParams(**hidden)
    io = load_robot_io(robot)
    sim = TwinSim(robot, params, model=build_model(robot, params, wrist_camera=True), joint_names=io.joint_names)
    return sim, PickPlaceTable(sim, io.gripper, params)


def render(sim: TwinSim, camera: str, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    renderer = mujoco.Renderer(sim.model, *size)
    try:
        renderer.update_scene(sim.data, camera=camera)
        return renderer.render()
    finally:
        renderer.close()


def env_and_twin(robot: str, **hidden) -> tuple[PickPlaceEnv, TwinSim]:
    """A nominal env mid-episode (the gripper above the table) and a twin at the same state on the same table."""
    env = PickPlaceEnv(robot, EnvConfig(id=IDS[robot], observation="deploy", camera=True, instruction=True, n_objects=2,
                                        n_pads=2, wrist_camera=True), randomization={"enabled": False})  # fmt: skip
    env.reset(seed=3)
    for _ in range(6):
        env.step(np.array([0.3, -0.2, -0.6, 1.0]))
    sim, table = twin(robot, **hidden)
    table.set_scene(parse_scene(table_of_env(env)))
    sim.data.qpos[:] = env.data.qpos  # the same builder: the same joints in the same order
    # both at the state's own camera poses: after mj_step the data's camera poses are those of the substep before
    # (mj_step's forward pass precedes its integration), 1.4 mm off at the wrist here, in the env and the twin alike
    mujoco.mj_forward(env.model, env.data)
    mujoco.mj_forward(sim.model, sim.data)
    return env, sim


@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_the_twins_wrist_view_is_the_envs_and_its_hidden_mount_moves_it_as_the_envs_jitter(robot):
    env, sim = env_and_twin(robot)
    nominal = env.render_wrist()
    assert np.array_equal(render(sim, wrist.WRIST_CAMERA), nominal)  # same state, same table: the same pixels
    _, moved = env_and_twin(robot, **MOUNT)
    off = render(moved, wrist.WRIST_CAMERA)
    assert np.abs(off.astype(float) - nominal).mean() > 2  # the hidden mount changes what the policy sees ...
    assert np.array_equal(render(moved, "scene"), render(sim, "scene"))  # ... through the wrist camera only
    jitter = {f"visual_wrist_d{a}": v for a, v in zip("xyz", MOUNT["wrist_camera_offset_m"])}
    jitter.update({f"visual_wrist_{a}": v for a, v in zip(("roll", "pitch", "yaw"), MOUNT["wrist_camera_rotation_deg"])})
    wrist.apply(env.model, jitter, env._wrist_nominal)  # the env's mount jitter of the same values
    mujoco.mj_forward(env.model, env.data)
    assert np.array_equal(env.render_wrist(), off)
    env.close()


def test_without_a_wrist_camera_the_twins_model_is_unchanged():
    plain, with_wrist = build_model("ur5e", HiddenParams()), build_model("ur5e", HiddenParams(), wrist_camera=True)
    assert plain.ncam == 1 and with_wrist.ncam == 2 and with_wrist.camera(0).name == "scene"
    for field in ("body_mass", "geom_size", "jnt_range", "actuator_gainprm", "qpos0"):
        assert np.array_equal(getattr(plain, field), getattr(with_wrist, field)), field
    io = load_robot_io("ur5e")  # a hidden mount on a twin without the camera: nothing to move, no error
    PickPlaceTable(TwinSim("ur5e", model=plain, joint_names=io.joint_names), io.gripper, HiddenParams(**MOUNT))


@pytest.mark.parametrize("field,value", [("wrist_camera_offset_m", [0.0, 0.01]),
                                         ("wrist_camera_rotation_deg", [0.0, float("nan"), 0.0])])  # fmt: skip
def test_a_bad_hidden_mount_is_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"hidden.{field}: expected 3 finite values"):
        twin("ur5e", **{field: value})


def test_the_hidden_mount_is_read_by_the_twin_alone():
    """Learning and analysis learn about the mount only from what the twin's camera shows: no module outside the
    twin (and the CLIs that start it: `sim2real` only checks the file before the loop starts) imports the hidden
    parameters or names the hidden fields."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "ast_robot"
    readers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                     if "twin.hidden" in p.read_text() or "wrist_camera_offset_m" in p.read_text())  # fmt: skip
    assert readers and all(r.startswith(("twin/", "cli/twin.py", "cli/sim2real.py")) for r in readers), readers


def test_the_twins_camera_sizes_come_from_the_flags_the_loop_passes(capsys):
    """The sim-to-real loop starts the twin at the policy's trained sizes; bad sizes are refused in one line."""
    from ast_robot.cli import main
    from ast_robot.robot.contract import DeploymentContract
    from ast_robot.sim2real import twin_camera_sizes

    env = PickPlaceEnv("ur5e", EnvConfig(id=IDS["ur5e"], observation="deploy", camera=True, instruction=True,
                                         n_objects=2, n_pads=2, camera_size=(96, 96), wrist_camera=True),
                       randomization={"enabled": False})  # fmt: skip
    contract = DeploymentContract.from_env(env)
    env.close()
    assert twin_camera_sizes(contract) == {"--camera-size": (96, 96), "--wrist-camera-size": (64, 64)}
    assert not any(twin_camera_sizes(replace(contract, camera_size=None, wrist_camera_size=None)).values())
    assert main(["twin", "--wrist-camera-size", "0", "64"]) == 2
    assert "--wrist-camera-size: expected a height and a width in 1..4096 pixels, got [0, 64]" in capsys.readouterr().err

"""Pick-and-place from pixels and language on the robot side: the runner builds exactly the env's deployable
observation (proprioception with the measured gripper opening, the camera image, the instruction bytes),
commands the gripper through the safety module in the robot's own interface, and the contract asks for
camera + instruction + gripper, not goals or object poses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ast_robot.config import DeployConfig, EnvConfig
from ast_robot.deploy.loader import check_contract, read_contract
from ast_robot.deploy.robot_io import load_robot_io
from ast_robot.deploy.runner import PolicyRunner
from ast_robot.envs.pick_place import PickPlaceEnv
from ast_robot.robot.contract import ContractError, DeploymentContract
from ast_robot.robot.safety.trust import ACQUIRE_STATES

IDS = {"ur5e": "ast_robot/PickPlaceUR5e-v0", "fr3": "ast_robot/PickPlaceFR3-v0"}


def deploy_env(robot: str) -> PickPlaceEnv:
    cfg = EnvConfig(id=IDS[robot], observation="deploy", camera=True, instruction=True, n_objects=2, n_pads=2)
    return PickPlaceEnv(robot, cfg, randomization={"enabled": False})  # no sensor noise: numbers compare exactly


class Replay:
    def __init__(self, actions: np.ndarray) -> None:
        self.actions, self.seen = actions, []

    def act(self, obs):
        self.seen.append({k: np.array(v) for k, v in obs.items()})
        return self.actions[len(self.seen) - 1]


def replay_runner(env: PickPlaceEnv, robot: str, seed: int, steps: int, close_from: int) -> tuple[np.ndarray, Replay, PolicyRunner]:
    """Random actions (the hand told to close from step ``close_from`` on: its opening enters the observation),
    a policy replaying them, and a runner serving it with the env's contract on ``robot``'s driver wiring."""
    actions = np.random.default_rng(seed).uniform(-1.2, 1.2, (steps, 4))
    actions[close_from:, 3] = -1.0
    policy = Replay(actions)
    runner = PolicyRunner.for_robot(policy, robot, DeployConfig(robot=robot, control_hz=env.cfg.control_hz),
                                    contract=DeploymentContract.from_env(env), io=load_robot_io(robot))  # fmt: skip
    return actions, policy, runner


def tick_and_step(env: PickPlaceEnv, runner: PolicyRunner, policy: Replay, info: dict, k: int) -> tuple:
    """Step ``k``: the runner's tick on the env's joints (a trust chain of states first), the policy asked
    (asserted), then the env's step with the same action. (the runner's step result, obs, info)"""
    now = k * env.control_dt
    for _ in range(ACQUIRE_STATES if k == 0 else 1):
        runner.observe_joint_state(info["joint_positions"], info["joint_velocities"], now)
    result = runner.step(now)
    assert len(policy.seen) == k + 1, f"the runner did not ask the policy at step {k}: {runner.missing_inputs(now)}"
    obs, _, _, _, info = env.step(policy.actions[k])
    return result, obs, info


def gripper_state(runner: PolicyRunner, env: PickPlaceEnv) -> tuple[list[str], list[float]]:
    """The gripper's joint-state entries as the robot's driver publishes them, from the env's fingers."""
    cfg = runner.gripper.cfg
    fingers = [float(env.data.qpos[env.model.jnt_qposadr[env.model.joint(j).id]]) for j in env.robot.gripper_joints]
    if cfg.interface == "width_speed_force":
        return list(cfg.state_joints), fingers
    return list(cfg.state_joints), [runner.gripper.position_of(sum(fingers))]


@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_deploy_observation_equals_the_envs(robot):
    """Same state, same image: every observation the policy gets on the robot equals the env's, number for
    number (the measured gripper opening included: the gripper closes on the way); bgr8 frames too."""
    env = deploy_env(robot)
    actions, policy, runner = replay_runner(env, robot, seed=4, steps=14, close_from=8)
    obs, info = env.reset(seed=7)
    runner.set_instruction(env.instruction)
    expected, grips = [], []
    for k in range(len(actions)):
        now = k * env.control_dt
        names, positions = gripper_state(runner, env)
        runner.set_gripper_width(runner.gripper.width_from_state(names, positions))
        frame = obs["camera"] if k % 2 else np.ascontiguousarray(obs["camera"][:, :, ::-1])
        runner.camera_input.offer("rgb8" if k % 2 else "bgr8", 64, 64, 64 * 3, frame.tobytes(), now)
        expected.append(obs)
        result, obs, info = tick_and_step(env, runner, policy, info, k)
        grips.append(result.gripper)
    widths = [e["observation"][2 * env.robot.n_joints + 6] for e in expected]
    assert max(widths) - min(widths) > 0.02  # the opening moved: the check covers the measured width
    for k, (sim, real) in enumerate(zip(expected, policy.seen, strict=True)):
        assert set(real) == set(sim) == {"observation", "camera", "instruction"}, k
        np.testing.assert_allclose(real["observation"], sim["observation"], rtol=0, atol=1e-12, err_msg=f"step {k}")
        np.testing.assert_array_equal(real["camera"], sim["camera"])
        np.testing.assert_array_equal(real["instruction"], sim["instruction"])
    sent = [g for g in grips if g is not None]
    assert 3 <= len(sent) <= 6  # 14 steps at 25 Hz = 0.56 s under the 10 Hz gripper rate limit
    g = runner.gripper
    closed = 0.0 if g.cfg.interface == "width_speed_force" else g.position_of(0.0)  # width m or knuckle rad
    assert [c for c in grips[8:] if c is not None][0][0] == pytest.approx(closed)  # the close went out
    env.close()


@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_gripper_command_data_per_interface(robot):
    runner = PolicyRunner.from_checkpoint("scripted:close-gripper", robot, DeployConfig(robot=robot), synchronous=True)
    g = runner.gripper
    decision, data = g.command(np.array([0.0, 0.0, 0.0, 1.0]), 0.0, stopped=False)  # open
    if robot == "fr3":  # [width, speed, force] for the relay: open = Move (force 0)
        assert data == [0.08, 0.05, 0.0]
        _, data = g.command(np.array([0, 0, 0, -1.0]), 1.0, stopped=False)
        assert data == [0.0, 0.05, g.cfg.force_n] and g.cfg.force_n == 70.0  # close = Grasp, configured force
        assert g.width_from_state(["fr3_finger_joint1", "fr3_finger_joint2"], [0.01, 0.01]) == pytest.approx(0.02)
    else:  # [knuckle position] for a forward position controller: 0 open .. 0.8 closed
        assert data == [pytest.approx(0.0)]
        _, data = g.command(np.array([0, 0, 0, -1.0]), 1.0, stopped=False)
        assert data == [pytest.approx(0.8)]
        assert g.width_from_state(["robotiq_85_left_knuckle_joint"], [0.4]) == pytest.approx(0.0425)
    for hostile in (np.array([0, 0, 0, np.nan]), np.array([]), "close", None):
        assert g.command(hostile, 5.0 + len(str(hostile)), stopped=False)[1] is None
    assert g.command(np.array([0, 0, 0, -1.0]), 9.0, stopped=True)[1] is None
    assert g.width_from_state(["other"], [0.1]) is None
    assert g.width_from_state(list(g.cfg.state_joints), [np.nan] * len(g.cfg.state_joints)) is None


def test_camera_rate_age_and_size_are_checked():
    from ast_robot.deploy.camera import CameraInput
    from ast_robot.deploy.inputs import Rejected

    cam = CameraInput((64, 64), rate_hz=10.0)
    big = np.arange(128 * 96 * 3, dtype=np.uint8).reshape(96, 128, 3)
    img = cam.offer("rgb8", 96, 128, 128 * 3, big.tobytes(), 0.0)
    assert img.shape == (64, 64, 3)  # resized to the trained size
    for k in range(3):  # a burst after a busy executor passes ...
        cam.offer("rgb8", 96, 128, 128 * 3, big.tobytes(), 0.001 * (k + 1))
    with pytest.raises(Rejected, match="faster than 40 Hz"):  # ... a flood does not
        cam.offer("rgb8", 96, 128, 128 * 3, big.tobytes(), 0.005)
    accepted = 0
    for k in range(1000):  # 1 kHz for 1 s: about 40 frames pass
        try:
            cam.offer("rgb8", 96, 128, 128 * 3, big.tobytes(), 0.01 + k * 0.001)
            accepted += 1
        except Rejected:
            pass
    assert 38 <= accepted <= 45, accepted
    with pytest.raises(Rejected, match="encoding 'yuv422'"):
        cam.offer("yuv422", 96, 128, 128 * 2, bytes(96 * 128 * 2), 3.0)
    with pytest.raises(Rejected, match="data has"):
        cam.offer("rgb8", 96, 128, 128 * 3, bytes(10), 4.0)
    last = cam.received_s
    assert cam.latest(last + 0.29) is not None and cam.latest(last + 0.31) is None  # 3 frames at 10 Hz, then stale
    with pytest.raises(ValueError, match="camera_rate_hz"):
        CameraInput((64, 64), 0.0)


def test_runner_holds_until_camera_and_instruction_arrive_and_when_the_camera_stops():
    runner = PolicyRunner.from_checkpoint("scripted:close-gripper", "ur5e", DeployConfig(), synchronous=True)
    q = np.array(runner.limits.lower + runner.limits.upper) / 2
    for _ in range(ACQUIRE_STATES):
        runner.observe_joint_state(q, None, 0.0)
    result = runner.step(0.0)
    assert result.decision.held and result.action is None
    assert "no recent camera image" in result.decision.reasons[0] and "no instruction" in result.decision.reasons[0]
    assert "no goal" not in result.decision.reasons[0]  # the deployable layout has none
    runner.set_instruction("put the red block on the blue pad")
    runner.camera_input.offer("rgb8", 64, 64, 192, bytes(64 * 64 * 3), 0.0)
    runner.observe_joint_state(q, None, 0.008)
    result = runner.step(0.008)
    assert result.action is not None and not result.decision.held and result.gripper == [pytest.approx(0.8)]
    runner.observe_joint_state(q, None, 0.5)
    result = runner.step(0.5)  # the last frame is 0.5 s old: hold, no policy call
    assert result.action is None and "no recent camera image" in result.decision.reasons[0]


# ------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_deploy_layout_needs_camera_instruction_and_gripper_not_goals(robot):
    env = deploy_env(robot)
    contract = DeploymentContract.from_env(env)
    env.close()
    assert set(contract.interfaces) == {"joint_states", "arm_command", "gripper_command", "camera", "instruction"}
    check_contract(contract, robot)  # the shipped deploy config serves it
    io = load_robot_io(robot)
    for topic, name in (("gripper_command", "gripper_command"), ("camera", "camera"), ("instruction", "instruction")):
        unwired = SimpleNamespace(robot=robot, command_interface=io.command_interface,
                                  topics=SimpleNamespace(**{**vars(io.topics), topic: ""}))  # fmt: skip
        with pytest.raises(ContractError, match=rf"needs robot interfaces \['{name}'\]"):
            check_contract(contract, robot, unwired)
    with pytest.raises(ContractError, match="the policy observes"):  # a layout the runner does not build
        check_contract(replace(contract, observation={**contract.observation, "object_pos": {"shape": [3]}}), robot)


def test_privileged_pickplace_needs_the_tracker_and_the_table():
    env = PickPlaceEnv("ur5e", EnvConfig(id=IDS["ur5e"]), randomization={"enabled": False})
    contract = DeploymentContract.from_env(env)
    env.close()
    assert {"tracker", "table"} <= set(contract.interfaces) and "camera" not in contract.interfaces
    io = load_robot_io("ur5e")
    unwired = SimpleNamespace(robot="ur5e", command_interface=io.command_interface,
                              topics=SimpleNamespace(**{**vars(io.topics), "object_poses": "", "twin_scene": ""}))  # fmt: skip
    with pytest.raises(ContractError, match=r"task 'pickplace' needs robot interfaces \['tracker', 'table'\]"):
        check_contract(contract, "ur5e", unwired)


@pytest.mark.slow
def test_a_trained_pixel_checkpoint_deploys_and_acts_on_the_runners_observation(tmp_path):
    """A real (tiny) BC training in the deployable layout: its checkpoint is served, and the trained
    policy acts on what the runner builds."""
    from ast_robot.config import load_config
    from ast_robot.trainers import TRAINERS

    path = Path(__file__).resolve().parents[2] / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
    cfg = load_config(path, [f"run_root={tmp_path}", "name=px", "train.steps=3", "train.n_demos=1",
                             "train.eval_episodes=1", "train.batch_size=8", "gate.enabled=false",
                             "randomization.visual.enabled=false"])  # fmt: skip
    TRAINERS.get("bc")(cfg, None, show_progress=False)
    checkpoint = tmp_path / "px" / "policy"
    assert "gripper_command" in read_contract(checkpoint, "ur5e").interfaces
    runner = PolicyRunner.from_checkpoint(checkpoint, "ur5e", DeployConfig(), synchronous=True)
    q = np.array(runner.limits.lower + runner.limits.upper) / 2
    for _ in range(ACQUIRE_STATES):
        runner.observe_joint_state(q, None, 0.0)
    runner.set_instruction("put the red block on the blue pad")
    runner.camera_input.offer("rgb8", 64, 64, 192, bytes(64 * 64 * 3), 0.0)
    result = runner.step(0.0)
    assert result.action is not None and result.action.shape == (4,) and np.all(np.isfinite(result.action))


@pytest.mark.parametrize("change,message", [("force_n: 100.0", "gripper.force_n: 100.0 N is outside the franka_hand"),
                                            ("speed_mps: 0.5", "gripper.speed_mps"),
                                            ("model: suction", "gripper.model")])  # fmt: skip
def test_a_gripper_section_beyond_the_data_sheet_is_refused_naming_the_file(tmp_path, change, message):
    from ast_robot.config import ConfigError

    text = (Path(__file__).resolve().parents[2] / "configs/deploy/fr3.yaml").read_text()
    key = change.split(":")[0]
    lines = [line for line in text.splitlines() if not line.strip().startswith(f"{key}:")]
    path = tmp_path / "fr3.yaml"
    path.write_text("\n".join(lines) + f"\n  {change}\n")
    with pytest.raises((ValueError, ConfigError), match=message) as err:
        load_robot_io(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_the_shipped_grasp_force_is_the_one_the_policy_was_trained_with(robot):
    """Train as you deploy: the robot's deploy YAML grasps with the force of the envs' gripper actuator (the
    nominal of the randomized gripper_force); a 40 N deployment of a policy trained at 100 N was a silent gap."""
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.robot.specs import get_robot, load_model

    model = load_model(robot, "pickplace", n_objects=2, n_pads=2)
    trained = model.actuator_forcerange[model.actuator(get_robot(robot).gripper_actuator).id, 1]
    assert load_robot_io(robot).gripper.force_n == pytest.approx(trained)

"""The wrist camera on the robot side (issues 20/21): a checkpoint in the layout ``pickplace-deploy-wrist-v1`` says
it needs a wrist image of its size, the deployment serves it from its own topic with the scene camera's checks
(encoding, size, rate, age), holds without it, and builds exactly the env's observation from the two images."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from ast_robot.config import DeployConfig, EnvConfig
from ast_robot.deploy.loader import check_contract
from ast_robot.deploy.robot_io import load_robot_io
from ast_robot.deploy.runner import PolicyRunner
from ast_robot.deploy.session import DeploymentSession
from ast_robot.envs.pick_place import PickPlaceEnv
from ast_robot.robot.contract import ContractError, DeploymentContract
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from tests.deploy.test_pickplace_deploy import IDS, Replay, gripper_state, replay_runner, tick_and_step


def wrist_env(robot: str, size: tuple[int, int] = (64, 64), wrist: tuple[int, int] = (48, 40),
              randomized: bool = False) -> PickPlaceEnv:
    """The deployable pick-and-place env with the wrist camera (a wrist size unlike the scene's: no mix-up)."""
    cfg = EnvConfig(id=IDS[robot], observation="deploy", camera=True, instruction=True, n_objects=2, n_pads=2,
                    camera_size=size, wrist_camera=True, wrist_camera_size=wrist)  # fmt: skip
    return PickPlaceEnv(robot, cfg, randomization={"visual": {"enabled": True}} if randomized else {"enabled": False})


@pytest.fixture(scope="module")
def contract() -> DeploymentContract:
    env = wrist_env("ur5e")
    try:
        return DeploymentContract.from_env(env)
    finally:
        env.close()


def runner_of(contract: DeploymentContract, policy=None) -> PolicyRunner:
    policy = policy or Replay(np.zeros((1000, 4)))
    return PolicyRunner.for_robot(policy, contract.robot, DeployConfig(robot=contract.robot), contract=contract,
                                  io=load_robot_io(contract.robot), synchronous=True)  # fmt: skip


def frame(h: int, w: int, value: int = 0) -> bytes:
    return bytes([value]) * (h * w * 3)


# ------------------------------------------------------------------------------------------- the contract
def test_the_contract_says_it_needs_a_wrist_image_of_its_size(contract):
    assert contract.observation_layout == "pickplace-deploy-wrist-v1"
    assert contract.wrist_camera_size == (48, 40) and contract.camera_size == (64, 64)
    assert "wrist_camera" in contract.interfaces and contract.observation["wrist_camera"]["shape"] == [48, 40, 3]
    assert DeploymentContract.from_dict(contract.to_dict()) == contract  # stored and read back
    check_contract(contract, "ur5e")  # the shipped deploy config serves it (its wrist_camera topic)


def test_a_contract_written_before_the_field_reads_its_wrist_size_from_the_observation(contract):
    """The wrist students of issue 20 were trained before ``wrist_camera_size`` existed: their contract's
    ``wrist_camera`` entry says what they need."""
    old = contract.to_dict()
    del old["wrist_camera_size"]
    old["interfaces"] = [i for i in old["interfaces"] if i != "wrist_camera"]
    assert DeploymentContract.from_dict(old) == contract
    scene_only = {**old, "observation": {k: v for k, v in old["observation"].items() if k != "wrist_camera"},
                  "observation_layout": "pickplace-deploy-v1"}  # fmt: skip
    assert DeploymentContract.from_dict(scene_only).wrist_camera_size is None  # null case: no wrist, none asked


def test_what_cannot_be_served_is_refused_in_one_line(contract):
    io = load_robot_io("ur5e")
    unwired = SimpleNamespace(robot="ur5e", command_interface=io.command_interface,
                              topics=SimpleNamespace(**{**vars(io.topics), "wrist_camera": ""}))  # fmt: skip
    with pytest.raises(ContractError, match=r"needs robot interfaces \['wrist_camera'\]") as err:
        check_contract(contract, "ur5e", unwired)
    assert "\n" not in str(err.value)
    with pytest.raises(ContractError, match="observation layout 'pickplace-privileged-wrist-v1' is not one"):
        check_contract(replace(contract, observation_layout="pickplace-privileged-wrist-v1"), "ur5e")
    with pytest.raises(ContractError, match="the policy observes"):  # a wrist size its observation does not have
        check_contract(replace(contract, wrist_camera_size=(64, 64)), "ur5e")
    no_size = replace(contract, wrist_camera_size=None, interfaces=tuple(i for i in contract.interfaces
                                                                          if i != "wrist_camera"))  # fmt: skip
    with pytest.raises(ContractError, match="the policy observes"):  # what deployment refused before this change
        check_contract(no_size, "ur5e")


# ------------------------------------------------------------------------------------------- the runner
def test_the_runner_holds_without_a_recent_wrist_image_as_without_a_scene_image(contract):
    runner = runner_of(contract)
    q = np.array(runner.limits.lower + runner.limits.upper) / 2
    for _ in range(ACQUIRE_STATES):
        runner.observe_joint_state(q, None, 0.0)
    runner.set_instruction("put the red block on the blue pad")
    runner.camera_input.offer("rgb8", 64, 64, 192, frame(64, 64), 0.0)
    result = runner.step(0.0)
    assert result.action is None and result.decision.held and result.gripper is None
    assert "no recent wrist camera image" in result.decision.reasons[0]
    assert "no recent camera image" not in result.decision.reasons[0]
    big = np.zeros((480, 640, 3), np.uint8)  # a real wrist camera's frame: resized as trained
    assert runner.wrist_input.offer("rgb8", 480, 640, 640 * 3, big.tobytes(), 0.0).shape == (48, 40, 3)
    runner.observe_joint_state(q, None, 0.008)
    result = runner.step(0.008)
    assert result.action is not None and not result.decision.held
    assert runner.policy.seen[-1]["wrist_camera"].shape == (48, 40, 3)
    runner.camera_input.offer("rgb8", 64, 64, 192, frame(64, 64), 0.4)  # the scene camera goes on ...
    runner.observe_joint_state(q, None, 0.45)
    result = runner.step(0.45)  # ... the wrist camera stopped 0.45 s ago (> 3 frames, at least 0.2 s): hold, no call
    age = runner.wrist_input.max_age_s  # the YAML's camera_rate_hz (25 Hz: 3 periods, at least MIN_MAX_AGE_S 0.2 s)
    assert age == max(3.0 / load_robot_io("ur5e").camera_rate_hz, 0.2) < 0.45
    assert result.action is None and f"no recent wrist camera image (none within {age:g} s)" in result.decision.reasons[0]
    assert len(runner.policy.seen) == 1


def test_the_session_checks_wrist_frames_as_scene_frames(contract):
    session = DeploymentSession(runner_of(contract), load_robot_io("ur5e").joint_names, "ur5e",
                                require_safety_mode=False)  # fmt: skip
    assert session.sees_wrist_camera
    assert session.on_wrist_image("rgb8", 48, 40, 120, frame(48, 40), 0.0) is None
    assert "wrist_image rejected: image encoding 'yuv422'" in session.on_wrist_image("yuv422", 48, 40, 80,
                                                                                      bytes(48 * 80), 0.5)  # fmt: skip
    assert "data has" in session.on_wrist_image("rgb8", 48, 40, 120, bytes(7), 0.6)
    for k in range(4):  # a burst passes ...
        assert session.on_wrist_image("rgb8", 48, 40, 120, frame(48, 40), 1.0 + 0.001 * k) is None
    cap = 4 * load_robot_io("ur5e").camera_rate_hz  # 4x the camera's rate (100 Hz at the YAML's 25)
    assert f"wrist camera frames faster than {cap:g} Hz" in session.on_wrist_image("rgb8", 48, 40, 120, frame(48, 40), 1.005)
    assert session.rejections["wrist_image"] == 3 and session.rejections["image"] == 0
    assert "wrist_image=3" in session.rejection_report(2.0)[1]
    scene_only = DeploymentSession(PolicyRunner.from_checkpoint("scripted:close-gripper", "ur5e", DeployConfig(),
                                                                synchronous=True), load_robot_io("ur5e").joint_names, "ur5e")  # fmt: skip
    assert not scene_only.sees_wrist_camera  # the node does not subscribe; a frame given anyway is refused
    assert "observes no wrist camera" in scene_only.on_wrist_image("rgb8", 48, 40, 120, frame(48, 40), 0.0)


# ------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("robot,randomized", [("ur5e", False), ("fr3", True)])
def test_deploy_wrist_observation_equals_the_envs(robot, randomized):
    """Same state, same two images (real MuJoCo renders, the scene camera's and the wrist camera's, each its own
    size; with randomization: mount jitter, lights, colours and image noise in them): every observation the
    policy gets on the robot equals the env's, number for number; the wrist frames arrive as bgr8 or rgb8."""
    env = wrist_env(robot, randomized=randomized)
    actions, policy, runner = replay_runner(env, robot, seed=5, steps=12, close_from=7)
    obs, info = env.reset(seed=11)
    if randomized:
        assert {"visual_wrist_dx", "visual_wrist_roll", "visual_image_noise"} <= set(info["dr"])
    runner.set_instruction(env.instruction)
    expected = []
    for k in range(len(actions)):
        now = k * env.control_dt
        runner.set_gripper_width(runner.gripper.width_from_state(*gripper_state(runner, env)))
        runner.camera_input.offer("rgb8", 64, 64, 64 * 3, obs["camera"].tobytes(), now)
        wrist = obs["wrist_camera"] if k % 2 else np.ascontiguousarray(obs["wrist_camera"][:, :, ::-1])
        runner.wrist_input.offer("rgb8" if k % 2 else "bgr8", 48, 40, 40 * 3, wrist.tobytes(), now)
        expected.append(obs)
        _, obs, info = tick_and_step(env, runner, policy, info, k)
    env.close()
    changed = [np.abs(a["wrist_camera"].astype(int) - b["wrist_camera"]).mean() for a, b in zip(expected, expected[1:])]
    assert max(changed) > 1.0  # the wrist view moved with the gripper: the check covers changing frames
    for k, (sim, real) in enumerate(zip(expected, policy.seen, strict=True)):
        assert set(real) == set(sim) == {"observation", "camera", "wrist_camera", "instruction"}, k
        np.testing.assert_allclose(real["observation"], sim["observation"], rtol=0, atol=1e-12, err_msg=f"step {k}")
        for key in ("camera", "wrist_camera", "instruction"):
            np.testing.assert_array_equal(real[key], sim[key], err_msg=f"{key} at step {k}")

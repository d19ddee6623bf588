"""The gripper width the policy observes is the same in training and on the robot (issue 21's trap): a
deploy-pipeline env observes what the runner will see, and the contract records which it was."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ast_robot.config import DeployConfig, EnvConfig
from ast_robot.config.deploy import driver_command_interface
from ast_robot.deploy.robot_io import load_robot_io
from ast_robot.deploy.runner import PolicyRunner, ReachController
from ast_robot.envs.pick_place import PickPlaceEnv
from ast_robot.envs.reach import ReachEnv
from ast_robot.robot.contract import ContractError, DeploymentContract

NO_DR = {"enabled": False}


def _width_entries(env, actions: np.ndarray) -> tuple[list[float], list[float]]:
    """(the observation's gripper-width entry, the fingers' opening) after each action."""
    seen, fingers = [], []
    env.reset(seed=3)
    slot = 2 * env.robot.n_joints + 6  # kernels.proprio's gripper entry
    for a in actions:
        obs, _, _, _, info = env.step(a)
        seen.append(float(obs["observation"][slot]))
        fingers.append(float(info["gripper_width"]))
    return seen, fingers


def _closing(n: int = 10) -> np.ndarray:
    actions = np.zeros((n, 4))
    actions[:, 3] = -1.0  # hold the TCP, close the gripper (after two steps open)
    actions[:2, 3] = 1.0
    return actions


@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_a_deploy_pipeline_pickplace_env_observes_the_measured_opening(robot):
    """The runner of a pick-and-place policy reads the opening from the gripper's joint states: the env that
    trains as it deploys observes that opening too (it read the open width, whatever the fingers did)."""
    deploy = DeployConfig(robot=robot, command_interface=driver_command_interface(robot))  # its driver's controller
    env = PickPlaceEnv(robot, EnvConfig(observation="deploy", camera=True, instruction=True, deploy_pipeline=True,
                                           n_objects=2, n_pads=2), NO_DR, deploy=deploy)
    seen, fingers = _width_entries(env, _closing())
    assert fingers[0] - fingers[-1] > 0.02  # the fingers closed
    np.testing.assert_allclose(seen, fingers, rtol=0, atol=1e-12)
    assert env.gripper_observed == "measured" == DeploymentContract.from_env(env).gripper_observed
    env.close()


def test_a_deploy_pipeline_reach_env_observes_the_open_width_as_its_runner_does():
    """Null case: reach commands no gripper (no gripper state at deployment), so its entry stays open; and the
    fingers stay open whatever the action's gripper entry says, as the twin holds them (the deployment sends it
    nowhere: a pipeline env that closed them trained on another tool than the deployed one)."""
    env = ReachEnv("ur5e", EnvConfig(deploy_pipeline=True), NO_DR)
    seen, fingers = _width_entries(env, _closing())
    np.testing.assert_allclose(fingers, env.robot.gripper_width[1], rtol=0, atol=1e-6)
    assert seen == [env.robot.gripper_width[1]] * len(seen)
    assert env.gripper_observed == "open" == DeploymentContract.from_env(env).gripper_observed
    env.close()


@pytest.mark.parametrize("observed,expected", [("measured", 0.01), (None, 0.01), ("open", 0.085)])
def test_the_runner_observes_the_gripper_as_the_contract_says(observed, expected):
    """None: a contract written before the field existed keeps the runner's earlier behaviour (measured)."""
    env = PickPlaceEnv("ur5e", EnvConfig(observation="deploy", camera=True, instruction=True, n_objects=2,
                                         n_pads=2), NO_DR)  # fmt: skip
    contract = replace(DeploymentContract.from_env(env), gripper_observed=observed)
    env.close()
    runner = PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig(), contract=contract, io=load_robot_io("ur5e"))
    runner.set_gripper_width(0.01)
    q = np.zeros(6)
    vector, _ = runner.observe(q, q, 0.0)
    assert vector[2 * 6 + 6] == pytest.approx(expected)


def test_contracts_without_the_field_load_and_a_bad_value_is_refused_naming_it():
    env = ReachEnv("ur5e", EnvConfig(), NO_DR)
    stored = DeploymentContract.from_env(env).to_dict()
    env.close()
    assert stored["gripper_observed"] == "measured"  # no pipeline: the env reads its fingers
    del stored["gripper_observed"]
    assert DeploymentContract.from_dict(stored).gripper_observed is None
    with pytest.raises(ContractError, match=r"gripper_observed 'closed'; allowed: \['measured', 'open'\]"):
        DeploymentContract.from_dict({**stored, "gripper_observed": "closed"}, "ckpt/contract.json")

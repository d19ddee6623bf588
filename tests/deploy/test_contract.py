"""The checkpoint is the deployment contract: every robot trainer writes it, the runner is built from it, and
what a deployment cannot serve is refused in one line before a single command is sent.

Real tiny trainings (BC and SAC, both arms), each trained once for this module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ast_robot.config import DeployConfig, load_config
from ast_robot.deploy.loader import check_contract, read_contract
from ast_robot.deploy.runner import PolicyRunner
from ast_robot.robot.contract import CONTRACT_FILE, STATE_KEY, ContractError, DeploymentContract
from ast_robot.run_layout import POLICY_DIR
from ast_robot.trainers import TRAINERS
from ast_robot.trainers.common import load_actor
from tests.deploy.test_runner import trusted

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
BASE = Path(__file__).resolve().parents[2] / "configs/experiments/base.yaml"
ENV_IDS = {"ur5e": "ast_robot/ReachUR5e-v0", "fr3": "ast_robot/ReachFR3-v0"}
TINY = {"bc": ["train.steps=5", "train.n_demos=2", "train.eval_episodes=1", "train.batch_size=32"],
        "sac": ["train.steps=120", "train.learning_starts=100", "train.eval_every=120", "train.eval_episodes=1",
                "train.batch_size=32"]}  # fmt: skip


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    """``train(kind, robot, *overrides) -> (cfg, run dir)``: a tiny real training, each one once per module."""
    root, done = tmp_path_factory.mktemp("runs"), {}

    def run(kind: str, robot: str, *overrides: str):
        key = (kind, robot, overrides)
        if key not in done:
            name = f"{kind}_{robot}_{len(done)}"
            cfg = load_config(BASE, [f"run_root={root}", f"name={name}", f"train.type={kind}", "policy.type=mlp",
                                     "policy.hidden_sizes=[16, 16]", "gate.enabled=false", f"env.id={ENV_IDS[robot]}",
                                     *TINY[kind], *overrides])  # fmt: skip
            TRAINERS.get(kind)(cfg, None, show_progress=False)
            done[key] = (cfg, root / name)
        return done[key]

    return run


def deploy_path(kind: str, run_dir: Path) -> Path:
    """What an operator passes to `ast-robot deploy`: a BC run's policy folder, a SAC run folder."""
    return run_dir / POLICY_DIR if kind == "bc" else run_dir


@pytest.mark.parametrize("kind", ["bc", "sac"])
@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_checkpoint_deploys_and_acts_as_trained(train, kind, robot):
    """The runner built from a checkpoint asks the policy ``ast-robot eval`` loads, with the observation
    the envs build, at the training rate, and moves the arm through the trained action scaling."""
    if kind == "sac":
        pytest.importorskip("stable_baselines3")
    from ast_robot.twin.sim import TwinSim

    cfg, run_dir = train(kind, robot)
    runner = PolicyRunner.from_checkpoint(deploy_path(kind, run_dir), robot, DeployConfig(robot=robot), synchronous=True)
    contract = runner.contract
    assert (contract.robot, contract.env_id, contract.task) == (robot, ENV_IDS[robot], "reach")
    assert contract.control_hz == cfg.env.control_hz and runner.scheduler.period_s == pytest.approx(1 / 25)
    assert runner.action_map.step_m == pytest.approx(cfg.env.max_ee_step * 25 / 125)
    sim = TwinSim(robot)
    sim.reset()
    q, dq, _ = sim.joint_state()
    trusted(runner, q, dq, sim.time)
    runner.set_goal([0.45, 0.1, 0.25])
    obs = runner.observation(sim.time)
    runner.reset()  # the step below builds the same observation again (no TCP velocity or target yet)
    result = runner.step(sim.time)
    expected = load_actor(cfg, run_dir)(obs)
    np.testing.assert_allclose(result.action, expected, atol=1e-6)
    assert not result.decision.held and result.decision.positions.shape == (len(q),)
    runner.scheduler.close()


def test_a_checkpoint_at_another_rate_and_step_deploys_with_them(train):
    cfg, run_dir = train("bc", "ur5e", "env.control_hz=50", "env.max_ee_step=0.02", "env.success_threshold=0.03")
    runner = PolicyRunner.from_checkpoint(run_dir / POLICY_DIR, "ur5e", DeployConfig(control_hz=125.0), synchronous=True)
    default = PolicyRunner.for_robot(runner.policy, "ur5e", DeployConfig(control_hz=125.0))  # EnvConfig() values
    assert runner.scheduler.period_s == pytest.approx(1 / 50) and default.scheduler.period_s == pytest.approx(1 / 25)
    from ast_robot.robot.specs import get_robot

    q = np.array(get_robot("ur5e").home_qpos)
    tcp = runner.ee_at(q)
    for r, step, lead in ((runner, 0.02 * 50 / 125, 0.04), (default, 0.05 * 25 / 125, 0.10)):
        r.action_map(np.array([1.0, 0.0, -1.0, 1.0]), q, q)  # one tick of full-scale action
        np.testing.assert_allclose(r.action_map.ee_cmd - tcp, [step, 0.0, -step], atol=1e-12)
        assert r.action_map.lead_m == pytest.approx(lead)
    assert runner.success_threshold == 0.03 and default.success_threshold == 0.05
    from ast_robot.deploy.session import DeploymentSession

    session = DeploymentSession(runner, list(get_robot("ur5e").joint_names), "ur5e")
    assert session.episodes.success_radius == 0.03  # the deployment judges success as training did


def test_a_joint_delta_contract_deploys_joint_steps():
    from ast_robot.envs.reach import ReachEnv
    from ast_robot.robot.actions import JointDeltaAction
    from ast_robot.robot.specs import get_robot

    env = ReachEnv("fr3", {"id": ENV_IDS["fr3"], "action_mode": "joint_delta", "max_joint_step": 0.08})
    contract = DeploymentContract.from_env(env)
    assert contract.action_size == 8 and contract.action_mode == "joint_delta"
    runner = PolicyRunner.for_robot(_Zero(), "fr3", DeployConfig(robot="fr3", control_hz=100.0), contract=contract)
    assert isinstance(runner.action_map, JointDeltaAction)
    q = np.array(get_robot("fr3").home_qpos)
    action = np.array([1.0, -1.0, 0.5, 0, 0, 0, 2.0, 1.0])  # beyond [-1, 1] is clipped, as in the env
    np.testing.assert_allclose(runner.action_map(action, q, q) - q, 0.08 * 25 / 100 * np.clip(action[:7], -1, 1),
                               atol=1e-12)  # fmt: skip


class _Zero:
    def act(self, obs):
        return np.zeros(8)


# ----------------------------------------------------------------------------------------------- refusals
def test_a_checkpoint_for_another_robot_is_refused(train):
    _, run_dir = train("bc", "fr3")
    with pytest.raises(ContractError, match=r"trained for robot 'fr3' .* deploying to 'ur5e'"):
        PolicyRunner.from_checkpoint(run_dir / POLICY_DIR, "ur5e", DeployConfig())


def test_a_task_whose_interfaces_the_robot_lacks_is_refused(train):
    _, run_dir = train("bc", "ur5e", "env.id=ast_robot/PickPlaceUR5e-v0")
    contract = read_contract(run_dir / POLICY_DIR, "ur5e")
    assert contract.task == "pickplace" and "gripper_command" in contract.interfaces
    # the privileged layout observes the cubes: served by a tracker and the operator's table (deploy.tracker)
    runner = PolicyRunner.from_checkpoint(run_dir / POLICY_DIR, "ur5e", DeployConfig())
    assert runner.tracked and runner.tracker.n_objects == 3
    from ast_robot.deploy.robot_io import load_robot_io

    io = load_robot_io("ur5e")
    untracked = SimpleNamespace(robot="ur5e", command_interface=io.command_interface,
                                topics=SimpleNamespace(**{**vars(io.topics), "object_poses": ""}))  # fmt: skip
    with pytest.raises(ContractError, match=r"task 'pickplace' needs robot interfaces \['tracker'\] that the "
                                            r"deploy config of ur5e"):  # fmt: skip
        check_contract(contract, "ur5e", untracked)


def _sac_copy(train, tmp_path: Path, **changes) -> Path:
    pytest.importorskip("stable_baselines3")
    _, run_dir = train("sac", "ur5e")
    copy = tmp_path / "sac"
    shutil.copytree(run_dir, copy, symlinks=True)
    files = [copy / CONTRACT_FILE, *copy.glob(f"best-*/{CONTRACT_FILE}")]  # the final and the best model's
    assert len(files) == 2
    for file in files:
        data = json.loads(file.read_text())
        data.update(changes)
        file.write_text(json.dumps(data))
    return copy


def test_an_unknown_observation_layout_version_is_refused(train, tmp_path):
    copy = _sac_copy(train, tmp_path, observation_layout_version=2)
    with pytest.raises(ContractError, match=r"observation layout version 2 is unknown here .*version\(s\) \[1\]"):
        PolicyRunner.from_checkpoint(copy, "ur5e", DeployConfig())


@pytest.mark.parametrize("change,reason", [({"version": 7}, "contract version 7 is not known"),
                                           ({"action_mode": "torque"}, "action mode 'torque' has no deployment"),
                                           ({"control_hz": None, "extra": 1}, "unknown fields \\['extra'\\]")])  # fmt: skip
def test_a_malformed_contract_is_refused(train, tmp_path, change, reason):
    copy = _sac_copy(train, tmp_path, **change)
    with pytest.raises(ContractError, match=reason):
        PolicyRunner.from_checkpoint(copy, "ur5e", DeployConfig())


def test_checkpoints_without_a_contract_are_refused(train, tmp_path):
    from ast_robot.policies.policy import PolicyBase

    _, run_dir = train("bc", "ur5e")
    PolicyBase.load(run_dir / POLICY_DIR).save(tmp_path / "bare")  # a policy saved outside the trainers
    with pytest.raises(ContractError, match="no deployment contract"):
        PolicyRunner.from_checkpoint(tmp_path / "bare", "ur5e", DeployConfig())
    copy = _sac_copy(train, tmp_path)
    for file in [copy / CONTRACT_FILE, *copy.glob(f"best-*/{CONTRACT_FILE}")]:
        file.unlink()
    with pytest.raises(ContractError, match=r"no deployment contract \(contract.json"):
        PolicyRunner.from_checkpoint(copy, "ur5e", DeployConfig())


def test_the_bc_checkpoint_carries_the_contract_in_its_state(train):
    from ast_robot.core.checkpoint import load_checkpoint

    _, run_dir = train("bc", "ur5e")
    stored = load_checkpoint(run_dir / POLICY_DIR).state[STATE_KEY]
    contract = DeploymentContract.from_dict(stored)
    assert contract.to_dict() == stored and contract.observation["observation"]["shape"] == [22]


def test_the_cli_refuses_before_ros_starts_in_one_line(train, capsys):
    from ast_robot.cli import main

    _, run_dir = train("bc", "fr3")
    assert main(["deploy", str(run_dir / POLICY_DIR), "--robot", "ur5e"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trained for robot 'fr3'" in err, err

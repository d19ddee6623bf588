"""The one loader of deployable policies: checkpoint -> (policy, its deployment contract), checked.

Accepts what the trainers write: a BC run's ``policy/`` folder (or one ``ckpt-<step>/`` in it, or the run
folder), a SAC run folder (its best checkpoint when kept, as ``ast-robot eval`` picks; see
``run_layout.sac_checkpoint``) or one SAC checkpoint folder; and ``scripted:reach``. Before any weight
is loaded the contract (:mod:`ast_robot.robot.contract`) is read and checked against the robot and its deploy
config; what cannot be served raises :class:`~ast_robot.robot.contract.ContractError` with one line naming the
mismatch. The run-directory names come from :mod:`ast_robot.run_layout` and a SAC model is loaded by
:mod:`ast_robot.integrations.sb3.actor` (the ``sb3`` extra, imported only for SAC checkpoints): deploy imports
no trainer. Checkpoints written before the contract existed are refused: their stored experiment config does
not say which observation layout the policy was trained on, and guessing wrong would feed it other numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.robot.contract import (
    OBSERVATION_LAYOUT_VERSION,
    STATE_KEY,
    ContractError,
    DeploymentContract,
)
from ast_robot.run_layout import CONTRACT_FILE, POLICY_DIR, is_sac_run, sac_checkpoint

SCRIPTED = "scripted:reach"
# A gripper wiring check: holds the TCP still and closes the gripper, with the contract of the robot's
# deployable pick-and-place env (camera, instruction, gripper): what an operator runs before a pixel policy.
SCRIPTED_GRIPPER = "scripted:close-gripper"
# A fixed pick program from the table the operator set (deploy.pick_program), same contract: wiring checks
# of the pick-and-place outcome path (grasp -> lift -> place events) without a trained checkpoint.
SCRIPTED_PICKPLACE = "scripted:pickplace"
SCRIPTED_SPECS = (SCRIPTED, SCRIPTED_GRIPPER, SCRIPTED_PICKPLACE)
LAYOUT_VERSIONS = (OBSERVATION_LAYOUT_VERSION,)  # the observation layouts ObservationBuilder builds
# The task layouts the runner builds (the contract's observation_layout; None: reach, which has no named one):
# the tracker-fed privileged pick-and-place, the deployable one from pixels and language, and that one with the
# camera on the gripper (issue 20). A layout named otherwise (a privileged layout with a wrist camera, a v2)
# is refused in one line before its shapes are compared.
TASK_LAYOUTS = (None, "pickplace-privileged-v1", "pickplace-deploy-v1", "pickplace-deploy-wrist-v1")
ACTION_MODES = ("ee_delta", "joint_delta")  # the action mappings robot.actions provides
# interface -> the RosNames field that provides it (None: the command topic of the command interface); the
# tracker's cube poses and the operator's table serve the privileged pick-and-place layout
INTERFACE_TOPICS = {"joint_states": "joint_states", "arm_command": None, "goal": "goal", "camera": "camera",
                    "instruction": "instruction", "gripper_command": "gripper_command", "tracker": "object_poses",
                    "table": "twin_scene", "wrist_camera": "wrist_camera"}  # fmt: skip
RETRAIN = "retrain it with this version of ast_robot (its trainers write the contract)"


class FunctionPolicy:
    """``act(obs)`` around a function (an SB3 model's deterministic prediction)."""

    def __init__(self, act: Any) -> None:
        self._act = act

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self._act(obs), dtype=np.float32)


def load_deployable(spec: str | Path, robot: str, io: Any = None) -> tuple[Any, DeploymentContract]:
    """(policy with ``act``, its contract) for ``robot``; ContractError when the contract does not fit.

    ``io``: the robot's :class:`~ast_robot.config.RobotIOConfig` (default: ``configs/deploy/<robot>.yaml``).
    """
    contract = read_contract(spec, robot)
    check_contract(contract, robot, io, str(spec))
    if str(spec) == SCRIPTED:
        from ast_robot.deploy.runner import ReachController

        return ReachController(), contract
    if str(spec) == SCRIPTED_GRIPPER:
        return CloseGripper(contract.action_size), contract
    if str(spec) == SCRIPTED_PICKPLACE:
        from ast_robot.deploy.pick_program import PickProgram
        from ast_robot.robot.specs import get_robot

        return PickProgram(contract.action_size, get_robot(robot).n_joints, contract.max_ee_step), contract
    kind, folder = _locate(Path(spec))
    if kind == "sac":
        return FunctionPolicy(_sac_actor(folder)), contract
    from ast_robot.deploy.runner import load_deploy_policy

    return load_deploy_policy(folder), contract


def read_contract(spec: str | Path, robot: str) -> DeploymentContract:
    """The contract of a checkpoint (``scripted:reach``: the default reach env of ``robot``); no weights built."""
    if str(spec) == SCRIPTED:
        return _default_reach(robot)
    if str(spec) in (SCRIPTED_GRIPPER, SCRIPTED_PICKPLACE):
        return _default_deploy_pickplace(robot)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: {path} does not exist (a checkpoint directory or {SCRIPTED!r})")
    kind, folder = _locate(path)
    if kind == "sac":
        return _contract_file(folder, path)
    from ast_robot.core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(folder)
    if STATE_KEY not in ckpt.state:
        raise ContractError(f"checkpoint {ckpt.path}: no deployment contract (written before contracts existed, "
                            f"or by PolicyBase.save); {RETRAIN}")  # fmt: skip
    return DeploymentContract.from_dict(ckpt.state[STATE_KEY], f"checkpoint {ckpt.path}")


def check_contract(contract: DeploymentContract, robot: str, io: Any = None, source: str = "checkpoint") -> None:
    """ContractError (one line) unless this deployment can serve ``contract`` on ``robot`` with ``io``."""
    from ast_robot.deploy.robot_io import load_robot_io

    io = io or load_robot_io(robot)
    if contract.robot != io.robot:
        raise ContractError(f"{source}: trained for robot {contract.robot!r} ({contract.env_id}), deploying to "
                            f"{io.robot!r}; deploy it with --robot {contract.robot} or train one for {io.robot}")  # fmt: skip
    if contract.observation_layout_version not in LAYOUT_VERSIONS:
        raise ContractError(f"{source}: observation layout version {contract.observation_layout_version!r} is "
                            f"unknown here (this deployment builds version(s) {list(LAYOUT_VERSIONS)}); "
                            "deploy it with the ast_robot version that trained it")  # fmt: skip
    if contract.observation_layout not in TASK_LAYOUTS:
        raise ContractError(f"{source}: observation layout {contract.observation_layout!r} is not one this "
                            f"deployment builds ({[n for n in TASK_LAYOUTS if n]}, or none for reach)")  # fmt: skip
    provided = provided_interfaces(io)
    missing = [name for name in contract.interfaces if name not in provided]
    if missing:
        raise ContractError(f"{source}: task {contract.task!r} needs robot interfaces {missing} that the deploy "
                            f"config of {io.robot} (configs/deploy/{io.robot}.yaml) lacks; it provides "
                            f"{sorted(provided)}")  # fmt: skip
    if contract.action_mode not in ACTION_MODES:
        raise ContractError(f"{source}: action mode {contract.action_mode!r} has no deployment mapping; "
                            f"known: {list(ACTION_MODES)}")  # fmt: skip
    _check_observation(contract, source)


def provided_interfaces(io: Any) -> set[str]:
    """The interfaces a robot's deploy config wires up (a topic name set for each)."""
    found = set()
    for name, field in INTERFACE_TOPICS.items():
        topic = getattr(io.topics, field or io.command_interface, "")
        if isinstance(topic, str) and topic.strip():
            found.add(name)
    return found


def _check_observation(contract: DeploymentContract, source: str) -> None:
    """The observation entries the runner builds must be the ones the policy was trained on."""
    from ast_robot.robot.kernels import proprio_size
    from ast_robot.robot.specs import get_robot

    size = proprio_size(get_robot(contract.robot).n_joints)
    if "tracker" in contract.interfaces:  # the privileged pick-and-place entries (deploy.runner.tracked_entries)
        size += 9 + 3 * (int(contract.n_objects or 0) - 1)
    built = {"observation": [size]}
    if "goal" in contract.interfaces or "table" in contract.interfaces:  # the deployable pick-and-place: none
        built.update(achieved_goal=[3], desired_goal=[3])
    if contract.camera_size is not None:
        built["camera"] = [*contract.camera_size, 3]
    if contract.instruction_length is not None:
        built["instruction"] = [contract.instruction_length]
    if contract.wrist_camera_size is not None:  # the camera on the gripper (its own input, deploy.camera)
        built["wrist_camera"] = [*contract.wrist_camera_size, 3]
    trained = {k: list(v["shape"]) for k, v in contract.observation.items()}
    if trained != built:
        raise ContractError(f"{source}: the policy observes {trained}, the deployment builds {built} (layout "
                            f"v{contract.observation_layout_version}: the arm's proprioception, the tracked cubes in the "
                            "privileged pick-and-place layout, goals where the task has a goal or table interface, "
                            "camera, wrist camera and instruction as trained)")  # fmt: skip


def _locate(path: Path) -> tuple[str, Path]:
    """("sac" | "bc", the folder holding the model) of a checkpoint path."""
    if is_sac_run(path):
        folder, _ = sac_checkpoint(path, "auto")
        return "sac", folder
    if (path / POLICY_DIR).is_dir():
        return "bc", path / POLICY_DIR
    return "bc", path


def _contract_file(folder: Path, given: Path) -> DeploymentContract:
    """A SAC checkpoint's contract.json (in its folder, else in the run folder given)."""
    for candidate in (folder / CONTRACT_FILE, given / CONTRACT_FILE):
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise ContractError(f"{candidate}: not a readable contract ({err})") from None
            return DeploymentContract.from_dict(data, str(candidate))
    raise ContractError(f"{folder}: no deployment contract ({CONTRACT_FILE}; written before contracts existed); "
                        f"{RETRAIN}")  # fmt: skip


def _sac_actor(folder: Path) -> Any:
    """``act(obs)`` of the SAC model in ``folder``, loaded as ``ast-robot eval`` loads it."""
    import torch

    from ast_robot.config import load_config
    from ast_robot.integrations.sb3.actor import load_sac_actor
    from ast_robot.run_layout import CONFIG_FILE, run_folder_of

    torch.set_num_threads(1)  # one core for inference: predictable latency beside the control loop
    return load_sac_actor(load_config(run_folder_of(folder) / CONFIG_FILE), folder)


class CloseGripper:
    """``scripted:close-gripper``: TCP deltas 0, gripper -1 (closed), whatever it observes."""

    def __init__(self, action_size: int) -> None:
        self.action = np.zeros(action_size, dtype=np.float32)
        self.action[-1] = -1.0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.action.copy()


def _default_deploy_pickplace(robot: str) -> DeploymentContract:
    """The contract of ``robot``'s pick-and-place env in the deployable layout (2 cubes, 2 pads)."""
    from ast_robot.config import EnvConfig
    from ast_robot.envs import ENV_IDS
    from ast_robot.envs.pick_place import PickPlaceEnv
    from ast_robot.robot.specs import get_robot

    name = get_robot(robot).name
    env_id = next(i for i, (entry, kw) in ENV_IDS.items() if entry.endswith(":PickPlaceEnv") and kw["robot"] == name)
    cfg = EnvConfig(id=env_id, observation="deploy", camera=True, instruction=True, n_objects=2, n_pads=2)
    env = PickPlaceEnv(name, cfg)
    try:
        return DeploymentContract.from_env(env)
    finally:
        env.close()


def _default_reach(robot: str) -> DeploymentContract:
    """The contract of the default reach env for ``robot`` (what the scripted controller serves)."""
    from ast_robot.config import EnvConfig
    from ast_robot.envs import ENV_IDS
    from ast_robot.envs.reach import ReachEnv
    from ast_robot.robot.specs import get_robot

    name = get_robot(robot).name
    env_id = next(i for i, (entry, kw) in ENV_IDS.items() if entry.endswith(":ReachEnv") and kw["robot"] == name)
    env = ReachEnv(name, EnvConfig(id=env_id))
    try:
        return DeploymentContract.from_env(env)
    finally:
        env.close()

"""The deployment contract: what a trained policy needs from the robot, written into every policy checkpoint.

A policy only works where its observations are built and its actions are read as in training. The trainers
write this record beside the weights (BC: inside the checkpoint's ``state.pt``; SAC: ``contract.json``
beside ``sac.zip``), and the deployment builds its runner from it and refuses what it cannot serve
(:mod:`ast_robot.deploy.loader`). Light on purpose (no MuJoCo, no torch): the envs, the trainers and
the deployment all import it.

| field                      | meaning                                                                    |
|----------------------------|----------------------------------------------------------------------------|
| version                    | version of this record's schema (:data:`CONTRACT_VERSION`)                  |
| env_id, task, robot        | the gymnasium id trained on, its task (``reach``, ``pickplace``) and robot  |
| control_hz                 | the rate the policy was asked at in training (Hz)                           |
| action_mode, action_size   | ``ee_delta`` (TCP deltas + gripper) or ``joint_delta``; entries             |
| max_ee_step, max_joint_step| the meaning of an action of 1.0: m or rad per control step                  |
| ik_iterations              | DLS updates per control step (ee_delta)                                     |
| observation_layout_version | version of the observation layout (:data:`OBSERVATION_LAYOUT_VERSION`)      |
| observation                | key -> {shape, dtype} of every observation entry                            |
| camera_size                | (height, width) pixels of the ``camera`` entry, or None without camera      |
| instruction_length         | bytes of the ``instruction`` entry (UTF-8, zero padded), or None            |
| instruction_encoding       | how an instruction becomes bytes (:data:`INSTRUCTION_ENCODING`), or None    |
| success_threshold          | the success distance (m) of :mod:`ast_robot.success`                        |
| interfaces                 | what the robot must provide (:data:`TASK_INTERFACES`, + camera/instruction) |
| gripper_observed           | the observation's gripper width: ``measured`` (the opening the robot reports)|
|                            | or ``open`` (a constant: no gripper sensor); None: not recorded (before)    |
| observation_layout         | the task's named layout (``pickplace-privileged-v1``, ...), None for reach  |
| n_objects                  | cubes on the table (pick-and-place), None for reach                         |
| wrist_camera_size          | (height, width) pixels of the ``wrist_camera`` entry (the camera on the     |
|                            | gripper, ``env.wrist_camera``), or None without one                          |
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ast_robot.run_layout import CONTRACT_FILE  # noqa: F401 - re-exported: beside an SB3 model

CONTRACT_VERSION = 1
# The observation layout: ``deploy.kernels.proprio``'s table followed by the task's own entries (none for
# reach). Bump it with any change of either; a deployment refuses versions it does not build.
OBSERVATION_LAYOUT_VERSION = 1
INSTRUCTION_ENCODING = "utf-8, zero-padded"
# What the gripper-width entry of the observation was in training (RobotEnv.gripper_observed); the deployment
# observes the same (PolicyRunner.set_gripper_width). Contracts written before it was recorded read None.
GRIPPER_OBSERVED = ("measured", "open")
STATE_KEY = "contract"
# The camera on the gripper (env.wrist_camera): its observation key and the interface that serves it.
WRIST_KEY = WRIST_INTERFACE = "wrist_camera"

# What a task needs from the robot besides the policy: the robot's deploy YAML must provide each one. The key
# is the task, or "<task>-<layout>" for an observation layout that needs other inputs than the task's default
# (``env.observation``): the deployable pick-and-place layout sees the table through the camera and reads the
# target from the instruction (both added from the env config), so it needs no goal or object pose, only the
# gripper. The privileged layout ("tracked" deployment) observes the cubes' positions and the target's place:
# a lab serves them with a tracker (``tracker``: the cubes' poses, RosNames.object_poses, checked by
# deploy.tracker) and the operator's table (``table``: which cube goes to which pad, RosNames.twin_scene).
TASK_INTERFACES: dict[str, tuple[str, ...]] = {
    "reach": ("joint_states", "arm_command", "goal"),
    "pickplace": ("joint_states", "arm_command", "gripper_command", "tracker", "table"),
    "pickplace-deploy": ("joint_states", "arm_command", "gripper_command"),
}


def task_interfaces(task: str, layout: str | None = None) -> tuple[str, ...]:
    """The interfaces of ``task`` observed in ``layout`` (its own entry when it has one, else the task's)."""
    if layout and f"{task}-{layout}" in TASK_INTERFACES:
        return TASK_INTERFACES[f"{task}-{layout}"]
    if task not in TASK_INTERFACES:  # a new task must say what it needs from the robot
        raise ValueError(f"task {task!r} has no entry in ast_robot.robot.contract.TASK_INTERFACES "
                         f"(known: {sorted(TASK_INTERFACES)})")  # fmt: skip
    return TASK_INTERFACES[task]


class ContractError(ValueError):
    """A checkpoint's contract is missing, malformed or cannot be served here; ``str(err)`` is one line."""


@dataclass(frozen=True)
class DeploymentContract:
    """What deployment needs to run a policy as it was trained (the module docstring lists the fields)."""

    env_id: str
    task: str
    robot: str
    control_hz: float
    action_mode: str
    action_size: int
    max_ee_step: float
    max_joint_step: float
    ik_iterations: int
    observation: dict[str, dict[str, Any]]
    success_threshold: float
    interfaces: tuple[str, ...]
    camera_size: tuple[int, int] | None = None
    instruction_length: int | None = None
    instruction_encoding: str | None = None
    gripper_observed: str | None = None
    observation_layout_version: int = OBSERVATION_LAYOUT_VERSION
    version: int = CONTRACT_VERSION
    observation_layout: str | None = None
    n_objects: int | None = None
    wrist_camera_size: tuple[int, int] | None = None

    @classmethod
    def from_env(cls, env: Any) -> DeploymentContract:
        """The contract of a robot env (a ``RobotEnv`` or a wrapper of one) as configured."""
        base = getattr(env, "unwrapped", env)
        cfg = base.cfg
        observation = {k: {"shape": [int(n) for n in space.shape], "dtype": str(space.dtype)}
                       for k, space in base.observation_space.spaces.items()}  # fmt: skip
        interfaces = task_interfaces(base.task, getattr(cfg, "observation", None))
        wrist = bool(getattr(cfg, "wrist_camera", False))
        interfaces += ("camera",) * bool(cfg.camera) + ("instruction",) * bool(cfg.instruction)
        interfaces += (WRIST_INTERFACE,) * wrist
        return cls(
            env_id=cfg.id, task=base.task, robot=base.robot.name, control_hz=float(cfg.control_hz),
            action_mode=cfg.action_mode, action_size=int(base.action_space.shape[0]),
            max_ee_step=float(cfg.max_ee_step), max_joint_step=float(cfg.max_joint_step),
            ik_iterations=int(cfg.ik_iterations), observation=observation,
            success_threshold=float(cfg.success_threshold), interfaces=interfaces,
            camera_size=tuple(int(n) for n in cfg.camera_size) if cfg.camera else None,
            instruction_length=int(cfg.instruction_length) if cfg.instruction else None,
            instruction_encoding=INSTRUCTION_ENCODING if cfg.instruction else None,
            gripper_observed=getattr(base, "gripper_observed", None),
            observation_layout=getattr(base, "observation_layout", None),
            n_objects=int(cfg.n_objects) if base.task == "pickplace" else None,
            wrist_camera_size=tuple(int(n) for n in cfg.wrist_camera_size) if wrist else None,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (JSON, and ``torch.load(weights_only=True)`` accepts them)."""
        out = dataclasses.asdict(self)
        out["interfaces"] = list(self.interfaces)
        for key in ("camera_size", "wrist_camera_size"):
            out[key] = None if out[key] is None else list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "contract") -> DeploymentContract:
        """Parse a stored contract; :class:`ContractError` naming ``source`` and the field when it is not one."""
        if not isinstance(data, dict):
            raise ContractError(f"{source}: expected a mapping, got {type(data).__name__}")
        version = data.get("version")
        if version != CONTRACT_VERSION:
            raise ContractError(f"{source}: contract version {version!r} is not known here; this version of "
                                f"ast_robot reads version {CONTRACT_VERSION}")  # fmt: skip
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise ContractError(f"{source}: missing fields {missing}, unknown fields {unknown}")
        if data.get("gripper_observed") not in (None, *GRIPPER_OBSERVED):
            raise ContractError(f"{source}: gripper_observed {data['gripper_observed']!r}; allowed: "
                                f"{list(GRIPPER_OBSERVED)} or null (not recorded)")  # fmt: skip
        values = _with_wrist_camera(dict(data))
        values["interfaces"] = tuple(values["interfaces"])
        for key in ("camera_size", "wrist_camera_size"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def _with_wrist_camera(values: dict[str, Any]) -> dict[str, Any]:
    """A contract written before ``wrist_camera_size`` existed (the wrist students of issue 20, trained before
    the deployment served the wrist camera) says what it needs in its observation entry: the ``wrist_camera``
    shape is the size, and the wrist image an interface the robot must provide."""
    entry = values.get("observation", {}).get(WRIST_KEY) if isinstance(values.get("observation"), dict) else None
    if "wrist_camera_size" in values or not isinstance(entry, dict) or not isinstance(values["interfaces"], list):
        return values
    shape = entry.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3):
        return values  # the loader's observation check names the malformed entry
    interfaces = list(values["interfaces"])
    return {**values, "wrist_camera_size": shape[:2],
            "interfaces": interfaces + [WRIST_INTERFACE] * (WRIST_INTERFACE not in interfaces)}

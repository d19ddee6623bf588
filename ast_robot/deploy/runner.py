"""PolicyRunner: a policy checkpoint + the latest robot observation -> one safe joint command per tick.

No ROS here: the ROS node feeds joint states, goal, camera, instruction, the table and the tracker's cube
positions in and publishes what :meth:`PolicyRunner.step` returns. Every command passes through
:class:`~ast_robot.robot.safety.SafetyMonitor`. Observation layout and action meaning match the environments
(:mod:`ast_robot.robot.actions`; the privileged pick-and-place entries: :func:`tracked_entries`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ast_robot.deploy.scheduler import PolicyScheduler
from ast_robot.robot.contract import WRIST_KEY
from ast_robot.robot.safety import SafetyDecision, SafetyLimits, SafetyMonitor, finite_vector


class Policy(Protocol):
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


DEFAULT_SUCCESS_THRESHOLD = 0.05  # m: EnvConfig's default, for runners built without a contract
DEFAULT_CAMERA_SIZE = (64, 64)  # (H, W): EnvConfig's default camera_size
DEFAULT_INSTRUCTION_LENGTH = 64  # bytes: EnvConfig's default instruction_length

# (action (A,), q_ref (J,) the last command, q_measured (J,)) -> joint target (J,)
ActionMap = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
ObsBuilder = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]  # -> (observation, tcp)


@dataclass(frozen=True)
class StepResult:
    """One control tick: the safety decision plus what produced it."""

    decision: SafetyDecision
    action: np.ndarray | None  # the policy's raw action (A,), None when it was not asked
    ee: np.ndarray | None  # (3,) end-effector position at the measured state (m)
    gripper: list[float] | None = None  # gripper command data to publish (deploy.gripper), None: nothing
    gripper_width: float | None = None  # the opening (m) that command asks for (recorded for the replay)


class PolicyRunner:
    """Turns observations into safe joint commands. Accepts any object with ``act(obs) -> action``."""

    def __init__(self, policy: Policy, limits: SafetyLimits, action_map: ActionMap, observe: ObsBuilder,
                 ee_position: Callable[[np.ndarray], np.ndarray] | None = None, policy_period_s: float | None = None,
                 synchronous: bool = True) -> None:  # fmt: skip
        """``policy_period_s``: how often the policy is asked (default: every tick); ``synchronous=False``
        runs it in a worker thread so slow inference never delays a tick (see :mod:`.scheduler`)."""
        if not callable(getattr(policy, "act", None)):
            raise TypeError(f"policy: expected an object with act(obs), got {type(policy).__name__}")
        self.policy, self.action_map, self.observe, self.ee_position = policy, action_map, observe, ee_position
        period = policy_period_s or limits.period_s
        self.scheduler = PolicyScheduler(policy, period, 3 * period, synchronous)
        self.safety = SafetyMonitor(limits, ee_position)
        self.goal: np.ndarray | None = None
        self.camera: np.ndarray | None = None
        self.instruction: np.ndarray | None = None
        self._velocity = np.zeros(limits.n_joints)
        self.contract: Any = None  # the checkpoint's DeploymentContract (for_robot sets it)
        self.gripper: Any = None  # a deploy.gripper.GripperCommander when the task commands the gripper
        self.camera_input: Any = None  # a deploy.camera.CameraInput when the policy sees the camera (age checked)
        self.wrist_input: Any = None  # ... and one for the camera on the gripper (contract.wrist_camera_size)
        self.tracker: Any = None  # a deploy.tracker.TrackerInput when the policy observes the cubes (privileged)
        self.table: Any = None  # the operator's table (deploy.table.Table): the target cube and its place

    @property
    def task(self) -> str:
        """The task the policy was trained on (the contract's; ``reach`` without one)."""
        return "reach" if self.contract is None else self.contract.task

    @property
    def success_threshold(self) -> float:
        """Success distance (m) of :mod:`ast_robot.success`, as in training (the contract's; 5 cm without one)."""
        return DEFAULT_SUCCESS_THRESHOLD if self.contract is None else self.contract.success_threshold

    @property
    def camera_size(self) -> tuple[int, int]:
        """(height, width) of the camera image the policy takes."""
        size = None if self.contract is None else self.contract.camera_size
        return DEFAULT_CAMERA_SIZE if size is None else tuple(size)

    @property
    def needs_goal(self) -> bool:
        """Whether the policy observes a goal from the goal topic (reach); the privileged pick-and-place layout
        takes its goals from the table and the tracker, the deployable one has none."""
        return self.contract is None or "goal" in self.contract.interfaces

    @property
    def tracked(self) -> bool:
        """Whether the policy observes the cubes (the privileged pick-and-place layout, served by a tracker)."""
        return self.tracker is not None

    @property
    def limits(self) -> SafetyLimits:
        return self.safety.limits

    def set_gripper_width(self, width: float) -> None:
        """The measured opening (m) for the observation, where the policy observed it in training (the
        contract's ``gripper_observed``: "measured", or not recorded); one trained on the open width keeps it."""
        if hasattr(self.observe, "measured_width") and getattr(self.contract, "gripper_observed", None) != "open":
            self.observe.measured_width = float(width)

    def set_table(self, table: Any) -> None:
        """The operator set the table (deploy.table.Table): the target cube and its place. The cubes were moved
        to it at once (the tracker's next sample is trusted anew, not refused as a jump)."""
        self.table = table
        if self.tracker is not None:
            self.tracker.reset(np.array([cube[:2] for cube in table.objects], dtype=np.float64))

    def current_camera(self, now_s: float) -> np.ndarray | None:
        """The camera image the policy sees now: the latest one younger than the camera input's age limit."""
        return self.camera if self.camera_input is None else self.camera_input.latest(now_s)

    def missing_inputs(self, now_s: float) -> list[str]:
        """What the policy needs and does not have (it is not asked until every one arrived)."""
        c = self.contract
        missing = ["no goal set"] * (self.needs_goal and self.goal is None)
        if c is not None and c.camera_size is not None and self.current_camera(now_s) is None:
            age = "" if self.camera_input is None else f" (none within {self.camera_input.max_age_s:g} s)"
            missing.append(f"no recent camera image{age}")
        if self.wrist_input is not None and self.wrist_input.latest(now_s) is None:  # held as for the scene camera
            missing.append(f"no recent wrist camera image (none within {self.wrist_input.max_age_s:g} s)")
        if c is not None and c.instruction_length is not None and self.instruction is None:
            missing.append("no instruction")
        if self.tracked:
            missing += ["no table set (the target cube and its pad)"] * (self.table is None)
            if self.tracker.latest(now_s) is None:
                missing.append(f"no trusted object poses within {self.tracker.max_age_s:g} s")
        return missing

    @property
    def velocity(self) -> np.ndarray:
        """(J,) rad/s of the last joint state (zeros when it carried none)."""
        return self._velocity.copy()

    def observe_joint_state(self, q: np.ndarray, dq: np.ndarray | None, received_s: float, stamp_s: float = 0.0
                            ) -> str | None:  # fmt: skip
        """Offer a validated joint state (robot joint order, rad and rad/s); None when the safety monitor
        trusts it (it becomes the measurement), else the reason it does not."""
        reason = self.safety.observe_state(q, received_s, stamp_s)
        if reason is None:
            self._velocity = np.zeros_like(self._velocity) if dq is None else np.asarray(dq, dtype=float)
        return reason

    def set_goal(self, xyz: Any) -> None:
        """Set the desired end-effector goal (3,) m; ValueError on non-finite or wrong size."""
        goal = np.asarray(xyz, dtype=np.float64).reshape(-1)
        if goal.shape != (3,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"goal: expected 3 finite coordinates (m), got {goal.tolist()}")
        self.goal = goal

    def set_instruction(self, text: str, length: int | None = None) -> None:
        """Byte-level instruction padded with zeros to ``length`` (default: the contract's instruction length;
        the policy tokenizes bytes; the contract's ``instruction_encoding``)."""
        if length is None:
            stored = None if self.contract is None else self.contract.instruction_length
            length = DEFAULT_INSTRUCTION_LENGTH if stored is None else stored
        raw = text.encode("utf-8")[:length]
        self.instruction = np.frombuffer(raw.ljust(length, b"\0"), dtype=np.uint8).copy()

    def reset(self) -> None:
        """Start of an episode: forget integrated targets and velocity history."""
        self.safety.reset_reference()
        _reset(self.action_map, self.observe, self.scheduler, self.gripper)

    def warm_up(self, q: np.ndarray | None = None) -> None:
        """Run the per-tick computation once at ``q`` (J,) rad and forget it; call before the control loop.

        Observation, action mapping (IK) and end-effector kinematics at ``q`` (default: the middle of the
        joint range). Their first calls pay one-off costs: numba loading the compiled IK kernels from its
        cache and the imports behind it took 0.5-1.2 s on a 2-core machine, 60-150 missed 125 Hz cycles
        when the first control tick paid them. The safety monitor and the policy are left untouched.
        """
        lim = self.limits
        q = (lim.lower + lim.upper) / 2.0 if q is None else finite_vector("q", q, lim.n_joints)
        self.observe(q, np.zeros_like(q), 0.0)
        self.action_map(np.zeros(max(q.size, 4)), q, q)
        self.ee_at(q)
        _reset(self.action_map, self.observe)

    def observation(self, now_s: float) -> dict[str, np.ndarray] | None:
        """The policy's observation at the measured state (the entries of its contract: goals only where the
        task has a goal interface), or None while the state or another input is missing."""
        built = self._observe(now_s)
        return None if built is None else built[0]

    def _observe(self, now_s: float) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        q = self.safety.measured
        if q is None or self.missing_inputs(now_s):
            return None
        vector, ee = self.observe(q, self._velocity, now_s)
        obs = {"observation": vector}
        if self.needs_goal:
            obs.update(achieved_goal=ee, desired_goal=self.goal.copy())
        if self.tracked:
            positions, velocities = self.tracker.latest(now_s)
            entries, target = tracked_entries(positions, velocities, self.table.target_object, ee)
            obs.update(observation=np.concatenate([vector, entries]), achieved_goal=target,
                       desired_goal=np.array(self.table.place, dtype=np.float64))  # fmt: skip
        camera = self.current_camera(now_s)
        if camera is not None:
            obs["camera"] = camera
        if self.wrist_input is not None:
            obs[WRIST_KEY] = self.wrist_input.latest(now_s)
        if self.instruction is not None:
            obs["instruction"] = self.instruction
        return obs, ee

    def step(self, now_s: float) -> StepResult:
        """Ask the policy for an action at the latest state and return the safe command for this tick (and
        the gripper's, through the same safety module, when the task commands one)."""
        if self.safety.measured is not None and (missing := self.missing_inputs(now_s)):
            return StepResult(self.safety.hold("; ".join(missing)), None, None)
        if self.safety.measured is None or self.safety.hold_reasons(now_s):  # no policy call for a hold
            q = self.safety.measured
            return StepResult(self.safety.filter(None, now_s), None, None if q is None else self.ee_at(q))
        obs, ee = self._observe(now_s)
        try:
            action = self.scheduler.action(obs, now_s)
            if action is None:
                return StepResult(self.safety.hold("no recent policy action"), None, ee)
            target = self.action_map(action, self.safety.reference, self.safety.measured)
        except Exception as err:  # noqa: BLE001 - a policy or IK failure must become a hold, not a crash
            return StepResult(self.safety.hold(f"policy failed: {type(err).__name__}: {err}"), None, None)
        decision = self.safety.filter(target, now_s)
        grip, width = None, None
        if self.gripper is not None:
            sent, grip = self.gripper.command(action, now_s, stopped=bool(self.safety.stop_reasons()))
            width = sent.width
        return StepResult(decision, action, ee, grip, width)

    def ee_at(self, q: np.ndarray) -> np.ndarray:
        """End-effector position (3,) m at joint positions q (zeros without kinematics)."""
        return np.zeros(3) if self.ee_position is None else np.asarray(self.ee_position(q), dtype=float)

    @classmethod
    def for_robot(cls, policy: Policy, robot: str, cfg: Any, env_cfg: Any = None, synchronous: bool = True,
                  contract: Any = None, io: Any = None) -> PolicyRunner:  # fmt: skip
        """A runner with the robot's data-sheet limits, MuJoCo kinematics and the envs' action semantics.

        The action semantics come from ``contract`` (a :class:`~ast_robot.robot.contract.DeploymentContract`),
        else from ``env_cfg`` (default ``EnvConfig()``). The policy is asked at the training control rate;
        each command tick moves the TCP (or joint) target by its share of the latest action. The safety limits
        declare ``io``'s ``command_latency_s`` (``io``: the robot's RobotIOConfig, default configs/deploy/<robot>.yaml).
        """
        from ast_robot.config import EnvConfig
        from ast_robot.deploy.robot_io import load_robot_io
        from ast_robot.robot.kinematics import ArmKinematics
        from ast_robot.robot.specs import get_robot, load_model

        trained = contract if contract is not None else (env_cfg or EnvConfig())  # same field names
        spec = get_robot(robot)
        model = load_model(robot, "reach")
        kin = ArmKinematics(model, spec.joint_names, spec.ee_site)
        action_map, observe = _action_and_observation(trained, spec, model, kin, cfg.control_hz)
        io = io or load_robot_io(spec.name)
        # the command latency its user measured on this robot (configs/deploy/<robot>.yaml; None: the strict filter)
        limits = SafetyLimits.from_robot(spec, cfg, command_latency_s=io.command_latency_s)
        runner = cls(policy, limits, action_map, observe, kin.ee_position, policy_period_s=1.0 / trained.control_hz,
                     synchronous=synchronous)  # fmt: skip
        runner.contract = contract
        if contract is not None:
            _wire_task_inputs(runner, contract, spec, io)
        return runner

    @classmethod
    def from_checkpoint(cls, path: str | Path, robot: str, cfg: Any, synchronous: bool = False,
                        io: Any = None) -> PolicyRunner:  # fmt: skip
        """The runner a checkpoint's deployment contract describes (asynchronous inference).

        :func:`~ast_robot.deploy.loader.load_deployable` loads the policy and checks its contract against
        ``robot`` and its deploy config ``io`` (ContractError, one line, when they do not fit)."""
        from ast_robot.deploy.loader import load_deployable

        policy, contract = load_deployable(path, robot, io)
        return cls.for_robot(policy, robot, cfg, synchronous=synchronous, contract=contract, io=io)


def _wire_task_inputs(runner: PolicyRunner, contract: Any, spec: Any, io: Any) -> None:
    """The gripper command path and the camera inputs (scene, wrist) that a contract's interfaces call for
    (``io``: the robot's RobotIOConfig, default configs/deploy/<robot>.yaml)."""
    if "gripper_command" not in contract.interfaces and contract.camera_size is None and not contract.wrist_camera_size:
        return
    if "tracker" in contract.interfaces:
        from ast_robot.deploy.tracker import TRACKER_RATE_HZ, TrackerInput

        if not contract.n_objects:
            raise ValueError(f"contract of {contract.env_id}: the tracked layout needs n_objects, got {contract.n_objects!r}")
        runner.tracker = TrackerInput(contract.n_objects, TRACKER_RATE_HZ)
    from ast_robot.deploy.camera import CameraInput
    from ast_robot.deploy.gripper import GripperCommander
    from ast_robot.deploy.robot_io import load_robot_io

    io = io or load_robot_io(spec.name)
    if "gripper_command" in contract.interfaces:
        runner.gripper = GripperCommander(io.gripper, spec.gripper_width)
    if contract.camera_size is not None:
        runner.camera_input = CameraInput(tuple(contract.camera_size), io.camera_rate_hz or 10.0)
    if contract.wrist_camera_size is not None:  # the camera on the gripper: its own topic, the same checks
        runner.wrist_input = CameraInput(tuple(contract.wrist_camera_size), io.camera_rate_hz or 10.0, "wrist camera")


def _action_and_observation(trained: Any, spec: Any, model: Any, kin: Any, tick_hz: float) -> tuple[Any, Any]:
    """The action mapping and observation builder of the training settings ``trained`` (a contract or an
    EnvConfig: ``action_mode``, ``control_hz``, ``max_ee_step``, ``max_joint_step``, ``ik_iterations``)."""
    from ast_robot.robot.actions import EEDeltaAction, JointDeltaAction, ObservationBuilder
    from ast_robot.robot.ik import for_robot as ik_for_robot
    from ast_robot.robot.workspace import R_DOWN, WORKSPACE_HIGH, WORKSPACE_LOW

    share = trained.control_hz / tick_hz  # same speed at the faster tick
    if trained.action_mode == "joint_delta":  # no TCP target: the offset entry is 0, as in the envs
        action_map = JointDeltaAction(trained.max_joint_step * share, spec.joint_lower, spec.joint_upper)
        return action_map, ObservationBuilder(kin.ee_position, spec.gripper_width[1])
    if trained.action_mode != "ee_delta":
        raise ValueError(f"action_mode {trained.action_mode!r}: the deployment maps 'ee_delta' and 'joint_delta'")
    action_map = EEDeltaAction(ik_for_robot(model, spec), trained.max_ee_step * share, (WORKSPACE_LOW, WORKSPACE_HIGH),
                               R_DOWN, trained.ik_iterations, lead_m=2.0 * trained.max_ee_step)  # the envs' anti-windup  # fmt: skip
    return action_map, ObservationBuilder(kin.ee_position, spec.gripper_width[1], lambda: action_map.ee_cmd)


def tracked_entries(positions: np.ndarray, velocities: np.ndarray, target: int, tcp: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The privileged pick-and-place entries after the robot part, as ``PickPlaceEnv._task_obs`` lays them out:
    target cube position (3), target minus TCP (3), target velocity (3), the other cubes' positions (3 each, the
    table's order); and the target's position (the achieved goal). ``positions``/``velocities`` (n, 3)."""
    others = [positions[i] for i in range(len(positions)) if i != target]
    p = positions[target]
    return np.concatenate([p, p - tcp, velocities[target], *others]), p.copy()


def _reset(*parts: Any) -> None:
    """Reset the parts that keep state between ticks (those with a ``reset`` method)."""
    for part in parts:
        if hasattr(part, "reset"):
            part.reset()


class ReachController:
    """A proportional TCP controller toward the goal: a baseline and a stand-in for tests.

    Not a learned policy: it exercises the deployment path (node, safety, twin, outcomes) without a
    trained checkpoint. Actions are the envs' (3 TCP deltas in [-1, 1], gripper open).
    """

    def __init__(self, gain: float = 0.2, step_m: float = 0.01) -> None:
        self.gain, self.step_m = gain, step_m

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        error = np.asarray(obs["desired_goal"], dtype=float) - np.asarray(obs["achieved_goal"], dtype=float)
        return np.append(np.clip(self.gain * error / self.step_m, -1.0, 1.0), 1.0)  # (4,)


def load_deploy_policy(spec: str | Path) -> Policy:
    """``scripted:reach`` (the :class:`ReachController`) or a path to a policy checkpoint."""
    if str(spec) == "scripted:reach":
        return ReachController()
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: {path} does not exist (or use 'scripted:reach')")
    import torch

    from ast_robot.core.checkpoint import POLICY_EXPECTED
    from ast_robot.fileio import reading
    from ast_robot.policies.policy import SparseMultimodalPolicy

    torch.set_num_threads(1)  # one core for inference: predictable latency beside the control loop
    with reading(path, POLICY_EXPECTED):  # a bad checkpoint: one line naming the file (BadFile)
        return SparseMultimodalPolicy.load(path)

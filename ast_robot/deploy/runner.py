"""PolicyRunner: a policy checkpoint + the latest robot observation -> one safe joint command per tick.

No ROS here: the ROS node feeds joint states, goal, camera and instruction in and publishes what
:meth:`PolicyRunner.step` returns. Every command passes through :class:`~ast_robot.deploy.safety.SafetyMonitor`.

Observation layout (matches the reach environments): ``observation`` = [q (J), dq (J), ee (3)],
``achieved_goal`` = ee (3), ``desired_goal`` = goal (3), plus ``camera`` (H, W, 3) uint8 and
``instruction`` (L,) uint8 when the policy wants them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ast_robot.deploy.safety import SafetyDecision, SafetyLimits, SafetyMonitor


class Policy(Protocol):
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


ActionMap = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (action (A,), q (J,)) -> joint target (J,)


def joint_delta_map(max_delta: float) -> ActionMap:
    """Actions in [-1, 1] are joint position deltas scaled by ``max_delta`` (rad)."""

    def apply(action: np.ndarray, q: np.ndarray) -> np.ndarray:
        return q + np.clip(action[: q.size], -1.0, 1.0) * max_delta

    return apply


def ee_delta_map(ee_position: Callable[[np.ndarray], np.ndarray],
                 solve_ik: Callable[[np.ndarray, np.ndarray], np.ndarray], max_delta: float) -> ActionMap:  # fmt: skip
    """Actions[:3] in [-1, 1] move the end effector by up to ``max_delta`` metres; IK gives the joints."""

    def apply(action: np.ndarray, q: np.ndarray) -> np.ndarray:
        target = ee_position(q) + np.clip(action[:3], -1.0, 1.0) * max_delta  # (3,) m
        return solve_ik(q, target)

    return apply


@dataclass(frozen=True)
class StepResult:
    """One control tick: the safety decision plus what produced it."""

    decision: SafetyDecision
    action: np.ndarray | None  # the policy's raw action (A,), None when it was not asked
    ee: np.ndarray | None  # (3,) end-effector position at the measured state (m)


class PolicyRunner:
    """Turns observations into safe joint commands. Accepts any object with ``act(obs) -> action``."""

    def __init__(self, policy: Policy, limits: SafetyLimits, action_map: ActionMap,
                 ee_position: Callable[[np.ndarray], np.ndarray] | None = None) -> None:  # fmt: skip
        if not callable(getattr(policy, "act", None)):
            raise TypeError(f"policy: expected an object with act(obs), got {type(policy).__name__}")
        self.policy, self.action_map, self.ee_position = policy, action_map, ee_position
        self.safety = SafetyMonitor(limits, ee_position)
        self.goal: np.ndarray | None = None
        self.camera: np.ndarray | None = None
        self.instruction: np.ndarray | None = None
        self._velocity = np.zeros(limits.n_joints)

    @property
    def limits(self) -> SafetyLimits:
        return self.safety.limits

    def observe_joint_state(self, q: np.ndarray, dq: np.ndarray | None, received_s: float) -> None:
        """Feed a validated joint state (robot joint order, rad and rad/s)."""
        self.safety.observe_state(q, received_s)
        self._velocity = np.zeros_like(self._velocity) if dq is None else np.asarray(dq, dtype=float)

    def set_goal(self, xyz: Any) -> None:
        """Set the desired end-effector goal (3,) m; ValueError on non-finite or wrong size."""
        goal = np.asarray(xyz, dtype=np.float64).reshape(-1)
        if goal.shape != (3,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"goal: expected 3 finite coordinates (m), got {goal.tolist()}")
        self.goal = goal

    def set_instruction(self, text: str, length: int = 64) -> None:
        """Byte-level instruction padded with zeros to ``length`` (the policy tokenizes bytes)."""
        raw = text.encode("utf-8")[:length]
        self.instruction = np.frombuffer(raw.ljust(length, b"\0"), dtype=np.uint8).copy()

    def observation(self) -> dict[str, np.ndarray] | None:
        """The policy's observation dict at the measured state, or None while state or goal is missing."""
        q = self.safety.measured
        if q is None or self.goal is None:
            return None
        ee = self.ee_at(q)
        obs = {"observation": np.concatenate([q, self._velocity, ee]).astype(np.float32),  # (2J+3,)
               "achieved_goal": ee.astype(np.float32), "desired_goal": self.goal.astype(np.float32)}  # fmt: skip
        if self.camera is not None:
            obs["camera"] = self.camera
        if self.instruction is not None:
            obs["instruction"] = self.instruction
        return obs

    def step(self, now_s: float) -> StepResult:
        """Ask the policy for an action at the latest state and return the safe command for this tick."""
        obs = self.observation()
        if obs is None:
            reason = "no goal set" if self.safety.measured is not None else "no joint state received yet"
            return StepResult(self.safety.hold(reason), None, None)
        if self.safety.hold_reasons(now_s):  # don't run the policy when the result is a hold anyway
            return StepResult(self.safety.filter(None, now_s), None, obs["achieved_goal"].astype(float))
        try:
            action = np.asarray(self.policy.act(obs), dtype=np.float64).reshape(-1)
            target = self.action_map(action, self.safety.measured)
        except Exception as err:  # noqa: BLE001 - a policy or IK failure must become a hold, not a crash
            return StepResult(self.safety.hold(f"policy failed: {type(err).__name__}: {err}"), None, None)
        return StepResult(self.safety.filter(target, now_s), action, obs["achieved_goal"].astype(float))

    def ee_at(self, q: np.ndarray) -> np.ndarray:
        """End-effector position (3,) m at joint positions q (zeros without kinematics)."""
        return np.zeros(3) if self.ee_position is None else np.asarray(self.ee_position(q), dtype=float)

    @classmethod
    def for_robot(cls, policy: Policy, robot: str, cfg: Any, max_ee_delta: float = 0.02) -> PolicyRunner:
        """A runner with the robot's data-sheet limits, MuJoCo forward kinematics and the shared DLS IK."""
        from ast_robot.deploy.kinematics import ArmKinematics
        from ast_robot.envs.robots import get_robot, load_model

        spec = get_robot(robot)
        model = load_model(robot, "reach")
        kin = ArmKinematics(model, spec.joint_names, spec.ee_site)
        limits = SafetyLimits.from_robot(spec, cfg)
        action_map = ee_delta_map(kin.ee_position, _ik_solver(model, spec), max_ee_delta)
        return cls(policy, limits, action_map, kin.ee_position)

    @classmethod
    def from_checkpoint(cls, path: str | Path, robot: str, cfg: Any) -> PolicyRunner:
        """Load a policy with :func:`load_policy` and build :meth:`for_robot`."""
        return cls.for_robot(load_policy(path), robot, cfg)


def _ik_solver(model: Any, spec: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The environments' damped-least-squares IK (``ast_robot.deploy.ik``), so sim and robot map alike."""
    from ast_robot.deploy import ik

    solver = ik.for_robot(model, spec)

    def solve(q: np.ndarray, target: np.ndarray) -> np.ndarray:
        return solver.solve(q, target, max_iters=10).q

    return solve


class ReachController:
    """A proportional end-effector controller toward the goal: a baseline and a stand-in for tests.

    Not a learned policy: it lets the deployment path (node, safety, twin, outcomes) be exercised
    without a trained checkpoint. Actions are end-effector deltas in [-1, 1] (times ``max_ee_delta``).
    """

    def __init__(self, gain: float = 1.0, max_ee_delta: float = 0.02) -> None:
        self.gain, self.max_ee_delta = gain, max_ee_delta

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        error = np.asarray(obs["desired_goal"], dtype=float) - np.asarray(obs["achieved_goal"], dtype=float)
        return np.clip(self.gain * error / self.max_ee_delta, -1.0, 1.0)  # (3,)


def load_policy(spec: str | Path) -> Policy:
    """``scripted:reach`` (the :class:`ReachController`) or a path to a SparseMultimodalPolicy checkpoint."""
    if str(spec) == "scripted:reach":
        return ReachController()
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: {path} does not exist (or use 'scripted:reach')")
    from ast_robot.policies.policy import SparseMultimodalPolicy

    return SparseMultimodalPolicy.load(path)

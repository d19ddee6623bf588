"""The one gate every joint command passes through before it reaches a robot (real or twin).

Pure Python + numpy, no ROS. A :class:`SafetyMonitor` keeps what it knows about the robot (last joint
state and when it arrived, e-stop, the robot's safety mode, the last command sent) and turns any
requested joint target into a command that is finite, inside the joint limits, at most one velocity-limited
step from the previous command, and keeps the end effector in the workspace box, or into a *hold* of the
previous command with the reasons why.

Hold triggers: e-stop engaged, the robot reports a non-normal safety mode, no joint state for more than
``watchdog_periods`` control periods, a malformed target (wrong size, NaN/inf) or a target whose end
effector leaves the workspace box (moving back *towards* the box is allowed, so a robot that starts
outside it is never stuck).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EEFunction = Callable[[np.ndarray], np.ndarray]  # joint positions (J,) -> end-effector position (3,)


def _vector(name: str, value: Any, size: int | None = None) -> np.ndarray:
    """A finite float64 1-D copy of ``value``; ValueError naming the field otherwise."""
    try:
        arr = np.array(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected a sequence of numbers, got {value!r}") from err
    if size is not None and arr.shape != (size,):
        raise ValueError(f"{name}: expected {size} values, got {arr.shape[0]} ({value!r})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite, got {arr.tolist()}")
    return arr


@dataclass(frozen=True)
class SafetyLimits:
    """The limits a command must respect. Arrays are per joint, in the robot's joint order."""

    joint_names: tuple[str, ...]
    lower: np.ndarray  # (J,) rad
    upper: np.ndarray  # (J,) rad
    max_step: np.ndarray  # (J,) rad per control period (velocity limit x speed scale x period)
    workspace_min: np.ndarray  # (3,) m, base frame
    workspace_max: np.ndarray  # (3,) m, base frame
    period_s: float  # control period (s)
    watchdog_periods: float = 2.0  # hold when the joint state is older than this many periods

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n:
            raise ValueError(f"joint_names: expected unique names, got {self.joint_names!r}")
        for name, size in (("lower", n), ("upper", n), ("max_step", n), ("workspace_min", 3), ("workspace_max", 3)):
            object.__setattr__(self, name, _vector(name, getattr(self, name), size))
        if np.any(self.lower >= self.upper):
            raise ValueError(f"lower/upper: every lower limit must be below its upper limit, got "
                             f"{self.lower.tolist()} / {self.upper.tolist()}")  # fmt: skip
        if np.any(self.max_step <= 0):
            raise ValueError(f"max_step: expected positive steps (rad/period), got {self.max_step.tolist()}")
        if np.any(self.workspace_min >= self.workspace_max):
            raise ValueError(f"workspace_min/max: expected min < max per axis, got "
                             f"{self.workspace_min.tolist()} / {self.workspace_max.tolist()}")  # fmt: skip
        if not (np.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"period_s: expected a positive control period (s), got {self.period_s!r}")
        if not (np.isfinite(self.watchdog_periods) and self.watchdog_periods > 0):
            raise ValueError(f"watchdog_periods: expected > 0, got {self.watchdog_periods!r}")

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def stale_after_s(self) -> float:
        """Age (s) beyond which the last joint state no longer counts as fresh."""
        return self.watchdog_periods * self.period_s

    @classmethod
    def from_robot(cls, spec: Any, cfg: Any) -> SafetyLimits:
        """Limits from a RobotSpec (data-sheet limits) and a DeployConfig (rate, speed scale, box)."""
        period = 1.0 / cfg.control_hz
        return cls(
            joint_names=tuple(spec.joint_names),
            lower=np.asarray(spec.joint_lower, dtype=float),
            upper=np.asarray(spec.joint_upper, dtype=float),
            max_step=np.asarray(spec.velocity_limits, dtype=float) * cfg.max_joint_speed_scale * period,
            workspace_min=np.asarray(cfg.workspace_min, dtype=float),
            workspace_max=np.asarray(cfg.workspace_max, dtype=float),
            period_s=period,
            watchdog_periods=cfg.watchdog_periods,
        )


@dataclass(frozen=True)
class SafetyDecision:
    """What to send. ``positions`` is None only before the first joint state (nothing is known to hold)."""

    positions: np.ndarray | None  # (J,) rad, always finite and inside the limits when not None
    held: bool
    reasons: tuple[str, ...] = ()  # why the target was held or changed (empty: passed unchanged)
    clamped: bool = False  # the target was moved to satisfy position or step limits


@dataclass
class _RobotState:
    positions: np.ndarray | None = None  # (J,) last measured joint positions
    received_s: float = -np.inf  # monotonic receipt time of that state
    estop: bool = False
    safety_normal: bool = True
    safety_detail: str = ""
    last_command: np.ndarray | None = None  # (J,) last command that was sent
    counters: dict[str, int] = field(default_factory=dict)


def segment_seconds(command: np.ndarray, measured: np.ndarray, speed: np.ndarray, period_s: float) -> np.ndarray:
    """Trajectory segment time (s) of ``command`` (..., J) from ``measured`` (..., J) at joint speeds
    ``speed`` (J,) rad/s: at least two control periods; one value per leading index. Shared by the
    policy node's safety filter and the gap replay that reproduces what it sent."""
    return np.maximum(2.0 * period_s, np.max(np.abs(command - measured) / speed, axis=-1))


class SafetyMonitor:
    """Stateful safety filter. Call :meth:`observe_state` on each joint state and :meth:`filter` per tick."""

    def __init__(self, limits: SafetyLimits, ee_position: EEFunction | None = None) -> None:
        self.limits = limits
        self.ee_position = ee_position
        self._s = _RobotState()

    # ----- inputs -------------------------------------------------------------------------------
    def observe_state(self, positions: Sequence[float] | np.ndarray, received_s: float) -> None:
        """Record a measured joint state (robot joint order) and its monotonic receipt time (s)."""
        q = _vector("joint_state.position", positions, self.limits.n_joints)
        if not np.isfinite(received_s):
            raise ValueError(f"received_s: expected a finite time (s), got {received_s!r}")
        self._s.positions, self._s.received_s = q, float(received_s)

    def set_estop(self, engaged: bool) -> None:
        """Engage (True) or release (False) the e-stop. Motion resumes from the held command."""
        self._s.estop = bool(engaged)

    def set_safety_mode(self, normal: bool, detail: str = "") -> None:
        """The robot's own safety state (e.g. UR safety mode); anything but normal makes us hold.

        The robot stopped on its own, so on return to normal motion restarts from the measured state.
        """
        if not self._s.safety_normal and normal:
            self.reset_reference()
        self._s.safety_normal, self._s.safety_detail = bool(normal), detail

    def reset_reference(self) -> None:
        """Forget the last command: the next step limit is taken from the measured position."""
        self._s.last_command = None

    # ----- queries ------------------------------------------------------------------------------
    @property
    def measured(self) -> np.ndarray | None:
        return None if self._s.positions is None else self._s.positions.copy()

    @property
    def reference(self) -> np.ndarray | None:
        """Where the next command starts from: the last command sent, else the measured joints."""
        return None if self._s.positions is None else self._reference()

    @property
    def counters(self) -> dict[str, int]:
        """How often each reason fired since construction (for logs and tests)."""
        return dict(self._s.counters)

    def hold_reasons(self, now_s: float) -> list[str]:
        """Reasons that force a hold right now, independent of the requested target."""
        reasons = []
        if self._s.estop:
            reasons.append("e-stop engaged")
        if not self._s.safety_normal:
            reasons.append(f"robot safety mode not normal ({self._s.safety_detail or 'unknown'})")
        age = now_s - self._s.received_s
        if self._s.positions is not None and not age <= self.limits.stale_after_s:
            reasons.append(f"joint state stale: {age * 1e3:.1f} ms old > {self.limits.stale_after_s * 1e3:.1f} ms")
        return reasons

    # ----- the filter ---------------------------------------------------------------------------
    def filter(self, target: Any, now_s: float) -> SafetyDecision:
        """Turn a requested joint target (J,) rad into a safe command, or a hold with reasons."""
        if self._s.positions is None:
            return self._count(SafetyDecision(None, True, ("no joint state received yet",)))
        reasons = self.hold_reasons(now_s)
        candidate, problem = (None, "") if reasons else self._parse_target(target)
        if problem:
            reasons.append(problem)
        if reasons:
            return self._count(SafetyDecision(self._hold_position(), True, tuple(reasons)))
        return self._count(self._limit(candidate))

    def segment_time(self, command: np.ndarray) -> float:
        """Time (s) to give a trajectory point so that no joint needs more than the allowed speed to
        reach it from the *measured* position: at least two periods (commands that arrive bunched,
        as DDS on a busy machine delivers them, then still imply at most the allowed speed), longer
        when the robot lags behind."""
        if self._s.positions is None:
            return 2.0 * self.limits.period_s
        speed = self.limits.max_step / self.limits.period_s  # (J,) rad/s
        return float(segment_seconds(command, self._s.positions, speed, self.limits.period_s))

    def hold(self, reason: str) -> SafetyDecision:
        """A hold decision for an external reason (e.g. the policy raised). None before any state."""
        if self._s.positions is None:
            return self._count(SafetyDecision(None, True, ("no joint state received yet", reason)))
        return self._count(SafetyDecision(self._hold_position(), True, (reason,)))

    def _parse_target(self, target: Any) -> tuple[np.ndarray | None, str]:
        try:
            arr = np.asarray(target, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return None, f"target is not numeric ({type(target).__name__})"
        if arr.shape != (self.limits.n_joints,):
            return None, f"target has {arr.size} values, expected {self.limits.n_joints}"
        if not np.all(np.isfinite(arr)):
            return None, f"target has non-finite values at joints {np.flatnonzero(~np.isfinite(arr)).tolist()}"
        return arr, ""

    def _reference(self) -> np.ndarray:
        ref = self._s.last_command if self._s.last_command is not None else self._s.positions
        return np.clip(ref, self.limits.lower, self.limits.upper)

    def _hold_position(self) -> np.ndarray:
        return self._reference()

    def _limit(self, target: np.ndarray) -> SafetyDecision:
        lim, ref = self.limits, self._reference()
        reasons = []
        cmd = np.clip(target, lim.lower, lim.upper)
        if not np.array_equal(cmd, target):
            reasons.append("clamped to joint limits")
        stepped = np.clip(cmd, ref - lim.max_step, ref + lim.max_step)
        if not np.array_equal(stepped, cmd):
            reasons.append("clamped to per-step velocity limit")
        cmd = np.clip(stepped, lim.lower, lim.upper)  # ref is inside the limits, so this keeps the step bound
        if self._leaves_workspace(cmd, ref):
            return SafetyDecision(ref, True, ("end effector would leave the workspace box",))
        return SafetyDecision(cmd, False, tuple(reasons), clamped=bool(reasons))

    def _leaves_workspace(self, cmd: np.ndarray, ref: np.ndarray) -> bool:
        """True when ``cmd`` puts the end effector outside the box, unless it moves back towards it."""
        if self.ee_position is None:
            return False
        outside = self._box_violation(cmd)
        return outside > 0 and outside >= self._box_violation(ref)

    def _box_violation(self, q: np.ndarray) -> float:
        p = np.asarray(self.ee_position(q), dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(p)):
            return np.inf
        below = np.maximum(self.limits.workspace_min - p, 0.0)
        above = np.maximum(p - self.limits.workspace_max, 0.0)
        return float(np.linalg.norm(below + above))

    def _count(self, decision: SafetyDecision) -> SafetyDecision:
        for reason in decision.reasons:
            key = reason.split(":")[0].split("(")[0].strip()
            self._s.counters[key] = self._s.counters.get(key, 0) + 1
        if decision.positions is not None:
            pos = decision.positions
            assert pos.shape == (self.limits.n_joints,) and np.all(np.isfinite(pos))
            assert np.all(pos >= self.limits.lower) and np.all(pos <= self.limits.upper)
            self._s.last_command = pos.copy()
        return decision

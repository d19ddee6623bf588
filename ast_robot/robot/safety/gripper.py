"""The gripper's gate: every gripper command passes :class:`GripperMonitor` (stroke, force, speed, rate; nothing
while the arm is stopped), with the data-sheet limits of the supported grippers. Part of the one safety module
(:mod:`ast_robot.robot.safety`). Pure numpy, no ROS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


# Data-sheet limits of the grippers on the supported setups: opening width (m), grasp force (N) and the
# speed of the opening width (m/s). A configured force above the *continuous* force is refused: the peak is what
# the hand survives briefly, not what a policy may hold. Checked 2026-12-06 (issue 21) against public sources;
# Robotiq's and Franka's own spec pages were not in reach, so these are secondary citations of them:
# - Franka Hand: Franka's "Product Manual Franka Hand" v1.2
#   (https://download.franka.de/documents/220010_Product%20Manual_Franka%20Hand_1.2_EN.pdf), as cited by two
#   independent public robot catalogues: 80 mm travel, continuous grasping force adjustable 30-70 N (the 30 N
#   floor was 0 here before: below it the hand does not hold its force), 50 mm/s per finger = 0.1 m/s of width
#   (libfranka's Gripper::move speed is the width's: frankx caps it at 0.1 m/s,
#   https://pantor.github.io/frankx/classfrankx_1_1_gripper.html). 140 N maximum: reference only, not verified.
# - Robotiq 2F-85: 85 mm stroke and 20-235 N grip force (Robotiq's 2F-85 & 2F-140 instruction manual, section 6,
#   as quoted by NVIDIA's 2F-85 asset notes and public catalogues); 20-150 mm/s closing speed. NVIDIA's PhysX
#   2F-85 tuning guide reads 150 mm/s per finger (https://nvidia-omniverse.github.io/PhysX/ovphysx/latest/guides/
#   gripper_tuning.html: "Max finger speed is 0.15 m/s; each finger travels 0.0425 m"), i.e. up to 0.3 m/s of
#   width; 0.15 m/s of width is kept: within the data sheet under either reading.
@dataclass(frozen=True)
class GripperSpec:
    """One gripper's data sheet."""

    name: str
    min_width: float  # m
    max_width: float  # m
    min_force: float  # N (the hardware's smallest settable grasp force)
    max_force: float  # N, continuous
    peak_force: float  # N, short-term maximum (reference only; never commanded)
    max_speed: float  # m/s of the opening width


GRIPPERS: dict[str, GripperSpec] = {
    "franka_hand": GripperSpec("franka_hand", 0.0, 0.08, 30.0, 70.0, 140.0, 0.1),
    "robotiq_2f85": GripperSpec("robotiq_2f85", 0.0, 0.085, 20.0, 235.0, 235.0, 0.15),
}
MAX_GRIPPER_RATE_HZ = 25.0  # one gripper command per policy step at most: each one is a new goal to the hand
# A width within this of the last one sent is not sent again: a repeated "close" would reach the Franka Hand as
# a Move to the same width (see GripperMonitor), which preempts the running Grasp and lets go of its force.
GRIPPER_DEADBAND_M = 0.001


@dataclass(frozen=True)
class GripperLimits:
    """What a gripper command must respect: the data sheet's stroke, the configured force and speed (each
    inside the data sheet) and a command rate (at most ``max_rate_hz`` commands a second)."""

    spec: GripperSpec
    force: float  # N, the grasp force sent with closing commands
    speed: float  # m/s, the width speed sent with every command
    max_rate_hz: float = 10.0

    def __post_init__(self) -> None:
        s = self.spec
        if not (np.isfinite(self.force) and s.min_force <= self.force <= s.max_force and self.force > 0):
            raise ValueError(f"gripper.force_n: {self.force!r} N is outside the {s.name} data sheet's continuous "
                             f"grasp force; allowed: {s.min_force:g} <= force <= {s.max_force:g} N")  # fmt: skip
        if not (np.isfinite(self.speed) and 0 < self.speed <= s.max_speed):
            raise ValueError(f"gripper.speed_mps: {self.speed!r} m/s; allowed for the {s.name}: 0 < speed <= "
                             f"{s.max_speed:g} m/s")  # fmt: skip
        if not (np.isfinite(self.max_rate_hz) and 0 < self.max_rate_hz <= MAX_GRIPPER_RATE_HZ):
            raise ValueError(f"gripper.max_rate_hz: {self.max_rate_hz!r}; allowed: 0 < rate <= {MAX_GRIPPER_RATE_HZ:g} Hz")

    @classmethod
    def for_gripper(cls, model: str, force: float, speed: float, max_rate_hz: float = 10.0) -> GripperLimits:
        """Limits of a known gripper model (ValueError naming the known ones)."""
        if model not in GRIPPERS:
            raise ValueError(f"gripper.model: {model!r} is unknown; known: {sorted(GRIPPERS)}")
        return cls(GRIPPERS[model], float(force), float(speed), float(max_rate_hz))


@dataclass(frozen=True)
class GripperDecision:
    """A gripper command to send (``width`` None: send nothing this time) and why it was changed or withheld."""

    width: float | None  # m, inside the stroke
    force: float  # N: the configured force when closing, 0 when opening (a move, not a grasp)
    speed: float  # m/s
    reasons: tuple[str, ...] = ()


class GripperMonitor:
    """The gripper's gate: finite width inside the stroke, force and speed inside the data sheet, rate-limited.

    While the arm is stopped (e-stop, protective stop) no gripper command goes out: the hand keeps what it
    holds (opening would drop the object, closing could pinch). A command is a *grasp* (the configured force)
    when it closes relative to the last command sent (the hand counts as open before the first), else a
    *move* (force 0). A width within :data:`GRIPPER_DEADBAND_M` of the last one sent is not sent again."""

    def __init__(self, limits: GripperLimits) -> None:
        self.limits = limits
        self.last_width: float | None = None
        self._last_sent_s = -np.inf
        self.counters: dict[str, int] = {}

    def reset(self) -> None:
        """Episode start: forget the rate window and the last width sent, so the episode's first command goes
        out even if it repeats the last one (the hand may have been opened meanwhile: a twin reset, an
        operator). It counts as a grasp when it closes from the open width."""
        self._last_sent_s = -np.inf
        self.last_width = None

    def filter(self, width: Any, now_s: float, stopped: bool = False) -> GripperDecision:
        """The command for a requested opening ``width`` (m) at monotonic time ``now_s``."""
        lim = self.limits
        if isinstance(width, bool) or not isinstance(width, (int, float, np.integer, np.floating)):
            return self._withhold(f"gripper width: expected a number, got {type(width).__name__}")
        w = float(width)
        if not np.isfinite(w):
            return self._withhold(f"gripper width: non-finite value {w!r}")
        if stopped:
            return self._withhold("gripper held: the arm is stopped")
        reasons = ()
        if not lim.spec.min_width <= w <= lim.spec.max_width:
            reasons = (f"gripper width clamped: {w:g} m outside [{lim.spec.min_width:g}, {lim.spec.max_width:g}]",)
            w = min(max(w, lim.spec.min_width), lim.spec.max_width)
        if self.last_width is not None and abs(w - self.last_width) < GRIPPER_DEADBAND_M:
            return GripperDecision(None, 0.0, lim.speed)  # nothing new to say: the hand has this goal
        if not np.isfinite(now_s) or now_s - self._last_sent_s < 1.0 / lim.max_rate_hz - 1e-9:
            return self._withhold(f"gripper rate: at most {lim.max_rate_hz:g} commands/s")
        closing = w < (lim.spec.max_width if self.last_width is None else self.last_width)
        self.last_width, self._last_sent_s = w, float(now_s)
        return self._count(GripperDecision(w, lim.force if closing else 0.0, lim.speed, reasons))

    def _withhold(self, reason: str) -> GripperDecision:
        return self._count(GripperDecision(None, 0.0, self.limits.speed, (reason,)))

    def _count(self, decision: GripperDecision) -> GripperDecision:
        for reason in decision.reasons:
            key = reason.split(":")[0]
            self.counters[key] = self.counters.get(key, 0) + 1
        if decision.width is not None:
            assert self.limits.spec.min_width <= decision.width <= self.limits.spec.max_width
            assert 0.0 <= decision.force <= self.limits.spec.max_force
        return decision

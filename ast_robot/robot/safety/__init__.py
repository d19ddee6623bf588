"""The one safety module: every command to a robot, arm or gripper, real or twin, passes through here.

- :mod:`.arm`: :class:`SafetyLimits` and :class:`SafetyMonitor` (joint limits, speed, acceleration, the lead
  window, the workspace box, e-stop and safety-mode holds, the watchdog),
- :mod:`.gripper`: :class:`GripperLimits` and :class:`GripperMonitor` (stroke, force, speed, rate),
- :mod:`.trust`: which measured joint states count (:class:`MeasurementTrust`), read before anything else, and
  which tracked object positions do (:class:`TrackerTrust`).

Every limit lives in these three modules; the envs (train as you deploy), the deployment and the twin import
them from here. Pure Python + numpy, no ROS.
"""

from ast_robot.robot.safety.arm import (
    DEFAULT_LEAD_S,
    JOINT_ACCELERATION,
    MAX_LEAD_S,
    MAX_WATCHDOG_S,
    PRE_DECLARATION_LATENCY_S,
    SafetyDecision,
    SafetyLimits,
    SafetyMonitor,
    finite_vector,
    segment_seconds,
)
from ast_robot.robot.safety.gripper import (
    GRIPPER_DEADBAND_M,
    GRIPPERS,
    MAX_GRIPPER_RATE_HZ,
    GripperDecision,
    GripperLimits,
    GripperMonitor,
    GripperSpec,
)
from ast_robot.robot.safety.trust import ACQUIRE_STATES, MeasurementTrust, TrackerTrust

__all__ = [
    "ACQUIRE_STATES", "DEFAULT_LEAD_S", "GRIPPERS", "GRIPPER_DEADBAND_M", "JOINT_ACCELERATION", "MAX_GRIPPER_RATE_HZ",
    "MAX_LEAD_S", "MAX_WATCHDOG_S", "PRE_DECLARATION_LATENCY_S", "GripperDecision", "GripperLimits", "GripperMonitor", "GripperSpec",
    "MeasurementTrust", "SafetyDecision", "TrackerTrust", "SafetyLimits", "SafetyMonitor", "finite_vector", "segment_seconds",
]

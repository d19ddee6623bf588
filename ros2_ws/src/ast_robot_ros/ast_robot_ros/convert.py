"""Message <-> plain-value conversions shared by the nodes."""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Duration
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ast_robot.records.stream import TopicQos
from ast_robot.robot.wire import duration_parts


def stamp_seconds(stamp: Any) -> float:
    """builtin_interfaces/Time -> seconds (float)."""
    return stamp.sec + stamp.nanosec * 1e-9


def duration(seconds: float) -> Duration:
    """builtin_interfaces/Duration of ``seconds`` (whole nanoseconds: ast_robot.robot.wire, which the env models)."""
    sec, nanosec = duration_parts(seconds)
    return Duration(sec=sec, nanosec=nanosec)


def trajectory_command(joint_names: list[str], positions: Any, time_from_start: float) -> JointTrajectory:
    """A one-point JointTrajectory reaching ``positions`` after ``time_from_start`` seconds."""
    msg = JointTrajectory(joint_names=list(joint_names))
    msg.points = [JointTrajectoryPoint(positions=[float(p) for p in positions],
                                       time_from_start=duration(time_from_start))]  # fmt: skip
    return msg


def forward_command(positions: Any) -> Float64MultiArray:
    """A forward position controller command (one value per joint, controller order)."""
    return Float64MultiArray(data=[float(p) for p in positions])


def qos_profile(qos: TopicQos) -> QoSProfile:
    """rclpy's profile for a topic's QoS as :mod:`ast_robot.records.stream` describes it (keep-last history)."""
    return QoSProfile(depth=qos.depth, reliability=ReliabilityPolicy[qos.reliability.upper()],
                      durability=DurabilityPolicy[qos.durability.upper()])  # fmt: skip

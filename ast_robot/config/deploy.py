"""Deployment (policy node + safety) configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ast_robot.config.schema import _check_bounds, doc


@dataclass
class DeployConfig:
    """How the policy drives a robot (real or twin) and which limits every command obeys."""

    robot: Literal["ur5e", "fr3"] = doc("ur5e", "Robot; topic and joint names come from its YAML file.")
    control_hz: float = doc(125.0, "Control loop rate (Hz).", gt=0)
    command_interface: Literal["trajectory", "forward_position"] = doc(
        "trajectory", "JointTrajectory to a trajectory controller, or Float64MultiArray to a forward controller."
    )
    max_joint_speed_scale: float = doc(0.5, "Fraction of the data-sheet joint speed allowed per step.", gt=0, le=1)
    workspace_min: tuple[float, float, float] = doc((-0.9, -0.9, 0.0), "End-effector box lower corner (m, mounting frame).")
    workspace_max: tuple[float, float, float] = doc((0.9, 0.9, 1.2), "End-effector box upper corner (m, mounting frame).")
    watchdog_periods: float = doc(2.0, "Hold when no joint state arrived for this many control periods.", gt=0)
    episode_timeout_s: float = doc(10.0, "Episode time limit (s).", gt=0)
    end_on_success: bool = doc(True, "End the episode when the end effector reaches the goal (within the "
                                     "checkpoint's success threshold, ast_robot.success; false: run to the "
                                     "timeout, e.g. to track a moving goal).")  # fmt: skip
    episodes: int = doc(10, "Episodes per deployment round.", gt=0)

    def __post_init__(self) -> None:
        # The documented bounds hold however the config was built (YAML, ROS parameters, keywords), not
        # only through from_dict: the ROS node builds this straight from its parameters.
        for f in dataclasses.fields(self):
            _check_bounds(f, getattr(self, f.name), f"deploy.{f.name}")


@dataclass
class RosNames:
    """Every ROS 2 topic and service name of a deployment, in one place: the drivers' topics (UR:
    ur_robot_driver; FR3: franka_ros2), the policy node's, the twin's and the episode outcome stream.

    Stored per robot under ``topics:`` in `configs/deploy/<robot>.yaml`; every node, tool and bench reads its
    names from here (``RosNames()`` for the defaults). It lives in config, the bottom layer, so that the
    records, deploy, twin and ROS packages all read it without importing one another.
    """

    joint_states: str = doc("/joint_states", "sensor_msgs/JointState from the driver.")
    trajectory: str = doc("/scaled_joint_trajectory_controller/joint_trajectory",
                          "trajectory_msgs/JointTrajectory command topic.")  # fmt: skip
    forward_position: str = doc("/forward_position_controller/commands",
                                "std_msgs/Float64MultiArray command topic (forward position controller).")  # fmt: skip
    safety_mode: str = doc("/ast/safety_mode",
                           "std_msgs/UInt8 safety mode, UR numbering (1 = NORMAL, 3 = PROTECTIVE_STOP), "
                           "transient-local. ur_robot_driver publishes ur_dashboard_msgs/SafetyMode on "
                           "/io_and_status_controller/safety_mode: bridge its `mode` field here (the twin "
                           "publishes this topic itself).")  # fmt: skip
    camera: str = doc("/camera/image_raw", "sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8 or mono8).")
    instruction: str = doc("/ast/instruction", "std_msgs/String language instruction.")
    goal: str = doc("/ast/goal", "geometry_msgs/PoseStamped end-effector goal (position used, m, mounting frame = base_link).")
    estop: str = doc("/ast/estop", "std_msgs/Bool e-stop, transient-local (an e-stop engaged before the node "
                                   "starts still counts): true holds position until false.")
    outcome: str = doc("/ast/outcome", "std_msgs/String: one JSON episode record per episode, transient-local "
                                       "(ast_robot.records.stream.OUTCOME_QOS).")  # fmt: skip
    tick: str = doc("/ast/tick", "std_msgs/Header: sim-time lock-step, the policy node's answer to each joint "
                                 "state (ast_robot.twin.node).")  # fmt: skip
    clock: str = doc("/clock", "rosgraph_msgs/Clock published by the twin on simulated time.")
    start_episode: str = doc("/ast/start_episode", "std_srvs/Trigger service of the policy node: start an episode.")
    stop_episode: str = doc("/ast/stop_episode", "std_srvs/Trigger service of the policy node: stop the episode.")
    twin_reset: str = doc("/twin/reset", "std_srvs/Trigger service of the twin: put the arm home (a new episode).")
    twin_unlock: str = doc("/twin/unlock", "std_srvs/Trigger service of the twin: release a protective stop.")


@dataclass
class RobotIOConfig:
    """How one robot's drivers are wired: joint names, topics, command interface, rates.

    Stored per robot as YAML in `configs/deploy/<robot>.yaml` (also installed by the ROS 2 package).
    """

    robot: Literal["ur5e", "fr3"] = doc("ur5e", "Robot model (limits and kinematics come from its spec).")
    joint_names: list[str] = doc([], "Driver joint names in the spec's joint order; empty: the spec's names.")
    command_interface: Literal["trajectory", "forward_position"] = doc(
        "trajectory", "JointTrajectory (scaled joint trajectory controller) or Float64MultiArray (forward)."
    )
    joint_state_rate_hz: float = doc(500.0, "Rate at which the twin publishes /joint_states (Hz).", gt=0)
    camera_rate_hz: float = doc(10.0, "Rate at which the twin publishes camera images (Hz; 0 = off).", ge=0)
    camera_size: tuple[int, int] = doc((64, 64), "Twin camera image (height, width) in pixels.")
    safety_mode_required: bool = doc(True, "Refuse to start an episode until a safety-mode message arrived "
                                           "(fail closed; false for robots without one, e.g. FR3).")  # fmt: skip
    topics: RosNames = doc(factory=RosNames, help="Topic and service names.")

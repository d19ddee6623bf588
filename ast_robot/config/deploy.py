"""Deployment (policy node + safety) configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ast_robot.config.schema import _check_bounds, doc

# The longest command latency a deployment may declare (s): the safety module's longest lead window
# (ast_robot.robot.safety.arm.MAX_LEAD_S; a test keeps the two equal). More is a typo (ms for s), not an arm.
MAX_COMMAND_LATENCY_S = 0.5


@dataclass
class DeployConfig:
    """How the policy drives a robot (real or twin) and which limits every command obeys."""

    robot: Literal["ur5e", "fr3"] = doc("ur5e", "Robot; topic and joint names come from its YAML file.")
    control_hz: float = doc(125.0, "Control loop rate (Hz).", gt=0)
    command_interface: Literal["trajectory", "forward_position"] = doc(
        "trajectory", "JointTrajectory to a trajectory controller, or Float64MultiArray to a forward controller. "
                      "The policy node takes it from configs/deploy/<robot>.yaml; an env with env.deploy_pipeline "
                      "refuses a value other than that file's (it would model another controller)."
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
    publish_command_kind: bool = doc(False, "Also publish each arm command's kind (which path of the safety module "
                                            "made it) on RosNames.command_kind: for instruments such as "
                                            "bench/hostile_driver.py, off on a robot (an extra DDS write each "
                                            "control tick that no controller reads).")  # fmt: skip

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
    wrist_camera: str = doc("/wrist_camera/image_raw", "sensor_msgs/Image of the camera on the gripper (a wrist-"
                            "camera policy, layout pickplace-deploy-wrist-v1; same encodings and rate as the scene "
                            "camera); empty: no wrist camera (wrist-camera checkpoints are refused).")  # fmt: skip
    instruction: str = doc("/ast/instruction", "std_msgs/String language instruction.")
    goal: str = doc("/ast/goal", "geometry_msgs/PoseStamped end-effector goal (position used, m, mounting frame = base_link).")
    estop: str = doc("/ast/estop", "std_msgs/Bool e-stop, transient-local (an e-stop engaged before the node "
                                   "starts still counts): true holds position until false.")
    outcome: str = doc("/ast/outcome", "std_msgs/String: one JSON episode record per episode, transient-local "
                                       "(ast_robot.records.stream.OUTCOME_QOS).")  # fmt: skip
    tick: str = doc("/ast/tick", "std_msgs/Header: sim-time lock-step, the policy node's answer to each joint "
                                 "state, and its receipt of each camera frame and object-pose sample "
                                 "(ast_robot.twin.node).")  # fmt: skip
    command_kind: str = doc("/ast/command_kind", "std_msgs/Header per arm command the policy node publishes: the "
                            "command's stamp (trajectory; forward: the publication time) and, as frame_id, which path "
                            "of the safety module produced it (ast_robot.robot.safety.arm KIND_*: motion, walk-back, "
                            "from the measured arm (why), stop hold, stale repeat, brake, workspace hold); for "
                            "instruments (bench/hostile_driver.py), not for a controller.")  # fmt: skip
    clock: str = doc("/clock", "rosgraph_msgs/Clock published by the twin on simulated time.")
    start_episode: str = doc("/ast/start_episode", "std_srvs/Trigger service of the policy node: start an episode.")
    stop_episode: str = doc("/ast/stop_episode", "std_srvs/Trigger service of the policy node: stop the episode.")
    twin_reset: str = doc("/twin/reset", "std_srvs/Trigger service of the twin: put the arm home (a new episode).")
    twin_unlock: str = doc("/twin/unlock", "std_srvs/Trigger service of the twin: release a protective stop.")
    gripper_command: str = doc("", "std_msgs/Float64MultiArray gripper command topic (see GripperIOConfig.interface); "
                                   "empty: no gripper wired (pick-and-place checkpoints are refused).")  # fmt: skip
    object_poses: str = doc("/ast/object_poses", "geometry_msgs/PoseArray (frame base_link): the cubes' poses in the "
                            "table's order, as a lab's overhead tag tracker or mocap publishes them (the twin "
                            "publishes its own at ~25 Hz). Recorded in the outcome (events, final poses); a tracker-fed "
                            "(privileged-layout) policy observes them (deploy.tracker); empty: no tracker.")  # fmt: skip
    twin_scene: str = doc("/twin/scene", "std_msgs/String JSON: the twin's table for the next episode (cubes and pads; "
                                         "ast_robot.twin.pickplace), set as a lab operator sets the table; "
                                         "its 'target' entry (the episode sheet) is read by the deployment to "
                                         "judge the episode (ast_robot.deploy.table), never by the policy.")  # fmt: skip


@dataclass
class GripperIOConfig:
    """How the robot's gripper takes commands (std_msgs/Float64MultiArray on ``topics.gripper_command``).

    ``forward_position``: ``[position]``, the gripper joint's position for a ros2_control forward position
    controller (UR5e + Robotiq 2F-85: ``robotiq_85_left_knuckle_joint``, linear between ``position_open`` and
    ``position_closed``; force and speed are the driver's own settings). ``width_speed_force``: ``[width m,
    speed m/s, force N]`` for a one-line relay to franka_msgs' actions (force > 0: Grasp, 0: Move; README)."""

    model: Literal["robotiq_2f85", "franka_hand"] = doc("robotiq_2f85", "Gripper model: its data sheet bounds width, force, speed.")
    interface: Literal["forward_position", "width_speed_force"] = doc("forward_position", "Command message form (above).")
    force_n: float = doc(40.0, "Grasp force (N) of closing commands; within the data sheet's continuous force.", gt=0)
    speed_mps: float = doc(0.05, "Opening-width speed (m/s) sent with each command; within the data sheet.", gt=0)
    max_rate_hz: float = doc(10.0, "At most this many gripper commands a second (each is a new goal).", gt=0)
    position_open: float = doc(0.0, "forward_position: controller position at the widest opening.")
    position_closed: float = doc(0.8, "forward_position: controller position when closed (Robotiq knuckle: 0.8 rad).")
    state_joints: list[str] = doc([], "Joint-state names that measure the opening: one controller joint "
                                      "(forward_position, mapped back linearly) or the fingers (their sum, m).")  # fmt: skip


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
    wrist_camera_size: tuple[int, int] = doc((64, 64), "Twin wrist camera image (height, width) in pixels "
                                                       "(pick-and-place; published at camera_rate_hz).")  # fmt: skip
    safety_mode_required: bool = doc(True, "Refuse to start an episode until a safety-mode message arrived "
                                           "(fail closed; false for robots without one, e.g. FR3).")  # fmt: skip
    command_latency_s: float | None = doc(
        None, "The delay (s) from the policy node publishing a joint command to the arm's controller acting on it "
              "(DDS, driver, controller cycle), as measured on this robot (README: deployment, command latency). "
              "Declared to the safety module (SafetyLimits.from_robot): a joint following freely behind it is led "
              f"by it x its speed. 0-{MAX_COMMAND_LATENCY_S:g} s; null: undeclared, the strict filter (as if 0): an "
              "arm with more latency than declared gets its free motion slowed, never more lead than it needs.",
        ge=0.0, le=MAX_COMMAND_LATENCY_S,
        expect=f"the measured command latency in seconds, 0-{MAX_COMMAND_LATENCY_S:g} (null: undeclared)")  # fmt: skip
    topics: RosNames = doc(factory=RosNames, help="Topic and service names.")
    gripper: GripperIOConfig = doc(factory=GripperIOConfig, help="Gripper command interface (pick-and-place).")


def driver_io(robot: str) -> RobotIOConfig | None:
    """``robot``'s shipped driver wiring (``configs/deploy/<robot>.yaml``) as the policy node reads it; None where
    no such file ships. An env with the deployment pipeline models what it names (controller, gripper)."""
    from ast_robot.config.loader import load_config
    from ast_robot.config.shipped import shipped_dir

    path = shipped_dir("deploy") / f"{robot}.yaml"
    return load_config(path, cls=RobotIOConfig) if path.is_file() else None


def driver_command_interface(robot: str) -> str | None:
    """The command interface that ``robot``'s shipped driver wiring (``configs/deploy/<robot>.yaml``) uses, as
    the policy node drives it; None where no such file ships. The env's deployment pipeline must model the same
    controller: a trajectory controller's interpolated segments and a forward controller's jumps differ from the
    first tick (an FR3 env modelling the former against a twin running the latter: joints 6e-3 rad apart after
    one 25 Hz step, 4 of 10 pick-and-place outcomes flipped)."""
    io = driver_io(robot)
    return None if io is None else io.command_interface

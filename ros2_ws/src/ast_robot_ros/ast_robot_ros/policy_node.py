"""The policy node: a lifecycle node over :class:`ast_robot.deploy.session.DeploymentSession`.

configure: load the checkpoint, create subscriptions, (lifecycle) publishers and services.
activate: start the control timer from rest at the measured position. deactivate: stop it and end a
running episode (end_reason "deactivated"). cleanup: the same, then drop everything.

Subscribes joint states, camera (and the wrist camera where the policy sees one), instruction, goal (PoseStamped in ``base_link``), e-stop (Bool) and the
robot's safety mode (UInt8, UR numbering, bridged from ur_robot_driver: see ``RosNames.safety_mode``);
e-stop and safety mode are transient-local, so a state set before the node started still counts. With
``safety_mode_required`` (UR5e) no episode starts before a safety-mode message arrived. Publishes a
JointTrajectory or Float64MultiArray command per control tick during an episode (with
``publish_command_kind``, for instruments such as bench/hostile_driver.py, also each command's kind: std_msgs/Header
on ``/ast/command_kind``, the command's stamp, frame_id = which path of the safety module made it; off by default:
a robot's node does not pay a second DDS write per tick for a bench's instrument), and one JSON outcome record per
episode (std_msgs/String on ``/ast/outcome``), only while active. An episode starts only once the arm has
settled (SafetyMonitor.settled: the start is refused, or on simulated time waited for, while the arm moves towards
a last command more than a step away). Services
``/ast/start_episode`` and ``/ast/stop_episode`` (std_srvs/Trigger). Names: the robot's ``RosNames``.

``use_sim_time`` (a twin on simulated time, ``ast-robot deploy --sim-time``): the node's times are the
joint states' stamps, and the joint states drive the control tick instead of a timer. Each state stamped
``t`` is checked, ticks the session when a period has passed since the last tick (the policy runs inline,
synchronous, as the envs run it), and is answered on ``/ast/tick`` (std_msgs/Header stamped ``t``; frame_id
"command" when a command stamped ``t`` went out first). The twin waits for that answer before it advances
its clock (:mod:`ast_robot.twin.node`). A /clock timer would not do: /clock and /joint_states are two topics,
and DDS orders messages only within one, so a timer tick could see the state of the period before. An
episode starts on the first state after the start request at which it may (a hold met there, such as trust
being re-acquired after /twin/reset's jump and the arm measured at rest, is waited out:
DeploymentSession.start_requested), so its first
tick is at its start time.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
import time
import traceback
from typing import Any

import rclpy
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.callback_groups import CallbackGroup
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, Header, String, UInt8
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from ast_robot.deploy.inputs import Rejected
from ast_robot.deploy.latency import LatencyStats
from ast_robot.deploy.realtime import freeze_heap
from ast_robot.deploy.session import SAFETY_MODE_NORMAL
from ast_robot.records import to_json
from ast_robot.records.stream import OUTCOME_QOS
from ast_robot.records.tick import SENT_KINDS, answer_frame
from ast_robot.robot.safety.arm import KIND_STOP
from ast_robot_ros.convert import forward_command, qos_profile, stamp_seconds, trajectory_command

# use_sim_time: a camera frame or object-pose sample taken in is acknowledged on /ast/tick (its stamp, these
# frame_ids, as ast_robot.twin.node reads them): the twin publishes the joint state of that stamp only after it
RECEIPT_POSES, RECEIPT_CAMERA = "received:object_poses", "received:camera"
RECEIPT_WRIST = "received:wrist_camera"  # the wrist camera's frames (a wrist-camera policy subscribes them)

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Joint states are taken by the control tick, not by the executor: 32 ms of a 500 Hz stream queue up between
# ticks and each one is checked (rejections are counted, and summarized in the log once a second); the newest
# trusted one drives the tick. A tick takes at most the queue's depth: the work per tick is bounded however
# fast a flood arrives (the middleware drops the oldest beyond the depth; the newest states are kept).
JOINT_STATES = QoSProfile(depth=16, reliability=ReliabilityPolicy.RELIABLE)
MAX_TAKES_PER_TICK = JOINT_STATES.depth
PARAMETERS = ("checkpoint", "robot", "control_hz", "episode_timeout_s", "end_on_success", "max_joint_speed_scale", "watchdog_periods",
              "workspace_min", "workspace_max", "publish_command_kind")  # fmt: skip
# Safety inputs: the latest value counts, including one published before this node started (e-stop pressed
# first; ur_robot_driver's io_and_status_controller publishes the safety mode only on change). A transient-
# local subscription gets that history but matches only transient-local publishers, so each safety topic
# also has a volatile one: an e-stop from a volatile publisher (a script, a panel) must never go unseen.
SAFETY_STATE = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SAFETY_LIVE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
GOAL_FRAMES = ("", "base_link")  # goals are in the mounting frame; UR's "base" is base_link turned 180 deg


class TakenByTick(CallbackGroup):
    """Subscriptions the executor never waits on: the control tick takes their messages itself.

    A 500 Hz /joint_states stream would otherwise wake the executor 500 times a second, and each rclpy
    wake-up rebuilds the wait set in Python (~0.5 ms of CPU on a 2-core machine): most of the node's CPU.
    """

    def can_execute(self, entity: Any) -> bool:
        return False

    def beginning_execution(self, entity: Any) -> bool:
        return False

    def ending_execution(self, entity: Any) -> None:
        pass


class PolicyNode(LifecycleNode):
    """Thin adapter: ROS messages in, DeploymentSession calls, commands and outcomes out."""

    def __init__(self, checkpoint: str = "", robot: str = "ur5e", deploy_cfg: Any = None,
                 name: str = "ast_policy", **kwargs: Any) -> None:  # fmt: skip
        super().__init__(name, **kwargs)
        from ast_robot.config import DeployConfig

        cfg = deploy_cfg or DeployConfig(robot=robot)
        self.declare_parameter("checkpoint", checkpoint)
        self.declare_parameter("robot", robot)
        self.declare_parameter("control_hz", float(cfg.control_hz))
        self.declare_parameter("episode_timeout_s", float(cfg.episode_timeout_s))
        self.declare_parameter("end_on_success", bool(cfg.end_on_success))
        self.declare_parameter("max_joint_speed_scale", float(cfg.max_joint_speed_scale))
        self.declare_parameter("watchdog_periods", float(cfg.watchdog_periods))
        self.declare_parameter("workspace_min", list(cfg.workspace_min))
        self.declare_parameter("workspace_max", list(cfg.workspace_max))
        self.declare_parameter("publish_command_kind", bool(cfg.publish_command_kind))
        self.session: Any = None
        self.latency = LatencyStats()
        self._timer: Any = None
        self._handles: list[Any] = []
        self._last_receipt = 0.0
        self._active = False  # commands and outcomes go out only while active
        self._sim_time = False  # use_sim_time: joint-state-driven ticks, answered on /ast/tick (see module doc)
        self._sim_now = 0.0  # the latest joint state's stamp (s), the node's time with use_sim_time
        self._next_tick = -float("inf")  # sim time (s) of the next tick
        self._sent = dict.fromkeys(SENT_KINDS, 0)  # unstamped commands published in all (forward arm, gripper)

    # ----- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        self._sim_time = bool(self.get_parameter("use_sim_time").value)
        try:
            self.session, self.io = self._build_session()
        except Exception as err:  # noqa: BLE001 - rclpy swallows what a transition raises: say why, then fail
            from ast_robot.fileio import one_line

            self.get_logger().error(f"configure failed: {one_line(str(err) or type(err).__name__, 2000)}")
            return TransitionCallbackReturn.FAILURE
        self.session.warm_up()  # first-call costs (numba IK, imports) here, not in the first tick
        declared = self.session.command_latency_s  # configs/deploy/<robot>.yaml, recorded with each episode
        self.get_logger().info("command latency declared to the safety module: " + (
            "none (command_latency_s null): the strict filter" if declared is None else f"{declared * 1e3:.1f} ms"))
        frozen = freeze_heap()  # start-up objects out of the garbage collector's full passes
        t = self.io.topics
        self.pub_cmd = (self.create_lifecycle_publisher(JointTrajectory, t.trajectory, RELIABLE)
                        if self.io.command_interface == "trajectory"
                        else self.create_lifecycle_publisher(Float64MultiArray, t.forward_position, RELIABLE))  # fmt: skip
        self.pub_outcome = self.create_lifecycle_publisher(String, t.outcome, qos_profile(OUTCOME_QOS))
        self.pub_kind = None  # why each command: for instruments only (DeployConfig.publish_command_kind)
        if self.get_parameter("publish_command_kind").value:
            self.pub_kind = self.create_lifecycle_publisher(Header, t.command_kind, RELIABLE)
        self.pub_gripper = None  # pick-and-place: the gripper's command topic (GripperIOConfig.interface)
        if self.session.gripper_wired:
            self.pub_gripper = self.create_lifecycle_publisher(Float64MultiArray, t.gripper_command, RELIABLE)
        subs = [(Image, t.camera, self._on_image, RELIABLE), (String, t.instruction, self._on_instruction, RELIABLE),
                (PoseStamped, t.goal, self._on_goal, RELIABLE)]  # fmt: skip
        if self.session.sees_wrist_camera:  # the camera on the gripper: checked as the scene camera
            subs.append((Image, t.wrist_camera, self._on_wrist_image, RELIABLE))
        if self.session.judges_objects:  # the outcome's judge, never the policy: the table and a lab's tracker
            latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)  # the twin's /twin/scene QoS
            subs.append((String, t.twin_scene, self._on_table, latched))
            if t.object_poses:
                subs.append((PoseArray, t.object_poses, self._on_object_poses, RELIABLE))
        self._estop_by_source: dict[str, bool] = {}  # latest value per subscription (see _on_estop)
        self._mode_by_source: dict[str, int] = {}
        for source, qos in (("state", SAFETY_STATE), ("live", SAFETY_LIVE)):  # both: see SAFETY_LIVE
            subs += [(Bool, t.estop, functools.partial(self._on_estop, source), qos),
                     (UInt8, t.safety_mode, functools.partial(self._on_safety_mode, source), qos)]  # fmt: skip
        if self._sim_time:  # each state drives a tick and is answered (see the module docstring)
            self._joint_states = self.create_subscription(JointState, t.joint_states, self._on_sim_joint_state,
                                                          JOINT_STATES)  # fmt: skip
            self.pub_tick = self.create_publisher(Header, t.tick, RELIABLE)
        else:
            self._joint_states = self.create_subscription(JointState, t.joint_states, lambda _msg: None,
                                                          JOINT_STATES, callback_group=TakenByTick())  # fmt: skip
        self._handles = [self._joint_states, *(self.create_subscription(m, topic, cb, qos) for m, topic, cb, qos in subs)]
        self._handles += [self.create_service(Trigger, t.start_episode, self._on_start),
                          self.create_service(Trigger, t.stop_episode, self._on_stop)]  # fmt: skip
        self.get_logger().info(f"configured: {self.io.robot}, {self.io.command_interface} on "
                               f"{self.pub_cmd.topic_name}, {1 / self.period:.0f} Hz ({frozen} objects frozen)")  # fmt: skip
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.session.rest_at_measured()  # start from rest where the arm is, not a stale command
        if not self._sim_time:  # with sim time the joint states drive the tick
            self._timer = self.create_timer(self.period, self._tick)
        result = super().on_activate(state)
        self._active = True
        return result

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_control("deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._stop_control("cleanup")
        for handle in self._handles:
            (self.destroy_service if hasattr(handle, "srv_type") else self.destroy_subscription)(handle)
        self.destroy_lifecycle_publisher(self.pub_cmd)
        self.destroy_lifecycle_publisher(self.pub_outcome)
        if self.pub_kind is not None:
            self.destroy_lifecycle_publisher(self.pub_kind)
        if self.pub_gripper is not None:
            self.destroy_lifecycle_publisher(self.pub_gripper)
        self.session.close()
        self._handles, self.session = [], None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._stop_control("shutdown")
        return TransitionCallbackReturn.SUCCESS

    def _stop_control(self, reason: str) -> None:
        """Stop the control timer; end a running episode (its record is published while we still may)."""
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self.session is not None and (self.session.episode_active or self.session.start_pending):
            record = self.session.stop_episode(reason)
            if record is not None and self._active:
                self._publish_outcome(record)
            self.get_logger().warning(f"episode ended: node {reason}")
        if self.session is not None:
            self.session.rest_at_measured()
        self._active = False

    def session_close(self) -> None:
        """Close the deployment session once (hold the arm, finish the episode record)."""
        if self.session is not None:
            self.session.close()
            self.session = None

    def destroy_node(self) -> None:
        self.session_close()
        super().destroy_node()

    def log_summary(self) -> None:
        """At exit: the rejections not yet logged, then one line of the counts per kind and per reason."""
        if self.session is not None:
            pending, totals = self.session.rejection_report(time.monotonic())
            if pending is not None:
                self.get_logger().warning(pending)
            self.get_logger().info(totals)

    def _build_session(self) -> tuple[Any, Any]:
        from ast_robot.config import DeployConfig
        from ast_robot.deploy.robot_io import load_robot_io
        from ast_robot.deploy.runner import PolicyRunner
        from ast_robot.deploy.session import DeploymentSession

        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        if not str(p["checkpoint"]).strip():
            raise ValueError("parameter 'checkpoint' is empty: set it to a checkpoint directory or 'scripted:reach'")
        io = load_robot_io(p["robot"])
        # DeployConfig checks its documented bounds and SafetyLimits the data-sheet ones (ConfigError /
        # ValueError -> configure fails): parameters are as untrusted as YAML.
        cfg = DeployConfig(robot=io.robot, control_hz=p["control_hz"], command_interface=io.command_interface,
                           max_joint_speed_scale=p["max_joint_speed_scale"], watchdog_periods=p["watchdog_periods"],
                           workspace_min=tuple(p["workspace_min"]), workspace_max=tuple(p["workspace_max"]),
                           episode_timeout_s=p["episode_timeout_s"], end_on_success=p["end_on_success"],
                           publish_command_kind=p["publish_command_kind"])  # fmt: skip
        # checks the contract; with sim time the policy runs inline (synchronous), as in the envs: the twin
        # waits for the tick
        runner = PolicyRunner.from_checkpoint(p["checkpoint"], io.robot, cfg, synchronous=self._sim_time, io=io)
        self.period = 1.0 / cfg.control_hz
        meta = {"checkpoint": str(p["checkpoint"]), "control_hz": cfg.control_hz,  # how commands reached the arm:
                "command_interface": cfg.command_interface, "max_joint_speed_scale": cfg.max_joint_speed_scale}
        session = DeploymentSession(runner, io.joint_names, io.robot, timeout_s=cfg.episode_timeout_s, meta=meta,
                                    end_on_success=cfg.end_on_success,
                                    require_safety_mode=io.safety_mode_required)  # fmt: skip
        return session, io

    # ----- inputs -------------------------------------------------------------------------------
    def _take_joint_states(self) -> None:
        """Check the joint states queued since the last tick (at most the queue depth), oldest first; receipt =
        DDS reception time."""
        wall_ns, mono = time.time_ns(), time.monotonic()  # DDS stamps receptions with the system clock
        ros_now = self.get_clock().now().nanoseconds * 1e-9
        handle = self._joint_states.handle
        with handle:  # guards against destruction while taking
            for _ in range(MAX_TAKES_PER_TICK):  # bounded: a flood cannot hold the tick in this loop
                try:
                    taken = handle.take_message(JointState, False)
                except RuntimeError as err:  # seen while the context shuts down under SIGINT/SIGTERM
                    if self.context.ok():
                        self.get_logger().error(f"joint state lost: the middleware could not hand it over: {err}")
                    return
                if taken is None:
                    return
                msg, info = taken
                received = mono - (wall_ns - info["received_timestamp"]) * 1e-9 if info["received_timestamp"] else mono
                self._on_joint_state(msg, min(received, mono), ros_now)

    def _on_joint_state(self, msg: JointState, received: float, ros_now: float) -> None:
        reason = self.session.on_joint_state(list(msg.name), msg.position, msg.velocity, stamp_seconds(msg.header.stamp),
                                             received, ros_now)  # fmt: skip
        if reason is None:
            self._last_receipt = received  # rejections are counted in the session and summarized per second

    def _on_sim_joint_state(self, msg: JointState) -> None:
        """use_sim_time: the state stamped t is the node's time t; tick when due, then answer the twin."""
        t = stamp_seconds(msg.header.stamp)
        self._sim_now = t
        self._on_joint_state(msg, t, t)
        self._log_rejections()
        sent = False
        if self._active and self.session is not None:
            if self.session.start_pending:
                self._start_now(t)
            if t >= self._next_tick - 1e-6:
                self._next_tick = t + self.period
                sent = self._control(t, msg.header.stamp)
        # what went out for this state, so the twin waits for it (records.tick): DDS orders within a topic only
        self.pub_tick.publish(Header(stamp=msg.header.stamp, frame_id=answer_frame(sent, self._sent)))

    def _start_now(self, t: float) -> None:
        try:
            if self.session.start_requested(t):  # else it waits (a hold to clear, e.g. after a twin reset)
                self._next_tick = t
        except ValueError as err:
            self.get_logger().error(f"episode did not start: {err}")

    def _on_image(self, msg: Image) -> None:
        now = self._sample_time(msg.header.stamp)  # frame age and rate are checked on it
        self._warn(self.session.on_image(msg.encoding, msg.height, msg.width, msg.step, msg.data, now))  # no copy
        self._receipt(msg.header.stamp, RECEIPT_CAMERA)

    def _on_wrist_image(self, msg: Image) -> None:
        now = self._sample_time(msg.header.stamp)
        self._warn(self.session.on_wrist_image(msg.encoding, msg.height, msg.width, msg.step, msg.data, now))
        self._receipt(msg.header.stamp, RECEIPT_WRIST)

    def _sample_time(self, stamp: Any) -> float:
        """When a camera frame or tracker sample counts as received: now (monotonic), or with use_sim_time its
        stamp. The twin publishes it before the joint state of that stamp and waits for the receipt, so it is
        taken in at that simulated time; the latest state's stamp would be one period earlier, or a whole
        reset pause earlier for the first sample after /twin/reset (then it looked 1 s old at the episode's
        first tick and the policy held: issue 21, once in 3 repeats at load 11)."""
        return sim_receipt_time(stamp_seconds(stamp), self._sim_now) if self._sim_time else time.monotonic()

    def _receipt(self, stamp: Any, kind: str) -> None:
        """use_sim_time: tell the twin this sample was taken in (it waits for that before the next state)."""
        if self._sim_time:
            self.pub_tick.publish(Header(stamp=stamp, frame_id=kind))

    def _on_instruction(self, msg: String) -> None:
        self._warn(self.session.on_instruction(msg.data))

    def _on_table(self, msg: String) -> None:
        self._warn(self.session.on_table(msg.data))

    def _on_object_poses(self, msg: PoseArray) -> None:
        now = self._sample_time(msg.header.stamp)  # sample age and rate are checked on it
        positions = [(p.position.x, p.position.y, p.position.z) for p in msg.poses[:65]]  # more: refused anyway
        self._warn(self.session.on_object_poses(positions, now, stamp_seconds(msg.header.stamp)))
        self._receipt(msg.header.stamp, RECEIPT_POSES)

    def _on_goal(self, msg: PoseStamped) -> None:
        if msg.header.frame_id not in GOAL_FRAMES:
            self._warn(self.session.reject("goal", Rejected(
                f"frame_id {msg.header.frame_id!r}; goals must be in base_link (allowed: {list(GOAL_FRAMES)}; "
                "UR's 'base' is base_link turned 180 deg about z)", "frame_id")))  # fmt: skip
            return
        p = msg.pose.position
        self._warn(self.session.on_goal((p.x, p.y, p.z)))

    def _on_estop(self, source: str, msg: Bool) -> None:
        # The two subscriptions of a topic deliver in no fixed order between each other (a transient-local
        # one keeps only the latest value): combine their latest values conservatively, engaged if either
        # says so, so an older "released" from one can never undo a newer "engaged" from the other.
        self._estop_by_source[source] = bool(msg.data)
        engaged = any(self._estop_by_source.values())
        if engaged == self.session.estop_engaged:
            return  # a repeat (both subscriptions get a transient-local publisher's messages)
        hold = self.session.on_estop(engaged, time.monotonic())
        if hold is not None and self._active:
            self._publish(hold, kind=KIND_STOP)
        self.get_logger().warning(f"e-stop {'ENGAGED: holding' if engaged else 'released'}")

    def _on_safety_mode(self, source: str, msg: UInt8) -> None:
        # as for the e-stop: normal only when every subscription that has reported says normal
        self._mode_by_source[source] = int(msg.data)
        abnormal = [m for m in self._mode_by_source.values() if m != SAFETY_MODE_NORMAL]
        hold = self.session.on_safety_mode(abnormal[0] if abnormal else SAFETY_MODE_NORMAL, time.monotonic())
        if hold is not None and self._active:  # a protective stop holds at once, as an e-stop does
            self._publish(hold, kind=KIND_STOP)

    def _warn(self, reason: str | None) -> None:
        """After a message callback: log the rejection summary when one is due (at most once a second)."""
        if reason is not None:
            self._log_rejections()

    def _log_rejections(self) -> None:
        line = self.session.rejection_summary(time.monotonic())
        if line is not None:
            self.get_logger().warning(line)

    # ----- control ------------------------------------------------------------------------------
    def _tick(self) -> None:
        start = time.monotonic()
        self._take_joint_states()
        self._log_rejections()
        self._control(start)

    def _control(self, now: float, stamp: Any = None) -> bool:
        """One session tick at ``now``; publishes its command and outcome. True when a trajectory command
        stamped ``stamp`` went out (sim time: the twin waits for it)."""
        out = self.session.tick(now)
        sent = False
        if out.command is not None:
            sent = self._publish(out.command, stamp, out.kind) and stamp is not None
            if not self._sim_time:
                self.latency.record(now, self._last_receipt, time.monotonic())
            if out.held:
                self.get_logger().warning(f"holding: {'; '.join(out.reasons)}", throttle_duration_sec=1.0)
        if out.gripper is not None and self.pub_gripper is not None:  # passed the gripper's safety gate
            self.pub_gripper.publish(Float64MultiArray(data=list(out.gripper)))
            self._sent["gripper"] += 1
        if out.record is not None:
            self._publish_outcome(out.record)
        return sent

    def _publish(self, positions: Any, stamp: Any = None, kind: str = "") -> bool:
        """Send a command (``stamp``: its header stamp, default now) and, where the command-kind topic is on
        (publish_command_kind), why the safety module produced it (``kind``, SafetyDecision.kind) under the same
        stamp. True for a stamped trajectory command."""
        stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        if self.io.command_interface == "trajectory":
            duration = self.session.segment_time(positions)  # never faster than allowed
            msg = trajectory_command(self.io.joint_names, positions, duration)
            msg.header.stamp = stamp  # when it was sent (the twin drops pre-reset ones; with sim time, the tick it answers)
            self.pub_cmd.publish(msg)
        else:
            self.pub_cmd.publish(forward_command(positions))
            self._sent["forward"] += 1
        if self.pub_kind is not None:
            self.pub_kind.publish(Header(stamp=stamp, frame_id=kind))
        return self.io.command_interface == "trajectory"

    def _publish_outcome(self, record: Any) -> None:
        """Publish one episode record (callers make sure the node is active)."""
        self.pub_outcome.publish(String(data=to_json(record)))
        self.get_logger().info(f"episode {record.seed}: success={record.success} "
                               f"final_error={record.final_error:.3f} m ({record.meta.get('end_reason')})")  # fmt: skip

    def _on_start(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        if not self._active:
            res.message, res.success = "node is not active: activate it before starting an episode", False
            return res
        if self._sim_time:  # starts on the next joint state (its first tick at its start time)
            res.message, res.success = self._request_start()
            return res
        try:
            res.message, res.success = self.session.start_episode(time.monotonic()), True
        except ValueError as err:
            res.message, res.success = str(err), False
        return res

    def _request_start(self) -> tuple[str, bool]:
        """use_sim_time: check that an episode may start now; it starts at the next joint state (or once a hold
        met there clears: DeploymentSession.start_requested)."""
        try:
            return self.session.request_start(self._sim_now), True
        except ValueError as err:
            return str(err), False

    def _on_stop(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        try:
            record = self.session.stop_episode()
        except ValueError as err:
            res.message, res.success = str(err), False
            return res
        if record is not None and self._active:
            self._publish_outcome(record)
        res.message, res.success = "episode stopped", True
        return res


# use_sim_time: how far from the latest joint state a sample's stamp may count (the twin's 1 s reset pause and
# a period): a stamp further ahead (a hostile or broken publisher) would otherwise keep its frame "fresh" and
# empty the camera's rate budget until the simulated clock caught up with it; one further back is stale anyway.
SAMPLE_LEAD_MAX_S = 1.5


def sim_receipt_time(stamp_s: float, sim_now: float) -> float:
    """use_sim_time: when a camera frame or tracker sample counts as received: its stamp, within
    SAMPLE_LEAD_MAX_S of the latest joint state (an unstamped one: that state's time).

    A sample delivered late, after later joint states, counts when it was taken, not at the latest state: a
    node that subscribed late under load got the twin's queued tracker samples (10, 40 ms apart) in one burst;
    counted at one instant they emptied the rate budget, which then refused the episode's first sample, so
    the policy's first velocities came from an older sample than the env's (tests/ros/test_pipeline_parity.py
    failed 2 of ~90 runs at load 5-10 with 2.4e-5 rad at step 2; debug log of the node's receipts). Counted at
    their stamps they keep their spacing for the budget, and their age is judged from when they were taken."""
    if not stamp_s > 0.0:
        return sim_now
    return min(max(stamp_s, sim_now - SAMPLE_LEAD_MAX_S), sim_now + SAMPLE_LEAD_MAX_S)


def spin_until_shutdown(node: Any, wake_s: float = 0.1) -> None:
    """rclpy.spin, but the wait wakes every ``wake_s`` to look at the context: once (fresh-clone suite, load ~2,
    2026-12-08) a SIGINT shut the context down (\"publisher's context is invalid\") while spin's untimed wait never
    woke, and the node ignored the stop for 15 s until killed."""
    executor = rclpy.get_global_executor()
    executor.add_node(node)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=wake_s)
    finally:
        executor.remove_node(node)


def context_going_down(ok: Any, wait_s: float = 0.5, poll_s: float = 0.01) -> bool:
    """Whether rclpy's context is down or goes down within ``wait_s`` (``ok``: rclpy.ok). An exception out of spin
    while a SIGINT shuts the context down is that stop, not a failure: a loopback test at load ~8 (2026-12-08) saw
    pybind11's "Unable to convert call argument '0' to Python object" raised out of spin with rclpy.ok() still
    true, the context going down just after (the same race as :func:`_rclpy_cleanup`'s). A real error raises
    ``wait_s`` later."""
    deadline = time.monotonic() + wait_s
    while ok():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def _rclpy_cleanup(step: str, action: Any) -> None:
    """rclpy's own clean-up after SIGINT raised once in ~60 loopback runs (pybind11: "Unable to convert call
    argument '0' to Python object"), after the session had closed: the episode was stopped and its outcome
    published by then, so it is reported in one line instead of failing the stop the operator asked for."""
    try:
        action()
    except Exception as err:  # noqa: BLE001 - see the docstring
        frame = traceback.extract_tb(err.__traceback__)[-1]  # where, for the root cause (not found yet)
        print(f"ast_policy: rclpy {step} at exit raised {type(err).__name__}: {err} at {frame.filename}:"
              f"{frame.lineno} ({frame.name}); the session had closed: arm held, exit status kept",
              file=sys.stderr, flush=True)  # fmt: skip


def run(checkpoint: str, robot: str, deploy_cfg: Any = None, args: list[str] | None = None) -> int:
    """Init rclpy, configure + activate the node, spin until SIGINT/SIGTERM, shut down cleanly."""
    try:
        return _run(checkpoint, robot, deploy_cfg, args)
    except KeyboardInterrupt:  # the SIGINT landed between spin's end and the clean-up: still the asked stop
        return 0


def _run(checkpoint: str, robot: str, deploy_cfg: Any, args: list[str] | None) -> int:
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    node = PolicyNode(checkpoint, robot, deploy_cfg)
    code = 0
    try:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            # A SIGINT/SIGTERM that lands while the transition returns invalidates the context and fails it:
            # that is the stop the operator asked for, not a failed configuration.
            code = 1 if rclpy.ok() else 0
        else:
            node.trigger_activate()
            spin_until_shutdown(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # a signal invalidates the context mid-call (start-up, or spin): still a clean stop
        if not context_going_down(rclpy.ok):
            raise
    finally:
        # rclpy chains SIGINT to Python's handler, whose KeyboardInterrupt can arrive after spin returned:
        # a second interruption must not cut the clean-up (episode record, scheduler thread) short.
        main_thread = threading.current_thread() is threading.main_thread()  # signal.signal works only there
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        node.log_summary()
        node.session_close()  # arm held, worker stopped: a failure here still fails the run
        _rclpy_cleanup("destroy_node", node.destroy_node)
        _rclpy_cleanup("shutdown", lambda: rclpy.shutdown() if rclpy.ok() else None)
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    return code


def main(args: list[str] | None = None) -> int:
    """ros2 run entry point: parameters (checkpoint, robot, ...) come from the command line / launch."""
    return run("", "ur5e", args=args)

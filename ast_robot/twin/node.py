"""The twin's ROS 2 adapter: :class:`~ast_robot.twin.sim.TwinSim` behind the drivers' topics.

The only module of ``ast_robot`` that imports rclpy. Publishes ``/joint_states`` at the configured rate
(the physics is advanced to wall-clock time on every tick; with ``sim_time``, see below), camera images (pick-and-
place with a ``wrist_camera`` topic: the wrist camera's too, on the same ticks), and the safety mode
(std_msgs/UInt8, UR numbering, transient-local on ``topics.safety_mode``: what a user bridges from
ur_robot_driver's ur_dashboard_msgs/SafetyMode, so the policy node's fail-closed start sees it); accepts JointTrajectory and Float64MultiArray commands; offers
``/twin/reset`` and ``/twin/unlock`` (std_srvs/Trigger).

Simulated time (``sim_time=True``, ``ast-robot twin --sim-time``): the twin owns the clock. It publishes
``/clock`` and steps the physics one joint-state period at a time, in lock-step with the controller:
after publishing the state stamped ``t`` it waits until the controller has answered that state on
``/ast/tick`` (std_msgs/Header stamped ``t``; ``frame_id`` "command" when a command for ``t`` was sent too,
which the twin then also waits for), applies what arrived, and only then advances to ``t + period``.
So the twin never runs ahead of the policy node and no message crosses a period boundary: an episode's
outcome depends on the policy, the goals and the hidden parameters, not on how loaded the machine is.
Without a controller on ``/ast/tick`` the twin runs free at about real-time speed, and until the controller
has answered once (a policy node creates its answer publisher before it spins: at load 9 that took over
``ACK_TIMEOUT_S``, the twin gave up on it and ran the first episode free); a controller that stays silent
for ``ACK_TIMEOUT_S`` of wall time after that (it died) is logged and no longer waited for.
Commands and resets are stamped in that clock; it runs on across ``/twin/reset`` (``RESET_PAUSE_S`` ahead),
so stamps never go back.

What the policy observes besides the joints is lock-stepped too (issue 21: the same twin and seed gave 2/4 and
3/4 successes from one run to the next). The cubes' poses and the camera frames are published *before* the joint
state of the same stamp, and once the controller has acknowledged a kind of sample (``/ast/tick`` with
``frame_id`` :data:`RECEIPT_POSES` / :data:`RECEIPT_CAMERA`) the twin waits for each such receipt before it
publishes that state: a sample can no longer arrive one tick late, or early, depending on the load. After
``/twin/reset`` the samples keep the simulated clock's rate while the arm rests; from the first command on
(the episode's first tick) they follow the physics' own time, with one sample of the resting table stamped at
that tick, so their timing relative to the episode does not depend on how long the start took.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

try:
    import rclpy
    from geometry_msgs.msg import Pose, PoseArray
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray, Header, String, UInt8
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(f'the twin node needs ROS 2 Python packages ({err}); install them with: '
                      f'pip install "ast-robot[ros]"') from err  # fmt: skip

from ast_robot.config.deploy import RobotIOConfig
from ast_robot.records.tick import SENT_KINDS, parse_answer
from ast_robot.robot.sampling import TRACKER_RATE_HZ, next_due, sample_due
from ast_robot.robot.wire import duration_seconds
from ast_robot.twin.hidden import HiddenParams
from ast_robot.twin.sim import CommandRefused, TwinSim

# Header.frame_id of an answer: ast_robot.records.tick (a stamped command, counts of unstamped ones)
RECEIPT_POSES, RECEIPT_CAMERA = "received:object_poses", "received:camera"  # frame_ids of sample receipts
RECEIPT_WRIST = "received:wrist_camera"  # ... of a wrist camera frame (a wrist-camera policy node sends it)
SCENE_CAMERA = "scene"  # the envs' scene camera (ast_robot.envs.base renders it by this name)
# Sim-time mode: /twin/reset moves the clock on by this much. The reset teleports the arm home; a driver
# stream whose arm jumps is trusted again only once the jump is reachable at the data-sheet speed over the time
# since (robot/trust.MeasurementTrust), so without a pause the next episode's start waited on how fast the
# lock-step ran (flaky under load). A real arm taken home also takes about this long.
RESET_PAUSE_S = 1.0
OBJECT_POSE_HZ = TRACKER_RATE_HZ  # the cubes' poses, at about a lab tag tracker's rate (every k-th joint state)
ACK_TIMEOUT_S = 5.0  # wall seconds the twin waits for an answer before it stops waiting for that controller


def stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class TwinNode(Node):
    """A simulated UR5e/FR3 that speaks the drivers' topics."""

    def __init__(self, io: RobotIOConfig, hidden: HiddenParams, seed: int = 0, name: str = "ast_twin",
                 sim_time: bool = False, task: str = "reach") -> None:  # fmt: skip
        super().__init__(name)
        self.io, self.sim_time = io, sim_time
        self.table: Any = None  # pick-and-place: ast_robot.twin.pickplace.PickPlaceTable
        if task not in ("reach", "pickplace"):
            raise ValueError(f"task: {task!r}; the twin serves 'reach' and 'pickplace'")
        model = None
        if task == "pickplace":
            from ast_robot.twin.pickplace import build_model

            model = build_model(io.robot, hidden, wrist_camera=bool(io.topics.wrist_camera))
        self.sim = TwinSim(io.robot, hidden, seed=seed, joint_names=io.joint_names, model=model)
        self._seed, self._resets = seed, 0
        self._frozen = False  # sim-time mode: at rest after /twin/reset until the first command (see _on_reset)
        self._frozen_state: Any = None
        self._t0 = time.monotonic()
        self.refused: dict[str, int] = {}
        t = io.topics
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_js = self.create_publisher(JointState, t.joint_states, qos)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_mode = self.create_publisher(UInt8, t.safety_mode, latched)  # late joiners get the current mode
        self.pub_cam = self.create_publisher(Image, t.camera, 2)
        self.pub_wrist = None  # pick-and-place with a wrist_camera topic: the camera on the gripper (_attach_table)
        self.create_subscription(JointTrajectory, t.trajectory, self._on_trajectory, qos)
        self.create_subscription(Float64MultiArray, t.forward_position, self._on_forward, qos)
        self.create_service(Trigger, t.twin_reset, self._on_reset)
        self.create_service(Trigger, t.twin_unlock, self._on_unlock)
        if task == "pickplace":
            self._attach_table(hidden, qos)
        self.create_timer(0.1, self._publish_mode)
        self._renderer: Any = None
        self._wrist_renderer: Any = None
        if io.camera_rate_hz > 0 and not sim_time:  # the wrist camera's frames at the scene camera's rate
            self.create_timer(1.0 / io.camera_rate_hz, self._publish_cameras)
        self._last_mode = -1
        self._reset_stamp = 0.0  # ROS time (s) of the last /twin/reset
        self._clock_ticks = 0  # sim-time mode: the clock in whole periods (exact stamps; runs on across resets)
        self._answered = threading.Condition()
        self._answer: tuple[int, bool] = (-1, False)  # (stamp ns, with command) of the latest /ast/tick
        self._command_ns = -1  # stamp (ns) of the latest command received
        self._announced = dict.fromkeys(SENT_KINDS, 0)  # unstamped commands the controller says it sent, in all
        self._received = dict.fromkeys(SENT_KINDS, 0)  # ... and those received (records.tick)
        self._receipts: dict[str, int] = {}  # sample kind -> stamp (ns) of the latest one the controller received
        self._next_sample: dict[tuple[str, str], float] = {}  # sim-time mode: (kind, clock) -> when the next is due (s)
        self._sample_ns: dict[str, int] = {}  # sim-time mode: kind -> stamp (ns) of the latest sample published
        self._ignored = False  # a controller that did not answer in ACK_TIMEOUT_S: run free
        if sim_time:
            self.pub_clock = self.create_publisher(Clock, t.clock, qos)
            self.sub_tick = self.create_subscription(Header, t.tick, self._on_tick_answer,
                                                     QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))  # fmt: skip
        # The joint-state loop runs in its own thread, paced by absolute deadlines: an executor timer at
        # 500 Hz costs an rclpy wait-set rebuild (~0.5 ms of CPU) per tick, which a real robot's controller
        # does not take from the control PC. The lock keeps the physics consistent between that loop and
        # the command/service callbacks.
        self._lock = threading.Lock()
        self._running = True
        loop = self._lockstep_loop if sim_time else self._state_loop
        self._loop = threading.Thread(target=loop, args=(1.0 / io.joint_state_rate_hz,), name="twin_joint_states",
                                      daemon=True)  # fmt: skip
        self._loop.start()

    # ----- physics + state ---------------------------------------------------------------------
    def _state_loop(self, period: float) -> None:
        """Publish a joint state every ``period`` s until the node is destroyed (missed deadlines are skipped)."""
        deadline = time.monotonic()
        while self._running and rclpy.ok(context=self.context):
            deadline += period
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -period:  # fell more than a period behind: restart the cadence, no burst
                deadline = time.monotonic()
            try:
                self._tick()
            except Exception:  # the context shut down between the check and the publish: a clean stop
                if self._running and rclpy.ok(context=self.context):
                    raise
                return

    def _tick(self) -> None:
        with self._lock:
            self.sim.step_to(time.monotonic() - self._t0)
        self._publish_state(self.get_clock().now().to_msg())

    def _publish_state(self, stamp: Any) -> None:
        with self._lock:
            if self._frozen and self._frozen_state is not None:
                q, dq, effort = self._frozen_state
            else:
                q, dq, effort = self.sim.joint_state()
                self._frozen_state = (q, dq, effort) if self._frozen else None
        names, extra = list(self.io.joint_names), []
        if self.table is not None:  # the gripper's joints, as the drivers add them (velocity/effort unknown: 0)
            with self._lock:
                gripper_names, extra = self.table.state_entries()
            names += gripper_names
        zeros = [0.0] * len(extra)
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = names
        msg.position, msg.velocity, msg.effort = q.tolist() + extra, dq.tolist() + zeros, effort.tolist() + zeros
        self.pub_js.publish(msg)
        if self.table is not None and self.pub_objects is not None and not self.sim_time:
            self._pose_count += 1
            if self._pose_count % self._pose_every == 1 or self._pose_every == 1:
                self._publish_object_poses(stamp)
        if self.sim.safety_mode != self._last_mode:
            self._publish_mode()

    # ----- simulated time ----------------------------------------------------------------------
    def now_s(self) -> float:
        """The twin's clock (s): wall-clock ROS time, or in sim-time mode the simulated clock."""
        if self.sim_time:
            return self._clock_ticks / self.io.joint_state_rate_hz
        return self.get_clock().now().nanoseconds * 1e-9

    def _lockstep_loop(self, period: float) -> None:
        """Sim-time mode: publish /clock and the state at t, wait for the controller's answer, step to t + period.

        The camera renders in this thread here, and an EGL context can be released only by the thread that
        holds it: the renderer is closed on the way out (else destroy_node fails with EGL_BAD_ACCESS)."""
        try:
            self._lockstep_steps(period)
        finally:
            self._close_renderers()

    def _lockstep_steps(self, period: float) -> None:
        while self._running and rclpy.ok(context=self.context):
            with self._lock:
                t, frozen = self.now_s(), self._frozen
            stamp = _to_time(t)
            try:
                self.pub_clock.publish(Clock(clock=stamp))
                self._publish_samples(t, stamp, frozen)  # before the state they belong with, each one received
                self._publish_state(stamp)
            except Exception:  # the context shut down between the check and the publish: a clean stop
                if self._running and rclpy.ok(context=self.context):
                    raise
                return
            self._wait_for_answer(stamp_ns(stamp), period)
            with self._lock:
                if self.now_s() != t:  # /twin/reset moved the clock meanwhile
                    continue
                started = frozen and not self._frozen
            if started:  # the first command after a reset: samples follow the physics' time from here
                self._publish_samples(t, stamp, frozen=False, restart=True)
            with self._lock:
                if self.now_s() != t:
                    continue
                self._clock_ticks += 1
                if not self._frozen:  # else the clock runs while the arm waits at rest for its first command
                    self.sim.step_to(self.sim.time + period)

    def _publish_samples(self, t: float, stamp: Any, frozen: bool, restart: bool = False) -> None:
        """Sim-time mode: the object poses and the camera frame due at ``t``, each waited for until received.

        While the arm rests after a reset (``frozen``) they keep the simulated clock's rate; from the episode's
        first command on, the physics' own time (``restart``: a sample of each now, unless one went out at this
        stamp already, and the next a period later on the physics' time)."""
        kinds = []
        if self.table is not None and self.pub_objects is not None:
            kinds.append((RECEIPT_POSES, OBJECT_POSE_HZ, self._publish_object_poses))
        if self.io.camera_rate_hz > 0:
            kinds.append((RECEIPT_CAMERA, self.io.camera_rate_hz, self._publish_camera))
            if self.pub_wrist is not None:  # on the same grid as the scene camera's
                kinds.append((RECEIPT_WRIST, self.io.camera_rate_hz, self._publish_wrist_camera))
        with self._lock:
            now = t if frozen else self.sim.time
        for kind, rate, publish in kinds:
            key = (kind, "clock" if frozen else "physics")
            due = self._next_sample.get(key)
            if not restart and not sample_due(now, due):
                continue
            # the next one a period on (on the grid; from now after a restart, or when the clock jumped ahead): the
            # schedule an env with the deployment pipeline samples its tracker on (robot.sampling)
            self._next_sample[key] = next_due(now, due, rate, restart)
            t_ns = stamp_ns(stamp)
            if self._sample_ns.get(kind) == t_ns:  # this stamp's sample went out already (same resting scene)
                continue
            self._sample_ns[kind] = t_ns
            publish(stamp)
            self._wait_for_receipt(kind, t_ns)

    def _wait_for_receipt(self, kind: str, t_ns: int) -> None:
        """Block until the controller received the ``kind`` sample stamped ``t_ns``, if it acknowledges that kind
        (one that never did is not waited for: a controller without the receipts, or one that does not
        subscribe)."""
        if kind not in self._receipts or self._ignored:
            return
        deadline = time.monotonic() + ACK_TIMEOUT_S
        with self._answered:
            while self._receipts.get(kind, -1) < t_ns:
                if self.sub_tick.get_publisher_count() == 0 or not self._running:
                    return
                if time.monotonic() > deadline:
                    self._ignored = True
                    self.get_logger().error(f"no receipt of {kind} on {self.io.topics.tick} for {ACK_TIMEOUT_S:g} s: "
                                            f"running free")  # fmt: skip
                    return
                self._answered.wait(0.1)

    def _wait_for_answer(self, t_ns: int, period: float) -> None:
        """Block until the controller answered the state stamped ``t_ns`` (and its command arrived); without
        a controller, pace the free run at about real time."""
        if self._ignored or self.sub_tick.get_publisher_count() == 0 or self._answer[0] < 0:
            time.sleep(period)  # no controller yet, or one that has not answered once (still starting up)
            return
        deadline = time.monotonic() + ACK_TIMEOUT_S
        with self._answered:
            while not self._has_answer(t_ns):
                if self.sub_tick.get_publisher_count() == 0:  # the controller left: run free
                    return
                left = deadline - time.monotonic()
                if left <= 0 or not self._running:
                    self._ignored = self._running
                    for kind, n in self._announced.items():  # a lost command must not stall every later tick
                        self._received[kind] = max(self._received[kind], n)
                    self.get_logger().error(f"no answer on {self.io.topics.tick} for {ACK_TIMEOUT_S:g} s: running free")
                    return
                self._answered.wait(min(left, 0.1))

    def _has_answer(self, t_ns: int) -> bool:
        answered, with_command = self._answer
        return answered >= t_ns and (not with_command or self._command_ns >= answered) and \
            all(self._received[k] >= n for k, n in self._announced.items())  # fmt: skip

    def _on_tick_answer(self, msg: Header) -> None:
        with self._answered:
            if msg.frame_id in (RECEIPT_POSES, RECEIPT_CAMERA, RECEIPT_WRIST):
                self._receipts[msg.frame_id] = max(self._receipts.get(msg.frame_id, -1), stamp_ns(msg.stamp))
            else:
                with_command, sent = parse_answer(msg.frame_id)
                self._answer = (stamp_ns(msg.stamp), with_command)
                for kind, n in sent.items():
                    if n < self._announced[kind]:  # a new controller counts from 0: its messages from here on
                        self._received[kind] = n
                    self._announced[kind] = n
            self._ignored = False
            self._answered.notify_all()

    def _publish_mode(self) -> None:
        self._last_mode = self.sim.safety_mode
        self.pub_mode.publish(UInt8(data=self.sim.safety_mode))

    def _publish_cameras(self) -> None:
        """Wall clock: the scene camera's frame, then the wrist camera's (where there is one), same stamp."""
        stamp = self.get_clock().now().to_msg()
        self._publish_camera(stamp)
        if self.pub_wrist is not None:
            self._publish_wrist_camera(stamp)

    def _publish_camera(self, stamp: Any = None) -> None:
        import mujoco

        h, w = self.io.camera_size
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.sim.model, height=h, width=w)
        model = self.sim.model
        scene = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, SCENE_CAMERA)  # not the wrist camera
        with self._lock:
            # the geometry of the state now: after mj_step it is the previous substep's (mj_step computes positions
            # before it integrates), which drew the moving arm up to 132 levels off the env's render of the same
            # tick (tests/ros/test_pipeline_parity_camera.py); the next mj_step recomputes them, dynamics unchanged
            mujoco.mj_kinematics(model, self.sim.data)
            self._renderer.update_scene(self.sim.data, camera=scene if scene >= 0 else (0 if model.ncam else -1))
        pixels = self._renderer.render()  # (H, W, 3) uint8
        if self.table is not None:
            pixels = self.table.post_process(pixels)
        self.pub_cam.publish(_image(pixels, stamp if stamp is not None else self.get_clock().now().to_msg()))

    def _publish_wrist_camera(self, stamp: Any) -> None:
        """The camera on the gripper (ast_robot.envs.wrist), on its hidden mount, at ``io.wrist_camera_size``."""
        import mujoco

        from ast_robot.envs.wrist import WRIST_CAMERA

        if self._wrist_renderer is None:
            self._wrist_renderer = mujoco.Renderer(self.sim.model, *self.io.wrist_camera_size)
        with self._lock:
            mujoco.mj_kinematics(self.sim.model, self.sim.data)  # the state now (see _publish_camera)
            self._wrist_renderer.update_scene(self.sim.data, camera=WRIST_CAMERA)
        self.pub_wrist.publish(_image(self._wrist_renderer.render(), stamp))

    # ----- commands -----------------------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if 0 < stamp < self._reset_stamp:  # sent before /twin/reset teleported the arm: stale, drop it
            self._note_command(msg.header.stamp)
            return
        points = [(list(p.positions), duration_seconds(p.time_from_start.sec, p.time_from_start.nanosec)) for p in msg.points]
        self._command(lambda: self.sim.command_trajectory(list(msg.joint_names), points))
        self._note_command(msg.header.stamp)

    def _note_command(self, stamp: Any) -> None:
        """Sim-time mode: a command stamped t completes the controller's answer to the state at t."""
        if self.sim_time:
            with self._answered:
                self._command_ns = max(self._command_ns, stamp_ns(stamp))
                self._answered.notify_all()

    def _on_forward(self, msg: Float64MultiArray) -> None:
        # no stamp: in sim-time mode the controller's answer counts the forward commands it sent, and the twin
        # waits until it has received as many (records.tick) before it steps on
        self._command(lambda: self.sim.command_positions(list(msg.data)))
        self._count_received("forward")

    def _count_received(self, kind: str) -> None:
        """Sim-time mode: one more unstamped command of ``kind`` received (and applied, or refused)."""
        if self.sim_time:
            with self._answered:
                self._received[kind] += 1
                self._answered.notify_all()

    def _command(self, apply: Any) -> None:
        try:
            with self._lock:
                if not self.sim_time:  # in sim-time mode the physics waits at the command's tick
                    self.sim.step_to(time.monotonic() - self._t0)  # commands take effect from "now"
                apply()
                self._frozen = False
        except CommandRefused as err:
            key = str(err).split(":")[0]
            self.refused[key] = self.refused.get(key, 0) + 1
            self.get_logger().warning(f"command refused: {err}", throttle_duration_sec=1.0)

    def _on_reset(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self.sim_time:  # the clock runs on past any command in flight, by the time a reset takes
                self._clock_ticks += max(1, round(RESET_PAUSE_S * self.io.joint_state_rate_hz))
                # An episode's start must not depend on how much wall time passed between the reset and the
                # start request: the arm rests, untouched by the physics, until its first command, and the
                # sensor noise restarts from a seed of its own for each reset.
                self._frozen, self._frozen_state, self._resets = True, None, self._resets + 1
                self.sim.rng = np.random.default_rng([self._seed, self._resets])
            self.sim.reset()
            if self.table is not None:
                self.table.after_reset()
            self._t0 = time.monotonic()
            self._reset_stamp = self.now_s()
        res.success, res.message = True, "twin reset to the home position"
        return res

    # ----- pick-and-place (ast_robot.twin.pickplace) ---------------------------------------------
    def _attach_table(self, hidden: HiddenParams, qos: QoSProfile) -> None:
        """The table setting (String JSON, kept: a late twin still gets the last one) and the gripper."""
        from ast_robot.twin.pickplace import PickPlaceTable

        self.table = PickPlaceTable(self.sim, self.io.gripper, hidden)
        topic = self.io.topics.object_poses  # what a lab's tag tracker publishes (empty: no tracker)
        self.pub_objects = self.create_publisher(PoseArray, topic, qos) if topic else None
        self._pose_every = max(1, round(self.io.joint_state_rate_hz / OBJECT_POSE_HZ))
        self._pose_count = 0
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, self.io.topics.twin_scene, self._on_scene, latched)
        if self.io.topics.wrist_camera:  # the model has the camera on the gripper (build_model)
            self.pub_wrist = self.create_publisher(Image, self.io.topics.wrist_camera, 2)
        if self.io.topics.gripper_command:
            self.create_subscription(Float64MultiArray, self.io.topics.gripper_command, self._on_gripper, qos)

    def _publish_object_poses(self, stamp: Any) -> None:
        """The cubes' poses (the table's order), as a tracker measures them: position and orientation."""
        msg = PoseArray()
        msg.header.stamp, msg.header.frame_id = stamp, "base_link"
        with self._lock:
            poses = [self.table.object_pose(i) for i in range(self.table.n_objects)]
        for p in poses:
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = (float(v) for v in p[:3])
            pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = (float(v) for v in p[3:])
            msg.poses.append(pose)
        self.pub_objects.publish(msg)

    def _on_scene(self, msg: String) -> None:
        from ast_robot.twin.pickplace import SceneRefused, parse_scene

        try:
            scene = parse_scene(msg.data)
        except SceneRefused as err:
            self.refused["scene"] = self.refused.get("scene", 0) + 1
            self.get_logger().warning(f"scene refused: {err}")
            return
        with self._lock:
            self.table.set_scene(scene)

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        try:
            with self._lock:
                self.table.command(list(msg.data))
        except ValueError as err:
            self.refused["gripper"] = self.refused.get("gripper", 0) + 1
            self.get_logger().warning(f"gripper command refused: {err}", throttle_duration_sec=1.0)
        self._count_received("gripper")

    def _on_unlock(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._lock:
            was = self.sim.stop_reason
            self.sim.unlock()
        res.success, res.message = True, f"protective stop released ({was or 'was not stopped'})"
        return res

    def destroy_node(self) -> None:
        self._running = False
        if self._loop.is_alive() and self._loop is not threading.current_thread():
            self._loop.join(timeout=1.0)
        self._close_renderers()
        super().destroy_node()

    def _close_renderers(self) -> None:
        for name in ("_renderer", "_wrist_renderer"):
            if getattr(self, name) is not None:
                getattr(self, name).close()
                setattr(self, name, None)


def _image(pixels: np.ndarray, stamp: Any) -> Image:
    """sensor_msgs/Image (rgb8) of an (H, W, 3) uint8 render."""
    h, w = pixels.shape[:2]
    msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
    msg.header.stamp = stamp
    msg.data = pixels.tobytes()
    return msg


def _to_time(seconds: float) -> Any:
    """builtin_interfaces/Time of ``seconds``, rounded to the microsecond (stamps compare exactly)."""
    from builtin_interfaces.msg import Time

    ns = int(round(seconds * 1e6)) * 1000
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def spin_node(node: Node) -> int:
    """Spin until SIGINT/SIGTERM (rclpy's handlers shut the context down); clean up; exit code 0."""
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # a signal during start-up invalidates the context mid-call: still a clean stop
        if rclpy.ok():
            raise
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def main(io: RobotIOConfig, hidden: HiddenParams, seed: int = 0, args: list[str] | None = None,
         sim_time: bool = False, task: str = "reach") -> int:  # fmt: skip
    """Run the twin until interrupted (``sim_time``: publish /clock, lock-step with the controller;
    ``task`` "pickplace": the pick-and-place table, gripper and camera of :mod:`ast_robot.twin.pickplace`)."""
    rclpy.init(args=args)
    return spin_node(TwinNode(io, hidden, seed, sim_time=sim_time, task=task))

"""The twin's ROS 2 adapter: :class:`~ast_robot.twin.sim.TwinSim` behind the drivers' topics.

The only module of ``ast_robot`` that imports rclpy. Publishes ``/joint_states`` at the configured rate
(the physics is advanced to wall-clock time on every tick), camera images, and the safety mode
(std_msgs/UInt8, UR numbering, transient-local on ``topics.safety_mode``: what a user bridges from
ur_robot_driver's ur_dashboard_msgs/SafetyMode, so the policy node's fail-closed start sees it); accepts JointTrajectory and Float64MultiArray commands; offers
``/twin/reset`` and ``/twin/unlock`` (std_srvs/Trigger).
"""

from __future__ import annotations

import threading
import time
from typing import Any

try:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray, UInt8
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(f'the twin node needs ROS 2 Python packages ({err}); install them with: '
                      f'pip install "ast-robot[ros]"') from err  # fmt: skip

from ast_robot.config.deploy import RobotIOConfig
from ast_robot.twin.hidden import HiddenParams
from ast_robot.twin.sim import CommandRefused, TwinSim


class TwinNode(Node):
    """A simulated UR5e/FR3 that speaks the drivers' topics."""

    def __init__(self, io: RobotIOConfig, hidden: HiddenParams, seed: int = 0, name: str = "ast_twin") -> None:
        super().__init__(name)
        self.io = io
        self.sim = TwinSim(io.robot, hidden, seed=seed, joint_names=io.joint_names)
        self._t0 = time.monotonic()
        self.refused: dict[str, int] = {}
        t = io.topics
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_js = self.create_publisher(JointState, t.joint_states, qos)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_mode = self.create_publisher(UInt8, t.safety_mode, latched)  # late joiners get the current mode
        self.pub_cam = self.create_publisher(Image, t.camera, 2)
        self.create_subscription(JointTrajectory, t.trajectory, self._on_trajectory, qos)
        self.create_subscription(Float64MultiArray, t.forward_position, self._on_forward, qos)
        self.create_service(Trigger, "/twin/reset", self._on_reset)
        self.create_service(Trigger, "/twin/unlock", self._on_unlock)
        self.create_timer(0.1, self._publish_mode)
        self._renderer: Any = None
        if io.camera_rate_hz > 0:
            self.create_timer(1.0 / io.camera_rate_hz, self._publish_camera)
        self._last_mode = -1
        self._reset_stamp = 0.0  # ROS time (s) of the last /twin/reset
        # The joint-state loop runs in its own thread, paced by absolute deadlines: an executor timer at
        # 500 Hz costs an rclpy wait-set rebuild (~0.5 ms of CPU) per tick, which a real robot's controller
        # does not take from the control PC. The lock keeps the physics consistent between that loop and
        # the command/service callbacks.
        self._lock = threading.Lock()
        self._running = True
        self._loop = threading.Thread(target=self._state_loop, args=(1.0 / io.joint_state_rate_hz,),
                                      name="twin_joint_states", daemon=True)  # fmt: skip
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
            q, dq, effort = self.sim.joint_state()
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = list(self.io.joint_names)
        msg.position, msg.velocity, msg.effort = q.tolist(), dq.tolist(), effort.tolist()
        self.pub_js.publish(msg)
        if self.sim.safety_mode != self._last_mode:
            self._publish_mode()

    def _publish_mode(self) -> None:
        self._last_mode = self.sim.safety_mode
        self.pub_mode.publish(UInt8(data=self.sim.safety_mode))

    def _publish_camera(self) -> None:
        import mujoco

        h, w = self.io.camera_size
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.sim.model, height=h, width=w)
        with self._lock:
            self._renderer.update_scene(self.sim.data, camera=0 if self.sim.model.ncam else -1)
        pixels = self._renderer.render()  # (H, W, 3) uint8
        msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.data = pixels.tobytes()
        self.pub_cam.publish(msg)

    # ----- commands -----------------------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if 0 < stamp < self._reset_stamp:  # sent before /twin/reset teleported the arm: stale, drop it
            return
        points = [(list(p.positions), p.time_from_start.sec + p.time_from_start.nanosec * 1e-9) for p in msg.points]
        self._command(lambda: self.sim.command_trajectory(list(msg.joint_names), points))

    def _on_forward(self, msg: Float64MultiArray) -> None:
        self._command(lambda: self.sim.command_positions(list(msg.data)))

    def _command(self, apply: Any) -> None:
        try:
            with self._lock:
                self.sim.step_to(time.monotonic() - self._t0)  # commands take effect from "now" in sim time
                apply()
        except CommandRefused as err:
            key = str(err).split(":")[0]
            self.refused[key] = self.refused.get(key, 0) + 1
            self.get_logger().warning(f"command refused: {err}", throttle_duration_sec=1.0)

    def _on_reset(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self.sim.reset()
            self._t0 = time.monotonic()
        self._reset_stamp = self.get_clock().now().nanoseconds * 1e-9
        res.success, res.message = True, "twin reset to the home position"
        return res

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
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().destroy_node()


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


def main(io: RobotIOConfig, hidden: HiddenParams, seed: int = 0, args: list[str] | None = None) -> int:
    """Run the twin until interrupted."""
    rclpy.init(args=args)
    return spin_node(TwinNode(io, hidden, seed))

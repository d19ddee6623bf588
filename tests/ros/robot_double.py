"""The test plays the robot: publishes joint states and collects the node's commands."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import UInt8
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from tests.ros.helpers import (
    LATCHED,
    RELIABLE,
    SAFETY_TOPIC,
    TRAJ_TOPIC,
    UR5E_JOINTS,
    call,
    spin_for,
    wait_until,
)

HOME = np.array([-0.3006, -1.6927, 1.9236, -1.8017, -1.571, -1.8712])


class RobotDouble:
    """Publishes /joint_states from ``q`` and records every command with its receipt time."""

    def __init__(self, node: Any, streaming: bool = True, safety_mode: int | None = 1) -> None:
        """``streaming=False``: publish no joint states or safety mode (a real robot, e.g. the twin, already
        does). Streaming, it publishes the bridged safety mode NORMAL once, transient-local, as a bridge
        from ur_robot_driver would."""
        self.node, self.q, self.follow, self.auto = node, HOME.copy(), streaming, streaming
        self.reported: list[np.ndarray] = []  # every joint position published by the streaming timer
        node.create_timer(1 / 250, lambda: self.auto and self.state())  # a driver streams while we spin
        self.commands: list[tuple[float, np.ndarray]] = []
        self.pub_js = node.create_publisher(JointState, "/joint_states", RELIABLE)
        self.pub_goal = node.create_publisher(PoseStamped, "/ast/goal", RELIABLE)
        if streaming and safety_mode is not None:
            self.pub_mode = node.create_publisher(UInt8, SAFETY_TOPIC, LATCHED)
            self.pub_mode.publish(UInt8(data=safety_mode))  # 1 = NORMAL; late joiners get it (transient-local)
        node.create_subscription(JointTrajectory, TRAJ_TOPIC, self._on_cmd, RELIABLE)
        self.start = node.create_client(Trigger, "/ast/start_episode")
        self.stop = node.create_client(Trigger, "/ast/stop_episode")

    def _on_cmd(self, msg: JointTrajectory) -> None:
        order = [list(msg.joint_names).index(n) for n in UR5E_JOINTS]
        self.commands.append((time.monotonic(), np.array(msg.points[0].positions)[order]))
        if self.follow:
            self.q = self.commands[-1][1].copy()  # an ideal servo: the arm is where it was told to be

    def wait_connected(self) -> None:
        wait_until(self.node, lambda: self.pub_js.get_subscription_count() > 0
                   and self.pub_goal.get_subscription_count() > 0, 30.0, "the policy node's subscriptions")  # fmt: skip
        assert self.start.wait_for_service(timeout_sec=30.0), "start service missing"

    def state(self, names: list[str] | None = None, positions: Any = None, stamp: float | None = None) -> None:
        msg = JointState(name=list(names or UR5E_JOINTS))
        msg.position = list(self.q if positions is None else positions)
        if positions is None:
            self.reported.append(self.q.copy())
        t = time.time() if stamp is None else stamp
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
        self.pub_js.publish(msg)

    def goal(self, xyz: tuple[float, float, float], frame: str = "base_link") -> None:
        msg = PoseStamped()
        msg.header.frame_id = frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in xyz)
        self.pub_goal.publish(msg)

    def stream(self, seconds: float) -> None:
        """Spin for ``seconds``; the timer publishes valid states at 250 Hz while ``auto`` is on."""
        self.auto = True
        spin_for(self.node, seconds)

    def begin_episode(self, goal=(0.3, 0.3, 0.45)) -> None:
        if self.stop.service_is_ready():
            call(self.node, self.stop, Trigger.Request())  # ends a previous episode, if any
        self.stream(0.1)
        self.goal(goal)
        self.stream(0.1)
        res = call(self.node, self.start, Trigger.Request())
        for _ in range(3):  # this process stalled on a loaded machine (331 ms once): the node rightly refused a
            if res.success or "stale" not in res.message:  # start on a stale state; stream and ask again, as an
                break  # operator would
            self.stream(0.1)
            res = call(self.node, self.start, Trigger.Request())
        assert res.success, res.message
        wait_until(self.node, lambda: len(self.commands) > 0, 10.0, "the first command")

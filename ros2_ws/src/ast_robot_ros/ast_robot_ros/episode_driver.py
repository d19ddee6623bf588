"""Episode driver: the operator's side of a deployment, as a node.

Reach: for each goal it (optionally) resets the twin, publishes the goal, starts an episode through the
policy node's Trigger service and waits for the episode's outcome record on the outcome topic.
Pick-and-place (:func:`run_pickplace`): for each episode sheet it sets the table (the table JSON with its
target, ``ast_robot.twin.pickplace.episode_sheets``, on ``topics.twin_scene``: the twin places the cubes and
pads, the policy node judges by it), resets the twin, sends the instruction naming the target cube and pad,
starts the episode and collects its outcome. On a real robot the reset step is left out (a person or a
homing routine puts the arm back, a person sets the table). Names: ``RosNames``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ast_robot.config.deploy import RosNames
from ast_robot.records.stream import OUTCOME_QOS
from ast_robot_ros.convert import qos_profile

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class EpisodeDriver(Node):
    """Publishes goals, triggers episodes and collects the outcome records (as JSON dicts)."""

    def __init__(self, names: RosNames, reset: bool = True) -> None:
        super().__init__("ast_episode_driver")
        self.outcomes: list[dict[str, Any]] = []
        self.goal_pub = self.create_publisher(PoseStamped, names.goal, RELIABLE)
        self.table_pub = self.create_publisher(String, names.twin_scene, LATCHED)  # kept for late joiners
        self.instruction_pub = self.create_publisher(String, names.instruction, RELIABLE)
        self.create_subscription(String, names.outcome, lambda m: self.outcomes.append(json.loads(m.data)),
                                 qos_profile(OUTCOME_QOS))  # fmt: skip
        self.start = self.create_client(Trigger, names.start_episode)
        self.reset = self.create_client(Trigger, names.twin_reset) if reset else None

    def wait_ready(self, timeout_s: float) -> None:
        """Wait for discovery: the policy node's goal subscription and services (never a fixed sleep)."""
        deadline = time.monotonic() + timeout_s
        clients = [c for c in (self.start, self.reset) if c is not None]
        while time.monotonic() < deadline:
            if self.goal_pub.get_subscription_count() > 0 and all(c.service_is_ready() for c in clients):
                return
            rclpy.spin_once(self, timeout_sec=0.05)
        raise TimeoutError(f"policy node / twin not discovered within {timeout_s:.0f} s")

    def call(self, client: Any, timeout_s: float = 10.0) -> Any:
        future = client.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(self, future, timeout_sec=timeout_s)
        if not future.done():
            raise TimeoutError(f"service {client.srv_name} did not answer within {timeout_s} s")
        return future.result()

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.01)

    def start_episode(self, retry_s: float = 10.0) -> None:
        """Call start; a refusal while the node holds (e.g. one late joint state on a loaded machine) is
        retried until ``retry_s`` has passed, as an operator would press start again."""
        deadline = time.monotonic() + retry_s
        while True:
            res = self.call(self.start)
            if res.success:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"start_episode refused: {res.message}")
            self.get_logger().info(f"start refused ({res.message}); retrying")
            self.spin_for(0.1)

    def run_pickplace_episode(self, table: str, instruction: str, timeout_s: float) -> dict[str, Any]:
        """Set the table, reset the twin (which puts the cubes where the table says), instruct, start, collect."""
        self.table_pub.publish(String(data=table))
        self.spin_for(0.2)  # the twin and the policy node take the table before the reset places it
        if self.reset is not None and not self.call(self.reset).success:
            raise RuntimeError("the twin refused to reset")
        self.instruction_pub.publish(String(data=instruction))
        self.spin_for(0.2)
        return self._start_and_collect(timeout_s)

    def _start_and_collect(self, timeout_s: float) -> dict[str, Any]:
        count = len(self.outcomes)
        self.start_episode()
        deadline = time.monotonic() + timeout_s
        while len(self.outcomes) <= count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no outcome within {timeout_s} s of starting the episode")
            rclpy.spin_once(self, timeout_sec=0.05)
        return self.outcomes[count]

    def run_episode(self, goal: Sequence[float], timeout_s: float) -> dict[str, Any]:
        if self.reset is not None and not self.call(self.reset).success:
            raise RuntimeError("the twin refused to reset")
        msg = PoseStamped()
        msg.header.frame_id = "base_link"  # the policy node's goal frame (UR's "base" is turned 180 deg)
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in goal)
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)
        self.spin_for(0.2)  # the node sees the goal and post-reset joint states before the episode starts
        return self._start_and_collect(timeout_s)


def run_pickplace(sheets: Sequence[tuple[str, str]], names: RosNames | None = None, reset: bool = True,
                  episode_timeout_s: float = 30.0, discovery_timeout_s: float = 30.0,
                  sim_time: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """One pick-and-place episode per (table JSON with target, instruction) sheet; the outcome records in order."""
    rclpy.init(args=["--ros-args", "-p", "use_sim_time:=true"] if sim_time else None)
    node = EpisodeDriver(names or RosNames(), reset)
    try:
        node.wait_ready(discovery_timeout_s)
        return [node.run_pickplace_episode(table, text, episode_timeout_s) for table, text in sheets]
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def run(goals: Sequence[Sequence[float]], names: RosNames | None = None, reset: bool = True,
        episode_timeout_s: float = 30.0, discovery_timeout_s: float = 30.0,
        sim_time: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Run one episode per goal and return the outcome records in order (``reset``: call the twin's reset
    service first). Timeouts are wall-clock seconds (``sim_time`` only sets use_sim_time: the policy node
    and the twin keep the episode's own time)."""
    rclpy.init(args=["--ros-args", "-p", "use_sim_time:=true"] if sim_time else None)
    node = EpisodeDriver(names or RosNames(), reset)
    try:
        node.wait_ready(discovery_timeout_s)
        return [node.run_episode(goal, episode_timeout_s) for goal in goals]
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

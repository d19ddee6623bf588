"""Recorder node: writes outcome records, joint states and (thinned) camera images to a ROS 2 bag (rosbags),
raw CDR in, CDR out."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from ast_robot.config.deploy import RosNames
from ast_robot.records.bag import BagWriter
from ast_robot_ros.convert import qos_profile

_TYPES = {"std_msgs/msg/String": String, "sensor_msgs/msg/JointState": JointState, "sensor_msgs/msg/Image": Image}


class RecorderNode(Node):
    """Subscribes each topic of ``topics`` (topic -> 'pkg/msg/Type') with raw=True and writes the bytes."""

    def __init__(self, out: str, topics: dict[str, str], storage: str = "mcap", name: str = "ast_recorder",
                 outcome_topic: str = RosNames().outcome, max_rate_hz: dict[str, float] | None = None) -> None:  # fmt: skip
        for topic, msgtype in topics.items():  # before the bag folder exists: a refusal leaves nothing behind
            if msgtype not in _TYPES:
                raise ValueError(f"topics[{topic!r}]: the recorder handles {sorted(_TYPES)}, not {msgtype!r}")
        super().__init__(name)
        self.bag = BagWriter(out, topics, storage, outcome_topic=outcome_topic, max_rate_hz=max_rate_hz)
        for topic, msgtype in topics.items():
            # as the topic is published (the outcomes transient-local: records sent before we joined count),
            # with a deep queue so that a burst is not dropped while a message is written
            offered = qos_profile(self.bag.qos[topic])
            qos = QoSProfile(depth=1000, reliability=offered.reliability, durability=offered.durability)
            self.create_subscription(_TYPES[msgtype], topic, self._writer_for(topic), qos, raw=True)

    def _writer_for(self, topic: str) -> Any:
        sim_time = bool(self.get_parameter("use_sim_time").value)  # then the bag's times are /clock's

        def write(cdr: bytes) -> None:
            self.bag.write(topic, cdr, self.get_clock().now().nanoseconds if sim_time else time.time_ns())

        return write

    def destroy_node(self) -> None:
        self.bag.close()
        super().destroy_node()


def run(out: str, topics: dict[str, str], storage: str = "mcap", duration_s: float | None = None,
        args: list[str] | None = None, outcome_topic: str = RosNames().outcome,
        max_rate_hz: dict[str, float] | None = None) -> dict[str, int]:  # fmt: skip
    """Record until SIGINT/SIGTERM (or ``duration_s``); the bag is closed properly either way.

    A signal only sets a flag: a KeyboardInterrupt raised inside ``BagWriter.write`` would leave half a
    record in the file, and the bag would not read back ("Truncated record").
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    rclpy.init(args=args)  # rclpy's own handlers shut the context down, then call ours
    node = RecorderNode(out, topics, storage, outcome_topic=outcome_topic, max_rate_hz=max_rate_hz)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while rclpy.ok() and not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            rclpy.spin_once(node, timeout_sec=0.1)
    except Exception:  # noqa: BLE001 - a shutdown (signal or external) ends spin_once with an error: done
        if rclpy.ok() and not stop.is_set():
            raise
    finally:
        counts = dict(node.bag.counts)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return counts

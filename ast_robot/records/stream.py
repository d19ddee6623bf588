"""The outcome stream on ROS 2, without ROS: its message type and the QoS each recorded topic is published with.

The policy node publishes one episode record per episode as ``std_msgs/String`` (JSON, :func:`to_json`) with
:data:`OUTCOME_QOS`; the bag writer records the same profiles as the topics' ``offered_qos_profiles``, so a
player replays the outcome topic transient-local, as it was published (a late subscriber still gets it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

STRING = "std_msgs/msg/String"  # the outcome topic's message type (one JSON record per message)
JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"  # camera frames, recorded at a reduced rate (BagWriter's ``max_rate_hz``)


@dataclass(frozen=True)
class TopicQos:
    """A publisher's QoS as far as we set it (keep-last history); everything else is the ROS default."""

    reliability: Literal["reliable", "best_effort"] = "reliable"
    durability: Literal["volatile", "transient_local"] = "volatile"
    depth: int = 10  # keep-last history depth (messages)


# The policy node's outcome publisher: a recorder or episode driver that joins late still gets the records.
OUTCOME_QOS = TopicQos(durability="transient_local", depth=100)
# Joint states as the drivers (and the twin) publish them: reliable, volatile, keep last 10.
STATE_QOS = TopicQos()

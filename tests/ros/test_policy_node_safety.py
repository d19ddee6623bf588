"""The policy node in-process over loopback DDS: hostile parameters, fail-closed safety inputs (transient-
local e-stop and safety mode), the goal frame, and deactivation ending the episode."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from std_msgs.msg import Bool, String, UInt8
from std_srvs.srv import Trigger

from tests.ros.helpers import LATCHED, SAFETY_TOPIC, call, spin_for, wait_until
from tests.ros.robot_double import RobotDouble


@pytest.mark.parametrize("name,value,reason", [
    ("max_joint_speed_scale", 5.0, "deploy.max_joint_speed_scale"),  # 15.7 rad/s on a 3.14 rad/s arm
    ("watchdog_periods", 1e6, "watchdog_periods: expected > 0 and at most 0.1 s"),  # 8000 s: SafetyLimits
    ("checkpoint", "", "parameter 'checkpoint' is empty"),
])  # fmt: skip
def test_hostile_parameters_fail_configure(probe, name, value, reason):
    from ast_robot_ros.policy_node import PolicyNode

    node = PolicyNode("scripted:reach", "ur5e", parameter_overrides=[Parameter(name, value=value)])
    errors: list[str] = []
    node.get_logger().error = errors.append  # the reason the operator reads
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.session is None and any(reason in e for e in errors), errors
    finally:
        node.destroy_node()


@pytest.fixture
def live_node(probe):
    """A configured + activated PolicyNode spun in a background thread (the probe plays robot/operator)."""
    from ast_robot_ros.policy_node import PolicyNode

    estop = probe.create_publisher(Bool, "/ast/estop", LATCHED)
    estop.publish(Bool(data=True))  # pressed before the node exists: transient-local must deliver it
    node = PolicyNode("scripted:reach", "ur5e")
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    node.trigger_activate()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node, estop
    executor.shutdown()
    thread.join(timeout=5)
    node.destroy_node()


def start(probe, robot, tries: int = 20):
    res = call(probe, robot.start, Trigger.Request())
    for _ in range(tries):  # a loaded machine can leave the state briefly stale: the node refuses
        if res.success or "stale" not in res.message:
            break
        spin_for(probe, 0.1)
        res = call(probe, robot.start, Trigger.Request())
    return res


def test_fail_closed_frame_checked_and_deactivate_ends_the_episode(live_node, probe):
    node, estop = live_node
    outcomes: list[dict] = []
    probe.create_subscription(String, "/ast/outcome", lambda m: outcomes.append(json.loads(m.data)), LATCHED)
    robot = RobotDouble(probe, safety_mode=None)  # joint states, but no safety mode yet
    robot.wait_connected()
    robot.stream(0.2)
    robot.goal((0.3, 0.3, 0.45), frame="base")  # UR's base frame: turned 180 deg, refused
    robot.stream(0.2)
    assert node.session.runner.goal is None and node.session.rejections["goal"] == 1
    robot.goal((0.3, 0.3, 0.45))  # base_link
    wait_until(probe, lambda: node.session.runner.goal is not None, 5.0, "the base_link goal")
    refused = start(probe, robot)
    assert not refused.success and "e-stop engaged" in refused.message
    assert "no safety-mode message received yet" in refused.message
    estop.publish(Bool(data=False))
    mode = probe.create_publisher(UInt8, SAFETY_TOPIC, LATCHED)
    mode.publish(UInt8(data=1))
    robot.stream(0.3)
    assert start(probe, robot).success
    wait_until(probe, lambda: len(robot.commands) > 20, 10.0, "commands")
    node.trigger_deactivate()
    n_after = len(robot.commands)
    robot.stream(0.3)
    assert len(robot.commands) <= n_after + 1, "commands published while inactive"
    wait_until(probe, lambda: outcomes, 5.0, "the deactivated episode's record")
    assert outcomes[-1]["meta"]["end_reason"] == "deactivated" and not node.session.episodes.active
    refused = call(probe, robot.start, Trigger.Request())
    assert not refused.success and "not active" in refused.message
    node.trigger_activate()
    robot.stream(0.2)
    first_new = len(robot.commands)
    assert start(probe, robot).success
    wait_until(probe, lambda: len(robot.commands) > first_new, 10.0, "a command after reactivation")
    lim = node.session.runner.limits
    step = np.abs(robot.commands[first_new][1] - robot.commands[first_new - 1][1])
    assert np.all(step <= lim.max_step_change + 1e-9), "reactivation did not restart from rest"

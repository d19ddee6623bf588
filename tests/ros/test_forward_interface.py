"""FR3 through a forward position controller: Float64MultiArray commands in controller joint order."""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from tests.ros.helpers import RELIABLE, Proc, call, spin_for, wait_until


def test_fr3_commands_are_float64_arrays_within_limits(probe, tmp_path):
    from ast_robot.config import DeployConfig
    from ast_robot.robot.safety import SafetyLimits
    from ast_robot.robot.specs import get_robot

    spec = get_robot("fr3")
    lim = SafetyLimits.from_robot(spec, DeployConfig())
    node = Proc(["deploy", "scripted:reach", "--robot", "fr3"], tmp_path / "deploy.log")
    commands: list[np.ndarray] = []
    try:
        pub_js = probe.create_publisher(JointState, "/joint_states", RELIABLE)
        pub_goal = probe.create_publisher(PoseStamped, "/ast/goal", RELIABLE)
        probe.create_subscription(Float64MultiArray, "/forward_position_controller/commands",
                                  lambda m: commands.append(np.array(m.data)), RELIABLE)  # fmt: skip
        wait_until(probe, lambda: pub_js.get_subscription_count() and pub_goal.get_subscription_count(), 30.0,
                   "policy node subscriptions")  # fmt: skip
        names = ["fr3_finger_joint1", *reversed(spec.joint_names)]  # permuted, with an extra gripper joint
        q = np.array(spec.home_qpos)

        def publish_state():
            t = time.time()
            msg = JointState(name=names, position=[0.04, *q[::-1].tolist()])
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
            pub_js.publish(msg)

        def servo_and_publish():
            nonlocal q
            if commands:
                q = commands[-1].copy()  # an ideal servo follows the last command
            publish_state()

        probe.create_timer(1 / 250, servo_and_publish)  # the "driver" streams while we spin
        goal = PoseStamped()
        goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = 0.3, 0.3, 0.45  # ~0.35 m away
        pub_goal.publish(goal)
        spin_for(probe, 0.3)
        start = probe.create_client(Trigger, "/ast/start_episode")
        for _ in range(20):  # a starved machine can leave the state briefly stale: the node refuses
            if call(probe, start, Trigger.Request()).success:
                break
            spin_for(probe, 0.1)
        spin_for(probe, 2.0)
    finally:
        assert node.stop() == 0, node.text()[-2000:]
    qs = np.array(commands)
    assert qs.shape[0] > 20 and qs.shape[1] == 7
    assert np.all(qs >= lim.lower) and np.all(qs <= lim.upper)
    assert np.all(np.abs(np.diff(qs, axis=0)) <= lim.max_step + 1e-9)
    assert np.abs(qs[-1] - np.array(spec.home_qpos)).max() > 0.01  # it moved toward the goal

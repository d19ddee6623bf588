"""Pick-and-place over loopback: the twin's table, camera and gripper behind the drivers' topics, and the
policy node that sees the camera, reads the instruction and closes the gripper through the safety module."""

from __future__ import annotations

import json

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from tests.ros.helpers import LATCHED, RELIABLE, Proc, call, spin_for, wait_until

TABLE = {"objects": [{"colour": "red", "x": 0.45, "y": -0.1}, {"colour": "blue", "x": 0.5, "y": 0.1}],
         "pads": [{"colour": "green", "x": 0.4, "y": 0.15}, {"colour": "yellow", "x": 0.55, "y": -0.15}]}  # fmt: skip
# per robot (configs/deploy/*.yaml): the gripper command topic, the opening (m) from the gripper's joint-state
# entries as the twin publishes them, and the one close command the node should send in the robot's form
ROBOTS = {
    "ur5e": ("/gripper_position_controller/commands",  # Robotiq knuckle: 0 rad open .. 0.8 rad closed
             lambda s: 0.085 * (1 - s["robotiq_85_left_knuckle_joint"] / 0.8), [0.8]),
    "fr3": ("/ast/gripper_command",  # Franka Hand fingers (m each); [width, speed, force] for the relay: a grasp
            lambda s: s["fr3_finger_joint1"] + s["fr3_finger_joint2"], [0.0, 0.05, 70.0]),
}  # fmt: skip


@pytest.mark.slow  # 15-20 s for the three on a quiet machine; 95 s at load 12
@pytest.mark.parametrize("robot,sim_time", [("ur5e", False), ("fr3", False), ("fr3", True)])
def test_twin_camera_reaches_the_node_and_a_scripted_close_closes_the_twins_gripper(probe, tmp_path, robot, sim_time):
    """Wall clock, and simulated time (the twin renders its frames on the simulated clock, lock-step)."""
    topic, opening, close = ROBOTS[robot]
    clock = ["--sim-time"] * sim_time
    twin = Proc(["twin", "--robot", robot, "--task", "pickplace", "--rate", "100", "--camera-rate", "10", *clock],
                tmp_path / "twin.log")  # fmt: skip
    # The test stops its episodes itself: a short timeout ran out during its waits (simulated time ran 3 s in 0.8 s of
    # wall clock at load 6; on the wall clock at load ~10 the node held 2 s for stale states and camera frames).
    node = Proc(["deploy", "scripted:close-gripper", "--robot", robot, "--set", "episode_timeout_s=60", *clock],
                tmp_path / "deploy.log")  # fmt: skip
    images, widths, grips = [], [], []
    try:
        probe.create_subscription(Image, "/camera/image_raw", images.append, 2)
        probe.create_subscription(JointState, "/joint_states", lambda m: widths.append(
            opening(dict(zip(m.name, m.position)))), RELIABLE)  # fmt: skip
        probe.create_subscription(Float64MultiArray, topic, lambda m: grips.append(list(m.data)), RELIABLE)
        pub_scene = probe.create_publisher(String, "/twin/scene", LATCHED)
        pub_scene.publish(String(data=json.dumps(TABLE)))  # the operator sets the table
        pub_text = probe.create_publisher(String, "/ast/instruction", RELIABLE)
        pub_goal = probe.create_publisher(PoseStamped, "/ast/goal", RELIABLE)
        start = probe.create_client(Trigger, "/ast/start_episode")
        wait_until(probe, lambda: images and widths and pub_text.get_subscription_count() > 0
                   and pub_goal.get_subscription_count() > 0, 60.0, "twin images and the node's subscriptions")  # fmt: skip
        assert images[-1].encoding == "rgb8" and (images[-1].height, images[-1].width) == (64, 64)
        assert widths[-1] > 0.075  # open
        pub_text.publish(String(data="put the red block on the green pad"))
        goal = PoseStamped()
        goal.header.frame_id = "base_link"
        goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = 0.5, 0.15, 0.02  # the target pad
        pub_goal.publish(goal)  # the episode record's goal (its pick-and-place outcomes are issue 21 item 4)
        spin_for(probe, 0.3)
        begin(probe, start)
        # the policy is asked only with a recent camera frame and the instruction: its close reaching the twin
        # shows the node received both; the command passed the gripper gate in the robot's own form
        wait_until(probe, lambda: widths[-1] < 0.005, 15.0, "the twin's gripper closed")
        spin_for(probe, 0.5)
        assert grips == [pytest.approx(close)]  # one close, not repeated at the policy rate
        if sim_time:  # frames on the 10 Hz grid of simulated time, stamped with it (the probe may drop some;
            # the reset below moves the clock on by a pause)
            stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in images])
            assert np.allclose(np.round(stamps * 10) / 10, stamps, atol=1e-6) and np.all(np.diff(stamps) > 0), stamps
        # the next episode: the twin's reset opens the hand; the episode's first close goes out again. On
        # simulated time the start may be accepted before the node saw the reset's jumped stream; it then waits
        # out the trust hold there instead of being dropped (issue 21; deterministic: test_sim_time_start.py)
        assert call(probe, probe.create_client(Trigger, "/ast/stop_episode"), Trigger.Request()).success
        assert call(probe, probe.create_client(Trigger, "/twin/reset"), Trigger.Request()).success
        wait_until(probe, lambda: widths[-1] > 0.075, 10.0, "the twin's gripper open after the reset")
        begin(probe, start)
        wait_until(probe, lambda: widths[-1] < 0.005, 15.0, "the twin's gripper closed again")
        assert grips == [pytest.approx(close)] * 2
    except BaseException:  # the node's and the twin's logs of a failing run, beside the failure
        for p in (node, twin):
            p.stop()
        print(f"--- deploy.log\n{node.text()[-20000:]}\n--- twin.log\n{twin.text()[-8000:]}\n--- grips {grips}")
        raise
    finally:
        codes = [p.stop() for p in (node, twin)]
    logs = node.text()[-3000:] + twin.text()[-2000:]
    assert codes == [0, 0], logs
    assert "image rejected" not in node.text() and "refused" not in twin.text(), logs
    assert "did not start" not in node.text(), logs


def begin(probe, start) -> None:
    """Start an episode; a loaded machine can leave the state briefly stale (or untrusted after a reset's
    jump): the node refuses then, and the operator presses start again."""
    res = call(probe, start, Trigger.Request())
    for _ in range(40):
        if res.success:
            return
        spin_for(probe, 0.2)
        res = call(probe, start, Trigger.Request())
    assert res.success, res.message

"""Hostile operator timing through the real policy node over loopback DDS: an episode stopped and restarted while
the arm still moves, with hostile joint states in between (issue 21, bench/hostile_driver.py's step-bound finding).

Before the fix the restart's first command was the measured arm (reset_reference(from_measured=True), ddbe9e8):
with the arm moving at ~0.65 of its allowed speed and its command 0.035 rad ahead, that first command stepped back
2.2-2.4 x max_step against the motion. Now the node does not start while the arm moves towards a command more than
one step away (the start is refused with the reason; the operator starts again) and the safety module never jumps
the command onto a moving arm; once the arm has settled the episode starts at it, as the envs start one. The test
plays a first-order arm (30 ms, the bench's) and reads each command's kind on /ast/command_kind.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Header, UInt8
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
from tests.ros.robot_double import HOME

TAU_S = 0.03
GOALS = ((-0.2, 0.5, 0.7), (0.45, -0.2, 0.25))  # far apart: seconds of motion between them (m, base_link)


class LaggingArm:
    """A first-order arm behind the node's trajectory commands, streaming /joint_states at 250 Hz (plus, when
    ``glitch`` is set, a hostile state every fifth cycle: all-zeros or NaN)."""

    def __init__(self, node) -> None:
        from geometry_msgs.msg import PoseStamped

        self.node, self.q, self.target, self.last_t = node, HOME.copy(), HOME.copy(), time.monotonic()
        self.commands: list[tuple[float, np.ndarray, np.ndarray]] = []  # (stamp s, command, arm at receipt)
        self.kinds: dict[float, str] = {}
        self.glitch, self.k = False, 0
        self.pub_js = node.create_publisher(JointState, "/joint_states", RELIABLE)
        self.pub_goal = node.create_publisher(PoseStamped, "/ast/goal", RELIABLE)
        self.pub_mode = node.create_publisher(UInt8, SAFETY_TOPIC, LATCHED)
        self.pub_mode.publish(UInt8(data=1))
        node.create_subscription(JointTrajectory, TRAJ_TOPIC, self._on_cmd, RELIABLE)
        node.create_subscription(Header, "/ast/command_kind", self._on_kind, RELIABLE)
        self.start = node.create_client(Trigger, "/ast/start_episode")
        self.stop = node.create_client(Trigger, "/ast/stop_episode")
        self.PoseStamped = PoseStamped
        node.create_timer(1 / 250, self._cycle)

    def _on_cmd(self, msg: JointTrajectory) -> None:
        order = [list(msg.joint_names).index(n) for n in UR5E_JOINTS]
        self.target = np.array(msg.points[0].positions)[order]
        self.commands.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, self.target, self.q.copy()))

    def _on_kind(self, msg: Header) -> None:
        self.kinds[msg.stamp.sec + msg.stamp.nanosec * 1e-9] = msg.frame_id

    def _publish(self, q, stamp: float) -> None:
        msg = JointState(name=list(UR5E_JOINTS), position=[float(v) for v in q])
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
        self.pub_js.publish(msg)

    def _cycle(self) -> None:
        now = time.monotonic()
        self.q = self.q + (self.target - self.q) * (1 - np.exp(-(now - self.last_t) / TAU_S))
        self.last_t = now
        self._publish(self.q, time.time())
        self.k += 1
        if self.glitch and self.k % 5 == 0:  # refused, never trusted; a state stream the node keeps trusting
            bad = [np.zeros(6), np.full(6, np.nan)][self.k % 2]
            self._publish(bad, time.time())

    def goal(self, xyz) -> None:
        msg = self.PoseStamped()
        msg.header.frame_id = "base_link"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in xyz)
        self.pub_goal.publish(msg)


def test_a_restart_while_the_arm_moves_never_steps_the_command_back_onto_it(probe):
    from ast_robot_ros.policy_node import PolicyNode

    from ast_robot.config import DeployConfig

    node = PolicyNode("scripted:reach", "ur5e", DeployConfig(robot="ur5e", publish_command_kind=True))  # the kinds
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    node.trigger_activate()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        arm = LaggingArm(probe)
        wait_until(probe, lambda: arm.pub_js.get_subscription_count() > 0 and arm.start.service_is_ready(), 30.0,
                   "the policy node")  # fmt: skip
        lim = node.session.runner.limits
        refusals, starts, gaps = [], 0, []
        arm.goal(GOALS[0])
        spin_for(probe, 0.2)
        for k in range(5):
            res = call(probe, arm.start, Trigger.Request())
            while not res.success:  # refused while the arm settles: start again, as an operator would
                refusals.append(res.message)
                spin_for(probe, 0.01)
                res = call(probe, arm.start, Trigger.Request())
            starts += 1
            arm.glitch = True  # hostile states while it moves and across the restart
            spin_for(probe, 0.5)  # moving fast now
            assert call(probe, arm.stop, Trigger.Request()).success
            gaps.append(float(np.abs(arm.target - arm.q).max()))
            arm.goal(GOALS[(k + 1) % 2])  # and at once the next episode
        spin_for(probe, 0.1)
    finally:
        executor.shutdown()
        thread.join(timeout=5)
        node.destroy_node()
    stamps = np.array([s for s, _, _ in arm.commands])
    cmds = np.array([c for _, c, _ in arm.commands])
    kinds = [arm.kinds.get(s, "unknown") for s in stamps]
    periods = np.maximum(1.0, np.round(np.diff(stamps) / lim.period_s))
    steps = np.abs(np.diff(cmds, axis=0)) / periods[:, None]
    assert len(cmds) > 100 and "unknown" not in kinds[5:], set(kinds)
    walk = np.array([k == "walk-back" for k in kinds[1:]])
    beyond = np.flatnonzero(np.any(steps > lim.max_step + 1e-9, axis=1) & ~walk)
    assert len(beyond) == 0, [(kinds[i + 1], round(float(steps[i].max() / lim.max_step.max()), 2)) for i in beyond]
    assert np.all(steps <= lim.max_velocity * lim.period_s + 1e-9)
    assert max(gaps) > 2 * lim.max_step.max(), gaps  # the arm was well behind its command at some stops
    assert any("still moves towards the last command" in m for m in refusals), refusals  # the restart came early
    starts_at = [i for i, k in enumerate(kinds) if k.startswith("from the measured arm")]
    assert len(starts_at) == starts, kinds  # each episode starts at the measured arm (from rest, as the envs)
    for i in starts_at[1:]:  # ... within one step of the last command and of the arm: it had settled
        assert np.all(np.abs(cmds[i] - cmds[i - 1]) <= lim.max_step + 1e-9), (i, np.abs(cmds[i] - cmds[i - 1]))

"""An episode start on simulated time survives the twin's reset (issue 21's second-episode defect).

On simulated time the policy node accepts a start against the latest joint state and starts the episode at the
next one. After /twin/reset the next state comes a pause later with the arm teleported home: the node re-acquires
trust in the stream over ``ACQUIRE_STATES`` states and holds meanwhile. The node used to refuse the start at
that first state and only log it, after telling the operator it would start: the episode never began and the
gripper never closed (2 of 13 isolated runs of test_pickplace_loopback[fr3-True]). Here the test plays the
lock-step twin, one state at a time, so the start request lands exactly in that window in every run.
"""

from __future__ import annotations

import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Header, UInt8
from std_srvs.srv import Trigger

from ast_robot.robot.safety.trust import ACQUIRE_STATES
from tests.ros.helpers import LATCHED, RELIABLE, SAFETY_TOPIC, UR5E_JOINTS, Proc, call, spin_for, wait_until
from tests.ros.robot_double import HOME

PERIOD_NS = 8_000_000  # the twin's 125 Hz states, one control tick each
PAUSE_NS = 1_000_000_000  # the twin's RESET_PAUSE_S


class LockstepTwin:
    """Publishes one joint state at a time (stamp = simulated time) and waits for the node's answer."""

    def __init__(self, probe) -> None:
        from builtin_interfaces.msg import Time

        self.probe, self.time_type, self.t_ns = probe, Time, 1_000_000_000
        self.answers: dict[int, str] = {}  # state stamp (ns) -> the answer's frame_id ("command": a command went out)
        self.pub = probe.create_publisher(JointState, "/joint_states", RELIABLE)
        probe.create_subscription(Header, "/ast/tick", self._on_answer, RELIABLE)

    def _on_answer(self, msg: Header) -> None:
        self.answers[msg.stamp.sec * 1_000_000_000 + msg.stamp.nanosec] = msg.frame_id

    def step(self, advance_ns: int = PERIOD_NS) -> str:
        """Publish the state at the next time; the node's answer's frame_id."""
        self.t_ns += advance_ns
        t = self.t_ns
        msg = JointState(name=UR5E_JOINTS, position=HOME.tolist(), velocity=[0.0] * 6)
        msg.header.stamp = self.time_type(sec=t // 1_000_000_000, nanosec=t % 1_000_000_000)
        self.pub.publish(msg)
        wait_until(self.probe, lambda: t in self.answers, 10.0, f"the node's answer to the state at {t} ns")
        return self.answers[t]


def start(probe, client, twin: LockstepTwin) -> None:
    """Press start (again while the node holds at start-up, as an operator would) between two states."""
    for _ in range(50):
        res = call(probe, client, Trigger.Request())
        if res.success:
            return
        twin.step()
    raise AssertionError(res.message)


@pytest.mark.slow  # ~5 s: the node's start-up
def test_a_start_accepted_before_the_resets_stream_jump_still_starts(probe, tmp_path):
    node = Proc(["deploy", "scripted:reach", "--robot", "ur5e", "--sim-time"], tmp_path / "deploy.log")
    try:
        twin = LockstepTwin(probe)
        probe.create_publisher(UInt8, SAFETY_TOPIC, LATCHED).publish(UInt8(data=1))  # NORMAL, as bridged
        pub_goal = probe.create_publisher(PoseStamped, "/ast/goal", RELIABLE)
        begin, stop = (probe.create_client(Trigger, n) for n in ("/ast/start_episode", "/ast/stop_episode"))
        wait_until(probe, lambda: twin.pub.get_subscription_count() > 0 and pub_goal.get_subscription_count() > 0
                   and begin.service_is_ready(), 60.0, "the policy node")  # fmt: skip
        goal = PoseStamped()
        goal.header.frame_id = "base_link"
        goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = 0.4, 0.1, 0.3
        pub_goal.publish(goal)
        spin_for(probe, 0.3)
        for _ in range(ACQUIRE_STATES + 2):  # a trusted stream
            assert twin.step() == ""
        # null case: a start on a steady stream begins at the next state, whose answer carries a command
        start(probe, begin, twin)
        assert twin.step() == "command"
        assert call(probe, stop, Trigger.Request()).success
        assert twin.step() == ""  # no episode, no command
        # the reset's case: the start is accepted against the last state before the jump; the next state
        # comes a pause later (trust is re-acquired over ACQUIRE_STATES states: the node holds meanwhile)
        start(probe, begin, twin)
        frames = [twin.step(PAUSE_NS)] + [twin.step() for _ in range(ACQUIRE_STATES + 2)]
        assert frames[: ACQUIRE_STATES - 1] == [""] * (ACQUIRE_STATES - 1), frames  # held while acquiring trust
        assert set(frames[ACQUIRE_STATES - 1 :]) == {"command"}, frames  # started at the first trusted state
    finally:
        code = node.stop()
    log = node.text()
    assert code == 0 and "did not start" not in log, log[-3000:]

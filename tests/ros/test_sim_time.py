"""Simulated time over ROS: twin, policy node, recorder and episode driver on the twin's /clock, lock-step.

The deployment on simulated time must give exactly the episodes of the ROS-free lock-step deployment
(:class:`ast_robot.twin.lockstep.LockstepDeployment`): same policy, same goals, same final errors. That holds
only when the twin never runs ahead of the policy node and every command acts in the period it answers.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from ast_robot.config import DeployConfig
from ast_robot.deploy.runner import ReachController
from ast_robot.envs.reach import GOAL_HIGH, GOAL_LOW
from ast_robot.records import read_records
from ast_robot.sim2real import deploy_on_twin
from ast_robot.twin.lockstep import LockstepDeployment

pytest.importorskip("rclpy", reason='needs ROS 2 Python packages: pip install "ast-robot[ros]"')


@pytest.mark.slow
def test_sim_time_deployment_reproduces_the_lockstep_episodes(tmp_path):
    n, seed = 2, 7
    _, records = deploy_on_twin("scripted:reach", ["--set", "episode_timeout_s=1.0", "--set", "end_on_success=false"],
                                "ur5e", None, n, seed, tmp_path, int(os.environ["ROS_DOMAIN_ID"]), sim_time=True)  # fmt: skip
    real = read_records(records)
    cfg = DeployConfig(robot="ur5e", episode_timeout_s=1.0, end_on_success=False)
    harness = LockstepDeployment.build(ReachController(), "ur5e", cfg)
    goals = np.random.default_rng(seed).uniform(GOAL_LOW, GOAL_HIGH, size=(n, 3))
    expected = [harness.run_episode(goal) for goal in goals]
    assert [r.steps for r in real] == [e.steps for e in expected]
    for r, e in zip(real, expected):
        np.testing.assert_allclose(r.joint_positions, e.joint_positions, atol=1e-6)
        assert abs(r.final_error - e.final_error) < 1e-6
    bag_log = (tmp_path / "logs" / "record.log").read_text()
    assert "/joint_states" in bag_log  # the recorder on sim time wrote the states


@pytest.mark.slow
def test_twin_on_sim_time_waits_for_its_controller(probe, tmp_path):
    """/clock and the joint-state stamps are the twin's simulated time; once a controller on /ast/tick has
    answered, the clock advances only as far as it has answered (never ahead of it). Before its first answer
    (a policy node still configuring: over 5 s at load 9, issue 21) the twin runs on, free."""
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Header

    from tests.ros.helpers import Proc, spin_for, wait_until

    twin = Proc(["twin", "--robot", "ur5e", "--sim-time", "--rate", "125", "--camera-rate", "0"], tmp_path / "twin.log")
    clocks: list[int] = []
    states: list[int] = []
    ns = lambda s: s.sec * 1_000_000_000 + s.nanosec  # noqa: E731
    try:
        probe.create_subscription(Clock, "/clock", lambda m: clocks.append(ns(m.clock)), 100)
        probe.create_subscription(JointState, "/joint_states", lambda m: states.append(ns(m.header.stamp)), 100)
        wait_until(probe, lambda: len(states) > 20, 20.0, "free-running sim-time joint states")
        assert all(b - a == 8_000_000 for a, b in zip(states[-10:], states[-9:]))  # one 125 Hz period each
        answer = probe.create_publisher(Header, "/ast/tick", 100)
        wait_until(probe, lambda: answer.get_subscription_count() > 0, 10.0, "twin's /ast/tick subscription")
        spin_for(probe, 0.3)
        before = states[-1]
        spin_for(probe, 0.3)
        assert states[-1] > before, "the twin waited for a controller that has not answered yet"
        answer.publish(Header(stamp=_time(states[-1])))  # its first answer (to an older state): now it waits
        spin_for(probe, 0.3)  # the twin now waits at the state it published last
        waiting = states[-1]
        spin_for(probe, 0.5)
        assert states[-1] == waiting, "the twin ran ahead of a silent controller"
        for _ in range(5):  # answer each state: one period per answer
            last = states[-1]
            answer.publish(Header(stamp=_time(last)))
            wait_until(probe, lambda last=last: states[-1] > last, 5.0, "the next state after an answer")
        assert states[-1] == waiting + 5 * 8_000_000
        assert clocks and max(clocks) == states[-1]
    finally:
        assert twin.stop() == 0, twin.text()[-2000:]


def _time(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


@pytest.mark.slow
def test_twin_on_sim_time_waits_for_the_unstamped_commands_an_answer_counts(probe, tmp_path):
    """A forward-position arm command (the FR3's) and a gripper command carry no stamp, and DDS orders messages
    within a topic only: an answer counts them (records.tick) and the twin steps on only once it has received as
    many. Before, it stepped on at the answer, and a command that arrived after it acted a period late."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, Header

    from ast_robot.records.tick import answer_frame
    from ast_robot.robot.specs import get_robot
    from tests.ros.helpers import Proc, spin_for, wait_until

    twin = Proc(["twin", "--robot", "fr3", "--task", "pickplace", "--sim-time", "--rate", "125", "--camera-rate", "0"],
                tmp_path / "twin.log")  # fmt: skip
    states: list[int] = []
    ns = lambda s: s.sec * 1_000_000_000 + s.nanosec  # noqa: E731
    try:
        probe.create_subscription(JointState, "/joint_states", lambda m: states.append(ns(m.header.stamp)), 100)
        answer = probe.create_publisher(Header, "/ast/tick", 100)
        forward = probe.create_publisher(Float64MultiArray, "/forward_position_controller/commands", 100)
        gripper = probe.create_publisher(Float64MultiArray, "/ast/gripper_command", 100)
        wait_until(probe, lambda: len(states) > 5 and answer.get_subscription_count() > 0 and
                   forward.get_subscription_count() > 0 and gripper.get_subscription_count() > 0, 20.0, "the twin")  # fmt: skip
        answer.publish(Header(stamp=_time(states[-1])))  # the first answer: from now on the twin waits
        spin_for(probe, 0.3)
        sent = {"forward": 0, "gripper": 0}
        for kind, publisher, data in (("forward", forward, list(get_robot("fr3").home_qpos)),
                                      ("gripper", gripper, [0.05, 0.05, 0.0])):  # fmt: skip
            waiting = states[-1]
            sent[kind] += 1
            answer.publish(Header(stamp=_time(waiting), frame_id=answer_frame(False, sent)))  # announced, not sent
            spin_for(probe, 0.5)
            assert states[-1] == waiting, f"the twin stepped on before the {kind} command its answer counts arrived"
            publisher.publish(Float64MultiArray(data=data))
            wait_until(probe, lambda w=waiting: states[-1] > w, 5.0, f"the next state once the {kind} command arrived")
            assert states[-1] == waiting + 8_000_000
    finally:
        assert twin.stop() == 0, twin.text()[-2000:]

"""Episode boundaries reach a policy that keeps state between its act() calls (a `two_stage` student's estimate
filter, issue 20): the node's episode start resets it, so a new table never inherits the last one's estimate."""

from __future__ import annotations

import numpy as np

from ast_robot.config import DeployConfig
from ast_robot.deploy.runner import PolicyRunner, ReachController
from ast_robot.deploy.scheduler import PolicyScheduler
from ast_robot.deploy.session import DeploymentSession
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.twin.sim import TwinSim
from tests.policies.test_estimate_filter import observations, student


class CountingReach(ReachController):
    """The reach controller, counting the episode resets it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.resets, self.calls = 0, 0

    def reset_episode(self) -> None:
        self.resets += 1

    def act(self, obs):
        self.calls += 1
        return super().act(obs)


def test_the_sessions_episode_start_resets_the_policys_episode_state():
    policy, sim = CountingReach(), TwinSim("ur5e")
    session = DeploymentSession(
        PolicyRunner.for_robot(policy, "ur5e", DeployConfig()),
        list(sim.joint_names),
        "ur5e",
        require_safety_mode=False,
    )
    q, dq, _ = sim.joint_state()
    for _ in range(ACQUIRE_STATES):
        session.on_joint_state(list(sim.joint_names), q, dq, 0.0, sim.time, sim.time)
    session.on_goal([0.35, -0.1, 0.3])
    for episode in (1, 2):
        before = policy.calls
        session.start_episode(sim.time)
        assert policy.resets == episode  # each start, before the episode's first act()
        for k in range(1, 11):
            session.on_joint_state(
                list(sim.joint_names), q, dq, 0.0, sim.time + k * session.period_s, sim.time
            )
            session.tick(sim.time + k * session.period_s)
        assert policy.calls > before  # the policy acted in the episode
        session.stop_episode()
    assert policy.resets == 2
    session.close()


def test_a_filtered_student_behind_the_scheduler_starts_each_episode_afresh():
    filtered, fresh = student([0, 5]), student([0, 5])
    scheduler = PolicyScheduler(filtered, period_s=0.04, max_age_s=0.12, synchronous=True)
    for k, obs in enumerate(observations(6, seed=3)):  # episode A: six policy periods
        scheduler.action(obs, k * 0.04)
    scheduler.reset()  # episode B
    b = observations(1, seed=4)[0]
    np.testing.assert_allclose(scheduler.action(b, 10.0), fresh.act(b), rtol=0, atol=1e-6)
    scheduler.close()

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
from ast_robot.gap.outcomes import read_records
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

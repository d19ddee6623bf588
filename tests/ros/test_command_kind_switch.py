"""The command-kind topic is an instrument's (bench/hostile_driver.py), off on a robot: the policy node publishes
it only with publish_command_kind (issue 21: a robot's node pays no second DDS write per tick for a bench's
instrument); configure and cleanup work either way. The kinds themselves: tests/ros/test_episode_restart_moving.py."""

from __future__ import annotations

import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter


@pytest.mark.parametrize("on", [False, True])
def test_the_kind_publisher_exists_only_when_asked(probe, on):
    from ast_robot_ros.policy_node import PolicyNode

    overrides = [Parameter("publish_command_kind", value=True)] if on else []
    node = PolicyNode("scripted:reach", "ur5e", parameter_overrides=overrides)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.count_publishers("/ast/command_kind") == int(on)
        assert (node.pub_kind is not None) == on
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.count_publishers("/ast/command_kind") == 0
    finally:
        node.destroy_node()


def test_the_deploy_config_default_is_off():
    from ast_robot.config import DeployConfig

    assert DeployConfig().publish_command_kind is False

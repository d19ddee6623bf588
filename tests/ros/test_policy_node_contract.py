"""The policy node refuses, at configure time, a checkpoint whose deployment contract it cannot serve."""

from __future__ import annotations

from rclpy.lifecycle import TransitionCallbackReturn


def test_configure_fails_on_a_checkpoint_for_another_robot(probe, tmp_path):
    from ast_robot_ros.policy_node import PolicyNode

    from ast_robot.config import ExperimentConfig, apply_overrides, from_dict, to_dict
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import build_policy
    from ast_robot.trainers.bc import save_policy
    from ast_robot.trainers.common import contract_of

    overrides = ["env.id=ast_robot/ReachFR3-v0", "policy.type=mlp", "policy.hidden_sizes=[8]"]
    cfg = from_dict(ExperimentConfig, apply_overrides(to_dict(ExperimentConfig()), overrides))
    env = make_env(cfg.env, seed=0)
    policy = build_policy(cfg.policy, env.observation_space, 4)  # untrained weights: refused before use
    save_policy(policy, tmp_path / "policy", 0, cfg, contract_of(env))
    node = PolicyNode(str(tmp_path / "policy"), "ur5e")
    errors: list[str] = []
    node.get_logger().error = errors.append
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.session is None
        assert len(errors) == 1 and "trained for robot 'fr3'" in errors[0] and "\n" not in errors[0], errors
    finally:
        node.destroy_node()

"""Train as you deploy: the env with ``deploy_pipeline`` gives the deployment's episodes (parity test).

The deployment side is the ROS-free lock-step one (PolicyRunner in synchronous mode + the safety module +
the twin's trajectory controller, 125 Hz); the env side is ``ast_robot/ReachUR5e-v0`` on the nominal arm.
bench/parity.py measures 100 episodes of a trained policy; here a few, with controllers that reach,
overshoot and oscillate (the closed loops where any difference in the pipeline shows).
"""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config import DeployConfig, EnvConfig, RandomizationConfig
from ast_robot.deploy.runner import ReachController
from ast_robot.envs import make_env
from ast_robot.evaluation import rollout
from ast_robot.twin.lockstep import LockstepDeployment

DEPLOY = DeployConfig(robot="ur5e", episode_timeout_s=2.0, end_on_success=False)


class Overshooting(ReachController):
    """A proportional reach with too much gain and the command offset ignored: it overshoots and rings."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.append(np.clip(3.0 * (obs["desired_goal"] - obs["achieved_goal"]) / 0.05, -1, 1), 1.0)


def episodes(policy, pipeline: bool, seeds: range) -> list[tuple]:
    env_cfg = EnvConfig(deploy_pipeline=pipeline)
    env = make_env(env_cfg, RandomizationConfig(enabled=False), seed=0, deploy=DEPLOY)
    deployed = LockstepDeployment.build(policy, "ur5e", DEPLOY, env_cfg)
    out = []
    for seed in seeds:
        sim = rollout(env, policy.act, seed=seed)
        real = deployed.run_episode(env.unwrapped.goal.copy())
        out.append((sim, real))
    env.close()
    return out


@pytest.mark.parametrize("policy", [ReachController(gain=0.5, step_m=0.05), Overshooting()], ids=["p", "ringing"])
def test_env_with_deploy_pipeline_gives_the_deployed_episodes(policy):
    for sim, real in episodes(policy, True, range(3)):
        assert sim.success == real.success
        assert abs(sim.final_error - real.final_error) < 1e-3, (sim.final_error, real.final_error)
        assert abs(sim.path_length - real.path_length) < 0.05 * sim.path_length
        # the same arm motion, not only the same outcome: joints at every env step (every 5th tick)
        np.testing.assert_allclose(sim.joint_positions, real.joint_positions[::5], atol=1e-4)


def test_plain_env_step_is_not_the_deployment():
    """The null check of the instrument: without the pipeline the env moves the arm differently (faster,
    without the acceleration limit), and the comparison above must see it."""
    (sim, real), = episodes(Overshooting(), False, range(1))
    assert np.abs(sim.joint_positions - real.joint_positions[::5]).max() > 0.05


def test_parity_holds_for_the_fr3():
    """On the FR3's own controller (configs/deploy/fr3.yaml: a forward position controller, as the node drives it)."""
    deploy = DeployConfig(robot="fr3", command_interface="forward_position", episode_timeout_s=1.0,
                          end_on_success=False)  # fmt: skip
    env_cfg = EnvConfig(id="ast_robot/ReachFR3-v0", deploy_pipeline=True)
    env = make_env(env_cfg, RandomizationConfig(enabled=False), seed=0, deploy=deploy)
    policy = ReachController(gain=0.5, step_m=0.05)
    sim = rollout(env, policy.act, seed=3)
    real = LockstepDeployment.build(policy, "fr3", deploy, env_cfg).run_episode(env.unwrapped.goal.copy())
    env.close()
    np.testing.assert_allclose(sim.joint_positions[:26], real.joint_positions[::5], atol=1e-4)


def test_the_env_refuses_to_model_another_controller_than_the_robots_driver():
    """An FR3 env that trained against a trajectory controller while the FR3's driver wiring runs a forward one
    drifted from the twin from the first step (4 of 10 pick-and-place outcomes flipped): refused in one line."""
    env_cfg = EnvConfig(id="ast_robot/ReachFR3-v0", deploy_pipeline=True)
    with pytest.raises(ValueError, match=r"deploy.command_interface: 'trajectory', but configs/deploy/fr3.yaml "
                                         r"drives the fr3 through 'forward_position'") as err:  # fmt: skip
        make_env(env_cfg, RandomizationConfig(enabled=False), seed=0, deploy=DeployConfig(robot="fr3"))
    assert "\n" not in str(err.value)

"""System identification through the real MuJoCo replay simulator."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config.gap import GapConfig
from ast_robot.config.randomization import DistributionConfig, RandomizationConfig
from ast_robot.gap.sysid import fit, space_from_randomization
from ast_robot.records import EpisodeRecord

pytest.importorskip("mujoco")
from ast_robot.gap.replay import MujocoReplay  # noqa: E402


def _commanded(sim: MujocoReplay, seed: int, steps: int = 30) -> EpisodeRecord:
    """A record of smooth random joint targets around home (its joint_positions get replaced below)."""
    rng = np.random.default_rng(seed)
    q0 = np.array(sim.spec.home_qpos)
    targets = q0 + np.cumsum(rng.uniform(-0.04, 0.04, (steps, sim.spec.n_joints)), axis=0)  # (T, J)
    return EpisodeRecord(robot="ur5e", task="reach", seed=seed, source="real", success=False, final_error=0.1,
                         time_to_success=None, path_length=0.1, max_joint_velocity=1.0, control_dt=0.04,
                         actions=np.zeros((steps, 3)), joint_positions=np.tile(q0, (steps + 1, 1)),
                         joint_targets=targets)  # fmt: skip


def _measured(sim: MujocoReplay, hidden: dict, seed: int) -> EpisodeRecord:
    rec = _commanded(sim, seed)
    q = sim(hidden, rec)
    d = rec.to_dict(include_arrays=False)
    return EpisodeRecord.from_dict(
        d, {"actions": rec.actions, "joint_positions": q, "joint_targets": rec.joint_targets}
    )


@pytest.fixture(scope="module")
def sim():
    return MujocoReplay("ur5e", "reach")


def test_replay_is_deterministic_and_parameters_matter(sim):
    rec = _commanded(sim, 0)
    a, b = sim({}, rec), sim({}, rec)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (31, 6)
    assert np.abs(sim({"actuator_gain": 0.5}, rec) - a).max() > 1e-3
    late = sim({"latency": 2.0}, rec)
    np.testing.assert_allclose(late[:3], np.tile(rec.joint_positions[0], (3, 1)), atol=1e-3)  # held at start


def test_fit_finds_a_weak_actuator_outside_the_prior(sim):
    hidden = {"actuator_gain": 0.55}  # prior range [0.8, 1.2]
    real = [_measured(sim, hidden, seed) for seed in range(2)]
    rand = RandomizationConfig(params={n: DistributionConfig(low=0.8, high=1.2)
                                       for n in ("actuator_gain", "joint_damping", "friction")})  # fmt: skip
    space = space_from_randomization(rand, expansion=5.0)
    res = fit(sim, real, space, GapConfig(cem_iterations=6, cem_population=16), seed=0)
    assert res.ranking[0] == "actuator_gain"
    assert abs(res.estimate()["actuator_gain"] - 0.55) / 0.55 < 0.15
    assert res.loss_fit < 0.1 * res.loss_nominal


def test_records_without_targets_or_of_another_robot_are_refused(sim):
    rec = _commanded(sim, 1)
    d = rec.to_dict(include_arrays=False)
    no_targets = EpisodeRecord.from_dict(d, {"actions": rec.actions, "joint_positions": rec.joint_positions})
    with pytest.raises(ValueError, match="no joint_targets"):
        sim({}, no_targets)
    other = EpisodeRecord.from_dict({**d, "robot": "fr3"}, {"actions": rec.actions, "joint_positions": rec.joint_positions,
                                                            "joint_targets": rec.joint_targets})  # fmt: skip
    with pytest.raises(ValueError, match="fr3/reach but this replay simulates ur5e/reach"):
        sim({}, other)
    with pytest.raises(ValueError, match="unknown randomization parameter"):
        sim({"gravity": 1.0}, rec)


def test_replay_reproduces_the_training_env(sim):
    """Replaying a sim episode with its own randomization values gives the env's joint trajectory."""
    from ast_robot.config import EnvConfig
    from ast_robot.envs import make_env
    from ast_robot.envs.experts import expert_for
    from ast_robot.evaluation import evaluate

    rand = RandomizationConfig(params={"actuator_gain": DistributionConfig(low=0.7, high=1.3),
                                       "link_mass": DistributionConfig(low=0.8, high=1.2),
                                       "payload": DistributionConfig(low=0.0, high=1.0)})  # fmt: skip
    env = make_env(EnvConfig(), rand, seed=0)
    expert = expert_for(env)
    for rec in evaluate(env, expert.act, 2, seed=0).records:
        assert np.abs(sim(rec.randomization, rec) - rec.joint_positions).max() < 1e-3
        assert np.abs(sim({}, rec) - rec.joint_positions).max() > 3e-3  # the parameters are visible


@pytest.mark.parametrize("interface", ["trajectory", "forward_position"])
def test_replay_reproduces_a_deployed_episode_on_the_twin(sim, interface):
    """A 125 Hz episode through the driver's command semantics, on a twin whose hidden perturbation is
    expressible in randomization terms: replaying it with those values reproduces the measured joints,
    with latency counted in 25 Hz environment steps."""
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.sim import TwinSim

    dt, steps = 0.008, 150
    twin = TwinSim("ur5e", HiddenParams(gain_scale=0.4, latency_s=0.08, payload_kg=2.0))
    speed = np.array(twin.spec.velocity_limits) * 0.5
    q0 = twin.joint_state()[0]
    goal = q0 + np.array([0.4, -0.3, 0.3, 0.2, -0.2, 0.3])
    qs, targets = [q0], []
    for k in range(steps):
        target = qs[-1] + np.clip(goal - qs[-1], -speed * dt, speed * dt)
        if interface == "trajectory":  # as the policy node sends it: the safety filter's segment time
            seg = max(2 * dt, float(np.max(np.abs(target - qs[-1]) / speed)))
            twin.command_trajectory(twin.joint_names, [(target, seg)])
        else:
            twin.command_positions(target)
        twin.step_to((k + 1) * dt)
        targets.append(target)
        qs.append(twin.joint_state()[0])
    rec = EpisodeRecord(robot="ur5e", task="reach", seed=0, source="real", success=False, final_error=0.1,
                        time_to_success=None, path_length=0.1, max_joint_velocity=1.0, control_dt=dt,
                        actions=np.zeros((steps, 3)), joint_positions=np.array(qs), joint_targets=np.array(targets),
                        meta={"command_interface": interface, "max_joint_speed_scale": 0.5})  # fmt: skip
    truth = {"actuator_gain": 0.4, "latency": 2.0, "payload": 2.0}
    err_truth = np.abs(sim(truth, rec) - rec.joint_positions).max()
    err_nominal = np.abs(sim({}, rec) - rec.joint_positions).max()
    assert err_truth < 1e-4 < 1e-2 < err_nominal
    assert np.abs(sim({**truth, "latency": 1.0}, rec) - rec.joint_positions).max() > 10 * err_truth


def test_fit_finds_a_delay_and_a_payload_beyond_the_prior(sim):
    """The search box reaches `expansion` steps past the prior's delay and the robot's rated payload."""
    from ast_robot.gap.pipeline import search_ceilings

    hidden = {"latency": 3.0, "payload": 3.5}
    real = [_measured(sim, hidden, seed) for seed in range(2)]
    rand = RandomizationConfig(params={"latency": DistributionConfig(low=0.0, high=0.49),
                                       "payload": DistributionConfig(low=0.0, high=0.3),
                                       "actuator_gain": DistributionConfig(low=0.9, high=1.1)})  # fmt: skip
    space = space_from_randomization(rand, expansion=5.0, ceilings=search_ceilings("ur5e"))
    assert space.search_high[space.names.index("payload")] == 5.0  # UR5e rated payload
    res = fit(sim, real, space, GapConfig(cem_iterations=5, cem_population=16), seed=0)
    est = res.estimate()
    assert est["latency"] == 3.0 and abs(est["payload"] - 3.5) / 3.5 < 0.15

"""Domain randomization: ranges honoured, values really applied to the MjModel, bad configs rejected."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ast_robot  # noqa: F401
from ast_robot.config import ConfigError, DistributionConfig, RandomizationConfig, from_dict
from ast_robot.envs import randomization as dr
from ast_robot.envs.robots import get_robot, load_model


def _cfg(**params) -> RandomizationConfig:
    return from_dict(RandomizationConfig, {"params": params})


def test_sampled_values_stay_in_their_ranges():
    cfg = _cfg(friction={"dist": "uniform", "low": 0.5, "high": 0.7},
               joint_damping={"dist": "loguniform", "low": 0.1, "high": 10.0},
               action_noise={"dist": "normal", "mean": 0.0, "std": 0.1},
               latency={"dist": "uniform", "low": 0.0, "high": 2.49},
               payload={"dist": "constant", "mean": 0.25})  # fmt: skip
    rng = np.random.default_rng(0)
    draws = [dr.sample(cfg, rng) for _ in range(400)]
    friction = np.array([d["friction"] for d in draws])
    damping = np.array([d["joint_damping"] for d in draws])
    assert friction.min() >= 0.5 and friction.max() <= 0.7 and friction.std() > 0.04
    assert damping.min() >= 0.1 and damping.max() <= 10.0
    assert abs(np.median(np.log(damping))) < 0.4  # log-uniform: median near the geometric mean 1
    assert min(d["action_noise"] for d in draws) == 0.0  # normal tails below the domain are clipped
    assert {d["latency"] for d in draws} == {0.0, 1.0, 2.0}
    assert all(d["payload"] == 0.25 for d in draws)
    assert dr.sample(RandomizationConfig(enabled=False, params=cfg.params), rng) == {}


def test_values_are_applied_to_the_model_and_restored():
    robot = get_robot("ur5e")
    model = load_model("ur5e", "pickplace")
    nominal = dr.nominal(model, robot)
    params = {"friction": 0.5, "link_mass": 1.2, "object_mass": 2.0, "payload": 0.4, "joint_damping": 3.0,
              "armature": 1.5, "frictionloss": 0.5, "actuator_gain": 0.8, "actuator_force_limit": 0.9,
              "gripper_force": 1.1, "object_size": 1.1, "camera_x": 0.05, "camera_fovy": 1.1,
              "light_diffuse": 0.5, "table_brightness": 0.5, "latency": 1.0}  # fmt: skip
    dr.apply(model, params, nominal)
    v = nominal.values
    np.testing.assert_allclose(model.geom_friction[:, 0], 0.5 * v["geom_friction"][:, 0])
    link = model.body("forearm_link").id
    assert model.body_mass[link] == pytest.approx(1.2 * 2.846)
    assert model.body_gravcomp[link] == pytest.approx(1 / 1.2)  # compensation stays at the nominal weight
    assert model.body_mass[model.body("object0").id] == pytest.approx(0.2)
    assert model.body_mass[model.body("payload").id] == pytest.approx(0.4)
    dof = model.joint("elbow_joint").dofadr[0]
    assert model.dof_damping[dof] == pytest.approx(3.0) and model.dof_armature[dof] == pytest.approx(0.15)
    act = model.actuator("shoulder_pan").id
    assert model.actuator_gainprm[act, 0] == pytest.approx(1600) and model.actuator_biasprm[
        act, 1
    ] == pytest.approx(-1600)
    assert model.actuator_forcerange[act, 1] == pytest.approx(135.0)
    assert model.actuator_forcerange[model.actuator("gripper").id, 1] == pytest.approx(110.0)
    assert model.geom_size[model.geom("object1").id, 0] == pytest.approx(0.022)
    assert model.cam_pos[0, 0] == pytest.approx(v["cam_pos"][0, 0] + 0.05)
    assert model.cam_fovy[0] == pytest.approx(55.0)
    dr.apply(model, {}, nominal)  # empty sample: the nominal model comes back exactly
    for name, value in v.items():
        assert np.array_equal(getattr(model, name), value), name


def test_env_reports_and_applies_its_sample():
    env = gym.make("ast_robot/PickPlaceFR3-v0", randomization={"params": {
        "object_mass": {"low": 1.5, "high": 2.5}, "friction": {"low": 0.6, "high": 0.7}}})  # fmt: skip
    _, info = env.reset(seed=11)
    u = env.unwrapped
    assert set(info["dr"]) == {"object_mass", "friction"}
    assert 1.5 <= info["dr"]["object_mass"] <= 2.5
    assert u.model.body_mass[u.model.body("object0").id] == pytest.approx(0.1 * info["dr"]["object_mass"])
    table = u.model.geom("table").id
    assert u.model.geom_friction[table, 0] == pytest.approx(info["dr"]["friction"])
    _, info2 = env.reset(seed=12)
    assert info2["dr"] != info["dr"]


def test_latency_delays_commands_by_whole_steps():
    def first_targets(latency: float) -> list[np.ndarray]:
        env = gym.make("ast_robot/ReachUR5e-v0", randomization={"params": {"latency": {"dist": "constant",
                                                                                       "mean": latency}}})  # fmt: skip
        env.reset(seed=0)
        hold = env.unwrapped.data.ctrl.copy()
        out = []
        for _ in range(3):
            env.step(np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32))
            out.append(np.abs(env.unwrapped.data.ctrl - hold).max())
        return out

    assert first_targets(0)[0] > 1e-3
    delayed = first_targets(2)
    assert delayed[0] == 0 and delayed[1] == 0 and delayed[2] > 1e-3


def test_observation_noise_changes_observations_only():
    noisy = {"params": {"proprio_noise": {"dist": "constant", "mean": 0.01}}}
    a = gym.make("ast_robot/ReachFR3-v0", randomization=noisy)
    b = gym.make("ast_robot/ReachFR3-v0", randomization={"enabled": False})
    oa, ia = a.reset(seed=0)
    ob, ib = b.reset(seed=0)
    assert np.array_equal(ia["joint_positions"], ib["joint_positions"])  # true state unchanged
    assert 0.003 < np.abs(oa["observation"][:7] - ob["observation"][:7]).mean() < 0.03


@pytest.mark.parametrize(("params", "match"), [
    ({"frictoin": {"low": 0.5, "high": 1.0}}, r"unknown parameter 'frictoin'"),
    ({"friction": {"low": -0.5, "high": 1.0}}, r"friction: value -0.5 is below the allowed minimum"),
    ({"latency": {"dist": "constant", "mean": -1.0}}, r"latency: value -1.0 is below"),
    ({"payload": {"mode": "scale", "low": 0.0, "high": 1.0}}, r"payload.mode: 'scale' is not allowed"),
])  # fmt: skip
def test_bad_parameters_are_rejected_with_their_name(params, match):
    with pytest.raises(ValueError, match=match):
        dr.validate(_cfg(**params))
    with pytest.raises(ValueError, match=match):
        gym.make("ast_robot/ReachUR5e-v0", randomization={"params": params})


def test_bad_distributions_are_config_errors():
    with pytest.raises(ConfigError, match="high"):
        _cfg(friction={"low": 1.0, "high": 0.5})
    with pytest.raises(ConfigError, match="loguniform needs low > 0"):
        _cfg(friction={"dist": "loguniform", "low": 0.0, "high": 1.0})
    with pytest.raises(ConfigError, match="std"):
        _cfg(friction={"dist": "normal", "std": -1.0})
    with pytest.raises(ValueError, match="preset: 'nope' not found"):
        dr.resolve(RandomizationConfig(preset="nope"))


def test_default_preset_is_valid_and_complete():
    cfg = dr.resolve(
        RandomizationConfig(
            preset="default", params={"payload": DistributionConfig(dist="constant", mean=0.1)}
        )
    )
    dr.validate(cfg)
    assert set(cfg.params) == set(dr.PARAMS)
    assert cfg.params["payload"].dist == "constant"  # local params override the preset

"""Domain randomization: ranges honoured, values really applied to the MjModel, bad configs rejected."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ast_robot  # noqa: F401
from ast_robot.config import ConfigError, DistributionConfig, RandomizationConfig, from_dict
from ast_robot.envs import randomization as dr
from ast_robot.robot.specs import get_robot, load_model


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
              "gripper_force": 1.1, "object_size": 1.1, "camera_x": 0.05, "camera_y": -0.02, "camera_z": 0.03,
              "camera_fovy": 1.1,
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
    np.testing.assert_allclose(model.cam_pos[0], v["cam_pos"][0] + [0.05, -0.02, 0.03])
    assert model.cam_fovy[0] == pytest.approx(55.0)
    assert model.dof_frictionloss[dof] == pytest.approx(0.5 * v["dof_frictionloss"][dof]) and v["dof_frictionloss"][dof] > 0
    np.testing.assert_allclose(model.light_diffuse, 0.5 * v["light_diffuse"])
    table_mat = model.geom_matid[model.geom("table").id]
    np.testing.assert_allclose(model.mat_rgba[table_mat, :3], 0.5 * v["mat_rgba"][table_mat, :3])
    assert model.mat_rgba[table_mat, 3] == v["mat_rgba"][table_mat, 3]  # alpha is not a brightness
    cube = model.body("object0").id  # mass x2 and edge x1.1: inertia ~ m * size^2
    np.testing.assert_allclose(model.body_inertia[cube], 2.0 * 1.1**2 * v["body_inertia"][cube])
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


def _observations(env_id: str, randomization: dict, steps: int = 3) -> tuple[list[dict], list[dict]]:
    env = gym.make(env_id, randomization=randomization)
    obs, info = env.reset(seed=0)
    out, infos = [obs], [info]
    for _ in range(steps):
        obs, _, _, _, info = env.step(np.array([0.6, -0.4, 0.3, 1.0], dtype=np.float32))
        out.append(obs)
        infos.append(info)
    return out, infos


def test_proprio_noise_is_on_position_readings_only():
    noisy, noisy_info = _observations("ast_robot/ReachFR3-v0", {"params": {"proprio_noise": {"dist": "constant",
                                                                                             "mean": 0.01}}})  # fmt: skip
    clean, clean_info = _observations("ast_robot/ReachFR3-v0", {"enabled": False})
    n = 7
    positions = np.r_[0:n, 2 * n : 2 * n + 3, 2 * n + 6]  # joint positions, TCP position, gripper opening
    exact = np.setdiff1d(np.arange(2 * n + 10), positions)  # velocities and the TCP command offset
    for a, b, ia, ib in zip(noisy, clean, noisy_info, clean_info):
        assert np.array_equal(ia["joint_positions"], ib["joint_positions"])  # true state unchanged
        diff = np.abs(a["observation"] - b["observation"])
        assert 0.003 < diff[positions].mean() < 0.03
        assert np.all(diff[exact] == 0)
        assert np.array_equal(a["desired_goal"], b["desired_goal"]) and np.array_equal(a["achieved_goal"],
                                                                                       b["achieved_goal"])  # fmt: skip


def test_object_pos_noise_is_on_observed_object_positions_only():
    env_id = "ast_robot/PickPlaceUR5e-v0"
    noisy, _ = _observations(env_id, {"params": {"object_pos_noise": {"dist": "constant", "mean": 0.01}}})
    clean, _ = _observations(env_id, {"enabled": False})
    p = 2 * 6 + 10  # task block: cube (3), cube - TCP (3), cube velocity (3), other cubes (3 each)
    for a, b in zip(noisy, clean):
        diff = np.abs(a["observation"] - b["observation"])
        assert np.all(diff[:p] == 0)  # robot block untouched
        assert 0.003 < diff[np.r_[p : p + 6, p + 9 : diff.size]].mean() < 0.03
        assert np.all(diff[p + 6 : p + 9] == 0)  # velocities are not positions
        assert np.array_equal(a["desired_goal"], b["desired_goal"])  # the goal reward uses stays exact
        assert np.array_equal(a["achieved_goal"], b["achieved_goal"])


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
    with pytest.raises(ConfigError, match=r"randomization.preset: unknown preset .nope.; expected a preset name \[.default.\]"):
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


def test_colour_scales_that_would_saturate_are_rejected_and_reported_values_are_applied():
    model = load_model("ur5e", "reach")
    nominal = dr.nominal(model, get_robot("ur5e"))
    brightest = float(nominal.values["light_diffuse"][:, :3].max())
    assert nominal.maxima["light_diffuse"] == pytest.approx(1 / brightest)
    with pytest.raises(ValueError, match=r"light_diffuse: value 1.8 would saturate .*allowed maximum is 1.667"):
        dr.validate(_cfg(light_diffuse={"low": 1.0, "high": 1.8}), nominal)
    with pytest.raises(ValueError, match=r"table_brightness: value 2.0 would saturate"):
        gym.make("ast_robot/ReachUR5e-v0", randomization={"params": {"table_brightness": {"dist": "constant",
                                                                                           "mean": 2.0}}})  # fmt: skip
    # normal tails are clipped at the maximum, and the clipped value is the one reported and applied
    cfg = _cfg(light_diffuse={"dist": "normal", "mean": 1.5, "std": 1.0})
    rng = np.random.default_rng(0)
    values = [dr.sample(cfg, rng, nominal)["light_diffuse"] for _ in range(50)]
    assert max(values) == pytest.approx(nominal.maxima["light_diffuse"])
    dr.apply(model, {"light_diffuse": max(values)}, nominal)
    np.testing.assert_allclose(model.light_diffuse, max(values) * nominal.values["light_diffuse"])


def test_preset_enabled_false_is_kept():
    assert dr.resolve(RandomizationConfig(preset="default")).enabled
    assert not dr.resolve(RandomizationConfig(enabled=False, preset="default")).enabled


def test_preset_enabled_false_in_the_preset_file(tmp_path):
    off = tmp_path / "off.yaml"
    off.write_text("enabled: false\nparams:\n  friction: {low: 0.5, high: 0.6}\n")
    cfg = dr.resolve(RandomizationConfig(preset=str(off)))
    assert not cfg.enabled and cfg.params["friction"].low == 0.5
    assert dr.sample(cfg, np.random.default_rng(0)) == {}


@pytest.mark.parametrize("field", ["low", "high", "mean", "std"])
@pytest.mark.parametrize("bad", [".nan", ".inf"])
def test_non_finite_bounds_are_config_errors(repo_root, field, bad):
    from ast_robot.config import load_config

    overrides = [f"randomization.params.friction.{field}={bad}"]
    # (schema's `std >= 0` check already catches a NaN std; __post_init__ names the rest)
    with pytest.raises(ConfigError, match=rf"randomization\.params\.friction.*({field} must be finite|>= 0)"):
        load_config(repo_root / "configs/experiments/demo.yaml", overrides)


def test_partial_overrides_keep_the_presets_other_fields(repo_root):
    from ast_robot.config import load_config

    path = repo_root / "configs/experiments/demo.yaml"
    cfg = load_config(path, ["randomization.params.latency.high=3", "randomization.params.payload.high=2",
                             "randomization.params.camera_x.std=0.05"])  # fmt: skip
    merged = dr.resolve(cfg.randomization).params
    assert (merged["latency"].low, merged["latency"].high) == (0.0, 3.0)  # the preset's low, not 1.0
    assert (merged["payload"].dist, merged["payload"].low, merged["payload"].high) == ("uniform", 0.0, 2.0)
    assert (merged["camera_x"].dist, merged["camera_x"].mean, merged["camera_x"].std) == ("normal", 0.0, 0.05)
    assert merged["friction"] == dr.resolve(load_config(path).randomization).params["friction"]  # untouched
    # the same for an env built from a dict, and an entry the preset lacks gets the dataclass defaults
    env = gym.make("ast_robot/ReachUR5e-v0", randomization={"preset": "default", "params": {
        "latency": {"high": 3.0}}})  # fmt: skip
    latency = env.unwrapped.rand_cfg.params["latency"]
    assert (latency.low, latency.high) == (0.0, 3.0)


def test_encoder_offsets_and_joint_noise_bias_the_joint_readings_only():
    """Sensor culprits: a per-joint encoder offset shifts that joint's reading by exactly its value (the
    servo tracks the true angle), joint_noise adds noise to joint readings only; both are in info["dr"]."""
    params = {"encoder_offset_1": {"dist": "constant", "mean": 0.05}}
    biased, info = _observations("ast_robot/ReachUR5e-v0", {"params": params})
    clean, clean_info = _observations("ast_robot/ReachUR5e-v0", {"enabled": False})
    n = 6
    assert info[0]["dr"]["encoder_offset_1"] == 0.05
    for a, b, ia, ib in zip(biased, clean, info, clean_info):
        assert np.array_equal(ia["joint_positions"], ib["joint_positions"])  # true state unchanged
        diff = a["observation"] - b["observation"]
        assert diff[1] == pytest.approx(0.05) and np.all(np.delete(diff, 1) == 0)
    noisy, noisy_info = _observations("ast_robot/ReachUR5e-v0", {"params": {"joint_noise": {"dist": "constant",
                                                                                            "mean": 0.01}}})  # fmt: skip
    assert noisy_info[0]["dr"]["joint_noise"] == 0.01
    for a, b in zip(noisy, clean):
        diff = np.abs(a["observation"] - b["observation"])
        assert 0.002 < diff[:n].mean() < 0.03 and np.all(diff[n:] == 0)

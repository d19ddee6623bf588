"""The twin's physics and driver semantics, without ROS."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config import ConfigError
from ast_robot.twin.hidden import HiddenParams, load_hidden
from ast_robot.twin.sim import SAFETY_NORMAL, SAFETY_PROTECTIVE_STOP, CommandRefused, TwinSim


@pytest.fixture(scope="module")
def nominal():
    return TwinSim("ur5e")


def test_trajectory_with_permuted_names_reaches_its_points_on_time(nominal):
    sim = nominal
    sim.reset()
    q0 = sim.true_positions()
    target = q0 + np.array([0.2, -0.1, 0.15, 0.1, -0.2, 0.3])
    names = list(sim.joint_names)[::-1]
    sim.command_trajectory(names, [(target[::-1], 0.5)])
    sim.step_to(0.25)
    halfway = sim.true_positions()
    # Interpolated, not jumped: near the midpoint (servo lag allowed), far from both ends.
    assert np.all(np.abs(halfway - (q0 + target) / 2) < 0.05), halfway - (q0 + target) / 2
    assert np.all(np.abs(halfway - target) > 0.02) and np.all(np.abs(halfway - q0) > 0.02)
    sim.step_to(1.5)
    np.testing.assert_allclose(sim.true_positions(), target, atol=2e-3)
    assert sim.safety_mode == SAFETY_NORMAL


@pytest.mark.parametrize("names,points,reason", [
    (["a"] * 6, [([0.0] * 6, 1.0)], "repeats"),
    (["shoulder_pan_joint"], [([0.0], 1.0)], "do not match"),
    (None, [], "no points"),
    (None, [([0.0] * 5, 1.0)], "5 positions"),
    (None, [([0.0] * 6, 1.0), ([0.0] * 6, 0.5)], "must increase"),
    (None, [([np.nan] * 6, 1.0)], "non-finite"),
])  # fmt: skip
def test_bad_trajectories_are_refused(nominal, names, points, reason):
    nominal.reset()
    with pytest.raises(CommandRefused, match=reason):
        nominal.command_trajectory(names or list(nominal.joint_names), points)
    assert nominal.safety_mode == SAFETY_NORMAL


def test_beyond_limits_is_a_protective_stop_until_unlock(nominal):
    sim = nominal
    sim.reset()
    q = sim.true_positions()
    bad = q.copy()
    bad[2] = 4.0  # elbow limit is pi
    with pytest.raises(CommandRefused, match="protective stop"):
        sim.command_positions(bad)
    assert sim.safety_mode == SAFETY_PROTECTIVE_STOP
    with pytest.raises(CommandRefused, match="unlock"):
        sim.command_positions(q)
    sim.step_to(sim.time + 0.2)
    np.testing.assert_allclose(sim.true_positions(), q, atol=1e-3)  # held where it was
    sim.unlock()
    sim.command_positions(q + 0.01)
    assert sim.safety_mode == SAFETY_NORMAL


def test_overspeed_is_a_protective_stop(nominal):
    sim = nominal
    sim.reset()
    q = sim.true_positions()
    sim.command_positions(q + np.array([0, 0, 0, 0, 0, 1.5]))  # a 1.5 rad step on the light wrist
    sim.step_to(sim.time + 0.3)
    assert sim.safety_mode == SAFETY_PROTECTIVE_STOP and "joint speed" in sim.stop_reason


def test_hidden_parameters_change_the_model_and_the_behaviour():
    hidden = HiddenParams(friction_scale=2.0, mass_scale=1.5, payload_kg=2.0, damping_scale=3.0, gain_scale=0.5,
                          latency_s=0.05, sensor_bias_rad=[0.01])  # fmt: skip
    nominal, twin = TwinSim("ur5e"), TwinSim("ur5e", hidden)
    a, b, p = nominal.idx.act[0], nominal.model.body("upper_arm_link").id, nominal.model.body("payload").id
    assert twin.model.actuator_gainprm[a, 0] == pytest.approx(0.5 * nominal.model.actuator_gainprm[a, 0])
    assert nominal.model.body_mass[b] > 1.0  # a link with mass: the scale is visible
    assert twin.model.body_mass[b] == pytest.approx(1.5 * nominal.model.body_mass[b])
    assert twin.model.body_mass[p] == pytest.approx(2.0)  # held at the TCP
    assert twin.model.geom_friction[0, 0] == pytest.approx(2.0 * nominal.model.geom_friction[0, 0])
    # the controller still compensates only the nominal weight: the extra mass and the payload sag
    carried = lambda sim: sim.model.body_gravcomp[sim.idx.bodies] * sim.model.body_mass[sim.idx.bodies]  # noqa: E731
    np.testing.assert_allclose(carried(twin), carried(nominal))
    np.testing.assert_allclose(twin.joint_state()[0] - twin.true_positions(), 0.01)  # sensor bias
    twin.step_to(1.0)
    assert np.max(np.abs(twin.true_positions() - nominal.true_positions())) > 1e-3  # sagged, uncommanded
    twin = TwinSim("ur5e", HiddenParams(latency_s=0.05))
    q = twin.true_positions()
    twin.command_positions(q + 0.05)
    twin.step_to(0.04)
    np.testing.assert_allclose(twin.true_positions(), q, atol=1e-4)  # latency: not acting yet
    twin.step_to(1.0)
    assert np.max(np.abs(twin.true_positions() - q)) > 0.03


def test_hidden_yaml_errors_name_the_field(tmp_path):
    path = tmp_path / "hidden.yaml"
    path.write_text("payload_kg: -1\n")
    with pytest.raises(ConfigError, match="payload_kg"):
        load_hidden(path)
    path.write_text("frictoin_scale: 2\n")
    with pytest.raises(ConfigError, match="did you mean 'friction_scale'"):
        load_hidden(path)
    path.write_text("sensor_bias_rad: [0.1, 0.2]\n")
    with pytest.raises(ValueError, match="sensor_bias_rad"):
        TwinSim("ur5e", load_hidden(path))
    with pytest.raises(FileNotFoundError):
        load_hidden(tmp_path / "missing.yaml")


def test_fr3_twin_runs():
    sim = TwinSim("fr3")
    q = sim.true_positions()
    sim.command_trajectory(list(sim.joint_names), [(q + 0.05, 0.2)])
    sim.step_to(0.8)
    np.testing.assert_allclose(sim.true_positions(), q + 0.05, atol=3e-3)

"""Retuning: ranges centred on the fit, never zero width, the truth inside in a planted scenario."""

from __future__ import annotations

import dataclasses

import pytest

from ast_robot.config import ConfigError, load_config
from ast_robot.config.gap import GapConfig
from ast_robot.config.randomization import DistributionConfig, RandomizationConfig
from ast_robot.gap.retune import retune, write_retuned_config
from ast_robot.gap.sysid import SysIdResult, fit, space_from_randomization
from tests.gap import test_sysid as toy

PARENT = """\
name: toy
randomization:
  params:
    actuator_gain: {dist: uniform, low: 0.8, high: 1.2}
    joint_damping: {dist: uniform, low: 4.0, high: 6.0}
    friction: {dist: normal, mean: 1.0, std: 0.1}
"""


def _result(names, mean, std, significant=None):
    """A fit whose parameters are all significant (unless ``significant`` says otherwise), gap explained."""
    n = len(names)
    sig = tuple(significant) if significant is not None else (True,) * n
    return SysIdResult(tuple(names), tuple(mean), tuple(std), (1.0,) * n, (0.8,) * n, (1.2,) * n, 1.0, 0.001,
                       (1.0 / n,) * n, tuple(names), (0.1,), 2, pvalue=tuple(0.0 if s else 1.0 for s in sig),
                       significant=sig, residual_pvalue=1.0)  # fmt: skip


@pytest.mark.parametrize("truth", [{"gain": 1.6, "damping": 5.0, "friction": 1.0},
                                   {"gain": 1.0, "damping": 8.5, "friction": 1.0}])  # fmt: skip
def test_retuned_range_contains_the_planted_truth(truth):
    real = toy._real_records(truth)
    cfg = GapConfig(cem_iterations=10)
    res = fit(toy.toy_simulate, real, space_from_randomization(toy.RANDOMIZATION, 5.0), cfg, seed=2)
    new = retune(toy.RANDOMIZATION, res, cfg)
    for name in ("gain", "damping"):
        d = new.params[name]
        assert d.low <= truth[name] <= d.high, (name, d, res)
    # the identified culprit got a narrower range than the unidentifiable friction (relative to centre)
    g, f = new.params["gain"], new.params["friction"]
    assert (g.high - g.low) / g.mean < (f.high - f.low) / f.mean


def test_zero_uncertainty_never_gives_zero_width_and_keeps_scales_positive():
    rand = RandomizationConfig(params={"gain": DistributionConfig(low=0.8, high=1.2, mode="scale"),
                                       "offset": DistributionConfig(low=-0.1, high=0.1, mode="absolute")})  # fmt: skip
    new = retune(
        rand, _result(["gain", "offset"], [1.5, 0.0], [0.0, 0.0]), GapConfig(min_relative_width=0.05)
    )
    assert new.params["gain"].low == pytest.approx(1.425) and new.params["gain"].high == pytest.approx(1.575)
    assert new.params["offset"].high > new.params["offset"].low
    wide = retune(rand, _result(["gain", "offset"], [0.3, 0.0], [1.0, 0.0]))
    assert wide.params["gain"].low > 0 and wide.params["gain"].high == pytest.approx(2.3)


def test_unknown_fitted_parameter_is_an_error():
    with pytest.raises(ValueError, match=r"\['latency'\] are not in the randomization"):
        retune(toy.RANDOMIZATION, _result(["latency"], [0.02], [0.0]))


def test_written_config_has_parent_and_provenance_and_loads(tmp_path):
    parent = tmp_path / "exp" / "toy.yaml"
    parent.parent.mkdir()
    parent.write_text(PARENT)
    base = load_config(parent)
    new = retune(base.randomization, _result(["actuator_gain", "friction"], [1.5, 1.2], [0.1, 0.3]))
    out = write_retuned_config(parent, new, tmp_path / "round1" / "retuned.yaml",
                               {"report": "round1/report.html", "real": "bags/run1"}, name="toy-r1")  # fmt: skip
    text = out.read_text()
    assert "# report: round1/report.html" in text and "parent: ../exp/toy.yaml" in text
    assert "joint_damping" not in text  # unchanged parameters are inherited, not repeated
    cfg = load_config(out)
    assert cfg.name == "toy-r1"
    assert cfg.randomization.params["actuator_gain"].low == pytest.approx(1.3)
    assert cfg.randomization.params["friction"].mean == pytest.approx(1.2)
    assert cfg.randomization.params["joint_damping"].high == 6.0


def test_missing_parent_writes_nothing(tmp_path):
    out = tmp_path / "retuned.yaml"
    with pytest.raises(ConfigError, match="missing file"):
        write_retuned_config(tmp_path / "nope.yaml", toy.RANDOMIZATION, out, {})
    assert not out.exists()


def test_parent_with_a_preset_writes_only_the_changed_ranges(tmp_path, repo_root):
    from ast_robot.envs.randomization import resolve

    parent = tmp_path / "exp.yaml"
    parent.write_text(
        f"name: p\nrandomization:\n  preset: {repo_root / 'configs' / 'randomization' / 'default.yaml'}\n"
    )
    base = resolve(load_config(parent).randomization)
    new = retune(base, _result(["actuator_gain"], [0.6], [0.02]))
    out = write_retuned_config(parent, new, tmp_path / "r.yaml", {"report": "x"})
    assert "actuator_gain" in out.read_text() and "link_mass" not in out.read_text()
    merged = resolve(load_config(out).randomization)
    assert merged.params["actuator_gain"].high == pytest.approx(0.64)
    assert merged.params["link_mass"] == base.params["link_mass"]


def test_offsets_shift_a_fitted_centre_and_nothing_else():
    """The deployment's own delay is added to the fitted arm latency; other parameters are untouched."""
    rand = RandomizationConfig(params={"latency": DistributionConfig(low=0.0, high=1.49),
                                       "gain": DistributionConfig(low=0.8, high=1.2)})  # fmt: skip
    res = _result(["latency", "gain"], [3.0, 0.5], [0.1, 0.02])
    plain, shifted = retune(rand, res), retune(rand, res, offsets={"latency": 1.0})
    assert shifted.params["latency"].low == pytest.approx(plain.params["latency"].low + 1.0)
    assert shifted.params["latency"].high == pytest.approx(plain.params["latency"].high + 1.0)
    assert shifted.params["gain"] == plain.params["gain"]


def test_written_config_keeps_the_runs_overrides_and_the_retune_wins_over_a_range_override(tmp_path):
    parent = tmp_path / "toy.yaml"
    parent.write_text(PARENT)
    overrides = ["env.control_hz=50", "randomization.params.actuator_gain.high=3.0", "train.steps=9"]
    base = load_config(parent, overrides)
    new = retune(base.randomization, _result(["actuator_gain"], [3.8], [0.05]))  # fitted far above the override
    out = write_retuned_config(parent, new, tmp_path / "r" / "retuned.yaml", {}, overrides=overrides)
    cfg = load_config(out)  # on its own: the effective config of the run, retuned
    assert cfg.env.control_hz == 50 and cfg.train.steps == 9
    assert cfg.randomization.params["actuator_gain"].low == pytest.approx(3.61)
    assert cfg.randomization.params["actuator_gain"].high == pytest.approx(3.99)
    assert cfg.randomization.params["joint_damping"] == base.randomization.params["joint_damping"]


def test_sim2real_applies_the_overrides_to_the_first_config_only(tmp_path, monkeypatch):
    import types

    from ast_robot import sim2real as loop

    parent = tmp_path / "toy.yaml"
    parent.write_text(PARENT)
    calls = []

    def fake_round(cfg_path, overrides, r, root, args, init_from, weights, demo_pool=None, as_given=False):
        calls.append((cfg_path, list(overrides)))
        retuned = tmp_path / f"round{r}" / "retuned.yaml"
        return loop.RoundResult(r, 1.0, 0.5, 0.5, 0.1, 0.9, "-", retuned.parent, retuned), None

    monkeypatch.setattr(loop, "run_round", fake_round)
    console = types.SimpleNamespace(rule=lambda *a: None, print=lambda *a: None)
    args = types.SimpleNamespace(overrides=["env.control_hz=50"], out=str(tmp_path), rounds=3)
    loop.sim2real(parent, args, console)
    assert calls == [(parent, ["env.control_hz=50"]), (tmp_path / "round0" / "retuned.yaml", []),
                     (tmp_path / "round1" / "retuned.yaml", [])]  # fmt: skip


def test_a_nan_fit_is_an_error_naming_the_parameter():
    rand = RandomizationConfig(params={"gain": DistributionConfig(low=0.8, high=1.2, mode="scale")})
    with pytest.raises(ValueError, match=r"'gain'.*std nan"):
        retune(rand, _result(["gain"], [1.0], [float("nan")]))


def test_a_normal_scale_near_zero_becomes_a_range_starting_at_the_floor():
    rand = RandomizationConfig(params={"gain": DistributionConfig(dist="normal", mean=1.0, std=0.1, mode="scale"),
                                       "mass": DistributionConfig(dist="normal", mean=1.0, std=0.1, mode="scale")})  # fmt: skip
    new = retune(rand, _result(["gain", "mass"], [0.01, 1.1], [0.5, 0.02]))
    gain = new.params["gain"]  # a normal(0.01, 0.5) would put half its samples below the 1e-3 floor
    assert gain.dist == "uniform" and gain.low == pytest.approx(1e-3) and gain.high == pytest.approx(1.01)
    mass = new.params["mass"]  # far from the floor: still a normal, +-2 sigma = the retuned half-width
    assert mass.dist == "normal" and mass.mean == pytest.approx(1.1) and mass.std == pytest.approx(0.055 / 2)


@pytest.mark.parametrize("pipeline, expected", [(False, {"latency": 1.0}), (True, {})])
def test_the_deployment_delay_is_added_only_when_the_env_does_not_model_the_node(pipeline, expected, repo_root):
    """An env running the node's command path already trains with its delay: adding it again would
    retune latency on a nominal twin."""
    from ast_robot.gap.pipeline import deployment_offsets
    from tests.gap.helpers import make_record

    cfg = load_config(repo_root / "configs/experiments/demo.yaml", [f"env.deploy_pipeline={str(pipeline).lower()}"])
    deployed = [make_record(source="real", meta={"command_interface": "trajectory"})]
    assert deployment_offsets(cfg, deployed) == expected
    assert deployment_offsets(cfg, [make_record(source="real")]) == {}  # a replay: nothing to add


def test_a_refit_that_moves_a_range_by_round_off_is_no_change():
    """Round 1 of the demo refitted gain 0.34999 for 0.34998 and reported 'retuned to [0.3325, 0.3675] (was
    [0.3325, 0.3675])': a bound moving by less than 1% of the width is no change; a real move is one."""
    from ast_robot.gap.retune import changed_names

    old = RandomizationConfig(params={"actuator_gain": DistributionConfig(dist="uniform", low=0.33249, high=0.36749),
                                      "payload": DistributionConfig(dist="uniform", low=0.0, high=0.3)})
    same = RandomizationConfig(params={**old.params, "actuator_gain": DistributionConfig(
        dist="uniform", low=0.33250, high=0.36750)})
    moved = RandomizationConfig(params={**old.params, "actuator_gain": DistributionConfig(
        dist="uniform", low=0.30, high=0.34)})
    assert changed_names(old, same) == ()
    assert changed_names(old, moved) == ("actuator_gain",)


def test_a_fit_pinned_at_its_box_end_is_retuned_as_a_bound_never_onto_the_point():
    """Measured before: friction pinned at the box floor 0.2 (truth 0.1-0.15) was retuned to [0.19, 0.21]."""
    rand = RandomizationConfig(params={"friction": DistributionConfig(low=0.8, high=1.2),
                                       "object_mass": DistributionConfig(low=0.7, high=1.3)})  # fmt: skip
    res = SysIdResult(("friction", "object_mass"), (0.2, 5.0), (1e-5, 1e-5), (1.0, 1.0), (0.8, 0.7), (1.2, 1.3),
                      1.0, 0.001, (0.9, 0.5), ("friction", "object_mass"), (), 3, pvalue=(0.0, 0.0),
                      significant=(True, True), search_low=(0.2, 0.2), search_high=(5.0, 5.0))  # fmt: skip
    new = retune(rand, res, GapConfig())
    friction, mass = new.params["friction"], new.params["object_mass"]
    assert (friction.dist, friction.low, friction.high) == ("loguniform", pytest.approx(0.2), pytest.approx(1.2))
    assert (mass.dist, mass.low, mass.high) == ("loguniform", pytest.approx(0.7), pytest.approx(5.0))
    inside = dataclasses.replace(res, search_low=(0.1, 0.2))  # 0.2 is now inside the box: an estimate
    assert retune(rand, inside, GapConfig()).params["friction"].high == pytest.approx(0.21)

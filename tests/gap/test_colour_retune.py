"""A named colour cast is retuned (issue 21): gap.pick.VISUAL_KEYS maps colour_shift to
randomization.visual.colour_shift, which a retune widens (from 0: off) to cover the fitted cast; the nominal twin
names and retunes nothing. The slow tests deploy the twin in process (bench/gap_pickplace.py) and run gap_report."""

from __future__ import annotations

import pytest

from ast_robot.config import VisualRandomizationConfig
from ast_robot.gap.pick import VISUAL_KEYS, visual_retune
from ast_robot.gap.visual import VisualResult

CONFIG = "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
ROBOT = "ur5e"


def _result(culprits: tuple[str, ...], shift=(0.059, 0.0, -0.051)) -> VisualResult:
    fitted = {"light_intensity": 1.0, **{f"camera_{a}": 0.0 for a in ("dx", "dy", "dz", "roll", "pitch", "yaw")},
              **{f"colour_shift_{c}": s for c, s in zip("rgb", shift)}}  # fmt: skip
    return VisualResult(4, (0.0,) * 3, (0.0,) * 3, 11.0, 1.0, fitted=fitted, culprits=culprits)


def test_every_visual_group_has_a_key():
    assert all(VISUAL_KEYS[g] for g in ("light_intensity", "camera_pose", "colour_shift"))


def test_a_named_cast_turns_the_zero_range_on_around_the_fit_and_a_covering_range_is_kept():
    off = VisualRandomizationConfig(enabled=True)  # colour_shift 0: the default
    assert visual_retune(off, _result(("colour_shift",))) == {"colour_shift": pytest.approx(1.2 * 0.059)}
    assert visual_retune(off, _result(("colour_shift",), (0.0, -0.2, 0.01))) == {"colour_shift": pytest.approx(0.24)}
    assert visual_retune(VisualRandomizationConfig(colour_shift=0.1), _result(("colour_shift",))) == {}
    assert visual_retune(off, _result(("colour_shift",), (0.0, 0.0, 0.9))) == {"colour_shift": 0.5}  # the config's bound


def test_null_case_nothing_named_nothing_retuned():
    off = VisualRandomizationConfig(enabled=True)
    assert visual_retune(off, _result(())) == {} and visual_retune(off, None) == {}
    # a cast fitted but not named (e.g. it only compensates for a dim light) moves nothing
    assert "colour_shift" not in visual_retune(off, _result(("light_intensity",)))


def _deploy_bag(hidden: dict, tmp_path):
    from ast_robot.records import EpisodeRecord, write_records
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.pickplace import episode_sheets
    from bench.gap_pickplace import PickTwinDeployment, write_bag

    twin = PickTwinDeployment(ROBOT, HiddenParams(**hidden), seed=0)
    try:
        out = twin.run(episode_sheets(ROBOT, 1, seed=0))
    finally:
        twin.close()
    real = [r for r, _, _ in out]
    sim = tmp_path / "sim"
    write_records(sim, [EpisodeRecord.from_dict({**r.to_dict(), "source": "sim"}) for r in real])
    return sim, write_bag(tmp_path / "bag", out)


@pytest.mark.slow  # ~30-60 s on 2 cores: deploy, physical fit, visual coordinate search, report
def test_gap_report_on_the_colour_twin_retunes_the_cast_and_the_config_loads(tmp_path):
    from ast_robot.config import load_config
    from ast_robot.envs.randomization import resolve
    from ast_robot.gap.pipeline import gap_report

    sim, bag = _deploy_bag({"colour_shift": [0.06, 0.0, -0.05]}, tmp_path)
    out = gap_report(sim, bag, tmp_path / "report", config=CONFIG)
    assert out.report.visual.culprits == ("colour_shift",)
    assert "visual_unkeyed" not in out.report.provenance
    assert "visual.colour_shift" in out.report.provenance["retune"]
    cfg = load_config(out.retuned_config)
    cfg.randomization = resolve(cfg.randomization)
    assert cfg.randomization.visual.enabled and 0.06 < cfg.randomization.visual.colour_shift < 0.08
    assert cfg.randomization.visual.light_intensity == (0.6, 1.25)  # every other range kept
    assert cfg.randomization.params["friction"].high == pytest.approx(1.2)


@pytest.mark.slow  # ~30-60 s on 2 cores
def test_a_cast_inside_the_training_range_is_named_and_kept_saying_so(tmp_path):
    """Round 1 of the loop: the range retuned in round 0 holds the cast; nothing to widen, and the report says why."""
    from ast_robot.gap.pipeline import gap_report

    sim, bag = _deploy_bag({"colour_shift": [0.06, 0.0, -0.05]}, tmp_path)
    out = gap_report(sim, bag, tmp_path / "report", config=CONFIG, overrides=["randomization.visual.colour_shift=0.0706"])
    assert out.report.visual.culprits == ("colour_shift",) and out.retuned_config is None
    assert "visual colour_shift: the fitted look lies inside its training range" in out.report.provenance["retune"]


@pytest.mark.slow  # ~20-30 s on 2 cores
def test_gap_report_on_the_nominal_twin_names_and_retunes_nothing(tmp_path):
    from ast_robot.gap.pipeline import gap_report

    sim, bag = _deploy_bag({}, tmp_path)
    out = gap_report(sim, bag, tmp_path / "report", config=CONFIG)
    assert out.report.visual.culprits == () and out.report.visual.rms_nominal == 0.0
    assert out.retuned_config is None and out.report.culprits() == []

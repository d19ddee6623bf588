"""The gap report warns, in one line, when the command latency it identifies from the real records exceeds what the
deployment declared to the safety module (records' command_latency_s, schema v5; configs/deploy/<robot>.yaml), and
says nothing on the nominal twin. Real MuJoCo: the twin's arm (hidden latency 40 ms, or none) driven without ROS,
fitted by the analyzer's own replay."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("mujoco")

from ast_robot.config import load_config  # noqa: E402
from ast_robot.gap.latency import declared_latencies, latency_warning  # noqa: E402
from ast_robot.gap.pipeline import run_sysid  # noqa: E402
from ast_robot.gap.replay import MujocoReplay  # noqa: E402
from ast_robot.records import RecordError, write_records  # noqa: E402
from tests.gap.helpers import make_record, twin_records  # noqa: E402

EXPERIMENT = """\
name: latencywarn
env: {id: ast_robot/ReachUR5e-v0}
randomization:
  params:
    actuator_gain: {dist: uniform, low: 0.9, high: 1.1}
    latency: {dist: uniform, low: 0.0, high: 0.49}
gap: {cem_iterations: 4, cem_population: 16, polish_evaluations: 20}
"""
ENV_DT = 0.04  # the experiment's 25 Hz: the fit's latency is in these steps


def declaring(records: list, value: float | None) -> list:
    """The same episodes as a deployment that declared ``value`` (s; None: undeclared) would record them."""
    return [dataclasses.replace(r, command_latency_s=value) for r in records]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    path = tmp_path_factory.mktemp("latency") / "exp.yaml"
    path.write_text(EXPERIMENT)
    return load_config(path)


@pytest.fixture(scope="module")
def fits(cfg):
    """The analyzer's fit of the twin behind a 40 ms command latency and of the nominal twin (sensor noise only)."""
    replay = MujocoReplay("ur5e", "reach", env_dt=ENV_DT)
    late = twin_records({"latency_s": 0.04, "joint_noise_rad": 0.0005}, 0)
    nominal = twin_records({"joint_noise_rad": 0.0005}, 1)
    return {name: (run_sysid(cfg, recs, replay, 0, None)[0], recs) for name, recs in (("late", late), ("nominal", nominal))}


def test_a_latency_above_the_declared_one_is_one_line_naming_both_and_the_field(fits):
    res, real = fits["late"]
    assert res.culprits() == ("latency",) and res.estimate()["latency"] == 1.0
    line = latency_warning(res, declaring(real, 0.0), ENV_DT)
    assert line is not None and "\n" not in line
    assert "40 ms" in line and "command_latency_s 0 s" in line and "configs/deploy/ur5e.yaml" in line
    undeclared = latency_warning(res, declaring(real, None), ENV_DT)
    assert undeclared is not None and "null (undeclared" in undeclared
    # declared what the arm has (or more): nothing to say; within half a control step of it: the fit's resolution
    assert latency_warning(res, declaring(real, 0.04), ENV_DT) is None
    assert latency_warning(res, declaring(real, 0.025), ENV_DT) is None
    assert latency_warning(res, declaring(real, 0.015), ENV_DT) is not None


def test_the_nominal_twin_gets_no_warning_whatever_was_declared(fits):
    """Null case: the nominal twin (no latency) names nothing, so no declaration is contradicted."""
    res, real = fits["nominal"]
    assert res.culprits() == ()
    for value in (None, 0.0, 0.04):
        assert latency_warning(res, declaring(real, value), ENV_DT) is None


def test_records_before_the_declaration_carry_none_and_get_no_warning(fits):
    """Schema < 5 records hold no declaration (their filter granted the pre-declaration allowance): not compared."""
    res, real = fits["late"]
    old = [dataclasses.replace(r, schema_version=4) for r in real]
    assert declared_latencies(old) is None and latency_warning(res, old, ENV_DT) is None
    mixed = declaring(real[:1], 0.01) + declaring(real[1:], None)
    assert declared_latencies(mixed) == [None, 0.01]
    assert "null (undeclared: the strict filter, as 0) / 0.01 s" in latency_warning(res, mixed, ENV_DT)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.01, 0.51, "0.04", True])
def test_a_declared_latency_out_of_range_is_refused_naming_the_field(value):
    with pytest.raises(RecordError, match="command_latency_s"):
        make_record(source="real", randomization={}, command_latency_s=value)


def test_the_report_carries_the_line_in_its_verdict_and_json(cfg, tmp_path):
    """End to end (`ast-robot gap-report`): the twin behind 40 ms, the deployment undeclared: one warning line in the
    verdict (Markdown and gap.json); nothing of it in the report of the nominal twin."""
    from ast_robot.cli import main

    rng = np.random.default_rng(0)
    sims = [make_record(seed=i, randomization={"actuator_gain": float(rng.uniform(0.9, 1.1)),
                                              "latency": float(rng.uniform(0, 0.49))}) for i in range(8)]  # fmt: skip
    write_records(tmp_path / "sim", sims)
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    for name, hidden, seed in (("late", {"latency_s": 0.04, "joint_noise_rad": 0.0005}, 0),
                               ("nominal", {"joint_noise_rad": 0.0005}, 1)):  # fmt: skip
        write_records(tmp_path / name, declaring(twin_records(hidden, seed), None))
        out = tmp_path / f"report-{name}"
        rc = main(["gap-report", "--sim", str(tmp_path / "sim"), "--real", str(tmp_path / name), "--out", str(out),
                   "--config", str(tmp_path / "exp.yaml")])  # fmt: skip
        assert rc == 0
        gap = json.loads((out / "gap.json").read_text())
        lines = [v for v in gap["verdict"] if v.startswith("Command latency:")]
        assert gap["warnings"] == lines
        if name == "late":
            assert len(lines) == 1 and "command_latency_s null" in lines[0]
            assert lines[0] in (out / "report.md").read_text()
        else:
            assert lines == [] and "Command latency" not in (out / "report.md").read_text()


def test_through_trajectory_segments_the_line_says_nothing_is_slowed_now(fits):
    """The UR5e's deployment (trajectory segments): the filter takes no lead from the latency (safety.arm.servo_lag),
    so the line says so instead of claiming a slowed arm."""
    res, real = fits["late"]
    segments = [dataclasses.replace(r, meta={"command_interface": "trajectory"}) for r in declaring(real, None)]
    assert "nothing is slowed now" in latency_warning(res, segments, ENV_DT)
    assert "slows the arm's free motion" in latency_warning(res, declaring(real, None), ENV_DT)

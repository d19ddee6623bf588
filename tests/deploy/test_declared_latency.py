"""The deployment declares its command latency to the safety module (issue 21): configs/deploy/<robot>.yaml's
``command_latency_s`` -> PolicyRunner.for_robot -> SafetyLimits.from_robot; the pipeline env declares each episode's
randomized latency; the episode records (schema 5) carry what was declared, old records still load, and a replay
rebuilds the filter from them.

Why: the monitor granted LAG_ALLOWANCE_S x v of lead for a latency it cannot see; on an arm without one that lead is
push, and a yielding block freed reached 1.46 x the FR3's data sheet (bench/results/fr3_overspeed.md, wired rows).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ast_robot.config import DeployConfig, load_config
from ast_robot.config.deploy import MAX_COMMAND_LATENCY_S
from ast_robot.config.shipped import shipped_dir
from ast_robot.deploy.robot_io import load_robot_io
from ast_robot.deploy.runner import PolicyRunner, ReachController
from ast_robot.deploy.session import DeploymentSession
from ast_robot.envs import make_env
from ast_robot.envs.pipeline import declared_latency
from ast_robot.evaluation import rollout
from ast_robot.records import RecordError, from_json, read_records, to_json, write_records
from ast_robot.records import schema as record_schema
from ast_robot.robot.safety import SafetyLimits, arm
from ast_robot.robot.specs import get_robot
from ast_robot.twin.sim import TwinSim
from tests.deploy.test_runner import closed_loop, observe
from tests.gap.helpers import make_record

FR3_LAG = np.asarray(arm.SERVO_LAG_S["fr3"])


def deploy_yaml(tmp_path, robot: str, line: str):
    """configs/deploy/<robot>.yaml with ``line`` (YAML) in place of its command_latency_s."""
    text = (shipped_dir("deploy") / f"{robot}.yaml").read_text()
    assert "command_latency_s: null\n" in text
    path = tmp_path / f"{robot}.yaml"
    path.write_text(text.replace("command_latency_s: null\n", f"command_latency_s: {line}\n"))
    return path


@pytest.mark.parametrize("bad", ["-0.01", "0.6", "40", '"40ms"', ".nan", ".inf", "true", "[0.01]"])
def test_a_bad_declared_latency_is_one_line_naming_the_file_and_field(tmp_path, bad):
    path = deploy_yaml(tmp_path, "fr3", bad)
    with pytest.raises(ValueError) as err:
        load_robot_io(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path)) and "command_latency_s" in text
    assert f"the measured command latency in seconds, 0-{MAX_COMMAND_LATENCY_S:g} (null: undeclared)" in text


def test_the_shipped_configs_leave_it_undeclared_and_a_measured_value_loads(tmp_path):
    assert load_robot_io("fr3").command_latency_s is None and load_robot_io("ur5e").command_latency_s is None
    assert load_robot_io(deploy_yaml(tmp_path, "fr3", "0.004")).command_latency_s == 0.004
    assert load_robot_io(deploy_yaml(tmp_path, "fr3", "0")).command_latency_s == 0.0


def test_the_config_the_records_and_the_safety_module_bound_it_alike():
    assert MAX_COMMAND_LATENCY_S == arm.MAX_LEAD_S == record_schema.MAX_COMMAND_LATENCY_S


def test_the_runner_declares_the_deploy_configs_latency(tmp_path):
    """FR3 through forward positions: servo_lag = SERVO_LAG_S + declared + LAG_MARGIN_S; undeclared (the shipped
    file): the strict filter, as 0 declared, and never the allowance of before."""
    cfg = DeployConfig(robot="fr3", command_interface="forward_position")
    io = load_robot_io(deploy_yaml(tmp_path, "fr3", "0.02"))
    runner = PolicyRunner.for_robot(ReachController(), "fr3", cfg, io=io)
    assert runner.limits.command_latency_s == 0.02
    np.testing.assert_allclose(runner.limits.servo_lag, FR3_LAG + 0.02 + arm.LAG_MARGIN_S, rtol=1e-12)
    strict = PolicyRunner.for_robot(ReachController(), "fr3", cfg).limits  # configs/deploy/fr3.yaml: null
    assert strict.command_latency_s is None
    np.testing.assert_array_equal(strict.servo_lag, SafetyLimits.from_robot(get_robot("fr3"), cfg, 0.0).servo_lag)
    assert np.all(strict.servo_lag < FR3_LAG + arm.LAG_ALLOWANCE_S)


def test_a_deployed_episode_records_the_declared_latency(tmp_path):
    """A scripted reach on the UR5e twin (no ROS): the record carries 0.03 s, through JSON and a records folder."""
    io = load_robot_io(deploy_yaml(tmp_path, "ur5e", "0.03"))
    runner, sim = PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig(), io=io), TwinSim("ur5e")
    session = DeploymentSession(runner, list(sim.joint_names), "ur5e", timeout_s=0.5)
    assert session.on_goal(np.array([0.35, -0.1, 0.3])) is None
    observe(session, sim)
    session.start_episode(sim.time)
    _, records = closed_loop(session, sim, 80)
    assert len(records) == 1 and records[0].command_latency_s == 0.03
    assert from_json(to_json(records[0])).command_latency_s == 0.03
    write_records(tmp_path / "recs", records)
    assert read_records(tmp_path / "recs")[0].command_latency_s == 0.03


def test_the_pipeline_env_declares_each_episodes_randomized_latency():
    """pickplace_demo_fr3's env (deploy pipeline, latency drawn 0 or 1 steps): each episode's filter declares that
    latency x control_dt, which its record carries; the commands act after the same delay."""
    cfg = load_config("configs/experiments/pickplace_demo_fr3.yaml")
    cfg.env.max_episode_steps = 2
    env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
    base, seen = env.unwrapped, set()
    for seed in range(12):
        rec = rollout(env, lambda obs: np.zeros(4), seed)
        latency = int(base.dr["latency"]) * base.control_dt
        assert base.command_latency_s == rec.command_latency_s == latency
        np.testing.assert_allclose(base._pipeline.limits.servo_lag, FR3_LAG + latency + arm.LAG_MARGIN_S, rtol=1e-12)
        seen.add(latency)
    assert seen == {0.0, base.control_dt}  # both draws covered
    env.close()


def test_old_records_load_with_a_clear_default_and_refuse_the_field():
    """Schema 4 records load with command_latency_s None and are replayed with the filter they ran under
    (PRE_DECLARATION_LATENCY_S declared: LAG_ALLOWANCE_S, bit for bit); the field in a schema 4 record, or a bad
    value, is one line naming it."""
    data = {k: v for k, v in json.loads(to_json(make_record())).items() if k != "command_latency_s"}
    old = from_json(json.dumps({**data, "schema_version": 4}))
    assert old.command_latency_s is None and "command_latency_s" not in old.to_dict()
    assert declared_latency(old) == arm.PRE_DECLARATION_LATENCY_S
    cfg = DeployConfig(robot="fr3", command_interface="forward_position")
    np.testing.assert_array_equal(SafetyLimits.from_robot(get_robot("fr3"), cfg, declared_latency(old)).servo_lag,
                                  FR3_LAG + arm.LAG_ALLOWANCE_S)  # fmt: skip
    assert declared_latency(make_record(command_latency_s=0.02)) == 0.02 and declared_latency(make_record()) is None
    with pytest.raises(RecordError, match="'command_latency_s': is a schema version 5 field") as err:
        from_json(json.dumps({**data, "schema_version": 4, "command_latency_s": 0.01}))
    assert "\n" not in str(err.value)
    for bad, reason in ((-0.01, ">= 0"), (0.7, "0-0.5 s"), (float("nan"), "finite"), ("0.01", "a number"), (True, "a number")):
        with pytest.raises(RecordError, match=f"'command_latency_s': .*{reason}"):
            make_record(command_latency_s=bad)

"""`ast-robot gap-report` end to end on real MuJoCo replays, and its failure modes (nothing written)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("mujoco")

from ast_robot.cli import main  # noqa: E402
from ast_robot.config import load_config  # noqa: E402
from ast_robot.gap.replay import MujocoReplay  # noqa: E402
from ast_robot.records import EpisodeRecord, write_records  # noqa: E402
from ast_robot.records.bag import write_outcome_bag  # noqa: E402

EXPERIMENT = """\
name: gaptest
env: {id: ast_robot/ReachUR5e-v0}
randomization:
  params:
    actuator_gain: {dist: uniform, low: 0.8, high: 1.2}
    joint_damping: {dist: uniform, low: 0.8, high: 1.2}
    light_diffuse: {dist: uniform, low: 0.5, high: 1.5}
"""


def _episode(sim: MujocoReplay, seed: int, source: str, params: dict, steps: int = 25) -> EpisodeRecord:
    rng = np.random.default_rng(seed)
    q0 = np.array(sim.spec.home_qpos)
    targets = q0 + np.cumsum(rng.uniform(-0.04, 0.04, (steps, 6)), axis=0)  # (T, J)
    stub = EpisodeRecord(robot="ur5e", task="reach", seed=seed, source=source, success=False, final_error=0.1,
                         time_to_success=None, path_length=0.1, max_joint_velocity=1.0, control_dt=0.04,
                         actions=np.zeros((steps, 3)), joint_positions=np.tile(q0, (steps + 1, 1)),
                         joint_targets=targets)  # fmt: skip
    q = sim(params, stub)
    err = float(np.sqrt(np.mean((q[1:] - targets) ** 2)))  # tracking error decides success here
    ok = err < 0.02
    d = {**stub.to_dict(include_arrays=False), "success": ok, "final_error": err, "time_to_success": 0.5 if ok else None,
         "randomization": params if source == "sim" else {}}  # fmt: skip
    return EpisodeRecord.from_dict(
        d, {"actions": stub.actions, "joint_positions": q, "joint_targets": targets}
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("gap")
    sim = MujocoReplay("ur5e", "reach")
    rng = np.random.default_rng(0)
    sims = [_episode(sim, i, "sim", {"actuator_gain": float(rng.uniform(0.8, 1.2)),
                                     "joint_damping": float(rng.uniform(0.8, 1.2)),
                                     "light_diffuse": float(rng.uniform(0.5, 1.5))}) for i in range(12)]  # fmt: skip
    reals = [_episode(sim, 100 + i, "real", {"actuator_gain": 0.5}) for i in range(6)]
    write_records(root / "eval", sims)
    write_outcome_bag(root / "bag", reals)
    (root / "exp.yaml").write_text(EXPERIMENT)
    return root


def _args(root, out, *extra):
    return ["gap-report", "--sim", str(root / "eval"), "--real", str(root / "bag"), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def report_dir(data):
    out = data / "report"
    rc = main(_args(data, out, "--config", str(data / "exp.yaml"), "--set", "gap.cem_iterations=5",
                    "--set", "gap.cem_population=12", "--set", "gap.max_replay_episodes=2"))  # fmt: skip
    assert rc == 0
    return out


def test_report_sysid_and_retuned_config(data, report_dir):
    import json

    out = report_dir
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "report.md", "gap.json", "retuned.yaml", "success.png", "metrics.png",
            "attribution.png", "posterior.png", "trajectories.png"} <= names  # fmt: skip
    assert json.loads((out / "gap.json").read_text())["sysid"]["ranking"][0] == "actuator_gain"
    cfg = load_config(out / "retuned.yaml")
    gain = cfg.randomization.params["actuator_gain"]
    assert gain.low <= 0.5 <= gain.high and gain.high < 0.8
    assert cfg.randomization.params["light_diffuse"].high == 1.5  # not identifiable: inherited unchanged
    html = (out / "report.html").read_text()
    assert "<img src='posterior.png'" in html and "Newcombe" in html
    assert not [p for p in data.iterdir() if ".tmp-" in p.name]
    assert cfg.randomization.params["joint_damping"] == load_config(data / "exp.yaml").randomization.params[
        "joint_damping"]  # not significant: kept exactly  # fmt: skip


def test_report_opens_with_a_verdict_and_captions_every_figure(report_dir):
    md = (report_dir / "report.md").read_text().splitlines()
    assert md[2] == "## Verdict"
    verdict = [line for line in md[4:12] if line.startswith("- ")]
    assert verdict[0].startswith("- Success:") and "significant gap" in verdict[0]
    assert any(v.startswith("- Explained by: actuator_gain") for v in verdict)
    assert any(v.startswith("- Retuned: actuator_gain") and "Kept exactly as they were: joint_damping" in v
               for v in verdict)  # fmt: skip
    images = [line for line in md if line.startswith("![")]
    captions = [line for line in md if line.startswith("*Figure ")]
    assert len(images) == len(captions) == 5
    html = (report_dir / "report.html").read_text()
    assert html.count("<figcaption>") == html.count("<img ") == 5
    assert html.index("Verdict") < html.index("Success rate</h2>")


def test_without_config_only_statistics(data, capsys):
    out = data / "stats-only"
    assert main(_args(data, out)) == 0
    assert (out / "report.md").is_file() and not (out / "retuned.yaml").exists()


@pytest.mark.parametrize("case", ["empty_real", "mismatched_robot", "bad_config_env", "out_not_empty"])
def test_errors_write_nothing(data, tmp_path, capsys, case):
    out = tmp_path / "out"
    args = _args(data, out)
    if case == "empty_real":
        write_outcome_bag(tmp_path / "empty", [])
        args[4] = str(tmp_path / "empty")
        message = "no real episode records"
    elif case == "mismatched_robot":
        rec = _episode(MujocoReplay("ur5e", "reach"), 1, "real", {})
        d = {**rec.to_dict(), "robot": "fr3"}
        write_records(tmp_path / "fr3", [EpisodeRecord.from_dict(d)])
        args[4] = str(tmp_path / "fr3")
        message = "mismatched robot/task"
    elif case == "bad_config_env":
        (tmp_path / "exp.yaml").write_text(EXPERIMENT.replace("ReachUR5e", "ReachFR3"))
        args += ["--config", str(tmp_path / "exp.yaml")]
        message = "does not match the records' ur5e/reach"
    else:
        out.mkdir()
        (out / "keep.txt").write_text("x")
        message = "not empty"
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_weights_file_centres_on_the_fit_for_the_significance_model(report_dir):
    import json

    from ast_robot.gap.weights import PhysicalWeights

    w = PhysicalWeights.from_dict(json.loads((report_dir / "weights.json").read_text()))
    assert w.source == "sysid posterior" and w.strength == pytest.approx(0.5)
    assert w({"actuator_gain": 0.5}) > 10 * w({"actuator_gain": 1.0})


def test_report_files_and_folder_get_the_umask_default_modes(report_dir):
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(report_dir) == 0o777 & ~mask
    for name in ("gap.json", "report.html", "report.md", "retuned.yaml", "success.png"):
        assert mode(report_dir / name) == 0o666 & ~mask, name


def test_replay_runs_at_the_experiments_control_period(data, monkeypatch):
    import ast_robot.gap.replay as replay
    from ast_robot.gap.pipeline import run_sysid
    from ast_robot.records import load_episodes

    seen = []

    class Stop(Exception):
        pass

    def fake_replay(robot, task, env_dt=None):
        seen.append(env_dt)
        raise Stop

    monkeypatch.setattr(replay, "MujocoReplay", fake_replay)
    cfg = load_config(data / "exp.yaml", ["env.control_hz=50"])
    with pytest.raises(Stop):
        run_sysid(cfg, load_episodes(data / "bag"), None, seed=0, progress=None)
    assert seen == [pytest.approx(0.02)]


def test_a_fit_that_explains_too_little_keeps_the_ranges(data, tmp_path, capsys):
    # real joints = the replay + 0.3 rad of noise: no parameter setting explains that
    rng = np.random.default_rng(3)
    noisy = []
    for i in range(4):
        rec = _episode(MujocoReplay("ur5e", "reach"), 200 + i, "real", {})
        q = rec.joint_positions + rng.normal(0, 0.3, rec.joint_positions.shape)
        noisy.append(EpisodeRecord.from_dict(rec.to_dict(include_arrays=False), {
            "actions": rec.actions, "joint_positions": q, "joint_targets": rec.joint_targets}))  # fmt: skip
    write_records(tmp_path / "noisy", noisy)
    out = tmp_path / "out"
    args = _args(data, out, "--config", str(data / "exp.yaml"), "--set", "gap.cem_iterations=3",
                 "--set", "gap.cem_population=8", "--set", "gap.max_replay_episodes=2")  # fmt: skip
    args[4] = str(tmp_path / "noisy")
    assert main(args) == 0
    assert not (out / "retuned.yaml").exists()
    printed = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "no parameter reduces the nominal trajectory loss significantly" in printed  # noise is no culprit
    assert "no physical gap is detected" in printed
    assert "ranges kept" in (out / "report.md").read_text()


def test_top_parameter_is_none_when_nothing_is_attributed():
    from ast_robot.gap.sysid import SysIdResult

    res = SysIdResult(("armature", "gain"), (1.0, 1.0), (0.1, 0.1), (1.0, 1.0), (0.8, 0.8), (1.2, 1.2), 1.18, 0.95,
                      (0.0, 0.0), ("armature", "gain"), (0.95,), 4)  # fmt: skip
    assert res.top_parameter() is None and res.improvement() == pytest.approx(1 - 0.95 / 1.18)
    res = SysIdResult(**{**res.to_dict(), "attribution": (0.2, 0.8), "ranking": ("gain", "armature")})
    assert res.top_parameter() is None  # shares without a significance test name nobody
    res = SysIdResult(**{**res.to_dict(), "significant": (False, True), "pvalue": (1.0, 0.0)})
    assert res.top_parameter() == "gain" and res.culprits() == ("gain",)
    res = SysIdResult(**{**res.to_dict(), "residual_pvalue": 0.0, "unexplained": 0.5})
    assert res.gap_unexplained() and res.top_parameter() is None  # an unexplained gap names nobody

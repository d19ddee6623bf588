"""Smoke tests of every `ast-robot` subcommand, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

from ast_robot.cli import SUBCOMMANDS


def ast_robot(*args, cwd=None):
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.run([sys.executable, "-m", "ast_robot", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)  # fmt: skip


def test_help_lists_only_registered_subcommands():
    out = ast_robot("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        assert name in out.stdout


def test_config_show_prints_resolved_yaml(repo_root):
    out = ast_robot("config", "show", str(repo_root / "configs/experiments/demo.yaml"), "--set", "train.lr=0.01")
    assert out.returncode == 0, out.stderr
    assert "lr: 0.01" in out.stdout and "name: demo" in out.stdout


def test_config_show_bad_value_names_field(repo_root):
    out = ast_robot("config", "show", str(repo_root / "configs/experiments/demo.yaml"), "--set", "train.lr=abc")
    assert out.returncode != 0
    assert "train.lr" in out.stderr and "abc" in out.stderr
    assert "Traceback" not in out.stderr


def test_every_subcommand_has_help():
    for name in SUBCOMMANDS:
        out = ast_robot(name, "--help")
        assert out.returncode == 0, (name, out.stderr)
        assert "usage: ast-robot " + name in out.stdout


def test_demo_runs_the_loop_end_to_end_on_a_tiny_budget(repo_root, tmp_path):
    """`make demo` in miniature: BC -> sim eval -> twin over loopback DDS -> bag -> gap report -> retune."""
    tiny = ["train.steps=20", "train.n_demos=4", "train.eval_episodes=4", "gap.cem_iterations=2",
            "gap.cem_population=8", "gap.max_replay_episodes=2"]  # fmt: skip
    args = ["demo", str(repo_root / "configs/experiments/demo.yaml"), "--out", str(tmp_path), "--rounds", "2",
            "--real-episodes", "3", *(x for o in tiny for x in ("--set", o))]  # fmt: skip
    out = ast_robot(*args, cwd=repo_root)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "round 0: sim" in out.stdout and "round 1: sim" in out.stdout and "demo finished" in out.stdout
    for r in (0, 1):
        folder = tmp_path / "demo" / f"round{r}"
        assert (folder / "gap" / "report.html").is_file()
        assert (folder / "real_bag" / "metadata.yaml").is_file()
        assert (folder / "policy" / "latest").is_file()
    retuned = tmp_path / "demo" / "round0" / "gap" / "retuned.yaml"
    assert retuned.is_file() and "parent:" in retuned.read_text()


def test_train_runs_a_behaviour_cloning_config(repo_root, tmp_path):
    """`ast-robot train` hands every registered trainer the same options (it once passed one BC refused)."""
    tiny = ["train.steps=5", "train.n_demos=2", "train.eval_episodes=1", f"run_root={tmp_path}"]
    out = ast_robot("train", str(repo_root / "configs/experiments/demo.yaml"), "--no-progress",
                    *(x for o in tiny for x in ("--set", o)), cwd=repo_root)  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert (tmp_path / "demo" / "policy" / "latest").is_file()


def test_train_and_eval_a_sac_reach_config(repo_root, tmp_path):
    """`ast-robot train configs/experiments/reach_ur5e.yaml` then `ast-robot eval RUN_DIR` (SAC runs wrote
    no config.yaml, so eval rejected them)."""
    tiny = ["train.steps=120", "train.learning_starts=100", "train.eval_every=120", "train.eval_episodes=1",
            "train.batch_size=16", f"run_root={tmp_path}"]  # fmt: skip
    out = ast_robot("train", str(repo_root / "configs/experiments/reach_ur5e.yaml"), "--no-progress",
                    *(x for o in tiny for x in ("--set", o)), cwd=repo_root)  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    out = ast_robot("eval", str(tmp_path / "reach_ur5e"), "--episodes", "2", "--video", "0", cwd=repo_root)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "over 2 randomized episodes" in out.stdout
    assert "evaluating the best checkpoint best-120/ (env step 120" in out.stdout  # says which model it ran
    out = ast_robot("eval", str(tmp_path / "reach_ur5e"), "--episodes", "1", "--video", "0", "--checkpoint", "final",
                    cwd=repo_root)  # fmt: skip
    assert out.returncode == 0 and "evaluating the final checkpoint sac.zip (env step 120)" in out.stdout


def test_sim2real_checks_the_hidden_file_before_training(repo_root, tmp_path, capsys):
    from ast_robot.cli import main

    demo = str(repo_root / "configs/experiments/demo.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("latency_stepz: 3\n")
    for hidden, words in ((tmp_path / "nope.yaml", "does not exist"), (bad, "latency_stepz")):
        assert main(["sim2real", demo, "--hidden", str(hidden), "--out", str(tmp_path / "runs")]) == 2
        err = capsys.readouterr().err
        assert f"--hidden {hidden}" in err and words in err, err
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_twin_rate_errors_name_the_real_flags(capsys):
    from ast_robot.cli import main

    assert main(["twin", "--rate", "-1"]) == 2
    assert "--rate: expected a /joint_states rate > 0" in capsys.readouterr().err
    assert main(["twin", "--camera-rate", "-1"]) == 2
    assert "--camera-rate: expected a rate >= 0 (Hz; 0 turns the camera off)" in capsys.readouterr().err


def test_missing_extra_prints_its_install_line_without_a_traceback(monkeypatch, capsys, repo_root):
    from ast_robot.cli import config_cmd, main

    def needs_ros(args):
        raise ImportError('the ROS 2 node needs rclpy: pip install "ast-robot[ros]"')

    monkeypatch.setattr(config_cmd, "run", needs_ros)
    assert main(["config", "show", str(repo_root / "configs/experiments/demo.yaml")]) == 1
    err = capsys.readouterr().err
    assert 'pip install "ast-robot[ros]"' in err and "Traceback" not in err

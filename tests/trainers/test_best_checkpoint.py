"""The best SAC checkpoint by periodic evaluation: kept whole, swapped atomically, loaded by eval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ast_robot.run_layout import BEST_LINK, BEST_NOTE, best_folder
from ast_robot.trainers.best_checkpoint import clear_best, save_best

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def reach_cfg(tmp_path, *overrides, trainer: str = "sac"):
    """SAC on UR5e reach under the default randomization, a tiny MLP."""
    from pathlib import Path

    from ast_robot.config import load_config

    base = Path(__file__).resolve().parents[2] / "configs/experiments/base.yaml"
    return load_config(base, [f"run_root={tmp_path}", f"train.type={trainer}", "policy.type=mlp",
                              "train.batch_size=64", *overrides])  # fmt: skip


def _write(text):
    return lambda folder: (folder / "model.txt").write_text(text)


def test_a_better_evaluation_replaces_the_best_and_removes_the_old_one(tmp_path):
    first = save_best(tmp_path, {"env_steps": 1000, "success_rate": 0.5}, _write("a"))
    assert best_folder(tmp_path).resolve() == first.resolve() and (tmp_path / BEST_LINK).is_symlink()
    second = save_best(tmp_path, {"env_steps": 3000, "success_rate": 0.8}, _write("b"))
    best = best_folder(tmp_path)
    assert best.resolve() == second.resolve() and not first.exists()
    assert (best / "model.txt").read_text() == "b"
    assert json.loads((best / BEST_NOTE).read_text()) == {"env_steps": 3000, "success_rate": 0.8}
    assert not list(tmp_path.glob(".*tmp"))  # no temporary link left behind
    clear_best(tmp_path)
    assert best_folder(tmp_path) is None and not list(tmp_path.glob("best*"))


def test_a_failed_write_leaves_the_previous_best(tmp_path):
    save_best(tmp_path, {"env_steps": 1000, "success_rate": 0.5}, _write("a"))

    def crash(folder):
        (folder / "model.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_best(tmp_path, {"env_steps": 2000, "success_rate": 0.9}, crash)
    assert (best_folder(tmp_path) / "model.txt").read_text() == "a"


def test_sac_keeps_its_best_evaluation_with_that_moments_observation_statistics(tmp_path):
    """A SAC run keeps best/ (model + the observation statistics of that moment: VecNormalize moves on);
    load_actor and `ast-robot eval` use it unless asked for the final model; a rerun forgets it."""
    pytest.importorskip("stable_baselines3")
    from ast_robot.envs import make_env
    from ast_robot.run_layout import NORM_FILE, sac_checkpoint
    from ast_robot.trainers import TRAINERS
    from ast_robot.trainers.common import load_actor

    cfg = reach_cfg(tmp_path, "train.steps=300", "train.learning_starts=100", "train.eval_every=100",
                    "train.eval_episodes=2", "name=sac", "policy.hidden_sizes=[16, 16]", trainer="sac")  # fmt: skip
    metrics = TRAINERS.get("sac")(cfg, None, show_progress=False)
    run_dir = tmp_path / "sac"
    rates = [row["success_rate"] for row in metrics["history"]]
    chosen = metrics["history"][len(rates) - 1 - int(np.argmax(rates[::-1]))]  # the last of the best: ties replace
    note = json.loads((best_folder(run_dir) / BEST_NOTE).read_text())
    assert note["env_steps"] == chosen["env_steps"] and note["success_rate"] == max(rates)
    best_stats = json.loads((best_folder(run_dir) / NORM_FILE).read_text())["stats"]["observation"]["mean"]
    final_stats = json.loads((run_dir / NORM_FILE).read_text())["stats"]["observation"]["mean"]
    if note["env_steps"] < 300:
        assert not np.allclose(best_stats, final_stats)
    assert sac_checkpoint(run_dir)[1].startswith(f"best checkpoint best-{note['env_steps']}/")
    assert sac_checkpoint(run_dir, "final")[1] == "final checkpoint sac.zip (env step 300)"
    obs, _ = make_env(cfg.env, cfg.randomization, seed=1).reset(seed=1)
    for which in ("auto", "best", "final"):
        assert load_actor(cfg, run_dir, which)(obs).shape == (4,)
    cfg_no_best = reach_cfg(tmp_path, "train.steps=120", "train.learning_starts=100", "train.eval_every=100",
                            "train.eval_episodes=1", "name=sac", "policy.hidden_sizes=[16, 16]",
                            "train.keep_best=false", trainer="sac")  # fmt: skip
    TRAINERS.get("sac")(cfg_no_best, None, show_progress=False)
    assert best_folder(run_dir) is None and sac_checkpoint(run_dir)[1].startswith("final checkpoint")
    with pytest.raises(FileNotFoundError, match="keeps no best checkpoint"):
        load_actor(cfg, run_dir, "best")


def test_learning_rate_decays_linearly_to_its_end_fraction(tmp_path):
    pytest.importorskip("stable_baselines3")
    from ast_robot.trainers.sac import build_sac, make_vec_env

    cfg = reach_cfg(tmp_path, "train.steps=200", "train.learning_starts=100", "train.lr=1e-3",
                    "train.lr_end_fraction=0.1", "policy.hidden_sizes=[16, 16]", trainer="sac")  # fmt: skip
    model = build_sac(cfg, make_vec_env(cfg))
    assert model.lr_schedule(1.0) == pytest.approx(1e-3) and model.lr_schedule(0.0) == pytest.approx(1e-4)
    model.learn(200)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4, rel=0.02)  # the last step's

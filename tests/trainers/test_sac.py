"""SAC through SB3: gated SAC+HER trains on a real env, replay by index, the sparse-attention extractor, the run folder."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config import load_config
from ast_robot.records import read_records
from ast_robot.robot import kernels
from ast_robot.run_layout import EVAL_DIR
from ast_robot.trainers import TRAINERS
from ast_robot.trainers.common import load_actor

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def reach_cfg(tmp_path, *overrides, trainer: str = "sac"):
    return load_config(_base_yaml(), [
        f"run_root={tmp_path}", f"train.type={trainer}", "policy.type=mlp", "policy.hidden_sizes=[64, 64]", "train.lr=1e-3",
        "train.batch_size=64", "gate.enabled=false", *overrides])  # fmt: skip


def _base_yaml():
    """UR5e reach with the default randomization (demo.yaml adds BC-only keys that SAC rejects)."""
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "configs/experiments/base.yaml"


@pytest.mark.parametrize("stored_scores", [False, True])
def test_gated_sac_her_trains_on_reach(tmp_path, stored_scores, monkeypatch):
    pytest.importorskip("stable_baselines3")
    import tempfile

    system_tmp = tmp_path / "system_tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))  # where SB3's default logger makes its folder
    monkeypatch.delenv("SB3_LOGDIR", raising=False)  # (tests/conftest.py points it elsewhere for other tests)
    cfg = reach_cfg(tmp_path, "train.steps=400", "train.learning_starts=200", "train.eval_every=400",
                    "train.eval_episodes=2", "gate.enabled=true", "train.batch_size=64", "name=sac",
                    "policy.hidden_sizes=[32, 32]", "gate.target_rate=0.5", f"gate.sac.stored_scores={stored_scores}",
                    trainer="sac")  # fmt: skip
    metrics = TRAINERS.get("sac")(cfg, None)
    gate = metrics["gate"]
    assert gate["steps_seen"] == 200
    assert 0.3 <= gate["steps_trained"] / gate["steps_seen"] <= 0.7
    assert metrics["gradient_steps"] == gate["steps_trained"]
    assert len(metrics["history"]) == 1 and metrics["history"][0]["env_steps"] == 400
    assert (tmp_path / "sac" / "sac.zip").is_file()
    assert len(read_records(tmp_path / "sac" / EVAL_DIR)) == 2
    assert list(system_tmp.glob("SB3-*")) == []  # SB3 left an empty SB3-<time> folder there per run
    # the saved HER model loads for acting without an env (as `ast-robot eval` loads it)
    from ast_robot.envs import make_env

    env = make_env(cfg.env, cfg.randomization, seed=5)
    obs, _ = env.reset(seed=5)
    other, _ = env.reset(seed=6)
    act, fresh = load_actor(cfg, tmp_path / "sac"), load_actor(cfg, tmp_path / "sac")
    assert act(obs).shape == (4,)
    np.testing.assert_array_equal(act(obs), fresh(obs))  # a second load acts the same: weights, not init
    assert not np.array_equal(act(obs), act(other))  # ...and the actor reads its observation


def test_replay_fetch_by_index_keeps_the_order_and_relabels_the_her_share(tmp_path):
    pytest.importorskip("stable_baselines3")
    from ast_robot.integrations.sb3 import replay_index
    from ast_robot.trainers.sac import build_sac, make_vec_env

    cfg = reach_cfg(tmp_path, "train.steps=300", "train.learning_starts=250", "gate.enabled=true",
                    "gate.sac.stored_scores=true", "policy.hidden_sizes=[16, 16]", trainer="sac")  # fmt: skip
    venv = make_vec_env(cfg)
    model = build_sac(cfg, venv)
    model.learn(260)
    buffer = model.replay_buffer
    rows, envs = replay_index.Drawer(buffer)(50)
    assert replay_index.valid_mask(buffer)[rows, envs].all()  # only finished episodes, as HER samples
    batch = replay_index.fetch(buffer, rows, envs, None)  # no normalization: the stored values
    np.testing.assert_array_equal(batch.actions.numpy(), buffer.actions[rows, envs])  # in the order asked
    n_virtual = int(buffer.her_ratio * 50)
    stored_goals = buffer.observations["desired_goal"][rows, envs]
    np.testing.assert_array_equal(batch.observations["desired_goal"][n_virtual:].numpy(), stored_goals[n_virtual:])
    assert not np.array_equal(batch.observations["desired_goal"][:n_virtual].numpy(), stored_goals[:n_virtual])
    rewards = venv.env_method("compute_reward", batch.next_observations["achieved_goal"].numpy(),
                              batch.observations["desired_goal"].numpy(), [{}] * 50, indices=[0])[0]  # fmt: skip
    np.testing.assert_allclose(batch.rewards.numpy().ravel(), rewards)  # relabelled goals, recomputed rewards
    venv.close()


def test_sac_with_the_sparse_attention_extractor_trains_and_reloads(tmp_path):
    """train.features=sparse_attention builds SB3's policy on SparseTransformerExtractor (it once imported a
    class that does not exist), trains and loads back for acting with the same actions."""
    pytest.importorskip("stable_baselines3")
    from ast_robot.integrations.sb3 import SparseTransformerExtractor

    cfg = load_config(_base_yaml(), [
        f"run_root={tmp_path}", "name=sparse", "train.type=sac", "train.features=sparse_attention",
        "policy.d_model=16", "policy.n_heads=2", "policy.n_layers=1", "policy.block_size=4", "train.steps=150",
        "train.learning_starts=100", "train.batch_size=16", "train.eval_every=150", "train.eval_episodes=1"])  # fmt: skip
    metrics = TRAINERS.get("sac")(cfg, None, show_progress=False)
    assert metrics["gradient_steps"] == 50 and metrics["env_steps"] == 150
    from stable_baselines3 import SAC

    model = SAC.load(tmp_path / "sparse" / "sac.zip", device="cpu",
                     custom_objects={"replay_buffer_class": None, "replay_buffer_kwargs": {}})  # fmt: skip
    assert isinstance(model.policy.actor.features_extractor, SparseTransformerExtractor)
    record = read_records(tmp_path / "sparse" / EVAL_DIR)[0]
    from ast_robot.envs import make_env
    from ast_robot.evaluation import rollout

    # the reloaded final actor (observation statistics from obs_norm.json) repeats the evaluation after
    # training (best/ holds the model of the evaluation at step 150, one gradient step before the final one)
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed + 1)
    again = rollout(env, load_actor(cfg, tmp_path / "sparse", "final"), record.seed)
    np.testing.assert_allclose(again.actions, record.actions, atol=1e-6)


def test_sac_run_dir_holds_its_config_and_observation_statistics(tmp_path):
    """`ast-robot eval RUN_DIR` reads RUN_DIR/config.yaml: SAC runs wrote none, so eval rejected them."""
    pytest.importorskip("stable_baselines3")
    import json

    from ast_robot.run_layout import NORM_FILE

    cfg = reach_cfg(tmp_path, "train.steps=120", "train.learning_starts=100", "train.eval_every=120",
                    "train.eval_episodes=1", "name=sac", "policy.hidden_sizes=[16, 16]", trainer="sac")  # fmt: skip
    TRAINERS.get("sac")(cfg, None, show_progress=False)
    run_dir = tmp_path / "sac"
    assert load_config(run_dir / "config.yaml") == cfg
    stats = json.loads((run_dir / NORM_FILE).read_text())["stats"]
    assert set(stats) == {"observation", "achieved_goal", "desired_goal"}
    assert len(stats["observation"]["mean"]) == kernels.proprio_size(6) and min(stats["observation"]["var"]) > 0
    (run_dir / NORM_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="normalize_obs"):
        load_actor(cfg, run_dir, "final")

"""GatedSAC: trains, the gates hold their rates, and SB3 save/load round-trips."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from ast_robot.config.gate import GateConfig  # noqa: E402
from ast_robot.trainers.gated_sac import GatedSAC  # noqa: E402


def small_sac(env, **kwargs):
    return GatedSAC("MlpPolicy", env, learning_starts=100, batch_size=64, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [32, 32]}, **kwargs)  # fmt: skip


def test_gates_hold_their_rates_and_skip_steps():
    env = gym.make("Pendulum-v1")
    model = small_sac(env, sample_gate=GateConfig(target_rate=0.4, min_keep=8),
                      step_gate=GateConfig(target_rate=0.5, min_keep=0, importance_weights=False))  # fmt: skip
    model.learn(500)
    counts = model.gate_counts
    assert counts["steps_seen"] == 400  # one gradient step per env step after learning_starts
    step_rate = counts["steps_trained"] / counts["steps_seen"]
    sample_rate = counts["transitions_kept"] / (counts["steps_trained"] * 64)
    assert 0.4 <= step_rate <= 0.6, counts
    assert 0.3 <= sample_rate <= 0.5, counts
    assert model.sample_gate.threshold != model.sample_gate_cfg.initial_threshold  # the PI loop moved


def test_gated_update_changes_weights_only_on_trained_steps():
    env = gym.make("Pendulum-v1")
    model = small_sac(env, step_gate=GateConfig(target_rate=1.0, min_keep=0, importance_weights=False))
    before = [p.detach().clone() for p in model.critic.parameters()]
    model.learn(150)
    after = list(model.critic.parameters())
    assert model.gate_counts["steps_trained"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_save_load_round_trip_keeps_actions_and_gate_state(tmp_path):
    env = gym.make("Pendulum-v1")
    model = small_sac(env)
    model.learn(150)
    model.save(tmp_path / "sac.zip")
    loaded = GatedSAC.load(tmp_path / "sac.zip", env=env, device="cpu")
    obs = np.array([0.3, -0.9, 0.5], dtype=np.float32)
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    assert loaded.sample_gate.threshold == model.sample_gate.threshold
    assert loaded.gate_counts == model.gate_counts
    loaded.learn(50)  # and it keeps training after loading


@pytest.mark.parametrize("every_step", [True, False])
def test_temperature_follows_every_scheduled_step_or_only_the_trained_ones(every_step):
    env = gym.make("Pendulum-v1")
    model = small_sac(env, temperature_every_step=every_step,
                      step_gate=GateConfig(target_rate=0.3, min_keep=0, importance_weights=False))  # fmt: skip
    start = float(model.log_ent_coef.detach())
    model.learn(400)
    counts = model.gate_counts
    assert counts["steps_trained"] < 0.6 * counts["steps_seen"]  # the step gate skipped most steps
    expected = counts["steps_seen"] if every_step else counts["steps_trained"]
    assert counts["temperature_updates"] == expected
    assert float(model.log_ent_coef.detach()) < start  # the temperature fell from its start as SAC's does


@pytest.mark.parametrize("every_step", [True, False])
def test_target_critics_follow_every_scheduled_step_or_only_the_trained_ones(every_step):
    env = gym.make("Pendulum-v1")
    model = small_sac(env, target_every_step=every_step,
                      step_gate=GateConfig(target_rate=0.3, min_keep=0, importance_weights=False))  # fmt: skip
    polyak_calls = []
    real_update = model._update_target
    model._update_target = lambda: (polyak_calls.append(1), real_update())
    model.learn(400)
    counts = model.gate_counts
    assert counts["steps_trained"] < 0.6 * counts["steps_seen"]
    assert len(polyak_calls) == (counts["steps_seen"] if every_step else counts["steps_trained"])


def test_candidate_factor_scores_a_larger_draw_and_keeps_the_gate_fraction_of_it():
    env = gym.make("Pendulum-v1")
    model = small_sac(env, candidate_factor=2, sample_gate=GateConfig(target_rate=0.5, min_keep=8),
                      step_gate=GateConfig(target_rate=1.0, min_keep=0, importance_weights=False))  # fmt: skip
    model.learn(400)
    counts = model.gate_counts
    assert counts["transitions_seen"] == counts["steps_seen"] * 2 * 64  # two batches drawn and scored per step
    kept_per_step = counts["transitions_kept"] / counts["steps_trained"]
    assert 48 <= kept_per_step <= 80, counts  # about one batch_size of the 128 candidates is trained on


def test_candidate_factor_below_one_is_rejected():
    with pytest.raises(ValueError, match="candidate_factor 0"):
        small_sac(gym.make("Pendulum-v1"), candidate_factor=0)

"""GatedSAC: trains, the gates hold their rates, and SB3 save/load round-trips."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from ast_robot.config.gate import GateConfig  # noqa: E402
from ast_robot.integrations.sb3.gated_sac import GatedSAC  # noqa: E402


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
    polyak_steps = []
    real_update = model._update_target
    model._update_target = lambda steps=1: (polyak_steps.append(steps), real_update(steps))
    model.learn(400)
    counts = model.gate_counts
    assert counts["steps_trained"] < 0.6 * counts["steps_seen"]
    assert sum(polyak_steps) == (counts["steps_seen"] if every_step else counts["steps_trained"])


def test_owed_polyak_steps_paid_at_once_equal_single_steps():
    env = gym.make("Pendulum-v1")
    one_by_one, at_once = small_sac(env), small_sac(env)
    at_once.critic_target.load_state_dict(one_by_one.critic_target.state_dict())
    with torch.no_grad():
        for p in one_by_one.critic.parameters():
            p.add_(1.0)  # critics away from their targets, so each Polyak step moves them
    at_once.critic.load_state_dict(one_by_one.critic.state_dict())
    for _ in range(5):
        one_by_one._update_target()
    at_once._update_target(5)
    for a, b in zip(one_by_one.critic_target.parameters(), at_once.critic_target.parameters()):
        torch.testing.assert_close(a, b)


def test_candidate_factor_scores_a_larger_draw_and_keeps_the_gate_fraction_of_it():
    env = gym.make("Pendulum-v1")
    model = small_sac(env, candidate_factor=2, sample_gate=GateConfig(target_rate=0.5, min_keep=8),
                      step_gate=GateConfig(target_rate=1.0, min_keep=0, importance_weights=False))  # fmt: skip
    model.learn(400)
    counts = model.gate_counts
    assert counts["transitions_seen"] == counts["steps_seen"] * 2 * 64  # two batches drawn and scored per step
    assert counts["transitions_forward_scored"] == counts["transitions_seen"]  # by a forward pass each
    kept_per_step = counts["transitions_kept"] / counts["steps_trained"]
    assert 48 <= kept_per_step <= 80, counts  # about one batch_size of the 128 candidates is trained on


def test_candidate_factor_below_one_is_rejected():
    with pytest.raises(ValueError, match="candidate_factor 0"):
        small_sac(gym.make("Pendulum-v1"), candidate_factor=0)


class CountingCritic:
    """Counts forward calls of a module (a forward hook)."""

    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(lambda *_: setattr(self, "calls", self.calls + 1))


def test_stored_scores_forward_and_fetch_only_the_steps_taken(monkeypatch):
    from ast_robot.integrations.sb3 import replay_index

    env = gym.make("Pendulum-v1")
    model = small_sac(env, stored_scores=True, candidate_factor=2, sample_gate=GateConfig(target_rate=0.5, min_keep=8),
                      step_gate=GateConfig(target_rate=0.3, min_keep=0, importance_weights=False))  # fmt: skip
    critic, target = CountingCritic(model.critic), CountingCritic(model.critic_target)
    fetched = []
    real_fetch = replay_index.fetch
    def counting_fetch(buffer, rows, envs, vec_normalize):
        fetched.append(len(rows))
        return real_fetch(buffer, rows, envs, vec_normalize)

    monkeypatch.setattr(replay_index, "fetch", counting_fetch)
    model.learn(400)
    counts = model.gate_counts
    assert counts["steps_seen"] == 300 and counts["steps_trained"] < 0.5 * counts["steps_seen"], counts
    assert len(fetched) == counts["steps_trained"] and sum(fetched) == counts["transitions_kept"]
    assert critic.calls == 2 * counts["steps_trained"]  # the update's Q(s, a) and Q(s, pi(s)); nothing to score
    assert counts["transitions_forward_scored"] == 0
    assert target.calls == counts["steps_trained"]  # the TD target of the kept transitions
    assert counts["temperature_updates"] >= counts["steps_seen"] - 2  # from the latest update's log-probabilities
    trained = ~np.isnan(model.signals.td[:, 0])
    assert 0 < trained.sum() <= counts["transitions_kept"]


def test_stored_scores_rank_never_trained_transitions_first_and_forget_overwritten_slots():
    from ast_robot.integrations.sb3.replay_index import TransitionSignals

    signals = TransitionSignals(buffer_size=4, n_envs=1)
    rows, envs = np.array([0, 1]), np.array([0, 0])
    signals.store(rows, envs, torch.tensor([0.5, 2.0]), torch.tensor([0.1, 0.3]))
    td, disagreement = signals.lookup(np.array([0, 1, 2]), np.zeros(3, dtype=int))
    assert td.tolist() == [0.5, 2.0, 2.0] and disagreement[2] == pytest.approx(0.3)  # row 2: never trained
    signals.forget_written(pos=3)  # the buffer wrote rows 0, 1, 2 since
    assert np.isnan(signals.td[:, 0]).tolist() == [True, True, True, True]
    signals.store(np.array([1, 3]), np.array([0, 0]), torch.tensor([1.0, 1.5]), torch.tensor([0.0, 0.0]))
    signals.forget_written(pos=1)  # then rows 3 and 0 (wrapping around); row 1 keeps its signals
    assert np.isnan(signals.td[:, 0]).tolist() == [True, False, True, True]


def test_stored_scores_save_load_round_trip_and_keep_training(tmp_path):
    env = gym.make("Pendulum-v1")
    model = small_sac(env, stored_scores=True)
    model.learn(150)
    model.save(tmp_path / "sac.zip")
    loaded = GatedSAC.load(tmp_path / "sac.zip", env=env, device="cpu")
    obs = np.array([0.3, -0.9, 0.5], dtype=np.float32)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert loaded.stored_scores and loaded.signals is not None and np.isnan(loaded.signals.td).all()  # a new buffer
    loaded.learn(150)  # the empty buffer refills past learning_starts, then trains from stored scores
    assert loaded.gate_counts["steps_trained"] > model.gate_counts["steps_trained"]


def test_stored_scores_give_novelty_and_the_physical_weight_the_drawn_observations():
    from ast_robot.config.gate import SignificanceConfig

    seen = []

    def physical(obs):
        seen.append(obs.shape)
        return np.clip(np.abs(obs[:, 0]), 0, 1)  # any weight in [0, 1] of the observation

    env = gym.make("Pendulum-v1")
    weights = {"loss": 1.0, "novelty": 0.5, "physical": 0.5}
    model = small_sac(env, stored_scores=True, physical_weight=physical, significance=SignificanceConfig(weights=weights))
    model.learn(200)
    assert len(seen) == model.gate_counts["steps_seen"] == 100
    assert all(shape == (64, 3) for shape in seen)  # every drawn candidate, before any fetch
    assert model.gate_counts["steps_trained"] > 0


def test_stored_scores_reject_a_plain_buffer_over_several_envs():
    from stable_baselines3.common.env_util import make_vec_env

    with pytest.raises(ValueError, match="one env .*n_envs=2"):
        small_sac(make_vec_env("Pendulum-v1", n_envs=2), stored_scores=True)

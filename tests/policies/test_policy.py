"""SparseMultimodalPolicy and MLPPolicy: the shared API, heads, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ast_robot.config import ConfigError, PolicyConfig, from_dict
from ast_robot.policies.policy import MLPPolicy, SparseMultimodalPolicy, build_policy, load_policy_weights
from tests.policies.conftest import make_batch, make_space

TYPES = ["sparse_multimodal", "mlp"]


@pytest.mark.parametrize("policy_type", TYPES)
@pytest.mark.parametrize("head", ["deterministic", "gaussian", "tanh_gaussian"])
def test_losses_shapes_and_gradients(space, policy_type, head):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(type=policy_type, head=head), space, 7)
    batch = make_batch(space, 5)
    per_sample = policy.per_sample_loss(batch)
    loss, info = policy(batch)
    assert per_sample.shape == (5,) and torch.isfinite(per_sample).all()
    torch.testing.assert_close(loss, per_sample.mean())
    assert info["loss"] == pytest.approx(loss.item()) and info["loss_max"] == pytest.approx(
        per_sample.max().item()
    )
    loss.backward()
    no_grad = [n for n, p in policy.named_parameters() if p.grad is None and not n.startswith("q.")]
    assert not no_grad, f"parameters without gradient: {no_grad}"
    assert policy.embed(batch).shape == (5, policy.head.out.in_features)
    losses, h = policy(batch, per_sample=True)  # the trainers' (DDP-safe) path: one pass, both outputs
    torch.testing.assert_close(losses, per_sample)
    torch.testing.assert_close(h, policy.embed(batch))


def test_short_sequences_use_full_attention_and_sparse_layers_learn(space):
    """`auto` resolves to full attention for the ~85-token policy sequence (no scorer built); with the
    sparse reference forced, the block scorer of every layer receives gradient through the policy loss."""
    auto = SparseMultimodalPolicy(PolicyConfig(), space, 7)
    assert all(block.attn.core.backend == "full" for block in auto.transformer.blocks)
    sparse = SparseMultimodalPolicy(PolicyConfig(attention_backend="dense", block_size=8), space, 7)
    sparse(make_batch(space, 3))[0].backward()
    for block in sparse.transformer.blocks:
        assert block.attn.core.last_backend == "dense"
        assert block.attn.core.scorer.k_compress.weight.grad.abs().sum() > 0


def test_bc_training_reduces_loss_on_a_learnable_mapping():
    """The action is a fixed function of the goal; a few dozen steps must cut the loss clearly."""
    torch.manual_seed(0)
    space = make_space(camera=False)
    policy = SparseMultimodalPolicy(PolicyConfig(d_model=32, n_heads=2, n_layers=1), space, 3)
    batch = make_batch(space, 32, 3)
    batch["action"] = torch.tanh(2 * (batch["desired_goal"] - batch["achieved_goal"]))
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    first = policy(batch)[0].item()
    for _ in range(40):
        loss, _ = policy(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


@pytest.mark.parametrize("policy_type", TYPES)
def test_act_is_numpy_and_save_load_gives_identical_actions(tmp_path, space, policy_type):
    torch.manual_seed(1)
    policy = build_policy(PolicyConfig(type=policy_type, head="gaussian", n_critics=2), space, 7)
    policy.train()
    obs = space.sample()
    action = policy.act(obs)
    assert isinstance(action, np.ndarray) and action.shape == (7,) and action.dtype == np.float32
    assert policy.training, "act() must restore the training flag"
    ckpt = policy.save(tmp_path / "run")
    loaded = load_policy_weights(tmp_path / "run")
    assert type(loaded) is type(policy) and ckpt.name == "ckpt-00000000"
    for _ in range(3):
        obs = space.sample()
        np.testing.assert_array_equal(policy.act(obs), loaded.act(obs))


def test_load_through_the_class_name(tmp_path, space):
    policy = SparseMultimodalPolicy(PolicyConfig(), space, 4)
    policy.save(tmp_path)
    obs = space.sample()
    np.testing.assert_array_equal(SparseMultimodalPolicy.load(tmp_path).act(obs), policy.act(obs))


def test_actor_and_critic():
    torch.manual_seed(2)
    space = make_space(camera=False, instruction=False)
    policy = SparseMultimodalPolicy(PolicyConfig(head="tanh_gaussian", n_critics=2), space, 4)
    batch = make_batch(space, 6, 4)
    action, log_prob = policy.actor(batch)
    assert action.shape == (6, 4) and action.abs().max() < 1 and log_prob.shape == (6,)
    log_prob.sum().backward()  # reparameterized: gradient reaches the encoder
    assert policy.tokenizer.vectors["observation"].weight.grad.abs().sum() > 0
    q = policy.critic(batch, action.detach())
    assert q.shape == (6, 2)
    mode, _ = policy.actor(batch, deterministic=True)
    torch.testing.assert_close(mode, policy.head.mode(policy.embed(batch)))


def test_tanh_gaussian_log_prob_matches_sampling_density():
    """log_prob(a) of the squashed head equals the density of the sample it produced."""
    torch.manual_seed(3)
    space = make_space(camera=False, instruction=False)
    policy = MLPPolicy(PolicyConfig(type="mlp", head="tanh_gaussian", hidden_sizes=[32]), space, 2)
    batch = make_batch(space, 8, 2)
    h = policy.embed(batch)
    action, log_prob = policy.head.sample(h)
    torch.testing.assert_close(policy.head.log_prob(h, action), log_prob, atol=2e-3, rtol=1e-3)


def test_errors_name_the_problem(space):
    policy = SparseMultimodalPolicy(PolicyConfig(), space, 7)
    obs = space.sample()
    with pytest.raises(ValueError, match=r"missing key\(s\) \['camera'\]"):
        policy.act({k: v for k, v in obs.items() if k != "camera"})
    with pytest.raises(ValueError, match=r"observation\['observation'\] has shape \(5,\), expected \(17,\)"):
        policy.act({**obs, "observation": np.zeros(5, np.float32)})
    with pytest.raises(ValueError, match="actor\\(\\) needs policy.head 'tanh_gaussian'"):
        policy.actor(make_batch(space, 2))
    with pytest.raises(ValueError, match="n_critics > 0"):
        policy.critic(make_batch(space, 2), torch.zeros(2, 7))
    with pytest.raises(ValueError, match="batch needs an 'action' entry"):
        policy.per_sample_loss({k: v for k, v in make_batch(space, 2).items() if k != "action"})
    with pytest.raises(ValueError, match="action_dim must be a positive integer, got 0"):
        SparseMultimodalPolicy(PolicyConfig(), space, 0)
    with pytest.raises(ValueError, match="patch_size must be even and divide the image size"):
        SparseMultimodalPolicy(PolicyConfig(patch_size=6), space, 7)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="window_blocks"):
        from_dict(PolicyConfig, {"window_blocks": -1})
    with pytest.raises(ConfigError, match="head"):
        from_dict(PolicyConfig, {"head": "beta"})
    with pytest.raises(ConfigError, match="divisible"):
        from_dict(PolicyConfig, {"d_model": 30, "n_heads": 4})


def test_fitted_normalizer_travels_with_the_checkpoint(tmp_path, space):
    torch.manual_seed(5)
    policy = SparseMultimodalPolicy(PolicyConfig(), space, 7)
    data = make_batch(space, 64)
    data["observation"] = data["observation"] * 10 + 3  # far from unit scale
    policy.normalizer.fit(data)
    normed = policy.normalizer(data)["observation"]
    assert normed.mean(0).abs().max() < 1e-4 and (normed.std(0) - 1).abs().max() < 1e-3
    policy.save(tmp_path)
    loaded = load_policy_weights(tmp_path)
    torch.testing.assert_close(loaded.normalizer.mean_observation, policy.normalizer.mean_observation)
    obs = space.sample()
    np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))


@pytest.mark.parametrize("policy_type", TYPES)
def test_optimized_act_matches_eager_and_is_dropped_by_train(space, policy_type):
    torch.manual_seed(6)
    policy = build_policy(PolicyConfig(type=policy_type), space, 7).eval()
    observations = [space.sample() for _ in range(3)]
    eager = [policy.act(o) for o in observations]
    assert policy.optimize_for_inference() is policy and "_frozen" in policy.__dict__
    assert "_frozen" not in str(list(policy.state_dict()))
    for o, a in zip(observations, eager):
        np.testing.assert_allclose(policy.act(o), a, atol=1e-5)
    policy.train()
    assert "_frozen" not in policy.__dict__

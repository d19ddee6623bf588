"""SB3's SAC with MultiInputPolicy on our sparse-transformer features extractor."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

sb3 = pytest.importorskip("stable_baselines3")

from ast_robot.config import PolicyConfig  # noqa: E402
from ast_robot.integrations.sb3 import SparseTransformerExtractor, sparse_policy_kwargs  # noqa: E402


class PointGoalEnv(gym.Env):
    """A point moves by its action towards a goal; observations in every modality the tokenizers handle
    (float vectors, a uint8 camera image, instruction bytes)."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Dict({
            "observation": gym.spaces.Box(-5, 5, (3,), np.float32),
            "achieved_goal": gym.spaces.Box(-5, 5, (3,), np.float32),
            "desired_goal": gym.spaces.Box(-5, 5, (3,), np.float32),
            "camera": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
            "instruction": gym.spaces.Box(0, 255, (8,), np.uint8),
        })  # fmt: skip
        self.action_space = gym.spaces.Box(-1, 1, (3,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.2 * np.asarray(action, np.float32), -5, 5)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.goal))
        return self._obs(), -dist, False, self.t >= 20, {}

    def _obs(self):
        image = np.zeros((16, 16, 3), np.uint8)
        image[..., 0] = np.uint8(127 + 40 * np.clip(self.goal[0], -1, 1))
        return {"observation": self.pos.copy(), "achieved_goal": self.pos.copy(), "desired_goal": self.goal.copy(),
                "camera": image, "instruction": np.frombuffer(b"reach\0\0\0", np.uint8).copy()}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.mark.slow
def test_sac_runs_and_trains_the_extractor(tmp_path):
    torch.manual_seed(0)
    cfg = PolicyConfig(d_model=32, n_heads=2, n_layers=1, patch_size=8, block_size=4)
    model = sb3.SAC("MultiInputPolicy", PointGoalEnv(), learning_starts=64, batch_size=32, buffer_size=1000,
                    policy_kwargs=sparse_policy_kwargs(cfg, net_arch=[32, 32]), seed=0, device="cpu")  # fmt: skip
    extractor = model.policy.actor.features_extractor
    assert isinstance(extractor, SparseTransformerExtractor) and extractor.features_dim == 32
    before = {n: p.detach().clone() for n, p in extractor.named_parameters()}
    critic_before = model.critic.features_extractor.tokenizer.summary.detach().clone()
    model.learn(total_timesteps=160)
    moved = [n for n, p in extractor.named_parameters() if not torch.equal(p, before[n])]
    assert any(n.startswith("transformer.") for n in moved) and any(
        n.startswith("tokenizer.image") for n in moved
    )
    assert not torch.equal(model.critic.features_extractor.tokenizer.summary, critic_before)
    obs, _ = PointGoalEnv().reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (3,) and np.all(np.abs(action) <= 1)
    model.save(tmp_path / "sac")
    reloaded = sb3.SAC.load(tmp_path / "sac", device="cpu")
    np.testing.assert_allclose(reloaded.predict(obs, deterministic=True)[0], action, atol=1e-6)


def test_extractor_rejects_bad_config():
    space = PointGoalEnv().observation_space
    with pytest.raises(TypeError, match="policy must be a PolicyConfig, a dict or None, got str"):
        SparseTransformerExtractor(space, "big")
    with pytest.raises(ValueError, match="window_blocks"):
        SparseTransformerExtractor(space, {"window_blocks": -1})


@pytest.mark.slow
def test_sac_on_the_reach_environment():
    pytest.importorskip("mujoco")
    import ast_robot  # noqa: F401 - registers the environments

    env = gym.make("ast_robot/ReachUR5e-v0")
    cfg = PolicyConfig(d_model=32, n_heads=2, n_layers=1, block_size=4)
    model = sb3.SAC("MultiInputPolicy", env, learning_starts=32, batch_size=16, buffer_size=500,
                    policy_kwargs=sparse_policy_kwargs(cfg), seed=0, device="cpu")  # fmt: skip
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64 and model.logger.name_to_value.get("train/critic_loss") is not None
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(model.predict(obs, deterministic=True)[0])

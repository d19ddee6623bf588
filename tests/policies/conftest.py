"""Observation spaces shaped like the environments' (see ast_robot.envs)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch


def make_space(camera: bool = True, instruction: bool = True, joints: int = 7) -> gym.spaces.Dict:
    spaces = {
        "observation": gym.spaces.Box(-np.inf, np.inf, (2 * joints + 3,), np.float32),
        "achieved_goal": gym.spaces.Box(-2, 2, (3,), np.float32),
        "desired_goal": gym.spaces.Box(-2, 2, (3,), np.float32),
    }
    if camera:
        spaces["camera"] = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    if instruction:
        spaces["instruction"] = gym.spaces.Box(0, 255, (16,), np.uint8)
    space = gym.spaces.Dict(spaces)
    space.seed(0)
    return space


def make_batch(space: gym.spaces.Dict, n: int, action_dim: int = 7) -> dict[str, torch.Tensor]:
    batch = {k: torch.as_tensor(np.stack([space[k].sample() for _ in range(n)])) for k in space.spaces}
    batch["action"] = torch.rand(n, action_dim) * 1.8 - 0.9
    return batch


@pytest.fixture
def space() -> gym.spaces.Dict:
    return make_space()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: on a busy 2-core machine two intra-op threads spin against each other (a 40-step
    training loop took 27 s with 2 threads under load and 1.2 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

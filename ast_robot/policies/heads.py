"""Action heads (behaviour cloning: deterministic, Gaussian; SAC actor: tanh-Gaussian) and the Q critic.

Each action head maps features ``(B, F)`` to an action distribution and gives a per-sample loss against
data actions ``(B, A)``; `mode` is the action `act()` returns.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ast_robot.registry import Registry

HEADS: Registry = Registry("action head")
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # keeps Gaussian heads away from collapse and from huge noise
_EPS = 1e-6


@HEADS.register("deterministic")
class DeterministicHead(nn.Module):
    """A linear action; loss: mean squared error over action dimensions."""

    def __init__(self, features: int, action_dim: int) -> None:
        super().__init__()
        self.out = nn.Linear(features, action_dim)

    def mode(self, h: Tensor) -> Tensor:
        return self.out(h)  # (B, A)

    def loss(self, h: Tensor, action: Tensor) -> Tensor:
        return (self.out(h) - action).square().mean(-1)  # (B,)


@HEADS.register("gaussian")
class GaussianHead(nn.Module):
    """Diagonal Gaussian; loss: negative log-likelihood of the data action (nats)."""

    def __init__(self, features: int, action_dim: int) -> None:
        super().__init__()
        self.out = nn.Linear(features, 2 * action_dim)

    def params(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.out(h).chunk(2, -1)  # (B, A) each
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def mode(self, h: Tensor) -> Tensor:
        return self.params(h)[0]

    def log_prob(self, h: Tensor, action: Tensor) -> Tensor:
        mean, log_std = self.params(h)
        z = (action - mean) * torch.exp(-log_std)
        return (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)  # (B,)

    def loss(self, h: Tensor, action: Tensor) -> Tensor:
        return -self.log_prob(h, action)


@HEADS.register("tanh_gaussian")
class TanhGaussianHead(GaussianHead):
    """SAC actor: a Gaussian squashed by tanh into (-1, 1); `sample` is reparameterized."""

    def mode(self, h: Tensor) -> Tensor:
        return torch.tanh(self.params(h)[0])

    def sample(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(action (B, A), log_prob (B,))`` with the tanh change-of-variables correction."""
        mean, log_std = self.params(h)
        u = mean + torch.randn_like(mean) * log_std.exp()
        return torch.tanh(u), self._log_prob_u(mean, log_std, u)

    def log_prob(self, h: Tensor, action: Tensor) -> Tensor:
        mean, log_std = self.params(h)
        u = torch.atanh(action.clamp(-1 + _EPS, 1 - _EPS))
        return self._log_prob_u(mean, log_std, u)

    @staticmethod
    def _log_prob_u(mean: Tensor, log_std: Tensor, u: Tensor) -> Tensor:
        z = (u - mean) * torch.exp(-log_std)
        base = (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log|d tanh(u)/du| = 2 (log 2 - u - softplus(-2u)), numerically stable form
        return base - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)  # (B,)


class QCritic(nn.Module):
    """``n`` independent Q networks on (features, action): ``(B, F), (B, A) -> (B, n)``."""

    def __init__(self, features: int, action_dim: int, n: int = 2, hidden: int = 256) -> None:
        super().__init__()
        self.qs = nn.ModuleList(
            nn.Sequential(nn.Linear(features + action_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, 1))
            for _ in range(n)
        )  # fmt: skip

    def forward(self, h: Tensor, action: Tensor) -> Tensor:
        x = torch.cat([h, action], -1)  # (B, F + A)
        return torch.cat([q(x) for q in self.qs], -1)  # (B, n)

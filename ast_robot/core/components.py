"""The built-in significance components, registered by name in ``COMPONENTS``.

Each maps a batch's signals to (B,) scores in [0, 1]; higher means "more worth a backward pass".
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ast_robot.config.gate import SignificanceConfig
from ast_robot.core.significance import COMPONENTS, Component, RunningStats, ScoreInputs


@COMPONENTS.register("loss")
class LossComponent(Component):
    """Difficulty: the per-sample loss, z-scored by running statistics and squashed to (0, 1).

    With ``loss_groups`` > 1 and ``ScoreInputs.groups`` given, each group keeps its own statistics: rows whose
    loss has another scale (BC's scene rows train only the perception, demo rows add the action loss) are
    ranked within their kind, else one scale would rank one kind above the other and gate it out wholesale."""

    needs = ("losses",)

    def __init__(self, cfg: SignificanceConfig) -> None:
        super().__init__(cfg)
        self.stats = RunningStats(cfg.stats_momentum)  # group 0 (every row when ungrouped): checkpoint keys kept
        self.group_stats = nn.ModuleList(RunningStats(cfg.stats_momentum) for _ in range(cfg.loss_groups - 1))

    def _groups(self, x: ScoreInputs) -> list[tuple[torch.Tensor, RunningStats]]:
        """(row mask, statistics) per group present; one group of every row when ungrouped."""
        if x.groups is None or not len(self.group_stats):
            return [(torch.ones(x.losses.shape[0], dtype=torch.bool), self.stats)]
        groups = x.groups.detach().cpu().long()
        if bool(((groups < 0) | (groups > len(self.group_stats))).any()):
            raise ValueError(f"ScoreInputs.groups: values {sorted(set(groups.tolist()))}; significance.loss_groups "
                             f"{len(self.group_stats) + 1} allows 0..{len(self.group_stats)}")  # fmt: skip
        stats = [self.stats, *self.group_stats]
        return [(groups == g, stats[g]) for g in range(len(stats)) if bool((groups == g).any())]

    def score(self, x: ScoreInputs) -> torch.Tensor:
        values = torch.log1p(x.losses.detach().float().cpu().clamp_min(0))  # log: losses are heavy-tailed
        out = torch.zeros_like(values)
        for mask, stats in self._groups(x):
            out[mask] = stats.normalize(values[mask])
        return out

    def update(self, x: ScoreInputs, grad_norms: torch.Tensor | None) -> None:
        values = torch.log1p(x.losses.detach().float().cpu().clamp_min(0))
        for mask, stats in self._groups(x):
            stats.update(values[mask])


def normalized_entropy(logits: torch.Tensor) -> torch.Tensor:
    """(B, C) logits -> (B,) predictive entropy divided by log(C), in [0, 1]."""
    logp = torch.log_softmax(logits.detach().float(), dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return (entropy / math.log(max(logits.shape[-1], 2))).clamp(0, 1).cpu()


@COMPONENTS.register("uncertainty")
class UncertaintyComponent(Component):
    """Predictive entropy (classification) or predicted variance / ensemble disagreement (regression, RL)."""

    def __init__(self, cfg: SignificanceConfig) -> None:
        super().__init__(cfg)
        self.stats = RunningStats(cfg.stats_momentum)

    def check(self, x: ScoreInputs, name: str) -> None:
        if x.logits is None and x.variance is None:
            raise ValueError(f"significance component {name!r} needs ScoreInputs.logits or ScoreInputs.variance")

    def score(self, x: ScoreInputs) -> torch.Tensor:
        if x.logits is not None:
            return normalized_entropy(x.logits)
        return self.stats.normalize(torch.log(x.variance.detach().float().clamp_min(1e-12)))

    def update(self, x: ScoreInputs, grad_norms: torch.Tensor | None) -> None:
        if x.logits is None and x.variance is not None:
            self.stats.update(torch.log(x.variance.detach().float().clamp_min(1e-12)))


@COMPONENTS.register("novelty")
class NoveltyComponent(Component):
    """Distance of a sample's embedding to a bounded memory of prototypes (online k-means)."""

    needs = ("embeddings",)

    def __init__(self, cfg: SignificanceConfig, lr: float = 0.05) -> None:
        super().__init__(cfg)
        self.capacity, self.lr = cfg.novelty_prototypes, lr
        self.stats = RunningStats(cfg.stats_momentum)
        self.prototypes = torch.zeros(0, 0)  # (K, D), K <= capacity; kept in extra state (it grows)

    def distances(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B,) distance to the nearest prototype (0 while the memory is empty)."""
        emb = emb.detach().float().cpu()
        if self.prototypes.numel() == 0:
            return torch.zeros(emb.shape[0])
        return torch.cdist(emb, self.prototypes).min(dim=1).values

    def score(self, x: ScoreInputs) -> torch.Tensor:
        if self.prototypes.numel() == 0:
            return torch.full((x.embeddings.shape[0],), 0.5)
        return self.stats.normalize(self.distances(x.embeddings))

    @torch.no_grad()
    def update(self, x: ScoreInputs, grad_norms: torch.Tensor | None) -> None:
        emb = x.embeddings.detach().float().cpu()
        free = self.capacity - self.prototypes.shape[0]
        if free > 0:  # fill the memory with the first samples seen
            self.prototypes = emb[:free].clone() if self.prototypes.numel() == 0 else torch.cat([self.prototypes, emb[:free]])
            emb = emb[free:]
        if emb.shape[0] == 0:
            return
        dist = torch.cdist(emb, self.prototypes)  # (B, K)
        self.stats.update(dist.min(dim=1).values)
        nearest = dist.argmin(dim=1)
        # Move each prototype towards the mean of the samples it won (one vectorized k-means step).
        sums = torch.zeros_like(self.prototypes).index_add_(0, nearest, emb)
        counts = torch.bincount(nearest, minlength=self.prototypes.shape[0]).float().unsqueeze(1)
        won = counts.squeeze(1) > 0
        target = sums[won] / counts[won]
        self.prototypes[won] += self.lr * (target - self.prototypes[won])

    def get_extra_state(self) -> dict[str, Any]:
        return {"prototypes": self.prototypes.clone()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.prototypes = state["prototypes"].clone()


def value_features(x: ScoreInputs) -> torch.Tensor:
    """(B, 4) cheap features of a sample for the learning-value predictor (0 where a signal is absent)."""
    n = x.indices.shape[0]
    zero = torch.zeros(n)
    loss = torch.log1p(x.losses.detach().float().cpu().clamp_min(0)) if x.losses is not None else zero
    if x.logits is not None:
        prob = torch.softmax(x.logits.detach().float(), -1).cpu()
        entropy, top = normalized_entropy(x.logits), 1.0 - prob.max(-1).values
    else:
        entropy = top = zero
    var = torch.log1p(x.variance.detach().float().cpu().clamp_min(0)) if x.variance is not None else zero
    return torch.stack([loss, entropy, top, var], dim=1)


@COMPONENTS.register("learning_value")
class LearningValueComponent(Component):
    """A small MLP that predicts a sample's log gradient norm from cheap features, trained online."""

    def __init__(self, cfg: SignificanceConfig, hidden: int = 16, lr: float = 1e-2) -> None:
        super().__init__(cfg)
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.stats = RunningStats(cfg.stats_momentum)

    def predict(self, x: ScoreInputs) -> torch.Tensor:
        """(B,) predicted log gradient norm."""
        with torch.no_grad():
            return self.net(value_features(x)).squeeze(1)

    def score(self, x: ScoreInputs) -> torch.Tensor:
        return self.stats.normalize(self.predict(x))

    def update(self, x: ScoreInputs, grad_norms: torch.Tensor | None) -> None:
        """Train on ``grad_norms`` when given; the prediction statistics learn from every sample in ``x``."""
        if grad_norms is not None:
            self.learn_grad_norms(x, grad_norms)
        self.stats.update(self.predict(x))

    def learn_grad_norms(self, x: ScoreInputs, grad_norms: torch.Tensor) -> None:
        target = torch.log(grad_norms.detach().float().cpu().clamp_min(1e-12))
        with torch.enable_grad():
            loss = nn.functional.mse_loss(self.net(value_features(x)).squeeze(1), target)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def get_extra_state(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])


@COMPONENTS.register("physical")
class PhysicalComponent(Component):
    """A per-sample weight from real-robot feedback (e.g. a function of the sample's randomization values).

    Neutral (returns None, so it does not change the ranking) when there is no real data.
    """

    def score(self, x: ScoreInputs) -> torch.Tensor | None:
        if x.physical is None:
            return None
        w = x.physical.detach().float().cpu()
        if bool(((w < 0) | (w > 1) | ~torch.isfinite(w)).any()):
            raise ValueError(f"ScoreInputs.physical must lie in [0, 1]; got min {w.min():.3g}, max {w.max():.3g}")
        return w


@COMPONENTS.register("random")
class RandomComponent(Component):
    """Uniform random scores: the random-subset control of data-selection experiments (seeded)."""

    def __init__(self, cfg: SignificanceConfig, seed: int = 0) -> None:
        super().__init__(cfg)
        self.generator = torch.Generator().manual_seed(seed)

    def score(self, x: ScoreInputs) -> torch.Tensor:
        return torch.rand(x.indices.shape[0], generator=self.generator)

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

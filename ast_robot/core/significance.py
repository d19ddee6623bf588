"""Per-sample significance in [0, 1] from named, registered components.

A component (see :mod:`ast_robot.core.components`) turns the signals of a batch (:class:`ScoreInputs`)
into a score in [0, 1] or ``None`` when it has nothing to say (the ``physical`` component without real
data); :class:`SignificanceModel` takes the weighted mean of the components that spoke. With
``stale_scores`` on, :class:`StaleScores` remembers each sample's last score by dataset index, so the
gate can decide without a forward pass (the forward of a skipped sample is skipped too).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from ast_robot.config.gate import SignificanceConfig
from ast_robot.registry import Registry

COMPONENTS: Registry[type] = Registry("significance component", modules=("ast_robot.core.components",))


class ScoreInputs(NamedTuple):
    """What a batch offers for scoring; fields a task cannot provide stay ``None``."""

    indices: torch.Tensor  # (B,) long: dataset index of each sample (stale scores, novelty memory)
    losses: torch.Tensor | None = None  # (B,) per-sample loss
    logits: torch.Tensor | None = None  # (B, C) classification logits
    variance: torch.Tensor | None = None  # (B,) predicted variance / ensemble or critic disagreement
    embeddings: torch.Tensor | None = None  # (B, D) sample embedding (novelty)
    physical: torch.Tensor | None = None  # (B,) weight in [0, 1] from real-robot feedback
    groups: torch.Tensor | None = None  # (B,) long in [0, loss_groups): row kind (loss scored within each)

    def select(self, mask: torch.Tensor) -> ScoreInputs:
        """The rows where ``mask`` (B,) is true."""
        return ScoreInputs(*(None if v is None else v[mask] for v in self))


class RunningStats(nn.Module):
    """EMA mean and variance of a scalar signal; ``normalize`` maps values to (0, 1) by a logistic z-score."""

    def __init__(self, momentum: float) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("var", torch.ones(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, values: torch.Tensor) -> None:
        values = values.detach().float().flatten().cpu()
        if values.numel() == 0:
            return
        mean, var = values.mean(), values.var(unbiased=False)
        if int(self.count) == 0:
            self.mean.copy_(mean)
            self.var.copy_(var)
        else:
            m = self.momentum
            delta = mean - self.mean
            self.mean.mul_(m).add_((1 - m) * mean)
            self.var.mul_(m).add_((1 - m) * (var + m * delta * delta))
        self.count += values.numel()

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        """(B,) -> (B,) in (0, 1); before any update the batch itself gives the statistics."""
        values = values.detach().float().cpu()
        if int(self.count) == 0:
            mean, var = values.mean(), values.var(unbiased=False) if values.numel() > 1 else torch.ones(())
        else:
            mean, var = self.mean, self.var
        return torch.sigmoid((values - mean) / torch.sqrt(var + 1e-8))


class Component(nn.Module):
    """Base of significance components: ``score`` (B,) in [0, 1] or None; ``update`` after a step."""

    needs: tuple[str, ...] = ()  # ScoreInputs fields that must be present

    def __init__(self, cfg: SignificanceConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def check(self, x: ScoreInputs, name: str) -> None:
        missing = [f for f in self.needs if getattr(x, f) is None]
        if missing:
            raise ValueError(f"significance component {name!r} needs ScoreInputs.{missing[0]}, which this trainer does not provide")

    def score(self, x: ScoreInputs) -> torch.Tensor | None:
        raise NotImplementedError

    def update(self, x: ScoreInputs, grad_norms: torch.Tensor | None) -> None:
        """Learn from a scored batch; ``grad_norms`` (B,) are measured per-sample gradient norms (or None)."""

    def learn_grad_norms(self, x: ScoreInputs, grad_norms: torch.Tensor) -> None:
        """Learn only from measured gradient norms (B,) of the backwarded samples; most components ignore them."""


class SignificanceModel(nn.Module):
    """Weighted mean of registered components; ``cfg.weights`` names them (unknown names list the known)."""

    def __init__(self, cfg: SignificanceConfig) -> None:
        super().__init__()
        if not cfg.weights:
            raise ValueError("significance.weights: empty; name at least one component, e.g. {loss: 1.0}")
        for name, weight in cfg.weights.items():
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
                raise ValueError(f"significance.weights.{name}: {weight!r}; expected a finite number >= 0")
        if sum(cfg.weights.values()) <= 0:
            raise ValueError(f"significance.weights: {cfg.weights}; at least one weight must be > 0")
        self.cfg = cfg
        self.components = nn.ModuleDict({name: COMPONENTS.get(name)(cfg) for name in cfg.weights})
        self.stale = StaleScores() if cfg.stale_scores else None

    @torch.no_grad()
    def score(self, x: ScoreInputs) -> torch.Tensor:
        """(B,) significance in [0, 1]: the weighted mean over components that returned a score."""
        total = torch.zeros(x.indices.shape[0])
        weight_sum = 0.0
        for name, comp in self.components.items():
            w = float(self.cfg.weights[name])
            if w == 0:
                continue
            comp.check(x, name)
            s = comp.score(x)
            if s is not None:
                total += w * s.detach().float().cpu()
                weight_sum += w
        if weight_sum == 0:
            return torch.full_like(total, 0.5)  # nothing spoke: every sample is equally significant
        return (total / weight_sum).clamp(0.0, 1.0)

    def update(self, x: ScoreInputs, grad_norms: torch.Tensor | None = None) -> None:
        """Let every component learn from a batch that was forwarded (and maybe backwarded)."""
        for comp in self.components.values():
            comp.update(x, grad_norms)

    def learn_grad_norms(self, x: ScoreInputs, grad_norms: torch.Tensor) -> None:
        """Let components that predict gradient norms learn from the (kept) samples that have them."""
        for comp in self.components.values():
            comp.learn_grad_norms(x, grad_norms)

    def observe(self, x: ScoreInputs, grad_norms: torch.Tensor | None = None) -> torch.Tensor:
        """Score fresh signals, remember them (stale mode) and update the components; returns the scores."""
        scores = self.score(x)
        if self.stale is not None:
            self.stale.store(x.indices, scores)
        self.update(x, grad_norms)
        return scores


class StaleScores(nn.Module):
    """Last known score and kept flag of each dataset index; unseen samples score 1 (look at them first)."""

    def __init__(self, size: int = 0) -> None:
        super().__init__()
        self.scores = torch.ones(size)
        self.kept = torch.zeros(size, dtype=torch.bool)
        self.seen = torch.zeros(size, dtype=torch.bool)

    def _grow(self, index_max: int) -> None:
        if index_max < self.scores.numel():
            return
        size = max(index_max + 1, 2 * self.scores.numel())
        extra = size - self.scores.numel()
        self.scores = torch.cat([self.scores, torch.ones(extra)])
        self.kept = torch.cat([self.kept, torch.zeros(extra, dtype=torch.bool)])
        self.seen = torch.cat([self.seen, torch.zeros(extra, dtype=torch.bool)])

    def lookup(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) indices -> (scores (B,), kept-last-time (B,) bool)."""
        indices = indices.cpu()
        self._grow(int(indices.max()) if indices.numel() else -1)
        return self.scores[indices].clone(), self.kept[indices].clone()

    def is_seen(self, indices: torch.Tensor) -> torch.Tensor:
        """(B,) bool: whether each sample has a stored score."""
        indices = indices.cpu()
        self._grow(int(indices.max()) if indices.numel() else -1)
        return self.seen[indices].clone()

    def store(self, indices: torch.Tensor, scores: torch.Tensor) -> None:
        indices = indices.cpu()
        self._grow(int(indices.max()) if indices.numel() else -1)
        self.scores[indices] = scores.float().cpu()
        self.seen[indices] = True

    def mark_kept(self, indices: torch.Tensor, kept: torch.Tensor) -> None:
        indices = indices.cpu()
        self._grow(int(indices.max()) if indices.numel() else -1)
        self.kept[indices] = kept.cpu()

    def get_extra_state(self) -> dict[str, Any]:
        return {"scores": self.scores.clone(), "kept": self.kept.clone(), "seen": self.seen.clone()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.scores, self.kept, self.seen = state["scores"].clone(), state["kept"].clone(), state["seen"].clone()

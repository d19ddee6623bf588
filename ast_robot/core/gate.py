"""A vectorized, PI-controlled sample gate.

``Gate(cfg)(scores) -> (keep_mask, weights)`` decides, for a whole batch at once, which samples get a
backward pass. In ``logistic`` mode each sample is kept with probability
``p = floor + (1 - floor) * sigmoid((score - threshold) / temperature)``; a PI controller moves the
threshold so that the measured activation rate tracks ``target_rate``. ``top_fraction`` keeps exactly the
highest-scoring ``ceil(target_rate * n)`` samples. Kept samples may carry importance weights ``1 / p``
so that ``sum(weight * keep * loss) / n`` is an unbiased estimate of the batch's mean loss (and gradient).
Without them (``importance_weights: false``, and always in ``top_fraction`` mode, whose choice is
deterministic) the weights are 1 and ``sum(keep * loss) / n`` is the kept samples' mean loss scaled by
``k / n`` (about ``target_rate``), biased towards the high scorers: a smaller effective learning rate.

The controller sees the gate's own decisions, before the energy budget and ``min_keep`` override them
(the threshold cannot move those); the config rejects a budget or a floor probability that would make
the target unreachable. Samples forced in by ``min_keep`` get p = 1: a small bias, only on the rare
batches where too few were kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ast_robot.config.gate import GateConfig

# (kept, seen, gated) -> the same counts summed over every process; set by ast_robot.core.distributed.
CountReducer = Callable[[torch.Tensor], torch.Tensor]


def validate_gate_config(cfg: GateConfig) -> GateConfig:
    """Re-run the schema checks (bounds, types) on a config built in code; raises ConfigError (ValueError)."""
    from ast_robot.config.schema import from_dict, to_dict

    if not isinstance(cfg, GateConfig):
        raise TypeError(f"Gate(cfg): expected a GateConfig, got {type(cfg).__name__}")
    return from_dict(GateConfig, to_dict(cfg), "gate")


class Gate:
    """Keeps a target fraction of samples; state (threshold, integral, rate EMA, RNG) is checkpointable."""

    def __init__(self, cfg: GateConfig, seed: int = 0, reduce_counts: CountReducer | None = None) -> None:
        self.cfg = validate_gate_config(cfg)
        self.generator = torch.Generator().manual_seed(seed)
        self.reduce_counts = reduce_counts
        self.threshold = float(self.cfg.initial_threshold)
        self.integral = 0.0
        self.rate_ema = float(self.cfg.target_rate)
        self.credit = 0.0  # energy budget: samples we may still keep
        self.seen = 0
        self.kept = 0
        self.last_rate = 0.0

    # ----------------------------------------------------------------------------------------- decisions
    @torch.no_grad()
    def __call__(self, scores: torch.Tensor, was_kept: torch.Tensor | None = None,
                 force: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Decide for a batch. ``scores``: (B,) in score units; ``was_kept``: (B,) bool, for hysteresis;
        ``force``: (B,) bool, samples kept regardless (e.g. never scored yet), outside the rate control.

        Returns ``keep`` (B,) bool and ``weights`` (B,) float (1/p for kept samples with importance
        weighting on, else 1; 0 for dropped samples).
        """
        if scores.dim() != 1:
            raise ValueError(f"scores must be 1-D (batch,), got shape {tuple(scores.shape)}")
        scores = scores.detach().float().cpu()
        if force is None or not bool(force.any()):
            keep, prob = self._decide(scores, was_kept)
        else:
            force = force.cpu().bool()
            keep, prob = force.clone(), torch.ones_like(scores)
            rest = ~force
            if bool(rest.any()):
                keep[rest], prob[rest] = self._decide(scores[rest], None if was_kept is None else was_kept.cpu()[rest])
            else:
                self._update(0, 0)  # every rank joins the count reduction, even with nothing to decide
        if self.cfg.importance_weights:
            weights = torch.where(keep, 1.0 / prob.clamp_min(1e-12), torch.zeros_like(prob))
        else:
            weights = keep.float()
        return keep, weights

    def _decide(self, scores: torch.Tensor, was_kept: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate, budget, minimum keep and one controller step on (B,) scores; returns (keep, p)."""
        if self.cfg.mode == "top_fraction":
            keep, prob = self._top_fraction(scores)
        else:
            keep, prob = self._logistic(scores, was_kept)
        gated = int(keep.sum())  # what the threshold decided: the controller acts on this rate
        keep, prob = self._apply_budget(scores, keep, prob)
        keep, prob = self._apply_min_keep(scores, keep, prob)
        self._update(int(keep.sum()), scores.numel(), gated)
        return keep, prob

    def check_batch_size(self, n: int) -> None:
        """Reject a ``min_keep`` the target rate cannot accommodate in batches of ``n`` (it would override
        the gate on most batches, bias the 1/p weights and pin the threshold)."""
        if self.cfg.min_keep > self.cfg.target_rate * n:
            raise ValueError(f"gate.min_keep {self.cfg.min_keep} exceeds gate.target_rate * batch size "
                             f"({self.cfg.target_rate:g} * {n} = {self.cfg.target_rate * n:g}); lower min_keep "
                             "or raise the batch size or target_rate")  # fmt: skip

    def probabilities(self, scores: torch.Tensor, was_kept: torch.Tensor | None = None) -> torch.Tensor:
        """Keep probabilities (B,) at the current threshold (logistic mode), without deciding."""
        threshold = torch.full_like(scores, self.threshold)
        if was_kept is not None and self.cfg.hysteresis > 0:
            threshold = threshold - self.cfg.hysteresis * was_kept.to(scores.device).float()
        if self.cfg.temperature > 0:
            p = torch.sigmoid((scores - threshold) / self.cfg.temperature)
        else:
            p = (scores >= threshold).float()
        floor = self.cfg.min_probability
        return floor + (1.0 - floor) * p

    def _logistic(self, scores: torch.Tensor, was_kept: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        prob = self.probabilities(scores, was_kept)
        draws = torch.rand(scores.shape, generator=self.generator)
        return draws < prob, prob

    def _top_fraction(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = max(1, math.ceil(self.cfg.target_rate * scores.numel()))
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep[torch.topk(scores, k).indices] = True
        return keep, torch.ones_like(scores)  # deterministic choice: no 1/p correction exists

    def _apply_budget(self, scores: torch.Tensor, keep: torch.Tensor, prob: torch.Tensor):
        """Energy budget: at most ``energy_budget`` kept per 1,000 seen.

        Beyond it, logistic mode keeps a uniform random ``allowed`` of the kept and multiplies every p by
        ``allowed / kept`` (each kept sample survives with that probability), so 1/p stays unbiased;
        ``top_fraction`` drops the lowest scores (it has no probabilities to correct)."""
        if self.cfg.energy_budget is None:
            return keep, prob
        n = scores.numel()
        self.credit = min(self.credit + n * self.cfg.energy_budget / 1000.0, float(n))
        allowed, kept = int(self.credit), int(keep.sum())
        if kept > allowed:
            if self.cfg.mode == "logistic":
                survivors = keep.nonzero().squeeze(1)[torch.randperm(kept, generator=self.generator)[:allowed]]
                prob = prob * (allowed / kept)
            else:
                masked = torch.where(keep, scores, torch.full_like(scores, -math.inf))
                survivors = torch.topk(masked, allowed).indices
            keep = torch.zeros_like(keep)
            keep[survivors] = True
        self.credit -= int(keep.sum())
        return keep, prob

    def _apply_min_keep(self, scores: torch.Tensor, keep: torch.Tensor, prob: torch.Tensor):
        """Fallback: keep the ``min_keep`` highest scores when too few were kept (they get p = 1)."""
        need = min(self.cfg.min_keep, scores.numel())
        if int(keep.sum()) >= need:
            return keep, prob
        forced = torch.zeros_like(keep)
        forced[torch.topk(scores, need).indices] = True
        forced &= ~keep
        prob = torch.where(forced, torch.ones_like(prob), prob)
        return keep | forced, prob

    # ----------------------------------------------------------------------------------------- control
    def _update(self, kept: int, seen: int, gated: int | None = None) -> None:
        """PI step on the (globally reduced) rate the threshold decided (``gated`` of ``seen``, before
        overrides; default ``kept``); ``kept`` (after overrides) feeds the counters."""
        gated = kept if gated is None else gated
        if self.reduce_counts is not None:
            counts = self.reduce_counts(torch.tensor([kept, seen, gated], dtype=torch.float64))
            kept, seen, gated = (int(v) for v in counts)
        self.kept += kept
        self.seen += seen
        if seen == 0:
            return
        self.last_rate = kept / seen
        if self.cfg.mode == "top_fraction":
            return
        c = self.cfg
        self.rate_ema = c.ema * self.rate_ema + (1.0 - c.ema) * gated / seen
        error = self.rate_ema - c.target_rate  # > 0: keeping too many -> raise the threshold
        if abs(error) < c.deadband:
            error = 0.0
        integral = max(-c.integral_limit, min(c.integral_limit, self.integral + error))
        raw = c.initial_threshold + c.kp * error + c.ki * integral
        if c.ki > 0 and (raw > c.threshold_max or raw < c.threshold_min):
            # Anti-windup (back-calculation): integrate only as far as the output can follow its bound.
            bound = c.threshold_max if raw > c.threshold_max else c.threshold_min
            limited = (bound - c.initial_threshold - c.kp * error) / c.ki
            if raw > bound:
                integral = min(integral, max(limited, self.integral))
            else:
                integral = max(integral, min(limited, self.integral))
        self.integral = integral
        raw = c.initial_threshold + c.kp * error + c.ki * self.integral
        self.threshold = max(c.threshold_min, min(c.threshold_max, raw))

    @property
    def activation_rate(self) -> float:
        """Kept / seen over the gate's lifetime (all processes when counts are reduced)."""
        return self.kept / self.seen if self.seen else 0.0

    # ----------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "integral": self.integral, "rate_ema": self.rate_ema,
                "credit": self.credit, "seen": self.seen, "kept": self.kept, "last_rate": self.last_rate,
                "generator": self.generator.get_state()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("threshold", "integral", "rate_ema", "credit", "last_rate"):
            setattr(self, key, float(state[key]))
        self.seen, self.kept = int(state["seen"]), int(state["kept"])
        self.generator.set_state(state["generator"])

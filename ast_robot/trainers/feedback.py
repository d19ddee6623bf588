"""Physical feedback as a per-sample LOSS weight in behaviour cloning (issue 21).

The gap analyzer scores each simulated episode by how close its randomization draws lie to where the real
robot failed (:class:`ast_robot.gap.weights.PhysicalWeights`: a bump over the named parameters). Until session 11
that score reached training only through the gate's ``physical`` significance component, which (a) ungated runs
(every pixel recipe) never consult and (b) with the gate's 1/p importance weights changes which rows get a backward
pass, not the expected gradient. Here the score becomes a weight on each row's loss, so it changes the objective in
every recipe, gated or not:

    w_norm = raw / mean(raw)         over the demonstration steps (computed in log space: the raw bump of a
                                     700-episode pool drawn far from the fit is ~1e-50, which would underflow)
    w_norm = min(w_norm, cap)        then renormalised to mean 1 (a few rows near the centre must not own the loss)
    w      = (1 - mix) + mix * w_norm

so the weights average 1 over the steps (the loss keeps its scale: same learning rate, same clip), no row falls
below ``1 - mix`` (the pool is never zeroed: what the policy knew is still trained on) and uniform scores give
exactly 1 (no culprit, no reweighting). Rows whose score is unknown (a draw missing or NaN) weigh 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_MIX = 0.5  # half the loss follows the feedback, half stays uniform (train.feedback_mix documents the choice)
DEFAULT_CAP = 10.0  # no row's normalised score above 10x the mean (train.feedback_cap)
_CAP_ROUNDS = 50  # clip-and-renormalise passes: each moves mass from clipped rows to the rest; converges fast


def check_mix_cap(mix: float, cap: float) -> None:
    """ValueError, one line, for a mix outside [0, 1) or a cap below 1."""
    if not (np.isfinite(mix) and 0.0 <= mix < 1.0):
        raise ValueError(f"train.feedback_mix: {mix!r} is not in [0, 1) (0: feedback off; 1 would zero the rows far "
                         "from the real failures)")  # fmt: skip
    if not (np.isfinite(cap) and cap >= 1.0):
        raise ValueError(f"train.feedback_cap: {cap!r} must be a finite number >= 1 (the most a row's normalised "
                         "score may exceed the mean)")  # fmt: skip


def loss_weights(log_raw: Sequence[float], counts: Sequence[int] | None = None, mix: float = DEFAULT_MIX,
                 cap: float = DEFAULT_CAP) -> np.ndarray:  # fmt: skip
    """Per-episode loss weights (E,) from per-episode log scores ``log_raw`` (E,), each episode counting
    ``counts[e]`` steps (default 1) in the mean. -inf: score 0 (weight ``1 - mix``); NaN: unknown (weight 1).
    Always finite, > 0, and of step-weighted mean 1."""
    check_mix_cap(mix, cap)
    log_raw = np.asarray(log_raw, dtype=float).reshape(-1)
    counts = np.ones(len(log_raw)) if counts is None else np.asarray(counts, dtype=float).reshape(-1)
    if len(counts) != len(log_raw):
        raise ValueError(f"loss_weights: {len(log_raw)} scores but {len(counts)} step counts; give one count per episode")
    if len(log_raw) == 0:
        raise ValueError("loss_weights: no episodes to weigh (the demonstrations are empty)")
    if (counts <= 0).any() or not np.isfinite(counts).all():
        raise ValueError(f"loss_weights: step counts must be finite and > 0, got min {counts.min():g}")
    if np.isposinf(log_raw).any():
        raise ValueError("loss_weights: a score of +inf (log); the analyzer's scores are in [0, 1]")
    known = ~np.isnan(log_raw)
    out = np.ones(len(log_raw))
    if not known.any() or not np.isfinite(log_raw[known]).any():
        return out  # nothing scored, or every score 0: no information, no reweighting
    out[known] = _normalised(log_raw[known], counts[known], cap)
    return (1.0 - mix) + mix * out


def _normalised(log_raw: np.ndarray, counts: np.ndarray, cap: float) -> np.ndarray:
    """exp(log_raw) / its count-weighted mean, clipped at ``cap`` and renormalised to mean 1 (log-sum-exp)."""
    top = np.max(log_raw)  # finite: the caller checked one score is
    rel = np.exp(log_raw - top)  # in [0, 1]; exactly 1 at the best row, 0 for -inf
    w = rel * counts.sum() / np.sum(counts * rel)
    for _ in range(_CAP_ROUNDS):
        if w.max() <= cap * (1 + 1e-9):
            break
        w = np.minimum(w, cap)
        free = w < cap
        deficit = counts.sum() - np.sum(counts * w)  # the mass clipping removed, given to the unclipped rows
        if not free.any():
            break
        mass = np.sum(counts[free] * w[free])
        if mass > 0:  # keep the ratios among the unclipped rows
            w[free] *= 1 + deficit / mass
        else:  # they all scored 0: share it evenly (the mean must stay 1)
            w[free] += deficit / counts[free].sum()
    return w

"""Physical-feedback weights: a small model over randomization values, high where real failures cluster.

A score in [0, 1]: ``strength * exp(-0.5 * sum(((theta - centre) / scale) ** 2))`` over a FEW parameters: the
analyzer's named ones (the sysid posterior, :func:`weights_from_posterior`), else those whose draws differ
significantly between the sim episodes nearest the real failures and those nearest the real successes
(:func:`weights_from_failures`). Behaviour cloning turns the scores into per-row loss weights of mean 1
(:mod:`ast_robot.trainers.feedback`, from :meth:`PhysicalWeights.log_weight`); SAC's gate reads ``weights(dr)``.

Why a few parameters, not every randomized one: a bump over all ~60 randomized dimensions gave a 700-episode
pool a mean weight of ~1e-21 (session 11): every episode is far from the centre in some irrelevant dimension, so
the score says nothing about the parameter that matters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.gap.features import outcome_features, randomization_matrix
from ast_robot.records import EpisodeRecord


@dataclass(frozen=True)
class PhysicalWeights:
    """A Gaussian bump in parameter space, scaled by how often the real robot failed."""

    names: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    strength: float  # in [0, 1]: the real failure rate
    source: str = ""  # how the centre was found ("real failures (nearest sim episodes)", "sysid posterior")

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.centre) == len(self.scale)):
            raise ValueError(f"names, centre and scale must have one entry per parameter, got "
                             f"{len(self.names)}, {len(self.centre)}, {len(self.scale)}")  # fmt: skip
        if any(not s > 0 for s in self.scale):
            raise ValueError(f"scale must be > 0 for every parameter, got {self.scale}")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")

    def batch(self, theta: np.ndarray) -> np.ndarray:
        """(N, P) parameter values in ``names`` order -> (N,) weights in [0, 1]."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if theta.shape[1] != len(self.names):
            raise ValueError(
                f"theta must have {len(self.names)} columns ({self.names}), got shape {theta.shape}"
            )
        z = (theta - np.asarray(self.centre)) / np.asarray(self.scale)  # (N, P)
        return self.strength * np.exp(-0.5 * np.sum(z**2, axis=1))

    def batch_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Weights from per-parameter columns (name -> (N,) values, e.g. stored ``info["dr"]`` of N
        transitions); a parameter missing from ``columns`` counts as being at the centre."""
        if not columns:
            raise ValueError(f"columns must map parameter names {self.names} to (N,) arrays; got none")
        n = len(np.asarray(next(iter(columns.values()))).reshape(-1))
        theta = np.column_stack([np.asarray(columns[k], dtype=float).reshape(-1) if k in columns
                                 else np.full(n, c) for k, c in zip(self.names, self.centre)])  # fmt: skip
        return self.batch(theta)

    def log_weight(self, dr: Mapping[str, float]) -> float:
        """log of the score of one episode's draws (-inf for strength 0); NaN when a parameter is missing from
        ``dr`` or not finite there (unknown: the loss weight treats it as neutral, never as at the centre)."""
        try:
            theta = np.array([float(dr[n]) for n in self.names])
        except (KeyError, TypeError, ValueError):
            return float("nan")
        if not np.isfinite(theta).all():
            return float("nan")
        z = (theta - np.asarray(self.centre)) / np.asarray(self.scale)
        with np.errstate(divide="ignore"):
            return float(np.log(self.strength) - 0.5 * np.sum(z**2))

    def __call__(self, dr: Mapping[str, float]) -> float:
        """Weight of one episode from its randomization values (``info["dr"]``); missing names count as centre."""
        row = [float(dr.get(n, c)) for n, c in zip(self.names, self.centre)]
        return float(self.batch(np.array([row]))[0])

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "centre": list(self.centre), "scale": list(self.scale),
                "strength": self.strength, "source": self.source}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhysicalWeights:
        known = {"names", "centre", "scale", "strength", "source"}
        if (
            not isinstance(data, Mapping)
            or set(data) - known
            or not {"names", "centre", "scale", "strength"} <= set(data)
        ):
            raise ValueError(
                f"physical weights must be a mapping with keys {sorted(known)}, got {data!r:.200}"
            )
        return cls(tuple(data["names"]), tuple(map(float, data["centre"])), tuple(map(float, data["scale"])),
                   float(data["strength"]), str(data.get("source", "")))  # fmt: skip


MAX_FAILURE_DIMS = 3  # at most this many parameters in a failure-located bump (the few that differ most)
PERMUTATIONS = 400  # label shuffles of the real episodes for the contrast's null distribution
ALPHA = 0.05  # a parameter is kept when its contrast beats the shuffles' maximum at this level (family-wise)


def weights_from_failures(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord], names: Sequence[str],
                          k: int = 5, seed: int = 0) -> PhysicalWeights | None:  # fmt: skip
    """Locate real failures in parameter space through the sim episodes whose outcomes look most like them.

    Each real episode is matched to its ``k`` nearest sim episodes in standardized outcome-feature space. Per
    parameter, the contrast is the difference of the mean draws of the failures' matches and the successes'
    matches, in units of the sim draws' spread. Kept: the (at most :data:`MAX_FAILURE_DIMS`) parameters whose
    contrast exceeds the 1 - :data:`ALPHA` quantile of the largest contrast over all parameters when the real
    episodes' success labels are shuffled (a family-wise permutation test: with real outcomes indistinguishable
    from sim, or too few real episodes to tell, nothing is kept). The bump sits at the failures' matches' mean.
    Returns None when nothing is kept, the real robot never failed or never succeeded (no contrast), no
    parameter is randomized or no outcome feature varies in sim.
    """
    fails = np.array([not r.success for r in real], dtype=bool)
    if not names or not sim or not fails.any() or fails.all():
        return None
    nearest = _nearest_sim(sim, real, k)  # (Nr, k) or None
    if nearest is None:
        return None
    theta = randomization_matrix(sim, names)  # (Ns, P)
    spread = theta.std(axis=0)
    spread = np.where(spread > 0, spread, np.inf)  # a constant draw carries no contrast
    per_real = theta[nearest].mean(axis=1) / spread  # (Nr, P): each real episode's matches' mean, standardized
    observed = _contrast(per_real, fails)
    rng = np.random.default_rng(seed)
    null = np.array([_contrast(per_real, rng.permutation(fails)).max() for _ in range(PERMUTATIONS)])
    bar = np.quantile(null, 1 - ALPHA)
    keep = [i for i in np.argsort(-observed)[:MAX_FAILURE_DIMS] if observed[i] > bar and np.isfinite(spread[i])]
    if not keep:
        return None
    matched = theta[nearest[fails].ravel()][:, keep]
    span = theta[:, keep].max(axis=0) - theta[:, keep].min(axis=0)
    scale = np.maximum(matched.std(axis=0), 0.1 * span + 1e-6)  # never narrower than 10% of the sampled span
    return PhysicalWeights(tuple(names[i] for i in keep), tuple(matched.mean(axis=0).tolist()),
                           tuple(scale.tolist()), float(fails.mean()),
                           "real failures (nearest sim episodes by outcome; parameters that separate them "
                           "from the successes')")  # fmt: skip


def _nearest_sim(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord], k: int) -> np.ndarray | None:
    """(Nr, k) indices of each real episode's nearest sim episodes in standardized outcome space; None when no
    outcome feature varies across sim or the features are not finite."""
    track = all(r.joint_targets is not None for r in (*sim, *real))
    fs, fr = outcome_features(sim, track), outcome_features(real, track)
    # A feature constant across sim (e.g. `success` when every sim episode succeeded) carries no
    # information about where in parameter space an outcome happened; scaling it by a tiny std would
    # make it dominate every distance and wash out the real differences, so it is left out.
    varying = np.ptp(fs, axis=0) > 0  # exact: std() of a constant column can come out as 1e-15
    varying &= np.isfinite(fs).all(axis=0) & np.isfinite(fr).all(axis=0)
    if not varying.any():
        return None
    fs, fr = fs[:, varying], fr[:, varying]
    mu, sd = fs.mean(axis=0), fs.std(axis=0)
    d = np.linalg.norm(((fr - mu) / sd)[:, None, :] - ((fs - mu) / sd)[None, :, :], axis=2)  # (Nr, Ns)
    return np.argsort(d, axis=1)[:, : min(k, len(sim))]


def _contrast(per_real: np.ndarray, fails: np.ndarray) -> np.ndarray:
    """(P,) |mean over failures - mean over successes| of the standardized matched draws (0 where undefined)."""
    diff = np.abs(per_real[fails].mean(axis=0) - per_real[~fails].mean(axis=0))
    return np.nan_to_num(diff, nan=0.0, posinf=0.0)


def weights_from_posterior(names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                           strength: float) -> PhysicalWeights:  # fmt: skip
    """A bump on the system-identification posterior (where the real robot's physics was found)."""
    scale = [max(float(s), 1e-3 * max(abs(float(m)), 1.0)) for m, s in zip(mean, std)]
    return PhysicalWeights(tuple(names), tuple(float(m) for m in mean), tuple(scale), float(strength),
                           "sysid posterior")  # fmt: skip

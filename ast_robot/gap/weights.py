"""Physical-feedback weights: a small model over randomization values, high where real failures cluster.

A score in [0, 1]: ``strength * exp(-0.5 * sum(((theta - centre) / scale) ** 2))`` over a FEW parameters: the
analyzer's named ones (the sysid posterior, :func:`weights_from_posterior`), else those where the sim episodes
nearest the real failures sit significantly apart from where the policy fails in sim anyway
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
ALPHA = 0.05  # family-wise level of the per-parameter tests (Bonferroni over the randomized parameters)
MIN_EFFECT = 0.25  # and the failures' matches must sit this many sim standard deviations from the reference


def weights_from_failures(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord], names: Sequence[str],
                          k: int = 5) -> PhysicalWeights | None:  # fmt: skip
    """Locate real failures in parameter space through the sim episodes whose outcomes look most like them.

    Each real failure is matched to its ``k`` nearest sim episodes in standardized outcome-feature space. Per
    parameter (draws standardized by the sim spread), the matches' mean is compared with a reference: where the
    sim's own failures' nearest neighbours sit (every sim episode's mean when none failed in sim), so a real
    robot that fails where the policy fails in sim anyway (the nominal twin) moves nothing. Kept: the (at most
    :data:`MAX_FAILURE_DIMS`) parameters whose difference is at least :data:`MIN_EFFECT` standard deviations and
    significant in a one-sample t-test over the real failures (each its matches' mean; >= 2 failures),
    Bonferroni-corrected over the parameters at :data:`ALPHA`. Returns None when nothing is kept, the real
    robot failed fewer than twice, no parameter is randomized or no outcome feature varies in sim; the bump sits
    at the matches' mean draw.
    """
    fails = [r for r in real if not r.success]
    if not names or len(sim) < 3 or not fails:
        return None
    near = _nearest_sim(sim, fails, k)
    if near is None:
        return None
    real_near, sim_near = near  # (Nf, k), (Ns, k): sim episodes' own neighbours, themselves excluded
    theta = randomization_matrix(sim, names)  # (Ns, P)
    spread = theta.std(axis=0)
    z = (theta - theta.mean(axis=0)) / np.where(spread > 0, spread, np.inf)  # (Ns, P); constant draws: 0
    sim_fails = np.flatnonzero([not r.success for r in sim])
    reference = z[sim_near[sim_fails]].mean(axis=(0, 1)) if len(sim_fails) else np.zeros(len(names))
    keep = _separated(z, real_near, reference)
    if not keep:
        return None
    matched = theta[real_near.ravel()][:, keep]
    span = theta[:, keep].max(axis=0) - theta[:, keep].min(axis=0)
    scale = np.maximum(matched.std(axis=0), 0.1 * span + 1e-6)  # never narrower than 10% of the sampled span
    return PhysicalWeights(tuple(names[i] for i in keep), tuple(matched.mean(axis=0).tolist()),
                           tuple(scale.tolist()), len(fails) / len(real),
                           "real failures (nearest sim episodes by outcome; the parameters where they sit apart "
                           "from the sim failures')")  # fmt: skip


def _separated(z: np.ndarray, near: np.ndarray, reference: np.ndarray) -> list[int]:
    """Columns of ``z`` (Ns, P) where the real failures' matches ``near`` (Nf, k) sit apart from ``reference``
    (P,): the :func:`weights_from_failures` test; the largest differences first, at most :data:`MAX_FAILURE_DIMS`.

    The unit of evidence is a real failure (its matches' mean draw), not a matched sim episode: one failure's k
    matches describe one failure mode, however tight they are. The standard error is never below that of a mean
    over the distinct matched episodes (the floor, for failures that share their matches)."""
    from scipy.stats import t as student

    n, k = near.shape
    if n < 2:
        return []  # one real failure: no spread between failures to test against
    per_failure = z[near].mean(axis=1)  # (Nf, P)
    mean = per_failure.mean(axis=0)
    between = per_failure.var(axis=0, ddof=1)
    within = z[near].var(axis=1, ddof=1).mean(axis=0) if k > 1 else np.zeros_like(mean)
    distinct = len(np.unique(near))  # failures that share their matches are one piece of evidence, not several
    se = np.sqrt(np.maximum(between / n, within / distinct))
    effect = np.abs(mean - reference)
    t = effect / np.maximum(se, 1e-9)
    bar = student.ppf(1 - ALPHA / (2 * z.shape[1]), df=n - 1)
    ok = (t > bar) & (effect >= MIN_EFFECT)
    return [int(i) for i in np.argsort(-effect) if ok[i]][:MAX_FAILURE_DIMS]


def _nearest_sim(sim: Sequence[EpisodeRecord], failures: Sequence[EpisodeRecord],
                 k: int) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """((Nf, k) nearest sim episodes of each real failure, (Ns, k) of each sim episode but itself) in
    standardized outcome space; None when no outcome feature varies across sim (finite in both)."""
    track = all(r.joint_targets is not None for r in (*sim, *failures))
    fs, fr = outcome_features(sim, track), outcome_features(failures, track)
    # A feature constant across sim (e.g. `success` when every sim episode succeeded) carries no
    # information about where in parameter space an outcome happened; scaling it by a tiny std would
    # make it dominate every distance and wash out the real differences, so it is left out.
    varying = np.isfinite(fs).all(axis=0) & np.isfinite(fr).all(axis=0)
    varying[varying] = np.ptp(fs[:, varying], axis=0) > 0  # exact: std() of a constant column can be 1e-15
    if not varying.any():
        return None
    fs, fr = fs[:, varying], fr[:, varying]
    mu, sd = fs.mean(axis=0), fs.std(axis=0)
    a, b = (fr - mu) / sd, (fs - mu) / sd
    k = min(k, len(sim) - 1)
    d_real = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)  # (Nf, Ns)
    d_sim = np.linalg.norm(b[:, None, :] - b[None, :, :], axis=2)  # (Ns, Ns)
    np.fill_diagonal(d_sim, np.inf)
    return np.argsort(d_real, axis=1)[:, :k], np.argsort(d_sim, axis=1)[:, :k]


def weights_from_posterior(names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                           strength: float) -> PhysicalWeights:  # fmt: skip
    """A bump on the system-identification posterior (where the real robot's physics was found)."""
    scale = [max(float(s), 1e-3 * max(abs(float(m)), 1.0)) for m, s in zip(mean, std)]
    return PhysicalWeights(tuple(names), tuple(float(m) for m in mean), tuple(scale), float(strength),
                           "sysid posterior")  # fmt: skip

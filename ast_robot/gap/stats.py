"""Statistics of the gap: binomial intervals (Wilson, Newcombe) and two-sample distribution gaps."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a binomial proportion (good coverage even at 0 or n successes)."""
    if n <= 0:
        raise ValueError(f"n must be > 0 to estimate a rate, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    z = _z(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # exact ends: at 0 (n) successes the bound is 0 (1) in exact arithmetic; rounding gives 0.9999999999999999
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high)


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> Interval:
    """Newcombe's hybrid score interval of p1 - p2 from the two Wilson intervals (method 10)."""
    a, b = wilson_interval(k1, n1, confidence), wilson_interval(k2, n2, confidence)
    d = a.value - b.value
    low = d - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = d + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return Interval(d, max(-1.0, low), min(1.0, high))


@dataclass(frozen=True)
class DistributionGap:
    """How one scalar metric differs between sim and real episodes."""

    metric: str
    n_sim: int
    n_real: int
    sim_mean: float | None = None
    real_mean: float | None = None
    ks_statistic: float | None = None  # Kolmogorov-Smirnov D in [0, 1]
    ks_pvalue: float | None = None  # as computed; report.py shows it Holm-adjusted across metrics
    wasserstein: Interval | None = None  # earth mover's distance, metric units, basic-bootstrap interval
    wasserstein_pvalue: float | None = None  # permutation test of "same distribution" on the distance
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def distribution_gap(metric: str, sim: np.ndarray, real: np.ndarray, confidence: float = 0.95,
                     n_boot: int = 400, seed: int = 0) -> DistributionGap:  # fmt: skip
    """KS test, Wasserstein distance with a basic-bootstrap interval and a permutation p-value."""
    sim, real = np.asarray(sim, dtype=float).ravel(), np.asarray(real, dtype=float).ravel()
    if sim.size < 2 or real.size < 2:
        return DistributionGap(metric, sim.size, real.size, _mean(sim), _mean(real),
                               note="fewer than 2 values on one side; no distribution test")  # fmt: skip
    ks = stats.ks_2samp(sim, real)
    rng = np.random.default_rng(seed)
    w = wasserstein_interval(sim, real, confidence, n_boot, rng)
    p = wasserstein_permutation_pvalue(sim, real, n_boot, rng)
    return DistributionGap(metric, sim.size, real.size, _mean(sim), _mean(real), float(ks.statistic),
                           float(ks.pvalue), w, p)  # fmt: skip


def wasserstein_interval(sim: np.ndarray, real: np.ndarray, confidence: float, n_boot: int,
                         rng: np.random.Generator) -> Interval:  # fmt: skip
    """Basic (reflected) bootstrap interval of the Wasserstein distance, clipped at 0.

    The plug-in distance is biased upward (two samples of one distribution are never at distance 0),
    so percentile intervals sit above the truth; the basic interval ``[2W - q_hi, 2W - q_lo]`` corrects
    the bias the bootstrap sees. Measured coverage at n_sim=30, n_real=10 (normal samples): about 0.8 at
    a nominal 0.95, against 0.0 (W=0) and 0.5 (W=0.3) for the percentile interval. Small samples still
    under-cover; the permutation p-value is the test of "no gap".
    """
    _z(confidence)  # validates the level
    boots = np.empty(n_boot)
    for b in range(n_boot):  # resample both sides independently
        boots[b] = stats.wasserstein_distance(rng.choice(sim, sim.size), rng.choice(real, real.size))
    alpha = (1.0 - confidence) / 2.0
    q_low, q_high = np.quantile(boots, [alpha, 1 - alpha])
    value = float(stats.wasserstein_distance(sim, real))
    return Interval(value, max(0.0, 2 * value - float(q_high)), max(0.0, 2 * value - float(q_low)))


def wasserstein_permutation_pvalue(sim: np.ndarray, real: np.ndarray, n_perm: int,
                                   rng: np.random.Generator) -> float:  # fmt: skip
    """P-value of "sim and real come from one distribution": how often a random relabelling of the
    pooled values is at least as far apart as the observed split (+1 in both counts, never 0)."""
    observed = stats.wasserstein_distance(sim, real)
    pooled = np.concatenate([sim, real])
    hits = 0
    for _ in range(n_perm):
        shuffled = rng.permutation(pooled)
        hits += stats.wasserstein_distance(shuffled[: sim.size], shuffled[sim.size :]) >= observed * (1 - 1e-12)
    return (1 + hits) / (1 + n_perm)


def holm_adjust(pvalues: list[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (family-wise error control); None entries are skipped."""
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))  # monotone step-down
        out[i] = running
    return out


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None

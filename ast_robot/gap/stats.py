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
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


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
    ks_pvalue: float | None = None
    wasserstein: Interval | None = None  # earth mover's distance, metric units, bootstrap interval
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def distribution_gap(metric: str, sim: np.ndarray, real: np.ndarray, confidence: float = 0.95,
                     n_boot: int = 400, seed: int = 0) -> DistributionGap:  # fmt: skip
    """KS test and Wasserstein distance (percentile-bootstrap interval) between two samples."""
    sim, real = np.asarray(sim, dtype=float).ravel(), np.asarray(real, dtype=float).ravel()
    if sim.size < 2 or real.size < 2:
        return DistributionGap(metric, sim.size, real.size, _mean(sim), _mean(real),
                               note="fewer than 2 values on one side; no distribution test")  # fmt: skip
    ks = stats.ks_2samp(sim, real)
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):  # resample both sides independently
        boots[b] = stats.wasserstein_distance(rng.choice(sim, sim.size), rng.choice(real, real.size))
    alpha = (1.0 - confidence) / 2.0
    w = Interval(
        float(stats.wasserstein_distance(sim, real)), *np.quantile(boots, [alpha, 1 - alpha]).tolist()
    )
    return DistributionGap(metric, sim.size, real.size, _mean(sim), _mean(real), float(ks.statistic),
                           float(ks.pvalue), w)  # fmt: skip


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None

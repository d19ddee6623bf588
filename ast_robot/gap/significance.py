"""How much of the trajectory gap each parameter explains, on an absolute scale, and whether it is
more than replay noise.

Scale: everything is measured against the *nominal* model (every randomized parameter at the value
that leaves the simulator unchanged: scale 1, no payload, no delay, no offset). A parameter's share is
``(L_nominal - L_alone) / L_nominal``: the part of the nominal model's trajectory loss that moving it
alone from nominal to its fitted value removes. Shares are not renormalised: they need not sum to 1,
and what the best fit leaves is reported as the unexplained residual.

Noise floor: ``s2 = sigma^2 + replay_floor^2`` per residual element, where ``sigma^2`` is the sensor
noise estimated from the fit residual by the von Neumann ratio (half the mean squared first difference
over time: white noise doubles there, a smooth model error almost vanishes) and ``replay_floor`` is the
RMS error of replaying a noise-free nominal twin (integration and timing differences,
``GapConfig.replay_floor_rad``).

Test (a partial F-test of nested least-squares models): for parameter i,
``F_i = min(max(RSS_nominal - RSS_alone_i, RSS_drop_i - RSS_fit) / s2, W_i)`` with 1 and ``n - p`` degrees of
freedom. The first term is the larger of the reduction i produces alone (everything else nominal) and the one it
produces given the others' fit (``RSS_drop_i``: the fit with i put back at nominal); under the null "nothing
changed" each is at most a best single-parameter reduction, ``s2 * chi2(1)``. The conditional term names a
parameter that explains the gap only together with others: a heavy cube held by a slippery, weak grip (heavy-
slippery twin: the mass fit lowers the loss only with the friction/force fit beside it; alone, a heavier cube in
the nominal grip moves the arm further from the real joints), or a stronger actuator with more damping, each of
which alone makes the replay worse. ``W_i = ((fit_i - nominal_i) / std_i)^2`` is the linearised partial F
statistic of dropping i from the full fit *with the others re-fitted* (``std_i`` from ``s2 (J^T J)^-1``): it
keeps a parameter that merely trades off against the true culprit (payload against gain) from being named. An
integer parameter (latency) has no derivative and so no such guard: it takes the smaller of its alone and its
drop reduction. Taking the smaller is conservative. P-values are Bonferroni-adjusted over the fitted parameters;
a parameter is *significant* when its adjusted p-value is below ``GapConfig.significance``.

The same floor tests the whole model: the nominal model's residual (is there a trajectory gap at all?)
and the best fit's (is something left that the randomized parameters do not explain?), each as
``RSS / s2`` against a chi-square with n (n - p) degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Evidence:
    """Per-parameter shares and tests, and the two whole-model tests."""

    share: tuple[float, ...]  # fraction of the nominal loss the parameter alone removes (can be < 0)
    pvalue: tuple[float, ...]  # Bonferroni-adjusted F-test p-values
    significant: tuple[bool, ...]
    noise_rms: float  # rad: sensor noise estimated from the fit residual
    floor_rms: float  # rad: sqrt(s2), noise and replay floor together
    gap_pvalue: float  # nominal residual against the floor: small = a trajectory gap exists
    residual_pvalue: float  # fit residual against the floor: small = something is left unexplained
    unexplained: float  # (L_fit - s2)+ / L_nominal: share of the nominal loss the best fit leaves above the floor
    n_residuals: int
    conditional: tuple[float, ...] = ()  # share of the nominal loss the parameter's fit removes given the others' fit


def noise_variance(residuals: Sequence[np.ndarray]) -> float:
    """Von Neumann estimate of white measurement noise (rad^2) in residuals, each (T+1, J): first
    differences over time have variance 2 sigma^2 for white noise and almost none for a smooth model
    error. Differences beyond 4 robust standard deviations (1.4826 x their median absolute deviation)
    are clipped there, so the few large steps of a transient (a replay started from a biased reading)
    do not inflate the estimate; for normal noise the clip removes under 0.1% of the variance, keeping
    the mean-square estimate's efficiency (a plain MAD estimate is biased by a few % at these sizes).

    Row 0 is skipped (the replay starts at the measured position, so it carries no information).
    """
    diffs = [np.diff(np.asarray(r, dtype=float)[1:], axis=0).ravel() for r in residuals]  # (T-1) * J each
    d = np.concatenate(diffs) if diffs else np.empty(0)
    if d.size == 0:
        return 0.0
    centre = float(np.median(d))
    scale = 1.4826 * float(np.median(np.abs(d - centre)))
    clipped = np.clip(d - centre, -4.0 * scale, 4.0 * scale)
    return float(np.mean(clipped**2)) / 2.0


def noise_interval(sigma: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Chi-square interval (rad) of a noise standard deviation estimated from ``n`` residuals."""
    if n <= 0 or sigma <= 0:
        return 0.0, 0.0
    a = (1.0 - confidence) / 2.0
    return sigma * float(np.sqrt(n / stats.chi2.ppf(1 - a, n))), sigma * float(np.sqrt(n / stats.chi2.ppf(a, n)))


def evidence(rss: Callable[[np.ndarray], float], nominal: np.ndarray, fitted: np.ndarray, std: np.ndarray,
             integer: Sequence[bool], n: int, s2: float, sigma2: float, alpha: float) -> Evidence:  # fmt: skip
    """Shares, F-tests and whole-model tests of ``fitted`` against ``nominal`` (see the module docstring);
    ``std`` (P,) least-squares standard deviations, ``n`` residual count, ``s2`` the floor variance."""
    p = len(nominal)
    rss0, rssf = rss(nominal), rss(fitted)
    shares, conditional, pvals = [], [], []
    for i in range(p):
        alone, drop = nominal.copy(), fitted.copy()
        alone[i], drop[i] = fitted[i], nominal[i]
        rss_alone, rss_drop = rss(alone), rss(drop)
        shares.append((rss0 - rss_alone) / rss0 if rss0 > 0 else 0.0)
        conditional.append((rss_drop - rssf) / rss0 if rss0 > 0 else 0.0)
        if integer[i]:  # no derivative, so no refitted guard: alone and dropped must both say so
            f = min(rss0 - rss_alone, rss_drop - rssf) / s2
        else:  # alone, or given the others' fit; and still when the others are refitted (linearised)
            second = ((fitted[i] - nominal[i]) / std[i]) ** 2 if std[i] > 0 else np.inf
            f = min(max(rss0 - rss_alone, rss_drop - rssf) / s2, second)
        pvals.append(min(1.0, float(stats.f.sf(max(0.0, f), 1, max(1, n - p))) * p))
    return Evidence(tuple(shares), tuple(pvals), tuple(pv < alpha for pv in pvals), float(np.sqrt(sigma2)),
                    float(np.sqrt(s2)), float(stats.chi2.sf(rss0 / s2, n)),
                    float(stats.chi2.sf(rssf / s2, max(1, n - p))),
                    max(0.0, rssf / n - s2) / (rss0 / n) if rss0 > 0 else 0.0, n, tuple(conditional))  # fmt: skip


def covariance(residuals: Callable[[np.ndarray], np.ndarray], values: np.ndarray, steps: np.ndarray,
               s2: float) -> np.ndarray:  # fmt: skip
    """Least-squares covariance ``s2 (J^T J)^-1`` (P, P) of ``values`` from forward-difference Jacobians
    of the stacked raw residual vector; ``steps`` (P,) are the difference steps (0: held, zero variance)."""
    base = residuals(values)
    cols = []
    free = np.flatnonzero(steps > 0)
    for i in free:
        moved = values.copy()
        moved[i] += steps[i]
        cols.append((residuals(moved) - base) / steps[i])
    cov = np.zeros((len(values), len(values)))
    if cols:
        jac = np.stack(cols, axis=1)  # (n, F)
        info = jac.T @ jac  # (F, F) Fisher information / s2
        w, vec = np.linalg.eigh(info)
        null = w <= 1e-10 * max(float(w.max()), 1e-300)  # directions the data do not constrain
        sub = s2 * np.linalg.pinv(info)
        lost = (vec[:, null] ** 2).sum(axis=1) > 0.01  # parameters with weight in such a direction
        sub[lost, lost] = np.inf
        cov[np.ix_(free, free)] = sub
    return cov

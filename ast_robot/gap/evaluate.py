"""A fit judged on the nominal model's absolute scale: losses, intervals, shares, F-tests against the
noise floor (:mod:`ast_robot.gap.significance`) and the minimum share a named parameter must remove."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ast_robot.config.gap import GapConfig
from ast_robot.gap.residuals import Replays
from ast_robot.gap.result import SysIdResult
from ast_robot.gap.significance import covariance, evidence, noise_variance
from ast_robot.gap.space import NotIdentifiable, is_integer


def evaluate(ev: Replays, fitted: np.ndarray, history: Sequence[float], cfg: GapConfig,
              unobservable: tuple[str, ...]) -> SysIdResult:  # fmt: skip
    """The result of ``fitted`` in ``ev``'s box: the nominal and fitted losses, least-squares deviations, each
    parameter's share and F-test against the noise floor, the ranking (significant first; among them a fit
    pinned at its box's end after the estimates: it is a bound, possibly a stand-in for another cause)."""
    space = ev.space
    nominal = np.asarray(space.nominal)
    l0, lf = ev.loss(nominal), ev.loss(fitted)
    if not (np.all(np.isfinite(fitted)) and np.isfinite(lf)):
        raise NotIdentifiable(f"the fit gave non-finite values ({space.as_dict(fitted)}, loss {lf}): nothing to "
                              f"retune from")  # fmt: skip
    res_fit = ev.residuals(fitted)
    sigma2 = noise_variance(res_fit)
    s2 = sigma2 + cfg.replay_floor_rad**2  # the noise floor per residual (rad^2)
    integer = [is_integer(n) for n in space.names]
    steps = np.array([0.0 if whole else 1e-3 * (hi - lo)
                      for whole, lo, hi in zip(integer, space.search_low, space.search_high)])  # fmt: skip
    n = int(sum(r[1:].size for r in res_fit))  # row 0 is the measured start: no information
    # A fit that leaves more than the floor is a model missing something: its parameters are no surer than that
    # residual says (the usual RSS / (n - p) variance). With the floor alone, the heavy-slippery twin's round-1
    # fit (1.5% of the loss unexplained, friction standing in for mass) printed friction's interval as 0.3071-0.3071.
    rss_fit = float(sum(np.sum(r[1:] ** 2) for r in res_fit))
    s2_params = max(s2, rss_fit / max(1, n - len(fitted)))
    std = np.sqrt(np.diag(covariance(ev.stacked, fitted, steps, s2_params)))
    evid = evidence(ev.rss, nominal, fitted, std, integer, n, s2, sigma2, cfg.significance)
    result = SysIdResult(space.names, tuple(fitted.tolist()), tuple(std.tolist()), space.nominal, space.prior_low,
                         space.prior_high, l0, lf, tuple(evid.share), space.names, tuple(history), len(ev.records),
                         unobservable, evid.pvalue, evid.significant, space.search_low, space.search_high,
                         evid.noise_rms, evid.floor_rms, evid.gap_pvalue, evid.residual_pvalue, evid.unexplained,
                         cfg.max_unexplained_share, cfg.significance, evid.n_residuals)  # fmt: skip
    at_limit = tuple(bool(e) and space.at_limit(i, e) for i, e in enumerate(map(result.search_edge, range(len(fitted)))))
    return dataclasses.replace(result, at_limit=at_limit, conditional=evid.conditional).reranked()


def mark_min_share(result: SysIdResult, min_share: float) -> SysIdResult:
    """``result`` with parameters that remove less than ``min_share`` of the nominal loss above the noise floor,
    alone or given the others' fit (:meth:`SysIdResult.explains`), marked not significant (re-ranked); unchanged
    for ``min_share`` 0.

    With noise-free joints (the twin) the F-test passes tiny compensations (x3 cube mass: friction 1.03 beside
    it, 1.4% of the loss alone, p < 1e-6), which a retune must not move (and a widening must not chase)."""
    if min_share <= 0:
        return result
    excess = result.loss_above_floor()
    shares = [result.explains(i) * result.loss_nominal / excess if excess > 0 else 0.0 for i in range(len(result.names))]
    significant = tuple(bool(sig and sh >= min_share) for sig, sh in zip(result.significant, shares))
    return dataclasses.replace(result, significant=significant).reranked()

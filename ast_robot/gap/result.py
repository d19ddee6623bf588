"""The result of a system-identification fit: values, intervals, shares, tests and the ranking that the
verdict, the retune and the report read."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SysIdResult:
    """The fitted parameters with least-squares standard deviations, each parameter's share of the
    nominal model's loss and its test against the replay noise floor (:mod:`ast_robot.gap.significance`)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]  # the fit
    std: tuple[float, ...]  # least-squares standard deviation (inf: not identifiable from these data)
    nominal: tuple[float, ...]  # the reference: each parameter's nominal-model value
    prior_low: tuple[float, ...]
    prior_high: tuple[float, ...]
    loss_nominal: float  # rad^2 at the nominal parameters
    loss_fit: float  # rad^2 at the fit
    attribution: tuple[float, ...]  # share of the nominal loss each parameter alone removes (absolute scale)
    ranking: tuple[str, ...]  # names: significant ones first, then by share
    history: tuple[float, ...]  # best loss after each CEM iteration
    n_episodes: int
    unobservable: tuple[str, ...] = ()  # screened out: they barely change the simulated trajectories
    pvalue: tuple[float, ...] = ()  # Bonferroni-adjusted partial F-test p-value per parameter
    significant: tuple[bool, ...] = ()
    search_low: tuple[float, ...] = ()  # the physical/data-sheet box the fit searched (interval bounds)
    search_high: tuple[float, ...] = ()
    noise_rms: float = 0.0  # rad: sensor noise estimated from the fit residual
    floor_rms: float = 0.0  # rad: noise and replay floor together
    gap_pvalue: float = 1.0  # the nominal model's residual against the floor
    residual_pvalue: float = 1.0  # the best fit's residual against the floor
    unexplained: float = 0.0  # share of the nominal loss the best fit leaves above the floor
    max_unexplained: float = 0.05  # GapConfig.max_unexplained_share the verdict used
    alpha: float = 0.05  # GapConfig.significance
    n_residuals: int = 0
    seconds: float = 0.0  # wall time of the fit
    widened: tuple[str, ...] = ()  # parameters whose box was widened beyond a pinned end and refitted
    widen_seconds: float = 0.0  # wall time of those refits (part of ``seconds``)
    at_limit: tuple[bool, ...] = ()  # per parameter: pinned at an end that is a physical limit (no wider box)
    left_out: tuple[str, ...] = ()  # why each real episode not replayed was left out of the fit (e.g. a robot stop)
    # share of the nominal loss each parameter's fit removes given the others' fit (the fit with it put back at
    # nominal, minus the fit): large where the alone share is not for a cause that acts only jointly with others
    conditional: tuple[float, ...] = ()
    # significant in the full fit, dropped as stand-ins (the others, refitted without them, came within the min share)
    eliminated: tuple[str, ...] = ()
    full_fit: tuple[float, ...] = ()  # the full fit's values before the elimination (per name; () when none)
    full_loss: float = 0.0  # rad^2: the full fit's loss
    # s: a delay between the whole control steps (reach: gap.latency.sub_step_named) that alone replays the arm as
    # well as the named fit (the named parameters are then in ``eliminated``, none named), or beside which the named
    # parameters were refitted (named at those values; a whole-step latency in ``eliminated``); 0: none
    sub_step_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SysIdResult:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def estimate(self) -> dict[str, float]:
        return dict(zip(self.names, self.mean))

    def pinned(self, name: str) -> bool:
        """Whether ``name``'s fit sits at an end of the (final) searched box: a bound, not an estimate."""
        return bool(self.search_edge(self.names.index(name)))

    def reranked(self) -> SysIdResult:
        """This result ranked: significant parameters first; among those, estimates before pinned fits (a pinned
        fit is a bound and may stand in for another cause); then by share of the nominal loss."""
        sig = self.significant or (False,) * len(self.names)
        order = sorted(range(len(self.names)),
                       key=lambda i: (not sig[i], bool(self.search_edge(i)), -self.attribution[i]))  # fmt: skip
        return dataclasses.replace(self, ranking=tuple(self.names[i] for i in order))

    def explains(self, i: int) -> float:
        """Share of the nominal loss parameter ``i`` explains: alone, or given the others' fit if that is more."""
        return max(self.attribution[i], self.conditional[i] if self.conditional else -np.inf)

    def jointly(self, i: int) -> bool:
        """Parameter ``i`` explains the gap mostly given the others' fit, not alone (a joint cause)."""
        return bool(self.conditional) and self.conditional[i] > 2.0 * max(self.attribution[i], 0.0)

    def loss_above_floor(self) -> float:
        """rad^2: the part of the nominal loss above the noise floor (what a parameter can explain)."""
        return self.loss_nominal - self.floor_rms**2

    def trajectory_gap(self) -> bool:
        """Whether the nominal model's replay differs from the real trajectories beyond the noise floor."""
        return self.gap_pvalue < self.alpha

    def gap_unexplained(self) -> bool:
        """The best fit still leaves a significant residual larger than ``max_unexplained`` of the nominal
        loss: the randomized parameters do not explain the gap, so no culprit is named from them."""
        return self.residual_pvalue < self.alpha and self.unexplained > self.max_unexplained

    def culprits(self) -> tuple[str, ...]:
        """Parameters with a significant reduction, by share; none when the gap is unexplained."""
        if self.gap_unexplained() or not self.significant:
            return ()
        return tuple(n for n in self.ranking if self.significant[self.names.index(n)])

    def top_parameter(self) -> str | None:
        """The most explanatory significant parameter, or None (nothing significant, or unexplained)."""
        culprits = self.culprits()
        return culprits[0] if culprits else None

    def interval(self, i: int, z: float = 1.96) -> tuple[float, float]:
        """``mean +- z std`` of parameter ``i``, kept inside the physical search box."""
        lo, hi = self.mean[i] - z * self.std[i], self.mean[i] + z * self.std[i]
        if self.search_low:
            lo, hi = max(lo, self.search_low[i]), min(hi, self.search_high[i])
        return lo, hi

    def search_edge(self, i: int) -> str:
        """'floor' / 'ceiling' when fit ``i`` sits at that end of the searched box (within 1% of the end's value;
        of the box's width for an end at 0), else ''.

        A fit pinned there is a bound, not an estimate: the loss still falls towards the edge, so the true value
        may lie beyond it (measured: a x0.02 grasp force, outside the x0.2-x5 box, was fitted at the floor and
        friction, also at its floor, was ranked first)."""
        if not self.search_low:
            return ""
        for end, which in ((self.search_low[i], "floor"), (self.search_high[i], "ceiling")):
            tolerance = 0.01 * abs(end) if end != 0 else 0.001 * (self.search_high[i] - self.search_low[i])
            if abs(self.mean[i] - end) <= tolerance:
                return which
        return ""

    def improvement(self) -> float:
        """Fraction of the nominal trajectory MSE the fit removed (0 when there was nothing to remove)."""
        return 1.0 - self.loss_fit / self.loss_nominal if self.loss_nominal > 0 else 0.0

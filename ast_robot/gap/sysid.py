"""System identification: replay the real commanded actions in simulation and fit the randomized
parameters to the real joint trajectories with the cross-entropy method (in the spirit of SimOpt), then
check integer parameters one step either way and polish the rest by bounded least squares.

Every result is referenced to the *nominal* model (each parameter at the value that leaves the
simulator unchanged), not to the training ranges: a parameter's share is the part of the nominal
model's trajectory loss it alone removes, and it is named only when that reduction passes a partial
F-test against the replay noise floor (:mod:`ast_robot.gap.significance` documents the test). What the
best fit leaves above the floor is the unexplained residual. Per-joint encoder offsets enter the fit
as nuisance parameters profiled out in closed form during the search (their best value is the mean
residual of each joint) and polished with the rest.

The simulator is any callable ``simulate(params, record) -> (T+1, J) joint positions`` that replays
``record.actions`` (and ``record.joint_targets``) from ``record.joint_positions[0]`` under physical
parameters ``params``; :mod:`ast_robot.gap.replay` builds the MuJoCo one.

The fit is split by job, imports one way: :mod:`~ast_robot.gap.space` (the parameters and boxes) <-
:mod:`~ast_robot.gap.result` (what a fit reports) <- :mod:`~ast_robot.gap.residuals` (the replay residuals)
<- :mod:`~ast_robot.gap.search` (the searches in one box) <- :mod:`~ast_robot.gap.evaluate` (shares and
tests) <- :mod:`~ast_robot.gap.widening` (pinned boxes widened) and :mod:`~ast_robot.gap.standins`
(stand-ins eliminated) <- this module (:func:`fit`, and the names other modules import from here).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from ast_robot.config.gap import GapConfig
from ast_robot.gap.evaluate import evaluate, mark_min_share
from ast_robot.gap.residuals import Replays, Simulator, observable, trajectory_loss
from ast_robot.gap.result import SysIdResult
from ast_robot.gap.search import cem, polish, refine_integers, search_gauss_newton, search_scan
from ast_robot.gap.space import (
    OFFSET_SEARCH_RAD,
    NotIdentifiable,
    ParamSpace,
    is_offset,
    is_scale,
    lower_floor,
    physical_floor,
    prior_bounds,
    reference_value,
    snap_integers,
    space_from_randomization,
)
from ast_robot.gap.standins import without_unneeded
from ast_robot.gap.widening import WIDEN_SCAN_POINTS, widen_and_refit
from ast_robot.records import EpisodeRecord

__all__ = ["OFFSET_SEARCH_RAD", "NotIdentifiable", "ParamSpace", "Replays", "Simulator", "SysIdResult", "fit",
           "is_offset", "is_scale", "lower_floor", "mark_min_share", "observable", "physical_floor", "prior_bounds",
           "reference_value", "space_from_randomization", "trajectory_loss", "without_unneeded"]  # fmt: skip


def fit(simulate: Simulator, records: Sequence[EpisodeRecord], space: ParamSpace, cfg: GapConfig | None = None,
        seed: int = 0, progress: Callable[[int, float], None] | None = None, scan_points: int = 0,
        min_share: float = 0.0) -> SysIdResult:  # fmt: skip
    """Fit ``space``'s parameters to the real trajectories of ``records`` by CEM and least squares, then
    test each against the noise floor on the nominal model's absolute scale.

    ``scan_points`` > 0: start from a scan of each parameter alone over that many points of its search box
    (log-spaced for scale factors), then Gauss-Newton from the best one. For contact-rich replays
    (pick-and-place) whose loss is rugged in the parameters: Gauss-Newton from nominal stalls there.

    A significant parameter of a real gap fitted at an end of its box that is not a physical limit is a bound,
    not an estimate: the box is widened beyond that end and refitted (:func:`widen_and_refit`), at most
    ``cfg.search_widenings`` times. ``min_share``: see :func:`mark_min_share`."""
    start = time.perf_counter()
    cfg = cfg or GapConfig()
    records = list(records)[: cfg.max_replay_episodes]
    if not records:
        raise ValueError("system identification needs at least one real episode with joint trajectories")
    keep = observable(simulate, records, space, cfg.screen_tolerance)
    fixed = {n: v for n, v in zip(space.names, space.nominal) if n not in keep}  # held at nominal
    full, space = space, space.subset(keep)
    ev = Replays(simulate, records, space, fixed)
    if scan_points > 0:
        fitted, history = search_scan(ev, space, cfg, scan_points, progress)
    elif cfg.fit_method == "gauss_newton":
        fitted, history = search_gauss_newton(ev, space, cfg, progress)
    else:
        best_u, _, _, history = cem(ev.profiled_loss, space, cfg, np.random.default_rng(seed), progress)
        fitted = ev.profile(snap_integers(space, space.to_values(best_u)))
        fitted = ev.profile(refine_integers(ev.profiled_loss, space, fitted))
        fitted = polish(ev.scaled, ev.loss, space, fitted, cfg.polish_evaluations)
    unobservable = tuple(n for n in full.names if n not in keep)
    result = mark_min_share(evaluate(ev, fitted, history, cfg, unobservable), min_share)
    result = widen_and_refit(ev, result, cfg, scan_points or WIDEN_SCAN_POINTS, unobservable, min_share, progress)
    reduced = without_unneeded(ev, result, min_share)
    if reduced is not None:  # the model without the stand-ins, refitted and tested again
        dropped = tuple(n for i, n in enumerate(result.names) if result.significant[i]
                        and reduced[i] == ev.space.nominal[i] != result.mean[i])  # fmt: skip
        fields = {"widened": result.widened, "widen_seconds": result.widen_seconds, "eliminated": dropped,
                  "full_fit": result.mean, "full_loss": result.loss_fit}  # fmt: skip
        result = dataclasses.replace(mark_min_share(evaluate(ev, reduced, result.history, cfg, unobservable),
                                                    min_share), **fields)  # fmt: skip
    return dataclasses.replace(result, seconds=time.perf_counter() - start)

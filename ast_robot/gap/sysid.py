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
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ast_robot.config.gap import GapConfig
from ast_robot.config.randomization import DistributionConfig, RandomizationConfig
from ast_robot.gap.significance import covariance, evidence, noise_variance
from ast_robot.records import EpisodeRecord

Simulator = Callable[[Mapping[str, float], EpisodeRecord], np.ndarray]


class NotIdentifiable(ValueError):
    """No parameter changes the simulated trajectories measurably: nothing can be fitted."""


@dataclass(frozen=True)
class ParamSpace:
    """The parameters to fit: nominal values, prior (randomization) ranges and the wider search box."""

    names: tuple[str, ...]
    nominal: tuple[float, ...]
    prior_low: tuple[float, ...]
    prior_high: tuple[float, ...]
    search_low: tuple[float, ...]
    search_high: tuple[float, ...]
    log: tuple[bool, ...] = ()  # search in log space (scale factors: relative precision); () = none
    # physical limits the box may be widened to (a scale's floor near 0, a data-sheet maximum); () = unbounded
    hard_low: tuple[float, ...] = ()
    hard_high: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.names)
        if n == 0:
            raise ValueError("system identification needs at least one randomized parameter; none given")
        if not self.log:
            object.__setattr__(self, "log", (False,) * n)
        if not self.hard_low:
            object.__setattr__(self, "hard_low", (-np.inf,) * n)
        if not self.hard_high:
            object.__setattr__(self, "hard_high", (np.inf,) * n)
        for name in ("nominal", "prior_low", "prior_high", "search_low", "search_high", "log", "hard_low", "hard_high"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"ParamSpace.{name} must have {n} entries (one per name), got {getattr(self, name)}"
                )
        if any(h <= lo for lo, h in zip(self.search_low, self.search_high)):
            raise ValueError(f"search box must have high > low, got {self.search_low} .. {self.search_high}")
        if any(lg and lo <= 0 for lg, lo in zip(self.log, self.search_low)):
            raise ValueError(f"log-space parameters need search_low > 0, got {self.search_low}")

    def _bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lg = np.asarray(self.log, dtype=bool)
        lo, hi = np.asarray(self.search_low, dtype=float), np.asarray(self.search_high, dtype=float)
        return (
            np.where(lg, np.log(np.where(lg, lo, 1.0)), lo),
            np.where(lg, np.log(np.where(lg, hi, 1.0)), hi),
            lg,
        )

    def unit_to_values(self, u: np.ndarray) -> np.ndarray:
        """Unit-cube coordinates (..., P) -> parameter values (..., P), without clipping."""
        lo, hi, lg = self._bounds()
        x = lo + np.asarray(u, dtype=float) * (hi - lo)
        return np.where(lg, np.exp(x), x)

    def to_values(self, u: np.ndarray) -> np.ndarray:
        """Unit-cube coordinates (..., P), clipped to the search box -> parameter values (..., P)."""
        return self.unit_to_values(np.clip(u, 0.0, 1.0))

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        lo, hi, lg = self._bounds()
        v = np.asarray(values, dtype=float)
        x = np.where(lg, np.log(np.where(lg, np.maximum(v, 1e-300), 1.0)), v)
        return (x - lo) / (hi - lo)

    def subset(self, names: Sequence[str]) -> ParamSpace:
        """The same space restricted to ``names`` (kept in this space's order)."""
        idx = [i for i, n in enumerate(self.names) if n in set(names)]
        if not idx:
            raise NotIdentifiable(f"none of the parameters {list(self.names)} changes the simulated joint trajectories "
                             f"measurably; nothing can be fitted from these episodes")  # fmt: skip
        pick = lambda values: tuple(values[i] for i in idx)  # noqa: E731
        return ParamSpace(pick(self.names), pick(self.nominal), pick(self.prior_low), pick(self.prior_high),
                          pick(self.search_low), pick(self.search_high), pick(self.log), pick(self.hard_low),
                          pick(self.hard_high))  # fmt: skip

    def at_limit(self, i: int, edge: str) -> bool:
        """Whether ``edge`` ('floor' / 'ceiling') of parameter ``i``'s box is its physical limit (no wider box)."""
        end, hard = (self.search_low[i], self.hard_low[i]) if edge == "floor" else (self.search_high[i], self.hard_high[i])
        return bool(np.isfinite(hard) and abs(end - hard) <= 1e-9 * max(abs(hard), 1.0))  # inf - 5 <= inf: no limit

    def widened(self, edges: Mapping[int, str], factor: float) -> ParamSpace:
        """The box with each ``edges[i]`` end moved outwards, never past the physical limit: a scale factor
        searched in log space by ``factor`` again (x0.2 -> x0.04 for 5), any other parameter by the box's width."""
        low, high = list(self.search_low), list(self.search_high)
        for i, edge in edges.items():
            width = high[i] - low[i]
            if edge == "floor":
                low[i] = max(self.hard_low[i], low[i] / factor if self.log[i] else low[i] - width)
            else:
                high[i] = min(self.hard_high[i], high[i] * factor if self.log[i] else high[i] + width)
        return dataclasses.replace(self, search_low=tuple(low), search_high=tuple(high))

    def as_dict(self, values: np.ndarray) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, values)}


def prior_bounds(dist: DistributionConfig) -> tuple[float, float, float]:
    """(low, high, nominal) of one randomization distribution; normal uses mean +- 2 std."""
    if dist.dist == "uniform":
        return dist.low, dist.high, 0.5 * (dist.low + dist.high)
    if dist.dist == "loguniform":
        return dist.low, dist.high, float(np.sqrt(dist.low * dist.high))
    if dist.dist == "normal":
        return dist.mean - 2 * dist.std, dist.mean + 2 * dist.std, dist.mean
    return dist.mean, dist.mean, dist.mean


def lower_floor(name: str, dist: DistributionConfig, centre: float) -> float | None:
    """Smallest value a fit or a retuned range may take: positive for scale factors (a zero scale gives
    massless links or dead actuators), the parameter's minimum for absolute ones, None if unbounded.

    The mode comes from the simulator's parameter table when ``name`` is in it, else from the config.
    """
    if is_scale(name, dist) or dist.dist == "loguniform":
        return max(1e-3, 0.05 * abs(centre))
    known = _simulator_params().get(name)
    if known is not None:
        return None if not np.isfinite(known.minimum) else float(known.minimum)
    return 0.0 if prior_bounds(dist)[0] >= 0 else None


def _simulator_params() -> dict:
    try:
        from ast_robot.envs.randomization import PARAMS
    except ImportError:  # the simulator is optional for analysis on other machines
        return {}
    return PARAMS


def _snap_integers(space: ParamSpace, values: np.ndarray) -> np.ndarray:
    """Round parameters the simulator treats as integers (latency in control steps): the fit reports
    the value that was actually simulated."""
    out = values.copy()
    for i, name in enumerate(space.names):
        if _is_integer(name):
            out[i] = float(np.round(out[i]))
    return out


def _polish(residuals: Callable[[np.ndarray], np.ndarray], loss: Callable[[np.ndarray], float], space: ParamSpace,
            values: np.ndarray, evaluations: int) -> np.ndarray:  # fmt: skip
    """Refine the continuous parameters of the CEM's best candidate by bounded least squares (the CEM
    finds the basin; Gauss-Newton steps then find its bottom precisely). Integers stay where they are."""
    free = [i for i, n in enumerate(space.names) if not _is_integer(n)]
    if not free or evaluations <= 0:
        return values
    from scipy.optimize import least_squares

    unit = np.clip(space.to_unit(values), 0.0, 1.0)

    def fun(x: np.ndarray) -> np.ndarray:
        u = unit.copy()
        u[free] = x
        return residuals(space.to_values(u))

    res = least_squares(fun, unit[free], bounds=(0.0, 1.0), diff_step=1e-3, max_nfev=evaluations)
    u = unit.copy()
    u[free] = res.x
    polished = space.to_values(u)
    return polished if loss(polished) < loss(values) else values


def _refine_integers(loss: Callable[[np.ndarray], float], space: ParamSpace, values: np.ndarray) -> np.ndarray:
    """Try each integer parameter one step either way of the fit: the CEM moves in a continuous cube,
    where a neighbouring delay may sit behind a ridge of compensating gain and damping."""
    best, best_loss = values, loss(values)
    for i, name in enumerate(space.names):
        if not _is_integer(name):
            continue
        for step in (-1.0, 1.0):
            trial = best.copy()
            trial[i] += step
            if space.search_low[i] <= trial[i] <= space.search_high[i] and (t := loss(trial)) < best_loss:
                best, best_loss = trial, t
    return best


def _is_integer(name: str) -> bool:
    known = _simulator_params().get(name)
    return bool(known is not None and known.integer)


def is_scale(name: str, dist: DistributionConfig) -> bool:
    """A multiplicative factor: from the simulator's parameter table, else from the config's mode."""
    known = _simulator_params().get(name)
    return known.mode == "scale" if known is not None else dist.mode == "scale"



OFFSET_SEARCH_RAD = 0.1  # encoder offsets are searched at least +-0.1 rad (a gross calibration error)


def reference_value(name: str, dist: DistributionConfig) -> float:
    """The value that leaves the simulator nominal (1 for a scale, 0 for an absolute parameter of the
    simulator's table); a parameter the simulator does not know keeps its prior centre."""
    known = _simulator_params().get(name)
    if known is not None or dist.mode == "scale":
        return 1.0 if is_scale(name, dist) else 0.0
    return prior_bounds(dist)[2]


def is_offset(name: str) -> bool:
    """A per-joint encoder offset (a reading bias: profiled in closed form during the search)."""
    return name.startswith("encoder_offset_")


def space_from_randomization(cfg: RandomizationConfig, expansion: float, names: Sequence[str] | None = None,
                             ceilings: Mapping[str, float] | None = None, limits: Mapping[str, float] | None = None,
                             shift: Mapping[str, float] | None = None) -> ParamSpace:  # fmt: skip
    """The search space of the randomized parameters: each prior range widened ``expansion`` times,
    reaching at least ``ceilings[name]`` (e.g. the robot's rated payload: a real tool may weigh that much
    even when training assumed a light one) and never past ``limits[name]`` (data-sheet maxima).

    ``shift[name]`` is added to the prior range before anything else: the deployment adds a delay the
    replay does not see, so the arm's own latency prior is the training range minus that delay.
    The nominal of each parameter is :func:`reference_value`; the box always contains it.
    """
    names = tuple(names) if names is not None else tuple(sorted(cfg.params))
    unknown = [n for n in names if n not in cfg.params]
    if unknown:
        raise ValueError(f"parameters {unknown} are not randomized; randomized: {sorted(cfg.params)}")
    rows = [_space_row(n, cfg.params[n], expansion, (ceilings or {}).get(n), (limits or {}).get(n),
                       (shift or {}).get(n, 0.0)) for n in names]  # fmt: skip
    cols = list(zip(*rows))
    hard_low = tuple(min(physical_floor(n, cfg.params[n]), lo) for n, lo in zip(names, cols[3]))
    hard_high = tuple(max((limits or {}).get(n, np.inf), hi) for n, hi in zip(names, cols[4]))
    return ParamSpace(names, *(tuple(float(v) for v in c) for c in cols[:5]), log=tuple(cols[5]),
                      hard_low=hard_low, hard_high=hard_high)  # fmt: skip


def physical_floor(name: str, dist: DistributionConfig) -> float:
    """The lowest value a widened search box may reach: the simulator table's minimum (a scale factor's 1e-3:
    a zero scale is a massless cube or a dead gripper), 0 for a non-negative absolute parameter the table does
    not know, else unbounded. Lower than :func:`lower_floor`, which keeps the first box and retuned ranges
    sensible; a fit may still need to go there (a x0.02 grasp force)."""
    known = _simulator_params().get(name)
    if known is not None and np.isfinite(known.minimum):
        return float(max(known.minimum, 1e-3) if known.mode == "scale" else known.minimum)
    if is_scale(name, dist) or dist.dist == "loguniform":
        return 1e-3
    return 0.0 if prior_bounds(dist)[0] >= 0 else -np.inf


def _space_row(n: str, dist: DistributionConfig, expansion: float, ceiling: float | None, limit: float | None,
               shift: float) -> tuple:  # fmt: skip
    low, high, centre = (v + shift for v in prior_bounds(dist))
    floor = lower_floor(n, dist, centre)
    if floor is not None and shift:
        low, high = max(low, floor), max(high, floor)
    nominal = reference_value(n, dist)
    half = 0.5 * expansion * max(high - low, 0.2 * max(abs(centre), 1e-3))  # constants get +-10% x expansion
    s_low, s_high = centre - half, centre + half
    log = is_scale(n, dist) and centre > 0
    if log:  # a factor `expansion` either way of the prior centre, searched in log space
        s_low, s_high = min(low, centre / expansion), max(high, centre * expansion)
    if _is_integer(n):  # a delay the prior never covered can still be found: reach `expansion` steps past it
        s_high = max(s_high, high + expansion)
    if is_offset(n):
        s_low, s_high = min(s_low, -OFFSET_SEARCH_RAD), max(s_high, OFFSET_SEARCH_RAD)
    s_low, s_high = min(s_low, nominal), max(s_high, nominal, ceiling if ceiling is not None else s_high)
    if limit is not None:
        s_high = min(s_high, limit)
    if floor is not None:
        s_low = max(s_low, floor)
    return nominal, low, high, s_low, s_high, log


def trajectory_loss(
    simulate: Simulator, params: Mapping[str, float], records: Sequence[EpisodeRecord]
) -> float:
    """Mean squared joint-position error (rad^2) between simulated replays and the measured trajectories."""
    errors = []
    for rec in records:
        sim = np.asarray(simulate(params, rec), dtype=float)
        if sim.shape != rec.joint_positions.shape:
            raise ValueError(f"simulate() returned shape {sim.shape}; expected {rec.joint_positions.shape} "
                             f"(T+1 joint positions) for episode seed {rec.seed}")  # fmt: skip
        errors.append(np.mean((sim - rec.joint_positions) ** 2))
    return float(np.mean(errors))


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


class _Replays:
    """Residuals (sim - real) of every record at a parameter vector; unfitted parameters held fixed."""

    def __init__(self, simulate: Simulator, records: Sequence[EpisodeRecord], space: ParamSpace,
                 fixed: Mapping[str, float]) -> None:  # fmt: skip
        self.simulate, self.records, self.space, self.fixed = simulate, list(records), space, dict(fixed)
        self.offsets = np.array([i for i, n in enumerate(space.names) if is_offset(n)], dtype=int)
        self.joints = np.array([int(space.names[i].rsplit("_", 1)[1]) for i in self.offsets], dtype=int)

    def residuals(self, values: np.ndarray) -> list[np.ndarray]:
        params = {**self.fixed, **self.space.as_dict(values)}
        many = getattr(self.simulate, "many", None)  # a simulator that replays several records at once
        sims = many(params, self.records) if many is not None else [self.simulate(params, r) for r in self.records]
        return [np.asarray(q, dtype=float) - r.joint_positions for q, r in zip(sims, self.records)]

    def loss(self, values: np.ndarray) -> float:
        return float(np.mean([np.mean(r**2) for r in self.residuals(values)]))

    def rss(self, values: np.ndarray) -> float:
        return float(sum(np.sum(r**2) for r in self.residuals(values)))

    def stacked(self, values: np.ndarray) -> np.ndarray:
        return np.concatenate([r.ravel() for r in self.residuals(values)])

    def scaled(self, values: np.ndarray) -> np.ndarray:
        """:meth:`stacked` over the square root of its size: its sum of squares is the mean loss (for least squares)."""
        r = self.stacked(values)
        return r / np.sqrt(r.size)

    def profile(self, values: np.ndarray) -> np.ndarray:
        """``values`` with each encoder offset at its closed-form best (the mean residual of its joint,
        with the offsets zeroed); unchanged without offsets."""
        if self.offsets.size == 0:
            return values
        out = values.copy()
        out[self.offsets] = 0.0
        res = np.concatenate([r[1:] for r in self.residuals(out)])  # (sum T, J)
        out[self.offsets] = -res[:, self.joints].mean(axis=0)
        return out

    def profiled_loss(self, values: np.ndarray) -> float:
        return self.loss(self.profile(values)) if self.offsets.size else self.loss(values)


def fit(simulate: Simulator, records: Sequence[EpisodeRecord], space: ParamSpace, cfg: GapConfig | None = None,
        seed: int = 0, progress: Callable[[int, float], None] | None = None, scan_points: int = 0,
        min_share: float = 0.0) -> SysIdResult:  # fmt: skip
    """Fit ``space``'s parameters to the real trajectories of ``records`` by CEM and least squares, then
    test each against the noise floor on the nominal model's absolute scale.

    ``scan_points`` > 0: start from a scan of each parameter alone over that many points of its search box
    (log-spaced for scale factors), then Gauss-Newton from the best one. For contact-rich replays
    (pick-and-place) whose loss is rugged in the parameters: Gauss-Newton from nominal stalls there.

    A significant parameter of a real gap fitted at an end of its box that is not a physical limit is a bound,
    not an estimate: the box is widened beyond that end and refitted (:func:`_widen_and_refit`), at most
    ``cfg.search_widenings`` times. ``min_share``: see :func:`mark_min_share`."""
    start = time.perf_counter()
    cfg = cfg or GapConfig()
    records = list(records)[: cfg.max_replay_episodes]
    if not records:
        raise ValueError("system identification needs at least one real episode with joint trajectories")
    keep = observable(simulate, records, space, cfg.screen_tolerance)
    fixed = {n: v for n, v in zip(space.names, space.nominal) if n not in keep}  # held at nominal
    full, space = space, space.subset(keep)
    ev = _Replays(simulate, records, space, fixed)
    if scan_points > 0:
        fitted, history = _search_scan(ev, space, cfg, scan_points, progress)
    elif cfg.fit_method == "gauss_newton":
        fitted, history = _search_gauss_newton(ev, space, cfg, progress)
    else:
        best_u, _, _, history = _cem(ev.profiled_loss, space, cfg, np.random.default_rng(seed), progress)
        fitted = ev.profile(_snap_integers(space, space.to_values(best_u)))
        fitted = ev.profile(_refine_integers(ev.profiled_loss, space, fitted))
        fitted = _polish(ev.scaled, ev.loss, space, fitted, cfg.polish_evaluations)
    unobservable = tuple(n for n in full.names if n not in keep)
    result = mark_min_share(_evaluate(ev, fitted, history, cfg, unobservable), min_share)
    result = _widen_and_refit(ev, result, cfg, scan_points or WIDEN_SCAN_POINTS, unobservable, min_share, progress)
    reduced = without_unneeded(ev, result, min_share)
    if reduced is not None:  # the model without the stand-ins, refitted and tested again
        fields = {"widened": result.widened, "widen_seconds": result.widen_seconds}
        result = dataclasses.replace(mark_min_share(_evaluate(ev, reduced, result.history, cfg, unobservable),
                                                    min_share), **fields)  # fmt: skip
    return dataclasses.replace(result, seconds=time.perf_counter() - start)


# Gauss-Newton evaluations of each "without it" refit of :func:`without_unneeded` (from the full fit).
UNNEEDED_EVALUATIONS = 20


def without_unneeded(ev: _Replays, result: SysIdResult, min_share: float) -> np.ndarray | None:
    """The fit refitted with its stand-ins held at nominal, or None when every significant parameter is needed.

    A significant parameter is a stand-in when the other parameters, refitted without it (it and the stand-ins
    found so far held at nominal), come within ``min_share`` of the nominal loss above the floor of the full fit.
    Tried weakest first (by share alone), so of two parameters that can stand in for each other the stronger
    stays. The F-test and the share each look at one parameter alone from nominal; overlapping causes pass both.
    Measured (FR3 through ROS, cube mass x3): mass 2.90 removed 98% alone, and gripper_force 0.59 (52% alone) and
    friction 0.96 (54% alone) rode along, were named and retuned, though the twin's grip and friction never
    changed. Only with ``min_share`` > 0 (the pick-and-place fit) and two or more significant parameters."""
    sig = [i for i in range(len(result.names)) if result.significant[i]]
    excess = result.loss_above_floor()
    if min_share <= 0 or len(sig) < 2 or excess <= 0:
        return None
    fitted, nominal = np.asarray(result.mean, dtype=float), np.asarray(ev.space.nominal, dtype=float)
    dropped: list[int] = []
    for i in sorted(sig, key=lambda k: result.attribution[k]):
        held = [*dropped, i]
        if len(held) == len(result.names):
            break
        loss = _refit_holding(ev, fitted, nominal, held)[1]
        if (loss - result.loss_fit) / excess < min_share:
            dropped.append(i)
    return _refit_holding(ev, fitted, nominal, dropped)[0] if dropped else None


def _refit_holding(ev: _Replays, fitted: np.ndarray, nominal: np.ndarray, held: list[int]) -> tuple[np.ndarray, float]:
    """(values, loss): ``fitted`` with ``held`` at nominal and the rest polished from where they were."""
    free = [k for k in range(len(fitted)) if k not in held]
    start = fitted.copy()
    start[held] = nominal[held]

    def full(values: np.ndarray) -> np.ndarray:
        out = start.copy()
        out[free] = values
        return out

    residuals = lambda v: ev.scaled(full(v))  # noqa: E731
    loss = lambda v: ev.loss(full(v))  # noqa: E731
    best = full(_polish(residuals, loss, ev.space.subset([ev.space.names[k] for k in free]), start[free],
                        UNNEEDED_EVALUATIONS))  # fmt: skip
    return best, ev.loss(best)


# A refit scans each widened parameter over the fit's own scan points (this many for a fit without a scan) of its
# new box, from the fit so far and from nominal, then one coordinate pass of 9 finer points, then Gauss-Newton.
# Cheaper refits lost the basin (x0.02 grasp force, 3 ROS episodes: 9 points and 20 Gauss-Newton iterations
# fitted 0.0179 / 0.0219 instead of 0.0201 and saved no time measurable at load 5-6).
WIDEN_SCAN_POINTS = 9


def _widen_and_refit(ev: _Replays, result: SysIdResult, cfg: GapConfig, points: int, unobservable: tuple[str, ...],
                     min_share: float, progress: Callable[[int, float], None] | None) -> SysIdResult:  # fmt: skip
    """Widen the box beyond the ends :func:`_ends_to_widen` finds (never past a physical limit) and refit from
    the fit so far and from nominal: the widened parameters scanned over their new box, one coordinate pass
    over all, Gauss-Newton; at most ``cfg.search_widenings`` times. Never on a null twin (no trajectory gap).

    Measured (UR5e through ROS, trained policy, 3 episodes): a x0.02 grasp force, outside the x0.2-x5 box, was
    fitted as friction x0.57 inside the box (97% of the loss, named); force x0.04 alone leaves 40% less loss
    than that fit. Before: a x12 cube mass stayed at the ceiling x5 and friction, pinned at x0.2, stood in."""
    widened: list[str] = []
    started, probe = time.perf_counter(), True
    for _ in range(cfg.search_widenings):
        edges = _ends_to_widen(ev, result, cfg.search_expansion, probe)
        if not edges:
            break
        ev.space = ev.space.widened(edges, cfg.search_expansion)
        widened += [result.names[i] for i in edges if result.names[i] not in widened]
        fitted, more = _search_scan(ev, ev.space, cfg, points, progress, refine=1, start=np.asarray(result.mean),
                                    only=tuple(edges))  # fmt: skip
        before, result = result.loss_fit, mark_min_share(_evaluate(ev, fitted, (*result.history, *more), cfg, unobservable), min_share)
        probe = result.loss_fit < (1.0 - MIN_REFIT_GAIN) * before  # a refit that gained little: only pinned ends next
    if not widened:
        return result
    return dataclasses.replace(result, widened=tuple(widened), widen_seconds=time.perf_counter() - started)


def _ends_to_widen(ev: _Replays, result: SysIdResult, factor: float, probe: bool = True) -> dict[int, str]:
    """{parameter index: 'floor' / 'ceiling'} to widen, none without a trajectory gap: every end a significant
    parameter is pinned at, and, with ``probe`` when the best fit still leaves a significant residual, every end
    beyond which the parameter alone (the rest nominal) still lowers the loss (:data:`FALLING`): a stand-in inside
    the box is not pinned, but the parameter that would explain the gap points past the end. (Only the steepest
    such end was not enough: x0.02 grasp force, scripted policy, friction x0.32 and force x0.06 were named.)"""
    if not result.trajectory_gap():
        return {}
    space, out = ev.space, {}
    for i in range(len(result.names)):
        edge = result.search_edge(i)
        if edge and result.significant[i] and not space.at_limit(i, edge):
            out[i] = edge
    if not probe or result.residual_pvalue >= result.alpha:
        return out
    nominal = np.asarray(space.nominal, dtype=float)
    for i, edge in ((i, e) for i in range(len(result.names)) if i not in out for e in ("floor", "ceiling")):
        if i in out or space.at_limit(i, edge):
            continue
        wide = space.widened({i: edge}, factor)
        at_edge, beyond = nominal.copy(), nominal.copy()
        at_edge[i] = space.search_low[i] if edge == "floor" else space.search_high[i]
        beyond[i] = wide.search_low[i] if edge == "floor" else wide.search_high[i]
        if ev.loss(_as_simulated(space, beyond)) < FALLING * ev.loss(_as_simulated(space, at_edge)):
            out[i] = edge
    return out


# A parameter alone "still lowers the loss" past an end when the widened end's loss is below this share of the
# end's (x0.02 grasp force, scripted policy: 1.6e-8 at x0.2, 2.2e-9 at x0.04; the fit, friction x0.3 inside the
# box, left 1.9e-9, so "beats the fit" missed it).
FALLING = 0.9
# A refit that lowered the fit's loss by less than this share probes no further (only pinned ends are widened
# again): on the heavy-slippery twin (a grip friction outside the randomized set) widening every falling end of
# all three parameters twice cost 473 s of a 660 s fit (8 episodes, load 6) and still left 17% unexplained.
MIN_REFIT_GAIN = 0.1


def _evaluate(ev: _Replays, fitted: np.ndarray, history: Sequence[float], cfg: GapConfig,
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
    integer = [_is_integer(n) for n in space.names]
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
    return dataclasses.replace(result, at_limit=at_limit).reranked()


def mark_min_share(result: SysIdResult, min_share: float) -> SysIdResult:
    """``result`` with parameters that alone remove less than ``min_share`` of the nominal loss above the
    noise floor marked not significant (re-ranked); unchanged for ``min_share`` 0.

    With noise-free joints (the twin) the F-test passes tiny compensations (x3 cube mass: friction 1.03 beside
    it, 1.4% of the loss alone, p < 1e-6), which a retune must not move (and a widening must not chase)."""
    if min_share <= 0:
        return result
    excess = result.loss_above_floor()
    shares = [a * result.loss_nominal / excess if excess > 0 else 0.0 for a in result.attribution]
    significant = tuple(bool(sig and sh >= min_share) for sig, sh in zip(result.significant, shares))
    return dataclasses.replace(result, significant=significant).reranked()


def _integer_grid(space: ParamSpace) -> list[np.ndarray]:
    """Every combination of the integer parameters' whole values inside the box (at most 64), as full
    vectors with the rest at nominal; only the nominal when the grid would be larger."""
    nominal = np.asarray(space.nominal)
    ints = [i for i, n in enumerate(space.names) if _is_integer(n)]
    grids = [range(int(np.ceil(space.search_low[i])), int(np.floor(space.search_high[i])) + 1) for i in ints]
    if not ints or np.prod([len(g) for g in grids]) > 64:
        return [nominal]
    out = []
    for combo in itertools.product(*grids):
        v = nominal.copy()
        v[ints] = combo
        out.append(v)
    return out


def _search_gauss_newton(ev: _Replays, space: ParamSpace, cfg: GapConfig,
                         progress: Callable[[int, float], None] | None) -> tuple[np.ndarray, list[float]]:  # fmt: skip
    """Integer parameters (latency) by a grid scored at nominal physics, the best
    ``cfg.integer_candidates`` of them each followed by box-bounded Gauss-Newton (``mujoco.minimize``,
    the optimizer of ``mujoco.sysid``) on the continuous parameters from the nominal values."""
    scored = sorted((ev.profiled_loss(v), k, v) for k, v in enumerate(_integer_grid(space)))
    # a step whose nominal-physics loss is many times the best one's is not worth a fit of its own
    grid = [v for loss, _, v in scored[: cfg.integer_candidates] if loss <= 4.0 * scored[0][0]]
    best, best_loss, history = None, np.inf, []
    for k, start in enumerate(grid):
        values = _gauss_newton(ev, space, ev.profile(start), cfg.gn_iterations)
        loss = ev.loss(values)
        if loss < best_loss:
            best, best_loss = values, loss
        history.append(best_loss)
        if progress is not None:
            progress(k, best_loss)
    return best, history


def _search_scan(ev: _Replays, space: ParamSpace, cfg: GapConfig, points: int,
                 progress: Callable[[int, float], None] | None, refine: int = 2, start: np.ndarray | None = None,
                 only: Sequence[int] | None = None) -> tuple[np.ndarray, list[float]]:  # fmt: skip
    """Each parameter alone over ``points`` values of its search box (the rest nominal); then ``refine``
    coordinate passes around the best, each over 9 values within one previous grid step either way; then
    Gauss-Newton on all from there (kept only if it lowers the loss). Contact replays have narrow basins
    (a x0.3 grasp force: loss 1e-17 at 0.30, 3e-11 at 0.31, 3e-10 at 0.317, the nearest point of 15).

    A refit in a widened box passes ``start`` (the fit so far: the rest held there, not at nominal) and
    ``only`` (the widened parameters: the first pass scans only them)."""
    nominal = np.asarray(space.nominal, dtype=float)
    origins = [nominal] if start is None else [np.asarray(start, dtype=float), nominal]
    units = [np.clip(space.to_unit(o), 0.0, 1.0) for o in origins]
    best_u, best_loss = units[0].copy(), ev.loss(origins[0])
    history = [best_loss]
    first = range(len(space.names)) if only is None else only

    def values(u: np.ndarray) -> np.ndarray:
        return _as_simulated(space, space.to_values(u))

    step = 1.0 / max(points - 1, 1)
    for p in range(refine + 1):
        # first each alone from the origins (nominal; a refit's fit so far too), then around the best so far
        passes = [(u0, i) for u0 in units for i in first] if p == 0 else [(None, i) for i in range(len(space.names))]
        for base, i in passes:
            base = best_u if base is None else base
            grid = np.linspace(0.0, 1.0, points) if p == 0 else np.linspace(base[i] - step, base[i] + step, 9)
            for g in np.clip(grid, 0.0, 1.0):
                u = base.copy()
                u[i] = g
                loss = ev.loss(values(u))
                if loss < best_loss:
                    best_u, best_loss = u, loss
        history.append(best_loss)
        if progress is not None:
            progress(p, best_loss)
        if p:
            step /= 4.0
    best = values(best_u)
    polished = _gauss_newton(ev, space, best, cfg.gn_iterations)
    history.append(ev.loss(polished))
    return polished, history


def _as_simulated(space: ParamSpace, values: np.ndarray) -> np.ndarray:
    """``values`` with the integer parameters (latency in control steps) rounded, as the simulator runs them."""
    return np.array([np.round(x) if _is_integer(n) else x for n, x in zip(space.names, values)])


def _gauss_newton(ev: _Replays, space: ParamSpace, start: np.ndarray, iterations: int) -> np.ndarray:
    """Bounded Levenberg-Marquardt on the continuous parameters in the unit cube (log space for scale
    factors), integers held; starts just off the box faces (a start on a bound can stall there)."""
    import mujoco.minimize as mjmin

    free = np.array([i for i, n in enumerate(space.names) if not _is_integer(n)], dtype=int)
    if free.size == 0 or iterations <= 0:
        return start
    unit0 = np.clip(space.to_unit(start), 0.0, 1.0)
    x0 = np.clip(unit0[free], 1e-3, 1 - 1e-3)

    def values_at(x: np.ndarray) -> np.ndarray:
        u = unit0.copy()
        u[free] = x
        return space.to_values(u)

    def residual(x: np.ndarray) -> np.ndarray:  # (F,) -> (n,), or (F, K) candidates -> (n, K)
        cols = np.atleast_2d(x.T).T if x.ndim == 1 else x
        out = np.stack([ev.stacked(values_at(cols[:, k])) for k in range(cols.shape[1])], axis=1)
        out /= np.sqrt(out.shape[0])
        return out[:, 0] if x.ndim == 1 else out

    x, _ = mjmin.least_squares(x0, residual, bounds=(np.zeros(free.size), np.ones(free.size)),
                               max_iter=iterations, xtol=1e-6, verbose=mjmin.Verbosity.SILENT)  # fmt: skip
    fitted = values_at(np.asarray(x).ravel())
    return fitted if ev.loss(fitted) <= ev.loss(start) else start


def observable(simulate: Simulator, records: Sequence[EpisodeRecord], space: ParamSpace,
               tolerance: float) -> tuple[str, ...]:  # fmt: skip
    """Names whose value, moved alone to either end of the search box, changes the simulated joint
    trajectories by more than ``tolerance`` rad RMS; the others cannot be fitted from these data."""
    nominal = np.asarray(space.nominal)
    base = [np.asarray(simulate(space.as_dict(nominal), r)) for r in records]
    keep = []
    for i, name in enumerate(space.names):
        change = 0.0
        for end in (space.search_low[i], space.search_high[i]):
            values = nominal.copy()
            values[i] = end
            sims = [np.asarray(simulate(space.as_dict(values), r)) for r in records]
            change = max(change, float(np.sqrt(np.mean([np.mean((a - b) ** 2) for a, b in zip(sims, base)]))))
        if change > tolerance:
            keep.append(name)
    return tuple(keep)


def _cem(loss: Callable[[np.ndarray], float], space: ParamSpace, cfg: GapConfig, rng: np.random.Generator,
         progress: Callable[[int, float], None] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:  # fmt: skip
    """Full-covariance CEM in the unit cube of the search box (a full covariance follows the ridges that
    correlated parameters such as gain and damping make). Returns (best u, final mean, final cov, history)."""
    p = len(space.names)
    mean = np.clip(space.to_unit(space.nominal), 0.0, 1.0)  # start at the simulator's assumption
    cov = np.eye(p) * 0.35**2  # broad: the truth may lie well outside the prior range
    n_elite = max(2, int(round(cfg.cem_elite_fraction * cfg.cem_population)))
    best_u, best, history = mean.copy(), loss(space.to_values(mean)), []
    for it in range(cfg.cem_iterations):
        u = np.clip(rng.multivariate_normal(mean, cov, cfg.cem_population), 0.0, 1.0)  # (N, P)
        u[0] = best_u  # the best so far competes again, so the estimate never gets worse
        losses = np.array([loss(space.to_values(row)) for row in u])
        order = np.argsort(losses)
        elites = u[order[:n_elite]]  # (E, P)
        if losses[order[0]] < best:
            best, best_u = float(losses[order[0]]), u[order[0]].copy()
        centred = elites - elites.mean(axis=0)
        mean = 0.8 * elites.mean(axis=0) + 0.2 * mean  # smoothed updates avoid premature collapse
        cov = 0.8 * (centred.T @ centred) / n_elite + 0.2 * cov + np.eye(p) * 1e-4
        history.append(best)
        if progress is not None:
            progress(it, best)
    return best_u, mean, cov, history

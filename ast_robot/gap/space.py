"""The parameter space of system identification: which randomized parameters are fitted, their nominal
(simulator-unchanged) values, prior ranges, the search box and the physical limits a box may be widened to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ast_robot.config.randomization import DistributionConfig, RandomizationConfig


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


def snap_integers(space: ParamSpace, values: np.ndarray) -> np.ndarray:
    """Round parameters the simulator treats as integers (latency in control steps): the fit reports
    the value that was actually simulated."""
    out = values.copy()
    for i, name in enumerate(space.names):
        if is_integer(name):
            out[i] = float(np.round(out[i]))
    return out


def is_integer(name: str) -> bool:
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
    if is_integer(n):  # a delay the prior never covered can still be found: reach `expansion` steps past it
        s_high = max(s_high, high + expansion)
    if is_offset(n):
        s_low, s_high = min(s_low, -OFFSET_SEARCH_RAD), max(s_high, OFFSET_SEARCH_RAD)
    s_low, s_high = min(s_low, nominal), max(s_high, nominal, ceiling if ceiling is not None else s_high)
    if limit is not None:
        s_high = min(s_high, limit)
    if floor is not None:
        s_low = max(s_low, floor)
    return nominal, low, high, s_low, s_high, log


def as_simulated(space: ParamSpace, values: np.ndarray) -> np.ndarray:
    """``values`` with the integer parameters (latency in control steps) rounded, as the simulator runs them."""
    return np.array([np.round(x) if is_integer(n) else x for n, x in zip(space.names, values)])

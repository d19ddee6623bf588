"""The searches of a fit inside one box: a scan of each parameter alone then coordinate passes (contact-rich
pick-and-place), a latency grid then Gauss-Newton (reach), or the cross-entropy method then least squares."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from ast_robot.config.gap import GapConfig
from ast_robot.gap.residuals import Replays
from ast_robot.gap.space import ParamSpace, as_simulated, is_integer


def polish(residuals: Callable[[np.ndarray], np.ndarray], loss: Callable[[np.ndarray], float], space: ParamSpace,
            values: np.ndarray, evaluations: int) -> np.ndarray:  # fmt: skip
    """Refine the continuous parameters of the CEM's best candidate by bounded least squares (the CEM
    finds the basin; Gauss-Newton steps then find its bottom precisely). Integers stay where they are."""
    free = [i for i, n in enumerate(space.names) if not is_integer(n)]
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


def refine_integers(loss: Callable[[np.ndarray], float], space: ParamSpace, values: np.ndarray) -> np.ndarray:
    """Try each integer parameter one step either way of the fit: the CEM moves in a continuous cube,
    where a neighbouring delay may sit behind a ridge of compensating gain and damping."""
    best, best_loss = values, loss(values)
    for i, name in enumerate(space.names):
        if not is_integer(name):
            continue
        for step in (-1.0, 1.0):
            trial = best.copy()
            trial[i] += step
            if space.search_low[i] <= trial[i] <= space.search_high[i] and (t := loss(trial)) < best_loss:
                best, best_loss = trial, t
    return best


def _integer_grid(space: ParamSpace) -> list[np.ndarray]:
    """Every combination of the integer parameters' whole values inside the box (at most 64), as full
    vectors with the rest at nominal; only the nominal when the grid would be larger."""
    nominal = np.asarray(space.nominal)
    ints = [i for i, n in enumerate(space.names) if is_integer(n)]
    grids = [range(int(np.ceil(space.search_low[i])), int(np.floor(space.search_high[i])) + 1) for i in ints]
    if not ints or np.prod([len(g) for g in grids]) > 64:
        return [nominal]
    out = []
    for combo in itertools.product(*grids):
        v = nominal.copy()
        v[ints] = combo
        out.append(v)
    return out


def search_gauss_newton(ev: Replays, space: ParamSpace, cfg: GapConfig,
                         progress: Callable[[int, float], None] | None) -> tuple[np.ndarray, list[float]]:  # fmt: skip
    """Integer parameters (latency) by a grid scored at nominal physics, the best
    ``cfg.integer_candidates`` of them each followed by box-bounded Gauss-Newton (``mujoco.minimize``,
    the optimizer of ``mujoco.sysid``) on the continuous parameters from the nominal values."""
    scored = sorted((ev.profiled_loss(v), k, v) for k, v in enumerate(_integer_grid(space)))
    # a step whose nominal-physics loss is many times the best one's is not worth a fit of its own
    grid = [v for loss, _, v in scored[: cfg.integer_candidates] if loss <= 4.0 * scored[0][0]]
    best, best_loss, history = None, np.inf, []
    for k, start in enumerate(grid):
        values = gauss_newton(ev, space, ev.profile(start), cfg.gn_iterations)
        loss = ev.loss(values)
        if loss < best_loss:
            best, best_loss = values, loss
        history.append(best_loss)
        if progress is not None:
            progress(k, best_loss)
    return best, history


def search_scan(ev: Replays, space: ParamSpace, cfg: GapConfig, points: int,
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
        return as_simulated(space, space.to_values(u))

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
    polished = gauss_newton(ev, space, best, cfg.gn_iterations)
    history.append(ev.loss(polished))
    return polished, history


def gauss_newton(ev: Replays, space: ParamSpace, start: np.ndarray, iterations: int) -> np.ndarray:
    """Bounded Levenberg-Marquardt on the continuous parameters in the unit cube (log space for scale
    factors), integers held; starts just off the box faces (a start on a bound can stall there)."""
    import mujoco.minimize as mjmin

    free = np.array([i for i, n in enumerate(space.names) if not is_integer(n)], dtype=int)
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


def cem(loss: Callable[[np.ndarray], float], space: ParamSpace, cfg: GapConfig, rng: np.random.Generator,
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

"""A command delay between the fit's whole control steps, at the replay's physics-step resolution: the scan of one
delay's loss (the delay alone, or with other parameters refitted at each candidate: the delay *profiled*), the
least-squares refit of named parameters with the delay held, and the whole-step fit restated as such a joint fit says
it (:func:`joint_result`).

The reach and pick fits sample latency in whole env steps (the envs' resolution, 40 ms at 25 Hz); a real arm's delay
falls between them. :mod:`ast_robot.gap.latency` decides from these fits what the report says; this module replays
and measures (``simulator``: a :class:`~ast_robot.gap.replay.MujocoReplay`, whose ``fractional_latency`` delays by physics
steps; ``sysid``: the whole-step :class:`~ast_robot.gap.result.SysIdResult`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.records import EpisodeRecord

COARSE_STEP = 0.25  # env steps: the scan's first grid, within one whole step either side of the fit's latency
FINE_STEPS = 2  # physics steps either side of the coarse parabola's vertex the fine scan starts with
REFIT_EVALUATIONS = 40  # least-squares evaluations of one refit at a held delay
REFIT_XTOL = 1e-5  # relative: a gain to 1e-5 is far inside its interval; scipy's 1e-8 spent half the evaluations


@contextmanager
def fractional(simulator: Any) -> Iterator[None]:
    """The replay delays by physics steps inside the block, as it did before after it."""
    before = simulator.fractional_latency
    simulator.fractional_latency = True
    try:
        yield
    finally:
        simulator.fractional_latency = before


def scan_delay(simulator: Any, sysid: Any, loss: Callable[[float], float]) -> tuple[float, float, float]:
    """(delay in env steps, its ``loss``, one physics step in env steps): the delay that minimises ``loss(delay)``,
    every quarter step within one whole step of the fit's latency (nearest that latency first), then physics steps
    around the vertex of the parabola through the best quarter step and its neighbours, walked on while the best
    lies at an end, to a minimum at physics-step resolution within a quarter step of the best quarter step (the
    loss of a delay is smooth at quarter steps: it blends two neighbouring setpoints)."""
    step = simulator.model.opt.timestep / simulator.env_dt  # one physics step in env steps
    whole = float(sysid.mean[sysid.names.index("latency")])  # the best whole step: the delay lies within one of it
    grid = np.arange(max(0.0, whole - 1.0), whole + 1.0 + 1e-9, COARSE_STEP)
    with fractional(simulator):
        coarse = {float(x): loss(float(x)) for x in sorted(grid, key=lambda x: abs(x - whole))}
        best = min(coarse, key=coarse.get)
        k = int(round(_vertex(coarse, best) / step))  # physics steps
        low = max(0, int(np.ceil((best - COARSE_STEP) / step - 1e-9)))  # no negative delay
        high = int((best + COARSE_STEP) / step + 1e-9)
        span = range(max(low, k - FINE_STEPS), min(high, k + FINE_STEPS) + 1) or [int(round(best / step))]
        fine = {i: loss(i * step) for i in sorted(span, key=lambda i: abs(i - k))}  # ties: nearest the vertex
        while True:  # the minimum at an end of the points tried, short of the quarter step: one more beyond it
            i = min(fine, key=fine.get)
            nxt = i - 1 if i == min(fine) else i + 1 if i == max(fine) else None
            if nxt is None or not low <= nxt <= high or nxt in fine:
                break
            fine[nxt] = loss(nxt * step)
    i = min(fine, key=fine.get)
    return i * step, fine[i], step


def _vertex(points: dict[float, float], best: float) -> float:
    """The vertex of the parabola through ``best`` and its grid neighbours in ``points`` (``best`` at an end of the
    grid, or no upward curvature: ``best``)."""
    left, right = best - COARSE_STEP, best + COARSE_STEP
    near = {min(points, key=lambda x: abs(x - t)): t for t in (left, right)}
    if len(near) < 2 or any(abs(x - t) > 1e-6 for x, t in near.items()):
        return best
    y0, y1, y2 = points[min(near)], points[best], points[max(near)]
    curvature = y0 - 2.0 * y1 + y2
    return best if curvature <= 0 else best + 0.5 * COARSE_STEP * (y0 - y2) / curvature


@dataclass(frozen=True)
class DelayFit:
    """Parameters refitted with the delay held (or profiled): their values, the loss and its noise floor."""

    delay: float  # env steps, at physics-step resolution
    names: tuple[str, ...]
    values: tuple[float, ...]
    std: tuple[float, ...]  # least-squares standard deviations (s2 (J^T J)^-1)
    loss: float  # rad^2, as trajectory_loss
    s2: float  # rad^2: the floor of this residual (von Neumann noise plus the fit's replay floor)


def refit_given_delay(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any, names: Sequence[str],
                      delay: float, start: Sequence[float] | None = None) -> DelayFit:  # fmt: skip
    """``names`` refitted by least squares within the fit's search box from ``start`` (default: nominal), the delay
    held at ``delay`` env steps (physics-step resolution), every other parameter nominal."""
    from scipy.optimize import least_squares

    from ast_robot.gap.significance import noise_variance

    base = {**dict(zip(sysid.names, sysid.nominal)), "latency": delay}
    idx = [sysid.names.index(n) for n in names]

    def residuals(x: np.ndarray) -> list[np.ndarray]:
        params = {**base, **dict(zip(names, (float(v) for v in x)))}
        return [np.asarray(simulator(params, r), dtype=float) - r.joint_positions for r in records]

    low = [sysid.search_low[i] if sysid.search_low else -np.inf for i in idx]
    high = [sysid.search_high[i] if sysid.search_high else np.inf for i in idx]
    x0 = np.clip([sysid.nominal[i] for i in idx] if start is None else list(start), low, high)
    with fractional(simulator):
        fit = least_squares(lambda x: np.concatenate([e.ravel() for e in residuals(x)]), x0, bounds=(low, high),
                            diff_step=1e-3, max_nfev=REFIT_EVALUATIONS, xtol=REFIT_XTOL)  # fmt: skip
        errors = residuals(fit.x)
    replay_floor2 = max(0.0, sysid.floor_rms**2 - sysid.noise_rms**2)
    s2 = noise_variance(errors) + replay_floor2
    loss = float(np.mean([np.mean(e**2) for e in errors]))
    return DelayFit(float(delay), tuple(names), tuple(float(v) for v in fit.x), _std(fit.jac, fit.fun, s2, len(idx)),
                    loss, s2)  # fmt: skip


def _std(jac: np.ndarray, fun: np.ndarray, s2: float, p: int) -> tuple[float, ...]:
    """Least-squares standard deviations from the refit's Jacobian, no surer than its residual says (as the fit's
    own: ``max(s2, RSS / (n - p))``); inf where the data do not constrain a parameter."""
    info = jac.T @ jac
    if not np.all(np.isfinite(info)) or np.linalg.matrix_rank(info) < p:
        return (float("inf"),) * p
    var = max(s2, float(fun @ fun) / max(1, fun.size - p)) * np.diag(np.linalg.inv(info))
    return tuple(float(v) for v in np.sqrt(np.maximum(var, 0.0)))


def profile_delay(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any, names: Sequence[str]) -> DelayFit:
    """The joint fit of a delay between whole steps and ``names``: at each delay of :func:`scan_delay`'s grid, ``names``
    refitted with it held (from the refit of the nearest delay tried; the first from the whole-step fit), the delay
    whose refit replays best."""
    fits: dict[float, DelayFit] = {}
    whole = [sysid.mean[sysid.names.index(n)] for n in names]

    def loss(delay: float) -> float:
        near = min(fits, key=lambda d: abs(d - delay), default=None)
        fits[delay] = refit_given_delay(simulator, records, sysid, names, delay,
                                        whole if near is None else fits[near].values)  # fmt: skip
        return fits[delay].loss

    best, _, _ = scan_delay(simulator, sysid, loss)
    return fits[best]


def joint_result(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any, joint: DelayFit, unexplained: float,
                 seconds: float) -> Any:  # fmt: skip
    """``sysid`` (the whole-step fit) as the joint fit ``joint`` says it: ``joint``'s parameters at their values,
    tested again beside the delay (:func:`_beside`); latency at the delay (env steps, fractional) and not named (the
    envs delay by whole steps: the latency line gives it, ``sub_step_s`` = ``seconds``); every other parameter at
    nominal, as the joint fit holds it; whatever was significant in the whole-step fit and is not now in
    ``eliminated`` (whole-step values in ``full_fit``); the loss, floor and ``unexplained`` share the joint fit's."""
    from scipy import stats

    mean, significant = list(sysid.nominal), [False] * len(sysid.names)
    std, attribution = list(sysid.std), list(sysid.attribution)
    conditional = list(sysid.conditional or (0.0,) * len(sysid.names))
    pvalue = list(sysid.pvalue or (1.0,) * len(sysid.names))
    for name, value, sd in zip(joint.names, joint.values, joint.std):
        i = sysid.names.index(name)
        mean[i], std[i] = value, sd
        attribution[i], conditional[i], pvalue[i] = _beside(simulator, records, sysid, joint, name)
        significant[i] = pvalue[i] < sysid.alpha
    mean[sysid.names.index("latency")] = joint.delay
    eliminated = tuple(n for n, was, now in zip(sysid.names, sysid.significant, significant) if was and not now)
    replay_floor2 = max(0.0, sysid.floor_rms**2 - sysid.noise_rms**2)
    n, p = sysid.n_residuals, len(joint.names) + 1  # the delay is fitted too
    result = dataclasses.replace(
        sysid, mean=tuple(mean), std=tuple(std), attribution=tuple(attribution), conditional=tuple(conditional),
        pvalue=tuple(pvalue), significant=tuple(significant), eliminated=eliminated, full_fit=sysid.mean,
        full_loss=sysid.loss_fit, loss_fit=joint.loss, unexplained=unexplained, sub_step_s=seconds,
        floor_rms=float(np.sqrt(joint.s2)), noise_rms=float(np.sqrt(max(0.0, joint.s2 - replay_floor2))),
        residual_pvalue=float(stats.chi2.sf(joint.loss * n / max(joint.s2, 1e-300), max(1, n - p))),
    )  # fmt: skip
    return result.reranked()


def _beside(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any, joint: DelayFit,
            name: str) -> tuple[float, float, float]:  # fmt: skip
    """(share of the nominal loss ``name``'s joint value removes alone, the delay nominal; the share it removes
    given the delay, put back at nominal with the delay held; that reduction's F-test p-value against ``joint``'s
    floor, Bonferroni over the fit's parameters), as :func:`ast_robot.gap.significance.evidence` measures them."""
    from scipy import stats

    from ast_robot.gap.residuals import trajectory_loss

    nominal = dict(zip(sysid.names, sysid.nominal))
    at = {**nominal, **dict(zip(joint.names, joint.values)), "latency": joint.delay}
    l0, n, p = sysid.loss_nominal, sysid.n_residuals, len(sysid.names)
    alone = trajectory_loss(simulator, {**nominal, name: at[name]}, records)
    with fractional(simulator):
        drop = trajectory_loss(simulator, {**at, name: nominal[name]}, records)
    f = max(0.0, drop - joint.loss) * n / max(joint.s2, 1e-300)
    return (l0 - alone) / l0, (drop - joint.loss) / l0, min(1.0, float(stats.f.sf(f, 1, max(1, n - p))) * p)

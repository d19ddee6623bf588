"""Retuning: new randomization ranges centred on the system-identification fit, for the parameters
the fit found significant, and for nothing else.

A parameter is retuned only when its reduction of the nominal model's loss passed the F-test against
the replay noise floor (``SysIdResult.significant``) and the gap is not reported as unexplained
(``SysIdResult.gap_unexplained``); every other range is kept exactly as it was. The one exception is
``joint_noise``, measured from the replay residual rather than fitted: its range moves only when the
measured noise's interval lies wholly outside it, and never when the gap is unexplained (the residual then
holds the missing cause: a noise-free twin with gain x0.07, outside the search box, measured 0.38 mrad).
A retuned range is ``centre +- max(k * std, min_relative_width * |centre|)`` clipped to the parameter's
physical floor (no negative scales, payloads or delays) and data-sheet ceiling (``limits``: the rated payload). The
result is written as a small experiment YAML with ``parent:`` pointing at the old config and the
provenance as header comments.

Deployment offset, once: the replay fits the arm from the commanded joint targets, so the fitted
latency is the arm's; the training range must also hold the delay the deployment adds
(``GapConfig.deployment_latency_steps``). ``retune`` adds that offset to a fitted centre, and the next
round's fit subtracts it from the prior it reports (``space_from_randomization(shift=...)``) and
compares the fit with the nominal arm, never with the retuned range, so a round never counts it twice.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from ast_robot.config.experiment import ExperimentConfig
from ast_robot.config.gap import GapConfig
from ast_robot.config.loader import apply_overrides, deep_merge, read_yaml_tree
from ast_robot.config.randomization import DistributionConfig, RandomizationConfig
from ast_robot.config.schema import from_dict, to_dict
from ast_robot.fileio import atomic_write_text
from ast_robot.gap.significance import noise_interval
from ast_robot.gap.sysid import SysIdResult, is_scale, lower_floor, prior_bounds

_ABS_FLOOR = 1e-3  # smallest half-width in the parameter's unit, for centres at or near zero


def retuned_distribution(name: str, old: DistributionConfig, centre: float, std: float, cfg: GapConfig,
                         ceiling: float | None = None) -> DistributionConfig:  # fmt: skip
    """One parameter's new distribution, same family where possible (constant becomes uniform).

    A normal whose range would cross the parameter's physical floor (a scale factor near 0) or its
    ``ceiling`` becomes a uniform range clipped there: clipping a normal would pile samples up on it.
    """
    if not (math.isfinite(centre) and std >= 0 and not math.isnan(std)):
        raise ValueError(f"cannot retune {name!r}: the fit gave centre {centre} and std {std}; the centre must "
                         f"be finite and std >= 0")  # fmt: skip
    floor = lower_floor(name, old, centre)
    if ceiling is not None:
        centre = min(centre, ceiling)
    if floor is not None:
        centre = max(centre, floor)
    half = half_width(centre, std, cfg, ceiling, floor)
    low, high = centre - half, centre + half
    crosses = (floor is not None and low < floor) or (ceiling is not None and high > ceiling)
    if floor is not None and low < floor:
        low, high = floor, max(high, floor + 2 * _ABS_FLOOR)
    if ceiling is not None and high > ceiling:
        low, high = min(low, ceiling - 2 * _ABS_FLOOR), ceiling
    if old.dist == "normal" and not crosses:
        return dataclasses.replace(old, mean=centre, std=half / cfg.range_width_sigmas)
    family = "loguniform" if old.dist == "loguniform" and low > 0 else "uniform"
    return dataclasses.replace(old, dist=family, low=float(low), high=float(high), mean=float(centre))


def bounded_distribution(name: str, old: DistributionConfig, bound: float, edge: str,
                         ceiling: float | None = None) -> DistributionConfig:  # fmt: skip
    """The range of a parameter whose fit stayed pinned at an end of its (widened) search box: the old range
    extended to the bound, never collapsed onto it (the fit says only that the truth lies at the bound or
    beyond, or that the parameter stands in for another cause; a range [0.19, 0.21] around a friction pinned at
    0.2 trained for a value the truth, 0.1-0.15, was not). Log-uniform for a positive scale factor (as many
    samples per factor of 2 near the bound as near the old range), else uniform."""
    if not math.isfinite(bound):
        raise ValueError(f"cannot retune {name!r}: the fit's bound is {bound}; it must be finite")
    low, high, _ = prior_bounds(old)
    if edge == "floor":
        floor = lower_floor(name, old, bound)
        low, high = max(min(low, bound), floor if floor is not None else -math.inf), max(high, bound)
    else:
        low, high = min(low, bound), max(high, bound) if ceiling is None else min(max(high, bound), ceiling)
    if high - low < 2 * _ABS_FLOOR:
        high = low + 2 * _ABS_FLOOR
    scale = is_scale(name, old) or old.dist == "loguniform"
    family = "loguniform" if scale and low > 0 else "uniform"
    centre = math.sqrt(low * high) if family == "loguniform" else 0.5 * (low + high)
    return dataclasses.replace(old, dist=family, low=float(low), high=float(high), mean=float(centre))


def half_width(centre: float, std: float, cfg: GapConfig, ceiling: float | None = None,
               floor: float | None = None) -> float:  # fmt: skip
    """Half-width of a retuned range (and of the posterior bump): ``k`` posterior standard deviations,
    never below ``min_relative_width * |centre|`` nor the absolute floor; an infinite std (a parameter the
    data do not pin down) spans the whole physical box when it is bounded, else 100% of the centre."""
    if not math.isfinite(std):
        span = (ceiling - floor) if ceiling is not None and floor is not None else 2 * abs(centre)
        return max(0.5 * span, _ABS_FLOOR)
    return max(cfg.range_width_sigmas * std, cfg.min_relative_width * abs(centre), _ABS_FLOOR)


def retune(
    randomization: RandomizationConfig, result: SysIdResult, cfg: GapConfig | None = None,
    offsets: Mapping[str, float] | None = None, limits: Mapping[str, float] | None = None,
) -> RandomizationConfig:
    """New ranges for the significant parameters of an explained gap; every other range is kept as is.

    ``offsets[name]`` is added to a fitted centre (what the deployment adds beyond the fitted physics,
    e.g. the policy node's own delay on top of the arm's latency); ``limits[name]`` caps a range (data
    sheet: the rated payload)."""
    cfg, offsets, limits = cfg or GapConfig(), offsets or {}, limits or {}
    unknown = [n for n in result.names if n not in randomization.params]
    if unknown:
        raise ValueError(f"fitted parameters {unknown} are not in the randomization config "
                         f"(randomized: {sorted(randomization.params)})")  # fmt: skip
    params = dict(randomization.params)
    for name in retuned_names(result, cfg):
        i = result.names.index(name)
        if edge := result.search_edge(i):  # a bound: the truth lies at it or beyond
            params[name] = bounded_distribution(name, params[name], result.mean[i] + offsets.get(name, 0.0), edge,
                                                limits.get(name))  # fmt: skip
            continue
        params[name] = retuned_distribution(name, params[name], result.mean[i] + offsets.get(name, 0.0),
                                            result.std[i], cfg, limits.get(name))  # fmt: skip
    if "joint_noise" in params and not result.gap_unexplained():  # then the residual holds the missing cause
        params["joint_noise"] = noise_distribution(params["joint_noise"], result, cfg)
    return dataclasses.replace(randomization, params=params)


def noise_distribution(old: DistributionConfig, result: SysIdResult, cfg: GapConfig) -> DistributionConfig:
    """The joint-noise range: kept unless the noise measured in the replay residual (its chi-square 95%
    interval) lies wholly outside it; then a uniform range over that interval (widened by
    ``min_relative_width``). The range counts as reaching ``replay_floor_rad`` further on each side: a
    noise below what the replay itself cannot reproduce is not resolved (the nominal twin's float
    round-off, ~1e-8 rad, moved a constant-0 range to [1.08e-8, 1.23e-8] on every null seed)."""
    lo, hi = noise_interval(result.noise_rms, result.n_residuals)
    p_lo, p_hi, _ = prior_bounds(old)
    p_lo, p_hi = max(0.0, p_lo - cfg.replay_floor_rad), p_hi + cfg.replay_floor_rad
    if hi <= 0 or p_lo <= lo <= p_hi or p_lo <= hi <= p_hi or (lo < p_lo and hi > p_hi):
        return old
    w = cfg.min_relative_width
    return dataclasses.replace(old, dist="uniform", low=max(0.0, lo * (1 - w)), high=hi * (1 + w),
                               mean=result.noise_rms)  # fmt: skip


def changed_names(old: RandomizationConfig, new: RandomizationConfig) -> tuple[str, ...]:
    """The parameters whose distribution a retune changed materially, sorted: a bound that moved by less
    than 1% of the range's width is no change (a later round refitting the same value, 0.34999 for 0.34998,
    would otherwise report "retuned" to the range it already had)."""
    return tuple(sorted(n for n, d in new.params.items() if not _same_distribution(old.params.get(n), d)))


def _same_distribution(a: DistributionConfig | None, b: DistributionConfig) -> bool:
    if a is None:
        return False
    fa, fb = dataclasses.asdict(a), dataclasses.asdict(b)
    tol = 0.01 * max(abs(b.high - b.low), abs(b.std), 1e-9)
    return fa.keys() == fb.keys() and all(
        abs(x - fb[k]) <= tol if isinstance(x, float) and isinstance(fb[k], float) else x == fb[k]
        for k, x in fa.items()
    )


def retuned_names(result: SysIdResult, cfg: GapConfig | None = None) -> tuple[str, ...]:
    """The fitted parameters a retune changes: the significant ones of an explained gap whose fit removed
    at least ``min_fit_improvement`` of the nominal loss (may be empty)."""
    cfg = cfg or GapConfig()
    return result.culprits() if result.improvement() >= cfg.min_fit_improvement else ()


def write_retuned_config(parent: str | Path, new: RandomizationConfig, out_path: str | Path,
                         provenance: Mapping[str, str], name: str | None = None,
                         overrides: Sequence[str] = (), visual: Mapping[str, object] | None = None) -> Path:  # fmt: skip
    """Write ``out_path``: ``parent:`` + the ``--set`` overrides the run used + the retuned ranges
    (+ ``name``), provenance in the header.

    The overrides are written into the file so that it loads as the effective config on its own; apply
    none on top of it (an override of a retuned range would undo the retune). The merged result is
    validated as an ExperimentConfig before anything is written.
    """
    parent, out_path = Path(parent).resolve(), Path(out_path)
    base = read_yaml_tree(parent)  # raises ConfigError for a missing or bad parent
    old = _resolved(from_dict(ExperimentConfig, base).randomization).params
    changed = {n: to_dict(d) for n, d in new.params.items() if old.get(n) != d}  # the rest is inherited
    here = out_path.resolve().parent
    shared = os.path.commonpath([parent, here]) != here.anchor  # same tree: keep the pair movable together
    retuned: dict = {"params": changed, **({"visual": dict(visual)} if visual else {})}  # visual: pick-and-place looks
    body = deep_merge(apply_overrides({}, list(overrides)), {"randomization": retuned})
    if name is not None:
        body["name"] = name
    data: dict = {"parent": os.path.relpath(parent, here) if shared else str(parent), **body}
    merged = deep_merge(base, body)
    from_dict(ExperimentConfig, merged)  # fail here, before writing, if the result is not a valid config
    header = "Retuned randomization written by ast_robot.gap.retune.\n"
    header += "".join(f"{k}: {v}\n" for k, v in provenance.items())
    text = "".join(f"# {line}\n" for line in header.splitlines()) + yaml.safe_dump(data, sort_keys=False)
    return atomic_write_text(out_path, text)


def _resolved(cfg: RandomizationConfig) -> RandomizationConfig:
    """The parent's ranges with its ``preset:`` merged in, so only what really changed is written."""
    if not getattr(cfg, "preset", ""):
        return cfg
    from ast_robot.envs.randomization import resolve

    return resolve(cfg)

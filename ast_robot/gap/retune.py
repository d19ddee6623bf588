"""Retuning: new randomization ranges centred on the system-identification posterior.

Each fitted parameter gets a range ``centre +- max(k * std, min_relative_width * |centre|)``: wide where
the fit is uncertain, narrow where it is sure, never of zero width. The result is written as a small
experiment YAML with ``parent:`` pointing at the old config and the provenance as header comments.
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
from ast_robot.gap.sysid import SysIdResult, lower_floor

_ABS_FLOOR = 1e-3  # smallest half-width in the parameter's unit, for centres at or near zero


def retuned_distribution(
    name: str, old: DistributionConfig, centre: float, std: float, cfg: GapConfig
) -> DistributionConfig:
    """One parameter's new distribution, same family where possible (constant becomes uniform).

    A normal whose range would cross the parameter's physical floor (a scale factor near 0) becomes a
    uniform range starting at the floor: clipping a normal there would pile samples up on the floor.
    """
    if not (math.isfinite(centre) and math.isfinite(std) and std >= 0):
        raise ValueError(f"cannot retune {name!r}: the fit gave centre {centre} and std {std}; both must be "
                         f"finite and std >= 0")  # fmt: skip
    half = half_width(centre, std, cfg)
    low, high = centre - half, centre + half
    floor = lower_floor(name, old, centre)
    crosses_floor = floor is not None and low < floor
    if crosses_floor:  # keep positive/non-negative parameters so; never zero width
        low, high = floor, max(high, floor + 2 * _ABS_FLOOR)
    if old.dist == "normal" and not crosses_floor:
        return dataclasses.replace(old, mean=centre, std=half / cfg.range_width_sigmas)
    family = "loguniform" if old.dist == "loguniform" else "uniform"
    return dataclasses.replace(old, dist=family, low=float(low), high=float(high), mean=float(centre))


def half_width(centre: float, std: float, cfg: GapConfig) -> float:
    """Half-width of a retuned range (and of the posterior bump): ``k`` posterior standard deviations,
    never below ``min_relative_width * |centre|`` nor the absolute floor."""
    return max(cfg.range_width_sigmas * std, cfg.min_relative_width * abs(centre), _ABS_FLOOR)


def retune(
    randomization: RandomizationConfig, result: SysIdResult, cfg: GapConfig | None = None,
    offsets: Mapping[str, float] | None = None,
) -> RandomizationConfig:
    """New ranges for every fitted parameter; parameters that were not fitted keep their distribution.

    ``offsets[name]`` is added to a fitted centre (what the deployment adds beyond the fitted physics,
    e.g. the policy node's own delay on top of the arm's latency)."""
    cfg, offsets = cfg or GapConfig(), offsets or {}
    unknown = [n for n in result.names if n not in randomization.params]
    if unknown:
        raise ValueError(f"fitted parameters {unknown} are not in the randomization config "
                         f"(randomized: {sorted(randomization.params)})")  # fmt: skip
    params = dict(randomization.params)
    for name, centre, std in zip(result.names, result.mean, result.std):
        params[name] = retuned_distribution(name, params[name], centre + offsets.get(name, 0.0), std, cfg)
    return dataclasses.replace(randomization, params=params)


def write_retuned_config(parent: str | Path, new: RandomizationConfig, out_path: str | Path,
                         provenance: Mapping[str, str], name: str | None = None,
                         overrides: Sequence[str] = ()) -> Path:  # fmt: skip
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
    body = deep_merge(apply_overrides({}, list(overrides)), {"randomization": {"params": changed}})
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

"""The pick-and-place branch of ``gap_report``: identify (physical and visual), retune, weight.

Same rules as the reach branch (:mod:`ast_robot.gap.pipeline`): a physical range is retuned only for a
significant parameter of an explained gap whose fit removed enough of the nominal loss; a visual range is
widened only for a named look group whose fitted value lies outside it (``randomization.visual``); every
other range is kept. A named colour shift widens ``visual.colour_shift`` (off by default: it turns on).
A named command latency above the records' declared one adds the reach branch's warning line (gap.latency), as does
a delay between the fit's whole control steps that alone explains a gap the fit leaves unexplained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ast_robot.gap.analyzer import GapReport
from ast_robot.gap.latency import deployment_offsets, latency_warning, sub_step_check
from ast_robot.gap.pick import VISUAL_KEYS, pick_gap_config, run_pick_sysid, run_visual, visual_retune
from ast_robot.gap.report import Overlay
from ast_robot.gap.weights import weights_from_posterior
from ast_robot.records import EpisodeRecord


def identify_and_retune_pickplace(cfg: Any, config: Any, overrides: Sequence[str], report: GapReport,
                                  real: Sequence[EpisodeRecord], real_path: str | Path, simulator: Any, seed: int,
                                  tmp: Path, progress: Any) -> tuple[Path | None, dict | None, Overlay | None]:  # fmt: skip
    """(retuned config path or None, retuned ranges for the verdict, trajectory overlay or None)."""
    result, overlay = None, None
    if cfg is None:
        report.provenance["sysid"] = "skipped: no --config (the randomization ranges to fit are in it)"
    else:
        result, simulator, note = run_pick_sysid(cfg, real, simulator, seed, progress)
        if result is None:
            report.provenance["sysid"] = f"skipped: {note}"
        else:
            report.sysid = result
            if line := _latency_line(cfg, result, real, simulator):
                report.warnings.append(line)
            rec = next(r for r in real if not simulator.replayable(r))
            overlay = Overlay(rec.joint_positions, simulator(dict(zip(result.names, result.nominal)), rec),
                              simulator(result.estimate(), rec), rec.control_dt)  # fmt: skip
    report.visual, note = run_visual(real_path, real, getattr(simulator, "sheets", None))
    if note:
        report.provenance["visual"] = note
    if cfg is None:
        return None, None, overlay
    return _retune(cfg, config, overrides, report, result, tmp, simulator, deployment_offsets(cfg, real)) + (overlay,)


def _latency_line(cfg: Any, result: Any, real: Sequence[EpisodeRecord], simulator: Any) -> str | None:
    """The latency line (gap.latency): of the fit's named latency, else of a delay between its whole steps that
    alone explains a gap the fit leaves unexplained (replayed on the records the fit used)."""
    used = [r for r in real if not simulator.replayable(r)][: cfg.gap.max_replay_episodes]
    # no stand-in scan: the cube's parameters cannot stand in for a delay as the reach fit's gain does
    _, sub = sub_step_check(simulator, used, result, standins=False)
    return latency_warning(result, real, 1.0 / cfg.env.control_hz, sub)  # the fit's latency is in env steps


def in_sim_units(result: Any, simulator: Any) -> Any:
    """``result`` with ``gripper_force`` as a scale of the sim's grasp force (what the randomization scales).

    The replay grasps with the deployment's configured force (``gripper.force_n``, UR5e 40 N) times
    ``gripper_force``, the env's actuator with its own (UR5e 100 N): a twin found at x0.3 of 40 N grips with
    12 N, x0.12 in the sim's units, where a retune must centre the range (x0.3 would train with 30 N)."""
    force, sim_force = getattr(simulator, "force_n", None), getattr(simulator, "sim_force_n", None)
    if "gripper_force" not in result.names or not force or not sim_force or force == sim_force:
        return result
    i, k = result.names.index("gripper_force"), force / sim_force
    # the fit's, in deployment units (its box too: a fit pinned at the box's end stays pinned); the prior came
    # from the sim's ranges as they are
    fields = ("mean", "std", "nominal", "search_low", "search_high")
    return dataclasses.replace(result, **{f: _scaled(getattr(result, f), i, k) for f in fields})


def _scaled(values: tuple, i: int, k: float) -> tuple:
    return tuple(v * k if j == i else v for j, v in enumerate(values)) if len(values) > i else values


def _retune(cfg: Any, config: Any, overrides: Sequence[str], report: GapReport, result: Any,
            tmp: Path, simulator: Any = None, offsets: dict | None = None) -> tuple[Path | None, dict | None]:  # fmt: skip
    """``offsets``: what the deployment adds on top of the arm (gap.latency.deployment_offsets), added to a
    retuned latency range as the reach branch adds it."""
    from ast_robot.gap.pipeline import _range, keep_reason
    from ast_robot.gap.retune import changed_names, retune, write_retuned_config

    gap = pick_gap_config(cfg.gap)
    new, names = cfg.randomization, ()
    if result is not None:
        result = in_sim_units(result, simulator)
        new = retune(cfg.randomization, result, gap, offsets or {})
        names = changed_names(cfg.randomization, new)
    visual = visual_retune(cfg.randomization.visual, report.visual)
    unkeyed = [g for g in (report.visual.all_culprits() if report.visual is not None else ()) if VISUAL_KEYS.get(g) is None]
    if unkeyed:
        report.provenance["visual_unkeyed"] = (f"{', '.join(unkeyed)}: no randomization key covers it (reported, not "
                                               f"retuned; the camera pipeline or the sim's rendering must change)")  # fmt: skip
    if not names and not visual:
        kept = keep_reason(result, gap) if result is not None else "no physical fit"
        extra = f"; {report.provenance['visual_unkeyed']}" if unkeyed else ""
        covered = [g for g in (report.visual.all_culprits() if report.visual is not None else ()) if g not in unkeyed]
        if covered:  # named, but the training range already holds the fitted look: nothing to widen
            extra += f"; visual {', '.join(covered)}: the fitted look lies inside its training range"
        report.provenance["retune"] = f"skipped: {kept or 'no range moved'}; ranges kept{extra}"
        return None, None
    idx = [result.names.index(n) for n in names if n in result.names]  # joint_noise: measured, not fitted
    if idx:
        scale = [max(result.std[i], gap.min_relative_width * abs(result.mean[i])) for i in idx]
        report.weights = weights_from_posterior([result.names[i] for i in idx], [result.mean[i] for i in idx],
                                                scale, 1.0 - report.success.real.value)  # fmt: skip
    changed = [*names, *(f"visual.{k}" for k in visual)]
    report.provenance["retune"] = f"retuned {', '.join(changed)}; every other range kept as it was"
    if "gripper_force" in names and getattr(simulator, "sim_force_n", None):
        report.provenance["retune"] += (f" (gripper_force in the sim's units: the fit's scale of the deployment's "
                                        f"{simulator.force_n:g} N over the sim's {simulator.sim_force_n:g} N)")  # fmt: skip
    provenance = {"report": str(tmp.parent / tmp.name.split(".tmp-")[0].lstrip(".") / "report.html"),
                  **{k: report.provenance[k] for k in ("sim", "real", "date")},
                  "fit": ", ".join(f"{result.names[i]}={result.mean[i]:.4g}" for i in idx) or "-",
                  "visual_fit": _visual_fit(report.visual) if visual else "-"}
    path = write_retuned_config(config, new, tmp / "retuned.yaml", provenance, name=f"{cfg.name}-retuned",
                                overrides=overrides, visual=visual)  # fmt: skip
    ranges = {n: _range(new.params[n]) for n in names}
    for key, value in visual.items():
        ranges[f"visual.{key}"] = tuple(value) if isinstance(value, list) else (-value, value)
    return path, ranges


def _visual_fit(visual: Any) -> str:
    """The fitted looks for a retuned config's header (the wrist camera's prefixed ``wrist.``)."""
    fits = [f"{k}={v:.4g}" for k, v in visual.fitted.items()]
    if visual.wrist is not None and visual.wrist.culprits:
        fits += [f"wrist.{k}={v:.4g}" for k, v in visual.wrist.fitted.items()]
    return ", ".join(fits) or "-"

"""The "run gap report" job: read sim and real records, analyze, identify, retune, write the report.

Everything is written into a temporary sibling of the output folder and renamed into place at the
end, so a failure at any step (bad records, mismatched robots, empty real data) leaves no output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ast_robot.config.deploy import RosNames
from ast_robot.config.gap import GapConfig
from ast_robot.fileio import default_mode
from ast_robot.gap.analyzer import GapReport, analyze
from ast_robot.gap.latency import (  # noqa: F401 (deployed_records re-exported)
    SubStepLatency,
    deployed_records,
    deployment_offsets,
    latency_warning,
    sub_step_check,
)
from ast_robot.gap.report import Overlay, write_report
from ast_robot.gap.sysid import (
    NotIdentifiable,
    Simulator,
    SysIdResult,
    fit,
    is_offset,
    prior_bounds,
    space_from_randomization,
)
from ast_robot.gap.weights import weights_from_posterior
from ast_robot.records import EpisodeRecord, load_episodes

# Randomized parameters that change how the arm follows joint commands (the rest are visual, noise
# or object-side and cannot be identified from joint trajectories).
SYSID_PARAMS = ("actuator_gain", "actuator_force_limit", "armature", "friction", "frictionloss", "joint_damping",
                "latency", "link_mass", "payload")  # fmt: skip


@dataclass
class GapOutputs:
    report: GapReport
    folder: Path
    retuned_config: Path | None


def check_env_matches(env_id: str, records: Sequence[EpisodeRecord]) -> None:
    """The experiment's env id must name the records' task and robot (``ast_robot/ReachUR5e-v0``)."""
    flat = env_id.lower().replace("_", "").replace("-", "")
    r = records[0]
    if r.task.lower().replace("_", "") not in flat or r.robot.lower() not in flat:
        raise ValueError(f"mismatched robot/task: the config's env.id {env_id!r} does not match the records' "
                         f"{r.robot}/{r.task}")  # fmt: skip


def _prepare_out(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output folder {out} exists and is not empty; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(default_mode(directory=True))  # mkdtemp makes it 0700; the report is renamed to be `out`
    return tmp


def _commit(tmp: Path, out: Path) -> None:
    if out.exists():
        out.rmdir()  # empty (checked before)
    os.replace(tmp, out)


def data_sheet_limits(robot: str) -> dict[str, float]:
    """Upper limits from the robot's data sheet: the fit searches up to them whatever the training ranges
    were (a real tool may weigh that much) and no retuned range goes past them."""
    from ast_robot.robot.specs import get_robot

    return {"payload": get_robot(robot).rated_payload_kg}


search_ceilings = data_sheet_limits  # the name bench/ and older callers use


def run_sysid(cfg, real: Sequence[EpisodeRecord], simulator: Simulator | None, seed: int,
              progress: Callable[[int, float], None] | None) -> tuple[SysIdResult | None, Simulator | None, str]:  # fmt: skip
    """Fit the identifiable randomized parameters; returns (result, simulator, note when skipped).

    For deployed records the latency prior is shifted down by the deployment's own delay, so the fit,
    which sees only the arm, is compared with the arm's share of the training range (see retune's
    docstring: the offset is counted once).
    """
    names = [n for n in sorted(cfg.randomization.params) if n in SYSID_PARAMS or is_offset(n)]
    usable = [r for r in real if r.joint_targets is not None]
    if not names:
        return None, None, f"no identifiable parameter is randomized (identifiable: {list(SYSID_PARAMS)} and encoder_offset_<k>)"
    if not usable:
        return None, None, "no real episode has joint_targets to replay"
    if simulator is None:
        from ast_robot.gap.replay import MujocoReplay

        # latency is sampled in env control steps: replay at the experiment's env period, not a default
        simulator = MujocoReplay(real[0].robot, real[0].task, env_dt=1.0 / cfg.env.control_hz)
        simulator.threads = cfg.gap.replay_threads
    shift = {k: -v for k, v in deployment_offsets(cfg, real).items()}
    limits = data_sheet_limits(real[0].robot)
    space = space_from_randomization(cfg.randomization, cfg.gap.search_expansion, names, limits, limits, shift)
    try:
        return fit(simulator, usable, space, cfg.gap, seed=seed, progress=progress), simulator, ""
    except NotIdentifiable as err:
        return None, None, str(err)


def gap_report(sim_dir: str | Path, real_path: str | Path, out: str | Path, config: str | Path | None = None,
               overrides: Sequence[str] = (), seed: int = 0, topic: str = RosNames().outcome,
               simulator: Simulator | None = None,
               progress: Callable[[int, float], None] | None = None) -> GapOutputs:  # fmt: skip
    """Analyze sim records against real ones (bag or folder); with ``config``, also identify and retune.

    Pick-and-place records go through :mod:`ast_robot.gap.pick_pipeline`: the cube's physical parameters from
    the replayed episodes and, when ``real_path`` is a bag with camera frames, the camera's look."""
    from ast_robot.config import load_config

    sim, real = load_episodes(sim_dir, topic), load_episodes(real_path, topic)
    cfg = load_config(config, list(overrides)) if config is not None else None
    if cfg is not None:  # a `preset:` names its parameters in another file: fit and retune the merged set
        from ast_robot.envs.randomization import resolve

        cfg.randomization = resolve(cfg.randomization)
    report = analyze(sim, real, cfg.gap if cfg else GapConfig(), seed)  # validates sides, robot and task
    if cfg is not None:
        check_env_matches(cfg.env.id, sim)
    out = Path(out)
    tmp = _prepare_out(out)
    try:
        report.provenance = {"sim": str(Path(sim_dir).resolve()), "real": str(Path(real_path).resolve()),
                             "config": str(Path(config).resolve()) if config else "-",
                             "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seed": str(seed)}  # fmt: skip
        if report.task == "pickplace":
            from ast_robot.gap.pick_pipeline import identify_and_retune_pickplace

            retuned_path, retuned, overlay = identify_and_retune_pickplace(
                cfg, config, overrides, report, real, real_path, simulator, seed, tmp, progress
            )
        else:
            retuned_path, retuned, overlay = _identify_and_retune(
                cfg, config, overrides, report, real, simulator, seed, tmp, progress
            )
        write_report(tmp, report, sim, real, retuned, overlay)
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GapOutputs(report, out, None if retuned_path is None else out / retuned_path.name)


def _identify_and_retune(cfg, config, overrides: Sequence[str], report: GapReport, real, simulator, seed: int,
                         tmp: Path, progress):  # fmt: skip
    if cfg is None:
        report.provenance["sysid"] = "skipped: no --config (the randomization ranges to fit are in it)"
        return None, None, None
    result, simulator, note = run_sysid(cfg, real, simulator, seed, progress)
    if result is None:
        report.provenance["sysid"] = f"skipped: {note}"
        return None, None, None
    result, sub = _sub_step_check(cfg, result, real, simulator)
    report.sysid = result
    if line := latency_warning(result, real, 1.0 / cfg.env.control_hz, sub):  # the fit's latency is in env steps
        report.warnings.append(line)
    rec = next(r for r in real if r.joint_targets is not None)
    overlay = Overlay(rec.joint_positions, simulator(dict(zip(result.names, result.nominal)), rec),
                      _fitted_replay(simulator, result, rec), rec.control_dt)  # fmt: skip
    from ast_robot.gap.retune import changed_names, retune, write_retuned_config

    offsets = deployment_offsets(cfg, real)
    new = retune(cfg.randomization, result, cfg.gap, offsets, data_sheet_limits(rec.robot))
    names = changed_names(cfg.randomization, new)
    kept = keep_reason(result, cfg.gap)
    if not names:
        report.provenance["retune"] = f"skipped: {kept or 'no range moved'}; ranges kept"
        return None, None, overlay
    # the fit says where the real robot sits in parameter space: real failures happen there
    idx = [result.names.index(n) for n in names if n in result.names]
    if idx:
        scale = [max(result.std[i], cfg.gap.min_relative_width * abs(result.mean[i])) for i in idx]
        report.weights = weights_from_posterior([result.names[i] for i in idx], [result.mean[i] for i in idx],
                                                scale, 1.0 - report.success.real.value)  # fmt: skip
    report.provenance["retune"] = f"retuned {', '.join(names)}; every other range kept as it was"
    if kept:
        report.provenance["retune"] += f" (no physical parameter: {kept})"
    if offsets and "latency" in names:
        report.provenance["retune"] += (f"; latency range = fitted arm latency + {offsets['latency']:g} step(s) "
                                        f"the deployment pipeline adds (gap.deployment_latency_steps)")  # fmt: skip
    provenance = {"report": str(tmp.parent / tmp.name.split(".tmp-")[0].lstrip(".") / "report.html"),
                  **{k: report.provenance[k] for k in ("sim", "real", "date")},
                  "fit": ", ".join(f"{result.names[i]}={result.mean[i]:.4g}" for i in idx) or "-",
                  "joint_noise_measured": f"{result.noise_rms:.3g} rad"}  # fmt: skip
    path = write_retuned_config(config, new, tmp / "retuned.yaml", provenance, name=f"{cfg.name}-retuned",
                                overrides=overrides)  # fmt: skip
    return path, {n: _range(new.params[n]) for n in names}, overlay


def _sub_step_check(cfg, result: SysIdResult, real, simulator) -> tuple[SysIdResult, SubStepLatency | None]:
    """(the fit, the delay between whole steps for the latency line or None): where a delay between the fit's whole
    control steps alone replays the arm as well as the parameters the fit named, those are its stand-ins (a 20 ms
    twin is fitted actuator gain x0.68): none is named (gap.latency.sub_step_standins). Replayed on the records the
    fit used; a simulator without physics-step delays (a test double) is not scanned. Where the fit leaves the gap
    unexplained (nothing named), the delay that alone explains it feeds the line only (gap.latency.sub_step_latency,
    as the pick-and-place branch)."""
    if not hasattr(simulator, "fractional_latency"):
        return result, None
    used = [r for r in real if r.joint_targets is not None][: cfg.gap.max_replay_episodes]
    return sub_step_check(simulator, used, result)


def _fitted_replay(simulator, result: SysIdResult, rec: EpisodeRecord):
    """The fit's replay of ``rec`` for the report's overlay: a fit beside a delay between whole steps
    (``result.sub_step_s``, its latency fractional) replayed at that delay, not rounded to a whole step."""
    if not (result.sub_step_s and hasattr(simulator, "fractional_latency")):
        return simulator(result.estimate(), rec)
    from ast_robot.gap.delay_profile import fractional

    with fractional(simulator):
        return simulator(result.estimate(), rec)


def keep_reason(result: SysIdResult, gap: GapConfig) -> str:
    """Why no range is retuned ("" when some are): nothing significant, an unexplained gap, or a fit
    that removed too little of the nominal loss."""
    if result.gap_unexplained():
        return (f"the best fit leaves {result.unexplained:.0%} of the nominal trajectory loss above the noise "
                f"floor (more than gap.max_unexplained_share {result.max_unexplained:.0%}): the gap is not "
                f"explained by the randomized parameters")  # fmt: skip
    if result.sub_step_s and not result.culprits():
        return (f"a command delay of {result.sub_step_s * 1e3:.0f} ms between the whole control steps explains the "
                f"gap alone ({', '.join(result.eliminated)} stood in for it); the envs delay by whole steps only")  # fmt: skip
    if not result.culprits():
        return (f"no parameter reduces the nominal trajectory loss significantly against the noise floor "
                f"({result.floor_rms:.2g} rad RMS; F-test at {result.alpha:g})")  # fmt: skip
    if result.improvement() < gap.min_fit_improvement:
        return (f"the fit removed {result.improvement():.0%} of the trajectory MSE ({result.loss_nominal:.3g} -> "
                f"{result.loss_fit:.3g} rad^2), less than gap.min_fit_improvement ({gap.min_fit_improvement:.0%})")  # fmt: skip
    return ""


def _range(dist) -> tuple[float, float]:
    """The range a retuned distribution covers (a normal: mean +- 2 std, as the sysid prior reads it)."""
    low, high, _ = prior_bounds(dist)
    return low, high

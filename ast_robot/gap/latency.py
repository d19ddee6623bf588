"""The arm's command latency in the gap analysis: what the deployment adds on top of the arm (the fit's prior and the
retune's offset), and whether the latency the fit identifies exceeds what the deployment declared.

The deployment declares its command latency to the safety module (configs/deploy/<robot>.yaml ``command_latency_s``;
each real record of schema >= 5 carries the value its episode ran with, None: undeclared, the strict filter, as 0).
An arm with more latency than declared is not sped up, but its free motion is slowed (the filter leads a following
joint by the declared delay only): the report says so in one line, naming both values and the field to change.

Only a *named* latency counts (``SysIdResult.culprits``: significant against the replay noise floor, of an explained
gap): on the nominal twin nothing is named, so nothing is said. The fit's latency is in env control steps (integer:
its resolution is one step), so it exceeds a declaration only by more than half a step. Measured through ROS (the
policy node and the twin, `ast-robot demo configs/experiments/demo.yaml --rounds 1`, load 5-8): twin hidden latency
40 ms, deploy YAML undeclared: latency 1 step named and this line in the verdict; the nominal twin: nothing named, no
line. Pick-and-place reports carry the same line: latency is one of the pick fit's parameters (gap.pick.PICK_PARAMS),
fitted from the same replayed arm, with the cube's physics beside it; where its whole steps leave the gap unexplained,
:func:`sub_step_latency` looks for a delay between them that explains it alone (the line's only other source).
The reach fit (gap.pipeline) does the same, and where its whole steps name a parameter besides latency,
:func:`sub_step_named` asks whether a delay between them does as well alone: a 20 ms twin is otherwise fitted
actuator gain x0.68 and nothing else, a false culprit; or, where the named parameters are real, refits them beside
the delay (the delay profiled, :mod:`ast_robot.gap.delay_profile`): gain x1.2 beside 20 ms is otherwise fitted gain
x0.77, the wrong side of nominal. Encoder offsets are not refitted beside the delay (the replay
applies them outside the simulator): a fit naming one keeps its culprits, unscanned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ast_robot.gap.delay_profile import DelayFit, joint_result, profile_delay, refit_given_delay, scan_delay
from ast_robot.gap.residuals import trajectory_loss
from ast_robot.gap.space import is_offset
from ast_robot.records import EpisodeRecord

FIELD = "command_latency_s"


def deployed_records(real: Sequence[EpisodeRecord]) -> bool:
    """Whether the real records came through the policy node (which adds its own delay), not a replay."""
    return any("command_interface" in r.meta for r in real)


def deployment_offsets(cfg: Any, real: Sequence[EpisodeRecord]) -> dict[str, float]:
    """What the policy node adds on top of the arm, in randomized-parameter units, when the env does not
    model it: a deployment's closed-loop delay (``gap.deployment_latency_steps``). An env that runs the
    node's command path (``env.deploy_pipeline``) already trains with it, so nothing is added."""
    if not deployed_records(real) or cfg.env.deploy_pipeline:
        return {}
    return {"latency": cfg.gap.deployment_latency_steps}


def declared_latencies(real: Sequence[EpisodeRecord]) -> list[float | None] | None:
    """The distinct declared command latencies (s; None: undeclared) of the ``real`` records, smallest first, None
    undeclared as 0; None when a record predates the declaration (schema < 5: it carries none)."""
    if not real or any(r.schema_version < 5 for r in real):
        return None
    values = {r.command_latency_s for r in real}
    return sorted(values, key=lambda v: 0.0 if v is None else v)


@dataclass(frozen=True)
class SubStepLatency:
    """A delay between the fit's whole control steps that alone explains a gap the whole steps leave unexplained,
    or that the whole-step fit explained only with a stand-in (``displaced``), or beside which parameters were
    refitted (``joint``: named at those values; ``displaced``: what the whole-step fit named that it no longer needs)."""

    seconds: float  # the best delay, at the replay's physics-step resolution
    unexplained: float  # share of the nominal loss it leaves above the noise floor (the fit's own measure)
    whole_unexplained: float  # the same of the fit (whole steps)
    displaced: tuple[str, ...] = ()  # parameters the whole-step fit named that this delay alone does without
    resolution_s: float = 0.0  # the scan's resolution: one physics step of the replay
    # parameters refitted beside this delay (the delay profiled: :func:`sub_step_named`) and named at those values
    joint: tuple[str, ...] = ()


def _delay_alone(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any) -> tuple[float, float, float]:
    """(delay in env steps, its loss in rad^2, one physics step in env steps): the delay alone (the rest nominal)
    that best replays ``records`` (:func:`~ast_robot.gap.delay_profile.scan_delay`)."""
    base = dict(zip(sysid.names, sysid.nominal))
    return scan_delay(simulator, sysid, lambda d: trajectory_loss(simulator, {**base, "latency": d}, records))


def _share(sysid: Any, loss: float) -> float:
    """Share of the nominal loss that ``loss`` leaves above the fit's noise floor (the fit's ``unexplained``)."""
    return max(0.0, loss - sysid.floor_rms**2) / sysid.loss_nominal


def sub_step_latency(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any,
                     alone: tuple[float, float, float] | None = None) -> SubStepLatency | None:  # fmt: skip
    """Where the fit (``sysid``, latency in whole env steps) leaves its gap unexplained: the delay (physics-step
    resolution, the rest of the arm and cube nominal) that alone leaves at most ``sysid.max_unexplained`` of the
    nominal loss above its noise floor, else None.

    The envs delay commands by whole control steps, so the fit does too; a real arm's delay falls between them.
    Measured on the UR5e pick twin (2 episodes): 60 ms left 11% unexplained at both 1 and 2 steps (nothing named),
    20 ms left all of it at 0; the cube's parameters cannot stand in for the remainder as the reach fit's actuator
    gain does (:func:`sub_step_standins`). ``simulator``: a :class:`~ast_robot.gap.replay.MujocoReplay` (its
    ``fractional_latency``); ``records``: those the fit replayed; ``alone``: :func:`_delay_alone`'s answer if known."""
    if sysid is None or "latency" not in sysid.names or not sysid.gap_unexplained() or not records:
        return None
    best, loss, step = alone or _delay_alone(simulator, records, sysid)
    share = _share(sysid, loss)
    if share > sysid.max_unexplained:
        return None
    return SubStepLatency(best * simulator.env_dt, share, sysid.unexplained, (), step * simulator.env_dt)


def sub_step_named(simulator: Any, records: Sequence[EpisodeRecord],
                   sysid: Any) -> tuple[SubStepLatency | None, DelayFit | None]:  # fmt: skip
    """Where the whole-step fit (``sysid``) names a parameter besides latency, what a delay between whole steps does
    to it: (the delay, None) when the named parameters are its stand-ins (:func:`without_standins`: none is named);
    (the delay, the joint fit) when they are real beside it (:func:`with_joint_delay`: named at their joint values,
    a named whole-step latency displaced); (None, None) when the whole-step fit stands.

    Stand-ins: the delay alone (the rest nominal) leaves at most ``sysid.max_unexplained`` of the nominal loss above
    the floor, and the named parameters beside it (the joint fit) reduce the loss by no significant amount (partial
    F-test against chi2 with one degree of freedom per parameter, at ``sysid.alpha``). Real beside it: the joint fit
    (:func:`~ast_robot.gap.delay_profile.profile_delay`: the named parameters refitted at each delay of the scan, the
    delay that replays best) leaves at most ``max_unexplained``, its delay is not a whole step, and it improves on the
    whole-step fit significantly (chi2, one degree of freedom: the delay's fraction). Every test against the floor of
    the joint fit's residual, not the whole-step fit's: a gain standing in for a delay leaves a jerky residual that
    the von Neumann noise estimate takes for noise (measured: 4.8 mrad on a 0.5 mrad twin), which would let a delay
    alone pass for a real gain beside it. Measured (UR5e reach twin, 2 episodes of 30 steps, 0.5 mrad noise): a 20 ms
    twin is fitted actuator_gain 0.68 alone by whole steps, the delay alone leaves the loss at the floor (stand-in);
    gain x1.2 beside 20 ms is fitted gain 0.77 by whole steps (the wrong side of nominal), 1.2 beside the profiled
    delay; a real gain alone (x0.8) is fitted exactly and the delay alone leaves 31%: the whole-step fit stands.
    Where several parameters besides latency are named, only the one that best helps the delay-alone optimum
    (:func:`_best_beside`) is refitted beside it; encoder offsets are held at nominal. Measured through ROS (the demo's
    13-parameter fit, twin gain x1.2 and 60 ms): whole steps named latency 1, damping 7.9, gain 0.958 (the wrong
    side), armature, link mass, friction loss and three offsets; gain 1.2 beside 60 ms leaves nothing."""
    named = sysid.culprits()
    # encoder offsets are applied outside the simulator (gap.residuals.Replays): held at nominal, never refitted here
    others = [n for n in named if n != "latency" and not is_offset(n)]
    if not records or "latency" not in sysid.names or not others:
        return None, None
    dt, n = simulator.env_dt, sysid.n_residuals
    best, alone, step = _delay_alone(simulator, records, sysid)
    if len(others) > 1:  # many named (the ROS loop's 13-parameter fit): the one that best helps the delay
        others = [_best_beside(simulator, records, sysid, others, best)]
    joint = profile_delay(simulator, records, sysid, others)
    s2 = max(joint.s2, 1e-300)
    alone_share = max(0.0, alone - joint.s2) / sysid.loss_nominal
    if alone_share <= sysid.max_unexplained and (alone - joint.loss) * n / s2 <= _chi2(sysid.alpha, len(others)):
        return SubStepLatency(best * dt, alone_share, sysid.unexplained, tuple(named), step * dt), None
    share = max(0.0, joint.loss - joint.s2) / sysid.loss_nominal
    whole = abs(joint.delay - round(joint.delay)) < 0.5 * step
    if whole or share > sysid.max_unexplained or (sysid.loss_fit - joint.loss) * n / s2 <= _chi2(sysid.alpha, 1):
        return None, None
    displaced = ("latency",) if "latency" in named else ()
    return SubStepLatency(joint.delay * dt, share, sysid.unexplained, displaced, step * dt, tuple(others)), joint


def sub_step_beside(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any,
                    alone: tuple[float, float, float] | None = None) -> tuple[SubStepLatency | None, DelayFit | None]:  # fmt: skip
    """Where the whole-step fit leaves its gap unexplained: (the delay, the joint fit) of the one parameter that,
    refitted beside a profiled delay between whole steps, explains it and is needed beside it, else (None, None);
    asked before :func:`sub_step_latency` (the delay alone, the line only), since a delay alone may leave less than
    ``max_unexplained`` of the nominal loss while a real gain beside it still removes a significant part of the rest
    (UR5e twin, gain x1.2 and 20 ms, 0.5 mrad noise: the delay alone leaves 0.06%, the gain beside it F = 3900).
    Candidates: the parameters significant in the whole-step fit ("partly compensating", not named), offsets and
    latency aside; the one whose refit at the delay-alone optimum removes the
    most is profiled (:func:`~ast_robot.gap.delay_profile.profile_delay`). Explains: leaves at most
    ``sysid.max_unexplained`` of the nominal loss above the joint fit's floor, at a delay that is not a whole step,
    and the parameter improves on the delay alone significantly (chi2, one degree of freedom). Measured through ROS
    (the demo's 13-parameter fit, twin gain x1.2 and 20 ms): whole steps leave 26% unexplained (joint_damping 8.0 and
    gain 0.96 partly compensating), the delay alone 13% (at 12 ms), gain 1.2 beside 20 ms nothing. ``alone``: as
    :func:`sub_step_latency`'s."""
    candidates = [n for n, sig in zip(sysid.names, sysid.significant) if sig and n != "latency" and not is_offset(n)]
    if not records or "latency" not in sysid.names or not candidates:
        return None, None
    best, alone_loss, step = alone or _delay_alone(simulator, records, sysid)
    pick = _best_beside(simulator, records, sysid, candidates, best)
    joint = profile_delay(simulator, records, sysid, [pick])
    share = max(0.0, joint.loss - joint.s2) / sysid.loss_nominal
    whole = abs(joint.delay - round(joint.delay)) < 0.5 * step
    needed = (alone_loss - joint.loss) * sysid.n_residuals / max(joint.s2, 1e-300) > _chi2(sysid.alpha, 1)
    if whole or share > sysid.max_unexplained or not needed:
        return None, None
    dt = simulator.env_dt
    return SubStepLatency(joint.delay * dt, share, sysid.unexplained, (), step * dt, (pick,)), joint


def _best_beside(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any, candidates: Sequence[str],
                 delay: float) -> str:  # fmt: skip
    """The candidate whose refit alone, the delay held at ``delay`` env steps, replays best (greedy: one parameter
    beside the delay; each further one would cost a profile)."""
    return min(candidates, key=lambda n: refit_given_delay(simulator, records, sysid, [n], delay).loss)


def sub_step_standins(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any) -> SubStepLatency | None:
    """The delay between whole steps whose stand-ins the whole-step fit named (:func:`sub_step_named`), else None."""
    sub, joint = sub_step_named(simulator, records, sysid)
    return sub if joint is None else None


def _chi2(alpha: float, dof: int) -> float:
    from scipy import stats

    return float(stats.chi2.ppf(1.0 - alpha, dof))


def with_joint_delay(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any, sub: SubStepLatency,
                     joint: DelayFit) -> tuple[Any, SubStepLatency]:  # fmt: skip
    """(``sysid`` as the joint fit says it, ``sub`` with what that fit no longer needs among its ``displaced``): see
    :func:`~ast_robot.gap.delay_profile.joint_result`; ``sub.joint`` keeps the parameters still significant."""
    result = joint_result(simulator, records, sysid, joint, sub.unexplained, sub.seconds)
    kept = tuple(n for n in sub.joint if n in result.culprits())
    return result, dataclasses.replace(sub, displaced=result.eliminated, joint=kept)


def without_standins(sysid: Any, sub_step: SubStepLatency) -> Any:
    """``sysid`` with the parameters ``sub_step`` displaced not significant (so neither named nor retuned), kept as
    ``eliminated`` with their fitted values (``full_fit``) and the delay (``sub_step_s``) for the verdict."""
    significant = tuple(s and n not in sub_step.displaced for n, s in zip(sysid.names, sysid.significant))
    return dataclasses.replace(sysid, significant=significant, eliminated=sub_step.displaced, full_fit=sysid.mean,
                               full_loss=sysid.loss_fit, sub_step_s=sub_step.seconds)  # fmt: skip


def sub_step_check(simulator: Any, records: Sequence[EpisodeRecord], sysid: Any,
                   standins: bool = True) -> tuple[Any, SubStepLatency | None]:  # fmt: skip
    """(the fit, the delay between whole steps for the latency line, or None) for both branches: where the fit leaves
    its gap unexplained, with ``standins`` the one parameter a profiled delay needs beside it (:func:`sub_step_beside`,
    :func:`with_joint_delay`), else the delay that alone explains it (:func:`sub_step_latency`, the line only); else, with
    ``standins`` (the reach fit, whose actuator gain can stand in for a delay), the parameters such a delay displaces
    (:func:`sub_step_named`) are no longer named (:func:`without_standins`), or, real beside the delay, are named at
    their values beside it (:func:`with_joint_delay`). ``records``: those the fit replayed."""
    if sysid.gap_unexplained():
        alone = _delay_alone(simulator, records, sysid) if "latency" in sysid.names and records else None
        sub, joint = sub_step_beside(simulator, records, sysid, alone) if standins else (None, None)
        if sub is not None:
            return with_joint_delay(simulator, records, sysid, sub, joint)
        return sysid, sub_step_latency(simulator, records, sysid, alone)
    sub, joint = sub_step_named(simulator, records, sysid) if standins else (None, None)
    if sub is None:
        return sysid, None
    return (without_standins(sysid, sub), sub) if joint is None else with_joint_delay(simulator, records, sysid, sub, joint)


def latency_warning(sysid: Any, real: Sequence[EpisodeRecord], env_dt: float,
                    sub_step: SubStepLatency | None = None) -> str | None:  # fmt: skip
    """One line when the latency the fit names (``sysid``: a SysIdResult with ``latency`` in env control steps of
    ``env_dt`` s), or else the ``sub_step`` delay that alone explains its gap, exceeds every declaration of the
    ``real`` records by more than half a step (the fit's resolution), else None. A ``sub_step`` delay counts from
    its own resolution (one physics step) above the declaration: no latency is named then (an unexplained gap,
    displaced stand-ins, or parameters refitted beside it), so it is the report's only account of the delay (measured through ROS: the demo's reach
    loop against a 20 ms twin, undeclared, leaves 12% unexplained by whole steps; the scan finds 20 ms, half a
    step, leaving nothing)."""
    named = sysid is not None and "latency" in sysid.culprits()
    if not named and sub_step is None:
        return None
    declared = declared_latencies(real)
    if declared is None:
        return None
    if named:
        i = sysid.names.index("latency")
        fitted_s = sysid.mean[i] * env_dt
        lo, hi = sysid.interval(i)
        how = f"latency {sysid.mean[i]:g} control step(s) of {env_dt * 1e3:.0f} ms, 95% interval [{lo:.3g}, {hi:.3g}]"
    else:
        fitted_s = sub_step.seconds
        how = _sub_step_how(sub_step, env_dt)
    most = max(0.0 if v is None else v for v in declared)
    margin = 0.5 * env_dt if named else sub_step.resolution_s
    if fitted_s <= most + margin + 1e-9:
        return None
    said = " / ".join("null (undeclared: the strict filter, as 0)" if v is None else f"{v:g} s" for v in declared)
    return (f"Command latency: the real arm acts on its commands {fitted_s * 1e3:.0f} ms after they are sent ({how}), "
            f"more than the deployment declared to the safety module ({FIELD} {said} in the records): measure it "
            f"(bench/command_latency.py) and set {FIELD} in configs/deploy/{real[0].robot}.yaml; {_consequence(real)}.")  # fmt: skip


def _sub_step_how(sub_step: SubStepLatency, env_dt: float) -> str:
    """How the line found a delay between the whole control steps."""
    if sub_step.joint:
        return (f"between the fit's whole control steps of {env_dt * 1e3:.0f} ms: fitted jointly with "
                f"{', '.join(sub_step.joint)} (named at their values beside it), which leaves {sub_step.unexplained:.1%}"
                f" of the loss unexplained")  # fmt: skip
    if sub_step.displaced:
        return (f"between the fit's whole control steps of {env_dt * 1e3:.0f} ms: this delay alone replays the arm as "
                f"well as the whole-step fit, which named {', '.join(sub_step.displaced)} as its stand-in (not named), "
                f"and leaves {sub_step.unexplained:.1%} of the loss unexplained")  # fmt: skip
    return (f"between the fit's whole control steps of {env_dt * 1e3:.0f} ms, which leave {sub_step.whole_unexplained:.0%}"
            f" of the loss unexplained: this delay alone leaves {sub_step.unexplained:.1%}")  # fmt: skip


def _consequence(real: Sequence[EpisodeRecord]) -> str:
    """What the too-small declaration does to the deployment the records came through (their command interface)."""
    if all(r.meta.get("command_interface") == "trajectory" for r in real):
        return ("through trajectory segments the filter leads by no latency, so nothing is slowed now; a forward "
                "position deployment of this arm would be slowed")  # safety.arm.servo_lag: None for trajectory segments
    return "until then the safety filter slows the arm's free motion (it leads a following joint by the declared delay only)"

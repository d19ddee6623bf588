"""The verdict a person reads first: a few sentences answering, in order, is there a significant gap,
what explains it (parameters with their evidence), what remains unexplained, and what was retuned and
what was kept. The report (Markdown, HTML) and the CLI open with these sentences.
"""

from __future__ import annotations

from collections.abc import Mapping

from ast_robot.gap.analyzer import GapReport


def _p(p: float) -> str:
    return "p < 1e-6" if p < 1e-6 else f"p = {p:.2g}"


def success_sentence(report: GapReport) -> str:
    s = report.success
    g = s.gap
    head = (f"Success: {s.sim.value:.0%} in simulation (n={s.n_sim}) against {s.real.value:.0%} on the real robot "
            f"(n={s.n_real}); the gap is {g.value * 100:+.0f} points, 95% interval [{g.low * 100:+.0f}, {g.high * 100:+.0f}]")  # fmt: skip
    if g.low > 0:
        return head + ": a significant gap (the real robot does worse)."
    if g.high < 0:
        return head + ": the real robot does significantly better than simulation."
    return head + ": not significant (the interval contains 0)."


def physics_sentences(sysid) -> list[str]:
    """What the joint trajectories say: gap or not, culprits with evidence, the unexplained residual."""
    floor = f"noise floor {sysid.floor_rms:.2g} rad RMS (sensor noise {sysid.noise_rms:.2g} rad)"
    # a left-out episode may be the gap itself (a robot that stops where the sim does not): always said
    left = ([f"Left out of the fit: {len(sysid.left_out)} real episode(s) that cannot be replayed: "
             + "; ".join(sysid.left_out) + "."] if sysid.left_out else [])  # fmt: skip
    if not sysid.trajectory_gap():
        return [f"Trajectories: the nominal simulator replays the {sysid.n_episodes} real episodes within the {floor} "
                f"({_p(sysid.gap_pvalue)}): no physical gap is detected, and no parameter is named.", *left]  # fmt: skip
    out = [f"Trajectories: the nominal simulator's replay differs from the real joints beyond the {floor} "
           f"(mean squared error {sysid.loss_nominal:.3g} rad^2, {_p(sysid.gap_pvalue)}).", *left]  # fmt: skip
    if sysid.widened:
        boxes = ", ".join(f"{n} [{sysid.search_low[sysid.names.index(n)]:.4g}, {sysid.search_high[sysid.names.index(n)]:.4g}]"
                          for n in sysid.widened)  # fmt: skip
        out.append(f"The first fit pointed past the searched range, so it was widened and refitted ({sysid.widen_seconds:.0f} s "
                   f"of the fit's {sysid.seconds:.0f} s): {boxes}.")  # fmt: skip
    named = sysid.culprits()
    partial = [n for n, sig in zip(sysid.names, sysid.significant) if sig and n not in named]
    if named:
        out.append("Explained by: " + "; ".join(_evidence(sysid, n) for n in named) + ".")
    elif not partial and not getattr(sysid, "sub_step_s", 0.0):
        out.append("No randomized parameter reduces the nominal loss significantly: none is named.")
    if named and getattr(sysid, "sub_step_s", 0.0):
        out.append(_beside_delay(sysid, named))
    elif getattr(sysid, "eliminated", ()):
        out.append(_eliminated(sysid))
    if sysid.gap_unexplained():
        out.append(f"Unexplained: the best fit over the randomized parameters still leaves {sysid.unexplained:.0%} of "
                   f"the nominal loss above the noise floor ({_p(sysid.residual_pvalue)}): the gap is NOT explained "
                   f"by the randomized parameters; its cause lies outside them (e.g. a sensor offset, friction, "
                   f"contact or the deployment pipeline). No culprit is named.")  # fmt: skip
        if partial:
            out.append("Partly compensating, not named (their fitted values would stand in for the missing cause): "
                       + ", ".join(f"{n} ({sysid.attribution[sysid.names.index(n)]:.0%})" for n in partial) + ".")  # fmt: skip
    else:
        out.append(f"Unexplained residual: {sysid.unexplained:.1%} of the nominal loss remains above the noise floor "
                   f"after the fit ({_p(sysid.residual_pvalue)}).")  # fmt: skip
    return out


def _evidence(sysid, name: str) -> str:
    i = sysid.names.index(name)
    lo, hi = sysid.interval(i)
    covered = sysid.prior_low[i] <= sysid.mean[i] <= sysid.prior_high[i]
    edge = sysid.search_edge(i)
    pinned = ""
    if edge:
        where = ("its physical limit" if sysid.at_limit and sysid.at_limit[i] else
                 "after widening it" if name in sysid.widened else "widen gap.search_expansion to see")  # fmt: skip
        pinned = (f", AT THE {edge.upper()} of the searched range [{sysid.search_low[i]:.4g}, {sysid.search_high[i]:.4g}] "
                  f"({where}): a bound, not an estimate (the true value may lie beyond it, or another cause is being "
                  f"stood in for)")  # fmt: skip
    return (f"{name} = {sysid.mean[i]:.4g} (95% interval [{lo:.4g}, {hi:.4g}], nominal {sysid.nominal[i]:.4g}) "
            f"removes {sysid.attribution[i]:.1%} of the nominal trajectory loss alone" + _jointly(sysid, i)
            + f" (F-test {_p(sysid.pvalue[i])})" + (", a value the training range already covers" if covered else "") + pinned)  # fmt: skip


def _eliminated(sysid) -> str:
    """What the full fit had that the reduced model dropped, and what keeping it would have removed."""
    values = ", ".join(f"{n} {sysid.full_fit[sysid.names.index(n)]:.4g}" for n in sysid.eliminated)
    if getattr(sysid, "sub_step_s", 0.0):  # gap.latency.sub_step_standins: the delay the envs cannot sample
        return (f"Not named: {', '.join(sysid.eliminated)}: significant in the whole-step fit ({values}), but a "
                f"command delay of {sysid.sub_step_s * 1e3:.0f} ms between the fit's whole control steps, alone, "
                f"replays the arm as well: stand-ins for that delay (see the Command latency line; nothing is "
                f"retuned from it: the envs delay commands by whole steps).")  # fmt: skip
    gain = (sysid.loss_fit - sysid.full_loss) / sysid.loss_nominal if sysid.loss_nominal > 0 else 0.0
    return (f"Not named: {', '.join(sysid.eliminated)}: significant in the full fit ({values}), but the others "
            f"refitted without them explain the replay within the minimum share (keeping them would remove a further "
            f"{gain:.1%} of the nominal loss): a stand-in, or a cause these episodes cannot tell apart.")  # fmt: skip


def _beside_delay(sysid, named: tuple[str, ...]) -> str:
    """The named parameters refitted beside a delay between whole steps (gap.latency.with_joint_delay)."""
    moved = ", ".join(f"{n} {sysid.full_fit[sysid.names.index(n)]:.4g} -> {sysid.mean[sysid.names.index(n)]:.4g}"
                      for n in named)  # fmt: skip
    out = (f"Fitted beside a command delay of {sysid.sub_step_s * 1e3:.0f} ms between the fit's whole control steps "
           f"(the delay profiled at the replay's physics steps; whole steps leave the named values biased): {moved}")  # fmt: skip
    if sysid.eliminated:
        whole = ", ".join(f"{n} {sysid.full_fit[sysid.names.index(n)]:.4g}" for n in sysid.eliminated)
        out += f". Not named: {', '.join(sysid.eliminated)} (whole-step fit: {whole}), not needed beside the delay"
    return (out + ". The delay itself is neither named nor retuned (the envs delay commands by whole steps): see the "
            "Command latency line.")  # fmt: skip


def _jointly(sysid, i: int) -> str:
    """For a cause that acts only with others: what it removes given their fit."""
    if not (hasattr(sysid, "jointly") and sysid.jointly(i)):
        return ""
    if getattr(sysid, "sub_step_s", 0.0):  # refitted beside a delay between whole steps: that is its "others"
        return (f" but {sysid.conditional[i]:.1%} beside the {sysid.sub_step_s * 1e3:.0f} ms command delay (it "
                f"explains the gap only with it)")  # fmt: skip
    return (f" but {sysid.conditional[i]:.1%} given the others' fit (it explains the gap only jointly with "
            f"them)")  # fmt: skip


def retune_sentence(report: GapReport, retuned: Mapping[str, tuple[float, float]] | None) -> str:
    if report.sysid is None and not retuned:
        return f"Nothing retuned: system identification {report.provenance.get('sysid', 'did not run')}."
    fitted = report.sysid.names if report.sysid is not None else ()
    kept = [n for n in fitted if not retuned or n not in retuned]
    kept_text = f"Kept exactly as they were: {', '.join(kept)}." if kept else "No fitted range was kept."
    if not retuned:
        why = report.provenance.get("retune", "")
        return f"Nothing retuned ({why or 'no significant parameter'}). {kept_text}"
    parts = []
    for n, (lo, hi) in retuned.items():
        if n.startswith("visual."):  # pick-and-place: a look range widened to cover the fitted look
            parts.append(f"randomization.{n} to [{lo:.4g}, {hi:.4g}] (covers the fitted look)")
            continue
        if n not in fitted:  # joint_noise: measured from the residual, not fitted
            parts.append(f"{n} to [{lo:.4g}, {hi:.4g}] (the joint noise measured in the replay residual)")
            continue
        i = report.sysid.names.index(n)
        bound = (f"; the fit is a bound at the {report.sysid.search_edge(i)} of its searched range: the range is "
                 f"extended to it, not collapsed onto it") if report.sysid.search_edge(i) else ""  # fmt: skip
        parts.append(f"{n} to [{lo:.4g}, {hi:.4g}] (was [{report.sysid.prior_low[i]:.4g}, {report.sysid.prior_high[i]:.4g}]{bound})")
    return f"Retuned: {'; '.join(parts)}. {kept_text}"


def verdict(report: GapReport, retuned: Mapping[str, tuple[float, float]] | None = None) -> list[str]:
    """The opening sentences of the report, in reading order."""
    lines = [success_sentence(report)]
    if report.sysid is not None:
        lines += physics_sentences(report.sysid)
    lines += report.warnings
    if report.task == "pickplace":
        from ast_robot.gap.pick import visual_sentences

        lines += visual_sentences(report.visual, report.provenance.get("visual", ""))
        ranked = report.culprits()
        lines.append("Culprits, most explaining first: " + ", ".join(ranked) + "." if ranked else "No culprit is named.")
    lines.append(retune_sentence(report, retuned))
    return lines

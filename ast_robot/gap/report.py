"""The gap report: HTML and Markdown with the plots, plus machine-readable JSON beside them.

``write_report(folder, ...)`` writes into an existing folder; the caller (``ast_robot.gap.pipeline``)
gives it a temporary folder and renames it into place, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.fileio import atomic_write_json, atomic_write_text
from ast_robot.gap import plots
from ast_robot.gap.analyzer import GapReport
from ast_robot.gap.stats import holm_adjust
from ast_robot.gap.verdict import verdict
from ast_robot.records import EpisodeRecord

Table = tuple[str, list[str], list[list[str]]]  # (title, header, rows)


@dataclass(frozen=True)
class Overlay:
    """One real episode's measured joints and its replays, all (T+1, J), for the trajectory plot."""

    real: np.ndarray
    nominal: np.ndarray
    fitted: np.ndarray
    dt: float


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


def tables(report: GapReport, retuned: Mapping[str, tuple[float, float]] | None) -> list[Table]:
    """Every table of the report, rendered the same way to HTML and Markdown."""
    s = report.success
    out: list[Table] = [("Success rate", ["", "rate", "interval", "episodes"], [
        ["sim", _pct(s.sim.value), f"[{_pct(s.sim.low)}, {_pct(s.sim.high)}]", str(s.n_sim)],
        ["real", _pct(s.real.value), f"[{_pct(s.real.low)}, {_pct(s.real.high)}]", str(s.n_real)],
        ["gap (sim - real)", f"{s.gap.value:+.1%}", f"[{s.gap.low:+.1%}, {s.gap.high:+.1%}] (Newcombe)", ""],
    ])]  # fmt: skip
    out.append(_distribution_table(report))
    c = report.classifier
    out.append(("Sim-vs-real classifier (held-out folds)", ["balanced accuracy", "folds", "note"],
                [[_num(c.balanced_accuracy), str(c.folds), c.note or "0.5 means indistinguishable"]]))  # fmt: skip
    if report.sysid is not None:
        out.append(_sysid_table(report.sysid, retuned))
    if report.weights is not None:
        w = report.weights
        out.append(("Physical-feedback weights", ["parameter", "centre", "scale"],
                    [[n, f"{c:.4g}", f"{sc:.3g}"] for n, c, sc in zip(w.names, w.centre, w.scale)]))  # fmt: skip
    if report.provenance:
        out.append(("Provenance", ["", ""], [[k, str(v)] for k, v in report.provenance.items()]))
    return out


def _sysid_table(r, retuned: Mapping[str, tuple[float, float]] | None) -> Table:
    """One row per fitted parameter: fit with its bounded 95% interval, share of the nominal loss, test."""
    rows = []
    for n in r.ranking:
        i = r.names.index(n)
        lo, hi = r.interval(i)
        sig = r.significant[i] if r.significant else False
        rows.append([n, f"{r.nominal[i]:.4g}", f"[{r.prior_low[i]:.4g}, {r.prior_high[i]:.4g}]",
                     f"{r.mean[i]:.4g} [{lo:.4g}, {hi:.4g}]", f"{r.attribution[i]:+.1%}",
                     _num(r.pvalue[i]) if r.pvalue else "-", "yes" if sig else "no",
                     f"[{retuned[n][0]:.4g}, {retuned[n][1]:.4g}]" if retuned and n in retuned else "kept"])  # fmt: skip
    rows += [[n, "", "", "not identifiable from these episodes", "-", "-", "-", "kept"] for n in r.unobservable]
    rows.append(["(unexplained residual)", "", "", f"fit MSE {r.loss_fit:.3g} rad^2", f"{r.unexplained:.1%}",
                 _num(r.residual_pvalue), "yes" if r.gap_unexplained() else "no", ""])  # fmt: skip
    title = (f"System identification ({r.n_episodes} real episodes; trajectory MSE nominal {r.loss_nominal:.3g} -> "
             f"fit {r.loss_fit:.3g} rad^2; noise floor {r.floor_rms:.2g} rad RMS)")  # fmt: skip
    header = ["parameter", "nominal", "training range", "fit [95% interval, within bounds]",
              "explains (share of nominal loss, alone)", "F-test p (Bonferroni)", "significant", "retuned range"]  # fmt: skip
    return title, header, rows


def _distribution_table(report: GapReport) -> Table:
    """Per-metric gaps; p-values are Holm-adjusted over the metrics (one family per test)."""
    ks_p = holm_adjust([m.ks_pvalue for m in report.metrics])
    w_p = holm_adjust([m.wasserstein_pvalue for m in report.metrics])
    rows = [[m.metric, _num(m.sim_mean), _num(m.real_mean), _num(m.ks_statistic), _num(ks_p[i]),
             "-" if m.wasserstein is None else f"{m.wasserstein.value:.4g} [{m.wasserstein.low:.4g}, {m.wasserstein.high:.4g}]",
             _num(w_p[i]), m.note] for i, m in enumerate(report.metrics)]  # fmt: skip
    header = ["metric", "sim mean", "real mean", "KS D", "KS p (Holm)", "Wasserstein [basic bootstrap CI]",
              "W permutation p (Holm)", "note"]  # fmt: skip
    return "Distribution gaps", header, rows


def _markdown(title: str, verdict: list[str], tabs: list[Table], figures: list[tuple[Path, str]]) -> str:
    lines = [f"# {title}", "", "## Verdict", ""] + [f"- {v}" for v in verdict] + [""]
    for name, header, rows in tabs:
        lines += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    lines += ["## Figures", ""]
    for k, (f, caption) in enumerate(figures, 1):
        lines += [f"![{f.stem}]({f.name})", "", f"*Figure {k}. {caption}*", ""]
    return "\n".join(lines) + "\n"


def _html(title: str, verdict: list[str], tabs: list[Table], figures: list[tuple[Path, str]]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%}"
             "figure{margin:1.5em 0}figcaption{font-size:0.9em;color:#333}.verdict{background:#f4f6f8;padding:0.5em 1em}"
             f"</style></head><body><h1>{e(title)}</h1><h2>Verdict</h2><div class='verdict'>"]  # fmt: skip
    parts += [f"<p>{e(v)}</p>" for v in verdict] + ["</div>"]
    for name, header, rows in tabs:
        parts.append(f"<h2>{e(name)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    parts.append("<h2>Figures</h2>")
    parts += [f"<figure><img src='{e(f.name)}' alt='{e(f.stem)}'><figcaption>Figure {k}. {e(c)}</figcaption></figure>"
              for k, (f, c) in enumerate(figures, 1)]  # fmt: skip
    return "".join(parts) + "</body></html>\n"


CAPTIONS = {
    "success": "Success rate in simulation and on the real robot with 95% Wilson intervals; the title gives the gap "
               "(sim - real) with Newcombe's 95% interval.",
    "metrics": "Distribution of each episode metric, simulation against the real robot (fraction of episodes per bin).",
    "attribution": "Share of the nominal simulator's trajectory loss each parameter removes when moved alone from its "
                   "nominal value to its fit (absolute scale: bars need not sum to 100%). Green: significant against "
                   "the replay noise floor (partial F-test, Bonferroni); grey: not significant. The last bar is what "
                   "the best fit leaves above the floor (red when significant and above gap.max_unexplained_share).",
    "posterior": "Per fitted parameter: training range (grey bar), fit with its 95% least-squares interval kept "
                 "within the parameter's physical and data-sheet bounds (green), retuned range (light green; only "
                 "retuned parameters), nominal value (dotted line).",
    "trajectories": "One real episode's joint positions (red) against its replay in simulation at the nominal "
                    "(blue, dashed) and fitted (green, dash-dot) parameters.",
}  # fmt: skip


def write_report(folder: str | Path, report: GapReport, sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord],
                 retuned: Mapping[str, tuple[float, float]] | None = None, overlay: Overlay | None = None) -> Path:  # fmt: skip
    """Write figures, report.html, report.md, gap.json and weights.json into ``folder``; returns the HTML path."""
    folder = Path(folder)
    figures = [
        plots.success_plot(report, folder / "success.png"),
        plots.metrics_plot(sim, real, folder / "metrics.png"),
    ]
    if report.sysid is not None:
        figures.append(plots.attribution_plot(report.sysid, folder / "attribution.png"))
        figures.append(plots.posterior_plot(report.sysid, folder / "posterior.png", retuned))
    if overlay is not None:
        figures.append(
            plots.overlay_plot(
                overlay.real, overlay.nominal, overlay.fitted, overlay.dt, folder / "trajectories.png"
            )
        )
    captioned = [(f, CAPTIONS[f.stem]) for f in figures]
    title = f"Reality gap: {report.robot} {report.task}"
    tabs = tables(report, retuned)
    lines = verdict(report, retuned)
    atomic_write_json(folder / "gap.json", {**report.to_dict(), "retuned": retuned or {}, "verdict": lines})
    if report.weights is not None:
        atomic_write_json(folder / "weights.json", report.weights.to_dict())
    atomic_write_text(folder / "report.md", _markdown(title, lines, tabs, captioned))
    return atomic_write_text(folder / "report.html", _html(title, lines, tabs, captioned))

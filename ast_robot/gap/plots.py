"""The report's figures (matplotlib, headless Agg backend); each function writes one PNG and returns its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ast_robot.gap.analyzer import GapReport
from ast_robot.gap.features import METRICS, metric_values
from ast_robot.records import EpisodeRecord

SIM_COLOUR, REAL_COLOUR, FIT_COLOUR = "#3b75af", "#d1495b", "#2a9d55"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def success_plot(report: GapReport, path: Path) -> Path:
    """Sim and real success rates with their Wilson intervals."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    rates = [report.success.sim, report.success.real]
    for i, (iv, colour) in enumerate(zip(rates, (SIM_COLOUR, REAL_COLOUR))):
        ax.bar(i, iv.value, color=colour, width=0.6)
        ax.errorbar(i, iv.value, yerr=[[max(0.0, iv.value - iv.low)], [max(0.0, iv.high - iv.value)]], color="k", capsize=6)
        ax.text(i, min(iv.high + 0.03, 1.02), f"{iv.value:.0%}", ha="center")
    ax.set_xticks([0, 1], [f"sim (n={report.success.n_sim})", f"real (n={report.success.n_real})"])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("success rate")
    g = report.success.gap
    ax.set_title(f"gap {g.value:+.0%} [{g.low:+.0%}, {g.high:+.0%}]", fontsize=10)
    return _save(fig, path)


def metrics_plot(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord], path: Path) -> Path:
    """Histograms of each compared metric, sim against real."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 2.8))
    for ax, (metric, unit) in zip(axes, METRICS.items()):
        s, r = metric_values(sim, metric), metric_values(real, metric)
        both = np.r_[s, r]
        if both.size == 0:
            ax.text(0.5, 0.5, "no values", ha="center", transform=ax.transAxes)
        else:
            lo, hi = both.min(), both.max()
            pad = max(0.05 * abs(lo), 1e-3) if hi - lo < 1e-9 else 0.0  # a constant metric gets a visible bin
            bins = np.linspace(lo - pad, hi + pad, 20)
            for values, colour, label in ((s, SIM_COLOUR, "sim"), (r, REAL_COLOUR, "real")):
                if values.size:  # fractions, not densities: comparable for any sample size and bin width
                    ax.hist(values, bins=bins, weights=np.full(values.size, 1.0 / values.size), alpha=0.6,
                            color=colour, label=label)  # fmt: skip
        ax.set_xlabel(f"{metric} ({unit})")
    axes[0].set_ylabel("fraction of episodes")
    axes[0].legend()
    return _save(fig, path)


def attribution_plot(sysid, path: Path) -> Path:
    """Share of the nominal model's loss each parameter removes alone (absolute scale), coloured by
    significance, and the unexplained residual the best fit leaves above the noise floor."""
    plt = _plt()
    names = list(sysid.ranking)[::-1]
    idx = [sysid.names.index(n) for n in names]
    shares = [sysid.attribution[i] for i in idx] + [sysid.unexplained]
    sig = [bool(sysid.significant[i]) if sysid.significant else False for i in idx]
    colours = [FIT_COLOUR if s else "#aaaaaa" for s in sig]
    colours.append(REAL_COLOUR if sysid.gap_unexplained() else "#dddddd")
    fig, ax = plt.subplots(figsize=(5.5, 0.45 * len(shares) + 1.3))
    ax.barh(names + ["unexplained residual"], shares, color=colours)
    ax.set_xlim(min(0.0, min(shares) * 1.1), 1.0)
    ax.axvline(0.0, color="k", lw=0.6)
    ax.set_xlabel("share of the nominal trajectory loss")
    return _save(fig, path)


def posterior_plot(sysid, path: Path, retuned: Mapping[str, tuple[float, float]] | None = None) -> Path:
    """Per parameter: prior (training) range, fitted value with its 95% interval inside the physical
    bounds (never past a floor such as 0 kg), and the retuned range."""
    plt = _plt()
    n = len(sysid.names)
    fig, axes = plt.subplots(n, 1, figsize=(6, 1.0 * n + 0.8), squeeze=False)
    for ax, i in zip(axes[:, 0], range(n)):
        name, lo, hi = sysid.names[i], sysid.prior_low[i], sysid.prior_high[i]
        ax.barh(0, hi - lo, left=lo, height=0.5, color="#bbbbbb", label="training range")
        if retuned and name in retuned:
            rlo, rhi = retuned[name]
            ax.barh(-0.5, rhi - rlo, left=rlo, height=0.3, color=FIT_COLOUR, alpha=0.5, label="retuned range")
        m = sysid.mean[i]
        clo, chi = sysid.interval(i)
        ax.errorbar(m, 0, xerr=[[max(0.0, m - clo)], [max(0.0, chi - m)]], fmt="o", color=FIT_COLOUR, capsize=5,
                    label="fit, 95% interval")  # fmt: skip
        ax.axvline(sysid.nominal[i], color="k", lw=0.8, ls=":", label="nominal")
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
    axes[0, 0].legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return _save(fig, path)


def overlay_plot(real: np.ndarray, nominal: np.ndarray, fitted: np.ndarray, dt: float, path: Path) -> Path:
    """Measured joint trajectories of one real episode against their replay at nominal and fitted parameters."""
    plt = _plt()
    t = np.arange(real.shape[0]) * dt
    j = real.shape[1]
    cols = min(3, j)
    rows = int(np.ceil(j / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.3 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= j:
            ax.axis("off")
            continue
        ax.plot(t, real[:, k], color=REAL_COLOUR, lw=2, label="real")
        ax.plot(t, nominal[:, k], color=SIM_COLOUR, ls="--", label="sim, nominal")
        ax.plot(t, fitted[:, k], color=FIT_COLOUR, ls="-.", label="sim, fitted")
        ax.set_title(f"joint {k}", fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("position (rad)")
    axes[0, 0].legend(fontsize=7)
    return _save(fig, path)

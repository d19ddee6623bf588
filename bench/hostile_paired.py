"""Paired hostile-driver runs of two or more node versions, side by side: per run and per version.

bench/hostile_driver.py measures one node; on a shared machine one run's timing tails say more about the load
than about the code. This collects runs made alternately at the same induced load (each with --out DIR, and
--node-probe / --dump for the split of each stop's delay: bench/node_probe_report.py --json DIR/report.json) and
compares, per version: the stop-hold delays (max and median of each run), flood cycles, commands beyond the step
bound, the node's CPU per control tick (its executor thread) and, pooled over the runs, each stop's delay in its
parts (the stopping side, transport, the node's queue, the callback).

    python bench/hostile_paired.py --run old=/tmp/p/old1,/tmp/p/old2 --run new=/tmp/p/new1,/tmp/p/new2 \\
        --baseline old --out bench/results --name hostile_paired
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

FUZZ = {"e-stop max (ms)": "e-stop hold delay max (ms)", "e-stop p50 (ms)": "e-stop hold delay p50 (ms)",
        "protective max (ms)": "protective stop hold delay max (ms)",
        "protective p50 (ms)": "protective stop hold delay p50 (ms)"}  # fmt: skip
PARTS = ("bench hold delay (us)", "bench -> DDS source (us)", "transport (us)", "node queue (us)", "node callback (us)",
         "node callback to the publish call (us)")  # fmt: skip


def run_row(label: str, folder: Path) -> dict[str, Any]:
    """One run's figures from its hostile_driver.json (and report.json where the node was probed)."""
    result = json.loads((folder / "hostile_driver.json").read_text())
    m = {(r["phase"], r["metric"]): r["value"] for r in result["rows"]}
    flood = "flood: 1500 Hz NaN + 500 Hz valid"
    beyond = next(g["measured"] for g in result["goals"] if g["name"].startswith("commands beyond the step bound")
                  or g["name"] == "commands beyond the per-tick step bound")  # fmt: skip
    row = {"version": label, "run": f"{folder.parent.name}/{folder.name}", "load (start, after fuzz, end)": _load(result["notes"]),
           **{k: m.get(("fuzz", v)) for k, v in FUZZ.items()},
           "flood cycles": round(m[(flood, "cycles_ratio")], 4), "beyond the step bound": beyond}  # fmt: skip
    report = folder / "report.json"
    if report.exists():
        phases = json.loads(report.read_text())["phases_us"]
        cpu = phases.get("tick CPU (executor thread)") or {}
        row["tick CPU mean (us)"] = cpu.get("mean")
        row["kind publish p50 (us)"] = (phases.get("kind publish") or {}).get("p50")
    return row


def _load(notes: str) -> list[float]:
    return json.loads(notes.split("at start / after fuzz / at end: ")[1].split("]")[0] + "]")


def pooled_parts(folders: list[Path]) -> dict[str, dict[str, float]]:
    """Each stop's delay parts over all runs of a version (ms: p50 / p90 / p99 / max)."""
    stops = []
    for folder in folders:
        report = folder / "report.json"
        if report.exists():
            stops += [s for s in json.loads(report.read_text()).get("stops", []) if "node queue (us)" in s]
    out = {"stops pooled": len(stops)}
    for part in PARTS:
        v = np.array([s[part] for s in stops], dtype=float) / 1e3
        if len(v):
            q = np.percentile(v, [50, 90, 99, 100])
            out[part.replace("(us)", "p50 / p90 / p99 / max (ms)")] = " / ".join(f"{x:.3g}" for x in q)
    return out


def summary(label: str, rows: list[dict]) -> dict[str, Any]:
    """Median, min and max over a version's runs of each per-run figure."""
    out: dict[str, Any] = {"version": label, "runs": len(rows)}
    for key in (*FUZZ, "flood cycles", "tick CPU mean (us)"):
        v = [r[key] for r in rows if r.get(key) is not None]
        if v:
            out[key] = f"{np.median(v):.3g} ({min(v):.3g}-{max(v):.3g})"
            out[f"_{key}"] = (float(np.median(v)), float(min(v)), float(max(v)))
    out["beyond the step bound (all runs)"] = sum(r["beyond the step bound"] or 0 for r in rows)
    loads = [x for r in rows for x in r["load (start, after fuzz, end)"]]
    out["load"] = f"{min(loads):.1f}-{max(loads):.1f}"
    return out


def goals_against(baseline: dict, other: dict) -> list[dict]:
    """A version is no slower than the baseline when the median over its runs lies within the baseline's spread
    (at most the baseline's largest run), and keeps 0 commands beyond the step bound."""
    v = other["version"]
    out = []
    for key in ("e-stop max (ms)", "e-stop p50 (ms)", "protective max (ms)", "tick CPU mean (us)"):
        if f"_{key}" in other and f"_{key}" in baseline:
            out.append(goal(f"{v}: {key}, median over runs, within {baseline['version']}'s spread",
                            baseline[f"_{key}"][2], round(other[f"_{key}"][0], 3), "<="))  # fmt: skip
    out.append(goal(f"{v}: commands beyond the step bound of their kind (all runs)", 0,
                    other["beyond the step bound (all runs)"], "<="))  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True, help="VERSION=DIR[,DIR...]: that version's runs")
    parser.add_argument("--baseline", required=True, help="the version the others are held to")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument("--name", default="hostile_paired")
    parser.add_argument("--note", default="", help="how the runs were made (load, order), for the notes")
    args = parser.parse_args()
    versions = {}
    for spec in args.run:
        label, _, dirs = spec.partition("=")
        versions[label] = [Path(d) for d in dirs.split(",") if d]
    if args.baseline not in versions:
        raise SystemExit(f"--baseline {args.baseline!r}: not one of the --run versions {list(versions)}")
    per_run = {label: [run_row(label, f) for f in folders] for label, folders in versions.items()}
    sums = {label: summary(label, rows) for label, rows in per_run.items()}
    rows = [{"table": "run", **r} for rs in per_run.values() for r in rs]
    rows += [{"table": "version (median, min-max over runs)", **{k: v for k, v in s.items() if not k.startswith("_")},
              **pooled_parts(versions[label])} for label, s in sums.items()]  # fmt: skip
    goals = [g for label, s in sums.items() if label != args.baseline for g in goals_against(sums[args.baseline], s)]
    notes = (f"{args.note} Stop parts (bench/node_probe.py): the bench's decision -> the DDS source stamp of its stop "
             "message, -> its reception in the node's process, -> the node's callback entry (the node's queue: "
             "the executor busy in a tick, or waiting for a core), -> the hold's stamp (the callback).")  # fmt: skip
    write_results(args.name, rows, goals, notes=notes.strip(), out_dir=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

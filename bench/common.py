"""Shared helpers of the benchmarks: machine description and the JSON + Markdown result files.

Every benchmark writes `bench/results/<name>.json` holding `machine`, `date`, `command`, `rows` and
`goals` (each `{"name", "target", "measured", "met"}` with `met` computed here from `measured`), and a
Markdown summary beside it.
"""

from __future__ import annotations

import operator
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, load, GPU (if any) and library versions of this run."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu": _cpu_model(), "cores": os.cpu_count(), "loadavg_1min": os.getloadavg()[0]}  # fmt: skip
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def goal(name: str, target: float, measured: float | None, op: str = ">=") -> dict[str, Any]:
    """One goal; ``met`` is computed from ``measured`` (None when it could not be measured)."""
    met = None if measured is None else bool(_OPS[op](measured, target))
    return {"name": name, "target": f"{op} {target}", "measured": measured, "met": met}


def write_results(name: str, rows: list[dict[str, Any]], goals: list[dict[str, Any]],
                  notes: str = "", out_dir: Path | None = None, machine_info: dict | None = None) -> Path:  # fmt: skip
    """Write `<name>.json` and `<name>.md` atomically; returns the JSON path.

    ``machine_info`` replaces this machine's description when the rows were measured elsewhere (a merge)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ast_robot.fileio import atomic_write_json, atomic_write_text

    out_dir = out_dir or RESULTS
    result = {"name": name, "machine": machine_info or machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "rows": rows, "goals": goals,
              "notes": notes}  # fmt: skip
    path = atomic_write_json(out_dir / f"{name}.json", result)
    atomic_write_text(out_dir / f"{name}.md", to_markdown(result))
    return path


def to_markdown(result: dict[str, Any]) -> str:
    lines = [f"# {result['name']}", "", f"- date: {result['date']}", f"- command: `{result['command']}`",
             f"- machine: {result['machine']}", ""]  # fmt: skip
    if result["goals"]:
        lines += ["## Goals", "", "| goal | target | measured | met |", "|---|---|---|---|"]
        lines += [f"| {g['name']} | {g['target']} | {_fmt(g['measured'])} | {g['met']} |" for g in result["goals"]]
        lines.append("")
    rows = result["rows"]
    if rows:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        lines += ["## Measurements", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(_fmt(row.get(k)) for k in keys) + " |" for row in rows]
    if result.get("notes"):
        lines += ["", "## Notes", "", result["notes"]]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

"""The reach fit against twins whose command delay lies between the control steps, alone and beside a real actuator
gain (issue 21): what the report names, the latency line, and the wall-clock of the fit and of the sub-step check.

Each case: a UR5e twin with hidden parameters (they build the case only; the analyzer never reads them) driven
without ROS by smooth random joint targets (``tests/gap/helpers.twin_records``: 2 episodes of 30 steps at 25 Hz,
0.5 mrad joint noise, records undeclared), fitted by the reach pipeline's own steps (``run_sysid`` with actuator gain
and latency randomized, then ``_sub_step_check`` and ``latency_warning``), as ``ast-robot gap-report`` runs them.
Goals: every case names what it should, on the right side of nominal (a gain within 10% of the twin's), and gets the
latency line where its delay is not a whole step.

    .venv/bin/python bench/gap_reach_substep.py --seeds 0 1 --name gap_reach_substep
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

EXPERIMENT = """\
name: reachsubstep
env: {id: ast_robot/ReachUR5e-v0}
randomization:
  params:
    actuator_gain: {dist: uniform, low: 0.9, high: 1.1}
    latency: {dist: uniform, low: 0.0, high: 0.49}
gap: {cem_iterations: 4, cem_population: 16, polish_evaluations: 20}
"""
NOISE = {"joint_noise_rad": 0.0005}
# name: (hidden twin parameters, the gain it should name or None, whether the latency line is expected,
#        whether whole-step latency should be named)
CASES = {
    "gain 0.8 + 20 ms": ({"gain_scale": 0.8, "latency_s": 0.02}, 0.8, True, False),
    "gain 1.2 + 20 ms": ({"gain_scale": 1.2, "latency_s": 0.02}, 1.2, True, False),
    "gain 1.2 + 60 ms": ({"gain_scale": 1.2, "latency_s": 0.06}, 1.2, True, False),
    "10 ms": ({"latency_s": 0.01}, None, True, False),
    "20 ms": ({"latency_s": 0.02}, None, True, False),
    "30 ms": ({"latency_s": 0.03}, None, True, False),
    "60 ms": ({"latency_s": 0.06}, None, True, False),
    "gain 0.6": ({"gain_scale": 0.6}, 0.6, False, False),
    "gain 0.8": ({"gain_scale": 0.8}, 0.8, False, False),
    "gain 1.3": ({"gain_scale": 1.3}, 1.3, False, False),
    "nominal": ({}, None, False, False),
    "40 ms": ({"latency_s": 0.04}, None, True, True),
}


def run_case(hidden: dict, seed: int) -> dict:
    """What the reach pipeline reports for one twin: culprits, fitted values, the line and the wall-clock."""
    from ast_robot.config import load_config
    from ast_robot.gap.latency import latency_warning
    from ast_robot.gap.pipeline import _sub_step_check, run_sysid
    from ast_robot.gap.replay import MujocoReplay
    from tests.gap.helpers import twin_records

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exp.yaml"
        path.write_text(EXPERIMENT)
        cfg = load_config(path)
    replay = MujocoReplay("ur5e", "reach", env_dt=1.0 / cfg.env.control_hz)
    real = [dataclasses.replace(r, command_latency_s=None) for r in twin_records({**hidden, **NOISE}, seed)]
    t0 = time.perf_counter()
    whole = run_sysid(cfg, real, replay, seed, None)[0]
    t1, c1 = time.perf_counter(), time.process_time()
    result, sub = _sub_step_check(cfg, whole, real, replay)
    t2, c2 = time.perf_counter(), time.process_time()
    line = latency_warning(result, real, 1.0 / cfg.env.control_hz, sub)
    gain = result.mean[result.names.index("actuator_gain")]
    latency = result.mean[result.names.index("latency")]
    ms = re.search(r"acts on its commands (\d+) ms", line) if line else None
    return {"culprits": ",".join(result.culprits()) or "-", "gain": gain, "latency_steps": latency,
            "whole_culprits": ",".join(whole.culprits()) or "-",
            "whole_gain": whole.mean[whole.names.index("actuator_gain")],
            "line_ms": int(ms.group(1)) if ms else None, "unexplained": result.unexplained,
            "fit_s": t1 - t0, "check_s": t2 - t1, "check_cpu_s": c2 - c1, "report_s": t2 - t0}  # fmt: skip


def judged(name: str, row: dict) -> bool:
    """Whether the row names what its twin calls for: the gain (within 10%, so on its side of nominal) or nothing
    besides whole-step latency, and the line exactly where the delay is not modelled by what is named."""
    hidden, gain, line, latency_named = CASES[name]
    named = set(row["culprits"].split(",")) - {"-"}
    want = ({"actuator_gain"} if gain is not None else set()) | ({"latency"} if latency_named else set())
    ok = named == want
    if gain is not None:
        ok &= abs(row["gain"] - gain) <= 0.1 * gain
    ok &= (row["line_ms"] is not None) == line
    if line and row["line_ms"] is not None:
        ok &= abs(row["line_ms"] - 1e3 * hidden["latency_s"]) <= 3
    return bool(ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="*", default=None, help="case names to run (default: all)")
    parser.add_argument("--name", default="gap_reach_substep")
    args = parser.parse_args(argv)
    import os

    rows = []
    for name in args.only or CASES:
        for seed in args.seeds:
            row = {"case": name, "seed": seed, **run_case(CASES[name][0], seed), "load_1min": os.getloadavg()[0]}
            row["right"] = judged(name, row)
            rows.append(row)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    right = sum(r["right"] for r in rows)
    worst = max(r["report_s"] for r in rows)
    goals = [goal("cases named right (gain within 10%, line where due)", len(rows), right, ">="),
             goal("wall-clock of the slowest report's fit + check (s)", 60.0, worst, "<=")]  # fmt: skip
    write_results(args.name, rows, goals, notes="UR5e twin, 2 episodes x 30 steps, 0.5 mrad noise, undeclared.")
    return 0 if right == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

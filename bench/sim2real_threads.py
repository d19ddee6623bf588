"""Training speed of the pick-and-place policy with 1 and 2 torch threads on this (shared) machine.

The loop (`ast-robot sim2real`) trains in its own process while the machine's other jobs run; this measures
BC steps of configs/experiments/pickplace_demo.yaml's policy on a few demonstrations, alternating 1 and 2
intra-op threads (each in a fresh process, ``--repeats`` times), with ``--hogs`` busy-loop processes beside
it (0: the machine as it is). Goal: one thread trains at least as fast as two under the load measured (the
default of `ast-robot sim2real --torch-threads`); the 1-minute load is recorded per row.

    .venv/bin/python bench/sim2real_threads.py --repeats 2 --hogs 0 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, os, sys, torch
from ast_robot.config import load_config
from ast_robot.trainers.bc import train_bc
threads, steps, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
cfg = load_config("configs/experiments/pickplace_demo.yaml", [f"run_root={root}", "train.n_demos=10",
                  f"train.steps={steps}", "train.eval_episodes=1", "train.log_every=100"])
m = train_bc(cfg, show_progress=False)
print(json.dumps({"train_wall_s": m["train_wall_s"], "load": os.getloadavg()[0]}))
"""
HOG = "while True: pass"


def one(threads: int, steps: int, hogs: int) -> dict:
    """Train ``steps`` steps with ``threads`` threads in a child process, ``hogs`` busy loops beside it."""
    hog_procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        with tempfile.TemporaryDirectory(prefix="s2r_threads_") as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(steps), tmp], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
    finally:
        for p in hog_procs:
            p.kill()
            p.wait()
    res = json.loads(out.strip().splitlines()[-1])
    return {"threads": threads, "hogs": hogs, "steps": steps, "train_wall_s": round(res["train_wall_s"], 2),
            "ms_per_step": round(1e3 * res["train_wall_s"] / steps, 1), "loadavg_1min": round(res["load"], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hogs", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    rows = []
    for hogs in args.hogs:
        for _ in range(args.repeats):
            for threads in (1, 2):
                rows.append(one(threads, args.steps, hogs))
                print(rows[-1], flush=True)
    goals = []
    for hogs in args.hogs:
        med = {t: statistics.median(r["ms_per_step"] for r in rows if r["threads"] == t and r["hogs"] == hogs)
               for t in (1, 2)}  # fmt: skip
        goals.append(goal(f"hogs {hogs}: median ms/step with 2 threads / with 1 (>= 1: one thread no slower)", 1.0,
                          round(med[2] / med[1], 2)))  # fmt: skip
    print(f"wrote {write_results('sim2real_threads', rows, goals, notes=__doc__.splitlines()[0])}")


if __name__ == "__main__":
    main()

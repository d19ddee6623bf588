"""Scripted-expert success rates under the default domain randomization (issue 3, deliverable 4).

Runs every env for ``--episodes`` randomized episodes (seeds 0..N-1, preset `default`) and writes
`bench/results/expert_success.json` (+ .md). Goals: reach >= 0.95, pick-and-place >= 0.90.

    .venv/bin/python bench/expert_success.py --episodes 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from bench.common import goal, write_results  # noqa: E402

GOALS = {"Reach": 0.95, "PickPlace": 0.90}


def measure(env_id: str, episodes: int) -> dict:
    """Success statistics of the scripted expert of ``env_id`` over seeds 0..episodes-1."""
    import gymnasium as gym

    import ast_robot  # noqa: F401
    from ast_robot.envs.demos import run_episode
    from ast_robot.envs.experts import expert_for

    env = gym.make(env_id, randomization={"preset": "default"})
    expert = expert_for(env)
    start = time.perf_counter()
    runs = [run_episode(env, expert, seed) for seed in range(episodes)]
    wall = time.perf_counter() - start
    success = [bool(r["success"]) for r in runs]
    first = [int(np.argmax(r["is_success"])) + 1 for r in runs if r["is_success"].any()]
    return {"env": env_id, "episodes": episodes, "successes": sum(success), "success_rate": sum(success) / episodes,
            "failed_seeds": [s for s, ok in enumerate(success) if not ok][:20],
            "mean_steps_to_success": float(np.mean(first)) if first else None, "wall_s": round(wall, 1)}  # fmt: skip


def main() -> None:
    """Measure all four envs and write the results with the issue's goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args()
    rows, goals = [], []
    for task in ("Reach", "PickPlace"):
        for robot in ("UR5e", "FR3"):
            row = measure(f"ast_robot/{task}{robot}-v0", args.episodes)
            print(row, flush=True)
            rows.append(row)
            goals.append(goal(f"{task}{robot} expert success rate", GOALS[task], row["success_rate"]))
    notes = ("Default randomization preset (configs/randomization/default.yaml), seeds 0..N-1, 50 control steps "
             "per episode at 25 Hz. Other helpers shared the 2 CPU cores during the run (loadavg recorded); "
             "success rates do not depend on load, wall times do.")  # fmt: skip
    print(write_results("expert_success", rows, goals, notes))


if __name__ == "__main__":
    main()

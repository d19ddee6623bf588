"""The reality gap's null case per episode (issue 21): a nominal pick-and-place loop round on each robot, and the
twin's episodes against the env's deployment pipeline on the same tables.

For each robot: one round of ``ast-robot sim2real`` on a nominal twin (bench.sim2real.pp_round: train, evaluate,
deploy through ROS on simulated time, record, gap report), then the round's policy in the nominal env with
``env.deploy_pipeline`` on the episode driver's tables (bench.twin_wrist.same_table_sim) against the twin's records:
per table the outcome on both sides and how far the joints part (max over the episode's steps, rad).

Goals per robot: the outcomes agree on every table; the joints agree to 1e-9 rad over every episode; the loop's gap
is not significant (0 inside its 95% interval); the gap report names nothing.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST MUJOCO_GL=egl .venv/bin/python bench/pipeline_parity.py \
        --robots ur5e fr3 --domain 170 --root /tmp/px7/twindiv/bench
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

CONFIGS = {"ur5e": "configs/experiments/pickplace_demo.yaml", "fr3": "configs/experiments/pickplace_demo_fr3.yaml"}
JOINT_BOUND_RAD = 1e-9
TABLE_SEED = 1000  # the loop's round 0 sets the tables of seeds 1000, 1001, ...


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--robots", nargs="+", default=["ur5e", "fr3"], choices=sorted(CONFIGS))
    p.add_argument("--seed", type=int, default=0, help="the loop's training seed")
    p.add_argument("--episodes", type=int, default=10, help="twin episodes (tables) per round")
    p.add_argument("--domain", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "170")))
    p.add_argument("--root", default="/tmp/ast_pipeline_parity", help="work folder (runs, bags; not in git)")
    p.add_argument("--name", default="pipeline_parity")
    return p.parse_args()


def table_rows(real: list, sim: list, ticks: int) -> list[dict]:
    """Per table: both outcomes and how far the joints part (the twin's per-tick rows taken at the env's steps)."""
    rows = []
    for k, (r, s) in enumerate(zip(real, sim, strict=True)):
        rq, sq = np.asarray(r.joint_positions)[::ticks], np.asarray(s.joint_positions)
        n = min(len(rq), len(sq))
        gap = np.abs(rq[:n] - sq[:n]).max(axis=1)
        apart = np.flatnonzero(gap > JOINT_BOUND_RAD)
        rows.append({"table": k, "real_success": bool(r.success), "sim_success": bool(s.success),
                     "steps_compared": int(n), "joint_gap_max_rad": float(gap.max()),
                     "first_step_apart": int(apart[0]) if apart.size else None})  # fmt: skip
    return rows


def robot_row(robot: str, args: argparse.Namespace) -> dict:
    """One nominal loop round on ``robot`` and the per-table comparison of its twin episodes."""
    from ast_robot.config import load_config
    from ast_robot.records import read_records
    from ast_robot.run_layout import CONFIG_FILE
    from ast_robot.trainers.common import load_actor
    from bench.sim2real import pp_round
    from bench.twin_wrist import same_table_sim

    row = pp_round({}, args.seed, 1, args.episodes, Path(args.root), args.domain, f"nominal-{robot}",
                   config=Path(CONFIGS[robot]).resolve())  # fmt: skip
    folder = Path(row["policy"]).parent
    cfg = load_config(folder / CONFIG_FILE)
    start = time.perf_counter()
    real = read_records(folder / "real")
    sim = same_table_sim(cfg, load_actor(cfg, folder), robot, len(real), TABLE_SEED, pipeline=True)
    tables = table_rows(real, sim, round(cfg.deploy.control_hz / cfg.env.control_hz))
    gap = row["gap_ci"][0]
    report = folder / "gap" / "gap.json"
    culprits = json.loads(report.read_text()).get("culprits") if report.exists() else None  # physical and visual
    return {**{k: row[k] for k in ("robot", "config", "seed", "sim_success", "sim_ci", "real_success", "real_ci",
                                   "gap_ci", "named", "verdict", "wall_s", "loadavg_1min", "policy")},
            "load": {k: row[k] for k in row if k.startswith("load_")},
            "tables": tables, "outcomes_agree": sum(t["real_success"] == t["sim_success"] for t in tables),
            "n_tables": len(tables), "joint_gap_max_rad": max(t["joint_gap_max_rad"] for t in tables),
            "gap_significant": not gap[0] <= 0.0 <= gap[1], "culprits": culprits,
            "compare_s": round(time.perf_counter() - start, 1)}  # fmt: skip


def main() -> None:
    args = parse_args()
    rows = [robot_row(robot, args) for robot in args.robots]
    goals = []
    for r in rows:
        goals += [goal(f"{r['robot']}: outcomes agree, twin vs pipeline sim, per table (of {r['n_tables']})",
                       r["n_tables"], r["outcomes_agree"]),
                  goal(f"{r['robot']}: joints apart at most (rad, every step of every episode)", JOINT_BOUND_RAD,
                       r["joint_gap_max_rad"], "<="),
                  goal(f"{r['robot']}: nominal loop gap significant (1 = yes)", 0, int(r["gap_significant"]), "<="),
                  goal(f"{r['robot']}: culprits the gap report names on the nominal twin", 0,
                       None if r["culprits"] is None else len(r["culprits"]), "<=")]  # fmt: skip
    notes = ("One nominal round of the pick-and-place loop per robot (seed 0, 10 twin episodes on simulated time), "
             "then the round's policy in the nominal env with env.deploy_pipeline on the same tables (seeds 1000+). "
             "Timing figures ran beside other jobs on 2 shared cores: see each row's load.")  # fmt: skip
    path = write_results(args.name, rows, goals, notes)
    print(path)
    for g in goals:
        print(g)


if __name__ == "__main__":
    main()

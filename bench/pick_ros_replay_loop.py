"""The pick-and-place sim-to-real loop on one hidden twin, read round by round for the analyzer: what is named,
each fit against the truth (and whether it is an estimate or a bound at its box's end), the boxes after widening,
what is retuned, real success per round.

The loop is bench/sim2real.py's (``pp_round``: ``ast_robot.sim2real.sim2real`` on
configs/experiments/pickplace_demo.yaml; train -> sim eval -> twin over loopback on simulated time -> bag -> gap
report -> retune -> fine-tune); the hidden values are read from a twin file (default: the heavy-slippery twin,
configs/twin/pickplace_heavy_slippery.yaml). Nothing in ast_robot.gap reads them; this bench reads them to score.

    MUJOCO_GL=egl ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python bench/pick_ros_replay_loop.py \
        [--hidden configs/twin/pickplace_heavy_slippery.yaml] [--rounds 3] [--episodes 10] [--domain 126]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# the twin's hidden keys -> the randomized parameter the analyzer fits (a scale of the simulator's value; the
# grasp force a scale of the deployment's force_n, which the UR5e sim actuator equals)
TRUTH = {"object_mass_scale": "object_mass", "gripper_force_scale": "gripper_force", "friction_scale": "friction",
         "finger_friction_scale": "friction", "object_friction_scale": "friction"}  # fmt: skip


def truth_of(hidden: dict) -> dict[str, str]:
    """The randomized parameters the twin changes, each with the hidden value(s) (grip friction: the pads' and the
    cube's; MuJoCo takes the larger of a contact pair's, so the grip sees the larger of the two)."""
    out: dict[str, list] = {}
    for key, value in hidden.items():
        if key in TRUTH:
            out.setdefault(TRUTH[key], []).append(value)
    return {k: " / ".join(f"{v:g}" for v in vs) for k, vs in out.items()}


def round_row(folder: Path, r: int, truth: dict[str, str]) -> dict[str, Any]:
    """One round's analyzer output from its gap.json (and the loop's timings)."""
    gap = json.loads((folder / "gap" / "gap.json").read_text()) if (folder / "gap" / "gap.json").is_file() else {}
    s = gap.get("sysid") or {}
    names = s.get("names", [])
    edge = [_edge(s, i) for i in range(len(names))]
    fits = {n: f"{m:.4g}" + (f" (bound: {e})" if e else "") for n, m, e in zip(names, s.get("mean", []), edge)}
    retuned = gap.get("retuned") or {}
    collapsed = [n for n, (lo, hi) in retuned.items() if n in names and edge[names.index(n)] and hi - lo < 0.1 * hi]
    return {"round": r, "truth": truth, "named": gap.get("culprits", []), "fit": fits,
            "box": {n: [round(lo, 5), round(hi, 5)] for n, lo, hi in zip(names, s.get("search_low", []), s.get("search_high", []))},
            "widened": s.get("widened", []), "unexplained": round(s.get("unexplained", 0.0), 3) if s else None,
            "retuned": {n: [round(lo, 4), round(hi, 4)] for n, (lo, hi) in retuned.items()},
            "retuned_onto_a_bound": collapsed, "fit_s": round(s.get("seconds", 0.0), 1),
            "widen_s": round(s.get("widen_seconds", 0.0), 1), "verdict": gap.get("verdict", [])}  # fmt: skip


def _edge(s: dict, i: int) -> str:
    from ast_robot.gap.sysid import SysIdResult

    return SysIdResult.from_dict(s).search_edge(i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="configs/twin/pickplace_heavy_slippery.yaml",
                        help="twin file (a relative path is of the repository root)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domain", type=int, default=126, help="ROS_DOMAIN_ID of the runs (loopback only)")
    parser.add_argument("--workdir", default="", help="keep the rounds' folders here (default: a temporary folder)")
    parser.add_argument("--name", default="pick_ros_replay_loop", help="results file name (bench/results/NAME.*)")
    args = parser.parse_args()
    from bench.sim2real import pp_round

    hidden = yaml.safe_load((ROOT / args.hidden).read_text()) or {}
    label = Path(args.hidden).stem
    root = Path(args.workdir or tempfile.mkdtemp(prefix="pick_loop-"))
    root.mkdir(parents=True, exist_ok=True)
    loop = pp_round(hidden, args.seed, args.rounds, args.episodes, root, args.domain, label)
    rounds = Path(loop["policy"]).parents[1]  # .../pickplace_demo/round0/policy -> .../pickplace_demo
    truth = truth_of(hidden)
    rows = [{**round_row(rounds / f"round{r}", r, truth), "sim_success": loop["sim_success"][r],
             "real_success": loop["real_success"][r], "gap_ci": loop["gap_ci"][r], "round_s": loop["round_s"][r]}
            for r in range(len(loop["real_success"]))]  # fmt: skip
    for row in rows:
        print(json.dumps(row), flush=True)
    write(rows, loop, args, truth)


def write(rows: list[dict], loop: dict, args: Any, truth: dict[str, str]) -> None:
    named = [r for r in rows if r["named"]]
    goals = [goal("rounds whose first culprit is one the twin changes (share of rounds naming one)", 1.0,
                  round(sum(r["named"][0] in truth for r in named) / len(named), 3) if named else None),
             goal("retuned ranges collapsed onto a fit pinned at its box's end (count)", 0,
                  sum(len(r["retuned_onto_a_bound"]) for r in rows), "<="),
             goal("real success within the rounds (best round)", 0.8, max(r["real_success"] for r in rows))]  # fmt: skip
    notes = (f"UR5e, sim time, loopback; hidden twin {args.hidden} ({loop['hidden']}); seed {args.seed}; "
             f"{args.episodes} twin episodes per round; loop wall {loop['wall_s']} s, load at the end "
             f"{loop['loadavg_1min']:.1f}. 'bound: floor/ceiling' = the fit sits at that end of its (widened) box.")
    write_results(args.name, rows, goals, notes)


if __name__ == "__main__":
    main()

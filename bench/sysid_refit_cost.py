"""What a pick-and-place refit costs, before and after a change of the analyzer, on the same kept ROS records.

For each round folder R (a sim2real round: R/config.yaml, R/real), the physical fit of the gap report
(``ast_robot.gap.pick.run_pick_sysid`` with R's config, seed 0) runs in a fresh process on two source trees:
``--before REV`` and ``--after REV`` (each checked out into a temporary git worktree), interleaved before/after/before/after
``--pairs`` times so that both meet the same load (the machine is shared; each row records the 1-minute load at
its start and end). Each row: wall and CPU seconds (the process's: the load moves the wall time), replays (episodes simulated, counted at ``mujoco.rollout``),
what was named and the fitted values with their 95% intervals. The goals: the same parameters named, every
value of one tree inside the other's interval, and the time ratio.

Replay speed (the after tree, the first folder): milliseconds per replay of all its records at one parameter vector:
one ``mujoco.rollout`` call per record (the replay before), all records in one call on 1 thread (now), and on 2
threads (``mujoco.rollout``'s thread pool); outputs checked bit-identical to the first.

    MUJOCO_GL=egl .venv/bin/python bench/sysid_refit_cost.py --rounds R1 [R2 ...] --after REV [--before b10c8ba]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child(round_dir: Path) -> dict[str, Any]:
    """The pick fit of ``round_dir`` in this process (ast_robot imported from the tree on PYTHONPATH)."""
    import ast_robot
    from ast_robot.config import load_config
    from ast_robot.config.deploy import RosNames
    from ast_robot.envs.randomization import resolve
    from ast_robot.gap.pick import run_pick_sysid
    from ast_robot.gap.pick_replay import PickReplay
    from ast_robot.records.load import load_episodes

    tree = Path(os.environ.get("SYSID_TREE", ROOT)).resolve()
    if tree not in Path(ast_robot.__file__).resolve().parents:
        raise SystemExit(f"ast_robot was imported from {ast_robot.__file__}, not from the tree {tree}")
    cfg = load_config(round_dir / "config.yaml", [])
    cfg.randomization = resolve(cfg.randomization)
    real = load_episodes(round_dir / "real", RosNames().outcome)
    sim = PickReplay(real[0].robot, env_dt=1.0 / cfg.env.control_hz)
    count = {"replays": 0}
    from mujoco import rollout

    plain = rollout.rollout

    def counted(model: Any, data: Any, initial_state: Any, *rest: Any, **kw: Any) -> Any:
        count["replays"] += len(initial_state)  # one roll per episode replayed
        return plain(model, data, initial_state, *rest, **kw)

    rollout.rollout = counted  # both trees' replays step through mujoco.rollout.rollout
    load0, start, cpu0 = os.getloadavg()[0], time.perf_counter(), time.process_time()
    result, _, note = run_pick_sysid(cfg, real, sim, 0, None)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    if result is None:
        raise SystemExit(f"{round_dir}: no fit ({note})")
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "load_start": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
            "replays": count["replays"], "named": list(result.culprits()), "names": list(result.names),
            "mean": list(result.mean), "interval": [list(result.interval(i)) for i in range(len(result.names))],
            "widened": list(result.widened), "unexplained": result.unexplained,
            "eliminated": list(getattr(result, "eliminated", ())), "full_fit": list(getattr(result, "full_fit", ()))}  # fmt: skip


def run_child(tree: Path, round_dir: Path, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "SYSID_TREE": str(tree)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(round_dir), *extra], env=env,
                         cwd=tree, capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"the fit on {tree} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same parameters named, and each named value of either inside the other's 95% interval."""
    if a["named"] != b["named"]:
        return False
    for n in a["named"]:
        i, j = a["names"].index(n), b["names"].index(n)
        if not (b["interval"][j][0] <= a["mean"][i] <= b["interval"][j][1]
                and a["interval"][i][0] <= b["mean"][j] <= a["interval"][i][1]):  # fmt: skip
            return False
    return True


def replay_speed(round_dir: Path, repeats: int = 3) -> list[dict[str, Any]]:
    """ms per replay of every record at one vector: one rollout per record, all in one on 1 and 2 threads."""
    import mujoco
    import numpy as np

    from ast_robot.config.deploy import RosNames
    from ast_robot.gap.pick_replay import PickReplay
    from ast_robot.records.load import load_episodes

    real = load_episodes(round_dir / "real", RosNames().outcome)
    sim = PickReplay(real[0].robot)
    recs = [r for r in real if not sim.replayable(r)][:8]
    params = {"friction": 0.3, "gripper_force": 0.5, "object_mass": 3.0}
    ref = [sim.many(params, [r])[0] for r in recs]
    rows = []
    for label, threads in (("one rollout per record", 0), ("all records, one rollout, 1 thread", 1),
                           ("all records, one rollout, 2 threads", 2)):  # fmt: skip
        best, same = float("inf"), True
        datas = [mujoco.MjData(sim.model) for _ in range(threads)]  # rollout's thread pool: one per thread
        for _ in range(repeats):
            t = time.perf_counter()
            out = [sim.many(params, [r])[0] for r in recs] if threads == 0 else _threaded(sim, params, recs, datas)
            best = min(best, time.perf_counter() - t)
            same = same and all(np.array_equal(a, b) for a, b in zip(ref, out))
        rows.append({"replay": label, "records": len(recs), "ms_best_of_3": round(1000 * best, 1),
                     "bit_identical": same, "load": round(os.getloadavg()[0], 2)})  # fmt: skip
    return rows


def _threaded(sim: Any, params: dict, recs: list, datas: list) -> list:
    """All records in one rollout: on ``sim``'s own data (1 thread, what ``many`` does) or on a pool of ``datas``."""
    if len(datas) == 1:
        return sim.many(params, recs)
    import numpy as np
    from mujoco import rollout

    sim._apply(params)
    substeps = max(1, int(round(recs[0].control_dt / sim.model.opt.timestep)))
    inputs = [sim._inputs(r, substeps, 0) for r in recs]
    state, _ = rollout.rollout(sim.model, datas, np.stack([s for s, _ in inputs]), np.stack([c for _, c in inputs]),
                               initial_warmstart=np.zeros((len(recs), sim.model.nv)), persistent_pool=True)  # fmt: skip
    out = []
    for r, s in zip(recs, state):
        q = np.empty_like(r.joint_positions)
        q[0], q[1:] = r.joint_positions[0], s[substeps - 1 :: substeps, 1 : 1 + sim.model.nq][:, sim.qadr]
        out.append(q)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", nargs="+", type=Path, help="sim2real round folders (config.yaml, real/)")
    parser.add_argument("--before", default="b10c8ba", help="git revision of the analyzer before the change")
    parser.add_argument("--after", default="HEAD", help="git revision of the analyzer after the change")
    parser.add_argument("--also", nargs="*", default=[], help="further revisions measured beside them (rows only)")
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--speed-only", action="store_true", help="only the replay speed rows (the after tree)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--speed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="sysid_refit_cost")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps({"rows": replay_speed(args.child)} if args.speed else child(args.child)))
        return
    sys.path.insert(0, str(ROOT))
    revs = {"before": args.before, "after": args.after, **{f"also-{r}": r for r in args.also}}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {k: Path(tmp) / k for k in revs}
        for k, rev in revs.items():
            subprocess.run(["git", "worktree", "add", "--detach", str(trees[k]), rev], cwd=ROOT, check=True,
                           capture_output=True)  # fmt: skip
        try:
            speed = run_child(trees["after"], args.rounds[0], "--speed")["rows"]
            print(json.dumps(speed), flush=True)
            rows: list[dict[str, Any]] = []
            for round_dir in args.rounds if not args.speed_only else []:
                for k in range(args.pairs):
                    for tree in revs:  # interleaved: each tree meets the load of its neighbours
                        rows.append({"round": str(round_dir), "pair": k, "tree": tree, "rev": revs[tree],
                                     **run_child(trees[tree], round_dir)})  # fmt: skip
                        print(json.dumps(rows[-1]), flush=True)
                    write(args, rows, speed)  # after every pair: a later failure keeps what was measured
            if args.speed_only:
                write(args, rows, speed)
        finally:
            for path in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def write(args: argparse.Namespace, rows: list[dict[str, Any]], speed: list[dict[str, Any]]) -> None:
    from bench.common import goal, write_results

    pairs = [(a, b) for a in rows for b in rows
             if (a["tree"], b["tree"]) == ("before", "after") and (a["round"], a["pair"]) == (b["round"], b["pair"])]
    ratio = max((b["seconds"] / a["seconds"] for a, b in pairs), default=None)
    cpu = max((b["cpu_seconds"] / a["cpu_seconds"] for a, b in pairs), default=None)
    goals = [goal("same parameters named, values inside each other's 95% intervals (share of pairs)", 1.0,
                  sum(agree(a, b) for a, b in pairs) / len(pairs) if pairs else None),
             goal("after / before fit wall time, worst pair", 0.8, None if ratio is None else round(ratio, 3), "<="),
             goal("after / before fit CPU time (process), worst pair", 0.8, None if cpu is None else round(cpu, 3), "<="),
             goal("batched replay bit-identical to one rollout per record", 1.0,
                  float(all(r["bit_identical"] for r in speed)))]  # fmt: skip
    notes = (f"before = {args.before}, after = {args.after}" + "".join(f", also {r}" for r in args.also) +
             "; each fit in a fresh process, interleaved in that order; load = 1-minute load average at the fit's "
             f"start and end. Replay speed of the after tree on {args.rounds[0]}: "
             + "; ".join(f"{r['replay']}: {r['ms_best_of_3']} ms (load {r['load']})" for r in speed))  # fmt: skip
    write_results(args.name, rows + [{"round": str(args.rounds[0]), "tree": "after", **r} for r in speed], goals, notes)

if __name__ == "__main__":
    main()

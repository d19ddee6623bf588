"""Wall-clock profile of the pick-and-place sim-to-real loop, stage by stage (issue 21, the 30-minute goal).

Runs `ast_robot.sim2real.sim2real` (what `ast-robot sim2real` runs) for ``--rounds`` rounds on one twin and
writes, per round: demonstrations, training, sim evaluation (from the trainer's own clocks), deployment on the
twin split into start-up (process start to the policy node's "configured" log line: twin, recorder and node
start, torch import, DDS discovery) and the episodes (from there to the deployment's end), the gap report,
and the round's total; sim and real success; the 1-minute load at each round's end. Goals: the whole loop
within ``--budget-s`` (30 minutes) and sim success >= 80% in every round.

    MUJOCO_GL=egl ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=185 \\
        .venv/bin/python bench/sim2real_profile.py --rounds 3 --hidden configs/twin/pickplace_nominal.yaml
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs/experiments/pickplace_demo.yaml"
ROS_STAMP = re.compile(r"^\[\w+\] \[(\d+\.\d+)\] \[ast_policy\]: configured")


def node_ready_at(deploy_log: Path) -> float | None:
    """Wall time (epoch s) of the policy node's "configured" line (ROS log stamps are wall clock), or None."""
    if not deploy_log.exists():
        return None
    for line in deploy_log.read_text(errors="replace").splitlines():
        match = ROS_STAMP.match(line)
        if match:
            return float(match.group(1))
    return None


def split_deploy(folder: Path, deploy_s: float) -> dict[str, float | None]:
    """The deployment's seconds before the node was configured and after (episodes), from its log's stamps.

    The deployment ended when its last log was written; it began ``deploy_s`` before that."""
    ready = node_ready_at(folder / "logs" / "deploy.log")
    logs = [p.stat().st_mtime for p in (folder / "logs").glob("*.log")]
    if ready is None or not logs:
        return {"deploy_startup": None, "deploy_episodes": None}
    end = max(logs)
    start = end - deploy_s
    return {"deploy_startup": round(ready - start, 1), "deploy_episodes": round(end - ready, 1)}


class LoadSampler:
    """The 1-minute load average every ``period`` s in a daemon thread (the loop runs for many minutes)."""

    def __init__(self, period: float = 15.0) -> None:
        self.t0, self.times, self.values = time.perf_counter(), [0.0], [os.getloadavg()[0]]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
        self._thread.start()

    def _run(self, period: float) -> None:
        while not self._done.wait(period):
            self.times.append(time.perf_counter() - self.t0)
            self.values.append(os.getloadavg()[0])

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    def mean_between(self, t0: float, t1: float) -> float:
        """Mean of the samples taken between ``t0`` and ``t1`` s after the start (the last before, if none)."""
        inside = [v for s, v in zip(self.times, self.values) if t0 <= s <= t1]
        return sum(inside) / len(inside) if inside else self.values[-1]


def round_seconds(result) -> float:
    return sum(result.timings.get(k, 0.0) for k in ("train_bc", "deploy", "gap_report"))


def row_of(result, load: float) -> dict:
    """One round's row: its stage timings (s), successes and the mean load over the round."""
    t = {k: round(v, 1) for k, v in result.timings.items()}
    t.update(split_deploy(result.folder, result.timings.get("deploy", 0.0)))
    total = round_seconds(result)
    return {"round": result.round, **t, "round_total": round(total, 1), "sim_success": round(result.sim_success, 3),
            "real_success": round(result.real_success, 3), "top_parameter": result.top_parameter,
            "retuned": result.retuned_config is not None, "loadavg_1min": round(load, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--hidden", default=None, help="Twin hidden-parameter YAML (default: nominal).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=10, help="Episodes on the twin per round.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="Config override k=v.")
    parser.add_argument("--budget-s", type=float, default=1800.0)
    parser.add_argument("--name", default="sim2real_profile")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    from rich.console import Console

    from ast_robot.sim2real import sim2real

    with tempfile.TemporaryDirectory(prefix="s2r_profile_") as scratch:
        out = Path(args.workdir or scratch)
        out.mkdir(parents=True, exist_ok=True)
        hidden = args.hidden
        if hidden is None:
            hidden = str(out / "nominal.yaml")
            Path(hidden).write_text("{}\n")
        loop_args = argparse.Namespace(rounds=args.rounds, real_episodes=args.episodes, hidden=hidden, out=str(out),
                                       domain=int(os.environ.get("ROS_DOMAIN_ID", "0")), overrides=args.overrides,
                                       physical_feedback=True)  # fmt: skip
        loads = LoadSampler()
        start = time.perf_counter()
        results = sim2real(args.config, loop_args, Console())
        wall = time.perf_counter() - start
        loads.stop()
        ends = list(itertools.accumulate(round_seconds(r) for r in results))
        rows = [row_of(r, loads.mean_between(end - round_seconds(r), end)) for r, end in zip(results, ends)]
    rows.append({"round": "loop", "round_total": round(wall, 1), "loadavg_1min": round(loads.mean(), 2),
                 "load_max": round(max(loads.values), 2), "hidden": args.hidden or "nominal ({})",
                 "overrides": " ".join(args.overrides)})  # fmt: skip
    goals = [goal(f"{args.rounds}-round loop wall-clock (s)", args.budget_s, round(wall, 1), "<="),
             goal("sim success, worst round", 0.8, min(r.sim_success for r in results))]  # fmt: skip
    print(f"wrote {write_results(args.name, rows, goals, notes=__doc__.splitlines()[0])}")


if __name__ == "__main__":
    main()

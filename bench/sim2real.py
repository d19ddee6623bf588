"""The whole sim-to-real loop against hidden-parameter twins: does the gap close, is the culprit found?

For each hidden twin (one or two parameters outside the initial ranges of configs/experiments/demo.yaml)
and seed: `ast_robot.sim2real.sim2real` for ``--rounds`` rounds (BC -> sim eval -> twin over loopback DDS
-> bag -> gap report -> retune -> fine-tune with the physical-feedback weights). Then, for the ablation
twins, the same loop with the retuned ranges alone (no physical weights). Issue 8 goals measured here:
a true culprit ranked first (round 0) with its value within 15%; the success gap (sim - real) from
>= 30 points in round 0 to <= 5 points within the rounds (over the trials whose round-0 gap reached 30
points: the soft-actuator twins without latency leave the policy at 80-100% real success, no gap to
close; they stay in the table); real success per training sample, with and without the physical-feedback
weights. Results are rewritten after every trial; ``--merge`` continues an earlier run's JSON.

    MUJOCO_GL=egl ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST .venv/bin/python bench/sim2real.py [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs/experiments/demo.yaml"
CONTROL_HZ = 25.0  # the env's control rate: latency in randomization terms is control steps
# (name, twin hidden parameters, the same perturbation in randomization terms)
TWINS = [
    ("gain x0.3 + latency 120 ms", {"gain_scale": 0.3, "latency_s": 0.12}, {"actuator_gain": 0.3, "latency": 3.0}),
    ("latency 200 ms", {"latency_s": 0.2}, {"latency": 5.0}),
    ("latency 160 ms + damping x4", {"latency_s": 0.16, "damping_scale": 4.0}, {"latency": 4.0, "joint_damping": 4.0}),
    ("gain x0.25", {"gain_scale": 0.25}, {"actuator_gain": 0.25}),
    ("gain x0.3 + payload 5 kg", {"gain_scale": 0.3, "payload_kg": 5.0}, {"actuator_gain": 0.3, "payload": 5.0}),
    ("payload 5 kg + latency 120 ms", {"payload_kg": 5.0, "latency_s": 0.12}, {"payload": 5.0, "latency": 3.0}),
    ("gain x0.2 + latency 80 ms", {"gain_scale": 0.2, "latency_s": 0.08}, {"actuator_gain": 0.2, "latency": 2.0}),
]
OPENED = 0.30  # a round-0 gap of at least this opens a trial for the closing goal (the goal's premise)


def trial(twin: tuple, seed: int, rounds: int, episodes: int, physical: bool, root: Path, domain: int) -> dict:
    from rich.console import Console

    from ast_robot.sim2real import sim2real

    name, hidden, truth = twin
    out = root / f"{name.replace(' ', '_')}-s{seed}-{'phys' if physical else 'ranges'}"
    out.mkdir(parents=True)
    (out / "hidden.yaml").write_text(yaml.safe_dump(hidden))
    args = argparse.Namespace(rounds=rounds, real_episodes=episodes, hidden=str(out / "hidden.yaml"), domain=domain,
                              out=str(out), overrides=[f"seed={seed}"], physical_feedback=physical)  # fmt: skip
    results = sim2real(CONFIG, args, Console(quiet=True))
    first, est = results[0].top_parameter, results[0].estimate
    rel = abs(est[first] - truth[first]) / abs(truth[first]) if first in truth and first in est else None
    gaps = [r.gap for r in results]
    samples = float(sum(r.train_samples for r in results))
    return {"twin": name, "seed": seed, "physical_weights": physical, "ranked_first": first,
            "culprit_first": first in truth, "estimate": None if rel is None else round(est[first], 4),
            "truth": truth.get(first), "rel_error": rel, "culprit_ok": rel is not None and rel <= 0.15,
            "sim_success": [round(r.sim_success, 3) for r in results],
            "real_success": [round(r.real_success, 3) for r in results], "gap": [round(g, 3) for g in gaps],
            "gap_closed": gaps[0] >= 0.30 and min(abs(g) for g in gaps[1:]) <= 0.05 if len(gaps) > 1 else False,
            "train_samples": samples,
            "real_success_per_1k_samples": 1000.0 * results[-1].real_success / samples if samples else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=10, help="Twin episodes per round.")
    parser.add_argument("--twins", type=int, default=len(TWINS), help="How many of the twins to run.")
    parser.add_argument("--ablation-twins", type=int, default=1, help="Twins also run without physical weights.")
    parser.add_argument("--merge", help="Results JSON of an earlier run of this script: its trials are kept and "
                                        "not run again (a long run can be split).")  # fmt: skip
    args = parser.parse_args()
    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    rows = json.loads(Path(args.merge).read_text())["rows"] if args.merge else []
    done = {(r["twin"], r["seed"], r["physical_weights"]) for r in rows}
    jobs = [(t, s, True) for t in TWINS[: args.twins] for s in range(args.seeds)]
    jobs += [(t, s, False) for t in TWINS[: args.ablation_twins] for s in range(args.seeds)]
    with tempfile.TemporaryDirectory(prefix="sim2real_bench_") as tmp:
        for twin, seed, physical in jobs:
            if (twin[0], seed, physical) in done:
                continue
            row = trial(twin, seed, args.rounds, args.episodes, physical, Path(tmp), domain)
            rows.append(row)
            print(f"{row['twin']:<28} seed {seed} phys={physical}: first={row['ranked_first']} est={row['estimate']} "
                  f"truth={row['truth']} gap={row['gap']} real={row['real_success']}", flush=True)  # fmt: skip
            write(rows, args)  # after every trial: an interrupted run keeps what it measured
    print(f"wrote {write(rows, args)}")


def write(rows: list[dict], args: argparse.Namespace) -> Path:
    main_rows = [r for r in rows if r["physical_weights"]]
    opened = [r for r in main_rows if r["gap"][0] >= OPENED]
    ablation = {}
    for physical in (True, False):
        vals = [r["real_success_per_1k_samples"] for r in rows if r["physical_weights"] == physical
                and r["twin"] in {t[0] for t in TWINS[: args.ablation_twins]}]  # fmt: skip
        ablation[physical] = float(np.mean(vals)) if vals else None
    mean = lambda values: float(np.mean(values)) if values else None  # noqa: E731
    points = lambda value: None if value is None else 100 * value  # noqa: E731
    goals = [
        goal("true culprit ranked first with its value within 15% (fraction of trials)", 0.9,
             mean([r["culprit_ok"] for r in main_rows])),
        goal("round-0 success gap (points, mean over trials)", 30.0, points(mean([r["gap"][0] for r in main_rows]))),
        goal(f"smallest absolute gap within {args.rounds} rounds, trials that opened >= 30 points (points, mean)",
             5.0, points(mean([min(abs(g) for g in r["gap"][1:]) for r in opened])), "<="),
        goal("trials that opened >= 30 points and closed to <= 5 (fraction of those that opened)", 0.9,
             mean([r["gap_closed"] for r in opened])),
    ]  # fmt: skip
    twins = sorted({r["twin"] for r in main_rows})
    notes = (f"{len(twins)} hidden twins x {args.seeds} seeds x {args.rounds} rounds, {args.episodes} twin "
             f"episodes per round, configs/experiments/demo.yaml (BC, 300 steps, 40 demos, gate 0.5). "
             f"{len(opened)} of {len(main_rows)} trials opened a round-0 gap of >= 30 points (the closing goals "
             f"are over those: a twin the policy already copes with has no gap to close); "
             f"{sum(r['gap_closed'] for r in main_rows)} of all {len(main_rows)} went from >= 30 to <= 5. Ablation "
             f"(first {args.ablation_twins} twin(s)): final-round real success per 1k training samples "
             f"with physical weights {ablation[True]} vs retuned ranges alone {ablation[False]}. Latency in "
             f"randomization terms is control steps at {CONTROL_HZ:.0f} Hz. Success is judged at the end of "
             f"each episode on both sides (2 s, end_on_success false). Retuned latency = fitted arm latency + "
             f"gap.deployment_latency_steps (1): in a screening run the round-0 policy's twin success with "
             f"hidden latency L matched its sim success at L + 1, not L (twin gain x0.3 + 3 steps: real 20%, "
             f"sim 73% at 3 steps, 33% at 4; 5 steps: real 30%, sim 53% at 5, 40% at 6).")  # fmt: skip
    return write_results("sim2real", rows, goals, notes)


if __name__ == "__main__":
    main()

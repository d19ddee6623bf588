"""Gated training vs the ungated baseline vs a random subset of the same rate, for vision and language.

Per seed, one run per arm with the same seed, data order, epochs, steps and schedule:

* ``baseline``: every sample is forwarded and backwarded;
* ``gated``: stale scores (loss + uncertainty) -> PI gate at ``--target`` -> forward + backward only the kept;
* ``random``: the same gate and stale-score machinery fed uniform random scores (the honest control).

With ``--gate-batch draw`` (default) every arm draws the same batches, so a gated step is smaller, not
rarer. Goals are computed on the curves averaged over ``--seeds`` (a held-out set of 359 digits moves
0.28 points per image, so one seed is noise). Reported per arm: final accuracy (vision) or bits per byte
(language), forward and backward passes (in samples), training wall-clock (evaluation excluded) and the
wall-clock at which the arm first reached the baseline's final quality. Savings are ratios of measured
wall-clock, never ``1 - activation``.

The recorded results (bench/results/gated_training_{vision,language}.md) come from:

    .venv/bin/python bench/gated_training.py --tasks vision --seeds 0,1,2,3,4 --name gated_training_vision
    .venv/bin/python bench/gated_training.py --tasks language --gate-set importance_weights=false \
        --name gated_training_language   # ~6 min per seed on one core; seeds can run apart, then --merge
    .venv/bin/python bench/gated_training.py --quick    # a smoke run (~1 min)

Language keeps hard windows without 1/p weights (biased toward hard samples, as selective backprop): with
the weights the rare kept easy windows get 1/p up to 50 and the run ends 4% worse than the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import goal, write_results  # noqa: E402

ARMS = ("baseline", "gated", "random")


def arm_config(task: str, arm: str, args: argparse.Namespace, seed: int):
    """The experiment config of one arm (everything but the gate/significance settings is shared)."""
    from ast_robot.config import ExperimentConfig, from_dict

    if task == "vision":
        train = {"type": "vision", "model": args.vision_model, "epochs": args.epochs, "batch_size": 64, "lr": args.lr,
                 "d_model": args.vision_width, "weight_decay": 0.01, "device": "cpu"}  # fmt: skip
    else:
        train = {"type": "language", "steps": args.lm_steps, "batch_size": args.lm_batch, "lr": args.lm_lr,
                 "context": args.lm_context, "corpus_bytes": args.lm_bytes, "d_model": args.lm_width, "n_layers": 2, "weight_decay": 0.01, "device": "cpu"}  # fmt: skip
    weights = {"random": 1.0} if arm == "random" else {"loss": 1.0, "uncertainty": 0.5} if task == "vision" else {"loss": 1.0}
    data = {"name": f"bench_{task}_{arm}", "seed": seed, "run_root": args.run_root,
            "train": {**train, "log_every": 1000},
            "significance": {"weights": weights, "stale_scores": True},
            "gate": {"enabled": arm != "baseline", "scoring": "stale_scores", "batch": args.gate_batch,
                     "anneal": args.anneal, "target_rate": args.target, "min_probability": args.min_probability,
                     **args.gate_set}}  # fmt: skip
    return from_dict(ExperimentConfig, data)


def run_arm(task: str, arm: str, args: argparse.Namespace, seed: int) -> dict:
    """Train one arm with one seed; returns its row with the evaluation history."""
    from ast_robot.core.assemble import build_trainer, eval_history

    cfg = arm_config(task, arm, args, seed)
    if task == "vision":
        from ast_robot.trainers import vision as mod

        model, data, steps = mod.prepare(cfg)
        train, evaluate, loss_fn = data.train, mod.make_accuracy(data.test_x, data.test_y), mod.classification_loss
    else:
        from ast_robot.core.assemble import draw_batch_size
        from ast_robot.trainers import language as mod

        model, train, held = mod.prepare(cfg)
        # Same samples drawn (epochs) in every arm: larger gated draws mean proportionally fewer steps.
        steps = round(cfg.train.steps * cfg.train.batch_size / draw_batch_size(cfg))
        evaluate, loss_fn = mod.make_bits_per_byte(held), mod.lm_loss
    trainer = build_trainer(cfg, model, loss_fn, train, steps=steps, evaluate=evaluate,
                            eval_every=max(1, steps // args.evals), run=None, show_progress=False)  # fmt: skip
    start = time.perf_counter()
    c = trainer.fit()
    history = eval_history(trainer)
    metric = "accuracy" if task == "vision" else "bits_per_byte"
    return {"task": task, "arm": arm, "seed": seed, "metric": metric, "final": history[-1][metric], "steps": trainer.step,
            "samples_seen": c.samples_seen, "forward_samples": c.forward_samples,
            "backward_samples": c.backward_samples, "kept_fraction": round(c.kept_fraction, 4),
            "train_seconds": round(c.train_seconds, 3), "total_seconds": round(time.perf_counter() - start, 3),
            "history": [(round(h["train_seconds"], 3), h[metric]) for h in history]}  # fmt: skip


def mean_row(rows: list[dict]) -> dict:
    """One arm averaged over seeds: numbers and the evaluation curve point by point (same steps per seed)."""
    out = dict(rows[0], seed="mean")
    for key, value in rows[0].items():
        if isinstance(value, (int, float)) and key != "seed":
            out[key] = round(sum(r[key] for r in rows) / len(rows), 4)
    curves = [r["history"] for r in rows]
    if len({len(c) for c in curves}) != 1:
        raise RuntimeError(f"{rows[0]['task']}/{rows[0]['arm']}: seeds evaluated at different steps")
    out["history"] = [(round(sum(c[i][0] for c in curves) / len(curves), 3), sum(c[i][1] for c in curves) / len(curves))
                      for i in range(len(curves[0]))]  # fmt: skip
    out["final"] = out["history"][-1][1]  # unrounded: the baseline must reach its own final value
    return out


def time_to_reach(row: dict, target: float, higher_is_better: bool) -> float | None:
    """Training seconds at the first evaluation that reached ``target`` (None if never)."""
    for seconds, value in row["history"]:
        if (value >= target) if higher_is_better else (value <= target):
            return seconds
    return None


def summarize(task: str, rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """Goals of one task (on the seed-averaged rows): speed-up to the baseline's final quality, quality loss,
    gate vs random."""
    by = {r["arm"]: r for r in rows if r["task"] == task and r["seed"] == "mean"}
    base, gated, rand = by["baseline"], by["gated"], by["random"]
    higher = task == "vision"
    tolerance = 0.005 if higher else 0.005 * base["final"]  # 0.5 point / 0.5 %
    for r in (base, gated, rand):
        r["seconds_to_baseline_final"] = time_to_reach(r, base["final"], higher)
        r["seconds_to_within_0.5"] = time_to_reach(r, base["final"] + (-tolerance if higher else tolerance), higher)
    t_base, t_gated = base["seconds_to_baseline_final"], gated["seconds_to_baseline_final"]
    speedup = round(t_base / t_gated, 3) if t_base and t_gated else None
    if higher:  # accuracy points lost (percentage points)
        loss, loss_name = round(100 * (base["final"] - gated["final"]), 3), "vision: accuracy loss (points)"
        beats = round(100 * (gated["final"] - rand["final"]), 3)
    else:  # relative bits-per-byte increase, in percent
        loss, loss_name = round(100 * (gated["final"] / base["final"] - 1), 3), "language: bits/byte increase (%)"
        beats = round(100 * (rand["final"] / gated["final"] - 1), 3)
    budget_gap = abs(gated["backward_samples"] - rand["backward_samples"]) / max(1, rand["backward_samples"])
    return [
        goal(f"{task}: wall-clock speed-up to the baseline's final quality", 1.5, speedup),
        goal(loss_name, 0.5, loss, "<="),
        goal(f"{task}: gate beats random subset (points / % better)", 0.0, beats, ">"),
        goal(f"{task}: backward budgets of gate and random within 10%", 0.1, round(budget_gap, 4), "<="),
    ]


def parse_setting(text: str) -> tuple[str, object]:
    """``key=value`` with the value read as YAML (``false`` -> False, ``0.1`` -> 0.1)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--gate-set {text!r}: expected KEY=VALUE, e.g. importance_weights=false")
    return key, yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="vision,language")
    parser.add_argument("--target", type=float, default=0.3)
    parser.add_argument("--min-probability", type=float, default=0.02)
    parser.add_argument("--gate-batch", default="draw", choices=["kept", "draw"],
                        help="draw: every arm draws the same batches, so the gated arms take as many (smaller) steps; "
                             "kept: draw batch/target so gated steps keep ~batch samples (fewer steps per epoch)")
    parser.add_argument("--gate-set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra gate settings of the gated and random arms, e.g. importance_weights=false")
    parser.add_argument("--anneal", type=float, default=0.0, help="fraction of final steps trained ungated")
    parser.add_argument("--epochs", type=int, default=30, help="vision epochs")
    parser.add_argument("--lr", type=float, default=1e-2, help="vision learning rate")
    parser.add_argument("--vision-width", type=int, default=256, help="CNN channels / ViT width")
    parser.add_argument("--vision-model", default="cnn", choices=["cnn", "vit"])
    parser.add_argument("--lm-steps", type=int, default=3000)
    parser.add_argument("--lm-batch", type=int, default=32, help="language windows per step (baseline)")
    parser.add_argument("--lm-lr", type=float, default=3e-3, help="language learning rate")
    parser.add_argument("--lm-context", type=int, default=64, help="language window (bytes)")
    parser.add_argument("--lm-width", type=int, default=64, help="language model width")
    parser.add_argument("--lm-bytes", type=int, default=300_000)
    parser.add_argument("--evals", type=int, default=30, help="evaluations per run")
    parser.add_argument("--seeds", default="0,1,2", help="comma list; goals use the curves averaged over seeds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on shared cores)")
    parser.add_argument("--run-root", default="/tmp/ast_robot_bench")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the script, not the claim")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, metavar="JSON",
                        help="no training: pool the per-seed rows of earlier results (e.g. seeds run on separate "
                             "cores) and recompute means and goals")
    parser.add_argument("--name", default="gated_training")
    args = parser.parse_args()
    args.gate_set = dict(parse_setting(s) for s in args.gate_set)
    if args.quick:
        args.epochs, args.lm_steps, args.lm_bytes, args.evals = 3, 30, 200_000, 5
    torch.set_num_threads(args.threads)
    rows, goals = [], []
    seeds = [int(s) for s in args.seeds.split(",")]
    merged = [r for f in args.merge or () for r in json.loads(f.read_text())["rows"] if r["seed"] != "mean"]
    for task in args.tasks.split(","):
        per_arm = {arm: [r for r in merged if r["task"] == task and r["arm"] == arm] for arm in ARMS}
        for seed in seeds if args.merge is None else ():  # arms interleaved per seed: load changes hit all
            for arm in ARMS:
                per_arm[arm].append(run_arm(task, arm, args, seed))
                print({k: v for k, v in per_arm[arm][-1].items() if k != "history"}, flush=True)
        means = [mean_row(per_arm[arm]) for arm in ARMS]
        rows += [r for arm in ARMS for r in per_arm[arm]] + means
        goals += summarize(task, rows, args)
    load = __import__("os").getloadavg()
    notes = (f"seeds {args.seeds} (goals use the seed-averaged `mean` rows); torch threads={args.threads}; vision "
             f"model={args.vision_model} width {args.vision_width}, {args.epochs} epochs; gated batches: "
             f"{args.gate_batch}; gate settings {args.gate_set or 'default'}; language batch {args.lm_batch}, lr {args.lm_lr}, "
             f"context {args.lm_context}, width {args.lm_width}, {args.lm_steps} steps on {args.lm_bytes} corpus bytes; target rate {args.target}; "
             f"loadavg at end {load[0]:.1f} on {__import__('os').cpu_count()} cores (a loadavg near or above the "
             f"core count means other work shared the CPU and wall-clock ratios are noisier). Speed-ups compare "
             f"training seconds (evaluation excluded) at the first evaluation reaching the target quality; "
             f"`seconds_to_within_0.5` uses baseline final - 0.5 point (vision) or + 0.5 % (language) for every "
             f"arm.{' QUICK smoke run, not a measurement.' if args.quick else ''}")  # fmt: skip
    machine_info = None
    if args.merge:  # the rows keep the machine they were measured on
        sources = [json.loads(f.read_text()) for f in args.merge]
        machines = {json.dumps({k: v for k, v in src["machine"].items() if k != "loadavg_1min"}, sort_keys=True)
                    for src in sources}  # fmt: skip
        if len(machines) != 1:
            raise SystemExit(f"--merge: the files were measured on different machines: {sorted(machines)}")
        machine_info = sources[0]["machine"]
        notes = f"Merged from {[f.name for f in args.merge]} ({[s['date'] for s in sources]}); their notes: " + \
            " | ".join(dict.fromkeys(s["notes"] for s in sources))
    print(write_results(args.name, rows, goals, notes, machine_info=machine_info))


if __name__ == "__main__":
    main()

"""Gated training vs the ungated baseline vs a random subset of the same rate, for vision and language.

One run per arm, same seed, same epochs/steps, same schedule:

* ``baseline``: every sample is forwarded and backwarded;
* ``gated``: stale scores (loss + uncertainty) -> PI gate at ``--target`` -> forward + backward only the kept;
* ``random``: the same gate and stale-score machinery fed uniform random scores (the honest control).

Reported per arm: final accuracy (vision) or bits per byte (language), forward and backward passes (in
samples), training wall-clock (evaluation excluded) and the wall-clock at which the arm first reached the
baseline's final quality. Savings are ratios of measured wall-clock, never ``1 - activation``.

    .venv/bin/python bench/gated_training.py            # both tasks (~5-10 min on 2 busy cores)
    .venv/bin/python bench/gated_training.py --quick    # a smoke run (~1 min)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import goal, write_results  # noqa: E402

ARMS = ("baseline", "gated", "random")


def arm_config(task: str, arm: str, args: argparse.Namespace):
    """The experiment config of one arm (everything but the gate/significance settings is shared)."""
    from ast_robot.config import ExperimentConfig, from_dict

    if task == "vision":
        train = {"type": "vision", "model": args.vision_model, "epochs": args.epochs, "batch_size": 64, "lr": args.lr,
                 "weight_decay": 0.01, "device": "cpu"}  # fmt: skip
    else:
        train = {"type": "language", "steps": args.lm_steps, "batch_size": 32, "lr": 2e-3, "context": 128,
                 "corpus_bytes": args.lm_bytes, "d_model": 96, "n_layers": 2, "weight_decay": 0.01, "device": "cpu"}  # fmt: skip
    weights = {"random": 1.0} if arm == "random" else {"loss": 1.0, "uncertainty": 0.5} if task == "vision" else {"loss": 1.0}
    data = {"name": f"bench_{task}_{arm}", "seed": args.seed, "run_root": args.run_root,
            "train": {**train, "gated": arm != "baseline", "gate_mode": "stale_scores", "log_every": 1000,
                      "gate_batch": args.gate_batch, "gate_anneal": args.anneal},
            "significance": {"weights": weights, "stale_scores": True},
            "gate": {"target_rate": args.target, "min_probability": args.min_probability}}  # fmt: skip
    return from_dict(ExperimentConfig, data)


def run_arm(task: str, arm: str, args: argparse.Namespace) -> dict:
    """Train one arm; returns its row with the evaluation history."""
    from ast_robot.core.assemble import build_trainer, eval_history

    cfg = arm_config(task, arm, args)
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
    return {"task": task, "arm": arm, "metric": metric, "final": history[-1][metric], "steps": trainer.step,
            "samples_seen": c.samples_seen, "forward_samples": c.forward_samples,
            "backward_samples": c.backward_samples, "kept_fraction": round(c.kept_fraction, 4),
            "train_seconds": round(c.train_seconds, 3), "total_seconds": round(time.perf_counter() - start, 3),
            "history": [(round(h["train_seconds"], 3), h[metric]) for h in history]}  # fmt: skip


def time_to_reach(row: dict, target: float, higher_is_better: bool) -> float | None:
    """Training seconds at the first evaluation that reached ``target`` (None if never)."""
    for seconds, value in row["history"]:
        if (value >= target) if higher_is_better else (value <= target):
            return seconds
    return None


def summarize(task: str, rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """Goals of one task: speed-up to the baseline's final quality, quality loss, gate vs random."""
    by = {r["arm"]: r for r in rows if r["task"] == task}
    base, gated, rand = by["baseline"], by["gated"], by["random"]
    higher = task == "vision"
    tolerance = 0.005 if higher else 0.005 * base["final"]  # 0.5 point / 0.5 %
    for r in (base, gated, rand):
        r["seconds_to_baseline_final"] = time_to_reach(r, base["final"], higher)
        r["seconds_to_within_0.5"] = time_to_reach(r, base["final"] + (-tolerance if higher else tolerance), higher)
    t_base, t_gated = base["seconds_to_baseline_final"], gated["seconds_to_baseline_final"]
    speedup = round(t_base / t_gated, 3) if t_gated else None
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="vision,language")
    parser.add_argument("--target", type=float, default=0.3)
    parser.add_argument("--min-probability", type=float, default=0.02)
    parser.add_argument("--gate-batch", default="kept", choices=["kept", "draw"],
                        help="kept: draw batch/target so gated steps keep ~batch samples (fewer steps per epoch)")
    parser.add_argument("--anneal", type=float, default=0.0, help="fraction of final steps trained ungated")
    parser.add_argument("--epochs", type=int, default=40, help="vision epochs")
    parser.add_argument("--lr", type=float, default=1e-2, help="vision learning rate")
    parser.add_argument("--vision-model", default="cnn", choices=["cnn", "vit"])
    parser.add_argument("--lm-steps", type=int, default=600)
    parser.add_argument("--lm-bytes", type=int, default=300_000)
    parser.add_argument("--evals", type=int, default=30, help="evaluations per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on shared cores)")
    parser.add_argument("--run-root", default="/tmp/ast_robot_bench")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the script, not the claim")
    parser.add_argument("--name", default="gated_training")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.lm_steps, args.lm_bytes, args.evals = 3, 30, 200_000, 5
    torch.set_num_threads(args.threads)
    rows, goals = [], []
    for task in args.tasks.split(","):
        for arm in ARMS:
            rows.append(run_arm(task, arm, args))
            print({k: v for k, v in rows[-1].items() if k != "history"}, flush=True)
        goals += summarize(task, rows, args)
    load = __import__("os").getloadavg()
    notes = (f"torch threads={args.threads}; vision model={args.vision_model}, {args.epochs} epochs; language "
             f"{args.lm_steps} steps on {args.lm_bytes} corpus bytes; target rate {args.target}; "
             f"loadavg at end {load[0]:.1f} on {__import__('os').cpu_count()} cores (a loadavg near or above the "
             f"core count means other work shared the CPU and wall-clock ratios are noisier). Speed-ups compare "
             f"training seconds (evaluation excluded) at the first evaluation reaching the target quality; "
             f"`seconds_to_within_0.5` uses baseline final - 0.5 point (vision) or + 0.5 % (language) for every "
             f"arm.{' QUICK smoke run, not a measurement.' if args.quick else ''}")  # fmt: skip
    print(write_results(args.name, rows, goals, notes))


if __name__ == "__main__":
    main()

"""Compound measurement on one GPU: does gating multiply with sparse attention? (issue 22, item 4)

The language trainer's byte LM on the Python standard library's sources at a long context, five arms in
one run with the same seed, data order and schedule:

* ``dense``: full attention (SDPA, no mask), every window forwarded and backwarded (the baseline);
* ``sparse``: the block-sparse flex layer (window + learned top-k blocks), every window backwarded;
* ``gated``: full attention, stale-score gate at ``--target`` (only kept windows are backwarded);
* ``sparse_gated``: both;
* ``random``: full attention, the gate fed uniform random scores at the same rate (the control: the
  gated arm's backward budget spent on a random subset).

Per arm: training wall-clock (evaluation excluded), wall-clock at which it first reached the dense arm's
final bits per byte, forward and backward tokens, peak GPU memory and final bits per byte. Goals (issue):
sparse+gated reaches dense's final bits per byte >= 5x sooner at 32k context, ending no more than 1% above
it; each arm's contribution is the ratio of its time-to-target to dense's.

    python bench/long_context.py --context 8192 --steps 400 --out-dir DIR     # on the GPU machine

Status: written, not yet run (the session's device time went to issue 22's items 1-4). Start at 8k
context, then 16k and 32k (``--batch`` shrinks so that a step fits). The attention backend of the byte
LM (``backend="dense"``, the O(T^2) reference) is replaced per arm after the model is built.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, goal, write_results  # noqa: E402

ARMS = {  # arm -> (attention backend, gate scores: None = ungated)
    "dense": ("full", None), "sparse": ("flex", None), "gated": ("full", "loss"),
    "sparse_gated": ("flex", "loss"), "random": ("full", "random"),
}  # fmt: skip


def arm_config(arm: str, args: argparse.Namespace):
    from ast_robot.config import ExperimentConfig, from_dict

    scores = ARMS[arm][1]
    train = {"type": "language", "steps": args.steps, "batch_size": args.batch, "lr": args.lr, "context": args.context,
             "corpus_bytes": args.corpus_bytes, "d_model": args.width, "n_layers": args.layers, "n_heads": args.heads,
             "block_size": 128, "window_blocks": 1, "top_k_blocks": args.top_k, "weight_decay": 0.01,
             "device": "cuda", "gated": scores is not None, "gate_mode": "stale_scores", "log_every": 1000,
             "eval_windows": args.eval_windows}  # fmt: skip
    data = {"name": f"long_context_{arm}", "seed": args.seed, "run_root": "/tmp/long_context_runs", "train": train,
            "significance": {"weights": {scores or "loss": 1.0}, "stale_scores": True},
            "gate": {"target_rate": args.target, "importance_weights": False}}  # fmt: skip
    return from_dict(ExperimentConfig, data)


def run_arm(arm: str, args: argparse.Namespace) -> dict:
    import torch

    from ast_robot.core.assemble import build_trainer, eval_history
    from ast_robot.trainers import language as lm

    cfg = arm_config(arm, args)
    model, train, held = lm.prepare(cfg)
    for block in model.encoder.blocks:  # the byte LM is built with the dense reference; pick the arm's kernel
        block.attn.core.backend = ARMS[arm][0]
    torch.cuda.reset_peak_memory_stats()
    trainer = build_trainer(cfg, model.to(torch.bfloat16) if args.bf16 else model, lm.lm_loss, train,
                            steps=args.steps, evaluate=lm.make_bits_per_byte(held, batch=4),
                            eval_every=max(1, args.steps // args.evals), run=None, show_progress=False)  # fmt: skip
    start = time.perf_counter()
    c = trainer.fit()
    history = eval_history(trainer)
    T = args.context
    return {"arm": arm, "context": T, "final_bits_per_byte": history[-1]["bits_per_byte"], "steps": trainer.step,
            "forward_tokens": c.forward_samples * T, "backward_tokens": c.backward_samples * T,
            "train_seconds": round(c.train_seconds, 2), "total_seconds": round(time.perf_counter() - start, 2),
            "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
            "history": [(round(h["train_seconds"], 2), h["bits_per_byte"]) for h in history]}  # fmt: skip


def seconds_to(row: dict, target: float) -> float | None:
    return next((s for s, v in row["history"] if v <= target), None)


def goals(rows: list[dict]) -> list[dict]:
    by = {r["arm"]: r for r in rows}
    target = by["dense"]["final_bits_per_byte"]
    for r in rows:
        r["seconds_to_dense_final"] = seconds_to(r, target)
    t_dense, t_both = by["dense"]["seconds_to_dense_final"], by["sparse_gated"]["seconds_to_dense_final"]
    return [
        goal(f"{rows[0]['context']} context: sparse+gated vs dense, wall-clock to dense's final bits/byte (x)", 5.0,
             t_dense / t_both if t_dense and t_both else None),  # fmt: skip
        goal("sparse+gated final bits/byte above dense (%)", 1.0,
             100 * (by["sparse_gated"]["final_bits_per_byte"] / target - 1), "<="),  # fmt: skip
        goal("gate beats the random subset (final bits/byte, % better)", 0.0,
             100 * (by["random"]["final_bits_per_byte"] / by["gated"]["final_bits_per_byte"] - 1)),  # fmt: skip
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--context", type=int, default=8192)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--target", type=float, default=0.3, help="gate keep rate")
    p.add_argument("--corpus-bytes", type=int, default=20_000_000)
    p.add_argument("--eval-windows", type=int, default=32)
    p.add_argument("--evals", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--arms", nargs="+", default=list(ARMS))
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    rows = [run_arm(arm, args) for arm in args.arms]
    write_results(f"long_context_{args.context}", rows, goals(rows) if set(ARMS) <= set(args.arms) else [],
                  out_dir=args.out_dir)  # fmt: skip


if __name__ == "__main__":
    main()

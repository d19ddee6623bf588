"""Compound measurement on one GPU: does gating multiply with sparse attention? (issue 22, item 4)

The language trainer's byte LM on Python sources at a long context, five arms in one run with the same
seed, initial weights, data order and learning-rate schedule shape:

* ``dense``: full attention (SDPA, causal, no mask), every window forwarded and backwarded (the baseline);
* ``sparse``: the block-sparse flex layer (window + learned top-k blocks), every window backwarded;
* ``gated``: full attention, stale-score gate at ``--target`` (only kept windows are forwarded and
  backwarded; a window never scored yet is always kept, so the first epoch runs whole);
* ``sparse_gated``: both;
* ``random``: full attention, the gate fed uniform random scores at the same rate (the control: the
  gated arm's backward budget spent on a random subset).

Protocol. Each arm is timed to the dense arm's final bits per byte (the first evaluation at or below it;
evaluations every ``steps / --evals`` steps, their own time excluded). The gated arms draw
``--gated-steps`` times the dense arm's steps (their steps are cheaper; with the same number of steps
they cannot reach dense's loss, having backwarded a third of its windows), with their own cosine schedule
over that length. Every arm runs micro-batches of ``--micro-batch`` windows (gradient accumulation up to
``--batch``), so that a gated step's variable number of kept windows never changes a compiled graph's
shape (at 8k context, batch 8, each new kept count recompiled FlexAttention: 73 s of the gated arm).

Compilation is measured apart: before any arm, a throw-away model of each kernel compiles its graphs
(train and evaluation) and times a few steps; those timings also size the run: ``--time-budget`` seconds
of training and evaluation over all arms, at most ``--steps`` dense steps. Per arm: training wall-clock,
time to dense's final bits per byte with and without the flex compile, forward and backward tokens,
peak GPU memory, final bits per byte and the evaluation history.

    python3 bench/long_context.py --context 32768 --time-budget 380 --bf16 --out-dir DIR   # GPU machine

The corpus: ``--corpus stdlib`` (the standard library's ``*.py``), or ``--corpus sources`` (the standard
library's and then site-packages' ``*.py`` files copied to a folder up to ``--corpus-bytes``: a GPU
machine's Python may ship its standard library without its tests, ~11 MB, a few hundred 32k windows).
Results are written after every arm (a run cut short keeps its finished arms).

Measured (H100 80GB, torch 2.11, 2026-12-06, bench/results/long_context_32768.json; 361 dense steps of 8
windows, 1112 training windows): to dense's final 3.685 bits/byte, sparse+gated 4.29x sooner than dense
without the 75 s flex compile (0.79x with it), sparse 4.94x, gated 1.13x, random subset 1.32x. Sparse's
lead is 1.76x per step (24.8 -> 14.1 ms per 32k window, far from the ~30x fewer attention FLOPs of 4
kept blocks of 256: what is left is the rest of the model plus the layers' selection and kernels at
B=1, H=4; not profiled) times reaching dense's loss in ~35% of the steps. The stale-score gate saved compute per step (0.46x dense's step time, 44% of drawn windows kept)
but reached the target no sooner than a random subset, and on top of sparse it cost time (16.8 vs 14.5 s).

With CUDA graphs (``--cuda-graphs``: ``train.cuda_graphs``, each micro-batch's forward and backward
replayed from two captured graphs, :mod:`ast_robot.trainers.language_graph`; bitwise equal to eager for
the sparse LM, bench/results/lm_graphs.json). The profile (bench/sparse_profile.py) had shown the sparse
step bound by the host (13.2 ms per window with 9.1 ms of GPU work). Measured (H100 80GB, torch 2.11,
2026-12-06):

* bench/results/long_context_32768_graphs (the run above repeated, ``--steps 361``, every arm graphed
  plus ``dense_eager``): sparse 77.6 ms per 8-window step (eager run above: 112.9), dense 196.5 (eager
  199.2); to dense's final 3.685 bits/byte: sparse+gated 7.09x the graphed dense arm, 7.18x the eager
  one, compile excluded (0.91x with the 68 s flex compile); sparse alone 7.25x; the gate adds nothing
  on top of sparse (sparse reaches the target in the first epoch, step ~126 of 139, before any window
  has a score); gated 1.25x, random subset 1.42x, gate vs random -0.23% final bits/byte.
* bench/results/long_context_32768_epochs (``--corpus-bytes 12000000``: 331 windows, 41 steps an epoch,
  8.7 epochs of dense): sparse+gated 7.41x, sparse 6.87x (the gate's share 1.08x, within the sparse
  arm's 1.4 s evaluation spacing: not resolved by one run); dense-kernel gated and random never reach
  dense's final (3.481 and 3.479 vs 3.472): the gate 0.06% behind random at the same backward budget.
* Trap: in those two files ``peak_mib`` of a graphed arm leaves out the graphs' private memory pool
  (allocated by the capture in ``prime``, before the peak was reset; fixed since: the reset now comes
  first). lm_graphs' peaks include it: 1452 MiB graphed vs 1754 eager (sparse), 1234 vs 1534 (dense).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, goal, write_results  # noqa: E402

ARMS = {  # arm -> (attention backend, gate scores: None = ungated)
    "dense": ("full", None), "sparse": ("flex", None), "gated": ("full", "loss"),
    "sparse_gated": ("flex", "loss"), "random": ("full", "random"),
    "dense_eager": ("full", None), "sparse_eager": ("flex", None),  # never graphed (with --cuda-graphs)
}  # fmt: skip
ORDER = ("dense", "sparse_gated", "sparse", "gated", "random")  # the target first, the goal's arm next


def arm_steps(arm: str, args: argparse.Namespace, steps: int) -> int:
    return round(steps * args.gated_steps) if ARMS[arm][1] else steps


def arm_config(arm: str, args: argparse.Namespace, steps: int):
    from ast_robot.config import ExperimentConfig, from_dict

    scores = ARMS[arm][1]
    train = {"type": "language", "steps": arm_steps(arm, args, steps), "batch_size": args.batch, "lr": args.lr,
             "context": args.context, "corpus": args.corpus_path, "corpus_bytes": args.corpus_bytes,
             "d_model": args.width, "n_layers": args.layers, "n_heads": args.heads, "block_size": 128,
             "window_blocks": 1, "top_k_blocks": args.top_k, "weight_decay": 0.01, "device": args.device,
             "grad_accum": args.batch // args.micro_batch, "log_every": 10**6,
             "eval_windows": args.eval_windows,
             "cuda_graphs": args.cuda_graphs and not arm.endswith("_eager")}  # fmt: skip
    data = {"name": f"long_context_{arm}", "seed": args.seed, "run_root": "/tmp/long_context_runs", "train": train,
            "significance": {"weights": {scores or "loss": 1.0}, "stale_scores": True},
            "gate": {"enabled": scores is not None, "scoring": "stale_scores", "target_rate": args.target,
                     "importance_weights": False}}  # fmt: skip
    return from_dict(ExperimentConfig, data)


def python_sources(dst: Path, max_bytes: int) -> Path:
    """A folder of the standard library's and then site-packages' ``*.py`` files (sorted, up to
    ``max_bytes``), copied under ``dst`` with their relative paths (so the held-out split by path hash is
    stable)."""
    if dst.exists():
        shutil.rmtree(dst)
    paths = sysconfig.get_paths()
    total = 0
    for root in dict.fromkeys(Path(paths[k]) for k in ("stdlib", "purelib", "platlib")):
        for i, path in enumerate(sorted(p for p in root.rglob("*.py") if p.is_file())):
            if total >= max_bytes:
                return dst
            target = dst / root.name / f"{i:06d}_{path.name}"  # unique, flat
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            total += target.stat().st_size
    return dst


def build(arm: str, args: argparse.Namespace, steps: int):
    """(config, model on the GPU with the arm's kernel, training windows, held-out windows)."""
    import torch

    from ast_robot.trainers import language as lm

    cfg = arm_config(arm, args, steps)
    model, train, held = lm.prepare(cfg)
    for block in model.encoder.blocks:  # the byte LM is built with the dense reference; pick the arm's kernel
        block.attn.core.backend = ARMS[arm][0]
    model = model.to(args.device)
    model = model.to(torch.bfloat16) if args.bf16 else model
    return cfg, model, train, held


def warm_up(backend_arm: str, args: argparse.Namespace) -> dict[str, float]:
    """Compile (flex) or initialise (SDPA) one kernel's graphs on a throw-away model, then time a few
    micro-batch forward+backward passes and evaluation forwards: ``{compile_s, step_s, eval_s}`` (seconds
    per micro-batch)."""
    import torch

    from ast_robot.core.data import Batch
    from ast_robot.trainers import language as lm

    _, model, train, held = build(backend_arm, args, 1)
    idx = torch.arange(args.micro_batch)
    batch = Batch(train.inputs[idx], train.targets[idx], idx).to(args.device)
    window = held[:1].to(args.device)

    def step() -> None:
        lm.lm_loss(model, batch).losses.mean().backward()

    def evaluate() -> None:
        with torch.no_grad():
            model(window[:, :-1])

    if args.warm_only:  # a helper process: compile the evaluation graph into Inductor's on-disk cache
        return evaluate()
    t0 = time.perf_counter()
    helper = spawn_eval_compile(args) if ARMS[backend_arm][0] == "flex" else None
    for fn in (step, step):  # the first call compiles the training graphs
        fn()
    if helper is not None:
        helper.wait()
    for fn in (evaluate, evaluate):  # the evaluation graph: loaded from the helper's cache
        fn()
    sync(args)
    compile_s = time.perf_counter() - t0
    out = {"compile_s": compile_s}
    for name, fn, n in (("step_s", step, 4), ("eval_s", evaluate, 4)):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync(args)
        out[name] = (time.perf_counter() - t0) / n
    print(f"warm-up {ARMS[backend_arm][0]}: {out}", flush=True)
    return out


def spawn_eval_compile(args: argparse.Namespace):
    """A process that compiles the flex evaluation (no-grad) graph while this one compiles the training
    graphs (compiling is CPU-bound, 16 cores); the two share Inductor's on-disk cache."""
    import subprocess

    extra = [
        "--corpus",
        args.corpus_path,
        "--warm-only",
        "--arms",
        "sparse",
    ]  # the last of a repeated flag wins
    return subprocess.Popen([sys.executable, __file__, *sys.argv[1:], *extra])


def sync(args: argparse.Namespace) -> None:
    import torch

    if args.device.startswith("cuda"):
        torch.cuda.synchronize()


def plan_steps(args: argparse.Namespace, timing: dict[str, dict[str, float]], n_windows: int) -> int:
    """Dense steps such that all arms' predicted training and evaluation fit ``--time-budget`` seconds.

    Gated arms: the first epoch whole (nothing scored yet), then ``target + 0.1`` of each batch (margin),
    over ``--gated-steps`` times the steps. A step costs ``batch / micro_batch`` micro-batches plus 15%."""
    per_epoch = n_windows // args.batch
    micro = args.batch / args.micro_batch

    def seconds(steps: int) -> float:
        total = 0.0
        for arm in args.arms:
            t = timing[ARMS[arm][0]]
            n = arm_steps(arm, args, steps)
            kept = (
                1.0
                if not ARMS[arm][1]
                else (min(n, per_epoch) + (args.target + 0.1) * max(0, n - per_epoch)) / n
            )
            evals = n // max(1, steps // args.evals)  # every arm evaluates at dense's interval in steps
            total += 1.15 * n * micro * kept * t["step_s"] + evals * args.eval_windows * t["eval_s"]
        return total

    steps = args.steps
    while steps > 10 and seconds(steps) > args.time_budget:
        steps = int(steps * 0.95)
    print(
        f"planned {steps} dense steps: predicted {seconds(steps):.0f} s of training + evaluation", flush=True
    )
    return steps


def prime(model, train, held, args: argparse.Namespace, loss_fn) -> float:
    """One untimed training forward+backward (gradients then dropped: no update) and one evaluation
    forward on this arm's fresh model, so that anything its graphs still need (a guard that fails on a
    new instance, the layer's static tables, the CUDA graphs' capture with ``--cuda-graphs``) happens
    before the clock starts; seconds taken (> ~1 s means something compiled here)."""
    import torch

    from ast_robot.core.data import Batch

    t0 = time.perf_counter()
    idx = torch.arange(args.micro_batch)
    loss_fn(model, Batch(train.inputs[idx], train.targets[idx], idx).to(args.device)).losses.mean().backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        model(held[:1, :-1].to(args.device))
    model.train()
    sync(args)
    return time.perf_counter() - t0


def run_arm(arm: str, args: argparse.Namespace, steps: int, compile_s: float) -> dict[str, Any]:
    """One arm trained and evaluated; ``compile_s``: its kernel's compile time in the warm-up."""
    import torch

    from ast_robot.core.assemble import build_trainer, eval_history
    from ast_robot.trainers import language as lm

    cfg, model, train, held = build(arm, args, steps)
    loss_fn = lm.training_loss(cfg)  # lm_loss, or replayed from CUDA graphs (captured in prime)
    cuda = args.device.startswith("cuda")
    if cuda:  # before prime: a graphed arm's private memory pool is allocated by its capture there
        torch.cuda.reset_peak_memory_stats()
    prime_s = prime(model, train, held, args, loss_fn)
    n = arm_steps(arm, args, steps)
    # Evaluations at the dense arm's interval in steps for every arm: with the same count over twice the
    # steps, the gated arms' time to the target was read at half the resolution (their evaluations
    # 36 steps apart instead of 18 at 32k), which could only delay it. Evaluation time is not counted.
    trainer = build_trainer(cfg, model, loss_fn, train, steps=n, evaluate=lm.make_bits_per_byte(held, batch=1),
                            eval_every=max(1, steps // args.evals), run=None, show_progress=False)  # fmt: skip
    start = time.perf_counter()
    c = trainer.fit()
    history = eval_history(trainer)
    T = args.context
    row = {"arm": arm, "context": T, "kernel": ARMS[arm][0], "cuda_graphs": cfg.train.cuda_graphs,
           "steps": trainer.step,
           "final_bits_per_byte": history[-1]["bits_per_byte"], "forward_tokens": c.forward_samples * T,
           "backward_tokens": c.backward_samples * T, "train_seconds": round(c.train_seconds, 2),
           "ms_per_step": round(1e3 * c.train_seconds / max(1, trainer.step), 1),
           "total_seconds": round(time.perf_counter() - start, 2),
           "compile_seconds": round(compile_s, 1),
           "prime_seconds": round(prime_s, 2),
           "peak_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
           "history": [(round(h["train_seconds"], 2), round(h["bits_per_byte"], 4)) for h in history]}  # fmt: skip
    print({k: v for k, v in row.items() if k != "history"}, flush=True)
    return row


def seconds_to(row: dict[str, Any], target: float) -> float | None:
    """Training seconds at the first evaluation at or below ``target`` (None: never reached)."""
    return next((s for s, v in row["history"] if v <= target + 1e-9), None)


def annotate(rows: list[dict[str, Any]]) -> None:
    """Each arm's time to the dense arm's final bits per byte, with and without compilation, and its
    speed-up over dense (each arm's contribution)."""
    dense = next(r for r in rows if r["arm"] == "dense")
    target = dense["final_bits_per_byte"]
    t_dense = seconds_to(dense, target)
    t_dense_compiled = t_dense + dense["compile_seconds"]  # dense pays its own compile too (0 for SDPA)
    for r in rows:
        t = seconds_to(r, target)
        r["seconds_to_dense_final"] = t
        r["seconds_to_dense_final_with_compile"] = None if t is None else round(t + r["compile_seconds"], 2)
        r["speedup_vs_dense"] = round(t_dense / t, 3) if t else None
        r["speedup_vs_dense_with_compile"] = round(t_dense_compiled / (t + r["compile_seconds"]), 3) if t else None
    eager = next((r for r in rows if r["arm"] == "dense_eager"), None)
    if eager is not None:  # the same speed-up against an ungraphed dense run (its own time to dense's target)
        t_eager = seconds_to(eager, target) or eager["train_seconds"]
        for r in rows:
            t = r["seconds_to_dense_final"]
            r["speedup_vs_dense_eager"] = round(t_eager / t, 3) if t else None


def goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The compound goals once dense and sparse+gated have run; the gate-vs-random goal once gated and
    random have (a run of some arms, ``--arms``, reports the goals its arms can measure)."""
    by = {r["arm"]: r for r in rows}
    if not {"dense", "sparse_gated"} <= set(by):
        return []
    annotate(rows)
    both, ctx = by["sparse_gated"], rows[0]["context"]
    target = by["dense"]["final_bits_per_byte"]
    out = [
        goal(
            f"{ctx} context: sparse+gated vs dense, wall-clock to dense's final bits/byte, compile excluded (x)",
            5.0,
            both["speedup_vs_dense"],
        ),  # fmt: skip
        goal(
            f"{ctx} context: sparse+gated vs dense, wall-clock to dense's final bits/byte, compile included (x)",
            5.0,
            both["speedup_vs_dense_with_compile"],
        ),  # fmt: skip
        goal(
            "sparse+gated final bits/byte above dense (%)",
            1.0,
            100 * (both["final_bits_per_byte"] / target - 1),
            "<=",
        ),  # fmt: skip
    ]
    if "dense_eager" in by:
        out.append(goal(f"{ctx} context: sparse+gated vs dense run eagerly (no CUDA graphs), wall-clock to dense's "
                        "final bits/byte, compile excluded (x)", 5.0, both["speedup_vs_dense_eager"]))  # fmt: skip
    if {"gated", "random"} <= set(by):
        out.append(
            goal(
                "gate beats the random subset (final bits/byte, % better)",
                0.0,
                100 * (by["random"]["final_bits_per_byte"] / by["gated"]["final_bits_per_byte"] - 1),
            )
        )  # fmt: skip
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--steps", type=int, default=2000, help="dense steps at most (--time-budget may cut them)")
    p.add_argument("--time-budget", type=float, default=0, help="seconds of training + evaluation, all arms")
    p.add_argument(
        "--wall-limit",
        type=float,
        default=0,
        help="seconds for the whole run: the training budget is what setup leaves, less a margin",
    )
    p.add_argument("--warm-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--micro-batch", type=int, default=1)
    p.add_argument("--gated-steps", type=float, default=2.0, help="gated arms' steps / dense steps")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--target", type=float, default=0.3, help="gate keep rate")
    p.add_argument("--corpus", default="sources", help="'stdlib', 'sources' or a folder of text files")
    p.add_argument("--corpus-bytes", type=int, default=40_000_000)
    p.add_argument("--eval-windows", type=int, default=16)
    p.add_argument("--evals", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--cuda-graphs", action="store_true", help="train every arm but *_eager with "
                   "train.cuda_graphs (forward and backward replayed from CUDA graphs)")  # fmt: skip
    p.add_argument(
        "--device", default="cuda", help="cuda (the measurement) or cpu (a smoke test of full-attention arms)"
    )
    p.add_argument("--arms", nargs="+", default=list(ORDER), choices=list(ARMS))
    p.add_argument("--wait-for", type=Path, help="before sizing the run, wait until this file exists (another "
                   "GPU job, e.g. bench/gpu_check.py, finishing while this one compiles)")  # fmt: skip
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.batch % args.micro_batch:
        p.error(f"--batch {args.batch} must be a multiple of --micro-batch {args.micro_batch}")
    return args


def main(argv: list[str] | None = None) -> None:
    import torch

    args = parse(argv)
    torch._dynamo.config.recompile_limit = 64  # per kernel, train and evaluation graphs
    t0 = time.perf_counter()
    args.corpus_path = args.corpus
    if args.corpus == "sources":
        args.corpus_path = str(python_sources(Path("/tmp/long_context_corpus"), args.corpus_bytes))
    if args.warm_only:
        return warm_up("sparse", args)
    timing, failed = {}, {}
    for kernel, arm in {ARMS[a][0]: a for a in args.arms}.items():  # one arm per kernel warms it up
        try:
            timing[kernel] = warm_up(arm, args)
        except Exception as err:  # noqa: BLE001 - the other kernel's arms still run
            failed[kernel] = f"{type(err).__name__}: {str(err)[:300]}"
            print(f"warm-up {kernel} failed: {failed[kernel]}", flush=True)
    args.arms = [a for a in args.arms if ARMS[a][0] in timing]
    while args.wait_for and not args.wait_for.exists():
        time.sleep(1)
    _, _, train, _ = build("dense", args, 1)
    if args.wall_limit:  # what setup left, less ~10 s per arm (corpus, model) and a 30 s margin
        args.time_budget = args.wall_limit - (time.perf_counter() - t0) - 10 * len(args.arms) - 30
    steps = plan_steps(args, timing, len(train)) if args.time_budget else args.steps
    notes = (f"setup {time.perf_counter() - t0:.0f} s (corpus, compile, timing{', waiting for ' + str(args.wait_for) if args.wait_for else ''}); "
             f"{len(train)} training windows of {args.context} bytes; "
             f"evaluations every {max(1, steps // args.evals)} steps in every arm; "
             f"warm-up per micro-batch of {args.micro_batch}: {timing}; failed: {failed}")  # fmt: skip
    rows = []
    for arm in args.arms:
        kernel = ARMS[arm][0]  # SDPA compiles nothing (its warm-up is cuDNN set-up)
        compile_s = timing[kernel]["compile_s"] if kernel == "flex" else 0.0
        rows.append(run_arm(arm, args, steps, compile_s))
        write_results(f"long_context_{args.context}", rows, goals(rows), notes=notes, out_dir=args.out_dir)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    for g in goals(rows):
        print(g, flush=True)


if __name__ == "__main__":
    main()

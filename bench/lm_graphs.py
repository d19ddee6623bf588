"""Byte LM training step replayed from CUDA graphs vs eager (issue 22): the same numbers, less host time.

For each kernel (``full``: dense SDPA, ``flex``: the block-sparse layer) one bf16 byte LM (the
long-context bench's: width 256, 4 layers, 4 heads, 128-token blocks, window 1 + top-2) is copied three
times: eager, eager again (the run-to-run floor of the kernels) and graphed
(:class:`ast_robot.trainers.language_graph.GraphedLoss`). Each trains the same optimizer steps on the
same real windows (the standard library's sources), micro-batches of one window with unequal weights as
the gated trainer sends them, AdamW after clipping: per micro-batch loss, per step gradient and the
final weights are compared. Then the time per window: fwd+bwd alone and a whole step of 8 windows
(accumulation, clipping, AdamW), eager vs graphed, median of repeats (host clock around synchronized
loops: what a trainer waits).

    python3 bench/lm_graphs.py --context 32768 --out-dir DIR     # GPU machine, ~3 minutes
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, goal, write_results  # noqa: E402

WEIGHTS = (1.0, 0.5, 2.0, 1.0)  # per micro-batch, as 1/p importance weights would vary


def build(kernel: str, context: int) -> Any:
    import torch

    from ast_robot.trainers import language as lm

    torch.manual_seed(0)
    model = lm.ByteLM(context, 256, 4, 4, 128, 1, 2)
    for block in model.encoder.blocks:
        block.attn.core.backend = kernel
    return model.cuda().to(torch.bfloat16)


def real_windows(context: int, n: int) -> Any:
    from ast_robot.core.data import Batch
    from ast_robot.trainers import language as lm

    corpus = lm.load_corpus("stdlib", int((n + 4) * context / 0.8), 0.1)
    w = lm.windows(corpus.train, context)[:n]
    import torch

    return Batch(w[:, :-1], w[:, 1:], torch.arange(n)).to("cuda")


def micro(batch: Any, i: int) -> Any:
    from ast_robot.core.data import Batch

    return Batch(batch.inputs[i : i + 1], batch.targets[i : i + 1], batch.indices[i : i + 1])


def train_step(model: Any, opt: Any, loss_fn: Any, batch: Any, weights: tuple[float, ...]) -> tuple[list, Any]:
    """The trainer's step: accumulate weighted micro-batches, clip, AdamW. (losses, flat gradient)."""
    import torch

    opt.zero_grad(set_to_none=True)
    n, losses = len(weights), []
    for i, w in enumerate(weights):
        out = loss_fn(model, micro(batch, i))
        ((w * out.losses.float()).sum() / n).backward()
        losses.append(out.losses.detach().float())
    grad = torch.cat([p.grad.float().flatten() for p in model.parameters() if p.grad is not None])
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return losses, grad


def correctness(kernel: str, args: argparse.Namespace, batch: Any) -> dict[str, Any]:
    import torch

    from ast_robot.trainers import language as lm
    from ast_robot.trainers.language_graph import GraphedLoss

    base = build(kernel, args.context)
    runs = {"eager": (base, lm.lm_loss), "eager2": (copy.deepcopy(base), lm.lm_loss),
            "graphed": (copy.deepcopy(base), GraphedLoss(lm.lm_loss))}  # fmt: skip
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01) for k, (m, _) in runs.items()}
    out: dict[str, Any] = {}
    for _ in range(args.check_steps):
        res = {k: train_step(m, opts[k], fn, batch, WEIGHTS) for k, (m, fn) in runs.items()}
        ref_losses, ref_grad = res["eager"]
        for k in ("eager2", "graphed"):
            losses, grad = res[k]
            dl = max(float((a - b).abs().max()) for a, b in zip(losses, ref_losses))
            dg = float((grad - ref_grad).norm() / ref_grad.norm())
            out[f"{k}_loss_diff"] = max(out.get(f"{k}_loss_diff", 0.0), dl)
            out[f"{k}_grad_rel_diff"] = max(out.get(f"{k}_grad_rel_diff", 0.0), dg)
            out[f"{k}_finite"] = out.get(f"{k}_finite", True) and bool(torch.isfinite(grad).all())
    for k in ("eager2", "graphed"):
        pairs = zip(runs[k][0].parameters(), runs["eager"][0].parameters())
        out[f"{k}_weight_diff"] = max(float((a.float() - b.float()).abs().max()) for a, b in pairs)
    out["loss_first"] = round(float(ref_losses[0]), 4)
    return out


def seconds_per_window(fn: Any, windows: int, repeats: int) -> float:
    import torch

    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / windows)
    return statistics.median(times)


def time_one(kernel: str, fn: Any, args: argparse.Namespace, batch: Any) -> dict[str, float]:
    """(fwd+bwd ms per window, whole step ms per window, peak MiB) of one loss function."""
    import torch

    model = build(kernel, args.context)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    ones = (1.0,) * batch.size

    def fwd_bwd() -> None:
        for i in range(batch.size):
            fn(model, micro(batch, i)).losses.sum().backward()

    def step() -> None:
        train_step(model, opt, fn, batch, ones)

    step()  # warm-up (the graphed loss captures here)
    step()
    out = (1e3 * seconds_per_window(fwd_bwd, batch.size, args.repeats),
           1e3 * seconds_per_window(step, batch.size, args.repeats), torch.cuda.max_memory_allocated() / 2**20)
    torch.cuda.reset_peak_memory_stats()
    return out


def timing(kernel: str, args: argparse.Namespace, batch: Any) -> dict[str, float]:
    import torch

    from ast_robot.trainers import language as lm
    from ast_robot.trainers.language_graph import GraphedLoss

    out: dict[str, float] = {}
    for name, fn in (("eager", lm.lm_loss), ("graphed", GraphedLoss(lm.lm_loss))):
        fb, st, peak = time_one(kernel, fn, args, batch)
        out.update({f"{name}_fwd_bwd_ms": round(fb, 3), f"{name}_step_ms_per_window": round(st, 3),
                    f"{name}_peak_mib": round(peak)})  # fmt: skip
        torch.cuda.empty_cache()
    out["graphed_speedup_step"] = round(out["eager_step_ms_per_window"] / out["graphed_step_ms_per_window"], 3)
    return out


def head(batch: Any, n: int) -> Any:
    from ast_robot.core.data import Batch

    return Batch(batch.inputs[:n], batch.targets[:n], batch.indices[:n])


def main(argv: list[str] | None = None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--kernels", nargs="+", default=["full", "flex"], choices=["flex", "full"])
    p.add_argument("--check-steps", type=int, default=3)
    p.add_argument("--windows", type=int, default=8, help="windows per timed step")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch._dynamo.config.recompile_limit = 64
    batch = real_windows(args.context, max(args.windows, len(WEIGHTS)))
    check_batch, time_batch = head(batch, len(WEIGHTS)), head(batch, args.windows)
    rows, goals = [], []
    for kernel in args.kernels:
        t0 = time.perf_counter()
        row: dict[str, Any] = {"kernel": kernel, "context": args.context}
        try:
            row.update(correctness(kernel, args, check_batch))
            row.update(timing(kernel, args, time_batch))
        except Exception as err:  # noqa: BLE001 - the other kernel still runs; the row says why
            traceback.print_exc()
            row["error"] = f"{type(err).__name__}: {str(err)[:400]}"
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(row, flush=True)
        rows.append(row)
        goals += kernel_goals(row)
        write_results("lm_graphs", rows, goals, notes=NOTES, out_dir=args.out_dir)
    for g in goals:
        print(g, flush=True)


def kernel_goals(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Graphed = eager within the eager run-to-run floor (or 1e-3 relative, bf16), and faster."""
    k = row["kernel"]
    if "error" in row:
        return [goal(f"{k}: graphed step runs", 1, 0)]
    floor = max(1e-3, 2 * row["eager2_grad_rel_diff"])
    out = [goal(f"{k}: graphed vs eager gradient, relative difference (max over steps)", floor,
                row["graphed_grad_rel_diff"], "<="),
           goal(f"{k}: graphed vs eager per-window loss, max abs difference (nats)", max(1e-3, 2 * row["eager2_loss_diff"]),
                row["graphed_loss_diff"], "<="),
           goal(f"{k}: graphed gradients finite", 1, int(row["graphed_finite"]))]  # fmt: skip
    if "graphed_speedup_step" in row:
        out.append(goal(f"{k}: graphed step faster than eager (x)", 1.0, row["graphed_speedup_step"]))
    return out


NOTES = ("eager2: a second eager copy (the kernels' run-to-run floor); *_grad_rel_diff: ||g - g_eager|| / "
         "||g_eager|| of the accumulated gradient before clipping, max over steps; *_weight_diff: max abs "
         "weight difference after the steps; *_ms: per 32k window, median of repeats.")

if __name__ == "__main__":
    main()

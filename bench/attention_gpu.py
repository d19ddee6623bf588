"""GPU half of bench/attention.py: timings, peak memory and agreement checks of the attention kernels.

Timing: CUDA events around each call, 3 warm-up calls (compilation included there), median of the timed
ones. Peak memory: `max_memory_allocated` during the call minus what was allocated before it (the inputs),
so it counts what the method itself allocates.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ast_robot.policies.attention import SparseAttentionCore
from ast_robot.policies.backends import build_block_mask, compiled_flex

B, H, D, BLOCK = 4, 16, 64, 128
MASKED_DENSE_MAX = 4096  # the boolean reference needs B*H*T^2 bytes: 16 GiB at 16k tokens


def layout(n_blocks: int, sparsity: float) -> tuple[int, int]:
    """``(window_blocks, top_k)`` keeping about ``(1 - sparsity) * n_blocks`` key blocks per query block."""
    keep = max(1, round((1 - sparsity) * n_blocks))
    window = 1 if keep >= 3 else 0
    return window, keep - (2 * window + 1)


def timed(fn: Callable[[], Any], backward: bool, iters: int) -> tuple[float, float]:
    """Median milliseconds and peak extra MiB of ``fn`` (plus a backward of its output)."""

    def call() -> None:
        out = fn()
        if backward:
            out.backward(torch.ones_like(out))

    for _ in range(3):
        call()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), (torch.cuda.max_memory_allocated() - base) / 2**20


def methods(core: SparseAttentionCore, q, k, v, T: int) -> dict[str, Callable[[], Any]]:
    """The callables compared at one size; each returns the attention output."""
    with torch.no_grad():
        plan, _ = core.plan(q, k, v)
    block_mask = build_block_mask(plan, T)
    fused = SparseAttentionCore(
        D, BLOCK, core.window_blocks, core.top_k, 0, backend="flex", compile_selection=True
    )
    fused = fused.cuda().to(torch.bfloat16)
    fused.load_state_dict(core.state_dict())
    out = {
        "dense_sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
        "flex": lambda: core(q, k, v, backend="flex"),
        "flex_compiled_selection": lambda: fused(q, k, v),
        "flex_kernel": lambda: compiled_flex()(q, k, v, block_mask=block_mask),
        "auto": lambda: core(q, k, v, backend="auto"),
    }
    if T <= MASKED_DENSE_MAX:
        out["dense"] = lambda: core(q, k, v, backend="dense")
    try:
        import flash_attn  # noqa: F401

        flash = SparseAttentionCore(D, BLOCK, core.window_blocks, 0, 0, backend="flash").cuda().bfloat16()
        out["flash_window"] = lambda: flash(q, k, v)
    except ImportError:
        pass
    return out


def size_rows(T: int, sparsity: float, iters: int) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    window, top_k = layout(T // BLOCK, sparsity)
    core = SparseAttentionCore(D, BLOCK, window, top_k, n_global=0, backend="auto").cuda().to(torch.bfloat16)
    q, k, v = (
        torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
    )
    with torch.no_grad():
        actual = core.plan(q, k, v)[0].block_sparsity()
    rows = []
    for name, fn in methods(core, q, k, v, T).items():
        row = {"part": "gpu", "what": "attention", "method": name, "tokens": T, "target_sparsity": sparsity,
               "block_sparsity": round(actual, 4), "window_blocks": window, "top_k_blocks": top_k}  # fmt: skip
        try:
            row["fwd_ms"], row["fwd_peak_mib"] = timed(lambda fn=fn: _no_grad(fn), False, iters)
            row["fwd_bwd_ms"], row["fwd_bwd_peak_mib"] = timed(fn, True, iters)
        except Exception as err:  # noqa: BLE001 - record the failure (OOM, compile error) and go on
            row["error"] = f"{type(err).__name__}: {str(err)[:120]}"
        if name == "auto":
            row["auto_chose"] = core.last_backend
        rows.append(row)
        q.grad = k.grad = v.grad = None
        torch.cuda.empty_cache()
    return rows


def _no_grad(fn: Callable[[], Any]) -> Any:
    with torch.no_grad():
        return fn()


def agreement_rows(lengths: tuple[int, ...]) -> list[dict[str, Any]]:
    """flex vs the dense reference on the same plan: outputs and input gradients, bf16."""
    rows = []
    for T in lengths:
        torch.manual_seed(1)
        window, top_k = layout(T // BLOCK, 0.75)
        core = SparseAttentionCore(D, BLOCK, window, top_k, n_global=3, backend="dense").cuda().bfloat16()
        q, k, v = (
            torch.randn(2, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
        )
        results = []
        for backend in ("dense", "flex"):
            out = core(q, k, v, backend=backend)
            grads = torch.autograd.grad(out.float().square().mean(), (q, k, v))
            results.append((out, *grads))
        err = max((a.float() - b.float()).abs().max().item() for a, b in zip(*results))
        scale = max(a.float().abs().max().item() for a in results[0])
        rows.append({"part": "gpu", "what": "flex vs dense reference", "tokens": T, "max_abs_err": err,
                     "max_abs_value": scale, "dtype": "bfloat16"})  # fmt: skip
    return rows


def recompile_row() -> dict[str, Any]:
    """A second flex call with a new top-k selection at a seen shape must not recompile."""
    torch.manual_seed(2)
    core = SparseAttentionCore(D, BLOCK, 1, 2, n_global=0, backend="flex").cuda().bfloat16()
    q, k, v = (torch.randn(B, H, 1024, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    with torch.no_grad():
        core(q, k, v)
        ok = True
        try:
            with torch._dynamo.config.patch(error_on_recompile=True):
                core(q.flip(2), k.flip(2), v)  # different scores -> different blocks
        except Exception:  # noqa: BLE001 - any recompile error means the cache failed
            ok = False
    return {"part": "gpu", "what": "flex second call without recompiling", "tokens": 1024, "ok": ok}


def print_profile(T: int = 32768, sparsity: float = 0.95) -> None:
    """Where the flex layer's time goes beyond the kernel (printed to the log, not a result row)."""
    from torch.profiler import ProfilerActivity, profile

    window, top_k = layout(T // BLOCK, sparsity)
    core = SparseAttentionCore(D, BLOCK, window, top_k, n_global=0, backend="flex").cuda().to(torch.bfloat16)
    q, k, v = (
        torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
    )
    for _ in range(2):
        core(q, k, v).sum().backward()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            core(q, k, v).sum().backward()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25), flush=True)


def run_gpu(quick: bool = False) -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        raise SystemExit("the GPU part needs CUDA")
    torch._dynamo.config.recompile_limit = 64  # one compile per (shape, grad mode) on purpose
    torch.backends.cuda.matmul.allow_tf32 = True
    lengths = (256, 1024) if quick else (256, 1024, 4096, 16384, 32768)
    sparsities = (0.5, 0.95) if quick else (0.5, 0.75, 0.9, 0.95)
    rows = agreement_rows((1024,) if quick else (1024, 4096)) + [recompile_row()]
    for T in lengths:
        seen: set[tuple[int, int]] = set()
        for s in sparsities:
            key = layout(T // BLOCK, s)
            if key in seen:  # short sequences cannot reach every sparsity
                continue
            seen.add(key)
            rows += size_rows(T, s, iters=5 if quick else 20)
            print(f"T={T} sparsity={s} done", flush=True)
    if not quick:
        try:
            print_profile()
        except Exception as err:  # noqa: BLE001 - the profile is diagnostic only
            print(f"profile failed: {err}", flush=True)
    return rows

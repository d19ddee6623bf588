"""GPU half of bench/attention.py: timings, peak memory and agreement checks of the attention kernels.

Timing: CUDA events around each sample, 3 warm-up calls (compilation included there), median of the
timed ones, Python's garbage collector off while timing. The methods of one size are timed in
alternating rounds (each sampled once per round, the order reversed every other round), dense SDPA and
`auto` in rounds of their own. Up to 1k tokens, where a call is ~0.2-0.3 ms of mostly host overhead,
200 rounds and 10 back-to-back calls per sample (one call per sample differed by 2-4% between identical
SDPA calls on an H200; 10 per sample, by 0-1.3%), and the same SDPA call is also timed against itself
(``sdpa_repeat_*_ratio`` on the `auto` row: the noise floor of the `auto` goal); above 1k, 20 rounds.
Peak memory: `max_memory_allocated` during the call minus what was allocated before it (the inputs), so
it counts what the method itself allocates.
"""

from __future__ import annotations

import gc
import math
import statistics
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ast_robot.policies import masks
from ast_robot.policies.attention import SparseAttentionCore, choose_backend
from ast_robot.policies.backends import build_block_mask, flex_call

B, H, D, BLOCK = 4, 16, 64, 128
SHORT_CALLS = 10  # up to 1k tokens a sample times 10 back-to-back calls (one call is ~0.2-0.3 ms)
MASKED_DENSE_MAX = 4096  # the boolean reference needs B*H*T^2 bytes: 16 GiB at 16k tokens


def layout(n_blocks: int, sparsity: float) -> tuple[int, int]:
    """``(window_blocks, top_k)`` keeping at most ``(1 - sparsity) * n_blocks`` key blocks per query block
    (at least one), so that the block sparsity is at least the target (rounding to nearest kept 13 of 256
    blocks at 95%: 94.9% sparse)."""
    keep = max(1, math.floor((1 - sparsity) * n_blocks + 1e-9))
    window = 1 if keep >= 3 else 0
    return window, keep - (2 * window + 1)


def _call(fn: Callable[[], Any], backward: bool) -> None:
    out = fn()
    if backward:
        out.backward(torch.ones_like(out))


def _elapsed_ms(fn: Callable[[], Any], backward: bool, calls: int = 1) -> float:
    """Milliseconds per call of ``calls`` back-to-back calls between one pair of events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        _call(fn, backward)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / calls


def _peak_mib(fn: Callable[[], Any], backward: bool) -> float:
    """Warm up (compilation included), then the extra MiB one call allocates at its peak."""
    for _ in range(3):
        _call(fn, backward)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    _call(fn, backward)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def timed(fn: Callable[[], Any], backward: bool, iters: int) -> tuple[float, float]:
    """Median milliseconds and peak extra MiB of ``fn`` (plus a backward of its output)."""
    peak = _peak_mib(fn, backward)
    return time_interleaved({"fn": fn}, backward, iters)["fn"], peak


def time_interleaved(fns: dict[str, Callable[[], Any]], backward: bool, iters: int,
                     calls: int = 1) -> dict[str, float]:  # fmt: skip
    """Median milliseconds of each (already warm) callable, timed in ``iters`` rounds that time each once
    (``calls`` back-to-back calls per sample): drift of clocks or of the host between methods then hits
    all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    gc.collect()
    gc.disable()  # a collection inside one method's calls would bias it against the others
    order = list(fns)
    try:
        for i in range(iters):
            for name in order if i % 2 else reversed(order):  # alternate, so no method always goes first
                times[name].append(_elapsed_ms(fns[name], backward, calls))
    finally:
        gc.enable()
    return {name: statistics.median(t) for name, t in times.items()}


def methods(core: SparseAttentionCore, q, k, v, T: int) -> dict[str, Callable[[], Any]]:
    """The callables compared at one size; each returns the attention output."""
    with torch.no_grad():
        plan, _ = core.plan(q, k, v)
    block_mask = build_block_mask(plan, T)
    whole = not masks.has_partial_blocks(plan.n_global, plan.block_size, plan.length, plan.causal)
    eager = SparseAttentionCore(
        D, BLOCK, core.window_blocks, core.top_k, 0, backend="flex", compile_plan=False
    )
    eager = eager.cuda().to(torch.bfloat16)
    eager.load_state_dict(core.state_dict())
    out = {
        "dense_sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
        "flex": lambda: core(q, k, v, backend="flex"),
        "flex_eager_plan": lambda: eager(q, k, v),
        "flex_kernel": lambda: flex_call(q, k, v, block_mask, whole_blocks=whole),
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
    rows = {}
    for name in methods(core, q, k, v, T):
        rows[name] = {"part": "gpu", "what": "attention", "method": name, "tokens": T, "target_sparsity": sparsity,
                      "block_sparsity": round(actual, 4), "window_blocks": window, "top_k_blocks": top_k}  # fmt: skip
    rows["auto"]["auto_chose"] = choose_backend("auto", T, core.crossover)
    for backward, key in ((False, "fwd"), (True, "fwd_bwd")):
        live = {}
        for name, fn in methods(core, q, k, v, T).items():
            call = fn if backward else (lambda fn=fn: _no_grad(fn))
            try:
                rows[name][f"{key}_peak_mib"] = _peak_mib(call, backward)
                live[name] = call
            except Exception as err:  # noqa: BLE001 - record the failure (OOM, compile error) and go on
                rows[name]["error"] = f"{type(err).__name__}: {str(err)[:120]}"
            q.grad = k.grad = v.grad = None
            torch.cuda.empty_cache()
        # `auto` against SDPA in rounds of their own: at <= 1k tokens both are ~0.1-0.5 ms of host
        # overhead, and a multi-millisecond flex call just before one of them shifted it by up to 9%.
        pair = {n: live.pop(n) for n in ("dense_sdpa", "auto") if n in live}
        calls = SHORT_CALLS if T <= 1024 else 1
        for group in (pair, live):
            for name, ms in time_interleaved(group, backward, iters, calls).items():
                rows[name][f"{key}_ms"] = ms
        if T <= 1024:  # the noise floor: the same SDPA call against itself, timed the same way
            sdpa = pair["dense_sdpa"]
            twins = time_interleaved({"a": sdpa, "b": lambda f=sdpa: f()}, backward, iters, calls)
            rows["auto"][f"sdpa_repeat_{key}_ratio"] = twins["b"] / twins["a"]
    return list(rows.values())


def _no_grad(fn: Callable[[], Any]) -> Any:
    with torch.no_grad():
        return fn()


AGREEMENT_CASES = ((1024, 3, False), (4096, 0, False), (2000, 2, True))  # (tokens, n_global, causal)


def agreement_rows(cases: tuple[tuple[int, int, bool], ...]) -> list[dict[str, Any]]:
    """flex vs the dense reference on the same plan, bf16: outputs, input gradients and the scorer's
    parameter gradients. The cases cover whole blocks only (no mask_mod in the kernel), global tokens and
    causality with a ragged last block (partial blocks, mask_mod applied)."""
    rows = []
    for T, n_global, causal in cases:
        torch.manual_seed(1)
        window, top_k = layout(-(-T // BLOCK), 0.75)
        core = SparseAttentionCore(D, BLOCK, window, top_k, n_global=n_global, causal=causal, backend="dense")
        core = core.cuda().bfloat16()
        q, k, v = (
            torch.randn(2, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
        )
        wrt = (q, k, v, *core.parameters())
        results = []
        for backend in ("dense", "flex"):
            out = core(q, k, v, backend=backend)
            grads = torch.autograd.grad(out.float().square().mean(), wrt)
            results.append((out, *grads))
        err = max((a.float() - b.float()).abs().max().item() for a, b in zip(*results))
        scale = max(a.float().abs().max().item() for a in results[0])
        rows.append({"part": "gpu", "what": "flex vs dense reference", "tokens": T, "n_global": n_global,
                     "causal": causal, "max_abs_err": err, "max_abs_value": scale, "dtype": "bfloat16"})  # fmt: skip
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


def run_gpu(
    quick: bool = False, progress: Callable[[list[dict[str, Any]]], None] | None = None
) -> list[dict[str, Any]]:
    """All GPU rows; ``progress`` receives the rows so far after each size (a partial result survives a
    run cut short)."""
    if not torch.cuda.is_available():
        raise SystemExit("the GPU part needs CUDA")
    torch._dynamo.config.recompile_limit = 64  # one compile per (shape, grad mode) on purpose
    torch.backends.cuda.matmul.allow_tf32 = True
    lengths = (256, 1024) if quick else (256, 1024, 4096, 16384, 32768)
    sparsities = (0.5, 0.95) if quick else (0.5, 0.75, 0.9, 0.95)
    rows = agreement_rows(AGREEMENT_CASES[:1] if quick else AGREEMENT_CASES) + [recompile_row()]
    for T in lengths:
        seen: set[tuple[int, int]] = set()
        for s in sparsities:
            key = layout(T // BLOCK, s)
            if key in seen:  # short sequences cannot reach every sparsity
                continue
            seen.add(key)
            rows += size_rows(T, s, iters=5 if quick else (200 if T <= 1024 else 20))
            print(f"T={T} sparsity={s} done", flush=True)
            if progress:
                progress(rows)
    if not quick:
        try:
            print_profile()
        except Exception as err:  # noqa: BLE001 - the profile is diagnostic only
            print(f"profile failed: {err}", flush=True)
    return rows

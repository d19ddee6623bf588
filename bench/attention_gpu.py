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

import functools
import gc
import math
import statistics
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ast_robot.policies import masks
from ast_robot.policies.attention import SparseAttention, SparseAttentionCore, choose_backend
from ast_robot.policies.backends import build_block_mask, flex_call
from bench.gpu_check import check_lists

B, H, D, BLOCK = 4, 16, 64, 128
SHORT_CALLS = 10  # up to 1k tokens a sample times 10 back-to-back calls (one call is ~0.2-0.3 ms)
SPARSITIES_GPU = (0.5, 0.75, 0.9, 0.95)
MASKED_DENSE_MAX = 4096  # the boolean reference needs B*H*T^2 bytes: 16 GiB at 16k tokens
EVERY_BLOCK_LENGTHS = (32768,)  # where the flex kernel is also timed with every block kept (the goal's length)


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
    """The callables compared at one size; each returns the attention output (`auto` is timed apart,
    after the table it reads was derived: :func:`auto_rows`)."""
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
    }
    if T in EVERY_BLOCK_LENGTHS:  # the same kernel dense: what its sparse speed-up is relative to
        every_mask = every_block_mask(plan.blocks, T)
        out["flex_kernel_every_block"] = lambda: flex_call(q, k, v, every_mask, whole_blocks=True)
    if T <= MASKED_DENSE_MAX:
        out["dense"] = lambda: core(q, k, v, backend="dense")
    if flash_missing() is None:
        flash = SparseAttentionCore(D, BLOCK, core.window_blocks, 0, 0, backend="flash").cuda().bfloat16()
        out["flash_window"] = lambda: flash(q, k, v)
    return out


def every_block_mask(blocks: torch.Tensor, T: int):
    """A BlockMask keeping every key block for every query block (whole blocks, no mask_mod): the flex
    kernel run as dense attention. On an H100 (torch 2.11, 32k tokens, B=4 H=16 D=64) it took 181 ms
    fwd+bwd where cuDNN's SDPA took 135 ms (bench/results/sparse_profile_layer.txt): the "ideal" speed-up
    over SDPA also counts that the flex kernel is a slower attention kernel, not only the sparsity."""
    from ast_robot.policies.backends import SparsePlan

    every = torch.ones_like(blocks)
    plan = SparsePlan(every, BLOCK, 0, False, T, None, masks.flex_lists(every, 0, BLOCK, T, False))
    return build_block_mask(plan, T)


def flash_missing() -> str | None:
    """Why flash-attn cannot run here (None when it can)."""
    try:
        import flash_attn  # noqa: F401
    except ImportError as err:
        return f"flash-attn is not installed on this machine ({type(err).__name__}: {err})"
    return None


def skipped_rows(T: int, sparsity: float) -> list[dict[str, Any]]:
    """A row for each backend not timed at this size, saying why."""
    why = {"flash_window": flash_missing()}
    if T > MASKED_DENSE_MAX:
        why["dense"] = (f"the boolean reference mask needs B*H*T^2 bytes ({B * H * T * T / 2**30:.0f} GiB); "
                        f"timed up to {MASKED_DENSE_MAX} tokens")  # fmt: skip
    return [{"part": "gpu", "what": "attention", "method": m, "tokens": T, "target_sparsity": sparsity,
             "skipped": reason} for m, reason in why.items() if reason]  # fmt: skip


def make_case(T: int, sparsity: float):
    """The layer and inputs of one size (seeded: `auto_rows` rebuilds the same ones)."""
    torch.manual_seed(0)
    window, top_k = layout(T // BLOCK, sparsity)
    core = SparseAttentionCore(D, BLOCK, window, top_k, n_global=0, backend="auto").cuda().to(torch.bfloat16)
    q, k, v = (
        torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
    )
    return core, q, k, v


def size_rows(T: int, sparsity: float, iters: int) -> list[dict[str, Any]]:
    core, q, k, v = make_case(T, sparsity)
    with torch.no_grad():
        actual = core.plan(q, k, v)[0].block_sparsity()
    rows = {}
    for name in methods(core, q, k, v, T):
        rows[name] = {"part": "gpu", "what": "attention", "method": name, "tokens": T, "target_sparsity": sparsity,
                      "block_sparsity": round(actual, 4), "window_blocks": core.window_blocks,
                      "top_k_blocks": core.top_k}  # fmt: skip
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
        for name, ms in time_interleaved(live, backward, iters, SHORT_CALLS if T <= 1024 else 1).items():
            rows[name][f"{key}_ms"] = ms
    return list(rows.values()) + skipped_rows(T, sparsity)


def derive_table(rows: list[dict[str, Any]], margin: float = 0.95) -> list[tuple[int, float]]:
    """`crossover` entries ``(min_tokens, max_kept)`` from the rows: per target sparsity, the shortest
    length from which the flex layer ran at most ``margin`` x dense SDPA's time, forward and
    forward+backward, at that length and every longer one measured (kept = 1 - block sparsity)."""
    entries = []
    for s in sorted({r["target_sparsity"] for r in rows if r.get("method") == "flex"}):
        by_len = {}
        for r in rows:
            if r.get("method") != "flex" or r.get("target_sparsity") != s:
                continue
            sdpa = [x for x in rows if x.get("method") == "dense_sdpa" and x.get("tokens") == r["tokens"]
                    and x.get("target_sparsity") == s]  # fmt: skip
            wins = bool(sdpa) and all(
                r.get(f"{m}_ms") is not None and sdpa[0].get(f"{m}_ms") and r[f"{m}_ms"] <= margin * sdpa[0][f"{m}_ms"]
                for m in ("fwd", "fwd_bwd")
            )
            by_len[r["tokens"]] = (wins, 1.0 - r["block_sparsity"])
        start = None
        for T in sorted(by_len, reverse=True):  # the longest lengths first: a win must hold from here on
            if not by_len[T][0]:
                break
            start = T
        if start is not None:
            entries.append((start, math.ceil(max(kept for T, (w, kept) in by_len.items() if T >= start) * 1e4) / 1e4))
    return prune(entries)


def prune(entries: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Drop entries another one covers (no longer ``min_tokens`` and no smaller ``max_kept``)."""
    return sorted({e for e in entries if not any(o != e and o[0] <= e[0] and o[1] >= e[1] for o in entries)})


def auto_rows(lengths, sparsities, iters_for: Callable[[int], int]) -> list[dict[str, Any]]:
    """`auto` against dense SDPA at every size, with the crossover table as it now stands."""
    torch._dynamo.config.recompile_limit = 64  # per length: core and layer (other strides), grad and no grad
    rows = []
    for T in lengths:
        for s in distinct_sparsities(T, sparsities):
            rows.append(auto_row(T, s, iters_for(T)))
            r = rows[-1]
            print(f"auto T={T} s={s}: {r['auto_chose']} fwd {r['auto_over_sdpa_fwd']:.3f} "
                  f"fwd+bwd {r['auto_over_sdpa_fwd_bwd']:.3f}", flush=True)  # fmt: skip
    return rows


def auto_row(T: int, s: float, iters: int) -> dict[str, Any]:
    """`auto` and dense SDPA in rounds of their own (at <= 1k tokens both are ~0.1-0.5 ms of host
    overhead, and a multi-millisecond flex call just before one of them shifted it by up to 9%); up to 1k
    tokens also the same SDPA call against itself (the noise floor). Two same-layer baselines beside the
    bare call: `full_layer`, a layer built with backend `full` (nothing but SDPA in its forward: what any
    attention layer's Python call costs beyond the bare SDPA call, which shows at <= 1k tokens, where a
    forward call is ~20 us of host time), and the whole multi-head layer (:class:`SparseAttention`,
    projections included) run with `auto` against the same layer run with `full`: what a model gains or
    loses by choosing `auto` instead of plain SDPA."""
    core, q, k, v = make_case(T, s)
    full = SparseAttentionCore(D, BLOCK, backend="full").cuda()  # plain SDPA as a layer: the call's own cost
    layer = SparseAttention(H * D, H, block_size=BLOCK, window_blocks=core.window_blocks, top_k_blocks=core.top_k,
                            backend="auto").cuda().to(torch.bfloat16)  # fmt: skip
    x = torch.randn(B, T, H * D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    fns = {"dense_sdpa": lambda: F.scaled_dot_product_attention(q, k, v), "auto": lambda: core(q, k, v),
           "full_layer": lambda: full(q, k, v)}  # fmt: skip
    row = {"part": "gpu", "what": "auto vs SDPA", "method": "auto", "tokens": T, "target_sparsity": s,
           "crossover_tokens": core.crossover_for(q), "kept_blocks": 2 * core.window_blocks + 1 + core.top_k,
           "auto_chose": choose_backend("auto", T, core.crossover_for(q))}  # fmt: skip
    mha = {"mha_auto": lambda: layer(x), "mha_full": lambda: layer(x, backend="full")}
    calls = SHORT_CALLS if T <= 1024 else 1
    for backward, key in ((False, "fwd"), (True, "fwd_bwd")):
        live = {n: (f if backward else (lambda f=f: _no_grad(f))) for n, f in fns.items()}
        for fn in live.values():
            _peak_mib(fn, backward)
        times = time_interleaved(live, backward, iters, calls)
        row[f"{key}_ms"], row[f"sdpa_{key}_ms"] = times["auto"], times["dense_sdpa"]
        row[f"auto_over_sdpa_{key}"] = times["auto"] / times["dense_sdpa"]
        row[f"full_layer_over_sdpa_{key}"] = times["full_layer"] / times["dense_sdpa"]
        row[f"auto_over_full_layer_{key}"] = times["auto"] / times["full_layer"]
        if row["auto_chose"] == "full":  # above the crossover the layer runs flex: the core rows say how it fares
            row.update(_mha_ratios(mha, backward, key, iters, calls))
        if T <= 1024:
            sdpa = live["dense_sdpa"]
            twins = time_interleaved({"a": sdpa, "b": lambda f=sdpa: f()}, backward, iters, calls)
            row[f"sdpa_repeat_{key}_ratio"] = twins["b"] / twins["a"]
        q.grad = k.grad = v.grad = x.grad = None
        layer.zero_grad(set_to_none=True)
    return row


def _mha_ratios(mha: dict[str, Callable[[], Any]], backward: bool, key: str, iters: int,
                calls: int) -> dict[str, float]:  # fmt: skip
    """The multi-head layer with `auto` over the same layer with `full`, timed in rounds of their own with
    the `full` call timed twice (its ratio to itself is the noise floor): timed among the core calls, the
    ratio read 1.09 forward at 2k tokens (H100), which the same-call core ratio (<= 1.02) did not explain."""
    live = {n: (f if backward else (lambda f=f: _no_grad(f))) for n, f in mha.items()}
    live["mha_full_again"] = lambda f=live["mha_full"]: f()
    for fn in live.values():
        _peak_mib(fn, backward)
    times = time_interleaved(live, backward, iters, calls)
    return {f"mha_auto_over_full_{key}": times["mha_auto"] / times["mha_full"],
            f"mha_repeat_{key}_ratio": times["mha_full_again"] / times["mha_full"]}  # fmt: skip


def warm_auto(lengths: tuple[int, ...]) -> None:
    """Compile what :func:`auto_row` runs at each length (the core forward and with backward; the
    multi-head layer runs only plain SDPA there), so that the timing run loads the graphs from
    Inductor's on-disk cache."""
    torch._dynamo.config.recompile_limit = 64  # per length: core and layer (other strides), grad and no grad
    for T in lengths:
        for s in distinct_sparsities(T, SPARSITIES_GPU)[:1]:  # shapes do not depend on the sparsity
            core, q, k, v = make_case(T, s)
            fn = functools.partial(core, q, k, v)
            _call(functools.partial(_no_grad, fn), False)
            _call(fn, True)
        torch.cuda.synchronize()
        print(f"warm auto T={T} done", flush=True)


def distinct_sparsities(T: int, sparsities) -> list[float]:
    """The target sparsities that give distinct layouts at ``T`` (short sequences cannot reach all)."""
    seen, out = set(), []
    for s in sparsities:
        if layout(T // BLOCK, s) not in seen:
            seen.add(layout(T // BLOCK, s))
            out.append(s)
    return out


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
        with torch.no_grad():
            lists_error = check_lists(core.plan(q, k, v, "flex")[0])
        if lists_error:  # a bad list would end the process with a device-side assert in the kernel
            rows.append({"part": "gpu", "what": "flex vs dense reference", "tokens": T, "n_global": n_global,
                         "causal": causal, "max_abs_err": None, "error": lists_error})  # fmt: skip
            continue
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
    quick: bool = False,
    progress: Callable[[list[dict[str, Any]]], None] | None = None,
    lengths: tuple[int, ...] | None = None,
    profile: bool = True,
) -> list[dict[str, Any]]:
    """All GPU rows; ``progress`` receives the rows so far after each size (a partial result survives a
    run cut short). Lengths run longest first; after each, this device's `auto` crossover table is derived
    from the rows so far (:func:`derive_table`; its decision at a length depends only on that length and
    longer ones), installed for this process, and `auto` is timed against SDPA at that length with it.
    The entry to add to ``crossover.TABLE`` is the closing ``auto table`` row."""
    from ast_robot.policies import crossover

    if not torch.cuda.is_available():
        raise SystemExit("the GPU part needs CUDA")
    torch._dynamo.config.recompile_limit = 64  # one compile per (shape, grad mode) on purpose
    torch.backends.cuda.matmul.allow_tf32 = True
    lengths = lengths or ((256, 1024) if quick else (256, 1024, 2048, 4096, 8192, 16384, 32768))
    sparsities = (0.5, 0.95) if quick else SPARSITIES_GPU
    iters_for = lambda T: 5 if quick else (200 if T <= 1024 else 20)  # noqa: E731
    rows = agreement_rows(AGREEMENT_CASES[:1] if quick else AGREEMENT_CASES) + [recompile_row()]
    name = torch.cuda.get_device_name(0)
    for T in sorted(lengths, reverse=True):  # longest first: the table's decision at T needs only T' >= T
        for s in distinct_sparsities(T, sparsities):
            rows += size_rows(T, s, iters=iters_for(T))
            print(f"T={T} sparsity={s} done", flush=True)
        entries = derive_table(rows)
        crossover.TABLE[(name, "bfloat16")] = tuple(entries)
        crossover._entries.cache_clear()
        print(f"auto table for {name} from lengths >= {T}: {entries}", flush=True)
        rows += auto_rows((T,), sparsities, iters_for)
        if progress:
            progress(rows)
    rows.append({"part": "gpu", "what": "auto table", "device": name, "dtype": "bfloat16",
                 "entries": [list(e) for e in entries]})  # fmt: skip
    if progress:
        progress(rows)
    if profile and not quick:
        try:
            print_profile()
        except Exception as err:  # noqa: BLE001 - the profile is diagnostic only
            print(f"profile failed: {err}", flush=True)
    return rows


def warm(lengths: tuple[int, ...]) -> None:
    """Run every method once forward and once with backward at each length, so that Inductor's on-disk
    caches hold their compiled graphs (shapes do not depend on the sparsity); the timing run then loads
    them instead of compiling. Used by ``--warm-workers``, one process per group of lengths."""
    torch._dynamo.config.recompile_limit = 64
    torch.backends.cuda.matmul.allow_tf32 = True
    for T in lengths:
        if T == 0:  # the agreement cases
            agreement_rows(AGREEMENT_CASES)
            recompile_row()
            continue
        core, q, k, v = make_case(T, 0.95)
        for fn in methods(core, q, k, v, T).values():
            _call(lambda fn=fn: _no_grad(fn), False)
            _call(fn, True)
        torch.cuda.synchronize()
        print(f"warm T={T} done", flush=True)


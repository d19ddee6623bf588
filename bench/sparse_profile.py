"""Where the time of a sparse step goes at 32k tokens (issue 22): the attention layer and the byte LM.

Three parts, each a process of its own (``--warm-only`` first fills Inductor's on-disk cache, so that
the timed process loads its graphs instead of compiling them; the warm processes run in parallel):

* ``layer``: the bench's layer at 32k tokens, 95% block sparsity (B=4, H=16, head dim 64, 128-token
  blocks, window 1 + top-9 of 256 key blocks, bf16): dense SDPA, the flex layer and the bare flex
  kernel, forward+backward timed two ways: as bench/attention.py does (``backward(ones_like)`` into q,
  k, v that keep their ``.grad``, so every call also adds 3 full-size gradients into the old ones) and
  as a model sees it (``torch.autograd.grad`` with a fixed output gradient: no accumulation). Also the
  flex kernel with every block kept (its own dense speed), and a profile of the layer.
* ``tiles``: the bare flex kernel at 32k/95% under several forward and backward tile configurations
  (H100 and H200 are both compute capability 9.0; the tiles in ``backends.FLEX_TILES`` were tuned on an
  H200).
* ``lm``: the byte LM of bench/long_context.py at 32k context (width 256, 4 layers, 4 heads, window 1
  + top-2 of 256 blocks, bf16, one window per micro-batch): forward+backward of the loss, dense and
  sparse, with the model eager and with each block's feed-forward half compiled (``rest compiled``); a profile of each:
  GPU time by kind of kernel, GPU idle time (wall minus kernels), and each variant's gradients against
  the eager model's (same weights and window).

    python3 bench/sparse_profile.py --part layer --warm-only   # on the GPU machine, each part
    python3 bench/sparse_profile.py --part layer --out-dir DIR  # then timed: DIR/sparse_profile_layer.txt

Measured (H100 80GB, torch 2.11.0+cu130, 2026-12-06, bench/results/sparse_profile_*.txt; the three
parts warmed in parallel, then timed one after another with the GPU alone):

* LM, per 32k window fwd+bwd: dense 25.07 ms (cuDNN SDPA 17.8 ms of 24.0 ms GPU work), sparse 13.17 ms
  with 9.1 ms of GPU work (flex 2.3, pooling/selection 0.24, matmuls 1.3, the rest elementwise and
  LayerNorm, whose eager backward alone is ~1.5 ms) and ~4 ms of GPU idle: the sparse step is bound
  by the host (~510 kernel launches plus two compiled calls per layer). Compiling each block's
  feed-forward half changed nothing (13.08 ms). Whole blocks compiled (one graph per block, the layer
  traced inline) were tried and taken out: 13.67 ms against 17.19 eager in the same run
  (sparse_profile_lm_compiled.txt; eager had read 13.17 ms in the first run), gradients 7% off the
  eager model's, and the layer so traced failed bench/gpu_check.py (max error 3.66, bf16, 2 global
  tokens, causal).
* Layer at 32k/95% (kept 0.0468, ideal 21.35x), fwd+bwd, gradients handed on (autograd.grad): dense
  SDPA 135.2 ms, flex layer 11.23 ms (12.0x: 0.564 of ideal), bare flex kernel 10.01 ms (13.5x: 0.633),
  the flex kernel with every block kept 181.3 ms (the layer is 16.1x faster than that: 0.756 of ideal).
  The bench's way (ones as output gradient, gradients accumulated into q, k, v) read 0.539 / 0.600.
  Layer GPU work 9.92 ms: flex 9.03, pooling/selection 0.46, add/branch 0.30, matmuls 0.11; 1.2 ms idle.
  Even without the idle time and the layer's extra GPU work, 135.2 / 8.66 ms (the bare kernel's GPU
  time) is 0.73 of ideal: 0.70 against cuDNN needs a faster attention kernel than flex's.
* Tiles: the H200-tuned choice (forward default 128x128, backward 64x64 / 4 warps / 3 stages) is
  within 1% of the best of the 12 tried (fwd 2.22-3.37 ms, fwd+bwd 8.83-17.2 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

B, H, D, BLOCK, T = 4, 16, 64, 128, 32768
KINDS = (  # (kind, name fragments), first match wins
    ("flex attention", ("flex_attention",)),
    ("dense attention (SDPA)", ("fmha", "flash", "cudnn", "attention", "sdpa")),
    ("pooling / block selection", ("pick_kernel", "lists_kernel", "mean", "bmm")),
    ("matmul", ("gemm", "xmma", "cutlass", "nvjet", "matmul", "_mm")),
    ("aten elementwise / copy (incl. grad accumulation)", ("copy", "fill", "elementwise")),
)


def log(out: list[str], line: str = "") -> None:
    print(line, flush=True)
    out.append(line)


def sync_ms(fn: Callable[[], object], iters: int) -> float:
    """Median milliseconds of ``fn`` (already warm), CUDA events around each call."""
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], iters: int) -> dict[str, float]:
    """Median ms per callable, timed in alternating rounds (drift hits all alike)."""
    times: dict[str, list[float]] = {n: [] for n in fns}
    order = list(fns)
    for i in range(iters):
        for n in order if i % 2 else reversed(order):
            times[n].append(sync_ms(fns[n], 1))
    return {n: statistics.median(t) for n, t in times.items()}


def profile_summary(fn: Callable[[], object], steps: int, out: list[str], title: str) -> None:
    """Profile ``steps`` calls: wall per call, GPU kernel time by kind, idle = wall - kernels, and the
    top kernels and CPU-side ops."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) * 1e3 / steps
    kernels = [
        e for e in prof.key_averages() if e.device_type.name == "CUDA" and e.self_device_time_total > 0
    ]
    total = sum(e.self_device_time_total for e in kernels) / 1e3 / steps
    by_kind: dict[str, float] = {}
    for e in kernels:
        kind = next(
            (k for k, frags in KINDS if any(f in e.key.lower() for f in frags)),
            "other (elementwise, norm, ...)",
        )
        by_kind[kind] = by_kind.get(kind, 0.0) + e.self_device_time_total / 1e3 / steps
    log(out, f"## {title}")
    log(out, f"wall per call (under the profiler) {wall:.3f} ms; GPU kernels {total:.3f} ms; "
             f"GPU idle {wall - total:.3f} ms ({100 * (wall - total) / wall:.0f}%)")  # fmt: skip
    for kind, ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        log(out, f"  {kind:32s} {ms:8.3f} ms  {100 * ms / total:5.1f}% of kernel time")
    log(out, f"  kernel launches per call: {sum(e.count for e in kernels) / steps:.0f}")
    for key, n in (("self_device_time_total", 22), ("self_cpu_time_total", 12)):
        try:
            log(out, prof.key_averages().table(sort_by=key, row_limit=n, max_name_column_width=70))
        except Exception as err:  # noqa: BLE001 - the tables are diagnostic
            log(out, f"table by {key} failed: {err}")


# ----------------------------------------------------------------------------------------------- layer
def layer_case():
    from ast_robot.policies.attention import SparseAttentionCore

    torch.manual_seed(0)
    core = SparseAttentionCore(D, BLOCK, 1, 9, n_global=0, backend="flex").cuda().to(torch.bfloat16)
    q, k, v = (
        torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
    )
    return core, q, k, v


def full_block_mask(blocks):
    from ast_robot.policies import masks
    from ast_robot.policies.backends import SparsePlan, build_block_mask

    lists = masks.flex_lists(blocks, 0, BLOCK, T, False)
    return build_block_mask(SparsePlan(blocks, BLOCK, 0, False, T, None, lists), T)


def layer_fns(core, q, k, v) -> dict[str, Callable[[], torch.Tensor]]:
    from ast_robot.policies.backends import build_block_mask, flex_call

    with torch.no_grad():
        plan, _ = core.plan(q, k, v, "flex")
    mask = build_block_mask(plan, T)
    every = torch.ones(B, H, T // BLOCK, T // BLOCK, dtype=torch.bool, device="cuda")
    every_mask = full_block_mask(every)
    return {"dense_sdpa": lambda: F.scaled_dot_product_attention(q, k, v), "flex_layer": lambda: core(q, k, v),
            "flex_kernel": lambda: flex_call(q, k, v, mask, whole_blocks=True),
            "flex_kernel_every_block": lambda: flex_call(q, k, v, every_mask, whole_blocks=True)}  # fmt: skip


def with_backward(fn, wrt, grad, accumulate: bool) -> Callable[[], None]:
    def accumulate_call() -> None:  # bench/attention.py's way: q, k, v keep .grad, each call adds into it
        out = fn()
        out.backward(torch.ones_like(out))

    def model_call() -> None:  # a model's way: the gradients flow on, nothing accumulates
        torch.autograd.grad(fn(), wrt, grad)

    return accumulate_call if accumulate else model_call


def layer_part(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    core, q, k, v = layer_case()
    grad = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16)
    fns = layer_fns(core, q, k, v)
    with torch.no_grad():
        plan, _ = core.plan(q, k, v, "flex")
    kept = 1 - plan.block_sparsity()
    calls = {}
    for name, fn in fns.items():
        for acc in (True, False):
            wrt = (q, k, v, *core.parameters()) if name == "flex_layer" else (q, k, v)
            calls[(name, acc)] = with_backward(fn, wrt, grad, acc)
            for _ in range(3):
                calls[(name, acc)]()
        calls[(name, "fwd")] = lambda fn=fn: torch.no_grad()(fn)()
        for _ in range(3):
            calls[(name, "fwd")]()
    torch.cuda.synchronize()
    if args.warm_only:
        return out
    log(out, f"# layer at {T} tokens, B={B} H={H} D={D}, 95% target: kept fraction {kept:.4f} "
             f"(ideal speed-up {1 / kept:.2f}x); {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
             f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}")  # fmt: skip
    for acc in ("fwd", True, False):
        times = interleaved({n: calls[(n, acc)] for n in fns}, args.iters)
        what = {"fwd": "forward only", True: "fwd+bwd, bench way (grads accumulate into q,k,v .grad)",
                False: "fwd+bwd, model way (autograd.grad, no accumulation)"}[acc]  # fmt: skip
        log(out, f"## {what}")
        for n, ms in times.items():
            ratio = times["dense_sdpa"] / ms
            log(out, f"  {n:26s} {ms:9.3f} ms  dense/this {ratio:6.2f}x  of ideal {ratio * kept:6.3f}")
    q.grad = k.grad = v.grad = None
    profile_summary(calls[("flex_layer", False)], 3, out, "profile: flex layer fwd+bwd, model way")
    profile_summary(calls[("flex_kernel", False)], 3, out, "profile: bare flex kernel fwd+bwd, model way")
    return out


# ----------------------------------------------------------------------------------------------- tiles
FWD_TILES = ({}, {"fwd_num_warps": 8}, {"fwd_BLOCK_N": 64}, {"fwd_num_stages": 2},
             {"fwd_BLOCK_M": 64, "fwd_BLOCK_N": 64}, {"fwd_num_stages": 4})  # fmt: skip
BWD_TILES = (
    {"bwd_BLOCK_M1": 64, "bwd_BLOCK_N1": 64, "bwd_BLOCK_M2": 64, "bwd_BLOCK_N2": 64, "bwd_num_warps": 4, "bwd_num_stages": 3},
    {},  # Inductor's sm90 default for head dim 64
    {"bwd_BLOCK_M1": 64, "bwd_BLOCK_N1": 64, "bwd_BLOCK_M2": 64, "bwd_BLOCK_N2": 64, "bwd_num_warps": 4, "bwd_num_stages": 4},
    {"bwd_BLOCK_M1": 64, "bwd_BLOCK_N1": 64, "bwd_BLOCK_M2": 64, "bwd_BLOCK_N2": 64, "bwd_num_warps": 8, "bwd_num_stages": 3},
    {"bwd_BLOCK_M1": 32, "bwd_BLOCK_N1": 64, "bwd_BLOCK_M2": 64, "bwd_BLOCK_N2": 32, "bwd_num_warps": 4, "bwd_num_stages": 3},
    {"bwd_BLOCK_M1": 64, "bwd_BLOCK_N1": 128, "bwd_BLOCK_M2": 128, "bwd_BLOCK_N2": 64, "bwd_num_warps": 8, "bwd_num_stages": 2},
)  # fmt: skip


def tiles_part(args: argparse.Namespace) -> list[str]:
    from ast_robot.policies.backends import build_block_mask, compiled_flex

    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.cache_size_limit = 64
    out: list[str] = []
    core, q, k, v = layer_case()
    grad = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        plan, _ = core.plan(q, k, v, "flex")
    mask = build_block_mask(plan, T)
    flex = compiled_flex()
    fwd, bwd = {}, {}
    for i, opts in enumerate(FWD_TILES):
        o = {"ROWS_GUARANTEED_SAFE": True, **BWD_TILES[0], **opts}

        def f(o=o) -> None:
            with torch.no_grad():
                flex(q, k, v, block_mask=mask, kernel_options=o)

        fwd[f"fwd {i} {opts or 'default (128x128, 4 warps, 3 stages)'}"] = f
    for i, opts in enumerate(BWD_TILES):
        o = {"ROWS_GUARANTEED_SAFE": True, **opts}
        bwd[f"bwd {i} {opts or 'sm90 default (64/128, 8 warps, 3 stages)'}"] = lambda o=o: (
            torch.autograd.grad(flex(q, k, v, block_mask=mask, kernel_options=o), (q, k, v), grad)
        )
    for group in (fwd, bwd):
        for name, fn in list(group.items()):
            try:
                for _ in range(3):
                    fn()
                torch.cuda.synchronize()
            except Exception as err:  # noqa: BLE001 - a config that does not build is reported, not fatal
                log(out, f"{name}: failed {type(err).__name__}: {str(err)[:200]}")
                del group[name]
    if args.warm_only:
        return out
    log(out, f"# bare flex kernel tiles at {T} tokens, 95% (B={B} H={H} D={D}); {torch.cuda.get_device_name(0)}, "
             f"torch {torch.__version__}, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; fwd-only, then fwd+bwd (model way)")  # fmt: skip
    for group in (fwd, bwd):
        for name, ms in interleaved(group, args.iters).items():
            log(out, f"  {ms:8.3f} ms  {name}")
    return out


# ----------------------------------------------------------------------------------------------- LM
def lm_model(kernel: str, variant: str):
    from ast_robot.trainers import language as lm

    torch.manual_seed(0)
    model = lm.ByteLM(T, 256, 4, 4, BLOCK, 1, 2)
    for block in model.encoder.blocks:
        block.attn.core.backend = kernel
    model = model.cuda().to(torch.bfloat16)
    if variant == "rest compiled":
        compile_rest(model)
    return model


def compile_rest(model) -> None:
    """Compile what is not attention: each block's second half (norm, MLP, residual), and the head."""
    import types

    ffn = torch.compile(lambda x, norm, mlp: x + mlp(norm(x)), dynamic=False)

    def block_forward(self, x):
        x = x + self.drop(self.attn(self.norm1(x)))
        return ffn(x, self.norm2, self.mlp)

    for block in model.encoder.blocks:
        block.forward = types.MethodType(block_forward, block)


def lm_part(args: argparse.Namespace) -> list[str]:
    from ast_robot.core.data import Batch
    from ast_robot.trainers import language as lm

    torch._dynamo.config.recompile_limit = 64
    out: list[str] = []
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 256, (1, T + 1), generator=g, dtype=torch.uint8)
    batch = Batch(tokens[:, :-1], tokens[:, 1:], torch.arange(1)).to("cuda")
    steps, grads = {}, {}
    for kernel in ("full", "flex"):
        for variant in args.lm_variants:
            name = f"{'dense' if kernel == 'full' else 'sparse'} {variant}"
            try:
                model = lm_model(kernel, variant)

                def step(model=model) -> None:
                    model.zero_grad(set_to_none=True)
                    lm.lm_loss(model, batch).losses.mean().backward()

                for _ in range(3):
                    step()
                torch.cuda.synchronize()
                steps[name] = step
                grads[name] = [p.grad.float().clone() for p in model.parameters()]  # same weights per variant
            except Exception as err:  # noqa: BLE001
                log(out, f"{name}: failed {type(err).__name__}: {str(err)[:300]}")
    for name, g in grads.items():  # a variant computes what the eager model of the same kernel computes
        ref = grads.get(name.split()[0] + " rest eager")
        if ref is not None and ref is not g:
            rel = max(((a - b).norm() / b.norm().clamp_min(1e-12)).item() for a, b in zip(g, ref))
            log(out, f"{name}: worst relative gradient difference vs the eager model, per parameter: {rel:.3g}")
    if args.warm_only:
        return out
    log(out, f"# byte LM fwd+bwd per 32k window (B=1, width 256, 4 layers, 4 heads, window 1 + top-2 of 256 "
             f"blocks, bf16); {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
             f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}")  # fmt: skip
    times = interleaved(steps, args.iters)
    for name, ms in times.items():
        log(out, f"  {name:28s} {ms:8.3f} ms")
    for name, fn in steps.items():
        profile_summary(fn, 3, out, f"profile: LM {name}")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("layer", "tiles", "lm"), required=True)
    p.add_argument("--warm-only", action="store_true")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--lm-variants", nargs="+", default=["rest eager", "rest compiled"],
                   choices=["rest eager", "rest compiled"], help="lm: how the model runs")
    p.add_argument("--name", default="", help="suffix of the output file name")
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = True
    lines = {"layer": layer_part, "tiles": tiles_part, "lm": lm_part}[args.part](args)
    if not args.warm_only:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / f"sparse_profile_{args.part}{args.name}.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

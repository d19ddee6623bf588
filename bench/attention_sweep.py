"""GPU diagnosis of the flex layer at 32k tokens / 95% block sparsity (printed, not a result file).

Prints: the layer's fwd+bwd time and peak memory against dense SDPA and the bare kernel (timed in
interleaved rounds), the cost of its parts (scorer, block selection eager and compiled, top-k), `auto`
against SDPA at 256/1024 tokens, a torch.profiler table of the layer and, with ``--autotune``,
Inductor's autotuning tables of the FlexAttention kernels (how `backends.FLEX_TILES` was chosen).

    python bench/attention_sweep.py [--autotune] 2>&1 | tee OUT/sweep.log
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ast_robot.policies import backends, masks  # noqa: E402
from ast_robot.policies.attention import SparseAttentionCore  # noqa: E402
from bench.attention_gpu import BLOCK, B, D, H, _no_grad, _peak_mib, agreement_rows, layout, time_interleaved  # noqa: E402

T = 32768


def compare(fns: dict, iters: int) -> None:
    """Peak MiB and interleaved median ms of each callable, forward and forward+backward."""
    for backward in (False, True):
        calls = {n: (fn if backward else (lambda fn=fn: _no_grad(fn))) for n, fn in fns.items()}
        peaks = {n: _peak_mib(c, backward) for n, c in calls.items()}
        times = time_interleaved(calls, backward, iters)
        for n in fns:
            print(
                f"{'fwd+bwd' if backward else 'fwd':8s} {n:28s} {times[n]:9.3f} ms {peaks[n]:8.0f} MiB",
                flush=True,
            )


def autotune(q, k, v, mask) -> None:
    from torch.nn.attention.flex_attention import flex_attention

    for opts in ({"ROWS_GUARANTEED_SAFE": True}, {"ROWS_GUARANTEED_SAFE": True, "USE_TMA": True}):
        torch._dynamo.reset()
        tuned = torch.compile(flex_attention, dynamic=False, mode="max-autotune-no-cudagraphs")
        print(f"autotuning with {opts}", flush=True)
        compare(
            {f"autotuned {opts}": lambda t=tuned, o=opts: t(q, k, v, block_mask=mask, kernel_options=o)}, 20
        )


def main() -> None:
    torch._dynamo.config.recompile_limit = 64
    print(torch.__version__, torch.cuda.get_device_name(0), torch.version.cuda, flush=True)
    t0 = time.time()
    print(agreement_rows(((1024, 3, False),)), f"{time.time() - t0:.0f} s", flush=True)

    window, top_k = layout(T // BLOCK, 0.95)
    core = SparseAttentionCore(D, BLOCK, window, top_k, n_global=0, backend="flex").cuda().bfloat16()
    eager = SparseAttentionCore(D, BLOCK, window, top_k, n_global=0, backend="flex", compile_plan=False)
    eager = eager.cuda().bfloat16()
    eager.load_state_dict(core.state_dict())
    q, k, v = (
        torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
    )
    with torch.no_grad():
        plan, _ = core.plan(q, k, v)
    print(f"window {window} top_k {top_k} block sparsity {plan.block_sparsity():.4f}", flush=True)
    mask = backends.build_block_mask(plan, T)
    fns = {
        "dense_sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
        "flex layer": lambda: core(q, k, v),
        "flex layer eager plan": lambda: eager(q, k, v),
        "flex kernel": lambda: backends.flex_call(q, k, v, mask, whole_blocks=True),
    }
    compare(fns, 20)
    print(f"{time.time() - t0:.0f} s", flush=True)

    with torch.no_grad():
        _, scores, _ = core.scorer(q, k, v, BLOCK, False)
        base, exclude, _ = core._static_tables(T // BLOCK, q.device)
        masked = scores.masked_fill(exclude, float("-inf"))
        parts = {
            "plan eager": lambda: eager.plan(q, k, v, "flex")[0].blocks,
            "plan compiled": lambda: core.plan(q, k, v, "flex")[0].blocks,
            "scorer": lambda: core.scorer(q, k, v, BLOCK, False)[1],
            "select_blocks": lambda: backends.select_blocks(scores, base, exclude, top_k),
            "topk": lambda: masked.topk(top_k, dim=-1)[0],
            "to_kv_lists": lambda: masks.to_kv_lists(plan.blocks)[1],
        }
        for c in parts.values():
            _peak_mib(c, False)
        for n, ms in time_interleaved(parts, False, 50).items():
            print(f"{n:24s} {ms:.3f} ms", flush=True)

    for n in (256, 1024):
        short = SparseAttentionCore(D, BLOCK, 0, 0, backend="auto").cuda().bfloat16()
        a, b, c = (
            torch.randn(B, H, n, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
        )
        pair = {"sdpa": lambda a=a, b=b, c=c: F.scaled_dot_product_attention(a, b, c),
                "auto": lambda a=a, b=b, c=c, m=short: m(a, b, c)}  # fmt: skip
        for fn in pair.values():
            _peak_mib(fn, True)
        for rep in range(3):
            t = time_interleaved(pair, True, 200)
            print(
                f"T={n} rep {rep}: sdpa {t['sdpa']:.4f} ms auto {t['auto']:.4f} ms ratio {t['auto'] / t['sdpa']:.3f}"
            )

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            core(q, k, v).sum().backward()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30), flush=True)
    print(f"{time.time() - t0:.0f} s", flush=True)
    if "--autotune" in sys.argv:
        autotune(q, k, v, mask)


if __name__ == "__main__":
    main()

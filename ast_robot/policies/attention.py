"""`SparseAttention`: multi-head attention over a local block window, global tokens and learned top-k
key blocks, with interchangeable kernels (`dense` reference, `flex`, `flash`, `full`, `auto`).

Per layer: the :class:`~ast_robot.policies.scorer.BlockScorer` ranks key blocks and produces a
compressed-attention output per query block; the chosen blocks (window + top-k) plus global tokens go to
the backend kernel; the compressed output, scaled by a learned per-block gate, is added to every token of
its query block. The block backends (`dense`, `flex`) differ only in the kernel, so they agree with the
dense reference up to dtype tolerance. `flash` is a different pattern: flash-attn's token-level sliding
window of radius ``window_blocks * block_size`` around each query (block windows allow whole blocks with
``|q_block - k_block| <= window_blocks``). A layer built with ``backend="flash"`` therefore plans a
token window for every backend (its `dense` reference computes the same window), and a layer built for
block windows refuses a per-call ``backend="flash"``.

`full` is plain attention over every pair (SDPA without a mask, no scorer). `auto` runs `full` below the
crossover length, where block sparsity costs more than it saves (on an H200 at 1k tokens the flex layer
took 2.1-2.4 ms fwd+bwd, dense SDPA 0.22 ms), and the sparse pattern above it; the crossover is measured
per device and dtype (:mod:`~ast_robot.policies.crossover`) unless the layer is given a fixed one. Below the crossover
`auto` is one SDPA call and nothing else. A layer built with ``backend="full"`` has no scorer parameters; the policy builds its layers that way when
its (fixed) sequence is shorter than the crossover, so that no parameter goes unused.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ast_robot.policies import crossover as crossovers
from ast_robot.policies import masks, select_kernels
from ast_robot.policies.backends import (
    BACKENDS,
    SparsePlan,
    add_per_block,
    flex_inputs,
    flex_padded,
    pick_blocks,
)
from ast_robot.policies.scorer import (
    BlockScorer,
    compressed_branch,
    pool_blocks,
    pool_queries_keys,
    rank_scores,
)

BACKEND_NAMES = ("dense", "flex", "flash", "full", "auto")


def choose_backend(backend: str, length: int, crossover: int, flex_ok: bool = True) -> str:
    """Resolve `auto`: `full` attention below ``crossover`` tokens (where block-sparse kernels lose to
    dense ones even at ~50% sparsity, FACTS.md), `flex` at and above it when ``flex_ok``, else the `dense`
    reference (FlexAttention has no backward on CPU, so long-sequence CPU training runs the reference)."""
    if backend not in BACKEND_NAMES:
        raise ValueError(f"attention backend must be one of {list(BACKEND_NAMES)}, got {backend!r}")
    if backend != "auto":
        return backend
    if length < crossover:
        return "full"
    return "flex" if flex_ok else "dense"


def select(q: Tensor, k: Tensor, v: Tensor, k_proj: tuple[Tensor, Tensor], tables: tuple[Tensor, Tensor, Tensor],
           n_global: int, block_size: int, causal: bool) -> tuple[Tensor, ...]:  # fmt: skip
    """The block selection as one pure tensor function, run without gradient (selection is not
    differentiable): ``(qb, kp, vp, blocks, *lists)``, the pooled queries, keys and values
    ``(B, H, nb, D)`` (the compressed branch reads them detached), the chosen blocks ``(B, H, nQb, nKVb)``
    and FlexAttention's eight block lists. ``k_proj``: the scorer's key compression; ``tables``:
    :meth:`SparseAttentionCore._static_tables`. Every backend runs this same selection, so all agree with
    `dense`. The values are pooled here, before the kernel, where the GPU would otherwise wait for the
    host (at 32k tokens on an H200 the layer took 10.8 instead of 11.05 ms fwd+bwd in one run)."""
    base, exclude, top_k = tables
    qb, kp = pool_queries_keys(q, k, block_size, causal)
    vp = pool_blocks(v, block_size)
    scores = rank_scores(qb, kp, *k_proj)  # (B, H, nQb, nKVb)
    whole = not masks.has_partial_blocks(n_global, block_size, q.shape[2], causal)
    if select_kernels.available(q):
        blocks = select_kernels.pick_blocks(scores, exclude, base, top_k)
        if whole:
            return qb, kp, vp, blocks, *select_kernels.whole_block_lists(blocks)
        any_, full = masks.block_tables(blocks, n_global, block_size, q.shape[2], causal)
        return qb, kp, vp, blocks, *select_kernels.block_lists(any_ & ~full, full)
    blocks = pick_blocks(scores.masked_fill(exclude, float("-inf")), base, top_k)
    return qb, kp, vp, blocks, *masks.flex_lists(blocks, n_global, block_size, q.shape[2], causal)


def branch(pooled: tuple[Tensor, Tensor, Tensor], scorer_params: tuple[Tensor, ...], gate: tuple[Tensor, Tensor],
           causal: bool) -> Tensor:  # fmt: skip
    """The gated compressed-branch output per query block ``(B, H, nQb, D)`` from the pooled ``(qb, kp,
    vp)``: how the scorer learns."""
    qb = pooled[0]
    compressed = compressed_branch(*pooled, scorer_params, causal)
    return torch.sigmoid(F.linear(qb, *gate)) * compressed


def flex_tail(q: Tensor, k: Tensor, v: Tensor, block_mask, kernel_options: dict[str, object],
              pooled: tuple[Tensor, Tensor, Tensor], scorer_params: tuple[Tensor, ...], gate: tuple[Tensor, Tensor],
              block_size: int, causal: bool) -> Tensor:  # fmt: skip
    """FlexAttention, then the compressed branch, then their sum, as one pure function for one compiled
    graph: the kernel comes first, so the host enqueues the branch's small kernels while the GPU runs it,
    and the per-block add becomes one fused pass (eagerly, the broadcast add took 0.36 ms at 32k tokens
    on an H200, 3x its memory-bound time)."""
    out = flex_padded(q, k, v, block_mask, block_size, kernel_options)  # (B, H, T, D)
    return add_per_block(out, branch(pooled, scorer_params, gate, causal), block_size)


@functools.cache
def compiled(fn, cpp_wrapper: bool = False):
    """``fn`` compiled once per process with static shapes (one graph per sequence length and grad mode;
    dynamic shapes failed inside Inductor on the pooling views; top-k is a tensor, not a constant). On
    a GPU, eagerly, the ~50 small launches of a layer's selection left the GPU waiting for the host
    before FlexAttention could start. ``cpp_wrapper``: launch the graph's kernels from C++ rather than
    Python (used for `select`, whose launches the kernel waits for: at 32k tokens on an H200 the layer
    took 10.7 instead of 11.05 ms fwd+bwd in one run; a backward graph built so failed in torch 2.11,
    "CudaKernelParamCache not populated", so graphs that train keep the Python wrapper). On an H100 (torch
    2.11) `select` built with the C++ wrapper and the torch block lists (:func:`masks.to_kv_lists`: cumsum,
    then scatter) failed a device-side assert, scatter index out of [0, n + 1), with causal masks, global
    tokens and a partial last block (issue 22); the same graph with the Python wrapper, each piece compiled
    alone, and eager all gave the right lists. So on a GPU the lists come from our Triton kernel
    (:func:`select_kernels.block_lists`, indices in range by construction) and the torch lists are never
    compiled with the C++ wrapper."""
    return torch.compile(fn, dynamic=False, options={"cpp_wrapper": True} if cpp_wrapper else None)


class SparseAttentionCore(nn.Module):
    """Block selection + kernel on per-head tensors ``(B, H, T, D) -> (B, H, T, D)``."""

    def __init__(self, head_dim: int, block_size: int = 16, window_blocks: int = 1, top_k_blocks: int = 2,
                 n_global: int = 0, causal: bool = False, backend: str = "auto", crossover: int | None = None,
                 compile_plan: bool | None = None) -> None:  # fmt: skip
        super().__init__()
        masks._check_int("block_size", block_size, 1)
        masks._check_int("window_blocks", window_blocks, 0)
        masks._check_int("top_k_blocks", top_k_blocks, 0)
        masks._check_int("n_global", n_global, 0)
        if crossover is not None:
            masks._check_int("crossover", crossover, 1)
        choose_backend(backend, 1, 1)  # validates the name
        if backend == "flash" and (top_k_blocks or n_global):
            raise ValueError(f"backend 'flash' supports only a plain window: top_k_blocks={top_k_blocks} and "
                             f"n_global={n_global} must be 0")  # fmt: skip
        self.block_size, self.window_blocks, self.top_k = block_size, window_blocks, top_k_blocks
        self.n_global, self.causal, self.backend, self.crossover = n_global, causal, backend, crossover
        sparse = backend != "full"
        self.scorer = BlockScorer(head_dim) if sparse else None
        self.gate = (
            nn.Linear(head_dim, 1) if sparse else None
        )  # per query block: weight of the compressed branch
        self.compile_plan = compile_plan  # compile `select`; None: on CUDA only (a CPU compile ~30 s)
        self._last = [""]  # a list, not an attribute: nn.Module.__setattr__ costs ~2 us per call
        self._tables: dict[tuple[int, str], tuple[Tensor, Tensor, Tensor]] = {}
        # (device index, dtype) -> crossover: read on every call, so keyed by what is cheapest to get
        # from a tensor (at 256 tokens a forward SDPA call is ~20 us of host time on an H100 machine).
        self._crossovers: dict[tuple[int, torch.dtype], int] = {}

    def crossover_for(self, q: Tensor) -> int:
        """The length from which `auto` runs sparse for inputs like ``q``: the layer's fixed ``crossover``,
        or else the one measured for its device and dtype at this layer's kept blocks (:mod:`crossover`)."""
        key = (q.get_device(), q.dtype)
        if key not in self._crossovers:
            if self.crossover is not None:
                self._crossovers[key] = self.crossover
            else:
                kept = 2 * self.window_blocks + 1 + self.top_k
                entries = crossovers.entries_for(q.device, q.dtype)
                self._crossovers[key] = crossovers.crossover_tokens(entries, kept, self.block_size)
        return self._crossovers[key]

    @property
    def last_backend(self) -> str:
        """The kernel the latest call used (for logs and tests)."""
        return self._last[0]

    def plan(
        self, q: Tensor, k: Tensor, v: Tensor, backend: str = "dense"
    ) -> tuple[SparsePlan, tuple[Tensor, ...]]:
        """The block selection for these inputs (with FlexAttention's block lists; a token window for
        `flash` and for every backend of a layer built with ``backend="flash"``) and the pooled queries,
        keys and values ``(qb, kp, vp)`` the compressed branch reads."""
        T = q.shape[2]
        n_blocks = -(-T // self.block_size)
        if self.top_k > n_blocks:
            raise ValueError(f"top_k_blocks ({self.top_k}) exceeds the number of key blocks ({n_blocks}) of a "
                             f"{T}-token sequence with block_size {self.block_size}")  # fmt: skip
        k_proj = (self.scorer.k_compress.weight, self.scorer.k_compress.bias)
        with torch.no_grad():  # one compiled graph whatever the grad mode
            # The C++ wrapper only around our Triton list kernels: with the torch lists (select kernels off)
            # a graph so built hit out-of-range scatter indices on an H100 (torch 2.11), see `compiled`.
            fn = compiled(select, cpp_wrapper=select_kernels.available(q)) if self._compile(q) else select
            qb, kp, vp, blocks, *lists = fn(
                q,
                k,
                v,
                k_proj,
                self._static_tables(n_blocks, q.device),
                self.n_global,
                self.block_size,
                self.causal,
            )
        flash = "flash" in (backend, self.backend)  # a flash-built layer: its dense reference too
        token_window = self.window_blocks * self.block_size if flash else None
        plan = SparsePlan(blocks, self.block_size, self.n_global, self.causal, T, token_window, tuple(lists))
        return plan, (qb, kp, vp)

    def _compile(self, q: Tensor) -> bool:
        return q.is_cuda if self.compile_plan is None else self.compile_plan

    def _static_tables(self, n_blocks: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """``(base, exclude, top_k)``, built once per (length, device) since they do not depend on data: bool
        ``(nQb, nKVb)`` tables of the allowed window blocks and of the blocks top-k may not pick (window or
        disallowed), and ``top_k`` as a 0-d tensor (so that compiled graphs do not specialize on it)."""
        key = (n_blocks, str(device))
        if key not in self._tables:
            window = masks.window_table(n_blocks, n_blocks, self.window_blocks, device)
            allowed = (
                masks.causal_table(n_blocks, n_blocks, device)[0] if self.causal else torch.ones_like(window)
            )
            top_k = torch.tensor(self.top_k, device=device)
            self._tables[key] = (window & allowed, window | ~allowed, top_k)
        return self._tables[key]

    def forward(self, q: Tensor, k: Tensor, v: Tensor, backend: str | None = None) -> Tensor:
        backend = backend or self.backend
        if backend == "flash" and self.backend != "flash":
            raise ValueError(f"backend 'flash' (a token-level window) on a layer built for block windows "
                             f"(backend {self.backend!r}) would compute another mask; build the layer with "
                             "backend='flash' (top_k_blocks=0, n_global=0)")  # fmt: skip
        if backend == "full" or (
            backend == "auto" and q.shape[2] < (self._crossovers.get((q.get_device(), q.dtype)) or self.crossover_for(q))
        ):
            # Below the crossover: one SDPA call and nothing else (no scorer, mask, allocation or kernel).
            self._last[0] = "full"
            return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)  # (B, H, T, D)
        needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
        name = choose_backend(backend, q.shape[2], self.crossover_for(q), q.is_cuda or not needs_grad)
        self._last[0] = name
        if self.scorer is None:
            raise ValueError(
                f"this layer was built with backend 'full' (no block scorer); it cannot run {name!r}"
            )
        plan, pooled = self.plan(q, k, v, name)
        params = (self.scorer.params(), (self.gate.weight, self.gate.bias))
        if name == "flex" and self._compile(q):  # kernel, branch and add in one graph (see flex_tail)
            block_mask, options = flex_inputs(plan, q.device)
            with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):  # raise, never fall back
                return compiled(flex_tail)(
                    q, k, v, block_mask, options, pooled, *params, self.block_size, self.causal
                )
        compressed = branch(pooled, *params, self.causal)
        return BACKENDS.get(name)(q, k, v, plan, compressed)  # (B, H, T, D), compressed branch added


class SparseAttention(nn.Module):
    """Multi-head self-attention layer ``(B, T, d_model) -> (B, T, d_model)`` around the sparse core."""

    def __init__(self, d_model: int, n_heads: int, **core_kwargs) -> None:
        super().__init__()
        masks._check_int("d_model", d_model, 1)
        masks._check_int("n_heads", n_heads, 1)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads}); "
                             f"allowed n_heads: {[h for h in range(1, d_model + 1) if d_model % h == 0]}")  # fmt: skip
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.core = SparseAttentionCore(self.head_dim, **core_kwargs)

    def forward(self, x: Tensor, backend: str | None = None) -> Tensor:
        B, T, C = x.shape
        qkv = (
            self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )  # (3, B, H, T, hd)
        out = self.core(qkv[0], qkv[1], qkv[2], backend=backend)  # (B, H, T, hd)
        return self.proj(out.transpose(1, 2).reshape(B, T, C))

"""`SparseAttention`: multi-head attention over a local block window, global tokens and learned top-k
key blocks, with interchangeable kernels (`dense` reference, `flex`, `flash`, `full`, `auto`).

Per layer: the :class:`~ast_robot.policies.scorer.BlockScorer` ranks key blocks and produces a
compressed-attention output per query block; the chosen blocks (window + top-k) plus global tokens go to
the backend kernel; the compressed output, scaled by a learned per-block gate, is added to every token of
its query block. The sparse backends (`dense`, `flex`, `flash`) differ only in the kernel, so they agree
with the dense reference up to dtype tolerance.

`full` is plain attention over every pair (SDPA without a mask, no scorer). `auto` runs `full` below the
crossover length, where block sparsity costs more than it saves (the selection alone is ~1-5 ms of
small kernels on a GPU, and a 1k-token dense SDPA takes 0.4 ms), and the sparse pattern above it. A
layer built with ``backend="full"`` has no scorer parameters; the policy builds its layers that way when
its (fixed) sequence is shorter than the crossover, so that no parameter goes unused.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ast_robot.policies import masks
from ast_robot.policies.backends import BACKENDS, SparsePlan, pick_blocks
from ast_robot.policies.scorer import BlockScorer, score_blocks

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


def add_per_block(x: Tensor, c: Tensor, block_size: int) -> Tensor:
    """``(B, H, T, D)`` tokens plus one ``(B, H, nb, D)`` vector per block of ``block_size`` tokens.

    Through views the add is one full-size pass: backward hands ``x`` its gradient unchanged (no copy)
    and reduces it per block for ``c``, and nothing full-size is kept for backward."""
    B, H, T, D = x.shape
    nb, bs = c.shape[2], block_size
    if T == nb * bs:  # views only: no copy of the full-size tensor besides the output
        return (x.view(B, H, nb, bs, D) + c.unsqueeze(3)).view(B, H, T, D)
    return x + c.repeat_interleave(bs, 2)[:, :, :T]  # a ragged last block (short sequences)


def score(q: Tensor, k: Tensor, v: Tensor, scorer_params: tuple[Tensor, ...], gate: tuple[Tensor, Tensor],
          exclude: Tensor, block_size: int, causal: bool) -> tuple[Tensor, Tensor]:  # fmt: skip
    """The scorer and gate as one pure tensor function: ``(compressed, candidates)``, the gated
    compressed-branch output per query block ``(B, H, nQb, D)`` and the block scores ``(B, H, nQb, nKVb)``,
    ``-inf`` where top-k may not pick (detached: selection is not differentiable)."""
    qb, scores, compressed = score_blocks(q, k, v, scorer_params, block_size, causal)
    compressed = torch.sigmoid(F.linear(qb, *gate)) * compressed  # (B, H, nQb, D)
    return compressed, scores.detach().masked_fill(exclude, float("-inf"))


@functools.cache
def compiled(fn):
    """``fn`` compiled once per process with static shapes (one graph per sequence length and grad mode;
    dynamic shapes failed inside Inductor on the pooling views). On a GPU the ~50 small eager launches of
    a layer's plan left the GPU waiting for the host before FlexAttention could start. ``top_k`` stays
    out of the compiled graphs (the top-k runs between them), so it costs no recompiles."""
    return torch.compile(fn, dynamic=False)


class SparseAttentionCore(nn.Module):
    """Block selection + kernel on per-head tensors ``(B, H, T, D) -> (B, H, T, D)``."""

    def __init__(self, head_dim: int, block_size: int = 16, window_blocks: int = 1, top_k_blocks: int = 2,
                 n_global: int = 0, causal: bool = False, backend: str = "auto", crossover: int = 2048,
                 compile_plan: bool | None = None) -> None:  # fmt: skip
        super().__init__()
        masks._check_int("block_size", block_size, 1)
        masks._check_int("window_blocks", window_blocks, 0)
        masks._check_int("top_k_blocks", top_k_blocks, 0)
        masks._check_int("n_global", n_global, 0)
        masks._check_int("crossover", crossover, 1)
        choose_backend(backend, 1, crossover)  # validates the name
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
        self.compile_plan = (
            compile_plan  # compile `score`/`flex_lists`; None: on CUDA only (a CPU compile ~30 s)
        )
        self._last = [""]  # a list, not an attribute: nn.Module.__setattr__ costs ~2 us per call
        self._tables: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    @property
    def last_backend(self) -> str:
        """The kernel the latest call used (for logs and tests)."""
        return self._last[0]

    def plan(self, q: Tensor, k: Tensor, v: Tensor, backend: str = "dense") -> tuple[SparsePlan, Tensor]:
        """The block selection for these inputs (with FlexAttention's block lists when ``backend`` is
        `flex`) and the gated compressed-branch output per query block ``(B, H, nQb, D)``."""
        T = q.shape[2]
        n_blocks = -(-T // self.block_size)
        if self.top_k > n_blocks:
            raise ValueError(f"top_k_blocks ({self.top_k}) exceeds the number of key blocks ({n_blocks}) of a "
                             f"{T}-token sequence with block_size {self.block_size}")  # fmt: skip
        compile_plan = q.is_cuda if self.compile_plan is None else self.compile_plan
        base, exclude = self._static_tables(n_blocks, q.device)
        compressed, candidates = (compiled(score) if compile_plan else score)(
            q,
            k,
            v,
            self.scorer.params(),
            (self.gate.weight, self.gate.bias),
            exclude,
            self.block_size,
            self.causal,
        )
        blocks = pick_blocks(candidates, base, self.top_k)
        lists = None
        if backend == "flex":
            with torch.no_grad():  # one compiled graph whatever the grad mode
                lists = (compiled(masks.flex_lists) if compile_plan else masks.flex_lists)(
                    blocks, self.n_global, self.block_size, T, self.causal
                )
        token_window = self.window_blocks * self.block_size if backend == "flash" else None
        plan = SparsePlan(blocks, self.block_size, self.n_global, self.causal, T, token_window, lists)
        return plan, compressed

    def _static_tables(self, n_blocks: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(base, exclude)`` bool ``(nQb, nKVb)``, built once per (length, device) since they do not depend
        on data: the allowed window blocks, and the blocks top-k may not pick (window or disallowed)."""
        key = (n_blocks, str(device))
        if key not in self._tables:
            window = masks.window_table(n_blocks, n_blocks, self.window_blocks, device)
            allowed = (
                masks.causal_table(n_blocks, n_blocks, device)[0] if self.causal else torch.ones_like(window)
            )
            self._tables[key] = (window & allowed, window | ~allowed)
        return self._tables[key]

    def forward(self, q: Tensor, k: Tensor, v: Tensor, backend: str | None = None) -> Tensor:
        backend = backend or self.backend
        if backend == "full" or (backend == "auto" and q.shape[2] < self.crossover):
            # Below the crossover: plain SDPA and nothing else (no scorer, no mask, no extra kernel).
            self._last[0] = "full"
            if self.causal:
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
            return F.scaled_dot_product_attention(q, k, v)
        needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
        name = choose_backend(backend, q.shape[2], self.crossover, q.is_cuda or not needs_grad)
        self._last[0] = name
        if self.scorer is None:
            raise ValueError(
                f"this layer was built with backend 'full' (no block scorer); it cannot run {name!r}"
            )
        plan, compressed = self.plan(q, k, v, name)
        selected = BACKENDS.get(name)(q, k, v, plan)  # (B, H, T, D)
        return add_per_block(selected, compressed, self.block_size)


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

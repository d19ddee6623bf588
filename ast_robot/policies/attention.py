"""`SparseAttention`: multi-head attention over a local block window, global tokens and learned top-k
key blocks, with interchangeable kernels (`dense` reference, `flex`, `flash`, `full`, `auto`).

Per layer: the :class:`~ast_robot.policies.scorer.BlockScorer` ranks key blocks and produces a
compressed-attention output; the chosen blocks (window + top-k) plus global tokens go to the backend
kernel; a learned per-token gate mixes the two outputs. The sparse backends (`dense`, `flex`, `flash`)
differ only in the kernel, so they agree with the dense reference up to dtype tolerance.

`full` is plain attention over every pair (SDPA without a mask, no scorer). `auto` runs `full` below the
crossover length, where block sparsity costs more than it saves (the selection alone is ~1-5 ms of
small kernels on a GPU, and a 1k-token dense SDPA takes 0.4 ms), and the sparse pattern above it. A
layer built with ``backend="full"`` has no scorer parameters; the policy builds its layers that way when
its (fixed) sequence is shorter than the crossover, so that no parameter goes unused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ast_robot.policies import masks
from ast_robot.policies.backends import BACKENDS, SparsePlan, compiled_selection, selection_lists
from ast_robot.policies.scorer import BlockScorer

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


class SparseAttentionCore(nn.Module):
    """Block selection + kernel on per-head tensors ``(B, H, T, D) -> (B, H, T, D)``."""

    def __init__(self, head_dim: int, block_size: int = 16, window_blocks: int = 1, top_k_blocks: int = 2,
                 n_global: int = 0, causal: bool = False, backend: str = "auto", crossover: int = 2048,
                 compile_selection: bool = False) -> None:  # fmt: skip
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
        self.gate = nn.Linear(head_dim, 2) if sparse else None  # per-token weights of (selected, compressed)
        self.compile_selection = compile_selection  # fuse the block selection with torch.compile (GPU)
        self.last_backend = ""  # the kernel the latest call used (for logs and tests)
        self._tables: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    def plan(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[SparsePlan, Tensor]:
        """The block selection for these inputs and the compressed-branch output ``(B, H, T, D)``."""
        T = q.shape[2]
        n_blocks = -(-T // self.block_size)
        if self.top_k > n_blocks:
            raise ValueError(f"top_k_blocks ({self.top_k}) exceeds the number of key blocks ({n_blocks}) of a "
                             f"{T}-token sequence with block_size {self.block_size}")  # fmt: skip
        scores, compressed = self.scorer(
            q, k, v, self.block_size, self.causal
        )  # (B, H, nb, nb), (B, H, T, D)
        window, allowed = self._static_tables(n_blocks, q.device)
        select = compiled_selection() if self.compile_selection else selection_lists
        blocks, *lists = select(scores.detach(), window, allowed, self.top_k, self.n_global, self.block_size, T,
                                self.causal)  # fmt: skip
        token_window = self.window_blocks * self.block_size if self.backend == "flash" else None
        plan = SparsePlan(blocks, self.block_size, self.n_global, self.causal, T, token_window, tuple(lists))
        return plan, compressed

    def _static_tables(self, n_blocks: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Window and causal block tables, built once per (length, device): they do not depend on data."""
        key = (n_blocks, str(device))
        if key not in self._tables:
            window = masks.window_table(n_blocks, n_blocks, self.window_blocks, device)
            allowed = (
                masks.causal_table(n_blocks, n_blocks, device)[0] if self.causal else torch.ones_like(window)
            )
            self._tables[key] = (window, allowed)
        return self._tables[key]

    def forward(self, q: Tensor, k: Tensor, v: Tensor, backend: str | None = None) -> Tensor:
        needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
        name = choose_backend(
            backend or self.backend, q.shape[2], self.crossover, q.is_cuda or not needs_grad
        )
        self.last_backend = name
        if name == "full":
            return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)  # (B, H, T, D)
        if self.scorer is None:
            raise ValueError(
                f"this layer was built with backend 'full' (no block scorer); it cannot run {name!r}"
            )
        plan, compressed = self.plan(q, k, v)
        selected = BACKENDS.get(name)(q, k, v, plan)  # (B, H, T, D)
        g = torch.sigmoid(self.gate(q))  # (B, H, T, 2)
        return g[..., :1] * selected + g[..., 1:] * compressed


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

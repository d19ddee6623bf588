"""Block selection on a GPU in two Triton kernels: top-k pick, and FlexAttention's block lists.

Why: at 32k tokens the layer's selection ran as ~25 small kernels, each ~30-40 us of host time to
launch, so the GPU sat idle ~1 ms before the attention kernel could start (H200, torch 2.11); the sort or
top-k alone took 0.17-0.22 ms of GPU time for a 256-wide row per query block. Each kernel here does one
program per row of the block table. Both are registered as `torch.library.triton_op`s, so a compiled
graph calls them directly.

They compute what :func:`ast_robot.policies.backends.pick_blocks` and :func:`masks.flex_lists` compute
(the bench checks them against those on the GPU); without Triton or a CUDA tensor those run instead.
"""

# No `from __future__ import annotations`: triton_op reads the type hints to build the op schemas.
import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
    from torch.library import triton_op, wrap_triton
except ImportError:  # CPU-only installs: the torch implementations run
    triton = None

ENABLED = True  # switch for benchmarks comparing against the torch implementations


def available(t: Tensor) -> bool:
    """Whether the kernels can run on ``t``."""
    return ENABLED and triton is not None and t.is_cuda


if triton is not None:

    @triton.jit
    def _pick_kernel(scores, exclude, base, out, top_k, n_q, n, BLOCK: tl.constexpr):
        row = tl.program_id(0)  # one (batch, head, query block)
        i = row % n_q
        cols = tl.arange(0, BLOCK)
        valid = cols < n
        x = tl.load(scores + row * n + cols, mask=valid, other=float("-inf")).to(tl.float32)
        x = tl.where(tl.load(exclude + i * n + cols, mask=valid, other=1) != 0, float("-inf"), x)
        picked = tl.load(base + i * n + cols, mask=valid, other=0) != 0
        for _ in range(tl.load(top_k)):  # the best remaining candidate, k times (first index on ties)
            best = tl.max(x, 0)
            first = tl.min(tl.where(x == best, cols, BLOCK), 0)
            picked = picked | ((cols == first) & (best > float("-inf")))
            x = tl.where(cols == first, float("-inf"), x)
        tl.store(out + row * n + cols, picked, mask=valid)

    @triton.jit
    def _lists_kernel(partial, full, num, idx, n, HAS_PARTIAL: tl.constexpr, BLOCK: tl.constexpr):
        line = tl.program_id(0)  # (batch, head, i): row i of a table, or column i
        part = tl.program_id(1)  # 0 / 1: rows of `partial` / `full` (kv lists); 2 / 3: their columns (q lists)
        lines = tl.num_programs(0)
        bh, i = (line // n).to(tl.int64), line % n
        cols = tl.arange(0, BLOCK)
        valid = cols < n
        offsets = bh * n * n + tl.where(part >= 2, cols * n + i, i * n + cols)
        chosen = tl.load(full + offsets, mask=valid & (part % 2 == 1), other=0) != 0
        if HAS_PARTIAL:  # else the partial lists stay empty (a plan of whole blocks)
            chosen = chosen | (tl.load(partial + offsets, mask=valid & (part % 2 == 0), other=0) != 0)
        count = tl.sum(chosen.to(tl.int32), 0)
        slot = tl.cumsum(chosen.to(tl.int32), 0) - 1  # a chosen block's place in the ascending list
        out = part.to(tl.int64) * lines + line
        tl.store(num + out, count)
        row = idx + out * n
        tl.store(row + slot, cols, mask=chosen)  # 0 <= slot < count <= n wherever chosen
        tl.store(row + cols, 0, mask=valid & (cols >= count))  # padding; disjoint from the slots above

    @triton_op("ast_robot::pick_blocks", mutates_args=())
    def _pick(scores: Tensor, exclude: Tensor, base: Tensor, top_k: Tensor) -> Tensor:
        scores, n = scores.contiguous(), scores.shape[-1]
        out = torch.empty(scores.shape, dtype=torch.bool, device=scores.device)
        grid = (scores.numel() // n,)
        wrap_triton(_pick_kernel)[grid](scores, exclude.contiguous(), base.contiguous(), out, top_k,
                                        scores.shape[-2], n, BLOCK=triton.next_power_of_2(n))  # fmt: skip
        return out

    def _launch_lists(partial: Tensor, full: Tensor, has_partial: bool) -> tuple[Tensor, Tensor]:
        full, n = full.contiguous(), full.shape[-1]
        num = torch.empty((4, *full.shape[:-1]), dtype=torch.int32, device=full.device)
        idx = torch.empty((4, *full.shape), dtype=torch.int32, device=full.device)
        wrap_triton(_lists_kernel)[(full.numel() // n, 4)](
            partial.contiguous(), full, num, idx, n, HAS_PARTIAL=has_partial, BLOCK=triton.next_power_of_2(n)
        )
        return num, idx

    @triton_op("ast_robot::whole_block_lists", mutates_args=())
    def _lists(blocks: Tensor) -> tuple[Tensor, Tensor]:
        return _launch_lists(blocks, blocks, False)

    @triton_op("ast_robot::partial_block_lists", mutates_args=())
    def _partial_lists(partial: Tensor, full: Tensor) -> tuple[Tensor, Tensor]:
        return _launch_lists(partial, full, True)


def pick_blocks(scores: Tensor, exclude: Tensor, base: Tensor, top_k: Tensor) -> Tensor:
    """Bool ``(B, H, nQb, nKVb)``: ``base`` plus the ``top_k`` (0-d tensor) best ``scores`` outside
    ``exclude`` (both tables ``(nQb, nKVb)``), as :func:`backends.select_blocks`."""
    return _pick(scores, exclude, base, top_k)


def _flex_order(num: Tensor, idx: Tensor) -> tuple[Tensor, ...]:
    """The kernel's four (num, idx) pairs in FlexAttention's constructor order (see :func:`masks.flex_lists`)."""
    return num[0], idx[0], num[1], idx[1], num[2], idx[2], num[3], idx[3]


def whole_block_lists(blocks: Tensor) -> tuple[Tensor, ...]:
    """:func:`masks.flex_lists` of a plan without partial blocks: every chosen block is full, so the
    partial lists are empty and the full ones are the table's rows and columns, in ascending order."""
    return _flex_order(*_lists(blocks))


def block_lists(partial: Tensor, full: Tensor) -> tuple[Tensor, ...]:
    """:func:`masks.flex_lists` from the bool tables ``(B, H, nQb, nKVb)`` of partly and wholly allowed
    blocks (:func:`masks.block_tables`). A kernel rather than Inductor's lowering of the cumsum + scatter
    in :func:`masks.to_kv_lists`: inside the layer's selection graph built with the C++ wrapper, on an
    H100 (torch 2.11), that lowering's scatter indices ran out of range with causal masks, global tokens
    and a partial last block (a device-side assert, issue 22). Here a block's slot is its running count
    minus one, below the row's count, so every store is in range by construction."""
    return _flex_order(*_partial_lists(partial, full))

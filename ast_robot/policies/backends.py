"""Attention kernels behind `SparseAttention`: `dense` (the reference), `flex` and `flash`.

Each backend takes ``q, k, v`` ``(B, H, T, D)`` and a :class:`SparsePlan` (the block selection and the
static mask parameters) and returns ``(B, H, T, D)``. They compute the same function: `dense` evaluates
the mask on every token pair and runs SDPA with it; `flex` hands FlexAttention only the selected blocks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ast_robot.policies import masks
from ast_robot.registry import Registry

BACKENDS: Registry = Registry("attention backend")


@dataclass(frozen=True)
class SparsePlan:
    """What to attend to. ``blocks``: bool ``(B, H, nQb, nKVb)`` whole key blocks per query block (window
    plus top-k, already restricted to causal blocks); global tokens and causality are applied per token."""

    blocks: Tensor
    block_size: int
    n_global: int
    causal: bool
    length: int
    token_window: int | None = None  # set: a token-level sliding window of this radius instead of blocks
    lists: tuple[Tensor, Tensor, Tensor, Tensor] | None = None  # precomputed FlexAttention block lists

    def mask_mod(self) -> masks.MaskMod:
        """The token-level mask this plan stands for."""
        if self.token_window is not None:
            window = masks.token_window(self.token_window)
            return masks.and_masks(window, masks.causal()) if self.causal else window
        allowed = masks.or_masks(
            masks.selected_blocks(self.blocks, self.block_size), masks.global_tokens(self.n_global)
        )
        parts = [allowed, masks.key_length(self.length)]
        if self.causal:
            parts.append(masks.causal())
        return masks.and_masks(*parts)

    def dense(self) -> Tensor:
        """Bool ``(B, H, T, T)`` of every allowed pair, by expanding the block table (the same pairs as
        :meth:`mask_mod`, which tests check; this is ~10x cheaper than gathering per pair)."""
        if self.token_window is not None:
            return masks.dense_mask(self.mask_mod(), 1, 1, self.length, self.length, self.blocks.device)
        T, bs, G = self.length, self.block_size, self.n_global
        mask = self.blocks.repeat_interleave(bs, -2).repeat_interleave(bs, -1)[..., :T, :T]  # (B, H, T, T)
        if G:
            idx = torch.arange(T, device=mask.device)
            mask = mask | (idx.view(-1, 1) < G) | (idx.view(1, -1) < G)
        if self.causal:
            mask = mask & torch.ones(T, T, dtype=torch.bool, device=mask.device).tril()
        return mask

    def tables(self) -> tuple[Tensor, Tensor]:
        """``(any, full)`` block tables (see :func:`masks.block_tables`)."""
        return masks.block_tables(self.blocks, self.n_global, self.block_size, self.length, self.causal)

    def block_sparsity(self) -> float:
        """Fraction of (query block, key block) pairs the kernel skips entirely."""
        return 1.0 - self.tables()[0].float().mean().item()


@BACKENDS.register("dense")
def dense_attention(q: Tensor, k: Tensor, v: Tensor, plan: SparsePlan) -> Tensor:
    """SDPA with the boolean mask of every token pair: the reference (O(T^2) memory)."""
    mask = plan.dense()  # (B, H, T, T)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@functools.cache
def compiled_flex():
    """One compiled FlexAttention for the process: a per-call `torch.compile` would recompile each time
    and, past the recompile limit, silently fall back to the slow unfused path (FACTS.md)."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def selection_lists(scores: Tensor, window: Tensor, allowed: Tensor, top_k: int, n_global: int, block_size: int,
                    length: int, causal: bool) -> tuple[Tensor, ...]:  # fmt: skip
    """Top-k + window block table and FlexAttention's block lists, as one pure tensor function (so that
    it can be compiled into a few fused kernels: eager, it is ~50 small launches per layer).

    Returns ``(blocks, num, idx, full_num, full_idx)``; ``blocks`` is bool ``(B, H, nQb, nKVb)``."""
    picked = masks.top_k_table(scores.float(), top_k, exclude=window | ~allowed)
    blocks = (picked | window) & allowed
    any_, full = masks.block_tables(blocks, n_global, block_size, length, causal)
    num, idx = masks.to_kv_lists(any_ & ~full)  # partial blocks: the kernel applies mask_mod there
    full_num, full_idx = masks.to_kv_lists(full)
    return blocks, num, idx, full_num, full_idx


@functools.cache
def compiled_selection():
    """`selection_lists` compiled once per process (static shapes; one graph per sequence length)."""
    return torch.compile(selection_lists, dynamic=False)


def build_block_mask(plan: SparsePlan, padded_len: int):
    """A FlexAttention `BlockMask` straight from the block tables (no evaluation of every token pair)."""
    from torch.nn.attention.flex_attention import BlockMask

    if plan.lists is not None:
        num, idx, full_num, full_idx = plan.lists
    else:
        any_, full = plan.tables()
        num, idx = masks.to_kv_lists(any_ & ~full)  # partial blocks: the kernel applies mask_mod there
        full_num, full_idx = masks.to_kv_lists(full)
    return BlockMask.from_kv_blocks(num, idx, full_num, full_idx, BLOCK_SIZE=plan.block_size,
                                    mask_mod=plan.mask_mod(), seq_lengths=(padded_len, padded_len))  # fmt: skip


@BACKENDS.register("flex")
def flex_attention(q: Tensor, k: Tensor, v: Tensor, plan: SparsePlan) -> Tensor:
    """Compiled FlexAttention over the selected blocks; the sequence is padded to whole blocks."""
    if plan.token_window is not None:
        raise ValueError("the flex backend takes block plans; token-level windows are for `flash`/`dense`")
    T = q.shape[2]
    pad = -T % plan.block_size
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    block_mask = build_block_mask(plan, T + pad)
    # Raise instead of silently dropping to the unfused path if shapes keep changing.
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        out = compiled_flex()(q, k, v, block_mask=block_mask)  # (B, H, T + pad, D)
    return out[:, :, :T]


@BACKENDS.register("flash")
def flash_attention(q: Tensor, k: Tensor, v: Tensor, plan: SparsePlan) -> Tensor:
    """flash-attn's sliding window. Only plain windows fit it (no top-k, no global tokens); its window
    is token-level (radius ``window_blocks * block_size``): the plan carries ``token_window``."""
    try:
        from flash_attn import flash_attn_func
    except ImportError as err:
        raise ImportError('the flash backend needs flash-attn: pip install "ast-robot[flash]"') from err
    if plan.token_window is None:
        raise ValueError("the flash backend supports only a plain local window (top_k_blocks=0, n_global=0)")
    radius = plan.token_window
    out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=plan.causal,
                          window_size=(radius, 0 if plan.causal else radius))  # fmt: skip
    return out.transpose(1, 2)  # (B, H, T, D)

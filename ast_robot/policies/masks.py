"""Pure, composable attention-mask factories (block-aligned), in two matching forms.

Token form: a *mask_mod* ``(b, h, q_idx, kv_idx) -> bool tensor`` in FlexAttention's signature, written
with broadcasting tensor ops only, so the same function builds a dense boolean reference
(:func:`dense_mask`) and a FlexAttention ``BlockMask``.

Block form: ``(..., n_q_blocks, n_kv_blocks)`` boolean tables, from which the kernel's block lists are
built without evaluating every token pair (:func:`block_tables`). Selection is block-aligned on purpose:
on an H100 block-aligned masks ran ~10x faster than dense at 32k tokens while token-level masks were
slower than dense (FACTS.md).
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
from torch import Tensor

MaskMod = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def _check_int(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# --------------------------------------------------------------------------------------- token form
def local_window(block_size: int, window_blocks: int) -> MaskMod:
    """Keys within ``window_blocks`` blocks of the query's block (a band of 2w+1 blocks)."""
    _check_int("block_size", block_size, 1)
    _check_int("window_blocks", window_blocks, 0)

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        return (q // block_size - kv // block_size).abs() <= window_blocks

    return mask_mod


def token_window(radius: int) -> MaskMod:
    """Keys within ``radius`` tokens of the query (token-level; flash-attn's sliding window)."""
    _check_int("radius", radius, 0)

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        return (q - kv).abs() <= radius

    return mask_mod


def global_tokens(n_global: int) -> MaskMod:
    """The first ``n_global`` tokens attend everywhere and are attended from everywhere."""
    _check_int("n_global", n_global, 0)

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        return (q < n_global) | (kv < n_global)

    return mask_mod


def causal() -> MaskMod:
    """Keys at or before the query position."""

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        return kv <= q

    return mask_mod


def key_length(length: int) -> MaskMod:
    """Keys before ``length`` (masks the padding added to reach a whole number of blocks)."""
    _check_int("length", length, 1)

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        return kv < length

    return mask_mod


def selected_blocks(selection: Tensor, block_size: int) -> MaskMod:
    """Key blocks chosen per (batch, head, query block): ``selection`` is bool ``(B, H, nQb, nKVb)``."""
    _check_int("block_size", block_size, 1)
    if selection.dim() != 4 or selection.dtype != torch.bool:
        raise ValueError(f"selection must be a bool tensor (B, H, nQb, nKVb), got {selection.dtype} "
                         f"{tuple(selection.shape)}")  # fmt: skip

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        return selection[b, h, q // block_size, kv // block_size]

    return mask_mod


def _combine(mods: tuple[MaskMod, ...], op: Callable[[Tensor, Tensor], Tensor], name: str) -> MaskMod:
    if not mods:
        raise ValueError(f"{name} needs at least one mask_mod")

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        out = mods[0](b, h, q, kv)
        for mod in mods[1:]:
            out = op(out, mod(b, h, q, kv))
        return out

    return mask_mod


def and_masks(*mods: MaskMod) -> MaskMod:
    """Intersection of mask_mods (all must allow the pair)."""
    return _combine(mods, operator.and_, "and_masks")


def or_masks(*mods: MaskMod) -> MaskMod:
    """Union of mask_mods (any may allow the pair)."""
    return _combine(mods, operator.or_, "or_masks")


def dense_mask(mask_mod: MaskMod, batch: int, heads: int, q_len: int, kv_len: int,
               device: torch.device | str = "cpu") -> Tensor:  # fmt: skip
    """Evaluate a mask_mod on every pair: bool ``(B, H, Q, KV)`` (the reference; O(Q*KV) memory)."""
    b = torch.arange(batch, device=device).view(-1, 1, 1, 1)
    h = torch.arange(heads, device=device).view(1, -1, 1, 1)
    q = torch.arange(q_len, device=device).view(1, 1, -1, 1)
    kv = torch.arange(kv_len, device=device).view(1, 1, 1, -1)
    return mask_mod(b, h, q, kv).expand(batch, heads, q_len, kv_len)


# --------------------------------------------------------------------------------------- block form
def window_table(
    n_q_blocks: int, n_kv_blocks: int, window_blocks: int, device: torch.device | str = "cpu"
) -> Tensor:
    """Bool ``(nQb, nKVb)``: block pairs inside the local band."""
    _check_int("window_blocks", window_blocks, 0)
    qb = torch.arange(n_q_blocks, device=device).view(-1, 1)
    kb = torch.arange(n_kv_blocks, device=device).view(1, -1)
    return (qb - kb).abs() <= window_blocks


def causal_table(
    n_q_blocks: int, n_kv_blocks: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """``(allowed, diagonal)`` bool ``(nQb, nKVb)``: blocks at/before the query block, and the diagonal
    ones, which are only partly allowed token by token."""
    qb = torch.arange(n_q_blocks, device=device).view(-1, 1)
    kb = torch.arange(n_kv_blocks, device=device).view(1, -1)
    return kb <= qb, kb == qb


def top_k_table(scores: Tensor, top_k: int, exclude: Tensor | None = None) -> Tensor:
    """Bool table of the ``top_k`` highest-scoring key blocks per query block.

    ``scores``: ``(..., nQb, nKVb)``; ``exclude`` (broadcastable bool) marks blocks that are not
    candidates (already in the window, or in the future under causality): they are never chosen, so
    fewer than ``top_k`` are picked where fewer candidates exist.
    """
    n_kv_blocks = scores.shape[-1]
    _check_int("top_k", top_k, 0)
    if top_k > n_kv_blocks:
        raise ValueError(f"top_k ({top_k}) must not exceed the number of key blocks ({n_kv_blocks})")
    if top_k == 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
    idx = scores.topk(top_k, dim=-1).indices
    picked = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)
    return picked if exclude is None else picked & ~exclude


def block_tables(blocks: Tensor, n_global: int, block_size: int, length: int,
                 causal: bool) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(any, full)`` bool ``(B, H, nQb, nKVb)`` for the union of whole ``blocks`` and global tokens.

    ``any``: the block holds at least one allowed pair; ``full``: every pair is allowed (the kernel then
    skips the mask_mod). Under ``causal`` the diagonal blocks are partial; ``length`` is the unpadded
    sequence length (key padding up to whole blocks is masked).
    """
    n_q_blocks, n_kv_blocks = blocks.shape[-2:]
    device = blocks.device
    qb = torch.arange(n_q_blocks, device=device).view(-1, 1)
    kb = torch.arange(n_kv_blocks, device=device).view(1, -1)
    any_, full = blocks, blocks
    if n_global > 0:
        # touched by a global key column / global query row, and wholly covered by them
        g_blocks = (n_global - 1) // block_size + 1
        col_any, col_full = kb < g_blocks, (kb + 1) * block_size <= n_global
        row_any, row_full = qb < g_blocks, (qb + 1) * block_size <= n_global
        any_ = any_ | col_any | row_any  # causal: global queries still see only their past (below)
        full = full | col_full | row_full
    if causal:
        any_ = any_ & (kb <= qb)
        full = full & (kb < qb)  # diagonal blocks are partial token by token
    if length % block_size:  # the last key block holds padding (elementwise: no index arithmetic)
        full = full & (kb < n_kv_blocks - 1)
    return any_, full & any_


def to_kv_lists(table: Tensor) -> tuple[Tensor, Tensor]:
    """``(num_blocks, indices)`` int32 in FlexAttention's layout: per query block, the count of chosen
    key blocks and their indices first, ascending (the rest of the row is zero padding).

    Each chosen block's slot is its running count in the row (a cumsum), and one scatter writes it: on
    an H200 a stable argsort of the (4, 16, 256, 256) table took ~0.2 ms, most of the block selection."""
    n = table.shape[-1]
    num = table.sum(-1, dtype=torch.int32)  # (B, H, nQb)
    slot = torch.where(table, table.cumsum(-1) - 1, n)  # unchosen blocks go to a spare last column
    cols = torch.arange(n, dtype=torch.int32, device=table.device).expand(table.shape)
    idx = torch.zeros((*table.shape[:-1], n + 1), dtype=torch.int32, device=table.device)
    return num, idx.scatter_(-1, slot, cols)[..., :n].contiguous()


def has_partial_blocks(n_global: int, block_size: int, length: int, causal: bool) -> bool:
    """Whether some chosen block can be only partly allowed token by token (global tokens, the causal
    diagonal, key padding). Without them every chosen block is whole and no mask_mod is needed."""
    return n_global > 0 or causal or length % block_size != 0


def flex_lists(
    blocks: Tensor, n_global: int, block_size: int, length: int, causal: bool
) -> tuple[Tensor, ...]:
    """The eight block lists of a FlexAttention ``BlockMask``, in its constructor's order: ``(kv_num,
    kv_idx, full_kv_num, full_kv_idx, q_num, q_idx, full_q_num, full_q_idx)``; the ``q`` lists are the
    transposed tables the backward pass walks. Built from the tables directly, which is cheaper than
    letting ``BlockMask.from_kv_blocks`` rebuild dense tables from the lists to transpose them; without
    partial blocks (:func:`has_partial_blocks`) their lists are empty and need no sorting."""
    if has_partial_blocks(n_global, block_size, length, causal):
        any_, full = block_tables(blocks, n_global, block_size, length, causal)
        partial = any_ & ~full
        kv, q = to_kv_lists(partial), to_kv_lists(partial.transpose(-1, -2))
    else:
        full = blocks
        empty = torch.zeros(blocks.shape, dtype=torch.int32, device=blocks.device)
        kv = q = (empty[..., 0].contiguous(), empty)
    return (*kv, *to_kv_lists(full), *q, *to_kv_lists(full.transpose(-1, -2)))

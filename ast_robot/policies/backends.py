"""Attention kernels behind `SparseAttention`: `dense` (the reference), `flex` and `flash`.

Each backend takes ``q, k, v`` ``(B, H, T, D)``, a :class:`SparsePlan` (the block selection and the
static mask parameters) and optionally one vector per query block to add to its tokens (the layer's
compressed branch), and returns ``(B, H, T, D)``. `dense` and `flex` compute the same function: `dense`
evaluates the mask on every token pair and runs SDPA with it; `flex` hands FlexAttention only the
selected blocks and adds the per-block vectors in the same compiled graph (one fused pass instead of a
broadcast add). `flash` runs a token-level window (``plan.token_window``), another pattern than block
windows; `dense` computes that same window when the plan carries it.
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
    lists: tuple[Tensor, ...] | None = None  # precomputed FlexAttention block lists (masks.flex_lists)

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

    def partial_block_mask_mod(self) -> masks.MaskMod:
        """What the compiled kernel must still check inside a partly allowed block, the one place it
        evaluates a mask_mod. Without global tokens a partial block is always a chosen block (the causal
        diagonal or the padded last key block), so the per-pair lookup of the block table in
        :meth:`mask_mod` is always true there: only causality and the key length remain. With global
        tokens a block may be partial because global rows or columns reach into an unchosen block, so
        the whole mask applies."""
        if self.n_global or self.token_window is not None:
            return self.mask_mod()
        parts = [masks.causal()] if self.causal else []
        if self.length % self.block_size:
            parts.append(masks.key_length(self.length))
        return masks.and_masks(*parts) if parts else self.mask_mod()

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


def add_per_block(x: Tensor, c: Tensor | None, block_size: int) -> Tensor:
    """``(B, H, T, D)`` tokens plus one ``(B, H, nb, D)`` vector per block of ``block_size`` tokens
    (``c=None``: ``x`` unchanged).

    Through views the add is one full-size pass: backward hands ``x`` its gradient unchanged (no copy)
    and reduces it per block for ``c``, and nothing full-size is kept for backward."""
    if c is None:
        return x
    B, H, T, D = x.shape
    nb, bs = c.shape[2], block_size
    if T == nb * bs:  # views only: no copy of the full-size tensor besides the output
        return (x.view(B, H, nb, bs, D) + c.unsqueeze(3)).view(B, H, T, D)
    return x + c.repeat_interleave(bs, 2)[:, :, :T]  # a ragged last block (short sequences)


@BACKENDS.register("dense")
def dense_attention(
    q: Tensor, k: Tensor, v: Tensor, plan: SparsePlan, per_block: Tensor | None = None
) -> Tensor:
    """SDPA with the boolean mask of every token pair: the reference (O(T^2) memory)."""
    mask = plan.dense()  # (B, H, T, T)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return add_per_block(out, per_block, plan.block_size)


@functools.cache
def compiled_flex():
    """One compiled FlexAttention for the process: a per-call `torch.compile` would recompile each time
    and, past the recompile limit, silently fall back to the slow unfused path (FACTS.md)."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def flex_padded(q: Tensor, k: Tensor, v: Tensor, block_mask, block_size: int,
                kernel_options: dict[str, object]) -> Tensor:  # fmt: skip
    """FlexAttention over ``block_mask`` with the inputs padded to whole blocks (a pure function: the
    layer compiles it together with its compressed branch)."""
    from torch.nn.attention.flex_attention import flex_attention

    T = q.shape[2]
    pad = -T % block_size
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    out = flex_attention(q, k, v, block_mask=block_mask, kernel_options=kernel_options)  # (B, H, T + pad, D)
    return out[:, :, :T] if pad else out


# Kernel tiles per GPU (compute capability). On an H200 (bf16, head dim 64, 128-token blocks, 32k tokens,
# 95% sparse) Inductor's autotuning put the backward at 64x64 tiles, 4 warps, 3 stages 5% ahead of its
# sm90 default (64/128, 8 warps); the forward default (128x128, 4 warps) was best; TMA loads were slower.
FLEX_TILES: dict[tuple[int, int], dict[str, int]] = {
    (9, 0): {"bwd_BLOCK_M1": 64, "bwd_BLOCK_N1": 64, "bwd_BLOCK_M2": 64, "bwd_BLOCK_N2": 64, "bwd_num_warps": 4,
             "bwd_num_stages": 3},
}  # fmt: skip


@functools.cache
def flex_kernel_options(device: torch.device, whole_blocks: bool) -> dict[str, object]:
    """FlexAttention kernel options for ``device``. With ``whole_blocks`` (no partial block anywhere) every
    query row has an allowed key in each block the kernel visits, so it may skip its masked-row guard;
    with partial blocks a row can be wholly masked in the first block visited, and skipping the guard
    turned that into NaN (seen on an H200 with global tokens)."""
    options: dict[str, object] = {"ROWS_GUARANTEED_SAFE": whole_blocks}
    if device.type == "cuda":
        options.update(FLEX_TILES.get(torch.cuda.get_device_capability(device), {}))
    return options


def flex_call(q: Tensor, k: Tensor, v: Tensor, block_mask, whole_blocks: bool = False) -> Tensor:
    """The compiled FlexAttention kernel with our kernel options (what the bench times as the bare kernel)."""
    options = flex_kernel_options(q.device, whole_blocks)
    # Raise instead of silently dropping to the unfused path if shapes keep changing.
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        return compiled_flex()(q, k, v, block_mask=block_mask, kernel_options=options)


def select_blocks(scores: Tensor, base: Tensor, exclude: Tensor, top_k: int) -> Tensor:
    """Bool ``(B, H, nQb, nKVb)``: ``base`` (the allowed local window, static) plus the ``top_k``
    best-scoring blocks outside ``exclude`` (window and disallowed blocks). Equals
    ``(masks.top_k_table(scores, top_k, exclude) | window) & allowed``, in fewer kernels."""
    return pick_blocks(scores.masked_fill(exclude, float("-inf")), base, top_k)


def pick_blocks(candidates: Tensor, base: Tensor, top_k: int | Tensor) -> Tensor:
    """:func:`select_blocks` on scores that are already ``-inf`` outside the candidates. ``top_k`` may be
    a 0-d tensor (the layer passes one, so that its compiled graphs do not specialize on the number).

    Each row is sorted and its first ``top_k`` finite entries are kept (rows with fewer candidates, such
    as early causal rows, keep fewer). On a GPU the layer runs :mod:`select_kernels` instead."""
    values, order = candidates.sort(dim=-1, descending=True)  # (B, H, nQb, nKVb)
    rank = torch.arange(candidates.shape[-1], device=candidates.device)
    keep = (rank < top_k) & (values > float("-inf"))  # by rank: exactly top_k, also among tied scores
    picked = torch.zeros(candidates.shape, dtype=torch.bool, device=candidates.device)
    return picked.scatter_(-1, order, keep) | base  # `order` is a permutation: each entry written once


def build_block_mask(plan: SparsePlan, padded_len: int, compiled: bool = True):
    """A FlexAttention `BlockMask` straight from the block lists (no evaluation of every token pair, and
    no dense tables rebuilt from the lists as ``BlockMask.from_kv_blocks`` does to transpose them).

    When every chosen block is whole the compiled kernel needs only the block lists, and a ``noop_mask``
    keeps it on its fast path (the plan's real ``mask_mod`` there cost ~40% of the forward on an H200,
    16k-32k tokens); with partial blocks it gets :meth:`SparsePlan.partial_block_mask_mod` (without
    global tokens, no per-pair lookup of the block table). Eager FlexAttention and ``BlockMask.to_dense`` evaluate ``mask_mod`` instead of the
    lists, where a no-op means full attention: ``compiled=False`` carries the plan's mask for them."""
    from torch.nn.attention.flex_attention import BlockMask, noop_mask

    lists = plan.lists
    if lists is None:
        lists = masks.flex_lists(plan.blocks, plan.n_global, plan.block_size, plan.length, plan.causal)
    partial = masks.has_partial_blocks(plan.n_global, plan.block_size, plan.length, plan.causal)
    if not compiled:
        mask_mod = plan.mask_mod()
    else:  # the compiled kernel evaluates mask_mod on partial blocks only (the lists say which)
        mask_mod = plan.partial_block_mask_mod() if partial else noop_mask
    names = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks", "q_indices",
             "full_q_num_blocks", "full_q_indices")  # fmt: skip
    return BlockMask(seq_lengths=(padded_len, padded_len), BLOCK_SIZE=(plan.block_size, plan.block_size),
                     mask_mod=mask_mod, **dict(zip(names, lists)))  # fmt: skip


@BACKENDS.register("flex")
def flex_attention(
    q: Tensor, k: Tensor, v: Tensor, plan: SparsePlan, per_block: Tensor | None = None
) -> Tensor:
    """Compiled FlexAttention over the selected blocks, the sequence padded to whole blocks (the same
    compiled kernel the bench times bare; on a GPU the layer runs :func:`flex_padded` in its own graph)."""
    if plan.token_window is not None:
        raise ValueError("the flex backend takes block plans; token-level windows are for `flash`/`dense`")
    T, pad = q.shape[2], -q.shape[2] % plan.block_size
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    block_mask, _ = flex_inputs(plan, q.device)
    whole = not masks.has_partial_blocks(plan.n_global, plan.block_size, plan.length, plan.causal)
    out = flex_call(q, k, v, block_mask, whole)  # (B, H, T + pad, D)
    return add_per_block(out[:, :, :T] if pad else out, per_block, plan.block_size)


def flex_inputs(plan: SparsePlan, device: torch.device) -> tuple[object, dict[str, object]]:
    """The plan's `BlockMask` (over the length padded to whole blocks) and the kernel options."""
    padded = plan.length + (-plan.length % plan.block_size)
    whole = not masks.has_partial_blocks(plan.n_global, plan.block_size, plan.length, plan.causal)
    return build_block_mask(plan, padded), flex_kernel_options(device, whole)


@BACKENDS.register("flash")
def flash_attention(
    q: Tensor, k: Tensor, v: Tensor, plan: SparsePlan, per_block: Tensor | None = None
) -> Tensor:
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
    return add_per_block(out.transpose(1, 2), per_block, plan.block_size)  # (B, H, T, D)

"""Learned block scorer: a compressed-attention branch whose logits also rank the key blocks (NSA-style).

Each key block is mean-pooled and passed through learned projections into one compressed key and value.
Each query block (its mean-pooled query; under causality the previous block's, so that nothing a token
computes depends on later tokens of its own block) attends over the compressed keys; the logits of that attention
are exactly the scores that rank the key blocks for top-k selection, so what the branch learns to attend
to is what gets selected. The branch's output, one vector per query block, is added to the layer's output
through a learned gate, which is how the projections receive gradient.

The branch reads the pooled queries, keys and values *detached*, as DeepSeek's sparse attention trains its
indexer: the scorer learns from the loss but does not train the layer's q/k/v through this side path.
That keeps it off the long-sequence cost: gradients through the pooling would be three extra full-size
(B, H, T, D) gradient tensors written and summed per layer (about 1 ms and 2-3 such tensors of peak
memory at 32k tokens on an H100), for a branch whose own work is O((T/block)^2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pool_blocks(x: Tensor, block_size: int) -> Tensor:
    """Mean over each block of tokens: ``(B, H, T, D) -> (B, H, ceil(T/bs), D)``; the last block is
    averaged over its real tokens only."""
    B, H, T, D = x.shape
    n_blocks = -(-T // block_size)
    pad = n_blocks * block_size - T
    if not pad:  # a view, no copy of the (possibly 32k-token) input
        return x.view(B, H, n_blocks, block_size, D).mean(3)
    summed = F.pad(x, (0, 0, 0, pad)).view(B, H, n_blocks, block_size, D).sum(3)  # (B, H, nb, D)
    counts = torch.full((n_blocks,), float(block_size), device=x.device, dtype=x.dtype)
    counts[-1] = block_size - pad
    return summed / counts.view(1, 1, -1, 1)


def past_blocks(n_blocks: int, device: torch.device) -> Tensor:
    """Bool ``(nQb, 1 + nKVb)``: under causality a query block sees the null slot and the key blocks that
    lie wholly before it (a block's own compressed key summarizes tokens after some of its queries)."""
    qb = torch.arange(n_blocks, device=device).view(-1, 1)
    kb = torch.arange(-1, n_blocks, device=device).view(1, -1)  # -1: the null slot
    return kb < qb


def pool_queries_keys(q: Tensor, k: Tensor, block_size: int, causal: bool) -> tuple[Tensor, Tensor]:
    """``(qb, kp)``: the pooled (detached) queries and keys per block, ``(B, H, nb, D)`` each. Under
    causality ``qb`` holds the previous block's query: a block's own pooled query mixes in its later
    tokens (block 0 gets a zero query; it sees only the null slot)."""
    qb = pool_blocks(q.detach(), block_size)  # (B, H, nb, D)
    if causal:
        qb = F.pad(qb, (0, 0, 1, 0))[:, :, :-1]
    return qb, pool_blocks(k.detach(), block_size)


def rank_scores(qb: Tensor, kp: Tensor, k_w: Tensor, k_b: Tensor) -> Tensor:
    """``(B, H, nQb, nKVb)``: the compressed branch's logits over the compressed keys (without the null
    slot): what ranks the key blocks. Callers exclude the blocks top-k may not pick (causality, window)."""
    return (qb * qb.shape[-1] ** -0.5) @ F.linear(kp, k_w, k_b).transpose(-1, -2)


def compressed_branch(qb: Tensor, kp: Tensor, vp: Tensor, params: tuple[Tensor, ...], causal: bool) -> Tensor:
    """``(B, H, nQb, D)``: each query block's attention over the null slot and the compressed blocks
    (under causality only those wholly before it), from the pooled queries, keys and values. ``params``:
    :meth:`BlockScorer.params`; a pure function of tensors, so that one compiled graph serves every layer."""
    k_w, k_b, v_w, v_b, null_kv = params
    D = qb.shape[-1]
    kc = F.linear(kp, k_w, k_b)  # (B, H, nb, D)
    vc = F.linear(vp, v_w, v_b)  # (B, H, nb, D)
    null = null_kv.to(qb.dtype).view(2, 1, 1, 1, D).expand(2, *kc.shape[:2], 1, D)
    keys, values = torch.cat([null[0], kc], 2), torch.cat([null[1], vc], 2)  # (B, H, 1 + nb, D)
    logits = qb @ keys.transpose(-1, -2) * D**-0.5  # (B, H, nQb, 1 + nKVb)
    if causal:
        logits = logits.masked_fill(~past_blocks(qb.shape[2], qb.device), float("-inf"))
    return logits.softmax(-1, dtype=torch.float32).to(qb.dtype) @ values  # (B, H, nQb, D)


def score_blocks(q: Tensor, k: Tensor, v: Tensor, params: tuple[Tensor, ...], block_size: int,
                 causal: bool) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """``q, k, v``: ``(B, H, T, D)``. Returns the pooled queries ``(B, H, nb, D)``, the block scores
    ``(B, H, nQb, nKVb)`` (:func:`rank_scores`) and the compressed-branch output per query block
    ``(B, H, nQb, D)``. The layer runs the parts separately: ranking before its kernel, the branch after."""
    qb, kp = pool_queries_keys(q, k, block_size, causal)
    vp = pool_blocks(v.detach(), block_size)
    return qb, rank_scores(qb, kp, *params[:2]), compressed_branch(qb, kp, vp, params, causal)


class BlockScorer(nn.Module):
    """Compressed keys/values per block, block-ranking scores and the compressed-attention output."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.k_compress = nn.Linear(head_dim, head_dim)
        self.v_compress = nn.Linear(head_dim, head_dim)
        # Key and value of one always-visible null slot: lets causal query blocks with no complete past
        # block attend somewhere (an attention sink) instead of producing NaN.
        self.null_kv = nn.Parameter(torch.zeros(2, head_dim))

    def params(self) -> tuple[Tensor, ...]:
        """The parameters in :func:`compressed_branch`'s order."""
        return (self.k_compress.weight, self.k_compress.bias, self.v_compress.weight, self.v_compress.bias,
                self.null_kv)  # fmt: skip

    def forward(self, q: Tensor, k: Tensor, v: Tensor, block_size: int, causal: bool) -> tuple[Tensor, ...]:
        """See :func:`score_blocks`."""
        return score_blocks(q, k, v, self.params(), block_size, causal)

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


def score_blocks(q: Tensor, k: Tensor, v: Tensor, params: tuple[Tensor, ...], block_size: int,
                 causal: bool) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """``q, k, v``: ``(B, H, T, D)``; ``params``: :meth:`BlockScorer.params` (a pure function of tensors,
    so that one compiled graph serves every layer). Returns the pooled queries ``(B, H, nb, D)``, the
    block scores ``(B, H, nQb, nKVb)`` and the compressed-branch output per query block ``(B, H, nQb, D)``."""
    k_w, k_b, v_w, v_b, null_kv = params
    D = q.shape[-1]
    qb = pool_blocks(q.detach(), block_size)  # (B, H, nb, D)
    if causal:  # a block's own pooled query mixes in its later tokens: rank and gate with the previous block's
        qb = F.pad(qb, (0, 0, 1, 0))[:, :, :-1]  # block 0 gets a zero query (it sees only the null slot)
    kc = F.linear(pool_blocks(k.detach(), block_size), k_w, k_b)  # (B, H, nb, D)
    vc = F.linear(pool_blocks(v.detach(), block_size), v_w, v_b)  # (B, H, nb, D)
    null = null_kv.to(q.dtype).view(2, 1, 1, 1, D).expand(2, *kc.shape[:2], 1, D)
    keys, values = torch.cat([null[0], kc], 2), torch.cat([null[1], vc], 2)  # (B, H, 1 + nb, D)
    logits = qb @ keys.transpose(-1, -2) * D**-0.5  # (B, H, nQb, 1 + nKVb)
    if causal:
        logits = logits.masked_fill(~past_blocks(qb.shape[2], q.device), float("-inf"))
    out = logits.softmax(-1, dtype=torch.float32).to(q.dtype) @ values  # (B, H, nQb, D)
    return qb, logits[..., 1:], out


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
        """The parameters in :func:`score_blocks`' order."""
        return (self.k_compress.weight, self.k_compress.bias, self.v_compress.weight, self.v_compress.bias,
                self.null_kv)  # fmt: skip

    def forward(self, q: Tensor, k: Tensor, v: Tensor, block_size: int, causal: bool) -> tuple[Tensor, ...]:
        """See :func:`score_blocks`."""
        return score_blocks(q, k, v, self.params(), block_size, causal)

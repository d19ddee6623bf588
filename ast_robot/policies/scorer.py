"""Learned block scorer: a compressed-attention branch whose scores also rank the key blocks (NSA-style).

Each key block is mean-pooled and passed through learned projections into one compressed key and value.
Every query token attends over the compressed keys (an O(T * T/block) branch that runs through SDPA, so
it never materializes its probabilities); its output is mixed into the layer's output, which is how the
projections receive gradient. The same compressed keys, scored against mean-pooled query blocks, rank
the key blocks for top-k selection, so what the branch learns to attend to is what gets selected.
"""

from __future__ import annotations

import math

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


def chunked_attention(
    q: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None, chunk: int = 1024
) -> Tensor:
    """SDPA of many queries ``(B, H, T, D)`` over few keys ``(B, H, K, D)``, with the queries split into
    chunks folded into the head dimension: flash-style backward kernels parallelize over key blocks, and
    with a few hundred keys a single long query loop per block would leave most of a GPU idle."""
    B, H, T, D = q.shape
    n = T // chunk
    if n < 2 or T % chunk:
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
    K = keys.shape[2]
    fold = lambda t: t.unsqueeze(2).expand(B, H, n, K, D).reshape(B, H * n, K, D)  # noqa: E731
    if mask is not None:  # (T, K) -> (1, H * n, chunk, K), matching the folded queries
        mask = mask.view(1, 1, n, chunk, K).expand(1, H, n, chunk, K).reshape(1, H * n, chunk, K)
    out = F.scaled_dot_product_attention(
        q.reshape(B, H * n, chunk, D), fold(keys), fold(values), attn_mask=mask
    )
    return out.view(B, H, T, D)


class BlockScorer(nn.Module):
    """Compressed keys/values per block, block-ranking scores and the compressed-attention output."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.k_compress = nn.Linear(head_dim, head_dim)
        self.v_compress = nn.Linear(head_dim, head_dim)
        # Keys/values of one always-visible null slot: lets causal rows with no complete past block
        # attend somewhere (an attention sink) instead of producing NaN.
        self.null_kv = nn.Parameter(torch.zeros(2, head_dim))

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, block_size: int, causal: bool
    ) -> tuple[Tensor, Tensor]:
        """``q, k, v``: ``(B, H, T, D)``. Returns block scores ``(B, H, nQb, nKVb)`` and the compressed
        branch output ``(B, H, T, D)``."""
        B, H, T, D = q.shape
        kc = self.k_compress(pool_blocks(k, block_size))  # (B, H, nKVb, D)
        vc = self.v_compress(pool_blocks(v, block_size))  # (B, H, nKVb, D)
        scores = pool_blocks(q, block_size) @ kc.transpose(-1, -2) / math.sqrt(D)  # (B, H, nQb, nKVb)
        null_k = self.null_kv[0].to(k.dtype).expand(B, H, 1, D)
        null_v = self.null_kv[1].to(v.dtype).expand(B, H, 1, D)
        keys, values = torch.cat([null_k, kc], 2), torch.cat([null_v, vc], 2)  # (B, H, 1 + nKVb, D)
        mask = None
        if causal:  # a token sees a compressed block only once the whole block lies in its past
            t = torch.arange(T, device=q.device).view(-1, 1)
            end = (torch.arange(kc.shape[2], device=q.device) + 1) * block_size - 1
            mask = torch.cat([torch.ones(T, 1, dtype=torch.bool, device=q.device), end.view(1, -1) <= t], 1)
        out = chunked_attention(q, keys, values, mask)  # (B, H, T, D)
        return scores, out

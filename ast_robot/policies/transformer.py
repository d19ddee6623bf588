"""The sparse transformer: pre-norm blocks of `SparseAttention` and an MLP."""

from __future__ import annotations

from torch import Tensor, nn

from ast_robot.policies import crossover
from ast_robot.policies.attention import SparseAttention


class Block(nn.Module):
    """``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: float, dropout: float, **attn_kwargs) -> None:
        super().__init__()
        hidden = max(1, int(round(d_model * mlp_ratio)))
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SparseAttention(d_model, n_heads, **attn_kwargs)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model), nn.Dropout(dropout)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))  # (B, T, D)
        return x + self.mlp(self.norm2(x))  # (B, T, D)


class SparseTransformer(nn.Module):
    """``n_layers`` blocks and a final LayerNorm: ``(B, T, D) -> (B, T, D)``."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0,
                 **attn_kwargs) -> None:  # fmt: skip
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, mlp_ratio, dropout, **attn_kwargs) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    @classmethod
    def from_config(cls, cfg, seq_len: int | None = None) -> SparseTransformer:
        """Build from a `PolicyConfig`. With ``seq_len`` known (a policy's sequence has a fixed length),
        `auto` resolves once: `full` attention below the crossover (no scorer parameters left unused),
        and top-k is capped at the number of blocks (a 5-token proprio-only sequence has one block)."""
        top_k = cfg.top_k_blocks if seq_len is None else min(cfg.top_k_blocks, -(-seq_len // cfg.block_size))
        backend = cfg.attention_backend
        shortest = cfg.auto_crossover_tokens or crossover.MIN_TOKENS  # None: measured per device at run time
        if backend == "auto" and seq_len is not None and seq_len < shortest:
            backend = "full"
        return cls(cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.mlp_ratio, cfg.dropout, block_size=cfg.block_size,
                   window_blocks=cfg.window_blocks, top_k_blocks=top_k, n_global=cfg.n_global,
                   backend=backend, crossover=cfg.auto_crossover_tokens)  # fmt: skip

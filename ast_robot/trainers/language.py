"""A byte-level causal language model on the gated core; evaluation in bits per byte on held-out files.

Built-in corpus: the Python standard library's own source files (found through ``sysconfig``), so it
works offline. A whole file goes either to training or to the held-out split (chosen by a hash of its
relative path), so held-out text is never seen in training. ``ast-robot train
configs/experiments/lm_stdlib.yaml`` runs it.
"""

from __future__ import annotations

import math
import sysconfig
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ast_robot.core.data import Batch, TensorData
from ast_robot.core.precision import run_blocks
from ast_robot.core.trainer import LossOutput
from ast_robot.trainers import TRAINERS

SEPARATOR = b"\n\x00\n"  # between files; byte 0 never occurs in source text


class Corpus(NamedTuple):
    train: bytes
    held_out: bytes
    files: int


def corpus_files(source: str) -> tuple[Path, list[Path]]:
    """(root, sorted text files): the stdlib's ``*.py`` (no site-packages) or every file in a folder."""
    if source == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        files = [p for p in root.rglob("*.py") if "site-packages" not in p.parts and "dist-packages" not in p.parts]
    else:
        root = Path(source)
        if not root.is_dir():
            raise ValueError(f"train.corpus: {source!r}; expected 'stdlib' or an existing folder of text files")
        files = [p for p in root.rglob("*") if p.is_file()]
    if not files:
        raise ValueError(f"train.corpus: no text files under {root}")
    return root, sorted(files)


def load_corpus(source: str, max_bytes: int, held_out_fraction: float) -> Corpus:
    """Read files in sorted order until ``max_bytes``; each file goes whole to train or held-out."""
    root, files = corpus_files(source)
    train, held, total, used = bytearray(), bytearray(), 0, 0
    for path in files:
        if total >= max_bytes:
            break
        try:
            text = path.read_bytes()
        except OSError:
            continue
        key = zlib.crc32(str(path.relative_to(root)).encode()) / 2**32  # stable, uniform in [0, 1)
        (held if key < held_out_fraction else train).extend(text + SEPARATOR)
        total += len(text) + len(SEPARATOR)
        used += 1
    if not train or not held:
        raise ValueError(f"train.corpus: {source!r} gave {len(train)} training and {len(held)} held-out bytes; "
                         "raise corpus_bytes or held_out_fraction")  # fmt: skip
    return Corpus(bytes(train), bytes(held), used)


def windows(text: bytes, context: int) -> torch.Tensor:
    """(N, context + 1) uint8: non-overlapping windows; inputs are [:, :-1], targets [:, 1:]."""
    data = torch.frombuffer(bytearray(text), dtype=torch.uint8)
    n = (data.numel() - 1) // context
    if n < 1:
        raise ValueError(f"text of {data.numel()} bytes is shorter than one window of {context + 1}")
    idx = torch.arange(n).unsqueeze(1) * context + torch.arange(context + 1)  # (N, context + 1)
    return data[idx]


class ByteLM(nn.Module):
    """Byte embedding + positions + causal sparse transformer + head: ``(B, T) -> (B, T, 256)``."""

    def __init__(self, context: int, d_model: int = 128, n_layers: int = 2, n_heads: int = 4,
                 block_size: int = 32, window_blocks: int = 2, top_k_blocks: int = 1) -> None:  # fmt: skip
        super().__init__()
        from ast_robot.policies.transformer import SparseTransformer

        self.embed = nn.Embedding(256, d_model)
        self.pos = nn.Parameter(torch.randn(1, context, d_model) * 0.02)
        top_k = min(top_k_blocks, max(0, -(-context // block_size) - 1))
        self.encoder = SparseTransformer(d_model, n_layers, n_heads, block_size=block_size, causal=True,
                                         window_blocks=window_blocks, top_k_blocks=top_k, backend="dense")  # fmt: skip
        self.head = nn.Linear(d_model, 256)
        self.checkpointing = False  # activation checkpointing of the transformer blocks

    def forward(self, tokens: torch.Tensor, with_features: bool = False) -> Any:
        T = tokens.shape[1]
        h = run_blocks(self.encoder.blocks, self.embed(tokens.long()) + self.pos[:, :T], self.checkpointing)
        h = self.encoder.norm(h)  # (B, T, D)
        logits = self.head(h)  # (B, T, 256)
        return (logits, h.mean(1)) if with_features else logits


def lm_loss(model: nn.Module, batch: Batch) -> LossOutput:
    """Per-window mean next-byte cross-entropy (nats) with a mean-pooled embedding for novelty."""
    logits, emb = model(batch.inputs, with_features=True)  # (B, T, 256), (B, D)
    target = batch.targets.long()  # (B, T)
    ce = nn.functional.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")  # (B, T)
    return LossOutput(ce.mean(1), None, embeddings=emb, grad_target=logits)


def make_bits_per_byte(held: torch.Tensor, batch: int = 64):
    """``evaluate(model) -> {"bits_per_byte"}`` over held-out windows (N, context + 1)."""

    @torch.no_grad()
    def evaluate(model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        nats, count = 0.0, 0
        for i in range(0, held.shape[0], batch):
            w = held[i : i + batch].to(device)
            logits = model(w[:, :-1]).float()  # (b, T, 256)
            nats += float(nn.functional.cross_entropy(logits.transpose(1, 2), w[:, 1:].long(), reduction="sum"))
            count += w[:, 1:].numel()
        model.train(was_training)
        return {"bits_per_byte": nats / count / math.log(2)}

    return evaluate


def prepare(cfg: Any) -> tuple[nn.Module, TensorData, torch.Tensor]:
    """Model, training windows and held-out windows for an experiment config."""
    tc = cfg.train
    torch.manual_seed(cfg.seed)
    corpus = load_corpus(tc.corpus, tc.corpus_bytes, tc.held_out_fraction)
    train = windows(corpus.train, tc.context)
    held = windows(corpus.held_out, tc.context)
    if tc.eval_windows:
        held = held[torch.randperm(held.shape[0], generator=torch.Generator().manual_seed(cfg.seed))[: tc.eval_windows]]
    model = ByteLM(tc.context, tc.d_model, tc.n_layers, tc.n_heads, tc.block_size, tc.window_blocks, tc.top_k_blocks)
    model.checkpointing = tc.activation_checkpointing
    return model, TensorData(train[:, :-1], train[:, 1:]), held


def training_loss(cfg: Any) -> Any:
    """:func:`lm_loss`, replayed from CUDA graphs with ``train.cuda_graphs`` (see :mod:`language_graph`)."""
    if not cfg.train.cuda_graphs:
        return lm_loss
    from ast_robot.core.precision import resolve_device
    from ast_robot.trainers.language_graph import GraphedLoss

    device = resolve_device(cfg.train.device)
    if device.type != "cuda" or cfg.train.amp != "off":
        raise ValueError(f"train.cuda_graphs: true needs train.device on CUDA (got {device}) and train.amp 'off' "
                         f"(got {cfg.train.amp!r}); set train.cuda_graphs false otherwise")  # fmt: skip
    return GraphedLoss(lm_loss)


@TRAINERS.register("language")
def train_language(cfg: Any, resume: str | None = None, show_progress: bool = True) -> dict[str, float]:
    """Train for ``train.steps`` and evaluate bits per byte; returns the final metrics."""
    from ast_robot.core.assemble import build_trainer

    model, data, held = prepare(cfg)
    evaluate = make_bits_per_byte(held)
    trainer = build_trainer(cfg, model, training_loss(cfg), data, steps=cfg.train.steps, evaluate=evaluate,
                            show_progress=show_progress, resume=resume)  # fmt: skip
    counters = trainer.fit()
    return {**evaluate(trainer.model), **counters.summary()}

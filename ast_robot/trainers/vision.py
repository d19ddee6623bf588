"""Image classification on the gated core: a ViT built from the sparse transformer, or a small CNN.

Data: scikit-learn's ``load_digits`` (1,797 real 8x8 handwritten digits, the built-in dataset), a
``.npz`` file with arrays ``x`` (N, H, W[, C]) and ``y`` (N,), or a folder of class subfolders of images
read with Pillow. ``ast-robot train configs/experiments/vision_digits.yaml`` runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ast_robot.core.data import Batch, TensorData
from ast_robot.core.precision import run_blocks
from ast_robot.core.trainer import LossOutput
from ast_robot.trainers import TRAINERS

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class VisionData(NamedTuple):
    train: TensorData  # inputs (N, C, H, W) float in [0, 1], targets (N,) long
    test_x: torch.Tensor  # (M, C, H, W)
    test_y: torch.Tensor  # (M,)
    n_classes: int


def load_images(source: str, image_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) float32 in [0, 1] and (N,) int64 labels from `digits`, an .npz file or a folder."""
    if source == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return (digits.images[:, None] / 16.0).astype(np.float32), digits.target.astype(np.int64)
    path = Path(source)
    if path.suffix == ".npz" and path.is_file():
        from ast_robot.fileio import reading

        with reading(path, "an .npz file with image arrays 'x' (N, H, W[, C]) and labels 'y' (N,)"):
            with np.load(path, allow_pickle=False) as arrays:
                x, y = arrays["x"].astype(np.float32), arrays["y"].astype(np.int64)
        x = x[:, None] if x.ndim == 3 else np.moveaxis(x, -1, 1)  # (N, C, H, W)
        return x / max(1.0, float(x.max())), y
    if path.is_dir():
        return _load_folder(path, image_size)
    raise ValueError(f"train.dataset: {source!r}; expected 'digits', an existing .npz file or a folder of class folders")


def _load_folder(root: Path, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    from ast_robot.fileio import reading

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                with reading(file, f"an image Pillow reads ({sorted(IMAGE_SUFFIXES)})"), Image.open(file) as img:
                    img = img.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                    images.append(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0)
                labels.append(label)
    if len(classes) < 2 or not images:
        raise ValueError(f"train.dataset: {str(root)!r} needs >= 2 class subfolders with images ({sorted(IMAGE_SUFFIXES)})")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def split_data(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> VisionData:
    """Shuffled train/test split (same seed, same split)."""
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(1, int(round(test_fraction * len(y))))
    test, train = order[:n_test], order[n_test:]
    return VisionData(TensorData(x[train], y[train]), torch.from_numpy(x[test]), torch.from_numpy(y[test]),
                      int(y.max()) + 1)  # fmt: skip


class CNN(nn.Module):
    """Two conv blocks and a linear head: ``(B, C, H, W) -> (B, classes)``; ``features`` gives (B, width)."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width // 2, 3, padding=1), nn.GELU(),
            nn.Conv2d(width // 2, width, 3, padding=1, stride=2), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, width)

    def forward(self, x: torch.Tensor, with_features: bool = False) -> Any:
        emb = self.features(x)
        return (self.head(emb), emb) if with_features else self.head(emb)


class ViT(nn.Module):
    """Patches + a class token through the sparse transformer; the class token (global) feeds the head."""

    def __init__(self, image_size: int, in_channels: int, n_classes: int, patch: int = 2, d_model: int = 64,
                 n_layers: int = 2, n_heads: int = 4) -> None:  # fmt: skip
        super().__init__()
        from ast_robot.policies.transformer import SparseTransformer

        if image_size % patch:
            raise ValueError(f"train.patch_size: {patch} must divide the image side {image_size}")
        n_tokens = (image_size // patch) ** 2 + 1
        self.patch = patch
        self.embed = nn.Linear(in_channels * patch * patch, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = nn.Parameter(torch.randn(1, n_tokens, d_model) * 0.02)
        block = max(1, min(8, n_tokens // 4))
        self.encoder = SparseTransformer(d_model, n_layers, n_heads, block_size=block, window_blocks=1,
                                         top_k_blocks=1, n_global=1, backend="dense")  # fmt: skip
        self.head = nn.Linear(d_model, n_classes)
        self.checkpointing = False  # activation checkpointing of the transformer blocks

    def features(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        p = self.patch
        patches = x.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(B, -1, C * p * p)  # (B, N, Cpp)
        tokens = torch.cat([self.cls.expand(B, -1, -1), self.embed(patches)], dim=1) + self.pos  # (B, N+1, D)
        h = run_blocks(self.encoder.blocks, tokens, self.checkpointing)  # (B, N+1, D)
        return self.encoder.norm(h)[:, 0]  # (B, D): the class token

    def forward(self, x: torch.Tensor, with_features: bool = False) -> Any:
        emb = self.features(x)
        return (self.head(emb), emb) if with_features else self.head(emb)


def build_model(tc: Any, data: VisionData) -> nn.Module:
    _, C, H, W = data.train.inputs.shape
    if tc.model == "cnn":
        return CNN(C, data.n_classes, tc.d_model)
    vit = ViT(H, C, data.n_classes, tc.patch_size, tc.d_model, tc.n_layers, tc.n_heads)
    vit.checkpointing = tc.activation_checkpointing
    return vit


def classification_loss(model: nn.Module, batch: Batch) -> LossOutput:
    """Per-sample cross-entropy with logits (uncertainty), embeddings (novelty) and a gradient target."""
    logits, emb = model(batch.inputs, with_features=True)  # (B, classes), (B, D); through DDP if wrapped
    losses = nn.functional.cross_entropy(logits.float(), batch.targets, reduction="none")  # (B,)
    return LossOutput(losses, logits, embeddings=emb, grad_target=logits)


def make_accuracy(x: torch.Tensor, y: torch.Tensor, batch: int = 512):
    """``evaluate(model) -> {"accuracy", "test_loss"}`` on a fixed held-out set."""

    @torch.no_grad()
    def evaluate(model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        correct, loss = 0, 0.0
        for i in range(0, len(y), batch):
            logits = model(x[i : i + batch].to(device)).float()
            target = y[i : i + batch].to(device)
            correct += int((logits.argmax(1) == target).sum())
            loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
        model.train(was_training)
        return {"accuracy": correct / len(y), "test_loss": loss / len(y)}

    return evaluate


def prepare(cfg: Any) -> tuple[nn.Module, VisionData, int]:
    """Model, data and the number of optimizer steps (``epochs`` passes) for an experiment config."""
    tc = cfg.train
    torch.manual_seed(cfg.seed)
    data = split_data(*load_images(tc.dataset, tc.image_size), tc.test_fraction, cfg.seed)
    from ast_robot.core.assemble import draw_batch_size

    steps = tc.epochs * max(1, len(data.train) // draw_batch_size(cfg))
    return build_model(tc, data), data, steps


@TRAINERS.register("vision")
def train_vision(cfg: Any, resume: str | None = None, show_progress: bool = True) -> dict[str, float]:
    """Train and evaluate; returns the final metrics (accuracy, counters)."""
    from ast_robot.core.assemble import build_trainer

    model, data, steps = prepare(cfg)
    trainer = build_trainer(cfg, model, classification_loss, data.train, steps=steps,
                            evaluate=make_accuracy(data.test_x, data.test_y), show_progress=show_progress, resume=resume)  # fmt: skip
    counters = trainer.fit()
    return {**make_accuracy(data.test_x, data.test_y)(trainer.model), **counters.summary()}


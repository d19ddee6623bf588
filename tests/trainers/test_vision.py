"""Vision trainer: real data loaders (digits, .npz, Pillow image folders), ViT/CNN, gated training, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ast_robot.config import ExperimentConfig, from_dict
from ast_robot.trainers import TRAINERS
from ast_robot.trainers.vision import CNN, ViT, load_images, split_data

torch.set_num_threads(1)


def _cfg(tmp_path, gated: bool = False, **train):
    base = {"type": "vision", "model": "cnn", "epochs": 2, "batch_size": 32, "lr": 1e-2, "device": "cpu", **train}
    return from_dict(ExperimentConfig, {"name": "v", "run_root": str(tmp_path), "train": base,
                                        "gate": {"enabled": gated, "scoring": "stale_scores"},
                                        "significance": {"weights": {"loss": 1.0, "uncertainty": 0.5},
                                                         "stale_scores": True}})  # fmt: skip


def test_digits_are_the_real_dataset():
    x, y = load_images("digits")
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert 0.0 <= x.min() and x.max() == 1.0 and set(np.unique(y)) == set(range(10))


def test_image_folder_and_npz_loaders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, level in (("dark", 30), ("bright", 220)):
        (tmp_path / label).mkdir()
        for i in range(6):
            pixels = np.clip(rng.normal(level, 10, (12, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    x, y = load_images(str(tmp_path), image_size=8)
    assert x.shape == (12, 3, 8, 8) and sorted(np.bincount(y)) == [6, 6]
    assert x[y == 0].mean() > 0.7 > 0.2 > x[y == 1].mean()  # classes sorted by name: bright=0, dark=1
    np.savez(tmp_path / "a.npz", x=rng.integers(0, 255, (20, 6, 6)), y=rng.integers(0, 3, 20))
    x2, y2 = load_images(str(tmp_path / "a.npz"))
    assert x2.shape == (20, 1, 6, 6) and x2.max() <= 1.0 and y2.dtype == np.int64
    with pytest.raises(ValueError, match="train.dataset"):
        load_images(str(tmp_path / "missing"))


def test_models_shapes_and_vit_uses_sparse_transformer():
    from ast_robot.policies.transformer import SparseTransformer

    x = torch.rand(5, 1, 8, 8)
    vit = ViT(8, 1, 10, patch=2, d_model=32, n_layers=1, n_heads=4)
    assert isinstance(vit.encoder, SparseTransformer)
    logits, emb = vit(x, with_features=True)
    assert logits.shape == (5, 10) and emb.shape == (5, 32)
    assert CNN(1, 10, 16)(x).shape == (5, 10)
    with pytest.raises(ValueError, match="patch_size"):
        ViT(8, 1, 10, patch=3)


def test_split_is_deterministic_and_disjoint():
    x, y = load_images("digits")
    a, b = split_data(x, y, 0.2, seed=1), split_data(x, y, 0.2, seed=1)
    assert torch.equal(a.test_y, b.test_y) and len(a.test_y) == 359 and len(a.train) == 1797 - 359


@pytest.mark.parametrize("gated", [False, True])
def test_train_vision_learns_digits(tmp_path, gated):
    metrics = TRAINERS.get("vision")(_cfg(tmp_path, epochs=4, gated=gated),
                                     show_progress=False)  # fmt: skip
    assert metrics["accuracy"] > 0.6  # 10 classes: chance is 0.1
    if gated:
        assert metrics["backward_samples"] < metrics["samples_seen"]
    assert (tmp_path / "v" / "latest").is_file()


@pytest.mark.slow
def test_cli_train_vision(tmp_path, repo_root):
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "ast_robot", "train", str(repo_root / "configs/experiments/vision_digits.yaml"),
            "--set", "train.model=cnn", "--set", "train.epochs=1", "--set", f"run_root={tmp_path}", "--no-progress"]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert 0 <= result["accuracy"] <= 1 and result["world_size"] == 1
    assert (tmp_path / "vision_digits" / "latest").is_file() and (tmp_path / "vision_digits" / "tb").is_dir()
    bad = subprocess.run(args[:5] + ["--set", "train.model=resnet"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "train.model" in bad.stderr and "Traceback" not in bad.stderr


def test_resume_continues_from_checkpoint(tmp_path):
    first = TRAINERS.get("vision")(_cfg(tmp_path, epochs=1, gated=True), show_progress=False)
    resumed = TRAINERS.get("vision")(_cfg(tmp_path, epochs=2, gated=True),
                                     resume=str(tmp_path / "v"), show_progress=False)  # fmt: skip
    assert resumed["samples_seen"] == 2 * first["samples_seen"]  # counters carried over, one more epoch run

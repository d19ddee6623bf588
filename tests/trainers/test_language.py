"""Byte-level LM: stdlib corpus with a file-level held-out split, causal model, bits per byte, gated training."""

from __future__ import annotations

import math

import pytest
import torch

from ast_robot.config import ExperimentConfig, from_dict
from ast_robot.trainers import TRAINERS
from ast_robot.trainers.language import ByteLM, load_corpus, make_bits_per_byte, windows

torch.set_num_threads(1)


def test_stdlib_corpus_split_by_file_is_deterministic():
    a = load_corpus("stdlib", 300_000, 0.2)
    b = load_corpus("stdlib", 300_000, 0.2)
    assert a == b and a.files > 10
    assert 0.05 < len(a.held_out) / (len(a.train) + len(a.held_out)) < 0.5
    assert b"def " in a.train and b"import " in a.held_out  # it is Python source


def test_folder_corpus_and_errors(tmp_path):
    for i in range(40):
        (tmp_path / f"f{i}.txt").write_text(f"file {i}: " + "abc " * 50)
    corpus = load_corpus(str(tmp_path), 10**6, 0.3)
    assert corpus.files == 40 and corpus.train and corpus.held_out
    with pytest.raises(ValueError, match="train.corpus"):
        load_corpus(str(tmp_path / "nope"), 1000, 0.1)


def test_windows_shift_by_one():
    w = windows(b"abcdefghij", 3)  # (N, 4)
    assert w.shape == (3, 4) and bytes(w[0].tolist()) == b"abcd" and bytes(w[1].tolist()) == b"defg"


def test_model_is_causal():
    torch.manual_seed(0)
    model = ByteLM(context=64, d_model=32, n_layers=2, n_heads=4, block_size=16).eval()
    x = torch.randint(0, 256, (2, 64))
    y = x.clone()
    y[:, 40:] = torch.randint(0, 256, (2, 24))  # change only the future
    with torch.no_grad():
        a, b = model(x), model(y)
    assert a.shape == (2, 64, 256)
    assert torch.allclose(a[:, :40], b[:, :40], atol=1e-5)
    assert not torch.allclose(a[:, 40:], b[:, 40:])


def test_untrained_bits_per_byte_is_near_uniform():
    torch.manual_seed(0)
    held = windows(bytes(range(256)) * 8, 32)
    bpb = make_bits_per_byte(held)(ByteLM(32, 32, 1, 4, 16))["bits_per_byte"]
    assert abs(bpb - math.log2(256)) < 0.5


@pytest.mark.parametrize("gated", [False, True])
def test_training_lowers_held_out_bits_per_byte(tmp_path, gated):
    train = {"type": "language", "steps": 60, "batch_size": 16, "lr": 3e-3, "context": 64, "corpus_bytes": 50_000,
             "d_model": 48, "n_layers": 1, "n_heads": 4, "block_size": 16, "eval_windows": 64, "device": "cpu",
             "held_out_fraction": 0.3}  # fmt: skip
    cfg = from_dict(ExperimentConfig, {"name": "lm", "run_root": str(tmp_path), "train": train,
                                       "gate": {"enabled": gated, "scoring": "stale_scores"},
                                       "significance": {"stale_scores": True}})  # fmt: skip
    metrics = TRAINERS.get("language")(cfg, show_progress=False)
    assert metrics["bits_per_byte"] < 6.0  # uniform is 8; byte statistics of source code alone get well below 6
    assert (metrics["backward_samples"] < metrics["samples_seen"]) == gated


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = ByteLM(context=32, d_model=32, n_layers=2, n_heads=4, block_size=16)
    x = torch.randint(0, 256, (3, 32))

    def grads(checkpointing: bool) -> list[torch.Tensor]:
        model.zero_grad()
        model.checkpointing = checkpointing
        model(x).float().logsumexp(-1).mean().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain, recomputed = grads(False), grads(True)
    assert len(plain) == len(recomputed) > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, recomputed))

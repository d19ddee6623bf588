"""Device choice and mixed precision: bf16 autocast anywhere, fp16 autocast + GradScaler on CUDA only."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``, ``cuda`` and ``cuda:N`` are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not (name == "cuda" or name.startswith("cuda:")):
        raise ValueError(f"train.device: {name!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.device: {name!r} but CUDA is not available here; use 'cpu' or 'auto'")
    return torch.device(name)


def check_amp(amp: str, device: torch.device) -> None:
    if amp not in ("off", "bf16", "fp16"):
        raise ValueError(f"train.amp: {amp!r}; expected 'off', 'bf16' or 'fp16'")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"train.amp: 'fp16' needs CUDA (device is {device}); use 'bf16' or 'off' on CPU")


def autocast(amp: str, device: torch.device) -> Any:
    """The autocast context of a forward pass (a no-op when ``amp`` is off)."""
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 on CUDA; bf16 has fp32's range and needs none."""
    return torch.amp.GradScaler("cuda") if amp == "fp16" and device.type == "cuda" else None


def is_oom(err: BaseException) -> bool:
    """True for a CUDA (or any device) out-of-memory error."""
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def run_blocks(blocks: Any, x: torch.Tensor, checkpoint: bool) -> torch.Tensor:
    """Apply ``blocks`` in order; with ``checkpoint`` (and grad enabled) recompute each in the backward pass."""
    from torch.utils.checkpoint import checkpoint as recompute

    for block in blocks:
        x = recompute(block, x, use_reentrant=False) if checkpoint and torch.is_grad_enabled() else block(x)
    return x

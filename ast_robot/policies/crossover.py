"""Where `auto` switches from full attention to the sparse layer: measured per device and dtype.

The sparse layer pays off only at long sequences and low density, and where exactly depends on the GPU:
on an H100 (torch 2.11) the flex layer was 2.3-2.7x slower than SDPA at 2k tokens at every sparsity, and
1.07-1.13x slower at 4k / 50% sparsity, while a fixed 2048-token crossover sent both to flex. Each entry
``(min_tokens, max_kept)`` of a device's table is a measured win: at ``min_tokens`` and every longer
length measured, the flex layer with at most ``max_kept`` of the key blocks per query block ran at least
5% faster than dense SDPA both forward and forward+backward (bench/attention.py derives the entries from
its rows: the ``auto table`` row; re-run it on a new device and add the entry here). `auto` runs sparse
at length ``T`` when some entry has ``T >= min_tokens`` and the layer's kept fraction at ``T`` is at most
``max_kept``; devices without an entry get :data:`DEFAULT`, a conservative rule.
"""

from __future__ import annotations

import functools
import math

import torch

Entry = tuple[int, float]  # (min_tokens, max_kept): a measured win of the flex layer over dense SDPA

# Keyed by (torch.cuda.get_device_name(), dtype name); a key also matches device names that start with it.
TABLE: dict[tuple[str, str], tuple[Entry, ...]] = {
    # H100 80GB HBM3, torch 2.11, bench/results/attention.json of 2026-12-06 (the `auto table` row): flex
    # lost at 2k (2.2-3.3x slower) and at 4k forward at every sparsity (1.11-1.34x; forward+backward won
    # at 4k from 90%), and won by >= 17% forward and forward+backward from 8k at 50% to 95% sparsity.
    ("NVIDIA H100", "bfloat16"): ((8192, 0.5),),
    # H200, torch 2.11, bench/results/attention.json of 2026-12-02 (commit 394a849; 4k: lost forward at every sparsity;
    # 16k and 32k: won at every measured sparsity, 50% included).
    ("NVIDIA H200", "bfloat16"): ((16384, 0.5),),
}
DEFAULT: tuple[Entry, ...] = ((16384, 0.25),)  # unknown device or dtype: long and sparse only
MIN_TOKENS = min(t for entries in (*TABLE.values(), DEFAULT) for t, _ in entries)  # shorter: never sparse


def entries_for(device: torch.device, dtype: torch.dtype) -> tuple[Entry, ...]:
    """The measured entries of ``device`` and ``dtype`` (:data:`DEFAULT` where none were measured)."""
    return _entries(_device_name(device), str(dtype).removeprefix("torch."))


@functools.cache
def _entries(name: str, dtype: str) -> tuple[Entry, ...]:
    for (prefix, kind), entries in TABLE.items():
        if kind == dtype and name.startswith(prefix):
            return entries
    return DEFAULT


@functools.cache
def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def crossover_tokens(entries: tuple[Entry, ...], kept_blocks: int, block_size: int) -> int:
    """The shortest length at which a layer keeping ``kept_blocks`` key blocks per query block runs sparse
    under ``entries``: its kept fraction ``kept_blocks / ceil(T / block_size)`` falls with ``T``, so each
    entry holds from ``max(min_tokens, first T whose fraction is <= max_kept)``."""
    lengths = []
    for min_tokens, max_kept in entries:
        if max_kept <= 0:
            continue
        blocks_needed = math.ceil(kept_blocks / max_kept - 1e-9)  # ceil(T / bs) >= this
        lengths.append(max(min_tokens, (blocks_needed - 1) * block_size + 1))
    return min(lengths, default=2**62)

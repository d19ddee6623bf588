"""Typed batches, in-memory datasets and a resumable, shardable epoch sampler."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch


class Batch(NamedTuple):
    """A batch of samples; ``indices`` are dataset indices (stale scores and novelty are keyed by them).

    ``inputs`` is a tensor or, for multimodal data, a dict of tensors with the same leading dimension.
    """

    inputs: Any  # (B, ...) tensor or {name: (B, ...) tensor}
    targets: torch.Tensor  # (B, ...)
    indices: torch.Tensor  # (B,) long

    @property
    def size(self) -> int:
        return int(self.indices.shape[0])

    def select(self, which: torch.Tensor) -> Batch:
        """Rows chosen by a (B,) bool mask or a 1-D index tensor."""
        which = which.to(self.targets.device)
        inputs = _map(self.inputs, lambda t: t[which.to(t.device)])
        return Batch(inputs, self.targets[which], self.indices[which.to(self.indices.device)])

    def split(self, chunks: int) -> list[Batch]:
        """At most ``chunks`` consecutive micro-batches of near-equal size (none empty)."""
        if self.size == 0:
            return []
        step = -(-self.size // max(1, chunks))
        return [Batch(*(_map(t, lambda x, i=i: x[i : i + step]) for t in self)) for i in range(0, self.size, step)]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(_map(t, lambda x: x.to(device, non_blocking=True)) for t in self))


def _map(value: Any, fn: Any) -> Any:
    """Apply ``fn`` to a tensor or to every tensor of a dict."""
    return {k: fn(v) for k, v in value.items()} if isinstance(value, dict) else fn(value)


class Dataset(Protocol):
    """What the trainer needs from data: a length and a batch for given indices."""

    def __len__(self) -> int: ...

    def get(self, indices: torch.Tensor) -> Batch: ...


class TensorData:
    """Inputs and targets held in memory as tensors (from numpy arrays, image folders, ...)."""

    def __init__(self, inputs: Any, targets: Any) -> None:
        self.inputs = torch.as_tensor(inputs)
        self.targets = torch.as_tensor(targets)
        if self.inputs.shape[0] != self.targets.shape[0]:
            raise ValueError(f"inputs ({self.inputs.shape[0]}) and targets ({self.targets.shape[0]}) differ in length")
        if self.inputs.shape[0] == 0:
            raise ValueError("dataset is empty")

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def get(self, indices: torch.Tensor) -> Batch:
        return Batch(self.inputs[indices], self.targets[indices], indices.long())


class EpochSampler:
    """Shuffled batches of dataset indices, epoch after epoch; exact position is part of its state.

    With ``world > 1`` every rank draws the same permutation (same seed) and takes its own slice of each
    global batch of ``batch_size * world`` indices. The tail that does not fill a global batch is dropped.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        if batch_size * world > n:
            raise ValueError(f"batch_size * world ({batch_size} * {world}) exceeds the dataset size {n}")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.position = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))

    @property
    def batches_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world)

    def next(self) -> torch.Tensor:
        """The next (batch_size,) indices of this rank."""
        span = self.batch_size * self.world
        if self.position + span > self.n:
            self.epoch, self.position = self.epoch + 1, 0
            self._perm = self._permutation(self.epoch)
        start = self.position + self.rank * self.batch_size
        self.position += span
        return self._perm[start : start + self.batch_size]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self.seed = int(state["epoch"]), int(state["position"]), int(state["seed"])
        self._perm = self._permutation(self.epoch)

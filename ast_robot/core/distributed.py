"""Data-parallel training through PyTorch DDP, launched with ``torchrun --nproc_per_node=N ...``.

Gloo on CPU, NCCL on GPUs. Every rank reads its own slice of each global batch (``EpochSampler``); the
gate's (kept, seen) counts are all-reduced before each PI update, so every rank moves its threshold by
the same amount from the same global activation rate and all ranks share one threshold.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ast_robot.core.gate import Gate


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size and the device it should use."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto", force: bool = False) -> DistInfo:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), else return a single-process info.

    ``force`` joins a group of one too (torchrun with one process): the NCCL/gloo path (DDP wrapper, the
    gate's all-reduced counts) then runs on one GPU, as the distributed benchmark's 1-GPU baseline does."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (force and "RANK" in os.environ):
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local_rank)


def active() -> bool:
    """Whether a process group is initialized (a group of one included: see ``init_distributed(force=)``)."""
    return dist.is_available() and dist.is_initialized()


def current() -> DistInfo:
    """The process group's view (single process when none is initialized)."""
    if not active():
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def allreduce_counts(counts: torch.Tensor) -> torch.Tensor:
    """Sum a small tensor of counts over all ranks (on the backend's device) and return it on the CPU."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    buf = counts.to(device=device, dtype=torch.float64)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.cpu()


def share_gate(gate: Gate) -> Gate:
    """Make ``gate`` control on the global activation rate of all ranks."""
    gate.reduce_counts = allreduce_counts
    return gate


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """``DistributedDataParallel(model)`` when a process group runs, else ``model`` itself."""
    if not active():
        return model
    device_ids = [info.local_rank] if next(model.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def all_gather_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each tensor concatenated (dim 0, rank order) over all ranks; rows may differ in number per rank.

    Small CPU tensors (per-step stale-score bookkeeping): gathered as objects, which needs no padding."""
    world = current().world
    if world <= 1:
        return tensors
    gathered: list[list[torch.Tensor] | None] = [None] * world
    dist.all_gather_object(gathered, [t.detach().cpu() for t in tensors])
    return tuple(torch.cat([rank[i] for rank in gathered]) for i in range(len(tensors)))


def cleanup() -> None:
    """Leave the process group; call it once the trainer is out of scope.

    A DDP wrapper still alive when the interpreter exits is destroyed after gloo's threads and aborts the
    process ("terminate called without an active exception": 3 of 10 two-rank CPU runs, torch 2.13). The
    trainer holds its model in reference cycles, so collect them here, before the group goes."""
    gc.collect()
    if active():
        dist.destroy_process_group()

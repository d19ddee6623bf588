"""The byte LM's training forward and backward replayed from CUDA graphs (``train.cuda_graphs``, issue 22).

Why: at 32k tokens the sparse LM's step is bound by the host, not the GPU. An H100 profile (torch 2.11,
bench/results/sparse_profile_lm.txt) read 13.2 ms per window fwd+bwd with 9.1 ms of GPU work: ~510
kernel launches, ~4 ms of GPU idle. A CUDA graph launches all of them at once. The layer's math is not
recompiled: the graph records exactly the kernels eager mode runs (the layer's own compiled pieces
included), so the numbers are the eager ones.

How: for each input shape, a few eager warm-up passes (on a side stream, gradients returned by
``torch.autograd.grad``, never accumulated), then two graphs sharing one private memory pool: the
forward (embedding to per-window loss) and the backward, which accumulates into persistent gradient
buffers installed as the parameters' ``.grad``. A custom autograd function links them to the caller's
loss, so the trainer's own ``loss.backward()`` (its 1/p weights and 1/n scale arrive as the incoming
gradient) replays the backward graph. Everything is static: the block selection and FlexAttention's
block lists are GPU tensors computed inside the graph on every replay; nothing in the path syncs
with the host (a capture would fail if it did).

Limits (refused with one line, or served eagerly where that is the same): training mode with grad on
CUDA only (evaluation and no-grad forwards run eagerly); no autocast (``train.amp: off``; the bench
trains a bf16 model); no DDP wrapper; no ``learning_value`` significance (the per-window gradient norm
needs the logits' gradient, which the graph does not keep). A forward must be followed by its backward
before the next forward (the trainer does so for each micro-batch); a backward of an older forward
raises instead of reading overwritten activations.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ast_robot.core.data import Batch
from ast_robot.core.trainer import LossOutput

WARMUP_PASSES = 3  # eager passes before capture: compile guards, cuBLAS/cuDNN handles, lazy tables


class _Graphs:
    """The forward and backward graphs of one model at one input shape, with their static buffers."""

    def __init__(self, model: nn.Module, loss_fn: Any, batch: Batch) -> None:
        self.inputs, self.targets = batch.inputs.clone(), batch.targets.clone()
        self.generation = 0
        self.last_embeddings: torch.Tensor | None = None
        params = [p for p in model.parameters() if p.requires_grad]
        used = self._warm_up(model, loss_fn, params)
        self.params = [p for p, u in zip(params, used) if u]  # unused parameters keep grad None, as eagerly
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.anchor = self.params[0]  # makes the replayed loss require grad
        saved = [p.grad for p in self.params]
        for p, g in zip(self.params, self.grads):
            p.grad = g  # the backward graph accumulates into these buffers in place
        pool = torch.cuda.graph_pool_handle()
        self.fwd, self.bwd = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.fwd, pool=pool):
            out = loss_fn(model, Batch(self.inputs, self.targets, None))
            self.losses = out.losses
            self.embeddings = None if out.embeddings is None else out.embeddings.detach()
        self.grad_out = torch.zeros_like(self.losses)
        with torch.cuda.graph(self.bwd, pool=pool):
            self.losses.backward(self.grad_out)
        for p, g in zip(self.params, saved):
            p.grad = g
        torch.cuda.synchronize()

    def _warm_up(self, model: nn.Module, loss_fn: Any, params: list[torch.Tensor]) -> list[bool]:
        """Eager passes on a side stream (as capture requires); which parameters get a gradient."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_PASSES):
                out = loss_fn(model, Batch(self.inputs, self.targets, None))
                grads = torch.autograd.grad(out.losses.sum(), params, allow_unused=True)
        torch.cuda.current_stream().wait_stream(stream)
        return [g is not None for g in grads]

    def forward(self, batch: Batch) -> tuple[torch.Tensor, int]:
        """Replay the forward on ``batch``: per-window losses (a fresh tensor) and this replay's generation;
        the embeddings of the replay are in ``last_embeddings``."""
        self.inputs.copy_(batch.inputs)
        self.targets.copy_(batch.targets)
        self.fwd.replay()
        self.generation += 1
        self.last_embeddings = None if self.embeddings is None else self.embeddings.clone()
        return self.losses.clone(), self.generation

    def backward(self, grad_out: torch.Tensor, generation: int) -> None:
        """Replay the backward with ``grad_out`` (d loss / d per-window loss), accumulating into ``.grad``."""
        if generation != self.generation:
            raise RuntimeError("train.cuda_graphs: a backward of an older forward (another forward was replayed "
                               "in between and overwrote its activations); run each forward's backward first")  # fmt: skip
        self._install_grads()
        self.grad_out.copy_(grad_out)
        self.bwd.replay()

    def _install_grads(self) -> None:
        """Point ``.grad`` at the graph's buffers: zeroed after ``zero_grad(set_to_none=True)``, kept as
        they are while micro-batches accumulate (or after an in-place ``zero_grad``)."""
        current = [p.grad for p in self.params]
        if all(c is g for c, g in zip(current, self.grads)):
            return
        if any(c is not None for c in current):
            raise RuntimeError("train.cuda_graphs: parameter gradients were replaced outside the graph; clear "
                               "them with zero_grad (set_to_none=True or False) only")  # fmt: skip
        torch._foreach_zero_(self.grads)
        for p, g in zip(self.params, self.grads):
            p.grad = g


class _Replayed(torch.autograd.Function):
    """The forward graph's replay as one autograd node whose backward replays the backward graph (the
    ``anchor`` parameter only makes the output require grad; the graph writes every gradient itself)."""

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, graphs: _Graphs, batch: Batch) -> torch.Tensor:
        losses, ctx.generation = graphs.forward(batch)
        ctx.graphs = graphs
        return losses

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, None]:
        ctx.graphs.backward(grad, ctx.generation)
        return None, None, None


class GraphedLoss:
    """``loss_fn(model, batch) -> LossOutput`` served from CUDA graphs while training on CUDA, else eager.

    ``loss_fn``: a pure per-window loss such as :func:`ast_robot.trainers.language.lm_loss`."""

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn
        self._graphs: dict[tuple[Any, ...], _Graphs] = {}

    def __call__(self, model: nn.Module, batch: Batch) -> LossOutput:
        if not (torch.is_grad_enabled() and model.training and batch.inputs.is_cuda):
            return self.loss_fn(model, batch)
        check_graphable(model)
        key = (id(model), tuple(batch.inputs.shape), batch.inputs.dtype, tuple(batch.targets.shape))
        if key not in self._graphs:
            self._graphs[key] = _Graphs(model, self.loss_fn, batch)
        graphs = self._graphs[key]
        losses = _Replayed.apply(graphs.anchor, graphs, batch)
        return LossOutput(losses, None, embeddings=graphs.last_embeddings)


def check_graphable(model: nn.Module) -> None:
    """One line naming what stops a capture (autocast, DDP), before any capture is tried."""
    if torch.is_autocast_enabled("cuda"):
        raise ValueError("train.cuda_graphs: needs train.amp 'off' (autocast's weight cache cannot live in a "
                         "CUDA graph); train a bf16 model instead, or set train.cuda_graphs false")  # fmt: skip
    if hasattr(model, "no_sync"):
        raise ValueError("train.cuda_graphs: not supported under DDP (its gradient hooks run outside the "
                         "graph); set train.cuda_graphs false for distributed runs")  # fmt: skip

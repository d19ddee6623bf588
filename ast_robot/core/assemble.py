"""Wire an ``ExperimentConfig`` into a :class:`Trainer`: optimizer, schedule, significance, gate, run dir.

Task adapters (vision, language, robot BC) supply only the model, the per-sample loss, the data and an
evaluation function; everything else comes from the config here, the same way for every task.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ast_robot.config.gate import is_gated
from ast_robot.core import distributed
from ast_robot.core.callbacks import Callback, EvalCallback, GateAnneal
from ast_robot.core.data import Dataset
from ast_robot.core.gate import Gate
from ast_robot.core.precision import resolve_device
from ast_robot.core.significance import SignificanceModel
from ast_robot.core.trainer import LossFn, Trainer

Evaluate = Callable[[nn.Module], dict[str, float]]


def cosine_with_warmup(optimizer: torch.optim.Optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10% of the peak at ``steps``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def draw_batch_size(cfg: Any) -> int:
    """Samples drawn per step: ``batch_size``, or ``batch_size / target_rate`` with ``gate.batch: kept``."""
    tc = cfg.train
    if is_gated(cfg) and cfg.gate.batch == "kept":
        return math.ceil(tc.batch_size / cfg.gate.target_rate)
    return tc.batch_size


def build_trainer(cfg: Any, model: nn.Module, loss_fn: LossFn, data: Dataset, *, steps: int,
                  evaluate: Evaluate | None = None, eval_every: int = 0, callbacks: Sequence[Callback] = (),
                  run: Any = "auto", show_progress: bool = True, resume: Any = None) -> Trainer:  # fmt: skip
    """A Trainer for experiment ``cfg`` (its ``train``, ``gate`` and ``significance`` sections).

    ``run="auto"`` makes ``<run_root>/<name>/`` (TensorBoard, checkpoints) on rank 0; None writes nothing.
    ``resume`` (a checkpoint or run directory) is restored before the run folder is made or its config.yaml
    written, so a resume that fails (a bad or unfitting checkpoint) changes nothing on disk.
    Under torchrun (after :func:`distributed.init_distributed`) the model is wrapped in DDP, each rank reads
    its own slice of every global batch and the gate's counts are all-reduced.
    """
    from ast_robot.config import dump_config
    from ast_robot.runlog import RunDir

    tc = dataclasses.replace(cfg.train, steps=steps, batch_size=draw_batch_size(cfg))
    info = distributed.current()
    if distributed.active() and tc.device == "auto" and torch.cuda.is_available():
        model = model.to(torch.device("cuda", info.local_rank))
    else:
        model = model.to(resolve_device(tc.device))
    model = distributed.wrap_model(model, info)
    gate = significance = None
    if is_gated(cfg):
        significance = SignificanceModel(cfg.significance)
        gate = Gate(cfg.gate, seed=cfg.seed + info.rank)  # own draws per rank, one shared threshold
        if distributed.active():
            distributed.share_gate(gate)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = cosine_with_warmup(optimizer, steps, warmup=max(1, steps // 20))
    cbs = list(callbacks)
    if gate is not None and cfg.gate.anneal > 0:
        cbs.append(GateAnneal(cfg.gate.anneal))
    if evaluate is not None:
        cbs.append(EvalCallback(evaluate, every=eval_every or max(1, steps // 10)))
    trainer = Trainer(model, loss_fn, optimizer, data, tc, significance=significance, gate=gate,
                      scheduler=scheduler, callbacks=cbs, run=None, config_text=dump_config(cfg), seed=cfg.seed,
                      rank=info.rank, world=info.world, show_progress=show_progress)  # fmt: skip
    if resume:
        trainer.resume(resume)
    trainer.run = (RunDir(cfg) if info.is_main else None) if run == "auto" else run
    return trainer


def eval_history(trainer: Trainer) -> list[dict[str, float]]:
    """Rows recorded by the trainer's EvalCallback (empty without one)."""
    for cb in trainer.callback.callbacks:
        if isinstance(cb, EvalCallback):
            return cb.history
    return []

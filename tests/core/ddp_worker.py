"""Run by tests/core/test_distributed.py under torchrun: a few gated DDP steps, results to a JSON per rank."""

from __future__ import annotations

import json
import sys

import torch
from torch import nn

from ast_robot.config import ExperimentConfig, from_dict
from ast_robot.core import distributed
from ast_robot.core.assemble import build_trainer
from ast_robot.core.data import TensorData
from ast_robot.core.trainer import LossOutput


def loss_fn(model, batch):
    logits = model(batch.inputs)
    return LossOutput(nn.functional.cross_entropy(logits, batch.targets, reduction="none"), logits, grad_target=logits)


def train(steps: int, mode: str, info: distributed.DistInfo) -> dict:
    """The gated DDP steps and what each rank saw; the trainer (and its DDP wrapper) dies on return."""
    cfg = from_dict(ExperimentConfig, {
        "seed": 3, "train": {"type": "vision", "batch_size": 16, "lr": 1e-2, "device": "cpu"},
        "significance": {"weights": {"loss": 1.0, "uncertainty": 0.5}, "stale_scores": mode == "stale_scores"},
        "gate": {"enabled": True, "scoring": mode, "target_rate": 0.3}})  # fmt: skip
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=g)  # small: stale mode gates only samples already seen once
    y = (x[:, 0] * x[:, 1] > 0).long()
    torch.manual_seed(100 + info.rank)  # different init per rank: DDP must broadcast rank 0's weights
    model = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 2))
    trainer = build_trainer(cfg, model, loss_fn, TensorData(x, y), steps=steps, run=None, show_progress=False)
    indices = [trainer.sampler.next().tolist() for _ in range(2)]
    trainer.sampler.load_state_dict({"epoch": 0, "position": 0, "seed": cfg.seed})
    local = {"gate_seen": 0}  # what this rank alone handed to the gate, before the all-reduce
    reduce = trainer.gate.reduce_counts

    def spy(counts):
        local["gate_seen"] += int(counts[1])
        return reduce(counts)

    trainer.gate.reduce_counts = spy
    thresholds, drawn = [], []
    for _ in range(steps):
        batch_indices = trainer.sampler.next()
        drawn.append(batch_indices.tolist())
        trainer.train_step(trainer.data.get(batch_indices))
        thresholds.append(trainer.gate.threshold)
    params = torch.cat([p.detach().flatten() for p in trainer.model.parameters()]).tolist()
    stale = trainer.significance.stale
    n = len(x)  # the tables grow by doubling, to a size that depends on the indices met first
    table = None if stale is None else {"seen": stale.seen.nonzero().flatten().tolist(),
                                        "scores": stale.scores[:n].tolist(), "kept": stale.kept[:n].tolist()}  # fmt: skip
    result = {"rank": info.rank, "world": info.world, "thresholds": thresholds, "params": params,
              "gate_seen": trainer.gate.seen, "local_gate_seen": local["gate_seen"], "local_seen": trainer.counters.samples_seen,
              "local_kept": trainer.counters.backward_samples, "first_indices": indices, "stale": table,
              "drawn": sorted({i for batch in drawn for i in batch})}  # fmt: skip
    return result


def main(out_dir: str, steps: int, mode: str) -> None:
    torch.set_num_threads(1)
    info = distributed.init_distributed("cpu")
    result = train(steps, mode, info)
    with open(f"{out_dir}/rank{info.rank}.json", "w") as fh:
        json.dump(result, fh)
    distributed.cleanup()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])

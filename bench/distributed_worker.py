"""One rank of ``bench/distributed.py``, started by torchrun: a gated trainer for a fixed number of steps.

Joins the process group even alone (NCCL on a GPU, gloo on a CPU), so the 1-process baseline runs the same
DDP and all-reduce path as the N-process runs. Records every step's gate threshold and this rank's kept
samples, times the training steps (GPU synchronized; evaluation excluded), evaluates on rank 0 every
``--eval-every`` steps, and writes ``rank<r>.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ast_robot.config import load_config  # noqa: E402
from ast_robot.core import distributed  # noqa: E402
from ast_robot.core.assemble import build_trainer  # noqa: E402

QUALITY = {"vision": "accuracy", "language": "bits_per_byte"}


def build(kind: str, cfg):
    """(model, loss_fn, train data, evaluate, steps per the config) of a vision or language experiment."""
    if kind == "vision":
        from ast_robot.trainers import vision

        model, data, steps = vision.prepare(cfg)
        return model, vision.classification_loss, data.train, vision.make_accuracy(data.test_x, data.test_y), steps
    from ast_robot.trainers import language

    model, data, held = language.prepare(cfg)
    return model, language.lm_loss, data, language.make_bits_per_byte(held), cfg.train.steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=sorted(QUALITY), required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", nargs="*", default=[], dest="overrides")
    parser.add_argument("--steps", type=int, default=0, help="0: the config's own number of steps")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    info = distributed.init_distributed("auto", force=True)
    cfg = load_config(args.config, args.overrides)
    model, loss_fn, data, evaluate, config_steps = build(args.kind, cfg)
    steps = args.steps or config_steps
    trainer = build_trainer(cfg, model, loss_fn, data, steps=steps, run=None, show_progress=False)
    if trainer.gate is None:
        raise SystemExit(f"{args.config}: the distributed benchmark runs gated trainers; this config is ungated")
    device = trainer.device
    thresholds, kept, seen, step_s, evals = [], [], [], [], []
    torch.cuda.reset_peak_memory_stats() if device.type == "cuda" else None
    for step in range(1, steps + 1):
        batch = trainer.data.get(trainer.sampler.next()).to(device)
        before = trainer.counters.backward_samples
        _sync(device)
        start = time.perf_counter()
        trainer.train_step(batch)
        _sync(device)
        step_s.append(time.perf_counter() - start)
        thresholds.append(float(trainer.gate.threshold))
        kept.append(trainer.counters.backward_samples - before)
        seen.append(batch.size)
        if info.is_main and (step % args.eval_every == 0 or step == steps):
            core = trainer.model.module if hasattr(trainer.model, "module") else trainer.model
            evals.append({"step": step, "train_s": sum(step_s), **evaluate(core)})
    ddp = isinstance(trainer.model, torch.nn.parallel.DistributedDataParallel)
    result = {"rank": info.rank, "world": info.world, "ddp": ddp, "backend": torch.distributed.get_backend() if distributed.active() else None,
              "device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
              "steps": steps, "train_s": sum(step_s), "step_s": step_s, "samples": int(sum(seen)), "thresholds": thresholds,
              "kept": kept, "seen": seen, "target_rate": cfg.gate.target_rate, "evals": evals,
              "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{info.rank}.json").write_text(json.dumps(result))
    del trainer  # the DDP wrapper must die before the group: see distributed.cleanup
    distributed.cleanup()


if __name__ == "__main__":
    main()

"""The PI-controlled gate on score streams recorded from a real training run, next to sundew-algorithms.

1. Record: train the digits CNN in ``forward_all`` mode and keep every batch of significance scores the
   gate was given (loss + uncertainty); the distribution drifts as the model learns.
2. Track: replay the stream through a fresh ``Gate`` for targets 0.05, 0.1, 0.3 and 0.6; the steady-state
   activation is the kept fraction over batches ``--settle`` onwards.
3. Speed: decisions per second of ``Gate.__call__`` on CPU (large batches, and the stream's batch size).
4. sundew-algorithms 0.7.1 on the same scores, per event (its default AIMD controller, and its PI path).

    .venv/bin/python bench/gate.py            # ~2-3 min on 2 busy cores
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ast_robot.config.gate import GateConfig  # noqa: E402
from ast_robot.core.gate import Gate  # noqa: E402
from bench.common import goal, write_results  # noqa: E402

TARGETS = (0.05, 0.1, 0.3, 0.6)


class RecordingGate(Gate):
    """A Gate that keeps a copy of every batch of scores it decides on."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stream: list[torch.Tensor] = []

    def __call__(self, scores, was_kept=None, force=None):
        self.stream.append(scores.detach().float().cpu().clone())
        return super().__call__(scores, was_kept, force)


def record_stream(batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """Scores from a real run: digits CNN, forward_all scoring, loss + uncertainty components."""
    from ast_robot.config import ExperimentConfig, from_dict
    from ast_robot.core.assemble import build_trainer
    from ast_robot.trainers import vision

    cfg = from_dict(ExperimentConfig, {
        "seed": seed, "train": {"type": "vision", "model": "cnn", "epochs": 1, "batch_size": batch_size, "lr": 1e-2,
                                "device": "cpu", "log_every": 10_000},
        "significance": {"weights": {"loss": 1.0, "uncertainty": 0.5}},
        "gate": {"enabled": True, "scoring": "forward_all", "target_rate": 0.3}})  # fmt: skip
    model, data, _ = vision.prepare(cfg)
    trainer = build_trainer(cfg, model, vision.classification_loss, data.train, steps=batches, run=None,
                            show_progress=False)  # fmt: skip
    trainer.gate = RecordingGate(cfg.gate, seed=seed)
    trainer.fit()
    return trainer.gate.stream


def track(stream: list[torch.Tensor], target: float, settle: int) -> dict:
    gate = Gate(GateConfig(target_rate=target), seed=0)
    rates = [float(gate(s)[0].float().mean()) for s in stream]
    steady = sum(rates[settle:]) / len(rates[settle:])
    return {"impl": "ast_robot Gate", "target": target, "steady_activation": round(steady, 4),
            "error_points": round(100 * (steady - target), 3), "final_threshold": round(gate.threshold, 4)}  # fmt: skip


def sundew_track(stream: list[torch.Tensor], target: float, settle: int, pi: bool) -> dict:
    """sundew-algorithms on the same scores, one event at a time (score -> its `anomaly_score` field)."""
    import sundew

    cfg = sundew.SundewConfig(target_activation_rate=target, w_magnitude=0.0, w_anomaly=1.0, w_context=0.0,
                              w_urgency=0.0, rng_seed=0)  # fmt: skip
    algo = sundew.SundewAlgorithm(cfg)
    if pi:
        algo._use_aimd = False  # 0.7.1 has a PI path but no public switch for it (FACTS.md)
    rates, events, start = [], 0, time.perf_counter()
    for batch in stream:
        kept = sum(algo.process({"anomaly_score": float(s)}) is not None for s in batch.tolist())
        rates.append(kept / batch.numel())
        events += batch.numel()
    elapsed = time.perf_counter() - start
    steady = sum(rates[settle:]) / max(1, len(rates[settle:]))
    return {"impl": f"sundew 0.7.1 ({'PI' if pi else 'default AIMD'})", "target": target,
            "steady_activation": round(steady, 4), "error_points": round(100 * (steady - target), 3),
            "decisions_per_s": round(events / elapsed)}  # fmt: skip


def decisions_per_second(batch: int, seconds: float = 2.0) -> float:
    gate = Gate(GateConfig(target_rate=0.3), seed=0)
    scores = torch.rand(batch)
    gate(scores)  # warm-up
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        gate(scores)
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--settle", type=int, default=200, help="batches before the steady state")
    parser.add_argument("--sundew-batches", type=int, default=300, help="sundew is ~10k events/s: a prefix only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    stream = record_stream(args.batches, args.batch_size, args.seed)
    means = [float(s.mean()) for s in stream]
    rows = [track(stream, t, args.settle) for t in TARGETS]
    speeds = {b: decisions_per_second(b) for b in (args.batch_size, 65_536)}
    rows += [{"impl": "ast_robot Gate", "batch": b, "decisions_per_s": round(v)} for b, v in speeds.items()]
    try:
        prefix = stream[: args.sundew_batches]
        settle = min(args.settle, len(prefix) // 2)
        rows += [sundew_track(prefix, t, settle, pi) for pi in (False, True) for t in TARGETS]
    except ImportError:
        rows.append({"impl": "sundew 0.7.1", "note": 'not installed: pip install "ast-robot[sundew]"'})
    worst = max(abs(r["error_points"]) for r in rows[: len(TARGETS)])
    goals = [goal(f"steady-state activation within +-1 point of target after {args.settle} batches (worst, points)",
                  1.0, worst, "<="),
             goal("decisions per second on CPU (batch 65,536)", 10_000_000, round(speeds[65_536]))]  # fmt: skip
    notes = (f"Stream: {len(stream)} batches x {args.batch_size} scores recorded from a digits CNN run "
             f"(forward_all, loss+uncertainty); batch mean score drifted from {means[0]:.3f} to {means[-1]:.3f} "
             f"(min {min(means):.3f}, max {max(means):.3f}). sundew ran on the first {args.sundew_batches} batches "
             f"(steady state from batch {min(args.settle, args.sundew_batches // 2)}), fed each score as its "
             f"`anomaly_score` with w_anomaly=1. torch threads={args.threads}; loadavg is in `machine` "
             "(other engineers share this machine).")  # fmt: skip
    print(write_results("gate", rows, goals, notes))


if __name__ == "__main__":
    main()

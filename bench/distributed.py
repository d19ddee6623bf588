"""Data-parallel scaling of the gated trainers under torchrun (issue 23): 1, 2 and 4 GPUs with NCCL.

For each trainer (``--kinds``: the gated vision ViT on digits and the gated byte-level LM on the standard
library's sources) and each process count (``--procs``), one torchrun job runs ``bench/distributed_worker.py``
at the same global batch and the same number of steps, so every run sees the same samples. Each row reports
samples per second (training steps only, GPU synchronized, the first ``--warmup`` steps left out), scaling
efficiency against the 1-process run (throughput / (N x 1-process throughput)), wall-clock to the 1-process
run's final quality, the gate's realized keep rate on every rank over the second half of the run, the largest
difference between the ranks' thresholds at any step (one threshold everywhere: 0), peak GPU memory and the
final quality. The 1-process run joins a process group of one (NCCL on a GPU), so it runs the same DDP path.

NVLink multicast stays off in every process (NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1,
NVSHMEM_DISABLE_NVLS=1). On a CPU machine ``--preset smoke`` runs gloo with tiny models (checks the script).

    python bench/distributed.py --preset gpu --procs 1 2 4 --out-dir DIR         # a 4-GPU machine
    python bench/distributed.py --preset smoke --procs 1 2                        # CPU, gloo, ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import goal, write_results  # noqa: E402

CONFIGS = {"vision": "configs/experiments/vision_digits.yaml", "language": "configs/experiments/lm_stdlib.yaml"}
# Per preset and trainer: config overrides and steps. The GPU sizes keep each GPU busy for several ms per
# step (a digits ViT of 64 tokens, width 512; a byte LM of 1024-byte context), so that the all-reduce of the
# gradients is not the whole step; the language corpus is small enough for several epochs, so the stale
# scores gate under rate control after the first.
# (overrides, steps, global batch): train.batch_size is per process (each rank draws its own), so a run on N
# processes gets global batch / N each and every process count trains on the same samples.
PRESETS: dict[str, dict[str, tuple[list[str], int, int]]] = {
    "gpu": {
        "vision": (["train.device=auto", "train.patch_size=1", "train.d_model=512", "train.n_layers=8",
                    "train.n_heads=8", "train.amp=bf16"], 300, 1024),
        "language": (["train.device=auto", "train.context=1024", "train.d_model=512", "train.n_layers=6",
                      "train.n_heads=8", "train.block_size=128", "train.corpus_bytes=4000000", "train.amp=bf16"], 300, 64),
    },
    "smoke": {
        "vision": (["train.device=cpu"], 40, 64),
        "language": (["train.device=cpu", "train.context=64", "train.corpus_bytes=200000", "train.eval_windows=32"], 30, 16),
    },
}
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
QUALITY = {"vision": ("accuracy", "higher"), "language": ("bits_per_byte", "lower")}
QUALITY_NOISE = {"accuracy": 0.02, "bits_per_byte": 0.03}  # "within noise": the spread of seeds of one run
EFFICIENCY_GOALS = {2: 0.90, 4: 0.87}


def run_job(kind: str, procs: int, preset: str, out: Path, eval_every: int, timeout_s: int) -> list[dict]:
    overrides, steps, global_batch = PRESETS[preset][kind]
    if global_batch % procs:
        raise ValueError(f"{kind}: global batch {global_batch} does not split over {procs} processes")
    overrides = [*overrides, f"train.batch_size={global_batch // procs}"]
    env = {**os.environ, **NO_MULTICAST, "OMP_NUM_THREADS": "1" if preset == "smoke" else "4",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
           str(ROOT / "bench/distributed_worker.py"), "--kind", kind, "--config", str(ROOT / CONFIGS[kind]),
           "--steps", str(steps), "--eval-every", str(eval_every), "--out", str(out), "--set", *overrides]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} on {procs} processes failed (exit {done.returncode}):\n{_traceback(done.stderr)}")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(procs)]


def _traceback(stderr: str) -> str:
    """The failing rank's traceback lines (torchrun's own summary comes after them and says little)."""
    lines = [line for line in stderr.splitlines() if line.startswith("[rank")]
    return "\n".join(lines[-40:]) or stderr[-3000:]


def summarize(kind: str, ranks: list[dict], warmup: int, baseline: dict | None) -> dict[str, Any]:
    """One row from the ranks' JSON (rank 0 holds the evaluations)."""
    main = ranks[0]
    steps = main["steps"]
    key, better = QUALITY[kind]
    timed = slice(min(warmup, steps - 1), steps)
    # Time per step: the slowest rank's (DDP steps in lock-step); samples of all ranks.
    step_s = max(sum(r["step_s"][timed]) for r in ranks)
    samples = sum(sum(r["seen"][timed]) for r in ranks)
    half = slice(steps // 2, steps)
    keep = [sum(r["kept"][half]) / max(1, sum(r["seen"][half])) for r in ranks]
    spread = max(max(r["thresholds"][i] for r in ranks) - min(r["thresholds"][i] for r in ranks) for i in range(steps))
    final = main["evals"][-1][key]
    row = {"kind": kind, "procs": main["world"], "backend": main["backend"], "device": main["gpu"] or main["device"],
           "steps": steps, "samples_per_s": samples / step_s, "train_s": main["train_s"], "final_" + key: final,
           "target_rate": main["target_rate"], "keep_rate_per_rank": [round(k, 4) for k in keep],
           "threshold_spread": spread, "peak_mem_gib": main["peak_mem_gib"]}  # fmt: skip
    if baseline is not None:
        row["efficiency"] = row["samples_per_s"] / (row["procs"] * baseline["samples_per_s"])
        target = baseline["final_" + key]
        reached = [e for e in main["evals"] if (e[key] >= target if better == "higher" else e[key] <= target)]
        row["s_to_1proc_quality"] = reached[0]["train_s"] if reached else None
        row["quality_delta"] = final - target
    return row


def goals_for(rows: list[dict]) -> list[dict]:
    out = []
    for kind in QUALITY:
        mine = [r for r in rows if r["kind"] == kind]
        for procs, target in EFFICIENCY_GOALS.items():
            row = next((r for r in mine if r["procs"] == procs), None)
            out.append(goal(f"{kind}: scaling efficiency at {procs} processes", target, row and row.get("efficiency")))
        if mine:
            worst = max(abs(k - r["target_rate"]) for r in mine for k in r["keep_rate_per_rank"])
            out.append(goal(f"{kind}: keep rate on every rank within 1 point of the target", 0.01, worst, "<="))
            out.append(goal(f"{kind}: largest threshold difference between ranks at any step", 0.0,
                            max(r["threshold_spread"] for r in mine), "<="))  # fmt: skip
            key = QUALITY[kind][0]
            deltas = [abs(r["quality_delta"]) for r in mine if "quality_delta" in r]
            out.append(goal(f"{kind}: |final {key} - 1-process final| (noise {QUALITY_NOISE[key]})", QUALITY_NOISE[key],
                            max(deltas) if deltas else None, "<="))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="gpu")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--kinds", nargs="+", choices=sorted(QUALITY), default=sorted(QUALITY))
    parser.add_argument("--warmup", type=int, default=20, help="Steps left out of the throughput (compile, caches).")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--timeout", type=int, default=900, help="Seconds per torchrun job.")
    parser.add_argument("--name", default="distributed")
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()
    if 1 not in args.procs:
        parser.error("--procs must include 1 (the baseline every other run is compared with)")
    if args.preset == "gpu":
        import torch

        available = torch.cuda.device_count()
        skipped = [(p, f"{p} processes asked for, {available} GPUs on this machine") for p in args.procs if p > available]
        args.procs = [p for p in args.procs if p <= available]
        if not args.procs:
            parser.error("--preset gpu needs a CUDA GPU; use --preset smoke on a CPU machine")
    else:
        skipped = []
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            baseline = None
            for procs in sorted(args.procs):
                ranks = run_job(kind, procs, args.preset, Path(tmp) / f"{kind}_{procs}", args.eval_every, args.timeout)
                row = summarize(kind, ranks, args.warmup, baseline)
                baseline = baseline or row
                rows.append(row)
                print(json.dumps(row), flush=True)
    rows += [{"kind": kind, "procs": p, "skipped": why} for kind in args.kinds for p, why in skipped]
    notes = (f"preset {args.preset}; same global batch and steps for every process count (same samples); "
             f"throughput over steps {args.warmup}+; keep rate over the second half of the steps.")
    write_results(args.name, rows, goals_for([r for r in rows if "skipped" not in r]), notes, out_dir=args.out_dir)


if __name__ == "__main__":
    main()

"""The `two_stage` pixel student on CUDA against the same weights on the CPU (a minute on a GPU machine).

bench/gpu_check.py covers the attention backends; this covers the pixel student's perception (conv stems, heat
maps, soft-argmax; the scene-map options of bench/results/fr3_scene_maps_pending/ where the config has them) where a
CUDA kernel could differ from the CPU one:
for each variant, the per-sample loss, every parameter's gradient and ``act``'s action are compared between a CPU
copy and a CUDA copy of one network on one batch (float32, TF32 off). A variant whose config lacks an option
(an older checkout) is skipped with its reason.

    python3 bench/device/two_stage_cuda_check.py --out-dir "$OUT"

Imports only numpy, torch and ast_robot (config + policies): no gymnasium, no MuJoCo.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ast_robot.config import PolicyConfig
from ast_robot.policies.policy import AUX_KEY, PIXEL_KEY, build_policy

BASE = dict(type="two_stage", aux_weight=1.0, n_keypoints=8, hidden_sizes=[64, 64])
VARIANTS = {"default": {}, "full_maps": {"scene_resolution": "full"}, "gripper_prior": {"gripper_prior": 2.0},
            "full_maps+gripper_prior": {"scene_resolution": "full", "gripper_prior": 2.0}}  # fmt: skip
TOLERANCE = 2e-4  # relative to the quantity's scale, float32 with TF32 off
GRAD_FLOOR = 1e-3  # a gradient's scale is at least this share of the network's largest (gradient_errors)


def space(wrist: bool, hw: int = 96, joints: int = 7) -> SimpleNamespace:
    """A stand-in for the deploy layout's gymnasium Dict (``.spaces`` of shapes and dtypes) and one batch of it."""
    box = lambda shape, dtype: SimpleNamespace(shape=shape, dtype=dtype)  # noqa: E731
    spaces = {"observation": box((2 * joints + 10,), np.float64), "camera": box((hw, hw, 3), np.uint8),
              "instruction": box((16,), np.uint8)}  # fmt: skip
    if wrist:
        spaces["wrist_camera"] = box((hw, hw, 3), np.uint8)
    return SimpleNamespace(spaces=spaces)


def batch_of(spec: SimpleNamespace, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    batch = {}
    for key, sub in spec.spaces.items():
        if sub.dtype == np.uint8:
            batch[key] = torch.randint(0, 256, (n, *sub.shape), generator=gen, dtype=torch.uint8)
        else:
            batch[key] = torch.rand(n, *sub.shape, generator=gen, dtype=torch.float64) * 2 - 1
    batch["action"] = torch.rand(n, 4, generator=gen) * 1.8 - 0.9
    batch[AUX_KEY] = torch.rand(n, 6, generator=gen)
    batch[PIXEL_KEY] = torch.rand(n, 6, generator=gen) * 2 - 1  # cube, pad, TCP image positions
    return batch


def relative(a: torch.Tensor, b: torch.Tensor, floor: float = 1e-6) -> float:
    """Largest |a - b| over ``b``'s largest magnitude, never over less than ``floor``."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(floor))


def gradient_errors(other: dict, reference: dict) -> dict[str, float]:
    """Each parameter's gradient error relative to its own scale, floored at :data:`GRAD_FLOOR` of the network's
    largest gradient: a gradient that is zero in exact arithmetic (a bias before a softmax over space, which the
    softmax cancels) is rounding noise of ~1e-8, and two correct kernels that sum in another order differ by
    percents of it (the CPU with and without oneDNN: 2e-2 on ``perception.free.bias``, 1e-8 of the largest)."""
    scale = max(float(g.abs().max()) for g in reference.values()) * GRAD_FLOOR
    return {k: relative(other[k], g, floor=scale) for k, g in reference.items() if k in other}


def check(name: str, overrides: dict, wrist: bool, batch_size: int, device: str = "cuda") -> dict:
    """One variant: a fresh network, its copy moved to ``device``, compared on one batch (:func:`compare`)."""
    fields = {f.name for f in dataclasses.fields(PolicyConfig)}
    if missing := sorted(set(overrides) - fields):
        return {"variant": name, "wrist": wrist, "skipped": f"PolicyConfig has no {missing} in this checkout"}
    torch.manual_seed(0)
    spec = space(wrist)
    # eval mode: training's image shifts and teacher noise draw from each device's own generator
    reference = build_policy(PolicyConfig(**BASE, **overrides), spec, 4).eval()
    other = build_policy(PolicyConfig(**BASE, **overrides), spec, 4).eval()
    other.load_state_dict(reference.state_dict())
    batch = batch_of(spec, batch_size, torch.Generator().manual_seed(1))
    return {"variant": name, "wrist": wrist, "batch": batch_size,
            **compare(reference, other.to(device), batch, spec)}  # fmt: skip


def loss_and_grads(net: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``net``'s per-sample loss on ``batch`` (moved to its device) and its parameters' gradients of the mean."""
    device = next(net.parameters()).device
    loss = net.per_sample_loss({k: v.to(device) for k, v in batch.items()})
    loss.mean().backward()
    return loss, {k: p.grad for k, p in net.named_parameters() if p.grad is not None}


def compare(reference: torch.nn.Module, other: torch.nn.Module, batch: dict, spec: SimpleNamespace) -> dict:
    """Per-sample loss, every parameter's gradient and ``act`` of ``other`` (on its device) against ``reference``
    (on the CPU) for one batch; ``passed`` when all are finite and within :data:`TOLERANCE`."""
    (ref_loss, ref_grads), (loss, grads) = loss_and_grads(reference, batch), loss_and_grads(other, batch)
    losses, grads = [ref_loss, loss], [ref_grads, grads]
    obs = {k: v[0].numpy() for k, v in batch.items() if k in spec.spaces}
    errors = gradient_errors(grads[1], grads[0])
    worst = max(errors, key=errors.get)
    row = {"parameters": sum(p.numel() for p in reference.parameters()),
           "loss_rel_err": relative(losses[1], losses[0]),
           "grad_rel_err_worst": errors[worst], "grad_worst_parameter": worst,
           "grads_compared": len(grads[0]), "missing_grads": sorted(set(grads[0]) - set(grads[1])),
           "act_abs_err": float(np.abs(other.act(obs) - reference.act(obs)).max()),
           "finite": bool(torch.isfinite(losses[1]).all())}  # fmt: skip
    row["passed"] = (row["finite"] and not row["missing_grads"] and row["loss_rel_err"] <= TOLERANCE
                     and row["grad_rel_err_worst"] <= TOLERANCE and row["act_abs_err"] <= TOLERANCE)  # fmt: skip
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", type=Path, default=Path("bench/results"))
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("two_stage_cuda_check needs CUDA")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    start = time.time()
    rows = [check(name, over, wrist, args.batch) for name, over in VARIANTS.items() for wrist in (False, True)]
    ran = [r for r in rows if "skipped" not in r]
    result = {"name": "two_stage_cuda_check", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tolerance": TOLERANCE,
              "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                          "gpu": torch.cuda.get_device_name(0)},
              "failures": sum(not r["passed"] for r in ran), "ran": len(ran), "wall_s": round(time.time() - start, 1),
              "rows": rows}  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "two_stage_cuda_check.json").write_text(json.dumps(result, indent=1))
    lines = [f"# two_stage_cuda_check\n\n- date: {result['date']}\n- machine: {result['machine']}\n- {result['ran']} "
             f"cases, {result['failures']} failures (tolerance {TOLERANCE} relative, float32, TF32 off), "
             f"{result['wall_s']} s\n", "| variant | wrist | loss rel err | worst grad rel err (parameter) | act abs err | passed |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['variant']} | {r['wrist']} | skipped: {r['skipped']} | | | |")
        else:
            lines.append(f"| {r['variant']} | {r['wrist']} | {r['loss_rel_err']:.2e} | {r['grad_rel_err_worst']:.2e} "
                         f"({r['grad_worst_parameter']}) | {r['act_abs_err']:.2e} | {r['passed']} |")  # fmt: skip
    (args.out_dir / "two_stage_cuda_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    raise SystemExit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()

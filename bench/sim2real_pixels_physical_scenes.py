"""Scene rows under physical feedback (issue 21): which rows the gate keeps when a pixel loop's round trains on
demonstrations weighted by the gap analyzer and on perception-only scene rows.

A loop round's data: the student's pool, the round's new demonstrations (drawn from the retuned randomization) and
the student's scenes. The physical-feedback weights score each demonstration by its randomization draws; a scene
row has no action and no stored draws, so its weight is a design choice (trainers/bc.scene_physical_weight). This
bench builds one such round's data as ``train_bc`` does, then trains the start policy gated (forward_all, the
physical component in the significance score) for a few steps in each arm from the same start and seed, and counts
what the gate kept:

- ``none``: no feedback (the physical component silent), the reference;
- ``mean``: scene rows weigh as the demonstration steps' mean (the design);
- ``one``: scene rows weigh 1 (every scene ranked as the steps nearest the real failures).

Retired path (session 12): ``bc_loss`` no longer passes the feedback to the gate's ``physical`` component; the
feedback is a per-row loss weight (trainers/feedback.py), so this bench now measures the gate's loss score on
weighted losses, not the session-11 mechanism its committed results describe.

    python bench/sim2real_pixels_physical_scenes.py --retuned ROUND0/gap/retuned.yaml --weights ROUND0/gap/weights.json \
        --policy START --pool POOL --scenes SCENES.npz [--pool-episodes 70 --new-demos 10 --scenes-n 1200 --steps 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

ARMS = ("none", "mean", "one")
GATED = ["gate.enabled=true", "significance.weights={loss: 1.0, novelty: 0.5, physical: 1.0}",
         "significance.loss_groups=2"]  # the pixel recipe is ungated: the weights act only through the gate  # fmt: skip


def arm_data(data: Any, weights: np.ndarray | None, arm: str) -> Any:
    """``data`` with the physical column of ``arm``: None (no feedback), as built (scenes at the steps' mean), or
    the scene rows set to 1. ``weights``: the column as built (steps then scenes)."""
    if arm == "none" or weights is None:
        data.physical = None
        return data
    column = torch.as_tensor(weights, dtype=torch.float32).clone()
    if arm == "one":
        column[data.demo_rows:] = 1.0
    data.physical = column
    return data


def kept_counts(cfg: Any, policy: Any, data: Any, steps: int) -> dict[str, Any]:
    """Train ``policy`` gated on ``data`` for ``steps`` steps; per row kind, how many rows were drawn and kept,
    and the mean physical weight of the drawn and kept demonstration steps (the weights as built)."""
    from ast_robot.core.assemble import build_trainer
    from ast_robot.trainers.bc import bc_loss

    trainer = build_trainer(cfg, policy, bc_loss, data, steps=steps, run=None, show_progress=False)
    drawn, kept = [], []
    decide = trainer._decide

    def recording(batch: Any) -> Any:
        out = decide(batch)
        drawn.append(batch.indices.cpu())
        kept.append(batch.indices.cpu()[out[0].cpu()])
        return out

    trainer._decide = recording  # the bench reads the gate's decisions; the step itself is the trainer's own
    began = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - began
    return summarize(torch.cat(drawn), torch.cat(kept), data.demo_rows) | {"train_wall_s": round(wall, 1)}


def summarize(drawn: torch.Tensor, kept: torch.Tensor, demo_rows: int) -> dict[str, Any]:
    """Drawn and kept row counts per kind (demonstration step / scene) and the scene share of each."""
    d_scene, k_scene = int((drawn >= demo_rows).sum()), int((kept >= demo_rows).sum())
    d_demo, k_demo = len(drawn) - d_scene, len(kept) - k_scene
    share = lambda a, b: None if b == 0 else round(a / b, 4)  # noqa: E731
    return {"drawn": len(drawn), "kept": len(kept), "drawn_scenes": d_scene, "kept_scenes": k_scene,
            "scene_share_drawn": share(d_scene, len(drawn)), "scene_share_kept": share(k_scene, len(kept)),
            "keep_rate_scenes": share(k_scene, d_scene), "keep_rate_steps": share(k_demo, d_demo),
            "kept_indices": kept.tolist(), "drawn_indices": drawn.tolist()}  # fmt: skip


def weighted_step_rates(drawn: list[int], kept: list[int], weights: np.ndarray, demo_rows: int,
                        threshold: float) -> dict[str, Any]:  # fmt: skip
    """Keep rates of the demonstration steps whose weight exceeds ``threshold`` (the feedback points at them:
    the round's new draws near the fit) and of the other steps."""
    heavy = weights[:demo_rows] > threshold
    d = np.asarray([i for i in drawn if i < demo_rows], dtype=int)
    k = np.asarray([i for i in kept if i < demo_rows], dtype=int)
    dh, kh = int(heavy[d].sum()) if len(d) else 0, int(heavy[k].sum()) if len(k) else 0
    do, ko = len(d) - dh, len(k) - kh
    return {"weighted_steps": int(heavy.sum()), "drawn_weighted": dh, "kept_weighted": kh,
            "keep_rate_weighted_steps": None if dh == 0 else round(kh / dh, 4),
            "keep_rate_other_steps": None if do == 0 else round(ko / do, 4)}  # fmt: skip


def round_data(args: argparse.Namespace) -> tuple[Any, Any, Any, np.ndarray]:
    """(cfg, env, DemoData with the physical column as train_bc builds it, that column) of one loop round."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.envs.demos import load_demos
    from ast_robot.gap.weights import PhysicalWeights
    from ast_robot.trainers.bc import DemoData, collect_episodes, read_scene_pool
    from bench.robot_learning_pixels_gated import subset_folder

    cfg = load_config(args.retuned, [*GATED, f"seed={args.seed}", *args.set])
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    pool = load_demos(subset_folder(Path(args.pool), args.pool_episodes, Path(args.workdir) / "pool"),
                      env_id=cfg.env.id, images_in_memory=False)  # fmt: skip
    new = collect_episodes(env, args.new_demos, seed=cfg.seed + 1_000_000 + 700, noise=cfg.train.demo_noise)
    scenes, cast = read_scene_pool(args.scenes, cfg.env.id, dict(env.observation_space.spaces))
    scenes = {k: v[: args.scenes_n] for k, v in scenes.items()}
    weights = PhysicalWeights.from_dict(json.loads(Path(args.weights).read_text()))
    data = DemoData.from_episodes([*pool, *new], list(env.observation_space.spaces), physical_weight=weights,
                                  aux=cfg.policy.aux_weight > 0, scenes=scenes, scenes_cast=cast)  # fmt: skip
    return cfg, env, data, data.physical.numpy().copy()


def run_arms(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ast_robot.core.checkpoint import load_module_state
    from ast_robot.policies.policy import PolicyBase, build_policy

    torch.set_num_threads(1)
    cfg, env, data, weights = round_data(args)
    state = PolicyBase.load(args.policy).state_dict()
    rows = []
    for arm in ARMS:
        torch.manual_seed(cfg.seed)  # same draws of the sampler and gate in every arm
        policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0]))
        load_module_state(policy, state, "policy")
        counts = kept_counts(cfg, policy, arm_data(data, weights, arm), args.steps)
        heavy = weighted_step_rates(counts.pop("drawn_indices"), counts.pop("kept_indices"), weights,
                                    data.demo_rows, args.heavy)  # fmt: skip
        rows.append({"kind": "scene_weight_arm", "arm": arm, "overrides": args.set, "steps": args.steps, "demo_rows": data.demo_rows,
                     "scene_rows": len(data) - data.demo_rows, "step_weight_mean": round(float(weights[: data.demo_rows].mean()), 5),
                     "step_weight_max": round(float(weights[: data.demo_rows].max()), 5),
                     "scene_weight": None if arm == "none" else (1.0 if arm == "one" else round(float(weights[data.demo_rows]), 5)),
                     **counts, **heavy})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    env.close()
    return rows


def goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {r["arm"]: r for r in rows}
    if not all(a in by for a in ARMS):
        return []
    ref = by["none"]["scene_share_kept"]
    return [goal("scene share of kept rows, design (mean) minus no feedback (points)", 5.0,
                 round(100 * abs(by["mean"]["scene_share_kept"] - ref), 2), "<="),
            goal("scene share of kept rows, weight 1 minus no feedback (points; > 5: weight 1 moves the gate to scenes)",
                 5.0, round(100 * (by["one"]["scene_share_kept"] - ref), 2), ">")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retuned", required=True, help="a round's gap/retuned.yaml (the next round's config)")
    parser.add_argument("--weights", required=True, help="that round's gap/weights.json")
    parser.add_argument("--policy", required=True, help="the start policy's folder (its policy/)")
    parser.add_argument("--pool", required=True)
    parser.add_argument("--scenes", required=True)
    parser.add_argument("--pool-episodes", type=int, default=70)
    parser.add_argument("--new-demos", type=int, default=10)
    parser.add_argument("--scenes-n", type=int, default=1200)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--heavy", type=float, default=1e-3, help="a step counts as weighted above this weight")
    parser.add_argument("--workdir", default="/tmp/physical_scenes")
    parser.add_argument("--set", action="append", default=[], help="another override of the gated config")
    parser.add_argument("--name", default="sim2real_pixels_physical_scenes")
    parser.add_argument("--notes", default="")
    args = parser.parse_args()
    rows = run_arms(args)
    print(write_results(args.name, rows, goals(rows), notes=args.notes))


if __name__ == "__main__":
    main()

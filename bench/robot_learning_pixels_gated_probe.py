"""Cheap probe of WHY gated pixel BC did not pay (issue 20, deliverable 6): several gate variants side by side.

The closed-loop three-arm bench (``bench/robot_learning_pixels_gated.py``) costs an hour and 100 episodes per
checkpoint; this probe answers the hypotheses first on a small from-scratch run with a precise, cheap signal:
the held-out error of the student's PERCEPTION (its estimate of the named cube and place relative to the TCP,
the closed-loop bottleneck, in cm) and its action loss on that estimate, measured on fixed held-out demo
frames every ``--every`` steps, against each arm's backward samples and own wall-clock.

Arms (``--arm NAME=KEY=VALUE;KEY=VALUE``; each a config of the pixels experiment with the gate on stale scores,
``ungated`` and ``random`` built in) step in turn in one process, one torch thread, same data, same initial
weights, same batch order. ``random`` keeps exactly as many samples per step as the arm ``--quota-from`` kept.
Hypotheses of the last session's negative result it separates:

* (a) 1/p importance weights up to 1/min_probability = 50 under grad clip 1.0: ``gate.min_probability`` 0.3
  (weights <= 3.3, InfoBatch-like: low scorers pruned at random, kept ones up-weighted) or
  ``gate.importance_weights`` false;
* (b) scene rows carry no action loss, so one loss scale ranks demo rows above scene rows:
  ``significance.loss_groups`` 2 (the loss score z-scored within demo rows and within scene rows);
* (c) the regime: ``--episodes``/``--scenes`` small enough that the steps make many epochs.

    MUJOCO_GL=egl .venv/bin/python bench/robot_learning_pixels_gated_probe.py --demos /tmp/px4/demos96_ur5e \\
        --episodes 50 --scenes 1000 --steps 500 --arm ungated --arm gated --arm random \\
        --arm "floor30=gate.min_probability=0.3" --out /tmp/px7/gated2/probe
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402

from bench.common import goal, write_results  # noqa: E402
from bench.robot_learning_pixels_gated import (  # noqa: E402
    CONFIG,
    QuotaGate,
    build_arm,
    build_data,
    heldout_batch,
    heldout_errors,
    one_step,
    subset_folder,
)


def parse_arm(spec: str) -> tuple[str, list[str]]:
    """``NAME`` or ``NAME=KEY=VALUE;KEY=VALUE`` -> (name, overrides)."""
    name, _, rest = spec.partition("=")
    if not name:
        raise SystemExit(f"--arm {spec!r}: expected NAME or NAME=KEY=VALUE;KEY=VALUE")
    return name, [s for s in rest.split(";") if s]


def arm_config(name: str, extra: list[str], args: argparse.Namespace) -> Any:
    from ast_robot.config import load_config

    gated = name != "ungated"
    base = [f"name=probe_{name}", f"run_root={args.out}", f"seed={args.seed}", f"train.steps={args.steps}",
            f"train.scenes={args.scenes}", "train.device=cpu", "env.camera_size=[96,96]",
            f"gate.enabled={str(gated).lower()}",
            f"gate.target_rate={args.rate}", "gate.scoring=stale_scores", "significance.stale_scores=true"]  # fmt: skip
    if name == "random":
        base.append("significance.weights={random: 1.0}")
    return load_config(CONFIG, base + extra + args.set)


def record_kept(trainer: Any) -> None:
    """Instrument ``trainer`` so each step leaves the dataset indices it backwarded in ``last_kept_indices``."""
    decide = trainer._decide

    def wrapped(batch: Any) -> Any:
        keep, weights, scored = decide(batch)
        trainer.last_kept_indices = batch.indices[keep.to(batch.indices.device)]
        return keep, weights, scored

    trainer._decide = wrapped


def save(state: dict[str, Any], specs: dict[str, list[str]], args: argparse.Namespace, n_rows: tuple[int, int],
         held_rows: int) -> Path:  # fmt: skip
    """Write the curves so far (after every measurement: a run cut short keeps its points)."""
    n_demo, n_all = n_rows
    rows = [{"arm": n, "overrides": specs[n], "curve": s["curve"]} for n, s in state.items()]
    done = max((len(s["curve"]) for s in state.values()), default=0) * args.every
    notes = (f"from scratch on the first {args.episodes} episodes of {args.demos} ({n_demo} rows) + {args.scenes} "
             f"scenes; {args.steps} steps of batch 64 per arm planned (= {args.steps * 64 / n_all:.1f} epochs), "
             f"about {min(done, args.steps)} done; gate rate {args.rate} on stale scores; held-out: {held_rows} "
             f"frames of episodes {args.heldout_from}..{args.heldout_from + args.heldout_episodes - 1}; one process, "
             "one torch thread.")  # fmt: skip
    return write_results(args.name, rows, goals_of(state), notes, out_dir=args.out_dir)


def run(arms: dict[str, Any], held: Any, args: argparse.Namespace, n_demo: int,
        on_point: Any = None) -> dict[str, Any]:  # fmt: skip
    state = {a: {"wall_s": 0.0, "curve": [], "scene_kept": 0, "kept": 0} for a in arms}
    for step in range(1, args.steps + 1):
        order = list(arms) if step % 2 else list(reversed(arms))
        if "random" in arms:  # right after the arm it copies
            order.remove("random")
            order.insert(order.index(args.quota_from) + 1, "random")
        before = arms[args.quota_from].gate.kept if "random" in arms else 0
        for name in order:
            tr = arms[name]
            if name == "random":
                tr.gate.quota = arms[args.quota_from].gate.kept - before
            state[name]["wall_s"] += one_step(tr)
            _count_kept(tr, state[name], n_demo)
        if step % args.every == 0 or step == args.steps:
            for name, tr in arms.items():
                c = tr.counters
                point = {"step": step, "wall_s": round(state[name]["wall_s"], 1), "backward_samples": c.backward_samples,
                         "forward_samples": c.forward_samples, "train_loss": round(c.last_loss, 4),
                         "scene_share_kept": round(state[name]["scene_kept"] / max(1, state[name]["kept"]), 3),
                         **heldout_errors(tr.model, held), "loadavg": round(os.getloadavg()[0], 2)}  # fmt: skip
                state[name]["curve"].append(point)
                print(name, point, flush=True)
            if on_point is not None:
                on_point(state)
    return state


def _count_kept(trainer: Any, st: dict[str, Any], n_demo: int) -> None:
    """Tally how many of this step's backwarded samples were scene rows (the trainer keeps the last batch)."""
    idx = getattr(trainer, "last_kept_indices", None)
    if idx is not None:
        st["kept"] += int(idx.numel())
        st["scene_kept"] += int((idx >= n_demo).sum())


def goals_of(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Per gated arm: its final held-out cube error minus the random arm's (< 0: the choice helps) and minus
    the ungated arm's (the price of the saved backwards)."""
    final = {a: s["curve"][-1] for a, s in state.items() if s["curve"]}
    out = []
    for name in final:
        if name in ("ungated", "random"):
            continue
        for ref in ("random", "ungated"):
            if ref in final:
                out.append(goal(f"{name}: held-out cube error - {ref}'s (cm; < 0 better)", 0.0,
                                round(final[name]["heldout_cube_cm"] - final[ref]["heldout_cube_cm"], 3), "<"))  # fmt: skip
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", type=Path, required=True)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--scenes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--every", type=int, default=100, help="held-out measurement every N steps")
    p.add_argument("--rate", type=float, default=0.5)
    p.add_argument("--arm", action="append", default=[], help="NAME or NAME=KEY=VALUE;KEY=VALUE (repeat)")
    p.add_argument("--quota-from", default="gated", help="the gated arm whose per-step count 'random' keeps")
    p.add_argument("--heldout-from", type=int, default=450, help="first held-out episode (after --episodes)")
    p.add_argument("--heldout-episodes", type=int, default=40)
    p.add_argument("--heldout-rows", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override of every arm")
    p.add_argument("--out", type=Path, default=Path("/tmp/ast_robot_bench/pixels_gated_probe"))
    p.add_argument("--name", default="robot_learning_pixels_gated_probe")
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    args.arm = args.arm or ["ungated", "gated", "random"]
    if args.smoke:
        args.episodes, args.scenes, args.steps, args.every, args.heldout_episodes, args.heldout_rows = 4, 20, 6, 3, 2, 16
    if args.heldout_from < args.episodes:
        raise SystemExit(f"--heldout-from {args.heldout_from}: must be >= --episodes {args.episodes} (held out)")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    specs = dict(parse_arm(s) for s in args.arm)
    if "random" in specs and args.quota_from not in specs:
        raise SystemExit(f"--quota-from {args.quota_from!r}: not among the arms {list(specs)}")
    cfgs = {name: arm_config(name, extra, args) for name, extra in specs.items()}
    first = next(iter(cfgs.values()))
    demos = subset_folder(args.demos, args.episodes, args.out / f"demos_first{args.episodes}")
    env, demo_data, data = build_data(first, demos)
    held = heldout_batch(first, env, args.demos, args.heldout_from, args.heldout_episodes, args.heldout_rows, args.out)
    arms = {}
    for name, cfg in cfgs.items():
        arms[name] = build_arm(cfg, env, demo_data, data)
        if name == "random":
            arms[name].gate = QuotaGate(cfg.gate, seed=cfg.seed)
        record_kept(arms[name])
    print(f"data: {len(demo_data)} demo rows + {len(data) - len(demo_data)} scenes; held-out {held.size} rows", flush=True)
    sizes = (len(demo_data), len(data))
    state = run(arms, held, args, len(demo_data), on_point=lambda st: save(st, specs, args, sizes, held.size))
    print(save(state, specs, args, sizes, held.size), flush=True)
    env.close()


if __name__ == "__main__":
    main()

"""Gated vs ungated vs random-subset BC from pixels (issue 20, deliverable 6), side by side in one process.

PickPlace UR5e from pixels and language (configs/experiments/pickplace_ur5e_pixels_bc.yaml: the two_stage
student, deploy layout, 2 cubes, 2 pads, physical + visual randomization), trained from scratch on the first
``--episodes`` episodes of ``--demos`` plus ``--scenes`` single-render scenes. Three arms share one process,
one torch thread, the same data (one copy), the same initial weights and the same batch order:

* ``ungated``: forward + backward every drawn sample;
* ``gated``: stale-score gate (``gate.scoring: stale_scores``): each sample is kept by the PI-controlled
  logistic gate on its loss score from the last time it was forwarded, so a dropped sample costs neither a
  forward nor a backward; never-seen samples are kept (the first epoch is ungated);
* ``random``: the random-subset control with the gated arm's backward budget EXACTLY: at every step it keeps
  as many samples as the gated arm kept at that step, chosen uniformly (1/p = n/k weights), with the same
  never-seen rule (same batch order, so the same forced samples). It forwards only what it keeps, as the
  gated arm does: gated and random differ only in which samples they pick.

The arms step in turn (one optimizer step each, order alternating), so machine load falls on them alike;
each arm's wall-clock is the sum of its own steps (batch fetch + gate + forward + backward + update),
evaluations excluded. At ``--checkpoints`` points each arm's policy runs ``--eval-episodes`` fixed
held-out randomized episodes (instruction as given); at the end ``--final-episodes`` (a superset). Before
training, a cost breakdown on real batches: no-grad scoring forward, forward+backward at the full and kept
batch, optimizer step (why ``forward_all`` scoring cannot pay here, and stale scores can).

Goals (issue 20): the gated arm reaches the ungated arm's final success (within 2 points) at >= 1.3x less
wall-clock than the ungated arm took to reach it, and its final success beats the random arm's.

    MUJOCO_GL=egl .venv/bin/python bench/robot_learning_pixels_gated.py --demos /tmp/px4/demos96_ur5e \\
        --episodes 500 --scenes 12000 --steps 2500 --out /tmp/gated/run
    MUJOCO_GL=egl .venv/bin/python bench/robot_learning_pixels_gated.py --demos DIR --smoke   # checks the script
    ... --device cuda --eval-workers 14   # a GPU machine (bench/device/gated_pixels.py drives it there)
    .venv/bin/python bench/robot_learning_pixels_gated.py --regoal bench/results/NAME.json   # goals of this code
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402

from ast_robot.core.gate import Gate  # noqa: E402
from bench.common import goal, write_results  # noqa: E402

CONFIG = ROOT / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
ARMS = ("ungated", "gated", "random")
WITHIN = 0.02  # "reaches the ungated final success": within 2 points of it
SPEEDUP = 1.3  # the wall-clock goal
ERROR_WITHIN = 0.02  # "reaches the ungated final held-out error": within 2% of it


# ------------------------------------------------------------------------------------------- the arms
class QuotaGate(Gate):
    """Keeps exactly ``quota`` of the samples it decides on, uniformly at random (p = quota / n for each).

    The random-subset control: the bench sets ``quota`` before every step to what the gated arm kept
    (by its gate, never-seen samples aside), so both arms backward the same number of samples."""

    quota = 0

    def _decide(self, scores: torch.Tensor, was_kept: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        n = scores.numel()
        k = min(self.quota, n)
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=self.generator)[:k]] = True
        self._update(k, n)
        return keep, torch.full((n,), max(k, 1) / n)


def arm_config(arm: str, args: argparse.Namespace) -> Any:
    """The pixels config with this run's budgets; the gated and random arms gate on stale scores."""
    from ast_robot.config import load_config

    overrides = [f"name=pxg_{arm}", f"run_root={args.out}", f"seed={args.seed}", f"train.steps={args.steps}",
                 f"train.scenes={args.scenes}", f"train.device={args.device}", f"env.camera_size=[{args.camera},{args.camera}]",
                 f"gate.enabled={str(arm != 'ungated').lower()}", f"gate.target_rate={args.rate}",
                 "gate.scoring=stale_scores", "significance.stale_scores=true",
                 "significance.weights={random: 1.0}" if arm == "random" else f"significance.weights={args.weights}"]  # fmt: skip
    return load_config(CONFIG, overrides + args.set)


def subset_folder(src: Path, n: int, dst: Path) -> Path:
    """A demo folder of the first ``n`` episodes of ``src`` (links, and its meta.json with the shorter list)."""
    meta = json.loads((src / "meta.json").read_text())
    if len(meta["files"]) < n:
        raise SystemExit(f"--episodes {n}: {src}/meta.json lists only {len(meta['files'])} episodes")
    dst.mkdir(parents=True, exist_ok=True)
    meta["files"] = meta["files"][:n]
    meta["subset_of"] = str(src)
    for name in meta["files"]:
        link = dst / name
        if not link.exists():
            link.symlink_to(src / name)
    (dst / "meta.json").write_text(json.dumps(meta))
    return dst


def build_data(cfg: Any, demos: Path) -> tuple[Any, Any, Any]:
    """(env, demo steps without scenes (for the normalizer), demo steps + scenes), as train_bc builds them."""
    from ast_robot.envs import make_env
    from ast_robot.envs.demos import check_fits, load_demos
    from ast_robot.trainers.bc import DemoData, _add_scenes

    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    episodes = load_demos(demos, env_id=cfg.env.id)
    check_fits(episodes, dict(env.observation_space.spaces), int(env.action_space.shape[0]))
    data = DemoData.from_episodes(episodes, list(env.observation_space.spaces), aux=cfg.policy.aux_weight > 0)
    return env, data, _add_scenes(cfg, env, data)


def build_arm(cfg: Any, env: Any, demo_data: Any, data: Any) -> Any:
    """A trainer of a fresh policy (same seed: same initial weights in every arm); writes no run folder."""
    from ast_robot.core.assemble import build_trainer
    from ast_robot.policies.policy import build_policy
    from ast_robot.trainers.bc import bc_loss

    torch.manual_seed(cfg.seed)
    policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0]))
    policy.normalizer.fit(demo_data.obs)
    trainer = build_trainer(cfg, policy, bc_loss, data, steps=cfg.train.steps, run=None, show_progress=False)
    trainer.callback.init_callback(trainer)  # the bench steps the arm itself: its callbacks (gate.anneal) still run
    trainer.callback.on_training_start()
    return trainer


def sync(device: Any) -> None:
    """Waits for the device's queued work, so a wall-clock reading holds the work it follows (CUDA runs
    asynchronously: unsynchronized, one arm's kernels would be timed in the next arm's step)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def one_step(trainer: Any) -> float:
    """One optimizer step (batch fetch and callbacks included); returns its wall seconds."""
    sync(trainer.device)
    start = time.perf_counter()
    batch = trainer.data.get(trainer.sampler.next()).to(trainer.device)
    trainer.train_step(batch)
    trainer.callback.on_step()
    sync(trainer.device)
    return time.perf_counter() - start


def heldout_batch(cfg: Any, env: Any, demos: Path, first: int, count: int, rows: int, scratch: Path) -> Any:
    """``rows`` frames spread over demo episodes [first, first + count) of ``demos`` (never trained on)."""
    from ast_robot.envs.demos import load_demos
    from ast_robot.trainers.bc import DemoData

    folder = subset_folder(demos, first + count, scratch / f"heldout_first{first + count}")
    episodes = load_demos(folder, env_id=cfg.env.id)[first:]
    data = DemoData.from_episodes(episodes, list(env.observation_space.spaces), aux=True)
    return data.get(torch.linspace(0, len(data) - 1, min(rows, len(data))).long())


@torch.no_grad()
def heldout_errors(model: Any, batch: Any) -> dict[str, float]:
    """Eval-mode RMS error (cm) of the perception's cube and place estimates (relative to the TCP: the
    closed-loop bottleneck) and the action loss on that estimate, over the held-out frames."""
    model.eval()
    sums = {"cube": 0.0, "place": 0.0, "action": 0.0}
    device = next(model.parameters()).device
    for chunk in batch.split(max(1, batch.size // 64)):
        chunk = chunk.to(device)
        obs = {**chunk.inputs, "action": chunk.targets}
        estimate = model.perceive_all(obs)[0]
        sq = (estimate - model.relative_truth(obs)).square()  # dm^2
        sums["cube"] += float(sq[:, :3].sum())
        sums["place"] += float(sq[:, 3:].sum())
        sums["action"] += float(model.head.loss(model.embed(obs, estimate), chunk.targets.float()).sum())
    model.train()
    n = batch.size
    return {"heldout_cube_cm": round(10 * (sums["cube"] / n) ** 0.5, 3),
            "heldout_place_cm": round(10 * (sums["place"] / n) ** 0.5, 3),
            "heldout_action_loss": round(sums["action"] / n, 4)}  # fmt: skip


# ------------------------------------------------------------------------------------------- measuring
def evaluate(policy: Any, env: Any, seeds: list[int]) -> list[bool]:
    """Task success (instruction as given) of ``policy`` on each held-out seed."""
    from ast_robot.envs.ablations import probe_episode

    return [bool(probe_episode(env, policy.act, s, "as_given")["success"]) for s in seeds]


# One env per evaluation worker process (spawned: safe beside CUDA in the parent), made by _eval_init.
_EVAL_ENV: Any = None


def _eval_init(cfg: Any) -> None:
    global _EVAL_ENV
    from ast_robot.envs import make_env

    torch.set_num_threads(1)
    _EVAL_ENV = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)


def _eval_chunk(task: tuple[bytes, list[int]]) -> list[bool]:
    import io

    blob, seeds = task
    return evaluate(torch.load(io.BytesIO(blob), weights_only=False), _EVAL_ENV, seeds)


class Evaluator:
    """Held-out success of a policy on seeds: in this process (``workers`` 0), or split into contiguous seed
    chunks over ``workers`` spawned processes, each with its own env of ``cfg``, running a CPU copy of the
    policy (same mode, same weights), so the list comes back in seed order. Each episode depends only on
    its seed and the policy, so the split changes no outcome (tests/bench/test_gated_device_eval.py)."""

    def __init__(self, cfg: Any, env: Any, workers: int) -> None:
        import multiprocessing

        self.env, self.workers, self.pool = env, workers, None
        if workers > 0:
            ctx = multiprocessing.get_context("spawn")
            self.pool = ctx.Pool(workers, initializer=_eval_init, initargs=(cfg,))

    def __call__(self, policy: Any, seeds: list[int]) -> list[bool]:
        if self.pool is None:
            return evaluate(policy, self.env, seeds)
        import copy
        import io

        buf = io.BytesIO()
        torch.save(copy.deepcopy(policy).cpu(), buf)
        size = -(-len(seeds) // self.workers)
        chunks = [seeds[i : i + size] for i in range(0, len(seeds), size)]
        return [ok for part in self.pool.map(_eval_chunk, [(buf.getvalue(), c) for c in chunks]) for ok in part]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def _median_seconds(fn: Any, reps: int, device: Any = "cpu") -> float:
    times = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def cost_breakdown(trainer: Any, kept: int, reps: int) -> dict[str, float]:
    """Median ms of the pieces of a step on real batches (a copy of the policy: the arm is not trained)."""
    import copy

    from ast_robot.trainers.bc import bc_loss

    model = copy.deepcopy(trainer.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)
    full = trainer.data.get(torch.arange(trainer.cfg.batch_size)).to(trainer.device)
    part = full.select(torch.arange(full.size) < kept)

    def forward_nograd() -> None:
        with torch.no_grad():
            bc_loss(model, full)

    def fwd_bwd(batch: Any) -> None:
        opt.zero_grad(set_to_none=True)
        bc_loss(model, batch).losses.mean().backward()

    fwd_bwd(full)  # warm-up (allocator, first-call overheads)
    dev = trainer.device
    ms = {"scoring_forward_nograd_full": _median_seconds(forward_nograd, reps, dev),
          "forward_backward_full": _median_seconds(lambda: fwd_bwd(full), reps, dev),
          "forward_backward_kept": _median_seconds(lambda: fwd_bwd(part), reps, dev),
          "optimizer_step": _median_seconds(opt.step, reps, dev),
          "batch_fetch_full": _median_seconds(lambda: trainer.data.get(torch.randperm(len(trainer.data))[: full.size]).to(dev), reps, dev)}  # fmt: skip
    out = {f"{k}_ms": round(v * 1000, 1) for k, v in ms.items()}
    out.update(batch=full.size, kept=kept, reps=reps)
    base = ms["batch_fetch_full"] + ms["optimizer_step"]
    # per-step cost ratios these pieces predict (ungated / gated): forward_all pays the scoring forward
    out["predicted_speedup_forward_all"] = round((base + ms["forward_backward_full"]) /
                                                 (base + ms["scoring_forward_nograd_full"] + ms["forward_backward_kept"]), 3)  # fmt: skip
    out["predicted_speedup_stale"] = round((base + ms["forward_backward_full"]) / (base + ms["forward_backward_kept"]), 3)
    return out


# ------------------------------------------------------------------------------------------- the run
def train_side_by_side(arms: dict[str, Any], evaluator: Any, args: argparse.Namespace,
                       held: Any = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Step the arms in turn; evaluate every arm at each checkpoint; returns per-arm counters and curves."""
    seeds = [args.seed + 2_000_000 + i for i in range(max(args.eval_episodes, args.final_episodes))]
    points = sorted({round(args.steps * (i + 1) / args.checkpoints) for i in range(args.checkpoints)})
    state = {a: {"wall_s": 0.0, "curve": [], "step_s": []} for a in arms}
    began = segment_start = time.perf_counter()
    for step in range(1, args.steps + 1):
        _step_all(arms, state, step)
        if step not in points:
            continue
        # the wall-clock guard: when the next segment would not fit in --budget-s, this checkpoint is the last
        now = time.perf_counter()
        last = step == args.steps or now - began + 1.5 * (now - segment_start) > args.budget_s
        n = args.final_episodes if last else args.eval_episodes
        for name, trainer in arms.items():
            start = time.perf_counter()
            ok = evaluator(trainer.model, seeds[:n])
            state[name]["curve"].append(_point(trainer, state[name], step, ok, args.eval_episodes,
                                               time.perf_counter() - start))  # fmt: skip
            if held is not None:
                state[name]["curve"][-1].update(heldout_errors(trainer.model, held))
            print(name, state[name]["curve"][-1], f"load {os.getloadavg()[0]:.2f}", flush=True)
        segment_start = time.perf_counter()
        if last:
            args.stopped_at = step
            break
        save(args, arms, state, final=False)
    return state


def _step_all(arms: dict[str, Any], state: dict[str, Any], step: int) -> None:
    """One optimizer step of every arm, in alternating order; the random arm right after the gated one,
    keeping as many samples as the gated arm's gate kept this step."""
    order = list(arms) if step % 2 else list(reversed(arms))
    if "random" in arms:
        order.remove("random")
        order.insert(order.index("gated") + 1, "random")
    kept_before = arms["gated"].gate.kept if "gated" in arms else 0
    for name in order:
        if name == "random":
            arms[name].gate.quota = arms["gated"].gate.kept - kept_before
        seconds = one_step(arms[name])
        state[name]["wall_s"] += seconds
        state[name]["step_s"].append(seconds)


def _point(trainer: Any, st: dict[str, Any], step: int, ok: list[bool], n_curve: int, eval_s: float) -> dict[str, Any]:
    from ast_robot.gap.stats import wilson_interval

    c = trainer.counters
    ci = wilson_interval(sum(ok), len(ok))
    return {"step": step, "wall_s": round(st["wall_s"], 1), "forward_samples": c.forward_samples,
            "backward_samples": c.backward_samples, "samples_seen": c.samples_seen,
            "success": round(sum(ok) / len(ok), 3), "episodes": len(ok), "ci": [round(ci.low, 3), round(ci.high, 3)],
            "success_first_n": round(sum(ok[:n_curve]) / min(n_curve, len(ok)), 3),
            "eval_s": round(eval_s, 1), "loadavg": round(os.getloadavg()[0], 2)}  # fmt: skip


def time_to(curve: list[dict[str, Any]], target: float) -> float | None:
    """Training wall-clock at the first checkpoint whose success is >= ``target`` (None: never)."""
    for point in curve:
        if point["success"] >= target - 1e-9:
            return point["wall_s"]
    return None


def time_below(curve: list[dict[str, Any]], key: str, target: float) -> float | None:
    """Training wall-clock at the first checkpoint whose ``key`` (an error) is <= ``target`` (None: never)."""
    for point in curve:
        if key in point and point[key] <= target + 1e-9:
            return point["wall_s"]
    return None


def heldout_goals(final: dict[str, dict[str, Any]], rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The same two questions on the held-out perception errors (with --heldout-from): a continuous signal
    that moves long before closed-loop success does. Not the issue's goals: they say where the curves stand."""
    out = []
    for key in ("heldout_place_cm", "heldout_cube_cm"):
        if not all(key in final.get(a, {}) for a in ("ungated", "gated")):
            continue
        target = final["ungated"][key] * (1 + ERROR_WITHIN)
        curve_u = rows["ungated"]["curve"]
        t_u, t_g = time_below(curve_u, key, target), time_below(rows["gated"]["curve"], key, target)
        flat = t_u == curve_u[0]["wall_s"]  # at its final level from the first point: nothing learned to time
        out.append(goal(f"held-out {key}: ungated wall-clock / gated wall-clock to the ungated final + 2% "
                        f"({target:.2f} cm{'; ungated flat from its first point' if flat else ''})", SPEEDUP,
                        round(t_u / t_g, 3) if t_u and t_g and not flat else None))  # fmt: skip
        if t_g is None or flat:
            out[-1]["met"] = False
        if key in final.get("random", {}):
            out.append(goal(f"held-out {key}: gated final - random-subset final (cm, same backward budget)", 0.0,
                            round(final["gated"][key] - final["random"][key], 3), "<"))  # fmt: skip
    return out


def goals_of(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals from the finished curves (measured None while an arm has no final point), then the
    held-out perception versions when the curves carry them."""
    final = {a: r["curve"][-1] for a, r in rows.items() if r.get("finished")}
    return _success_goals(final, rows) + heldout_goals(final, rows)


def _success_goals(final: dict[str, dict[str, Any]], rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    if not {"ungated", "gated"} <= set(final):
        return [goal("gated: ungated wall-clock / gated wall-clock to the ungated final success (-2 points)", SPEEDUP, None),
                goal("gated final success - random-subset final success (same backward budget)", 0.0, None, ">")]  # fmt: skip
    if final["ungated"]["success"] <= WITHIN:  # nothing learned to reach: any arm "reaches" 0 at its first point
        out = [goal("gated: ungated wall-clock / gated wall-clock to the ungated final success (ungated final "
                    f"{final['ungated']['success']:.2f}: nothing to reach)", SPEEDUP, None),
               goal("gated final success - ungated final success (within 2 points; ungated learned nothing)",
                    -WITHIN, None)]  # fmt: skip
        for g in out:
            g["met"] = False
        if "random" in final:
            out.append(goal("gated final success - random-subset final success (same backward budget)", 0.0,
                            round(final["gated"]["success"] - final["random"]["success"], 3), ">"))  # fmt: skip
        return out
    target = final["ungated"]["success"] - WITHIN
    t_u, t_g = time_to(rows["ungated"]["curve"], target), time_to(rows["gated"]["curve"], target)
    speedup = round(t_u / t_g, 3) if t_u and t_g else None
    out = [goal(f"gated: ungated wall-clock / gated wall-clock to the ungated final success (-2 points: {target:.2f})",
                SPEEDUP, speedup),
           goal("gated final success - ungated final success (within 2 points)", -WITHIN,
                round(final["gated"]["success"] - final["ungated"]["success"], 3))]  # fmt: skip
    if t_g is None:
        out[0]["met"] = False  # the gated arm never reached it: a failure, not a missing measurement
    if "random" in final:
        out.append(goal("gated final success - random-subset final success (same backward budget)", 0.0,
                        round(final["gated"]["success"] - final["random"]["success"], 3), ">"))  # fmt: skip
    return out


def save(args: argparse.Namespace, arms: dict[str, Any], state: dict[str, Any], final: bool,
         costs: dict[str, Any] | None = None) -> Path:  # fmt: skip
    rows = {}
    for name, st in state.items():
        steps = st["step_s"]
        half = sorted(steps[len(steps) // 2:]) or [0.0]
        rows[name] = {"arm": name, "finished": final and bool(st["curve"]), "wall_s": round(st["wall_s"], 1),
                      "median_step_ms_second_half": round(1000 * half[len(half) // 2], 1),
                      "counters": {k: v for k, v in arms[name].counters.summary().items() if k != "train_seconds"},
                      "curve": st["curve"]}  # fmt: skip
    out = list(rows.values())
    if costs is not None:
        out.append({"arm": "cost_breakdown", **costs})
    notes = (f"UR5e two_stage student at {args.camera}x{args.camera}, from scratch on the first {args.episodes} "
             f"episodes of {args.demos} + {args.scenes} scenes; {args.steps} steps of batch "
             f"{next(iter(arms.values())).cfg.batch_size} per arm, gate rate "
             f"{args.rate} on stale scores (weights {args.weights}); checkpoints every {args.steps // args.checkpoints} "
             f"steps on {args.eval_episodes} held-out seeds (the last on {args.final_episodes}); one process "
             f"(device {args.device}), one torch thread, the arms stepping in turn; held-out episodes in "
             f"{args.eval_workers or 'that'} process(es), CPU policy copies; seed {args.seed}; overrides {args.set or 'none'}; stopped at step "
             f"{getattr(args, 'stopped_at', None)} (the wall-clock guard --budget-s {args.budget_s:g}). wall_s: the "
             "arm's own steps (fetch + gate + forward + backward + update), evaluation excluded.")  # fmt: skip
    if args.note:
        notes += f" note: {args.note}"
    return write_results(args.name, out, goals_of(rows), notes, out_dir=args.out_dir)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", type=Path, required=True, help="demo folder (ast-robot demos collect, deploy layout)")
    p.add_argument("--episodes", type=int, default=500, help="the first N episodes of --demos")
    p.add_argument("--scenes", type=int, default=12000, help="single-render scenes added (perception only)")
    p.add_argument("--steps", type=int, default=2500, help="optimizer steps per arm")
    p.add_argument("--camera", type=int, default=96, help="camera image size (square)")
    p.add_argument("--rate", type=float, default=0.5, help="gate target rate (fraction of samples backwarded)")
    p.add_argument("--weights", default="{loss: 1.0}", help="significance weights of the gated arm")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma list of {ARMS}")
    p.add_argument("--checkpoints", type=int, default=5, help="evaluation points (the last at the end)")
    p.add_argument("--eval-episodes", type=int, default=40, help="held-out episodes per checkpoint")
    p.add_argument("--final-episodes", type=int, default=100, help="held-out episodes of the last checkpoint")
    p.add_argument("--cost-reps", type=int, default=7, help="repetitions of each timed piece")
    p.add_argument("--heldout-from", type=int, default=0,
                   help="first held-out demo episode (>= --episodes) whose frames measure the perception error at "
                        "each checkpoint; 0: none")  # fmt: skip
    p.add_argument("--heldout-episodes", type=int, default=40)
    p.add_argument("--heldout-rows", type=int, default=256)
    p.add_argument("--budget-s", type=float, default=float("inf"),
                   help="wall-clock guard: stop at the first checkpoint after which the next would not fit (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device of the arms' training (cpu, cuda, cuda:1)")
    p.add_argument("--eval-workers", type=int, default=0,
                   help="processes that run the held-out episodes (a CPU copy of the policy each); 0: this one")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override of every arm")
    p.add_argument("--out", type=Path, default=Path("/tmp/ast_robot_bench/pixels_gated"), help="scratch folder")
    p.add_argument("--name", default="robot_learning_pixels_gated")
    p.add_argument("--out-dir", type=Path, default=None, help="folder of the results (default bench/results)")
    p.add_argument("--note", default="")
    p.add_argument("--smoke", action="store_true", help="tiny budgets: checks the script, not the claims")
    args = p.parse_args(argv)
    args.arms = [a for a in args.arms.split(",") if a]
    if bad := [a for a in args.arms if a not in ARMS]:
        raise SystemExit(f"--arms: unknown {bad}; choose from {list(ARMS)}")
    if "random" in args.arms and "gated" not in args.arms:
        raise SystemExit("--arms: the random arm copies the gated arm's per-step count; run it with 'gated'")
    if args.smoke:
        args.episodes, args.scenes, args.steps, args.checkpoints = 6, 50, 12, 2
        args.eval_episodes, args.final_episodes, args.cost_reps = 2, 3, 2
        args.heldout_episodes, args.heldout_rows = 2, 16
    if args.heldout_from and args.heldout_from < args.episodes:
        raise SystemExit(f"--heldout-from {args.heldout_from}: must be >= --episodes {args.episodes} (held out)")
    return args


def regoal(path: Path) -> Path:
    """Recompute the goals of a written result file (its rows unchanged) with this script's goals_of;
    the notes record that they were recomputed and from which command the rows came."""
    result = json.loads(path.read_text())
    rows = {r["arm"]: r for r in result["rows"] if r["arm"] in ARMS}
    marker = " Goals recomputed by --regoal from the rows of "
    base, _, origin = result["notes"].partition(marker)  # a result recomputed before keeps its first origin
    origin = origin or f"`{result['command']}` ({result['date']})."
    notes = f"{base}{marker}{origin}"
    return write_results(result["name"], result["rows"], goals_of(rows), notes, out_dir=path.parent,
                         machine_info=result["machine"])  # fmt: skip


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--regoal":
        print(regoal(Path(sys.argv[2])))
        return
    args = parse_args()
    torch.set_num_threads(1)
    cfgs = {arm: arm_config(arm, args) for arm in args.arms}
    demos = subset_folder(args.demos, args.episodes, args.out / f"demos_first{args.episodes}")
    start = time.perf_counter()
    env, demo_data, data = build_data(cfgs[args.arms[0]], demos)
    print(f"data: {len(demo_data)} demo steps + {len(data) - len(demo_data)} scenes in {time.perf_counter() - start:.0f} s", flush=True)
    arms = {}
    for arm, cfg in cfgs.items():
        arms[arm] = build_arm(cfg, env, demo_data, data)
        if arm == "random":  # the same gate settings and seed, deciding by the gated arm's count
            arms[arm].gate = QuotaGate(cfg.gate, seed=cfg.seed)
    if cfgs[args.arms[0]].train.data_on_device:  # one copy on the device, shared by the arms as on the host
        data.to(arms[args.arms[0]].device)
    costs = cost_breakdown(arms[args.arms[0]], kept=round(args.rate * cfgs[args.arms[0]].train.batch_size),
                           reps=args.cost_reps)  # fmt: skip
    print("costs", costs, flush=True)
    held = None
    if args.heldout_from:
        held = heldout_batch(cfgs[args.arms[0]], env, args.demos, args.heldout_from, args.heldout_episodes,
                             args.heldout_rows, args.out)  # fmt: skip
    evaluator = Evaluator(cfgs[args.arms[0]], env, args.eval_workers)
    try:
        state = train_side_by_side(arms, evaluator, args, held)
    finally:
        evaluator.close()
    print(save(args, arms, state, final=True, costs=costs), flush=True)
    env.close()


if __name__ == "__main__":
    main()

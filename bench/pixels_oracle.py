"""Perception or action? A two-stage pixel student on its own estimate vs on the TRUE positions (issue 20).

The `two_stage` student (ast_robot/policies/policy.py) perceives (camera + instruction + TCP -> the named cube's
and place's positions relative to the TCP, 6 numbers) and then acts (an MLP on proprioception + those 6 numbers).
Run on the same held-out seeds twice, once as deployed (``estimate``) and once with the action stage fed the true
relative positions (``true``: an oracle perception), the success difference is what the perception costs and the
``true`` success is what the action stage can do. Also reported: the estimate's error while acting (median over
steps: the cube's horizontal and vertical error with the TCP within 5 cm of the cube, the place's horizontal
error), in mm. Nothing under ast_robot/policies/ is changed: the instrument calls `perceive` and `embed`.

    .venv/bin/python bench/pixels_oracle.py --run fix1=RUNS/px_fr3_ungated --episodes 100 \\
        --name pixels_oracle_fr3_s10
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import write_results  # noqa: E402

# true_cube: the cube's truth, the place's estimate (true_place the other way); wrist_seen: per object, the wrist
# camera's own estimate wherever the object lies inside the wrist image (the fused estimate elsewhere): a gate that
# always trusts the wrist when it sees the object (visibility from the truth; no estimate is the truth)
MODES = ("estimate", "true", "true_cube", "true_place", "wrist_seen")
# filtered: the estimate through the per-episode filter of ``policy.estimate_filter`` (ast_robot/policies/
# estimate_filter.py; --filter sets its frames), reset at each episode start, as a filtered student's act() does
FILTERED = "filtered"
ALL_MODES = (*MODES, FILTERED)
NEAR_M = 0.05  # TCP within this of the cube: where the grasp needs the estimate


def truth_dm(env: Any, tcp: torch.Tensor) -> torch.Tensor:
    """The true (cube - TCP, place - TCP) ``(1, 6)`` in dm, as the perception is trained to estimate it (the TCP as
    observed: ``tcp`` (3,) m from the observation)."""
    from ast_robot.policies.policy import AUX_SCALE

    u = env.unwrapped
    cube = torch.as_tensor(u.object_pos(u.target_object), dtype=torch.float32)
    place = torch.as_tensor(u.goal, dtype=torch.float32)
    return AUX_SCALE * torch.cat([cube - tcp, place - tcp])[None]


def oracle_act(policy: Any, env: Any, mode: str, errors: list, filt: Any = None) -> Any:
    """``act(obs)`` of ``policy`` whose action stage sees its estimate (``estimate``) or the truth (``true``); every
    call appends (estimate - truth in mm (6,), true TCP-to-cube distance m, what the action stage saw - truth in mm
    (6,)) to ``errors``. ``filtered`` needs ``filt`` (an EstimateFilter; the caller resets it per episode)."""
    from ast_robot.policies import encoders
    from ast_robot.policies.policy import AUX_SCALE

    u = env.unwrapped
    if mode == FILTERED and filt is None:
        raise ValueError("oracle mode 'filtered' needs an estimate filter (filt)")

    @torch.inference_mode()
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        batch = encoders.to_tensors(obs, policy.spec, "cpu")
        estimate = policy.perceive(batch)[0]  # (1, 6) dm
        truth = truth_dm(env, batch["observation"][0, policy.tcp].float())
        if mode == FILTERED:
            tcp = AUX_SCALE * batch["observation"][:, policy.tcp].float()
            positions = filt(estimate, tcp, float(batch["observation"][0, policy.width]))
        elif mode == "wrist_seen":
            positions = _wrist_seen(policy, env, batch, estimate)
        else:
            positions = _positions(mode, estimate, truth)
        errors.append(((estimate - truth)[0].numpy() * (1000.0 / AUX_SCALE),
                       float(np.linalg.norm(u.object_pos(u.target_object) - u.tcp_pos)),
                       (positions - truth)[0].numpy() * (1000.0 / AUX_SCALE)))  # fmt: skip
        return policy.head.mode(policy.embed(batch, positions))[0].numpy()

    return act


def _wrist_seen(policy: Any, env: Any, batch: dict[str, torch.Tensor], fused: torch.Tensor) -> torch.Tensor:
    """``fused`` (1, 6) with each object's three numbers replaced by the wrist camera's estimate where the object's
    true centre projects inside the wrist image (as the wrist's training loss counts it seen)."""
    from ast_robot.envs.projection import image_coords
    from ast_robot.envs.wrist import WRIST_CAMERA

    u = env.unwrapped
    if not u.cfg.wrist_camera:
        raise ValueError("oracle mode 'wrist_seen' needs a student with a wrist camera (env.wrist_camera: true)")
    wrist = policy.perceive_all(batch)[2][0]  # (1, 6) dm
    coords = image_coords(env, np.stack([u.object_pos(u.target_object), u.goal]), WRIST_CAMERA, u.cfg.wrist_camera_size)
    seen = torch.as_tensor(np.repeat((np.abs(coords) <= 1).all(-1), 3))[None]  # (1, 6); NaN (behind) is unseen
    return torch.where(seen, wrist, fused)


def _positions(mode: str, estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """What the action stage sees in ``mode`` (MODES): (cube - TCP, place - TCP) ``(1, 6)`` dm."""
    if mode not in MODES:
        raise ValueError(f"oracle mode {mode!r}: choose from {list(MODES)}")
    cube = truth if mode in ("true", "true_cube") else estimate
    place = truth if mode in ("true", "true_place") else estimate
    return torch.cat([cube[:, :3], place[:, 3:]], -1)


def measure(policy: Any, env: Any, mode: str, seeds: list[int], frames: tuple[int, int] = (10, 0)) -> dict[str, Any]:
    """One mode on ``seeds``: success, Wilson interval, outcomes, the estimate's median errors (mm), the failed seeds
    (``filtered``: the filter's (place, cube) frames; also the error of what the action stage saw)."""
    from ast_robot.envs.ablations import probe_episode
    from ast_robot.gap.stats import wilson_interval
    from ast_robot.policies.estimate_filter import EstimateFilter

    errors: list = []
    filt = EstimateFilter(*frames)
    act = oracle_act(policy, env, mode, errors, filt)
    results = [probe_episode(env, act, s, "as_given", reset=filt.reset) for s in seeds]
    e = np.array([x[0] for x in errors])  # (steps, 6) mm
    seen = np.array([x[2] for x in errors])  # (steps, 6) mm: what the action stage saw - truth
    near = np.array([x[1] for x in errors]) < NEAR_M
    wins = sum(r["success"] for r in results)
    ci = wilson_interval(wins, len(results))
    median = lambda v: round(float(np.median(v)), 2) if len(v) else None  # noqa: E731
    return {"mode": mode, "episodes": len(results), "success": wins / len(results),
            "ci": [round(ci.low, 3), round(ci.high, 3)], "outcomes": dict(Counter(r["outcome"] for r in results)),
            "cube_xy_err_near_mm": median(np.linalg.norm(e[near, :2], axis=1)),
            "cube_z_err_near_mm": median(np.abs(e[near, 2])), "place_xy_err_mm": median(np.linalg.norm(e[:, 3:5], axis=1)),
            "place_xy_err_p90_mm": round(float(np.percentile(np.linalg.norm(e[:, 3:5], axis=1), 90)), 2),
            "acted_place_xy_err_mm": median(np.linalg.norm(seen[:, 3:5], axis=1)),
            "acted_place_xy_err_p90_mm": round(float(np.percentile(np.linalg.norm(seen[:, 3:5], axis=1), 90)), 2),
            "acted_cube_xy_err_near_mm": median(np.linalg.norm(seen[near, :2], axis=1)),
            "failed_seeds": [int(r["seed"]) for r in results if not r["success"]]}  # fmt: skip


def run(label: str, run_dir: Path, episodes: int, modes: tuple[str, ...] = MODES[:2],
        frames: tuple[int, int] = (10, 0)) -> list[dict[str, Any]]:  # fmt: skip
    """``modes`` for one run on its trainer's held-out seeds (config seed + 2,000,000 + i, as bench/robot_learning);
    ``frames``: the ``filtered`` mode's (place, cube) frames."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import PolicyBase
    from ast_robot.run_layout import POLICY_DIR

    cfg = load_config(run_dir / "config.yaml")
    if cfg.policy.type != "two_stage":
        raise ValueError(f"--run {label}={run_dir}: policy.type {cfg.policy.type!r}; the oracle needs 'two_stage'")
    policy = PolicyBase.load(run_dir / POLICY_DIR)
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    seeds = [cfg.seed + 2_000_000 + i for i in range(episodes)]
    rows = []
    for mode in modes:
        start = time.perf_counter()
        row = {"run": label, **measure(policy, env, mode, seeds, frames), "wall_s": round(time.perf_counter() - start, 1)}
        if mode == FILTERED:
            row["filter_frames"] = list(frames)
        rows.append(row)
        print(row, flush=True)
    env.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", required=True, metavar="LABEL=RUN_DIR", help="a two_stage BC run (repeatable)")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--modes", default="estimate,true", help=f"comma list from {list(ALL_MODES)} (true_cube: the action "
                   "stage sees the cube's truth and the place's estimate; true_place the other way: which estimate "
                   "costs; filtered: the estimate through the per-episode filter of --filter)")  # fmt: skip
    p.add_argument("--filter", default="10,0", metavar="PLACE,CUBE", help="the filtered mode's frames (policy."
                   "estimate_filter: place median over the last PLACE frames, 0 = all; cube over CUBE, 0 = off)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="torch threads (the deployment's: 1)")
    p.add_argument("--name", default="pixels_oracle")
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--note", default="")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    bad = [m for m in modes if m not in ALL_MODES]
    if bad or not modes:
        raise SystemExit(f"--modes {args.modes!r}: unknown {bad}; choose from {list(ALL_MODES)}")
    frames = _frames(args.filter)
    rows = [row for item in args.run for row in run(*_label(item), args.episodes, modes, frames)]
    notes = (f"{args.note} Load {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end. `true`: the action stage "
             f"on the true relative positions (an oracle perception); `estimate`: as deployed; `true_cube` / "
             f"`true_place`: the truth for that one, the estimate for the other; `filtered`: the estimate through "
             f"the per-episode median filter (policy.estimate_filter {list(frames)}). Errors: estimate - "
             f"truth, median (p90) over steps (cube: TCP within {NEAR_M * 100:.0f} cm of it); acted_*: what the "
             f"action stage saw - truth.").strip()  # fmt: skip
    print(write_results(args.name, rows, [], notes, args.out_dir))


def _frames(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise SystemExit(f"--filter {text!r}: expected PLACE,CUBE frames, two integers >= 0 (e.g. 10,0)")
    return int(parts[0]), int(parts[1])


def _label(item: str) -> tuple[str, Path]:
    label, sep, path = item.partition("=")
    if not sep or not label or not path:
        raise SystemExit(f"--run {item!r}: expected LABEL=RUN_DIR (a run folder with config.yaml and policy/)")
    return label, Path(path)


if __name__ == "__main__":
    main()

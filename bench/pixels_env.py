"""Pick-and-place from pixels and language, the environment side (issue 20): cost and teacher quality.

Measures, side by side in one run, for the UR5e and the FR3:
- env steps/s of the deploy layout (64x64 scene camera rendered every step, visual + physical randomization)
  beside the privileged layout without a camera (random actions, `env.unwrapped`);
- the scripted expert's success in the deploy scene (2 cubes, 2 pads, visual + physical randomization) and
  whether the cube it placed is the one the instruction names;
- the policy's `act()` latency on one CPU thread at the deployed image size (64x64), eager and frozen
  (`optimize_for_inference`), for the policy of `configs/experiments/pickplace_ur5e_pixels_bc.yaml`
  (fresh weights, or `--policy RUN/policy`: latency does not depend on the weights).

    .venv/bin/python bench/pixels_env.py --episodes 50
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

import ast_robot  # noqa: E402, F401  (registers the env ids)
from bench.common import goal, write_results  # noqa: E402

DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2}
VISUAL_DR = {"preset": "default", "visual": {"enabled": True}}
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "pickplace_ur5e_pixels_bc.yaml"


def steps_per_second(env_id: str, config: dict, randomization: dict, steps: int) -> float:
    """Env steps/s with uniformly random actions (resets included when an episode ends)."""
    import gymnasium as gym

    env = gym.make(env_id, config=config, randomization=randomization).unwrapped
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 4)).astype(np.float32)
    start = time.perf_counter()
    for action in actions:
        *_, truncated, _ = env.step(action)
        if truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def expert_row(env_id: str, episodes: int) -> dict:
    """Scripted-expert success in the deploy scene and whether it placed the named cube."""
    import gymnasium as gym

    from ast_robot.envs import visual_randomization as vr
    from ast_robot.envs.demos import run_episode
    from ast_robot.envs.experts import expert_for
    from ast_robot.envs.instructions import COLOURS

    env = gym.make(env_id, config=DEPLOY, randomization=VISUAL_DR)
    u, expert = env.unwrapped, expert_for(env)
    successes, named, failed = 0, 0, []
    start = time.perf_counter()
    for seed in range(episodes):
        ep = run_episode(env, expert, seed)
        word = next(w for w in u.instruction.split() if w in COLOURS)
        on_pad = [i for i in range(u.cfg.n_objects) if np.linalg.norm(u.object_pos(i)[:2] - u.goal[:2]) < 0.05]
        colours = [vr.band_of(u.model.geom_rgba[u.model.geom(f"object{i}").id, :3]) for i in on_pad]
        successes += bool(ep["success"])
        named += colours == [word]  # exactly the named cube on the goal pad
        if not ep["success"]:
            failed.append(seed)
    env.close()
    return {"part": "expert", "env": env_id, "episodes": episodes, "success_rate": successes / episodes,
            "named_cube_rate": named / episodes, "failed_seeds": failed[:10],
            "wall_s": round(time.perf_counter() - start, 1)}  # fmt: skip


def act_latency(policy_dir: str | None, calls: int) -> list[dict]:
    """p50 / p99 of `act()` (ms) on one thread, eager and frozen, at the deploy layout's observation."""
    import gymnasium as gym
    import torch

    from ast_robot.config import load_config
    from ast_robot.policies.policy import PolicyBase, build_policy

    torch.set_num_threads(1)
    cfg = load_config(CONFIG)
    env = gym.make(cfg.env.id, config=cfg.env, randomization=VISUAL_DR)
    obs, _ = env.reset(seed=0)
    if policy_dir:
        policy = PolicyBase.load(policy_dir)
    else:
        torch.manual_seed(0)
        policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0])).eval()
    rows = []
    for mode in ("eager", "frozen"):
        if mode == "frozen":
            policy.optimize_for_inference()
        for _ in range(20):
            policy.act(obs)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            policy.act(obs)
            times.append((time.perf_counter() - start) * 1e3)
        rows.append({"part": "act", "mode": mode, "image": "64x64", "calls": calls, "threads": 1,
                     "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                     "weights": policy_dir or "fresh"})  # fmt: skip
    env.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50, help="Expert episodes per robot.")
    parser.add_argument("--steps", type=int, default=500, help="Env steps per throughput row.")
    parser.add_argument("--calls", type=int, default=500, help="act() calls per latency row.")
    parser.add_argument("--policy", default=None, help="A saved policy folder (RUN/policy); default fresh weights.")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    rows, goals = [], []
    for robot in ("UR5e", "FR3"):
        env_id = f"ast_robot/PickPlace{robot}-v0"
        deploy = steps_per_second(env_id, DEPLOY, VISUAL_DR, args.steps)
        privileged = steps_per_second(env_id, {}, {"preset": "default"}, args.steps)
        rows.append({"part": "env", "env": env_id, "deploy_camera_steps_per_s": deploy,
                     "privileged_no_camera_steps_per_s": privileged, "loadavg_1min": os.getloadavg()[0]})  # fmt: skip
        row = expert_row(env_id, args.episodes)
        rows.append(row)
        goals.append(goal(f"{robot} expert success, deploy scene (2 cubes, 2 pads, visual DR)", 0.9, row["success_rate"]))
        goals.append(goal(f"{robot} expert placed the named cube", 0.95, row["named_cube_rate"]))
    act_rows = act_latency(args.policy, args.calls)
    rows += act_rows
    frozen = next(r for r in act_rows if r["mode"] == "frozen")
    goals.append(goal("policy act() p99 (ms), one thread, 64x64, frozen", 8.0, frozen["p99_ms"], "<="))
    notes = (f"2-core machine shared with other sessions: loadavg {load_start:.1f} at the start, "
             f"{os.getloadavg()[0]:.1f} at the end; rates and latencies under that load are lower bounds of "
             "what a quiet machine gives. The expert reads privileged state (it is the teacher); the deploy "
             "observation it records has no object or pad position.")  # fmt: skip
    print(write_results("pixels_env", rows, goals, notes))


if __name__ == "__main__":
    main()

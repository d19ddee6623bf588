"""The pixel student's camera rate in deployment (issue 21): what a policy trained on a render every 25 Hz step
sees on the twin at the deploy YAML's camera_rate_hz, and what each rate costs the twin.

Part ``stale`` (no ROS): scripted-expert pick-and-place episodes in the pixel experiment's env with the deployment
pipeline; the scene camera is rendered at every 125 Hz tick and a camera at ``rate`` Hz is modelled on the twin's
schedule (ast_robot.robot.sampling: a frame at the episode's first tick, then each due time on the physics' grid,
held in between). Per policy step: the held frame's age (ms), its pixel RMS against the fresh render the env gives
(uint8 levels; the visual gap floor is 2), and how far the TCP moved since it was taken (mm).
Part ``cost`` (``--policy RUN``): a pixel policy deployed on the nominal twin on simulated time with the camera at
each rate, wall seconds per episode (rendering is most of a lock-step tick's cost).

    python bench/camera_rate.py --rates 10 25 --episodes 10 [--policy RUN --cost-episodes 3 --domain 151]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import goal, write_results  # noqa: E402

CONFIG = "configs/experiments/pickplace_ur5e_pixels_bc.yaml"


def stale_rows(rate: float, episodes: int, seed: int) -> dict:
    """One row: frame age, pixel RMS vs the fresh frame and TCP motion since the frame, over expert episodes."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.envs.experts import expert_for
    from ast_robot.robot.sampling import next_due, sample_due

    cfg = load_config(CONFIG)
    env = make_env(cfg.env, cfg.randomization, seed=seed, deploy=cfg.deploy).unwrapped
    ticks: list[tuple[float, np.ndarray, np.ndarray]] = []  # (t, image, tcp) at every tick
    inner = env._sample_world

    def every_tick(t: float, restart: bool = False) -> None:
        inner(t, restart)
        ticks.append((t, env.render_camera().copy(), env._tcp.copy()))

    env._sample_world = every_tick
    expert = expert_for(env)
    ages, rms, moved = [], [], []
    for e in range(episodes):
        ticks.clear()
        obs, _ = env.reset(seed=seed + e)
        expert.reset()
        held, due = ticks[-1], next_due(ticks[-1][0], None, rate, restart=True)
        seen = 1
        for _ in range(cfg.env.max_episode_steps):
            obs, _, term, trunc, _ = env.step(expert.act(obs))
            for tick in ticks[seen:]:
                if sample_due(tick[0], due):
                    held, due = tick, next_due(tick[0], due, rate)
            seen = len(ticks)
            now = ticks[-1]
            ages.append(1e3 * (now[0] - held[0]))
            rms.append(float(np.sqrt(np.mean((now[1].astype(float) - held[1].astype(float)) ** 2))))
            moved.append(1e3 * float(np.linalg.norm(now[2] - held[2])))
            if term or trunc:
                break
    env.close()
    return {"part": "stale", "rate_hz": rate, "episodes": episodes, "steps": len(ages),
            "age_ms_mean": round(float(np.mean(ages)), 2), "age_ms_max": round(float(np.max(ages)), 2),
            "stale_share": round(float(np.mean(np.array(ages) > 1e-6)), 3),
            "rms_levels_mean": round(float(np.mean(rms)), 3), "rms_levels_p90": round(float(np.percentile(rms, 90)), 3),
            "rms_levels_max": round(float(np.max(rms)), 3), "tcp_moved_mm_mean": round(float(np.mean(moved)), 2),
            "tcp_moved_mm_max": round(float(np.max(moved)), 2)}  # fmt: skip


def cost_row(policy: Path, rate: float, episodes: int, root: Path, domain: int, repeat: int) -> dict:
    """A pixel policy on the nominal twin (simulated time) with the camera at ``rate``: wall s per episode."""
    from ast_robot.deploy.loader import read_contract
    from ast_robot.records import read_records
    from ast_robot.sim2real import deploy_on_twin, twin_camera_sizes

    contract = read_contract(policy, "ur5e")
    folder = root / f"cost-{rate:g}hz-{repeat}"
    flags = {**twin_camera_sizes(contract), "--camera-rate": [f"{rate:g}"]}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    _, records = deploy_on_twin(policy, ["--config", CONFIG], "ur5e", None, episodes, 1000, folder, domain,
                                task="pickplace", camera=True, twin_flags=flags)  # fmt: skip
    wall = time.perf_counter() - start
    recs = read_records(records)
    return {"part": "cost", "rate_hz": rate, "repeat": repeat, "episodes": len(recs), "deploy_wall_s": round(wall, 1),
            "wall_s_per_episode": round(wall / max(len(recs), 1), 2), "loadavg_1min": round(load, 2),
            "loadavg_after": round(os.getloadavg()[0], 2), "real_successes": int(sum(r.success for r in recs))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 25.0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--policy", default=None, help="A pixel run's policy folder for the cost part.")
    parser.add_argument("--cost-episodes", type=int, default=3)
    parser.add_argument("--cost-repeats", type=int, default=1)
    parser.add_argument("--domain", type=int, default=151)
    parser.add_argument("--name", default="camera_rate")
    args = parser.parse_args()
    rows = []
    for rate in args.rates:
        load = os.getloadavg()[0]
        rows.append({**stale_rows(rate, args.episodes, args.seed), "loadavg_1min": round(load, 2)})
        print(rows[-1], flush=True)
    root = Path(tempfile.mkdtemp(prefix="camera_rate-"))  # twin runs: scratch, not results
    for i in range(args.cost_repeats if args.policy else 0):
        for rate in args.rates if i % 2 == 0 else args.rates[::-1]:
            rows.append(cost_row(Path(args.policy), rate, args.cost_episodes, root, args.domain, i))
            print(rows[-1], flush=True)
    fresh = [r for r in rows if r["part"] == "stale" and r["rate_hz"] >= 25.0]
    goals = [goal("at the policy rate the policy sees the env's frame (stale share)", 0.0,
                  fresh[0]["stale_share"] if fresh else None, "<=")]  # fmt: skip
    notes = ("stale: UR5e pixel experiment (configs/experiments/pickplace_ur5e_pixels_bc.yaml, 64x64 scene camera, its "
             "randomization), scripted expert through the deployment pipeline, seeds from --seed; the env renders its "
             "camera at every 25 Hz policy step, the twin at camera_rate_hz on the robot.sampling schedule. cost: "
             "the policy deployed on the nominal twin, simulated time, the same tables (seed 1000).")  # fmt: skip
    print("wrote", write_results(args.name, rows, goals, notes))


if __name__ == "__main__":
    main()

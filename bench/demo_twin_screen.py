"""Screen hidden-parameter candidates for the demo's twin: which opens a clear round-0 gap?

The demo's round-0 policy (configs/experiments/demo.yaml, env.deploy_pipeline on) deployed through the
ROS-free lock-step harness (:class:`ast_robot.twin.lockstep.LockstepDeployment`: the policy node's session +
the safety module + the twin's physics at the deploy rate) on a twin with each candidate's hidden
parameters, for the same seeded goals; the nominal twin first (the null case: it must match the env).
A candidate is useful for `make demo` when real success is <= 50% while sim success stays >= 80%, and its
parameters are in the default randomization (so the analyzer can identify them and retuning can close it).

    MUJOCO_GL=egl .venv/bin/python bench/demo_twin_screen.py --policy RUN/round0/policy [--episodes 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs/experiments/demo.yaml"
SEED0 = 1000  # the goal seeds of the deployment's round 0 (`ast-robot episodes --seed 1000`)
CANDIDATES = [
    ("nominal", {}),
    ("gain x0.35 + latency 120 ms (the current demo twin)", {"gain_scale": 0.35, "latency_s": 0.12}),
    ("gain x0.2", {"gain_scale": 0.2}),
    ("gain x0.15", {"gain_scale": 0.15}),
    ("gain x0.1", {"gain_scale": 0.1}),
    ("latency 200 ms", {"latency_s": 0.2}),
    ("latency 280 ms", {"latency_s": 0.28}),
    ("damping x8", {"damping_scale": 8.0}),
    ("damping x20", {"damping_scale": 20.0}),
    ("payload 4.5 kg", {"payload_kg": 4.5}),
    ("gain x0.2 + payload 4.5 kg", {"gain_scale": 0.2, "payload_kg": 4.5}),
    ("gain x0.2 + latency 120 ms", {"gain_scale": 0.2, "latency_s": 0.12}),
    ("gain x0.05", {"gain_scale": 0.05}),
    ("gain x0.1 + latency 120 ms", {"gain_scale": 0.1, "latency_s": 0.12}),
    ("gain x0.1 + payload 4.5 kg", {"gain_scale": 0.1, "payload_kg": 4.5}),
    ("gain x0.15 + latency 200 ms", {"gain_scale": 0.15, "latency_s": 0.2}),
    ("latency 360 ms", {"latency_s": 0.36}),
    ("gain x0.07", {"gain_scale": 0.07}),
    ("gain x0.1 + damping x10", {"gain_scale": 0.1, "damping_scale": 10.0}),
    ("damping x60", {"damping_scale": 60.0}),
    ("latency 240 ms", {"latency_s": 0.24}),
    ("gain x0.2 + latency 200 ms", {"gain_scale": 0.2, "latency_s": 0.2}),
    ("gain x0.25 + latency 240 ms", {"gain_scale": 0.25, "latency_s": 0.24}),
    ("payload 5 kg + latency 240 ms", {"payload_kg": 5.0, "latency_s": 0.24}),
    ("damping x4 + latency 240 ms", {"damping_scale": 4.0, "latency_s": 0.24}),
    ("gain x0.2 + latency 240 ms", {"gain_scale": 0.2, "latency_s": 0.24}),
]


def screen(policy_path: Path, hidden: dict, episodes: int) -> dict:
    from ast_robot.config import RandomizationConfig, load_config
    from ast_robot.deploy.runner import load_deploy_policy
    from ast_robot.envs import make_env
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.lockstep import LockstepDeployment

    cfg = load_config(CONFIG)
    policy = load_deploy_policy(policy_path)
    env = make_env(cfg.env, RandomizationConfig(enabled=False), seed=0, deploy=cfg.deploy)
    deployed = LockstepDeployment.build(policy, cfg.deploy.robot, cfg.deploy, cfg.env, hidden=HiddenParams(**hidden))
    wins, errors = 0, []
    for i in range(episodes):
        env.reset(seed=SEED0 + i)
        rec = deployed.run_episode(env.unwrapped.goal.copy())
        wins += bool(rec.success)
        errors.append(1e3 * rec.final_error)
    env.close()
    errors.sort()
    return {"real_success": wins / episodes, "median_final_error_mm": round(errors[len(errors) // 2], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--only", type=int, nargs="*", default=None, help="Candidate indices to run.")
    args = parser.parse_args()
    rows = []
    for i, (name, hidden) in enumerate(CANDIDATES):
        if args.only is not None and i not in args.only:
            continue
        start = time.perf_counter()
        row = {"candidate": name, "hidden": hidden, "episodes": args.episodes,
               **screen(Path(args.policy), hidden, args.episodes), "wall_s": round(time.perf_counter() - start, 1)}
        rows.append(row)
        print(row, flush=True)
    nominal = next((r["real_success"] for r in rows if r["candidate"] == "nominal"), None)
    opened = [r for r in rows if r["candidate"] != "nominal" and r["real_success"] <= 0.5]
    goals = [goal("nominal twin: lock-step deployed success (null case)", 0.8, nominal),
             goal("candidates with deployed success <= 50%", 1, len(opened) or None)]
    notes = (f"Policy {args.policy}; goals of seeds {SEED0}.. drawn by the env (randomization off); the "
             f"lock-step deployment (bench/parity.py machinery) on a twin with each candidate's hidden parameters.")
    print(f"wrote {write_results('demo_twin_screen', rows, goals, notes)}")


if __name__ == "__main__":
    main()

"""Train as you deploy: does the env give the same episodes as the deployment pipeline?

For one policy and the same seeded goals on the nominal UR5e: the env (``ast_robot/ReachUR5e-v0``,
randomization off) against the ROS-free deployment (:class:`ast_robot.twin.lockstep.LockstepDeployment`:
``PolicyRunner`` in synchronous mode + the safety module + the twin's trajectory-controller physics at the
deploy rate, lock-step). Per episode: success, final error and path length on both sides. Two env
variants side by side: ``env.deploy_pipeline`` on (the demo's setting: the env runs the node's command
path) and off (the plain env step that the deployment gap of issue 18 came from).

Two policies: the demo's round-0 policy (configs/experiments/demo.yaml, trained with the pipeline) and the
same training with ``env.deploy_pipeline=false`` (the policy of issue 18: 30/30 in sim, 4-6/10 deployed),
each trained here unless ``--policy`` / ``--plain-policy`` name checkpoints. The goals are over every episode
of the pipeline env (both policies): the env must predict the deployment whichever policy it runs.

``--ablation``: which part of the command path broke the plain-trained policy? Its success in the pipeline
env (= deployed, by the parity above) with one part at a time set back to the plain env's behaviour: no
trajectory segments (forward controller), the acceleration bound 1000x higher, the lead bound at its
maximum, the data-sheet speed (measurement only: the shipped limits stay). Rows are added to the last
results file.

    MUJOCO_GL=egl .venv/bin/python bench/parity.py [--episodes 100] [--policy P] [--plain-policy P]
    MUJOCO_GL=egl .venv/bin/python bench/parity.py --ablation --plain-policy P [--episodes 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs/experiments/demo.yaml"
SEED0 = 50_000  # goal seeds SEED0, SEED0 + 1, ... (held out from the demos' and evaluation's seeds)


def train_policy(root: Path, pipeline: bool) -> Path:
    """The demo's round-0 policy (BC, 300 steps), trained under ``root`` with or without the pipeline."""
    from ast_robot.config import load_config
    from ast_robot.run_layout import POLICY_DIR
    from ast_robot.trainers.bc import train_bc

    cfg = load_config(CONFIG, [f"env.deploy_pipeline={str(pipeline).lower()}"])
    name = "pipeline" if pipeline else "plain"
    cfg = dataclasses.replace(cfg, name=name, run_root=str(root))
    train_bc(cfg, show_progress=False)
    return root / name / POLICY_DIR


def compare(policy, pipeline: bool, episodes: int, trained: str) -> list[dict]:
    """Env vs lock-step deployment for ``episodes`` seeded goals; one row per episode."""
    from ast_robot.config import RandomizationConfig, load_config
    from ast_robot.envs import make_env
    from ast_robot.evaluation import rollout
    from ast_robot.twin.lockstep import LockstepDeployment

    cfg = load_config(CONFIG, [f"env.deploy_pipeline={str(pipeline).lower()}"])
    env = make_env(cfg.env, RandomizationConfig(enabled=False), seed=0, deploy=cfg.deploy)
    deployed = LockstepDeployment.build(policy, cfg.deploy.robot, cfg.deploy, cfg.env)
    rows = []
    for i in range(episodes):
        sim = rollout(env, policy.act, seed=SEED0 + i)
        real = deployed.run_episode(env.unwrapped.goal.copy())
        rows.append({"policy": trained, "env_pipeline": pipeline, "seed": SEED0 + i, "sim_success": bool(sim.success),
                     "deployed_success": bool(real.success), "sim_final_error_m": sim.final_error,
                     "deployed_final_error_m": real.final_error, "sim_path_m": sim.path_length,
                     "deployed_path_m": real.path_length, "sim_time_to_success_s": sim.time_to_success,
                     "deployed_time_to_success_s": real.time_to_success})  # fmt: skip
    env.close()
    return rows


def ablation(policy, episodes: int) -> list[dict]:
    """Success of ``policy`` in the pipeline env with one deployment part at a time relaxed (measurement only)."""
    from ast_robot.config import RandomizationConfig, load_config
    from ast_robot.envs import make_env
    from ast_robot.evaluation import rollout

    cfg = load_config(CONFIG)
    forward = dataclasses.replace(cfg.deploy, command_interface="forward_position")
    fast, lead = {"max_acceleration": np.full(6, 5000.0)}, {"lead_s": 0.5}
    variants = [("full deployment path", cfg.deploy, {}), ("no trajectory segments (forward controller)", forward, {}),
                ("acceleration bound x1000", cfg.deploy, fast), ("lead bound 0.5 s", cfg.deploy, lead),
                ("data-sheet speed (scale 1.0)", dataclasses.replace(cfg.deploy, max_joint_speed_scale=1.0), {}),
                ("forward + acceleration x1000 + lead 0.5 s", forward, {**fast, **lead})]  # fmt: skip
    rows = []
    for name, deploy, relaxed in variants:
        env = make_env(cfg.env, RandomizationConfig(enabled=False), seed=0, deploy=deploy)
        pipe = env.unwrapped._pipeline
        pipe.limits = pipe.safety.limits = dataclasses.replace(pipe.limits, **relaxed)
        recs = [rollout(env, policy.act, seed=SEED0 + i) for i in range(episodes)]
        rows.append({"kind": "ablation", "variant": name, "episodes": episodes,
                     "success": float(np.mean([r.success for r in recs])),
                     "path_mean_m": float(np.mean([r.path_length for r in recs])),
                     "time_to_success_mean_s": float(np.mean([r.time_to_success or 2.0 for r in recs]))})  # fmt: skip
        print(rows[-1], flush=True)
        env.close()
    return rows


def summary(rows: list[dict]) -> dict:
    agree = np.mean([r["sim_success"] == r["deployed_success"] for r in rows])
    err = np.array([abs(r["sim_final_error_m"] - r["deployed_final_error_m"]) for r in rows])
    path = np.array([abs(r["sim_path_m"] - r["deployed_path_m"]) / max(r["sim_path_m"], 1e-9) for r in rows])
    return {"agreement": float(agree), "final_error_within_1mm": float(np.mean(err <= 1e-3)),
            "path_within_5pct": float(np.mean(path <= 0.05)), "max_final_error_diff_mm": float(1e3 * err.max()),
            "sim_success": float(np.mean([r["sim_success"] for r in rows])),
            "deployed_success": float(np.mean([r["deployed_success"] for r in rows])),
            "sim_path_mean_m": float(np.mean([r["sim_path_m"] for r in rows])),
            "deployed_path_mean_m": float(np.mean([r["deployed_path_m"] for r in rows]))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--policy", default=None, help="Pipeline-trained checkpoint (default: train the demo's round 0).")
    parser.add_argument("--plain-policy", default=None, help="Checkpoint trained without the pipeline (default: train).")
    parser.add_argument("--ablation", action="store_true", help="Only the ablation, added to the last results.")
    args = parser.parse_args()
    from ast_robot.deploy.runner import load_deploy_policy

    if args.ablation:
        import json

        from bench.common import RESULTS

        last = json.loads((RESULTS / "parity.json").read_text())
        with tempfile.TemporaryDirectory(prefix="parity_bench_") as tmp:
            plain = load_deploy_policy(Path(args.plain_policy) if args.plain_policy else train_policy(Path(tmp), False))
            rows = [r for r in last["rows"] if r.get("kind") != "ablation"] + ablation(plain, args.episodes)
        notes = last["notes"] + f" Ablation (plain-trained policy, {args.episodes} goals): see the ablation rows."
        print(f"wrote {write_results('parity', rows, last['goals'], notes)}")
        return

    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="parity_bench_") as tmp:
        for name, given, pipeline in (("pipeline", args.policy, True), ("plain", args.plain_policy, False)):
            policy = load_deploy_policy(Path(given) if given else train_policy(Path(tmp), pipeline))
            rows += compare(policy, True, args.episodes, name) + compare(policy, False, args.episodes, name)
    parts = {f"{p} policy, env pipeline {'on' if e else 'off'}": summary([r for r in rows if r["policy"] == p
                                                                           and r["env_pipeline"] == e])
             for p in ("pipeline", "plain") for e in (True, False)}  # fmt: skip
    on = summary([r for r in rows if r["env_pipeline"]])
    goals = [
        goal("env (deploy_pipeline) and deployment agree on success (fraction of episodes, both policies)", 0.95,
             on["agreement"]),
        goal("final error within 1 mm (fraction of episodes)", 0.95, on["final_error_within_1mm"]),
        goal("path length within 5% (fraction of episodes)", 0.95, on["path_within_5pct"]),
    ]  # fmt: skip
    notes = (f"{args.episodes} seeded goals per part, nominal UR5e, the demo's round-0 policy trained with and "
             f"without env.deploy_pipeline ({args.policy or 'trained here'}, {args.plain_policy or 'trained here'}). "
             f"Goals over both policies in the pipeline env. Per part: {parts}. "
             f"Wall {time.perf_counter() - start:.0f} s.")  # fmt: skip
    print(notes)
    print(f"wrote {write_results('parity', rows, goals, notes)}")


if __name__ == "__main__":
    main()

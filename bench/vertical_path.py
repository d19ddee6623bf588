"""Where a pure vertical ee_delta action (xy = 0) bends through the deployment's command path (issue 20).

Each pick-and-place env with ``env.deploy_pipeline`` runs the node's 125 Hz path: the action map integrates the
TCP target and takes one IK step, the safety filter limits the joint step, the forward position / trajectory
controller tracks it. Per tick this probe takes the TCP position of each stage: the integrated TCP target, the
IK's answer (FK), the safety filter's command (FK) and the measured joints (FK), and reports each stage's largest
sideways distance from the start (mm) plus the measured drift at the end. Two probes per table:

- ``home``: 5 steps of rest at home, then 8 steps of z = -0.5 (~100 mm down);
- ``near``: down to ~5 mm above the table, 10 steps of rest, then 6 steps of z = +0.6 (a release's lift);
- ``release``: down to ~30 mm above the table (where the pixel student releases), 2 steps of rest, 4 of z = +0.5.

``--per-joint`` rebuilds the filter as main had it (each joint clipped on its own, ``keep_direction`` off): the
before of the same checkout.

    .venv/bin/python bench/vertical_path.py --label after [--per-joint] --name vertical_path
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "experiments"
SEEDS = tuple(range(2003000, 2003008))
STAGES = ("target", "ik", "command", "measured")


def make(robot: str, keep_direction: bool) -> Any:
    """The robot's pixel pick-and-place env (deploy pipeline; no renders) whose filter keeps direction or not."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.robot.safety import SafetyLimits

    cfg = load_config(CONFIGS / f"pickplace_{robot}_pixels_bc.yaml")
    cfg.env.camera, cfg.env.wrist_camera, cfg.env.observation = False, False, "privileged"
    env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
    pipe = env.unwrapped._pipeline
    pipe._limits.clear()
    pipe._declared = lambda lat: pipe._limits.setdefault(
        lat, SafetyLimits.from_robot(pipe.robot, pipe.deploy_cfg, lat, keep_direction=keep_direction))
    return env


def instrument(env: Any, log: list[dict]) -> None:
    """Record each tick's stages into ``log`` (the pipeline's own objects, wrapped: after every reset)."""
    u = env.unwrapped
    pipe, fk = u._pipeline, (lambda q: u._ik.forward(q)[0].copy())
    action_map, safety = pipe.action_map, pipe.safety
    state: dict = {}

    def mapped(action: np.ndarray, q_ref: np.ndarray, q: np.ndarray | None = None) -> np.ndarray:
        target = type(action_map).__call__(action_map, action, q_ref, q)
        state.update(target=action_map.ee_cmd.copy(), ik=fk(target), measured=fk(q if q is not None else q_ref))
        return target

    def filtered(target: np.ndarray, now_s: float) -> Any:
        decision = type(safety).filter(safety, target, now_s)
        log.append(dict(state, command=fk(decision.positions), reasons=decision.reasons or (decision.kind,)))
        return decision

    pipe.action_map = _Calls(action_map, mapped)  # the pipeline calls self.action_map(...)
    safety.filter = filtered


class _Calls:
    """``obj`` whose call goes to ``fn`` (attributes read through to ``obj``)."""

    def __init__(self, obj: Any, fn: Any) -> None:
        self._obj, self._fn = obj, fn

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)


def act(z: float) -> np.ndarray:
    return np.array([0.0, 0.0, z, 1.0], dtype=np.float32)


def probe(env: Any, seed: int, mode: str) -> dict:
    """One table's probe (module docstring): per-stage sideways reach, drift and rise (mm), filter reasons."""
    u = env.unwrapped
    env.reset(seed=seed)
    if mode in ("near", "release"):
        floor = 0.05 if mode == "near" else 0.075  # TCP z (m): ~5 / ~30 mm of finger above the table
        for _ in range(80):
            if u.tcp_pos[2] < floor:
                break
            env.step(act(-0.5 if u.tcp_pos[2] > floor + 0.07 else -0.15))
        rest, z, steps = (10, 0.6, 6) if mode == "near" else (2, 0.5, 4)
    else:
        rest, z, steps = 5, -0.5, 8
    for _ in range(rest):
        env.step(act(0.0))
    log: list[dict] = []
    instrument(env, log)
    start = u.tcp_pos.copy()
    for _ in range(steps):
        env.step(act(z))
    moved = (u.tcp_pos - start) * 1000
    reasons: dict[str, int] = {}
    for row in log:
        for why in row["reasons"]:
            reasons[why] = reasons.get(why, 0) + 1
    side = {s: round(float(max(np.linalg.norm(r[s][:2] - start[:2]) for r in log) * 1000), 2) for s in STAGES}
    return {"seed": seed, "mode": mode, "start_z_mm": round(float(start[2] * 1000), 1),
            "rise_mm": round(float(moved[2]), 1), "drift_mm": round(float(np.linalg.norm(moved[:2])), 2),
            "sideways_mm": side, "filter_reasons": reasons}  # fmt: skip


def robot_rows(robot: str, label: str, keep_direction: bool, seeds: tuple = SEEDS) -> list[dict]:
    rows = []
    for mode in ("home", "near", "release"):
        start, tables = time.perf_counter(), []
        for seed in seeds:
            tables.append(probe(make(robot, keep_direction), seed, mode))
        drift = [t["drift_mm"] for t in tables]
        rows.append({"label": label, "robot": robot, "mode": mode, "keep_direction": keep_direction,
                     "max_drift_mm": max(drift), "median_drift_mm": float(np.median(drift)),
                     "still_tables": sum(abs(t["rise_mm"]) < 2.0 for t in tables),
                     "max_sideways_by_stage_mm": {s: max(t["sideways_mm"][s] for t in tables) for s in STAGES},
                     "tables": tables, "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
    return rows


def expert_row(robot: str, label: str, keep_direction: bool, seeds: int = 20) -> dict:
    """The scripted expert (privileged, no DART noise) through the same env, seeds 0..seeds-1 in one env in that
    order (bench/fr3_overspeed.py's expert_actions rows): success and the step of first success per seed."""
    from ast_robot.envs.demos import run_episode
    from ast_robot.envs.experts import expert_for

    env, start, first = make(robot, keep_direction), time.perf_counter(), []
    expert = expert_for(env)
    for seed in range(seeds):
        hit = run_episode(env, expert, seed)["is_success"]
        first.append(int(np.argmax(hit)) + 1 if hit.any() else None)
    done = [f for f in first if f is not None]
    return {"label": label, "robot": robot, "kind": "expert", "keep_direction": keep_direction, "episodes": seeds,
            "successes": len(done), "mean_first_success_step": round(float(np.mean(done)), 2) if done else None,
            "first_success_steps": first, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True)
    ap.add_argument("--per-joint", action="store_true", help="the filter as main had it (keep_direction off)")
    ap.add_argument("--name", default="vertical_path")
    ap.add_argument("--robots", default="fr3,ur5e")
    ap.add_argument("--experts", action="store_true", help="also the scripted expert, seeds 0-19, per robot")
    args = ap.parse_args()
    rows = []
    for robot in args.robots.split(","):
        rows += robot_rows(robot, args.label, not args.per_joint)
        if args.experts:
            rows.append(expert_row(robot, args.label, not args.per_joint))
    goals = []
    for r in rows:
        if r.get("kind") == "expert":
            goals.append(goal(f"{r['robot']}: scripted expert successes of 20", 20, r["successes"], ">="))
            continue
        bound = 8.0 if r["mode"] != "near" else 12.0
        goals.append(goal(f"{r['robot']} {r['mode']}: max sideways drift (mm) of a pure vertical command",
                          bound, r["max_drift_mm"], "<="))  # fmt: skip
        goals.append(goal(f"{r['robot']} {r['mode']}: tables that do not move", 0, r["still_tables"], "<="))
    notes = ("Pure vertical ee_delta actions (xy = 0, gripper open) through the pick-and-place env's deploy pipeline, "
             "seeds 2003000-2003007; sideways_mm per stage: target (integrated TCP target), ik (FK of the IK step), "
             "command (FK of the safety filter's output), measured (FK of the joints), each from the measured start: the "
             "target's own wander is the randomized action noise (and, near the table, where the target already "
             "stood off the arm the descent had bent). --per-joint: main's filter (each joint clipped on its own).")
    print(write_results(args.name, rows, goals, notes))


if __name__ == "__main__":
    main()

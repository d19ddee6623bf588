"""Simulation throughput of every env (issue 3, deliverable 5).

For each env id, in one process, alternating windows of equal work (so background load hits both
alike): env steps/s through ``gymnasium.make`` with random actions (no rendering), raw ``mj_step``
steps/s of the env's own model from the state the env reached, and (every 8th window) env steps/s with
the 64x64 camera observation; the envs take turns window by window. Then ReachUR5e in gymnasium's
AsyncVectorEnv with 1 and 2 worker processes. Writes `bench/results/sim_throughput.json`.

    MUJOCO_GL=egl .venv/bin/python bench/sim_throughput.py [--windows 60] [--window 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

import ast_robot  # noqa: E402,F401
from bench.common import goal, write_results  # noqa: E402

IDS = (
    "ast_robot/ReachUR5e-v0",
    "ast_robot/ReachFR3-v0",
    "ast_robot/PickPlaceUR5e-v0",
    "ast_robot/PickPlaceFR3-v0",
)
# Rows: label -> (env id, env config). The joint_delta row runs no IK: beside ReachUR5e it shows the IK's share.
CASES = {
    **{env_id: (env_id, {}) for env_id in IDS},
    "ast_robot/ReachUR5e-v0 joint_delta actions (no IK)": (
        "ast_robot/ReachUR5e-v0",
        {"action_mode": "joint_delta"},
    ),
}


def _timed(fn: Callable[[], object]) -> dict[str, float]:
    """Seconds that ``fn()`` took on the wall clock and in this thread's CPU time.

    CPU time leaves out the time other processes held the core, so on a shared machine it still
    tells the cost per core; the wall clock is what a caller waited.
    """
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return {"cpu": time.thread_time() - cpu, "wall": time.perf_counter() - wall}


def env_window(env: gym.Env, steps: int, seed: int) -> dict[str, float]:
    """Env steps/s (cpu, wall) over the first ``steps`` steps of an episode, uniform random actions."""
    assert steps <= env.unwrapped.cfg.max_episode_steps, "a window must not span a reset"
    env.reset(seed=seed)  # not timed
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)

    def run() -> None:
        for action in actions:
            env.step(action)

    return {clock: steps / seconds for clock, seconds in _timed(run).items()}


def raw_window(env: gym.Env, data: mujoco.MjData, steps: int) -> dict[str, float]:
    """``mj_step`` calls/s (cpu, wall) of the env's own model from the env's current state, one C loop."""
    model, source = env.unwrapped.model, env.unwrapped.data
    data.qpos[:], data.qvel[:], data.ctrl[:] = source.qpos, source.qvel, source.ctrl
    run = lambda: mujoco.mj_step(model, data, nstep=steps)  # noqa: E731
    return {clock: steps / seconds for clock, seconds in _timed(run).items()}


def measure_envs(
    cases: dict[str, tuple[str, dict]], windows: int, window: int, with_camera: bool = True
) -> list[dict]:
    """One result row per case (label -> env id, env config): raw physics, plain env and camera env rates.

    Env steps and raw physics alternate in windows of equal work (``window`` env steps, then
    ``window * substeps`` mj_steps from the state the env reached), so load from other processes falls on
    both alike, and the envs take turns window by window, so a burst of load cannot spoil one env's
    figures. The best window of each is the least disturbed; the medians show the spread. The camera is
    measured for the registered ids with their default config.
    """
    plain = {label: gym.make(env_id, config=cfg) for label, (env_id, cfg) in cases.items()}
    camera = {label: gym.make(env_id, config={"camera": True})
              for label, (env_id, cfg) in cases.items() if with_camera and not cfg}  # fmt: skip
    data = {label: mujoco.MjData(env.unwrapped.model) for label, env in plain.items()}
    raw, fast, cam = ({label: [] for label in cases} for _ in range(3))
    for w in range(windows):
        for label, env in plain.items():
            fast[label].append(env_window(env, window, seed=w))
            raw[label].append(raw_window(env, data[label], window * env.unwrapped.n_substeps))
            if label in camera and w % 8 == 0:  # rendering is far slower than physics: fewer windows
                cam[label].append(env_window(camera[label], window, seed=w))
    for env in camera.values():
        env.close()
    return [
        _row(label, plain[label].unwrapped.n_substeps, raw[label], fast[label], cam[label]) for label in cases
    ]


def _row(env_id: str, n_sub: int, raw: list[dict], fast: list[dict], cam: list[dict]) -> dict:
    row: dict = {"env": env_id, "substeps": n_sub}
    for clock in ("cpu", "wall"):
        raw_c, env_c = [r[clock] for r in raw], [f[clock] for f in fast]
        row[f"raw_mj_step_per_s_{clock}"], row[f"env_steps_per_s_{clock}"] = max(raw_c), max(env_c)
        row[f"physics_fraction_{clock}"] = max(env_c) * n_sub / max(raw_c)
        row[f"physics_fraction_{clock}_median"] = float(np.median(env_c)) * n_sub / float(np.median(raw_c))
        # time per env step beyond its physics (us): the Python work that the overhead goal is about
        row[f"overhead_us_per_step_{clock}"] = 1e6 * (1 / max(env_c) - n_sub / max(raw_c))
        row[f"env_steps_per_s_camera64_{clock}"] = max(c[clock] for c in cam) if cam else None
    return row


def vector_rate(workers: int, steps: int) -> float:
    """Total env steps/s of ReachUR5e in an AsyncVectorEnv with ``workers`` processes."""
    fns = [lambda: gym.make("ast_robot/ReachUR5e-v0") for _ in range(workers)]
    venv = gym.vector.AsyncVectorEnv(fns, context="spawn")
    venv.reset(seed=0)
    venv.action_space.seed(0)
    for _ in range(20):  # warm-up
        venv.step(venv.action_space.sample())
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(venv.action_space.sample())
    rate = steps * workers / (time.perf_counter() - start)
    venv.close()
    return rate


def main() -> None:
    """Measure every env and the vector envs, then write the results with their goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=60, help="Measurement windows per env.")
    parser.add_argument("--window", type=int, default=50, help="Env steps per window (one episode).")
    parser.add_argument("--vector-steps", type=int, default=300, help="Steps of each vector env run.")
    parser.add_argument("--no-camera", action="store_true", help="Skip the camera runs (no OpenGL).")
    parser.add_argument(
        "--name", default="sim_throughput", help="Result file name (bench/results/<name>.json)."
    )
    parser.add_argument("--out-dir", default=None, help="Folder for the results (default bench/results).")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = measure_envs(CASES, args.windows, args.window, not args.no_camera)
    for workers in (1, 2):
        rows.append({"env": f"ast_robot/ReachUR5e-v0 AsyncVectorEnv x{workers}",
                     "env_steps_per_s_wall": vector_rate(workers, args.vector_steps)})  # fmt: skip
    for row in rows:
        print(row, flush=True)
    goals = []
    for row in rows[: len(IDS)]:  # goals on CPU time: the cost per core, whatever else the machine ran
        name = row["env"].split("/")[1]
        goals.append(
            goal(f"{name}: env steps/s x substeps / raw mj_step/s", 0.85, row["physics_fraction_cpu"])
        )
        goals.append(goal(f"{name}: env steps/s with 64x64 camera", 100, row["env_steps_per_s_camera64_cpu"]))
        if "Reach" in name:
            goals.append(
                goal(f"{name}: env steps/s per core, no rendering", 1500, row["env_steps_per_s_cpu"])
            )
    cores = os.cpu_count() or 1
    notes = (f"One process (one core) for all envs. Per env, {args.windows} alternating windows of "
             f"{args.window} env steps and {args.window} x substeps raw mj_steps (from the state the env reached), "
             "the envs taking turns window by window, and a camera window every 8th; "
             "rates are the best window of each (the least disturbed by other processes). Each window is timed "
             "in this thread's CPU time (_cpu: the cost per core, without the time other processes held the "
             "core; the goals use it) and on the wall clock (_wall). "
             f"1-min load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end, on a {cores}-core "
             "machine: a load above the core count means other jobs shared the cores and absolute rates are "
             "lower than on an idle machine; the physics fraction compares rates taken under the same load. "
             "overhead_us_per_step is the env step's time beyond its physics: the action mapping (TCP target, "
             "one damped-least-squares IK iteration with its kinematics, joint limits: one numba-compiled call, "
             "ast_robot.robot.kernels), observation, reward and info assembly. The joint_delta row "
             "is ReachUR5e with joint-position-delta actions, which run no IK: beside the ReachUR5e row it shows "
             "the IK's share of that overhead.")  # fmt: skip
    out_dir = Path(args.out_dir) if args.out_dir else None
    print(write_results(args.name, rows, goals, notes, out_dir=out_dir))


if __name__ == "__main__":
    main()

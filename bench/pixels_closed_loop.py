"""Perception error of `two_stage` pixel students along their OWN episodes, by phase (issue 20).

Held-out scenes (bench/pixels_perception.py, bench/pixels_wrist.py) pose the arm at random; a student's own
episodes visit other states (a closing gripper, a carried cube). For each ``--run LABEL=RUN_DIR``, on the
evaluation's held-out seeds (the trainer's: config seed + 2e6 + i, the first ``--episodes``): at every step the
named cube's estimated offset from the TCP minus the true one (cm, mean absolute per world axis x, y, z) in
two phases: ``approach`` (the cube within ``NEAR`` of the TCP, not lifted) and ``carry`` (lifted >= 1 cm);
for a wrist student also its scene camera's and its wrist camera's own estimates; and the episodes' success.
The null case (the estimate "cube at the TCP") is a row of each run.

    .venv/bin/python bench/pixels_closed_loop.py --run wrist=/tmp/px5/wrist_ur5e_w --episodes 20
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import goal, write_results  # noqa: E402

NEAR, LIFTED = 0.06, 0.01  # m


@torch.no_grad()
def estimates(policy: object, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The cube's estimated offset from the TCP (cm): fused (or the only one), and scene / wrist for a wrist student."""
    from ast_robot.policies.policy import AUX_SCALE

    b = {k: torch.as_tensor(v)[None] for k, v in obs.items()}
    fused, _, wrist = policy.perceive_all(b)
    out = {"estimate": fused[0, :3].numpy() * 10, "null": np.zeros(3)}
    if wrist is not None:
        tcp = AUX_SCALE * b["observation"][:, policy.tcp].float()
        out["scene"] = policy.perception(b["camera"], b["instruction"], tcp)[0][0, :3].numpy() * 10
        out["wrist"] = wrist[0][0, :3].numpy() * 10
    return out


def run_errors(run: Path, episodes: int) -> tuple[dict[str, dict[str, list]], int]:
    """{phase: {estimate kind: [abs error (3,) per step]}} and the successes."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import PolicyBase
    from ast_robot.run_layout import POLICY_DIR

    policy = PolicyBase.load(run / POLICY_DIR)
    cfg = load_config(run / "config.yaml")
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed)
    u, out, successes = env.unwrapped, {"approach": {}, "carry": {}}, 0
    for i in range(episodes):
        obs, info = env.reset(seed=cfg.seed + 2_000_000 + i)
        k, done = u.target_object, False
        z0 = float(u.object_pos(k)[2])
        while not done:
            true = (u.object_pos(k) - obs["observation"][policy.tcp]) * 100
            lifted = u.object_pos(k)[2] - z0 > LIFTED
            phase = "carry" if lifted else ("approach" if np.linalg.norm(true) < NEAR * 100 else None)
            if phase:
                for kind, est in estimates(policy, obs).items():
                    out[phase].setdefault(kind, []).append(np.abs(est - true))
            obs, _, terminated, truncated, info = env.step(np.asarray(policy.act(obs), dtype=np.float64))
            done = terminated or truncated
        successes += bool(info["is_success"])
    env.close()
    return out, successes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, metavar="LABEL=RUN_DIR")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--name", default="pixels_closed_loop")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows, goals = [], []
    for item in args.run:
        label, path = item.split("=", 1)
        errors, successes = run_errors(Path(path), args.episodes)
        for phase, kinds in errors.items():
            for kind, e in kinds.items():
                rows.append({"label": label, "run": path, "phase": phase, "estimate": kind, "steps": len(e),
                             "cube_mean_cm": [round(float(x), 2) for x in np.mean(e, 0)],
                             "success": f"{successes}/{args.episodes}"})  # fmt: skip
        # instrument check on the approach (while carrying, "the cube is at the TCP" is nearly true by itself)
        got = {r["estimate"]: max(r["cube_mean_cm"]) for r in rows if r["label"] == label and r["phase"] == "approach"}
        if "null" in got:
            goals.append(goal(f"{label} approach: estimate beats the null (cm, worst axis: null minus estimate)",
                              0.0, round(got["null"] - got["estimate"], 2), ">"))  # fmt: skip
    load = os.getloadavg()
    notes = (f"{args.episodes} held-out episodes per run (the evaluation's seeds); approach: cube within {NEAR * 100:.0f} cm "
             f"of the TCP and not lifted; carry: lifted >= {LIFTED * 100:.0f} cm. One torch thread; loadavg "
             f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} at write.")  # fmt: skip
    write_results(args.name, rows, goals, notes)
    for r in rows:
        print(r["label"], r["phase"], r["estimate"], r["steps"], r["cube_mean_cm"], r["success"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

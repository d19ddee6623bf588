"""System identification against the twin: is the hidden culprit ranked first and its value found?

For each hidden-parameter twin (one or two parameters perturbed outside the initial randomization
ranges) and several seeds: drive the twin (ast_robot.twin.sim.TwinSim, the stand-in real robot) with
smooth random joint-position commands, record the episodes as real EpisodeRecords, then fit the
randomized parameters with ast_robot.gap.sysid (MuJoCo replay, default GapConfig) and retune.

Issue 8 goal measured here: a true culprit ranked first in >= 90% of trials with its value estimated
within 15%. (The loop goals of bench/sim2real.py need training and are not measured here.)

    MUJOCO_GL=egl .venv/bin/python bench/gap_sysid.py [--seeds 3] [--episodes 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ast_robot.config.gap import GapConfig  # noqa: E402
from ast_robot.config.randomization import DistributionConfig, RandomizationConfig  # noqa: E402
from ast_robot.gap.outcomes import EpisodeRecord  # noqa: E402
from ast_robot.gap.pipeline import search_ceilings  # noqa: E402
from ast_robot.gap.replay import MujocoReplay  # noqa: E402
from ast_robot.gap.retune import retune  # noqa: E402
from ast_robot.gap.sysid import fit, space_from_randomization, trajectory_loss  # noqa: E402
from ast_robot.twin.hidden import HiddenParams  # noqa: E402
from ast_robot.twin.sim import TwinSim  # noqa: E402
from bench.common import goal, write_results  # noqa: E402

CONTROL_DT = 0.04  # s (25 Hz, the env's control rate)
# The initial (training) ranges; every hidden value below lies outside them.
INITIAL = RandomizationConfig(params={
    "actuator_gain": DistributionConfig(low=0.9, high=1.1),
    "joint_damping": DistributionConfig(low=0.8, high=1.2),
    "link_mass": DistributionConfig(low=0.9, high=1.1),
    "payload": DistributionConfig(low=0.0, high=0.5),
    "latency": DistributionConfig(low=0.0, high=0.49),  # control steps, rounded: training never saw a delay
})  # fmt: skip
# (name, twin hidden parameters, the same perturbation in randomization terms)
SCENARIOS = [
    ("gain x0.6", {"gain_scale": 0.6}, {"actuator_gain": 0.6}),
    ("damping x4", {"damping_scale": 4.0}, {"joint_damping": 4.0}),
    ("link mass x1.6", {"mass_scale": 1.6}, {"link_mass": 1.6}),
    ("payload 3 kg", {"payload_kg": 3.0}, {"payload": 3.0}),
    ("latency 80 ms", {"latency_s": 0.08}, {"latency": 2.0}),
    (
        "gain x0.7 + payload 2 kg",
        {"gain_scale": 0.7, "payload_kg": 2.0},
        {"actuator_gain": 0.7, "payload": 2.0},
    ),
    ("mass x1.5 + latency 40 ms", {"mass_scale": 1.5, "latency_s": 0.04}, {"link_mass": 1.5, "latency": 1.0}),
]


def twin_episodes(hidden: dict, seed: int, n: int, steps: int = 50) -> list[EpisodeRecord]:
    """Drive the twin with smooth random joint targets (<= 1 rad/s) and record what it measured."""
    twin = TwinSim("ur5e", HiddenParams(**hidden), seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        twin.reset()
        q0 = twin.joint_state()[0]
        targets = q0 + np.cumsum(rng.uniform(-0.04, 0.04, (steps, q0.size)), axis=0)  # (T, J)
        qs = [q0]
        for t in range(steps):
            twin.command_positions(targets[t])
            twin.step_to((t + 1) * CONTROL_DT)
            qs.append(twin.joint_state()[0])
        out.append(EpisodeRecord(robot="ur5e", task="reach", seed=seed * 100 + k, source="real", success=False,
                                 final_error=0.1, time_to_success=None, path_length=0.0, max_joint_velocity=1.0,
                                 control_dt=CONTROL_DT, actions=np.zeros((steps, 3)), joint_positions=np.array(qs),
                                 joint_targets=targets))  # fmt: skip
    return out


def trial(sim: MujocoReplay, scenario: tuple, seed: int, episodes: int, cfg: GapConfig) -> dict:
    name, hidden, truth = scenario
    real = twin_episodes(hidden, seed, episodes)
    space = space_from_randomization(INITIAL, cfg.search_expansion, ceilings=search_ceilings("ur5e"))
    start = time.perf_counter()
    res = fit(sim, real, space, cfg, seed=seed)
    wall = time.perf_counter() - start
    est = res.estimate()
    first = res.ranking[0]
    rel = abs(est[first] - truth[first]) / abs(truth[first]) if first in truth else None
    at_truth = trajectory_loss(sim, truth, real[: cfg.max_replay_episodes])  # 0 if sim can mimic the twin
    new = retune(INITIAL, res, cfg)
    inside = all(new.params[n].low <= v <= new.params[n].high for n, v in truth.items())
    return {"scenario": name, "seed": seed, "ranked_first": first, "culprit_first": first in truth,
            "estimate": round(est[first], 4), "truth": truth.get(first), "rel_error": rel,
            "ok": first in truth and rel is not None and rel <= 0.15, "retuned_contains_truth": inside,
            "mse_nominal": res.loss_nominal, "mse_fit": res.loss_fit, "mse_at_truth": at_truth, "fit_s": round(wall, 2),
            "fit": {n: round(v, 4) for n, v in est.items()}}  # fmt: skip


_SIM: MujocoReplay | None = None


def _run(job: tuple[int, int, int]) -> dict:
    """One trial in a worker process (each worker loads its own replay model once)."""
    global _SIM
    if _SIM is None:
        _SIM = MujocoReplay("ur5e", "reach")
    index, seed, episodes = job
    return trial(_SIM, SCENARIOS[index], seed, episodes, GapConfig())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=4, help="Real (twin) episodes per trial.")
    parser.add_argument("--workers", type=int, default=2, help="Trials run in parallel processes.")
    args = parser.parse_args()
    cfg = GapConfig()
    jobs = [(i, seed, args.episodes) for i in range(len(SCENARIOS)) for seed in range(args.seeds)]
    rows = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for r in pool.map(_run, jobs):
            rows.append(r)
            print(f"{r['scenario']:<28} seed {r['seed']}: first={r['ranked_first']:<14} est={r['estimate']:<8} "
                  f"truth={r['truth']} ok={r['ok']} inside={r['retuned_contains_truth']} ({r['fit_s']} s)", flush=True)  # fmt: skip
    ok = float(np.mean([r["ok"] for r in rows]))
    inside = float(np.mean([r["retuned_contains_truth"] for r in rows]))
    goals = [goal("true culprit ranked first with its value within 15% (fraction of trials)", 0.9, ok)]
    notes = (f"{len(SCENARIOS)} hidden-parameter twins x {args.seeds} seeds, {args.episodes} twin episodes each "
             f"(50 steps at 25 Hz, random joint-position commands), GapConfig defaults ({cfg.cem_iterations} CEM "
             f"iterations x {cfg.cem_population}). Retuned range contains every hidden value in {inside:.0%} of trials. "
             "mse_at_truth is the replay error with the twin's true perturbation written in randomization terms: "
             "0 means the training simulator can reproduce the twin exactly; > 0 means the twin's perturbation "
             "is not the same physics as the randomization parameter of that name (then no fit can be exact). "
             "The twin's controller compensates only the nominal weight (as a real arm's does) and holds its "
             "payload at the TCP, as the env's link_mass and payload do; its payload is a 4 cm sphere where "
             "the env's is a point mass, hence the small mse_at_truth of payload twins. The fit is CEM, then a "
             "+-1 step check of integer parameters (latency), then bounded least squares on the rest "
             "(GapConfig.polish_evaluations); the search box reaches 5 steps past the prior's largest delay "
             "and the rated payload (5 kg). Friction is not among the culprits: a reach arm in free space "
             "makes no contact, so joint trajectories carry no information about it. Other engineers may use "
             f"the 2 cores during the run (see loadavg; {args.workers} trials ran in parallel), so fit_s is inflated.")  # fmt: skip
    path = write_results("gap_sysid", rows, goals, notes)
    print(f"wrote {path}; culprit first and within 15%: {ok:.0%}; retuned range contains truth: {inside:.0%}")


if __name__ == "__main__":
    main()

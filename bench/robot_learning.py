"""Robot learning (issue 6, deliverable 4): SAC+HER on reach, gated vs ungated replay, BC on pick-place.

Parts (``--parts``, all by default):

* ``reach_sac``: Reach UR5e and Reach FR3 under the default randomization, SB3 SAC+HER (ungated;
  configs/experiments/reach_<robot>.yaml: MLP 64x64, lr 1e-3, normalized observations), ``--env-steps`` env steps, then the saved ``sac.zip`` reloaded (as `ast-robot eval` does) and
  evaluated on ``--final-episodes`` held-out randomized episodes with a 95% Wilson interval. Goal >= 0.95.
* ``gated``: Reach UR5e (``--gated-robots``), ungated vs gated SAC+HER (vs a random-score gate, the honest
  control), same network, buffer and seed, run side by side (one process per arm, one core each). Every
  ``--eval-every`` env steps ``--eval-episodes`` fixed randomized episodes; the training wall-clock
  (evaluation excluded) and the gradient steps at the first evaluation >= 90% success are compared.
  The gated arms use the reach config's gated settings (2 candidate batches per step scored from the TD signals
  stored by their last update, temperature and target critics on every scheduled step).
  Goals: gated <= 0.7x the ungated wall-clock and <= 50% of its gradient steps.
* ``pickplace_bc``: PickPlace UR5e and FR3, behaviour cloning of the sparse multimodal policy (state +
  64x64 camera + instruction) from ``--demos`` scripted-expert demonstrations (successful ones kept),
  ungated and gated; evaluated on ``--final-episodes`` held-out randomized episodes. Goal >= 0.8 each.
* ``pixels`` (issue 20): PickPlace from pixels and language (configs/experiments/pickplace_<robot>_pixels_bc.yaml:
  the deploy layout, 2 cubes, 2 pads, physical + visual randomization), BC from ``--pixel-demos ROBOT=DIR``
  (``ast-robot demos collect --observation deploy --visual ...``, DAgger folders included), or the trained run
  ``--pixel-run ROBOT=DIR`` evaluated as it is. Each policy runs the same ``--final-episodes`` held-out seeds
  under four input conditions (ast_robot/envs/ablations.py): as given, instruction swapped to name the
  other cube, instruction blanked, camera blanked; task success and instruction-following (the cube picked
  is the one named) are reported apart. Goals: success >= 0.8, following >= 0.95 (as given and swapped),
  blank instruction <= 0.6, blank camera <= 0.1, act() p99 <= 8 ms (one thread), training <= 2400 s.
  Its gated / random arms (``--pixel-arms``) score every sample by a forward (``forward_all``: n + k
  forwards, k backwards; the random arm pays that forward too) and keep about, not exactly, the same k (each
  arm's own PI gate), in separate processes; issue 20's gated-vs-ungated-vs-random comparison is
  bench/robot_learning_pixels_gated.py (stale scores, exact backward budget, arms in lockstep, curves).

Jobs run in ``--jobs`` worker processes (default 2, one torch thread each), the gated pairs first so
their arms share the machine alike. Results are rewritten after every finished job, so an interrupted run
keeps what it measured; ``--merge`` combines result files of parts run separately (later files and this
run's jobs win for the same job).

    MUJOCO_GL=egl .venv/bin/python bench/robot_learning.py                      # all parts (~25 min, 2 cores)
    MUJOCO_GL=egl .venv/bin/python bench/robot_learning.py --smoke --jobs 1     # tiny budgets: checks the script
    .venv/bin/python bench/robot_learning.py --parts gated --name robot_learning_gated
    .venv/bin/python bench/robot_learning.py --merge bench/results/robot_learning_gated.json \\
        bench/results/robot_learning_bc.json                                    # -> robot_learning.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

from bench.common import goal, write_results  # noqa: E402

EXPERIMENTS = ROOT / "configs/experiments"  # reach_<robot>.yaml, pickplace_<robot>_bc.yaml
PARTS = ("reach_sac", "gated", "pickplace_bc", "pixels")
ROBOTS = {"ur5e": "UR5e", "fr3": "FR3"}  # config name -> env id spelling
SAC_ARMS = ("ungated", "gated", "random")
BC_ARMS = ("ungated", "gated")
PIXEL_ARMS = ("ungated", "gated", "random")
REACHED = 0.9  # success rate that counts as "reached" for the time-to-success comparison
# Significance of each SAC arm: TD error + critic disagreement, or uniform noise (same gates, same rates).
SAC_WEIGHTS = {"gated": "{loss: 1.0, uncertainty: 0.5}", "random": "{random: 1.0}"}


@dataclass(frozen=True)
class Job:
    kind: str  # "sac" (reach), "bc" (pick-place) or "px" (pick-place from pixels and language)
    robot: str  # "ur5e" or "fr3"
    arm: str  # "ungated", "gated" or "random"

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.robot}/{self.arm}"


def plan(args: argparse.Namespace) -> list[Job]:
    """Jobs of the chosen parts, the gated pairs first (timed side by side), each job once."""
    jobs: list[Job] = []
    if "gated" in args.parts:
        jobs += [Job("sac", robot, arm) for robot in args.gated_robots for arm in args.gated_arms]
    if "reach_sac" in args.parts:
        jobs += [Job("sac", robot, "ungated") for robot in ROBOTS]
    if "pickplace_bc" in args.parts:
        jobs += [Job("bc", robot, arm) for robot in args.bc_robots for arm in args.bc_arms]
    if "pixels" in args.parts:
        jobs += [Job("px", robot, arm) for robot in args.pixel_robots for arm in args.pixel_arms]
    return list(dict.fromkeys(jobs))  # reach_sac's ungated UR5e run is the gated part's baseline


# ------------------------------------------------------------------------------------------- configs
def sac_config(job: Job, args: argparse.Namespace) -> Any:
    """SB3 SAC+HER on Reach<robot>: configs/experiments/reach_<robot>.yaml plus this run's budgets."""
    from ast_robot.config import load_config

    gated = job.arm != "ungated"
    overrides = [
        f"name=sac_{job.robot}_{job.arm}", f"run_root={args.run_root}", f"seed={args.seed}",
        f"train.steps={args.env_steps}", f"train.eval_every={args.eval_every}",
        f"train.eval_episodes={args.eval_episodes}", "train.device=cpu", f"gate.enabled={str(gated).lower()}",
        f"gate.sac.step_rate={args.step_rate}", f"gate.target_rate={args.sample_rate}",
    ]  # fmt: skip
    if args.sac_batch is not None:
        overrides.append(f"train.batch_size={args.sac_batch}")
    if args.learning_starts is not None:
        overrides.append(f"train.learning_starts={args.learning_starts}")
    if gated:
        overrides.append(f"significance.weights={SAC_WEIGHTS[job.arm]}")
    return load_config(EXPERIMENTS / f"reach_{job.robot}.yaml", overrides)


def bc_config(job: Job, args: argparse.Namespace) -> Any:
    """BC on PickPlace<robot>: configs/experiments/pickplace_<robot>_bc.yaml plus this run's budgets."""
    from ast_robot.config import load_config

    overrides = [
        f"name=bc_{job.robot}_{job.arm}", f"run_root={args.run_root}", f"seed={args.seed}",
        f"train.steps={args.bc_steps}", f"train.n_demos={args.demos}", f"train.eval_episodes={args.final_episodes}",
        "train.device=cpu", f"gate.enabled={str(job.arm == 'gated').lower()}", "train.log_every=100000",
        f"gate.target_rate={args.bc_gate_rate}",
    ]  # fmt: skip
    if job.arm == "gated":
        overrides += args.bc_gated_set
    return load_config(EXPERIMENTS / f"pickplace_{job.robot}_bc.yaml", overrides)


# ---------------------------------------------------------------------------------------------- jobs
def run_job(job: Job, args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate one job in this (worker) process; returns its result row."""
    import torch

    torch.set_num_threads(args.threads)
    load_start, start = os.getloadavg()[0], time.perf_counter()
    row = {"sac": run_sac, "bc": run_bc, "px": run_pixels}[job.kind](job, args)
    task = {"sac": "reach", "bc": "pickplace", "px": "pickplace_pixels"}[job.kind]
    return {"key": job.key, "task": task, "robot": job.robot,
            "arm": job.arm, **row, "job_wall_s": round(time.perf_counter() - start, 1),
            "loadavg_start": round(load_start, 2), "loadavg_end": round(os.getloadavg()[0], 2)}  # fmt: skip


def run_sac(job: Job, args: argparse.Namespace) -> dict[str, Any]:
    from ast_robot.run_layout import sac_checkpoint
    from ast_robot.trainers import TRAINERS
    from ast_robot.trainers.common import evaluate_run, load_actor
    from ast_robot.trainers.sac import first_reaching

    cfg = sac_config(job, args)
    metrics = TRAINERS.get("sac")(cfg, None)
    run_dir = Path(cfg.run_root) / cfg.name
    # The saved models, reloaded as `ast-robot eval` does: the figures are those of the artefacts users get.
    # `success` is what `ast-robot eval` evaluates (the best periodic evaluation's model when kept).
    evals = {}
    for which in ("final", "auto"):
        evals[which] = evaluate_run(cfg, run_dir, load_actor(cfg, run_dir, which), episodes=args.final_episodes)
        evals[which]["by_latency"] = latency_split(run_dir)
        evals[which]["checkpoint"] = sac_checkpoint(run_dir, which)[1]
    final, last = evals["auto"], evals["final"]
    history = metrics["history"]
    hit = first_reaching(history, REACHED) or {}
    gate = metrics["gate"]
    drawn = cfg.train.batch_size * cfg.gate.sac.candidate_factor  # transitions drawn and scored per gated step
    return {"env_steps": metrics["env_steps"], "gradient_steps": metrics["gradient_steps"],
            "train_wall_s": round(history[-1]["train_wall_s"], 1) if history else None,
            "success": final["success_rate"], "ci_low": round(final["success_ci_low"], 3),
            "ci_high": round(final["success_ci_high"], 3), "final_episodes": args.final_episodes,
            "success_by_latency": final["by_latency"], "checkpoint": final["checkpoint"],
            "last_model_success": last["success_rate"],
            "last_model_ci": [round(last["success_ci_low"], 3), round(last["success_ci_high"], 3)],
            "last_model_by_latency": last["by_latency"],
            "env_steps_to_90": hit.get("env_steps"), "gradient_steps_to_90": hit.get("gradient_steps"),
            "wall_s_to_90": round(hit["train_wall_s"], 1) if hit else None,
            "step_rate": round(gate["steps_trained"] / gate["steps_seen"], 3) if gate else None,
            "sample_rate": round(gate["transitions_kept"] / max(1, gate["steps_trained"] * drawn), 3) if gate else None,
            "drawn_per_step": drawn if gate else None, "gate_counts": gate or None,
            "history": [[h["env_steps"], h["gradient_steps"], round(h["train_wall_s"], 1), h["success_rate"]]
                        for h in history]}  # fmt: skip


def latency_split(run_dir: Path) -> dict[str, list[float]]:
    """Success of the last evaluation per action latency (control steps): {steps: [success, episodes]}."""
    from ast_robot.run_layout import EVAL_DIR

    bins = json.loads((run_dir / EVAL_DIR / "summary.json").read_text())["breakdown"].get("latency", [])
    return {str(int(b["low"])): [round(b["success_rate"], 3), b["episodes"]] for b in bins}


def run_bc(job: Job, args: argparse.Namespace) -> dict[str, Any]:
    from ast_robot.trainers import TRAINERS

    cfg = bc_config(job, args)
    m = TRAINERS.get("bc")(cfg, None)
    return {"demos": int(m["demos"]), "demo_noise": cfg.train.demo_noise, "demo_steps": int(m["demo_steps"]), "bc_steps": args.bc_steps,
            "gate_rate": args.bc_gate_rate if job.arm == "gated" else None,
            "gated_overrides": list(args.bc_gated_set) if job.arm == "gated" else [],
            "train_wall_s": round(m["train_wall_s"], 1), "last_loss": round(m["last_loss"], 4),
            "backward_fraction": round(m["backward_samples"] / m["samples_seen"], 3),
            "success": m["success_rate"], "ci_low": round(m["success_ci_low"], 3),
            "ci_high": round(m["success_ci_high"], 3), "final_episodes": args.final_episodes}  # fmt: skip


def pixels_config(job: Job, args: argparse.Namespace) -> Any:
    """BC from pixels and language: configs/experiments/pickplace_<robot>_pixels_bc.yaml plus this run's budgets.

    The ``random`` arm keeps the gated arm's gate and rate but feeds it uniform random scores."""
    from ast_robot.config import load_config

    overrides = [
        f"name=px_{job.robot}_{job.arm}", f"run_root={args.run_root}", f"seed={args.seed}",
        "train.eval_episodes=1", "train.device=cpu", f"gate.enabled={str(job.arm != 'ungated').lower()}",
        "train.log_every=100000", f"gate.target_rate={args.bc_gate_rate}",
    ]  # fmt: skip  (the trainer's own evaluation: 1 episode; the probes below are the measurement)
    if args.pixel_steps is not None:
        overrides.append(f"train.steps={args.pixel_steps}")
    if job.robot in args.pixel_demos:
        overrides.append(f"train.demos={args.pixel_demos[job.robot]}")
    if job.arm == "random":
        overrides.append("significance.weights={random: 1.0}")
    return load_config(EXPERIMENTS / f"pickplace_{job.robot}_pixels_bc.yaml", overrides + args.pixel_set)


def pixels_env(cfg: Any) -> Any:
    """The evaluation env of a pixels run: its env, randomization and deploy settings (with env.deploy_pipeline
    the deploy config names the robot's controller: the FR3's forward position, not the default trajectory)."""
    from ast_robot.envs import make_env

    return make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)


def run_pixels(job: Job, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or take ``--pixel-run``'s policy), then the four input conditions on the same held-out seeds."""
    from ast_robot.envs.ablations import CONDITIONS, probe_episode
    from ast_robot.policies.policy import PolicyBase
    from ast_robot.run_layout import POLICY_DIR
    from ast_robot.trainers import TRAINERS

    cfg = pixels_config(job, args)
    given = args.pixel_run.get(job.robot)
    if given is None:
        m = TRAINERS.get("bc")(cfg, None, init_from=args.pixel_init.get(job.robot))
        run_dir, trained = Path(cfg.run_root) / cfg.name, {"train_wall_s": round(m["train_wall_s"], 1),
            "last_loss": round(m["last_loss"], 4), "demos": int(m["demos"]), "demo_steps": int(m["demo_steps"]),
            "backward_fraction": round(m["backward_samples"] / m["samples_seen"], 3)}  # fmt: skip
    else:
        run_dir, trained = Path(given), {"trained_by": f"ast-robot train, separately ({given})", **run_train_log(Path(given))}
    policy = PolicyBase.load(run_dir / POLICY_DIR)
    env = pixels_env(cfg)
    seeds = [cfg.seed + 2_000_000 + i for i in range(args.final_episodes)]  # the trainer's held-out seeds
    conditions = [c for c in CONDITIONS if c in args.pixel_conditions]
    results = [probe_episode(env, policy.act, s, c) for c in conditions for s in seeds]
    p99 = act_p99_ms(policy, env)
    row: dict[str, Any] = {**trained, "policy": _policy_line(policy), "final_episodes": args.final_episodes,
                           "act_p99_ms": p99["wall"], "act_p99_cpu_ms": p99["cpu"]}  # fmt: skip
    row.update(condition_rows(results))
    env.close()
    return row


def condition_rows(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per input condition: success and its 95% Wilson interval, instruction-following and the outcomes."""
    from ast_robot.envs.ablations import summarize
    from ast_robot.gap.stats import wilson_interval

    rows = {}
    for cond, r in summarize(results).items():
        ci = wilson_interval(r["successes"], r["episodes"])
        rows[cond] = {"success": r["successes"] / r["episodes"], "ci": [round(ci.low, 3), round(ci.high, 3)],
                      "followed": r["followed"] / r["episodes"], "picked_any": r["picked_any"] / r["episodes"],
                      # of the episodes where a cube was picked, the named one (followed counts no pick as not
                      # followed: it mixes failed grasps into instruction-following)
                      "followed_of_picked": round(r["followed"] / r["picked_any"], 3) if r["picked_any"] else None,
                      "outcomes": r["outcomes"], "failed_reached": r.get("failed_reached")}  # fmt: skip
    return rows


def _policy_line(policy: Any) -> str:
    c = policy.cfg
    if c.type == "two_stage":
        return (f"two_stage: perception ({c.n_keypoints} free + 3 named keypoints) -> MLP {c.hidden_sizes}; aux_weight "
                f"{c.aux_weight} pixel_weight {c.pixel_weight} teacher_noise {c.teacher_noise} m"
                + (f"; estimate_filter {c.estimate_filter}" if c.estimate_filter else "")
                + (f"; place_presence {c.place_presence}" if c.place_presence else ""))  # fmt: skip
    return (f"{c.type} d{c.d_model} L{c.n_layers} image_tokenizer {c.image_tokenizer}"
            f"{f' ({c.n_keypoints} keypoints)' if c.image_tokenizer == 'keypoints' else ''} instruction_tokenizer "
            f"{c.instruction_tokenizer} film {c.instruction_film} aux_weight {c.aux_weight}")


def run_train_log(run_dir: Path) -> dict[str, Any]:
    """Training wall-clock and last loss a separate `ast-robot train` run logged (its TensorBoard scalars)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not (run_dir / "tb").is_dir():  # a run trained by this bench keeps its figures in its own result file
        return {"train_wall_s": None, "note": f"no {run_dir / 'tb'}: training figures in the run's own result"}
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    last = lambda tag: events.Scalars(tag)[-1]  # noqa: E731
    return {"train_wall_s": round(last("train/train_seconds").value, 1), "last_loss": round(last("train/last_loss").value, 4),
            "bc_steps": last("train/train_seconds").step}  # fmt: skip


def act_p99_ms(policy: Any, env: Any, calls: int = 300) -> dict[str, float]:
    """p99 of one `act()` on one torch thread (the deployment setting), on real observations: ``wall`` (what a
    deployed node waits) and ``cpu``, the calling thread's own CPU time (the thread runs the ops at one torch
    thread). On this shared 2-core machine wall measures the load too (session 8: 14-72 ms in the bench at load
    7-12 vs 2.5 ms standalone at load 4); the CPU time is the policy's own cost."""
    import numpy as np
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    obs, _ = env.reset(seed=0)
    wall, cpu = [], []
    for _ in range(calls):
        start, start_cpu = time.perf_counter(), time.thread_time()
        policy.act(obs)
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    torch.set_num_threads(threads)
    p99 = lambda t: round(float(np.percentile(t, 99)) * 1000, 2)  # noqa: E731
    return {"wall": p99(wall), "cpu": p99(cpu)}


# --------------------------------------------------------------------------------------------- goals
def ratio_goal(name: str, target: float, gated: float | None, ungated: float | None) -> dict[str, Any]:
    """gated / ungated at the first 90% evaluation, as a ``<=`` goal."""
    if gated is not None and ungated:
        return goal(name, target, round(gated / ungated, 3), "<=")
    out = goal(name, target, None, "<=")
    if ungated and gated is None:
        out["met"] = False  # the gated arm never reached 90%: a failure, not a missing measurement
    return out


def goals_from(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every goal of the issue from the rows measured so far (measured None where a job is missing)."""
    if rows and all(key.startswith("px/") for key in rows):  # a pixels-only result: only issue 20's goals
        return pixel_goals(rows)
    success = lambda key: rows.get(key, {}).get("success")  # noqa: E731
    goals = [goal(f"Reach{ROBOTS[r]}: SAC+HER success after training", 0.95, success(f"sac/{r}/ungated"))
             for r in ROBOTS]  # fmt: skip
    gated_robots = sorted(
        {key.split("/")[1] for key in rows if key.startswith("sac/") and key.endswith("/gated")}
    )
    for r in gated_robots or ["ur5e"]:
        u, g = rows.get(f"sac/{r}/ungated", {}), rows.get(f"sac/{r}/gated", {})
        goals.append(ratio_goal(f"Reach{ROBOTS[r]}: gated/ungated training wall-clock to 90% success", 0.7,
                                g.get("wall_s_to_90"), u.get("wall_s_to_90")))  # fmt: skip
        goals.append(ratio_goal(f"Reach{ROBOTS[r]}: gated/ungated gradient steps to 90% success", 0.5,
                                g.get("gradient_steps_to_90"), u.get("gradient_steps_to_90")))  # fmt: skip
    goals += [goal(f"PickPlace{ROBOTS[r]}: BC success ({arm})", 0.8, success(f"bc/{r}/{arm}"))
              for r in ROBOTS for arm in BC_ARMS]  # fmt: skip
    return goals + pixel_goals(rows)


def pixel_goals(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 20's goals for each pixels row measured."""
    goals = []
    for key, r in sorted(rows.items()):
        if not key.startswith("px/"):
            continue
        name = f"PickPlace{ROBOTS[r['robot']]} pixels ({r['arm']})"
        measured = lambda cond, key, r=r: r[cond][key] if cond in r else None  # noqa: E731  (--pixel-conditions)
        works = goal(f"{name}: task success", 0.8, measured("as_given", "success"))
        # a blanked input "lowers" the success of a policy that never succeeds too: the ablation goals count
        # only for a policy that meets its task goal (else met is False, whatever the ablated figure)
        ablations = [goal(f"{name}: success with the instruction blanked (counts only with task success met)", 0.6,
                          measured("blank_instruction", "success"), "<="),
                     goal(f"{name}: success with the camera blanked (counts only with task success met)", 0.1,
                          measured("blank_camera", "success"), "<=")]  # fmt: skip
        for g in ablations:
            g["met"] = None if g["met"] is None or works["met"] is None else bool(g["met"] and works["met"])
        goals += [works, goal(f"{name}: instruction-following (as given)", 0.95, measured("as_given", "followed")),
                  goal(f"{name}: instruction-following (instruction swapped to the other cube)", 0.95,
                       measured("swapped", "followed")), *ablations,
                  goal(f"{name}: act() p99 ms (one thread)", 8.0, r["act_p99_ms"], "<="),
                  goal(f"{name}: training wall-clock s", 2400.0, r.get("train_wall_s"), "<=")]  # fmt: skip
    return goals


# ------------------------------------------------------------------------------------------- results
def read_parts(paths: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Rows of earlier result files (later files win per job); note lines: each file's source and budget lines."""
    rows: dict[str, dict[str, Any]] = {}
    notes = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        for row in data["rows"]:
            rows[row["key"]] = {**row, "source": Path(path).name}
        m = data["machine"]
        notes.append(f"{Path(path).name}: {data['date']}, `{data['command']}`, {m['cpu']} x{m['cores']}, "
                     f"loadavg at write {m['loadavg_1min']:.2f}")  # fmt: skip
        notes += [
            line[2:] for line in data["notes"].split("\n\n") if line.startswith("- ")
        ]  # its own sources
    return rows, list(dict.fromkeys(notes))


def budget_note(args: argparse.Namespace) -> str:
    return (
        f"budgets: parts {','.join(args.parts) or 'none'}; SAC {args.env_steps} env steps per run, batch "
        f"{args.sac_batch or 'of the config'}, learning_starts {args.learning_starts or 'of the config'}, "
        f"evaluation every {args.eval_every} env steps "
        f"on {args.eval_episodes} fixed randomized episodes; gated SAC: step gate {args.step_rate}, sample gate "
        f"{args.sample_rate}; BC {args.bc_steps} steps from {args.demos} demos, gate {args.bc_gate_rate}"
        f"{' (gated overrides ' + ' '.join(args.bc_gated_set) + ')' if args.bc_gated_set else ''}; final "
        f"evaluation {args.final_episodes} held-out episodes; pixels: steps {args.pixel_steps or 'of the config'}, "
        f"demos {args.pixel_demos or 'of the config'}, runs {args.pixel_run or 'trained here'}, fine-tuned from {args.pixel_init or 'scratch'}, overrides "
        f"{args.pixel_set or 'none'}; {args.jobs} worker processes x {args.threads} torch "
        f"thread(s); seed {args.seed}.{' SMOKE run: tiny budgets, not a measurement.' if args.smoke else ''}"
    )


NOTES = (
    "Rows: one per job (key = kind/robot/arm). Reach success is the point estimate over `final_episodes` "
    "held-out episodes of the reloaded model that `ast-robot eval` loads (`checkpoint`: the best periodic "
    "evaluation's, kept in best/, when the run kept one); ci_low/ci_high its 95% Wilson interval; "
    "success_by_latency: {action latency in control steps: [success, episodes]}; last_model_*: the final "
    "sac.zip on the same episodes. *_to_90: at the first "
    "periodic evaluation with >= 90% success (None: never within the budget); wall_s is training wall-clock "
    "with evaluation time excluded, on 2 cores shared with other jobs (loadavg columns); gradient steps "
    "are the updates actually taken (the gated arms skip steps whose batch scores low). The `random` arm "
    "uses the same gates fed uniform random scores. history: [env steps, gradient steps, train wall s, "
    "success]. Each run is configs/experiments/reach_<robot>.yaml or pickplace_<robot>_bc.yaml (what "
    "`ast-robot train` runs) with the budgets above as overrides (sac_config / bc_config). Pixels rows: "
    "followed = the named cube picked, of all episodes (an episode where no cube was picked counts as not "
    "followed); followed_of_picked = of the episodes where a cube was picked; act_p99_ms is wall-clock (it "
    "includes the machine's load), act_p99_cpu_ms the calling thread's own CPU time; failed_reached: of the "
    "failed episodes, those where the TCP came within 3 cm of the named cube, of only the other, of none."
)


def side_by_side(rows: dict[str, dict[str, Any]]) -> str:
    """One readable line of the SAC arms at their first evaluation >= 90% (not a "- " line: never re-merged)."""
    cells = [f"{r['key']}: " + (f"{r['env_steps_to_90']} env steps, {r['gradient_steps_to_90']} gradient steps, "
                                f"{r['wall_s_to_90']} s" if r.get("wall_s_to_90") is not None else
                                f"not reached in {r['env_steps']} env steps") + f", final success {r['success']}"
             for r in sorted(rows.values(), key=lambda r: r["key"]) if r["task"] == "reach"]  # fmt: skip
    return "Side by side, at the first evaluation >= 90% success: " + "; ".join(cells) + "." if cells else ""


def save(args: argparse.Namespace, rows: dict[str, dict[str, Any]], part_notes: list[str]) -> Path:
    ordered = sorted(rows.values(), key=lambda r: r["key"])
    load = os.getloadavg()
    lines = list(part_notes)
    if args.parts:  # a pure merge ran nothing: its budgets are those of the merged files' lines
        lines.append(f"{budget_note(args)} loadavg at write {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} (1/5/15 min) "
                     f"on {os.cpu_count()} cores.")  # fmt: skip
    if args.note:
        lines.append(f"note: {args.note}")
    notes = "\n\n".join([NOTES, side_by_side(rows), *(f"- {line}" for line in lines)])
    return write_results(args.name, ordered, goals_from(rows), notes, out_dir=args.out_dir)


def run_jobs(args: argparse.Namespace, rows: dict[str, dict[str, Any]], part_notes: list[str]) -> None:
    """Run the planned jobs in worker processes; results are rewritten after each finished job."""
    jobs = plan(args)
    print(f"{len(jobs)} jobs: {[j.key for j in jobs]}", flush=True)
    # spawn: fresh interpreters (no forked MuJoCo/EGL state); one job per process frees its memory (camera demos).
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run_job, job, args): job for job in jobs}
        for future in as_completed(futures):
            row = future.result()
            rows[row["key"]] = row
            print({k: v for k, v in row.items() if k != "history"}, flush=True)
            print(save(args, rows, part_notes), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=None, help=f"comma list of {PARTS} (default: all; none with --merge)")
    p.add_argument(
        "--gated-robots", default="ur5e", help="robots of the gated part (comma list of ur5e, fr3)"
    )
    p.add_argument(
        "--gated-arms", default=",".join(SAC_ARMS), help=f"arms of the gated part, from {SAC_ARMS}"
    )
    p.add_argument("--env-steps", type=int, default=20_000, help="SAC env steps per run")
    p.add_argument("--learning-starts", type=int, default=None,
                   help="SAC env steps of random actions first (default: the reach config's)")  # fmt: skip
    p.add_argument("--sac-batch", type=int, default=None, help="SAC replay batch (default: the reach config's)")
    # 0.4, not 0.5: at 0.5 a gated run that needs as many env steps as the ungated one could only tie the
    # "<= 50% of the gradient steps" goal. Chosen before any full run, not tuned on its results.
    p.add_argument(
        "--step-rate", type=float, default=0.4, help="gated SAC: target fraction of gradient steps"
    )
    p.add_argument(
        "--sample-rate", type=float, default=0.5,
        help="gated SAC: target fraction kept of the transitions drawn per step (gate.sac.candidate_factor batches)"
    )
    p.add_argument("--eval-every", type=int, default=500, help="SAC: evaluate every N env steps")
    p.add_argument("--eval-episodes", type=int, default=30, help="SAC: episodes per periodic evaluation")
    p.add_argument("--bc-steps", type=int, default=6000, help="BC optimizer steps")
    p.add_argument("--demos", type=int, default=500, help="expert demonstrations collected per BC run")
    p.add_argument(
        "--bc-gate-rate", type=float, default=0.5, help="gated BC: target fraction of samples kept"
    )
    p.add_argument("--bc-robots", default=",".join(ROBOTS), help="robots of the pickplace_bc part (comma list)")
    p.add_argument("--bc-arms", default=",".join(BC_ARMS), help=f"arms of the pickplace_bc part, from {BC_ARMS}")
    p.add_argument("--bc-gated-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override of the gated BC runs only (repeatable), e.g. gate.importance_weights=false")
    p.add_argument("--pixel-robots", default="ur5e", help="robots of the pixels part (comma list)")
    p.add_argument("--pixel-arms", default="ungated", help=f"arms of the pixels part, from {PIXEL_ARMS}")
    p.add_argument("--pixel-demos", action="append", default=[], metavar="ROBOT=DIR",
                   help="pixels part: demo folder of a robot (default: the config's; repeatable)")
    p.add_argument("--pixel-init", action="append", default=[], metavar="ROBOT=POLICY_DIR",
                   help="pixels part: fine-tune from this policy checkpoint instead of training from scratch")
    p.add_argument("--pixel-run", action="append", default=[], metavar="ROBOT=DIR",
                   help="pixels part: evaluate this trained BC run of a robot instead of training one")
    p.add_argument("--pixel-steps", type=int, default=None, help="pixels part: BC steps (default: the config's)")
    p.add_argument("--pixel-conditions", default=None,
                   help="pixels part: comma list of the input conditions to run (default: all of "
                        "ast_robot.envs.ablations.CONDITIONS); goals of the others are reported unmeasured")
    p.add_argument("--pixel-set", action="append", default=[], metavar="KEY=VALUE",
                   help="pixels part: a config override of every pixels run (repeatable)")
    p.add_argument(
        "--final-episodes", type=int, default=100, help="held-out episodes of each final evaluation"
    )
    p.add_argument("--jobs", type=int, default=2, help="worker processes (one job each at a time)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-root", default="/tmp/ast_robot_bench/robot_learning")
    p.add_argument(
        "--merge", nargs="*", default=[], help="result files whose rows to merge (later files win)"
    )
    p.add_argument(
        "--smoke", action="store_true", help="tiny budgets: checks the script end to end, not the claims"
    )
    p.add_argument("--note", default="", help="a line for the notes (e.g. which jobs were stopped and why)")
    p.add_argument("--name", default="robot_learning", help="result name: <out-dir>/<name>.json")
    p.add_argument("--out-dir", type=Path, default=None, help="folder of the results (default bench/results)")
    args = p.parse_args(argv)
    if args.smoke:
        args.env_steps, args.learning_starts, args.eval_every, args.eval_episodes = 400, 200, 200, 2
        args.bc_steps, args.demos, args.final_episodes, args.pixel_steps = 10, 3, 2, 10
    args.parts = _choices("--parts", args.parts, PARTS, default=() if args.merge else PARTS)
    args.gated_robots = _choices("--gated-robots", args.gated_robots, tuple(ROBOTS))
    args.gated_arms = _choices("--gated-arms", args.gated_arms, SAC_ARMS)
    args.bc_robots = _choices("--bc-robots", args.bc_robots, tuple(ROBOTS))
    args.bc_arms = _choices("--bc-arms", args.bc_arms, BC_ARMS)
    args.pixel_robots = _choices("--pixel-robots", args.pixel_robots, tuple(ROBOTS))
    args.pixel_arms = _choices("--pixel-arms", args.pixel_arms, PIXEL_ARMS)
    args.pixel_demos, args.pixel_run = _robot_paths("--pixel-demos", args.pixel_demos), _robot_paths("--pixel-run", args.pixel_run)
    args.pixel_init = _robot_paths("--pixel-init", args.pixel_init)
    from ast_robot.envs.ablations import CONDITIONS

    args.pixel_conditions = _choices("--pixel-conditions", args.pixel_conditions, CONDITIONS, default=CONDITIONS)
    return args


def _robot_paths(flag: str, items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        robot, sep, path = item.partition("=")
        if not sep or robot not in ROBOTS or not path:
            raise SystemExit(f"{flag} {item!r}: expected ROBOT=DIR with ROBOT one of {list(ROBOTS)}")
        out[robot] = path
    return out


def _choices(
    flag: str, text: str | None, allowed: tuple[str, ...], default: tuple[str, ...] = ()
) -> list[str]:
    if text is None:
        return list(default)
    items = [t for t in text.split(",") if t]
    bad = [t for t in items if t not in allowed]
    if bad:
        raise SystemExit(f"{flag}: unknown {bad}; choose from {list(allowed)}")
    return items


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)  # the workers' setting, so the recorded machine shows it
    rows, part_notes = read_parts(args.merge)
    if args.parts:
        run_jobs(args, rows, part_notes)
    else:
        print(save(args, rows, part_notes))


if __name__ == "__main__":
    main()

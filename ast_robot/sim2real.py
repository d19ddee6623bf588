"""The sim-to-real loop: train -> evaluate in sim -> deploy on the twin (or a robot) -> record -> analyze
-> retune -> fine-tune -> repeat, keeping every round's folder.

Round ``r`` lives in ``<run_root>/<name>/round<r>/``: the trained policy (``policy/``), the simulated
episode records (``eval/``), the deployment's bag (``real_bag/``, MCAP) and records (``real/``), process logs
(``logs/``) and the gap report with the retuned config (``gap/``). The next round trains on the retuned
config, starting from this round's policy, with the physical-feedback weights as per-demonstration loss weights.

The ROS 2 side runs as child processes (`ast-robot twin`, `ast-robot deploy`, `ast-robot record`,
`ast-robot episodes`) on loopback only; nothing here imports rclpy or reads the twin's hidden parameters.

The task comes from the trained policy's deployment contract: reach (goals drawn from the reach box) or
pick-and-place (the twin's table, ``--task pickplace``: the episode driver sets each episode's table, the
tracker-fed policy observes the cubes through the twin's tracker topic; a pixel policy through its camera).
When the gap analysis fails on a round's records (e.g. an analyzer that does not read pick-and-place records
yet), the round still reports sim and real success from the records, and the next round reuses its config.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ast_robot.config import load_config
from ast_robot.deploy.loader import read_contract
from ast_robot.fileio import read_json
from ast_robot.run_layout import POLICY_DIR

THIN_MARGIN = 1.5  # the recorder's camera rate over the twin's when the twin renders only for the bag


@dataclass
class RoundResult:
    """One round's headline numbers (success rates in [0, 1]; the gap is sim minus real)."""

    round: int
    sim_success: float
    real_success: float
    gap: float
    gap_low: float
    gap_high: float
    top_parameter: str
    folder: Path
    retuned_config: Path | None
    estimate: dict[str, float] = dataclasses.field(default_factory=dict)  # fitted parameters (sysid)
    train_samples: float = 0.0  # samples this round's training forwarded (the core trainer's count)
    note: str = ""  # why no retuned config was written, when none was
    verdict: tuple[str, ...] = ()  # the gap report's opening sentences, word for word
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # wall seconds per stage of the round
    trained_with: dict | None = None  # the physical-feedback weights this round's training got (None: none)
    demos: int = 0  # demonstrations this round trained on (0: the start policy deployed as given, no training)

    def line(self) -> str:
        return (f"round {self.round}: sim {self.sim_success:.0%}  real {self.real_success:.0%}  gap "
                f"{100 * self.gap:+.0f} points (95% CI {100 * self.gap_low:+.0f}..{100 * self.gap_high:+.0f})"
                f"  top parameter: {self.top_parameter}")  # fmt: skip


class RosProcesses:
    """`ast-robot` subcommands as children in one ROS domain, loopback only; stopped with SIGINT."""

    def __init__(self, logs: Path, domain: int) -> None:
        self.logs, self.procs = logs, []
        logs.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(domain),
                        MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), PYTHONUNBUFFERED="1")  # fmt: skip

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "ast_robot", *args], stdout=log, stderr=subprocess.STDOUT,
                                env=self.env)  # fmt: skip
        self.procs.append((name, proc, log))
        return proc

    def run(self, name: str, *args: str, timeout: float) -> None:
        """Run a subcommand to completion; a failure raises with the tail of its log."""
        proc = self.start(name, *args)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f"`ast-robot {' '.join(args)}` failed ({code}):\n{self.tail(name)}")

    def tail(self, name: str, chars: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-chars:]

    def stop_all(self) -> None:
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _, proc, log in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def deploy_on_twin(policy_dir: Path, config: list[str], robot: str, hidden: str | None, episodes: int, seed: int,
                   folder: Path, domain: int, sim_time: bool = True, control_hz: float = 125.0,
                   task: str = "reach", camera: bool = False, twin_flags: dict[str, Any] | None = None,
                   record_camera_hz: float = 0.0) -> tuple[Path, Path]:  # fmt: skip
    """Twin + policy node + recorder; drive ``episodes`` episodes of ``task``. Returns (bag, records folder).

    ``config`` is the ``--config PATH [--set k=v ...]`` of the experiment whose ``deploy`` section to use.
    ``sim_time`` (the default): the twin runs on simulated time in lock-step with the policy node, one
    joint state per control tick (``control_hz``), so the outcomes do not depend on the machine's load;
    False: wall clock, as on a real robot. ``camera``: the policy sees the twin's camera (else, on simulated
    time, the twin renders none: rendering is most of a lock-step tick's cost). ``twin_flags``: more twin flags
    -> values, e.g. ``--camera-size`` / ``--wrist-camera-size`` at the policy's trained sizes (:func:`twin_camera_sizes`).
    ``record_camera_hz`` > 0: the bag also holds the cameras' frames at that rate (the visual gap analysis reads
    them), and a twin on simulated time renders them at that rate even when the policy sees no camera.
    """
    bag, records = folder / "real_bag", folder / "real"  # no ".bag" suffix: rosbags reads that as ROS 1
    ros = RosProcesses(folder / "logs", domain)
    clock = ["--sim-time"] if sim_time else []
    rates = ["--rate", f"{control_hz:g}", *twin_camera_rate(camera, record_camera_hz)] if sim_time else []
    # a twin that renders only for the bag sends exactly record_camera_hz; its frames reach the recorder with
    # jitter, and thinning at the same rate would drop every other one (measured: 1 s apart at 2 Hz)
    thin = record_camera_hz * (1.0 if camera or not sim_time else THIN_MARGIN)
    shots = ["--camera-rate", f"{thin:g}"] if record_camera_hz > 0 else []
    table = ["--task", task, "--robot", robot] if task == "pickplace" else []
    sizes = [x for flag, values in (twin_flags or {}).items() if values for x in (flag, *map(str, values))]
    try:
        ros.start("twin", "twin", "--robot", robot, *(["--hidden", hidden] if hidden else []), *clock, *rates,
                  *table[:2], *sizes)  # fmt: skip
        ros.start("deploy", "deploy", str(policy_dir), "--robot", robot, *config, *clock)
        ros.start("record", "record", "--out", str(bag), *clock, *shots)
        # discovery waits for the policy node's start-up (torch, numba): over 30 s on a 2-core machine at load 14
        ros.run("episodes", "episodes", "--n", str(episodes), "--seed", str(seed), "--out", str(records), *clock,
                *table, "--discovery-timeout", "120", timeout=240 + 30 * episodes)  # fmt: skip
    finally:
        ros.stop_all()
    return bag, records


def twin_camera_rate(camera: bool, record_camera_hz: float) -> list[str]:
    """The sim-time twin's camera flags: the YAML's rate for a policy that sees the camera; else only the frames
    the bag records (rendering is most of a lock-step tick's cost: none when nothing reads them)."""
    if camera:
        return []
    if not record_camera_hz >= 0:
        raise ValueError(f"gap.camera_rate_hz: expected frames per second >= 0 (0: none), got {record_camera_hz}")
    return ["--camera-rate", f"{record_camera_hz:g}"]


def loop_camera_hz(rate_hz: float, task: str, sim_time: bool) -> float:
    """The camera rate the loop records (``gap.camera_rate_hz``): pick-and-place, on simulated or wall-clock time.

    Reach has no visual analysis. On wall clock (a real robot's time) the frames used to be placed in their
    episodes by the time the recorder received them, not the arm's pose they show (the nominal twin read 7.5 and
    11.9 levels RMS, floor 2: bench/results/loop_camera.md, row deploy_wall), so the loop recorded none there.
    Now each frame is drawn at the joint state stamped when it was taken and placed in the episode whose records'
    joint-state stamps span its own stamp (records schema 4, :func:`ast_robot.gap.visual_frames.episode_spans`): the
    wall-clock bag is read as the simulated-time one. ``sim_time`` is kept for the callers' clarity."""
    del sim_time  # both clocks record: frames are placed by their stamps
    return rate_hz if task == "pickplace" else 0.0


def twin_camera_sizes(contract: Any) -> dict[str, Any]:
    """The twin's camera flags at the sizes a policy was trained on: its frames then reach the policy unresized
    (a resize from the deploy YAML's size would be a visual gap of the twin's own making)."""
    return {"--camera-size": contract.camera_size, "--wrist-camera-size": contract.wrist_camera_size}


def run_round(cfg_path: Path, overrides: list[str], r: int, root: Path, args: Any, init_from: Path | None,
              weights: Any, demo_pool: list[Any] | None = None, as_given: bool = False) -> tuple[RoundResult, Any]:  # fmt: skip
    """One round on ``cfg_path`` + ``overrides``; returns its result and the physical-feedback weights for
    the next round. ``demo_pool``: the loop's demonstrations so far (this round's are added to it).
    ``as_given``: ``init_from`` (a start policy) is deployed as it is, not trained (evaluated in sim first)."""
    from ast_robot.gap.pipeline import gap_report
    from ast_robot.run_layout import EVAL_DIR
    from ast_robot.trainers.bc import train_bc

    cfg = load_config(cfg_path, overrides)
    folder = root / f"round{r}"
    cfg = dataclasses.replace(cfg, name=folder.name, run_root=str(root), seed=cfg.seed + r)
    start = time.perf_counter()
    if as_given:
        metrics = adopt_policy(cfg, Path(init_from))
    else:
        metrics = train_bc(cfg, init_from=init_from, physical_weight=weights, demo_pool=demo_pool,
                           scene_pool=getattr(args, "scenes_pool", None))  # fmt: skip
    timings = {"demos": metrics.get("demos_wall_s", 0.0), "train": metrics.get("train_wall_s", 0.0),
               "sim_eval": metrics.get("eval_wall_s", 0.0), "train_bc": time.perf_counter() - start}  # fmt: skip
    config = ["--config", str(cfg_path), *(x for o in overrides for x in ("--set", o))]
    contract = read_contract(folder / POLICY_DIR, cfg.deploy.robot)
    start = time.perf_counter()
    sim_time = not getattr(args, "wall_clock", False)
    bag, records = deploy_on_twin(folder / POLICY_DIR, config, cfg.deploy.robot, args.hidden, args.real_episodes,
                                  seed=1000 + r, folder=folder, domain=args.domain, sim_time=sim_time,
                                  control_hz=cfg.deploy.control_hz, task=contract.task,
                                  camera=contract.camera_size is not None, twin_flags=twin_camera_sizes(contract),
                                  record_camera_hz=loop_camera_hz(cfg.gap.camera_rate_hz, contract.task, sim_time))  # fmt: skip
    timings["deploy"], start = time.perf_counter() - start, time.perf_counter()
    try:
        out = gap_report(folder / EVAL_DIR, bag, folder / "gap", config=cfg_path, overrides=overrides,
                         seed=cfg.seed)  # fmt: skip
    except Exception as err:  # noqa: BLE001 - the round's outcomes stand without the analysis: say why
        result = _unanalyzed(r, folder, records, metrics, err)
        result.timings = {**timings, "gap_report": time.perf_counter() - start}
        return result, None
    timings["gap_report"] = time.perf_counter() - start
    rep = out.report
    top = (rep.sysid.top_parameter() if rep.sysid is not None else None) or "-"
    s = rep.success
    estimate = rep.sysid.estimate() if rep.sysid is not None else {}
    result = RoundResult(r, s.sim.value, s.real.value, s.gap.value, s.gap.low, s.gap.high, top, folder,
                         out.retuned_config, estimate, metrics.get("forward_samples", 0.0),
                         rep.provenance.get("retune", rep.provenance.get("sysid", "")),
                         tuple(read_json(out.folder / "gap.json", "the gap report's JSON").get("verdict", ())),
                         timings)  # fmt: skip
    result.demos = int(metrics.get("demos", 0))
    return result, rep.weights


def adopt_policy(cfg: Any, start: Path) -> dict[str, float]:
    """Round 0 from a start policy: copied into the round's ``policy/`` as it is (the round's folder holds what
    was deployed) and evaluated in sim on the run's held-out seeds, as a trained round's policy is."""
    import shutil

    from ast_robot.policies.policy import PolicyBase
    from ast_robot.trainers.common import evaluate_run

    run_dir = Path(cfg.run_root) / cfg.name
    shutil.copytree(start, run_dir / POLICY_DIR, dirs_exist_ok=True)
    policy = PolicyBase.load(run_dir / POLICY_DIR)
    began = time.perf_counter()
    metrics = evaluate_run(cfg, run_dir, policy.act, episodes=cfg.train.eval_episodes)
    return {**metrics, "eval_wall_s": time.perf_counter() - began, "demos": 0, "forward_samples": 0.0}


def check_start_policy(spec: str | Path, cfg: Any) -> Path:
    """The policy folder of ``--start-policy`` (a trained run folder or its ``policy/``), checked against the
    experiment: its deployment contract must be the contract of the experiment's env (the same observation
    layout, camera size, action mode, ...) and its network the experiment's ``policy`` section (later rounds
    fine-tune it). ValueError, one line naming the field, otherwise."""
    from ast_robot.core.checkpoint import load_module_state
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import PolicyBase, build_policy
    from ast_robot.trainers.common import contract_of

    path = Path(spec)
    folder = path / POLICY_DIR if (path / POLICY_DIR).is_dir() else path
    where = f"--start-policy {spec}"
    if not folder.is_dir():
        raise ValueError(f"{where}: not a folder (expected a trained run folder or its {POLICY_DIR}/)")
    try:
        theirs = read_contract(folder, cfg.deploy.robot).to_dict()
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint: one line
        raise ValueError(f"{where}: {err}") from err
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    try:
        ours = contract_of(env).to_dict()
        if diff := [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]:
            k = diff[0]
            raise ValueError(f"{where}: its contract's {k} is {theirs.get(k)!r}, the experiment's env ({cfg.env.id}) "
                             f"has {ours.get(k)!r}; a start policy must be trained on this experiment's env")  # fmt: skip
        policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0]))
        try:
            load_module_state(policy, PolicyBase.load(folder).state_dict(), "policy")
        except Exception as err:  # noqa: BLE001 - another network: later rounds could not fine-tune it
            raise ValueError(f"{where}: its network is not the experiment's policy section "
                             f"({_first_line(err)}); pass the config it was trained with") from err  # fmt: skip
    finally:
        env.close()
    return folder


def load_demo_pool(spec: str | Path, cfg: Any) -> list[Any]:
    """The demonstrations of ``--demo-pool`` (a demos folder), checked against the experiment's env (its id, the
    observation keys and shapes, the action size): the loop's pool starts with them."""
    from ast_robot.envs import make_env
    from ast_robot.envs.demos import check_fits, load_demos

    episodes = load_demos(spec, env_id=cfg.env.id, images_in_memory=False)  # a pixel pool: GBs of images
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    try:
        check_fits(episodes, dict(env.observation_space.spaces), int(env.action_space.shape[0]))
    finally:
        env.close()
    return episodes


def check_scene_pool(spec: str | Path, cfg: Any) -> None:
    """``--scenes-pool`` checked before anything runs (read again by each trained round: ~0.5 GB held only
    while that round builds its data): scenes rendered in the experiment's env, fitting its observation."""
    from ast_robot.envs import make_env
    from ast_robot.trainers.bc import read_scene_pool

    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    try:
        read_scene_pool(spec, cfg.env.id, dict(env.observation_space.spaces))
    finally:
        env.close()


def feedback_mode(cfg: Any) -> str:
    """How the physical-feedback weights act in ``cfg``'s training (printed at the loop's start).

    They weight each demonstration's loss (trainers/feedback.py), in every recipe, gated or not; until session 11
    they reached only the gate's ``physical`` significance component, which ungated recipes (every pixel one)
    never consult (the loop printed "computed but unused")."""
    mix, cap = cfg.train.feedback_mix, cfg.train.feedback_cap
    if mix == 0:
        return "off: train.feedback_mix is 0 (computed, every loss weight 1)"
    return (f"per-demonstration loss weight (1 - {mix:g}) + {mix:g} * score / mean score over the steps (capped at "
            f"{cap:g}x the mean): no demonstration below {1 - mix:g}, mean 1")  # fmt: skip


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _unanalyzed(r: int, folder: Path, real: Path, metrics: dict, err: Exception) -> RoundResult:
    """A round whose gap report failed: sim and real success (Wilson / Newcombe intervals) from its records."""
    from ast_robot.fileio import one_line
    from ast_robot.gap.analyzer import success_gap
    from ast_robot.records import load_episodes
    from ast_robot.run_layout import EVAL_DIR

    s = success_gap(load_episodes(folder / EVAL_DIR), load_episodes(real), 0.95)
    note = f"gap report failed: {one_line(f'{type(err).__name__}: {err}', 300)}"
    return RoundResult(r, s.sim.value, s.real.value, s.gap.value, s.gap.low, s.gap.high, "-", folder, None,
                       train_samples=metrics.get("forward_samples", 0.0), note=note, verdict=(note,),
                       demos=int(metrics.get("demos", 0)))  # fmt: skip


def sim2real(config: str | Path, args: Any, console: Any) -> list[RoundResult]:
    """Run ``args.rounds`` rounds from ``config``; prints the gap per round.

    With ``train.finetune_demos`` set, every round trains on the demonstrations of all rounds so far (one
    pool; later rounds add that many, drawn from their retuned randomization, and fine-tune the previous
    policy); without it each round collects ``train.n_demos`` anew (the reach demo).
    ``args.torch_threads`` (default 1) sets this process's torch threads for the whole loop.
    ``args.physical_feedback`` (default True) passes the analyzer's physical-feedback weights to the next
    round's training as loss weights; False fine-tunes on the retuned ranges alone (the ablation).
    ``args.start_policy`` (a trained run folder, e.g. a pixel student's): round 0 deploys it as it is (evaluated
    in sim, not trained) and later rounds fine-tune from it; its contract must match the experiment's env.
    ``args.demo_pool`` (a demos folder): the loop's pool of demonstrations starts with these (each round adds its
    own: round 0 ``train.n_demos`` unless a start policy is given, later rounds ``train.finetune_demos``); they
    stay in their files (camera images read when a round builds its data). ``args.scenes_pool`` (a scenes file):
    every trained round trains on these scenes as they are, in place of ``train.scenes`` (the start policy's own
    scenes: a fine-tune that replays the student's demos and scenes keeps what it knew).
    """
    import torch

    # a tiny network on a few shared cores: intra-op threads that wait on each other cost far more than they
    # share (bench/results/sim2real_threads.md); the child processes (twin, policy node) set their own
    torch.set_num_threads(getattr(args, "torch_threads", 1))
    use_weights = getattr(args, "physical_feedback", True)
    base = load_config(config, list(args.overrides))
    root = Path(args.out or base.run_root) / base.name
    cfg_path, weights, results = Path(config), None, []
    start = getattr(args, "start_policy", None)
    init_from = check_start_policy(start, base) if start else None  # checked before anything runs
    pool = [] if getattr(base.train, "finetune_demos", 0) else None  # opted in with train.finetune_demos
    if getattr(args, "demo_pool", None):
        pool = load_demo_pool(args.demo_pool, base)
    if getattr(args, "scenes_pool", None):  # with physical feedback its rows weigh as the mean demo step (bc)
        check_scene_pool(args.scenes_pool, base)
    if use_weights and console is not None:
        console.print(f"physical feedback: {feedback_mode(base)}")
    overrides = list(args.overrides)  # a retuned config has them written in: apply them to the first one only
    for r in range(args.rounds):
        console.rule(f"sim2real round {r}")
        used = weights
        result, weights = run_round(cfg_path, overrides, r, root, args, init_from, used, pool,
                                    as_given=r == 0 and start is not None)  # fmt: skip
        result.trained_with = None if used is None else (used.to_dict() if hasattr(used, "to_dict") else {})
        weights = weights if use_weights else None
        results.append(result)
        console.print(result.line())
        for sentence in result.verdict:  # what the round's report says first
            console.print(f"  - {sentence}")
        if result.retuned_config is None:
            console.print(f"no retuned config ({result.note or 'system identification skipped'}); the next round "
                          f"reuses this one")  # fmt: skip
        else:
            cfg_path, overrides = result.retuned_config, []
        init_from = result.folder / POLICY_DIR
    return results

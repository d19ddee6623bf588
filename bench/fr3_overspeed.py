"""Peak joint speeds of the FR3 pick-and-place policy through the deployment's command path (issue 21).

Last session the FR3 wrist (joint 6) reached 4.43 rad/s on the nominal twin (data sheet 4.18 x 1.05: the
twin's protective stop) though every command is capped at half the data-sheet speed. Two measurements:

- ``sim``: a trained policy in its own env with ``env.deploy_pipeline`` (the node's 125 Hz command path:
  action map -> safety filter -> forward position controller), every physics step's joint speeds kept:
  per-joint peak over ``--episodes`` held-out episodes, how many episodes pass the twin's stop threshold,
  sim success, and how often the lead limit changed a command.
- ``replay`` (``--records``): the commands of recorded twin episodes (records with ``joint_targets``) fed to
  the twin's own sim (``ast_robot.twin.sim.TwinSim`` + its pick-and-place table, no ROS), speed check off,
  per physics step: reproduces the overspeed outside ROS from what the deployment sent.
- ``expert`` (``--expert CONFIG``): the scripted expert through that experiment's env (its command path,
  this checkout's safety module), 20 seeds: steps to first success, before and after the fix.
- ``actions`` (``--records`` with ``--run``): the same episodes' recorded policy actions (per 125 Hz tick)
  through the deployment's command path of *this* checkout (the run's env's ``DeployPipeline``: action map,
  IK, the safety module) into the twin's sim, closed loop on its joints: the command stream the deployment
  would send now for the same policy outputs (the fix's before/after on the streams that overshot).

    .venv/bin/python bench/fr3_overspeed.py --run RUN_DIR [--records REAL_DIR] --label before --name fr3_overspeed
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

SPEED_LIMIT = np.array((2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26))  # FR3 data sheet (ast_robot.robot.specs)


class PeakSpeeds:
    """Per-joint peak |qvel| of ``dof`` over every physics step of one MuJoCo model (wraps mujoco.mj_step)."""

    def __init__(self, model: Any, dof: np.ndarray) -> None:
        import mujoco

        self.model, self.dof, self._step = model, dof, mujoco.mj_step  # dof: index array or slice
        self.peak = np.zeros(7)

    def __enter__(self) -> PeakSpeeds:
        import mujoco

        def step(m: Any, d: Any, nstep: int = 1) -> None:
            for _ in range(nstep):
                self._step(m, d)
                if m is self.model:
                    self.peak = np.maximum(self.peak, np.abs(d.qvel[self.dof]))

        mujoco.mj_step = step
        return self

    def __exit__(self, *exc: object) -> None:
        import mujoco

        mujoco.mj_step = self._step


def sim_row(run: Path, episodes: int, seed: int, label: str) -> dict:
    """The run's policy in its env (deploy pipeline on), ``episodes`` held-out seeds: peaks and outcomes."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.evaluation import rollout
    from ast_robot.trainers.common import load_actor
    from ast_robot.twin.sim import SPEED_TOLERANCE

    cfg = load_config(run / "config.yaml")
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    act, base = load_actor(cfg, run), env.unwrapped
    peaks, wins, lead_clamps, start = [], 0, 0, time.perf_counter()
    for k in range(episodes):
        with PeakSpeeds(base.model, base._vadr) as meter:
            rec = rollout(env, act, seed + k)
        lead_clamps += base._pipeline.safety.counters.get("clamped to lead limit", 0)
        peaks.append(meter.peak)
        wins += bool(rec.success)
    return _summary(label, "sim", np.array(peaks), SPEED_TOLERANCE, time.perf_counter() - start,
                    sim_success=wins / episodes, lead_clamps_per_episode=lead_clamps / episodes, run=str(run))  # fmt: skip


def replay_row(records: Path, label: str, hidden: Path | None = None) -> dict:
    """Recorded twin commands into the twin's sim (no ROS), speed check off: per-episode joint peaks. With
    ``hidden`` (the twin's hidden-parameter YAML) the sim is that twin's (a weak gripper's commands replayed
    with the nominal grip press the cube differently)."""
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.records.load import load_episodes
    from ast_robot.twin.hidden import load_hidden
    from ast_robot.twin.sim import SPEED_TOLERANCE

    io, start, params = load_robot_io("fr3"), time.perf_counter(), load_hidden(hidden)
    peaks = [replay_peaks(rec, io, hidden=params) for rec in load_episodes(records)]
    return _summary(label, "replay", np.array(peaks), SPEED_TOLERANCE, time.perf_counter() - start,
                    records=str(records), hidden=str(hidden) if hidden else None)  # fmt: skip


def actions_row(run: Path, records: Path, label: str) -> dict:
    """Recorded policy actions through this checkout's command path into the twin's sim: per-episode peaks."""
    from ast_robot.config import load_config
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.envs import make_env
    from ast_robot.records.load import load_episodes
    from ast_robot.twin.sim import SPEED_TOLERANCE

    cfg = load_config(run / "config.yaml")
    pipe = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy).unwrapped._pipeline
    io, start, peaks, clamps = load_robot_io("fr3"), time.perf_counter(), [], 0
    for rec in load_episodes(records):
        peaks.append(replay_peaks(rec, io, pipe))
        clamps += pipe.safety.counters.get("clamped to lead limit", 0)
    return _summary(label, "actions", np.array(peaks), SPEED_TOLERANCE, time.perf_counter() - start,
                    lead_clamps_per_episode=clamps / len(peaks), records=str(records), run=str(run))  # fmt: skip


def replay_peaks(rec: Any, io: Any, pipe: Any = None, hidden: Any = None) -> np.ndarray:
    """One record on the twin's pick-and-place sim: its 125 Hz joint targets, or (``pipe``, a
    DeployPipeline) its actions through the command path, closed loop; the gripper as it was commanded."""
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.pickplace import PickPlaceTable, build_model, parse_scene
    from ast_robot.twin.sim import TwinSim

    hidden = hidden or HiddenParams()
    sim = TwinSim("fr3", hidden, model=build_model("fr3", hidden))
    sim.speed_limit[:] = np.inf  # measure how fast, not whether it stops
    table = PickPlaceTable(sim, io.gripper, hidden)
    scene = json.loads(rec.meta["table"])
    scene.pop("target", None)
    sim.reset(rec.joint_positions[0])
    table.set_scene(parse_scene(json.dumps(scene)))
    if pipe is not None:  # the filter the deployment runs now: it declares configs/deploy/fr3.yaml's latency
        pipe.reset(sim.true_positions(), deployed_latency())  # (the record's own: envs.pipeline.declared_latency)
    gripper = dict(rec.gripper_commands or [])
    with PeakSpeeds(sim.model, sim.idx.dof) as meter:
        for k in range(rec.steps):
            if k in gripper:
                table.command([gripper[k], io.gripper.speed_mps, io.gripper.force_n])
            now = k * rec.control_dt
            target = rec.joint_targets[k] if pipe is None else pipe.tick(rec.actions[k], sim.true_positions(), now, 0.0)
            sim.command_positions(target)
            sim.step_to(now + rec.control_dt)
    return meter.peak


def expert_row(config: Path, episodes: int, label: str, seed: int = 5000) -> dict:
    """The scripted expert through ``config``'s env (deploy pipeline: this checkout's safety module), no DART
    noise, 120-step episodes: the step of first success per seed (whether the fix changed normal motion)."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.envs.demos import run_episode
    from ast_robot.envs.experts import expert_for

    cfg = load_config(config)
    cfg.env.max_episode_steps = 120
    env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
    expert, start, first = expert_for(env), time.perf_counter(), []
    for k in range(episodes):
        hit = run_episode(env, expert, seed + k)["is_success"]
        first.append(int(np.argmax(hit)) + 1 if hit.any() else None)
    return {"label": label, "kind": "expert", "config": config.name, "episodes": episodes,
            "first_success_steps": first, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


CREEP_SHARES = (0.0, 0.01, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5)  # of the joint's allowed speed
CREEP_HOLDS = (6, 10, 15, 20, 25, 30, 50)  # ticks (0.048-0.4 s)


def creep_peak(limits: Any, joint: int, share: float, hold: int, ticks: int = 150) -> float:
    """One FR3 twin joint driven by this checkout's safety filter towards home - 1 rad while a kinematic block
    moves it towards the target at ``share`` of its allowed speed (a slipping grasp) for ``hold`` ticks, then
    freed: its peak |qvel| after the release / data sheet (speed stop off)."""
    return freed_peak(limits, joint, share, hold, ticks) / SPEED_LIMIT[joint]


def freed_peak(limits: Any, joint: int, share: float, hold: int, ticks: int, accel: float = 0.0,
               stats: dict | None = None) -> float:  # fmt: skip
    """:func:`creep_peak`'s peak |qvel| (rad/s) after the release; ``share`` 0: held still from rest; ``accel``:
    the block also speeds up towards the target at that share of the joint's acceleration limit (it yields).
    ``stats``: gets ``command_speed`` (the joint's fastest command step / period / data sheet: what the filter asked
    for) and, where it holds a ``trace`` list, one :func:`_tick` per tick."""
    from ast_robot.robot.safety import SafetyMonitor
    from ast_robot.robot.safety.trust import ACQUIRE_STATES
    from ast_robot.twin.sim import TwinSim

    sim, mon = TwinSim("fr3"), SafetyMonitor(limits)
    sim.speed_limit[:] = np.inf  # measure how fast, not whether it stops
    q0, dt, period = sim.true_positions(), sim.model.opt.timestep, limits.period_s
    for k in range(ACQUIRE_STATES):
        mon.observe_state(q0, received_s=(k - ACQUIRE_STATES) * period)
    target, creep = q0 - np.eye(7)[joint], -share * limits.max_step[joint] / period
    gain = -accel * limits.max_acceleration[joint]
    qadr, dof, peak, last = sim.idx.qpos[joint], sim.idx.dof[joint], 0.0, float(q0[joint])
    stats = {} if stats is None else stats
    stats["command_speed"] = 0.0
    for k in range(ticks):
        mon.observe_state(sim.true_positions(), received_s=k * period)
        window = mon._lead_window() if "trace" in stats else None  # the window this tick's command was bounded by
        cmd = mon.filter(target, now_s=k * period).positions
        sim.command_positions(cmd)
        stats["command_speed"] = max(stats["command_speed"], abs(cmd[joint] - last) / period / SPEED_LIMIT[joint])
        last = float(cmd[joint])
        if window is not None:
            stats["trace"].append(_tick(mon, joint, k, hold, sim.data.qvel[dof], window))
        for _ in range(round(period / dt)):
            sim.step_to(sim.time + dt)
            if k < hold:
                t = sim.time
                sim.data.qpos[qadr], sim.data.qvel[dof] = q0[joint] + creep * t + 0.5 * gain * t * t, creep + gain * t
            else:
                peak = max(peak, abs(float(sim.data.qvel[dof])))
    return peak


def _tick(mon: Any, joint: int, k: int, hold: int, qvel: float, window: tuple) -> dict:
    """One tick of :func:`freed_peak`'s ``joint`` as the filter saw it (rad, rad/s): the trusted measured position,
    the speed measured from trusted states, the command sent and its lead over the measurement, the lead window's
    edges around the measurement, how the monitor judged the joint (still / held / blocked), the joint's true speed."""
    s, (low, high) = mon._s, window
    q, cmd = float(s.positions[joint]), float(s.last_command[joint])
    return {"tick": k, "block": k < hold, "measured": round(q, 4), "speed": round(float(s.speed[joint]), 3),
            "command": round(cmd, 4), "lead": round(cmd - q, 4), "window": [round(float(low[joint]) - q, 4), round(float(high[joint]) - q, 4)],
            "still": bool(s.still[joint]), "held": bool(s.held[joint]), "blocked": bool(mon.blocked[joint]),
            "qvel": round(float(qvel), 3)}  # fmt: skip


TRACE_CASE = (3, 0.3, 0.4, 50)  # joint 4 (index 3), from 0.3 x its allowed speed, +0.4 x its acceleration limit, 0.4 s


def trace_row(label: str, case: tuple = TRACE_CASE, command_latency_s: float | None = None, around: int = 14) -> dict:
    """The yield sweep's worst case of the 0.8-1.0 x band, per tick (``around`` ticks either side of the release):
    where the command stood against the dragged joint when the block let go, and what the joint did after."""
    from ast_robot.robot.safety import arm

    limits, stats = fr3_limits(command_latency_s), {"trace": []}
    joint, share, accel, hold = case
    ratio = freed_peak(limits, joint, share, hold, hold + around, accel, stats) / SPEED_LIMIT[joint]
    bound = (arm.FREED_SPEED_SHARE * limits.max_velocity[joint]) ** 2 / limits.servo_closing[joint]  # freed_lead's reach at rest
    ticks = stats["trace"][hold - around:]
    return {"label": label, "kind": "trace", "command_latency_s": command_latency_s,
            "case (joint, start share, accel share, hold ticks)": [joint + 1, share, accel, hold], "max_ratio": round(ratio, 3),
            "lead_at_release": ticks[around]["lead"], "freed_bound_rad": round(float(bound), 4),
            "command_speed": round(stats["command_speed"], 3), "ticks": ticks}  # fmt: skip


def creep_row(label: str) -> dict:
    """Every FR3 joint creeping towards its command at each of CREEP_SHARES of its allowed speed for each of
    CREEP_HOLDS, then freed: peak / data sheet per joint, share and hold; the worst below 10% (the creeping
    hole: below 10%) and at or above 10% (a joint held back while it still moves at FOLLOW_MIN_SHARE or faster)."""
    from ast_robot.config import DeployConfig
    from ast_robot.robot.safety import SafetyLimits
    from ast_robot.robot.specs import get_robot

    limits = SafetyLimits.from_robot(get_robot("fr3"), DeployConfig(robot="fr3", command_interface="forward_position"))
    start = time.perf_counter()
    ratios = np.array([[[creep_peak(limits, j, s, h) for h in CREEP_HOLDS] for s in CREEP_SHARES] for j in range(7)])
    low = np.array(CREEP_SHARES) < 0.1 - 1e-9  # the creeping rule's band: slower than FOLLOW_MIN_SHARE
    return {"label": label, "kind": "creep", "creep_shares": list(CREEP_SHARES), "hold_s": [round(h * limits.period_s, 3) for h in CREEP_HOLDS],
            "max_ratio_lt10": round(float(ratios[:, low].max()), 3), "max_ratio_ge10": round(float(ratios[:, ~low].max()), 3),
            "per_joint_lt10": ratios[:, low].max(axis=(1, 2)).round(3).tolist(),
            "per_joint_ge10": ratios[:, ~low].max(axis=(1, 2)).round(3).tolist(),
            "ratios": ratios.round(3).tolist(), "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


YIELD_ACCELS = (0.03, 0.06, 0.1, 0.2, 0.4)  # of the joint's acceleration limit (GAIN_SHARE: 0.05)
YIELD_SHARES = (0.0, 0.1, 0.2, 0.3)  # the block's starting speed, of the joint's allowed speed
YIELD_HOLDS = (15, 25, 50)  # ticks


def fr3_limits(command_latency_s: float | None = None) -> Any:
    """The FR3's SafetyLimits through forward positions (``command_latency_s``: the deployment's declared command
    latency, s; None: undeclared: arm.LAG_ALLOWANCE_S before the declaration was wired, the strict filter since)."""
    from ast_robot.config import DeployConfig
    from ast_robot.robot.safety import SafetyLimits
    from ast_robot.robot.specs import get_robot

    cfg = DeployConfig(robot="fr3", command_interface="forward_position")
    declared = {} if command_latency_s is None else {"command_latency_s": command_latency_s}  # (main's has no keyword)
    return SafetyLimits.from_robot(get_robot("fr3"), cfg, **declared)


def yield_row(label: str, command_latency_s: float | None = None) -> dict:
    """Every FR3 joint held back by a block that yields: it moves towards the target from each of YIELD_SHARES
    of the joint's allowed speed and speeds up at each of YIELD_ACCELS of its acceleration limit for each of
    YIELD_HOLDS, then lets go: peak / data sheet, worst per acceleration (over joints, start speeds, holds); the
    same over the cases whose block itself left the joint under FREED_SPEED_SHARE of its data sheet ("valid": at
    40% and 0.4 s the block alone drives joints 1 and 4 past theirs, which no command bound can undo).
    ``command_latency_s``: the latency the deployment declares (None: undeclared)."""
    from ast_robot.robot.safety import arm

    limits, commanded = fr3_limits(command_latency_s), []
    start = time.perf_counter()

    def case(j: int, s: float, h: int, a: float) -> float:
        stats: dict = {}
        ratio = freed_peak(limits, j, s, h, 150, a, stats) / SPEED_LIMIT[j]
        commanded.append(stats["command_speed"])
        return ratio

    ratios = np.array([[[[case(j, s, h, a) for h in YIELD_HOLDS] for s in YIELD_SHARES] for a in YIELD_ACCELS]
                       for j in range(7)])  # fmt: skip
    allowed, accel = limits.max_step / limits.period_s, limits.max_acceleration
    released = np.array([[[[(s * allowed[j] + a * accel[j] * h * limits.period_s) / SPEED_LIMIT[j] for h in YIELD_HOLDS]
                           for s in YIELD_SHARES] for a in YIELD_ACCELS] for j in range(7)])  # fmt: skip
    valid = np.where(released <= arm.FREED_SPEED_SHARE, ratios, 0.0)
    return {"label": label, "kind": "yield", "command_latency_s": command_latency_s, "accel_shares": list(YIELD_ACCELS),
            "start_shares": list(YIELD_SHARES), "hold_s": [round(h * limits.period_s, 3) for h in YIELD_HOLDS],
            "worst_per_accel": ratios.max(axis=(0, 2, 3)).round(3).tolist(),
            "worst_per_accel_valid": valid.max(axis=(0, 2, 3)).round(3).tolist(), "cases_invalid": int((released > arm.FREED_SPEED_SHARE).sum()),
            "command_speed_max": round(max(commanded), 3),
            "per_joint": ratios.max(axis=(2, 3)).round(3).tolist(), "seconds": round(time.perf_counter() - start, 1),
            "ratios": ratios.round(3).tolist(), "released": released.round(3).tolist()}  # fmt: skip


FAST_SHARES = (0.6, 0.7, 0.8, 0.9, 0.95)  # of the joint's allowed speed
FAST_HOLDS = (25, 50, 75)  # ticks, each cut where the block has taken the joint 60% of the way to its target or limit


def fast_row(label: str, command_latency_s: float | None = None) -> dict:
    """Every FR3 joint held back at a steady FAST_SHARES of its allowed speed (a block dragging it above the creep
    sweep's 10-50%) for FAST_HOLDS, then freed: peak / data sheet, worst per share. The command can only outrun the
    joint by the allowed speed less the joint's, so the lead fills the held window only after long holds."""
    from ast_robot.robot.specs import get_robot

    limits = fr3_limits(command_latency_s)
    start, allowed = time.perf_counter(), limits.max_step / limits.period_s
    # the target stands 1 rad below home, joint 4's lower limit 0.55 rad (a block dragging it past the limit is not a case)
    room = 0.6 * np.minimum(1.0, np.asarray(get_robot("fr3").home_qpos) - limits.lower)
    ratios = np.array([[freed_peak(limits, j, s, min(h, int(room[j] / (s * allowed[j] * limits.period_s))), 200) / SPEED_LIMIT[j]
                        for s in FAST_SHARES for h in FAST_HOLDS] for j in range(7)]).reshape(7, len(FAST_SHARES), -1)  # fmt: skip
    return {"label": label, "kind": "fast", "command_latency_s": command_latency_s, "shares": list(FAST_SHARES),
            "hold_s": [round(h * limits.period_s, 3) for h in FAST_HOLDS], "worst_per_share": ratios.max(axis=(0, 2)).round(3).tolist(),
            "per_joint": ratios.max(axis=(1, 2)).round(3).tolist(), "max_ratio": round(float(ratios.max()), 3),
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def follow_clamps(limits: Any, joint: int, kind: str, amount: float, latency: float, gain: float, ticks: int = 60) -> int:
    """An FR3 twin joint (commands ``latency`` s late, actuator gain x ``gain``) following, through the filter and
    free of any block, a ramp target at ``amount`` of its allowed speed or a step target ``amount`` rad away
    (towards its wider room): ticks the lead window clamped the command (normal motion: 0)."""
    from ast_robot.robot.safety import SafetyMonitor
    from ast_robot.robot.safety.trust import ACQUIRE_STATES
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.sim import TwinSim

    sim, mon, period = TwinSim("fr3", HiddenParams(latency_s=latency, gain_scale=gain)), SafetyMonitor(limits), limits.period_s
    q0 = sim.true_positions()
    for k in range(ACQUIRE_STATES):
        mon.observe_state(q0, received_s=(k - ACQUIRE_STATES) * period)
    side = np.eye(7)[joint] * (1.0 if limits.upper[joint] - q0[joint] > q0[joint] - limits.lower[joint] else -1.0)
    for k in range(ticks):
        mon.observe_state(sim.true_positions(), received_s=k * period)
        target = q0 + side * (amount * limits.max_step[joint] * (k + 1) if kind == "ramp" else amount)
        sim.command_positions(mon.filter(target, now_s=k * period).positions)
        sim.step_to((k + 1) * period)
    return mon.counters.get("clamped to lead limit", 0)


FOLLOW_CASES = (("ramp", 0.2), ("ramp", 0.5), ("ramp", 1.0), ("step", 0.05), ("step", 0.2), ("step", 0.5))


def follow_row(label: str, latencies: tuple = (0.0, 0.04), command_latency_s: float | None = None,
               declare_each: bool = False) -> dict:  # fmt: skip
    """Normal motion: every FR3 joint following each of FOLLOW_CASES from rest (its servo accelerating it, commands
    ``latencies`` s late, actuator gain 0.8 / 1.0 / 1.2 as the env randomizes): lead-window clamps per case.
    ``declare_each``: each case's limits declare its own latency (a deployment that measured its latency, the env's
    episodes), else ``command_latency_s`` for all."""
    start, clamped = time.perf_counter(), []
    for latency in latencies:
        limits = fr3_limits(latency if declare_each else command_latency_s)
        for j in range(7):
            for kind, amount in FOLLOW_CASES:
                for gain in (0.8, 1.0, 1.2):
                    if n := follow_clamps(limits, j, kind, amount, latency, gain):
                        clamped.append([j + 1, kind, amount, latency, gain, n])
    return {"label": label, "kind": "follow", "command_latency_s": "each case's own" if declare_each else command_latency_s,
            "latencies_s": list(latencies),
            "cases": len(FOLLOW_CASES) * len(latencies) * 3 * 7, "cases_clamped": len(clamped),
            "ticks_clamped": sum(c[-1] for c in clamped), "clamped (joint, kind, amount, latency, gain, ticks)": clamped,
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def expert_actions_row(config: Path, label: str, seeds: int = 20, declare_latency: bool = False) -> dict:
    """The scripted expert through ``config``'s env (deploy pipeline: this checkout's safety module), seeds
    0..seeds-1 in one env in that order (counts depend on the order): a digest of each seed's action sequence
    (whether normal motion changed at all) and its step of first success. ``declare_latency``: each episode's
    safety limits declare that episode's randomized command latency (SafetyLimits.from_robot(command_latency_s=)),
    as an env would whose filter models a deployment that declares its own (not wired into the env yet)."""
    import hashlib

    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.envs.demos import run_episode
    from ast_robot.envs.experts import expert_for

    cfg = load_config(config)
    env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
    if declare_latency:
        _declare_episode_latency(env.unwrapped, cfg.deploy)
    expert, start, digests, first = expert_for(env), time.perf_counter(), [], []
    for seed in range(seeds):
        run = run_episode(env, expert, seed)
        digests.append(hashlib.sha1(np.ascontiguousarray(run["action"]).tobytes()).hexdigest()[:12])
        first.append(int(np.argmax(run["is_success"])) + 1 if run["is_success"].any() else None)
    return {"label": label, "kind": "expert_actions", "config": config.name, "episodes": seeds,
            "deploy_pipeline": bool(cfg.env.deploy_pipeline), "declared_latency": declare_latency, "action_digests": digests,
            "first_success_steps": first, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def _declare_episode_latency(base: Any, deploy: Any) -> None:
    """After each reset of the env ``base``, its pipeline's safety limits declare the episode's own command latency
    (its randomized ``latency`` env steps x control_dt)."""
    from ast_robot.robot.safety import SafetyLimits
    from ast_robot.robot.specs import get_robot

    reset = base.reset

    def declared_reset(*args: Any, **kwargs: Any) -> Any:
        out = reset(*args, **kwargs)
        latency = int(base.dr.get("latency", 0)) * base.control_dt
        pipe = base._pipeline
        pipe.limits = SafetyLimits.from_robot(get_robot(deploy.robot), deploy, command_latency_s=latency)
        pipe.safety.limits = pipe.limits
        return out

    base.reset = declared_reset


def held_row(label: str, holds: range = range(6, 39), ticks: int = 120) -> dict:
    """The FR3 twin's wrist (joint 6) driven by this checkout's safety filter towards home - 1 rad, held still
    from rest (a kinematic block: a grasped object caught) for each of ``holds`` 125 Hz ticks (0.048-0.304
    s), then freed: its peak speed over every 2 ms physics step, per hold (the hole of the stall judged by
    time: a joint held still, not pushed away, and freed before it counts as blocked)."""
    from ast_robot.config import DeployConfig
    from ast_robot.robot.safety import SafetyLimits
    from ast_robot.robot.specs import get_robot

    limits = SafetyLimits.from_robot(get_robot("fr3"), DeployConfig(robot="fr3", command_interface="forward_position"))
    start = time.perf_counter()
    peaks = [freed_peak(limits, 5, 0.0, hold, ticks) for hold in holds]  # held still: a creep of 0
    ratio = np.array(peaks) / SPEED_LIMIT[5]
    return {"label": label, "kind": "held", "episodes": len(peaks), "hold_s": [round(h * limits.period_s, 3) for h in holds],
            "wrist6_peaks": np.round(peaks, 2).tolist(), "max_ratio": round(float(ratio.max()), 3),
            "peak_over_limit": np.round(ratio, 3).tolist(), "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def _summary(label: str, kind: str, peaks: np.ndarray, tolerance: float, seconds: float, **extra: Any) -> dict:
    over = np.any(peaks > SPEED_LIMIT * tolerance, axis=1)
    ratio = peaks / SPEED_LIMIT
    return {"label": label, "kind": kind, "episodes": len(peaks), "peak_rad_s": peaks.max(0).round(3).tolist(),
            "peak_over_limit": ratio.max(0).round(3).tolist(), "max_ratio": round(float(ratio.max()), 3),
            "episodes_over_stop": int(over.sum()), "wrist6_peaks": peaks[:, 5].round(2).tolist(),
            "seconds": round(seconds, 1), **extra}  # fmt: skip


def seeds_differ(main: dict | None, now: dict | None, key: str) -> int | None:
    """How many seeds' ``key`` (action digests, steps to success) differ between two expert_actions rows (None: one
    is missing)."""
    return sum(a != b for a, b in zip(main[key], now[key])) if main and now else None


def goals(rows: list[dict]) -> list[dict]:
    experts = {(r["label"], r["config"]): r["first_success_steps"] for r in rows if r["kind"] == "expert"}
    pairs = {c: (experts[("before", c)], experts[("after", c)]) for (label, c) in experts
             if label == "after" and ("before", c) in experts}
    ur5e = [a == b for c, (b, a) in pairs.items() if c in ("demo.yaml", "pickplace_demo.yaml")]
    fr3 = pairs.get("pickplace_demo_fr3.yaml")
    out = [goal("UR5e scripted experts (reach demo, pick-and-place loop): every seed's steps to success "
                "unchanged by the fix (fraction of configs)", 1.0, float(np.mean(ur5e)) if ur5e else None),
           goal("FR3 pick-and-place scripted expert: seeds whose steps to success changed (of 20)", 1,
                sum(a != b for a, b in zip(*fr3)) if fr3 else None, "<="),
           goal("FR3 pick-and-place scripted expert: slowest seed's steps, after minus before", 0,
                max(fr3[1]) - max(fr3[0]) if fr3 else None, "<=")]  # fmt: skip
    # after-loop replay rows: what the twin did in the loop's episodes deployed with the fix
    for label, kind in (("after", "actions"), ("after", "sim"), ("after-loop", "replay"), ("after-loop", "sim")):
        after = [r for r in rows if r["label"] == label and r["kind"] == kind]
        out += [goal(f"{label}, {kind}: episodes whose joints pass the twin's stop (data sheet x 1.05)", 0,
                     sum(r["episodes_over_stop"] for r in after) if after else None, "<="),
                goal(f"{label}, {kind}: highest joint speed / data-sheet speed", 1.0,
                     max(r["max_ratio"] for r in after) if after else None, "<=")]  # fmt: skip
    return (out + stalltime_goals(rows, experts) + stall2_goals(rows, experts) + creep_goals(rows) + creep2_goals(rows)
            + yield_goals(rows) + wired_goals(rows) + dragsafe_goals(rows))  # fmt: skip


def worst_of(rows: list[dict], label: str, kind: str, key: str = "max_ratio", agg: Any = max) -> Any:
    """``agg`` of ``key`` over the rows of ``label`` and ``kind`` (None: no such row)."""
    mine = [r[key] for r in rows if r["label"] == label and r["kind"] == kind]
    return agg(mine) if mine else None


def yield_goals(rows: list[dict]) -> list[dict]:
    """A joint gaining speed led by the servo model at its acceleration (label ``yield``: latency undeclared;
    ``yield-declared0``: the deployment declares no command latency; ``yield-null``: this script at main 29ff978):
    the yielding block and the fast held-back sweep against 0.9 x the data sheet (null: over 1.0), normal following
    never clamped, the creeping and held rules unchanged, the experts' action sequences and steps against main's."""
    worst = functools.partial(worst_of, rows)

    def yielding(label: str, key: str = "worst_per_accel_valid") -> Any:
        mine = [r for r in rows if r["label"] == label and r["kind"] == "yield"]
        return max(w for r in mine for a, w in zip(r["accel_shares"], r[key]) if a >= 0.05) if mine else None

    out = [goal("yield: a block speeding the joint up at 6-40% of its acceleration limit, freed (cases the block left under "
                "0.8 x), latency undeclared: highest speed / data sheet", 0.9, yielding("yield"), "<="),
           goal("yield-null: the same at main 29ff978 (gaining joints at max_lead)", 1.0, yielding("yield-null"), ">"),
           goal("yield-declared0: the same, the deployment declaring no command latency", 0.9, yielding("yield-declared0"), "<="),
           goal("yield, fast: every FR3 joint held back at 60-95% of its allowed speed, freed, latency undeclared", 0.9,
                worst("yield", "fast"), "<="),
           goal("yield-null, fast: the same at main 29ff978 (the held rule's creep sweep stopped at 50%)", 1.0,
                worst("yield-null", "fast"), ">"),
           goal("yield-declared0, fast: the same, no command latency declared", 0.9, worst("yield-declared0", "fast"), "<="),
           goal("yield, follow: normal following (steps, ramps; latency 0 / 40 ms; gain 0.8-1.2): cases clamped", 0,
                worst("yield", "follow", "cases_clamped"), "<="),
           goal("yield-declared0, follow: the same at latency 0, no latency declared: cases clamped", 0,
                worst("yield-declared0", "follow", "cases_clamped"), "<="),
           goal("yield: every FR3 joint creeping at 0-8% (the creeping rule)", 0.9, worst("yield", "creep", "max_ratio_lt10"), "<="),
           goal("yield: the same at 10-50% (the held rule)", 0.9, worst("yield", "creep", "max_ratio_ge10"), "<="),
           goal("yield, held: FR3 wrist held still 0.05-0.3 s from rest and freed", 0.9, worst("yield", "held"), "<="),
           goal("yield-loop (this branch's nominal FR3 loop, round 0): replay, actions and sim rows: highest joint speed / "
                "data sheet", 0.9, max((worst("yield-loop", k) or 0.0) for k in ("replay", "actions", "sim")) if any(
                    r["label"] == "yield-loop" for r in rows) else None, "<="),
           goal("yield-loop: episodes whose joints pass the twin's stop", 0,
                sum((worst("yield-loop", k, "episodes_over_stop", sum) or 0) for k in ("replay", "actions", "sim")), "<=")]  # fmt: skip
    runs = {(r["label"], r["config"], r.get("declared_latency", False)): r for r in rows if r["kind"] == "expert_actions"}
    for config in ("pickplace_demo.yaml", "pickplace_demo_fr3.yaml"):
        main = runs.get(("yield-null", config, False))
        for label, declared in (("yield", False), ("yield-declared0", True)):
            now = runs.get((label, config, declared))
            out += [goal(f"{label}, {config} scripted expert (seeds 0-19{', each episode latency declared' if declared else ''}): "
                         "seeds whose action sequence differs from main's", 0, seeds_differ(main, now, "action_digests"), "<="),
                    goal(f"{label}, {config}: seeds whose steps to success differ from main's", 0,
                         seeds_differ(main, now, "first_success_steps"), "<=")]  # fmt: skip
    main, now = runs.get(("yield-null", "pickplace_demo_fr3.yaml", False)), runs.get(("yield-allowance0", "pickplace_demo_fr3.yaml", False))
    out.append(goal("yield-allowance0, pickplace_demo_fr3.yaml: seeds whose steps to success differ from main's with "
                    "LAG_ALLOWANCE_S 0 for every deployment (the cost of closing without a declared latency)", 0,
                    seeds_differ(main, now, "first_success_steps"), "<="))  # fmt: skip
    return out


def wired_goals(rows: list[dict]) -> list[dict]:
    """The declared command latency wired (label ``wired``: the deployment declares configs/deploy/fr3.yaml's
    command_latency_s, the env each episode's randomized latency; ``wired-null``: the filter before, LAG_ALLOWANCE_S for
    all, i.e. arm.PRE_DECLARATION_LATENCY_S declared, and this script at main for the experts): the yielding block and
    the fast held-back sweep under 1.0 x the data sheet in every case (null: over 1.0); normal following with the
    latency declared never clamped; the experts' steps to success as main's on every seed (actions: counted)."""
    worst = functools.partial(worst_of, rows)

    def yielding(label: str, key: str) -> Any:
        mine = [r for r in rows if r["label"] == label and r["kind"] == "yield"]
        return max(max(r[key]) for r in mine) if mine else None

    def released_under(label: str, share: float) -> Any:
        """Worst ratio over the yield cases whose block itself left the joint at most ``share`` x its data sheet."""
        mine = [r for r in rows if r["label"] == label and r["kind"] == "yield" and "released" in r]
        return max(float(np.max(np.where(np.array(r["released"]) <= share, r["ratios"], 0.0))) for r in mine) if mine else None

    out = [goal("wired, yield: a block speeding the joint up at 3-40% of its acceleration limit, freed, every case whose "
                "block left the joint under 0.8 x: highest speed / data sheet", 1.0, yielding("wired", "worst_per_accel_valid"), "<="),
           goal("wired-null, yield: the same with the allowance of before (the instrument sees the hole)", 1.0,
                yielding("wired-null", "worst_per_accel_valid"), ">"),
           goal("wired, yield: the cases whose block itself left the joint at 0.8-1.0 x its data sheet, dragged faster than "
                "any command may go (outside the freed model's 0.8; reported)", 1.0, released_under("wired", 1.0), "<="),
           goal("wired, yield: every case, with those whose block alone drove the joint past its data sheet (no command "
                "bound can undo them; reported)", 1.0, yielding("wired", "worst_per_accel"), "<="),
           goal("wired, fast: every FR3 joint held back at 60-95% of its allowed speed, freed", 1.0, worst("wired", "fast"), "<="),
           goal("wired-null, fast: the same with the allowance of before", 1.0, worst("wired-null", "fast"), ">"),
           goal("wired, follow: normal following (latency 0 / 40 ms, each declared; gain 0.8-1.2): cases clamped", 0,
                worst("wired", "follow", "cases_clamped"), "<="),
           goal("wired-undeclared, follow: the same with no latency declared (the strict filter): cases clamped, all at 40 "
                "ms (the trade-off: an arm with more latency than declared is slowed; reported)", 0,
                worst("wired-undeclared", "follow", "cases_clamped"), ">"),
           goal("wired-loop (the nominal FR3 loop at this code, round 0): replay, actions and sim rows: highest joint speed "
                "/ data sheet", 0.9, max((worst("wired-loop", k) or 0.0) for k in ("replay", "actions", "sim")) if any(
                    r["label"] == "wired-loop" for r in rows) else None, "<="),
           goal("wired-loop: episodes whose joints pass the twin's stop", 0,
                sum((worst("wired-loop", k, "episodes_over_stop", sum) or 0) for k in ("replay", "actions", "sim")), "<=")]  # fmt: skip
    return out + expert_goals(rows, "wired", "(deploy pipeline, seeds 0-19)", actions_may_differ=True)


def dragsafe_goals(rows: list[dict]) -> list[dict]:
    """A command left behind a joint dragged faster than the allowed speed walks back at the joint's measured speed
    (label ``dragsafe``, SafetyLimits.walk_steps; ``dragsafe-null``: the same rows at main 2bc48ba): every yield case
    whose block itself left the joint under its data sheet under it (null: over), no command faster than the data
    sheet, the traced case's lead at release inside the freed model's bound (null: outside); the fast, creep and held
    sweeps and normal following as before; the experts' steps to success as main's on seeds 0-19."""
    worst = functools.partial(worst_of, rows)

    def released_under(label: str, share: float) -> Any:
        mine = [r for r in rows if r["label"] == label and r["kind"] == "yield" and "released" in r]
        return max(float(np.max(np.where(np.array(r["released"]) <= share, r["ratios"], 0.0))) for r in mine) if mine else None

    def traced(label: str) -> Any:
        mine = [r for r in rows if r["label"] == label and r["kind"] == "trace"]
        return round(max(abs(r["lead_at_release"]) / r["freed_bound_rad"] for r in mine), 3) if mine else None

    out = [goal("dragsafe, yield: every case whose block itself left the joint under 1.0 x its data sheet (the 0.8-1.0 x "
                "band included): highest speed / data sheet", 1.0, released_under("dragsafe", 1.0), "<="),
           goal("dragsafe-null, yield: the same at main (the instrument sees the hole)", 1.0, released_under("dragsafe-null", 1.0), ">"),
           goal("dragsafe, yield: every case whose block left the joint under 0.8 x", 1.0, released_under("dragsafe", 0.8), "<="),
           goal("dragsafe, yield: every case, with those whose block alone drove the joint past its data sheet (at main "
                "1.285 x: its servo returning to a command left behind)", 1.0, worst("dragsafe", "yield", "worst_per_accel", lambda v: max(max(x) for x in v)), "<="),
           goal("dragsafe, yield: the fastest command step of any case / data-sheet speed (what the filter asked for)", 1.0,
                worst("dragsafe", "yield", "command_speed_max"), "<="),
           goal("dragsafe, trace (joint 4 dragged at 0.91 x): the command's distance from the joint when the block let go / "
                "the freed model's bound (FREED_SPEED_SHARE x V)^2 / K", 1.0, traced("dragsafe"), "<="),
           goal("dragsafe-null, trace: the same at main", 1.0, traced("dragsafe-null"), ">"),
           goal("dragsafe, fast: every FR3 joint held back at 60-95% of its allowed speed, freed", 1.0, worst("dragsafe", "fast"), "<="),
           goal("dragsafe, creep: every FR3 joint creeping at 0-8% of its allowed speed, freed", 0.9,
                worst("dragsafe", "creep", "max_ratio_lt10"), "<="),
           goal("dragsafe, creep: the same at 10-50% (the held rule)", 0.9, worst("dragsafe", "creep", "max_ratio_ge10"), "<="),
           goal("dragsafe, held: FR3 wrist held still 0.05-0.3 s from rest and freed", 0.9, worst("dragsafe", "held"), "<="),
           goal("dragsafe, follow: normal following (latency 0 / 40 ms, each declared; gain 0.8-1.2): cases clamped", 0,
                worst("dragsafe", "follow", "cases_clamped"), "<="),
           goal("dragsafe-undeclared, follow: the same with no latency declared: cases clamped (the trade-off; main: 93)", 93,
                worst("dragsafe-undeclared", "follow", "cases_clamped"), "<="),
           goal("dragsafe-loop (the nominal FR3 loop's round-0 policy, as wired-loop): actions and sim rows: highest joint "
                "speed / data sheet", 0.9, max((worst("dragsafe-loop", k) or 0.0) for k in ("actions", "sim")) if any(
                    r["label"] == "dragsafe-loop" for r in rows) else None, "<="),
           goal("dragsafe-loop: episodes whose joints pass the twin's stop", 0,
                sum((worst("dragsafe-loop", k, "episodes_over_stop", sum) or 0) for k in ("actions", "sim")), "<=")]  # fmt: skip
    return out + expert_goals(rows, "dragsafe", "(deploy pipeline, seeds 0-19)", actions_may_differ=True)


def creep2_goals(rows: list[dict]) -> list[dict]:
    """A joint held back while it moves (label ``creep2``: SafetyLimits.held_lead; ``creep2-null``: this script at
    main e4b57f4): the creep sweep at 10-50% under 0.9 x the data sheet (null: over 1.0), below 10% and the held
    sweep still under 0.9, the nominal loop's record set under 0.9 with none over the stop; the yielding block
    reported (under GAIN_SHARE: under 0.9; at or above it: against 1.0, open); the experts' action sequences and
    steps to success against main's (seeds 0-19, deploy pipeline)."""
    worst = functools.partial(worst_of, rows)

    def yielding(label: str, slow: bool) -> Any:
        mine = [r for r in rows if r["label"] == label and r["kind"] == "yield"]
        return max(w for r in mine for a, w in zip(r["accel_shares"], r["worst_per_accel"]) if (a < 0.05) == slow) if mine else None

    out = [goal("creep2: every FR3 joint held back at 10-50% of its allowed speed 0.05-0.4 s, freed: highest speed / "
                "data sheet", 0.9, worst("creep2", "creep", "max_ratio_ge10"), "<="),
           goal("creep2-null: the same at main e4b57f4 (the band open)", 1.0, worst("creep2-null", "creep", "max_ratio_ge10"), ">"),
           goal("creep2: the same at 0-8% (the creeping rule, unchanged)", 0.9, worst("creep2", "creep", "max_ratio_lt10"), "<="),
           goal("creep2, held: FR3 wrist held still 0.05-0.3 s from rest and freed", 0.9, worst("creep2", "held"), "<="),
           goal("creep2, actions (the nominal FR3 loop's record set): highest joint speed / data sheet", 0.9,
                worst("creep2", "actions"), "<="),
           goal("creep2, actions: episodes whose joints pass the twin's stop", 0, worst("creep2", "actions", "episodes_over_stop", sum), "<="),
           goal("creep2, yield: a block speeding up at 3% of the acceleration limit (< GAIN_SHARE), freed", 0.9,
                yielding("creep2", True), "<="),
           goal("creep2, yield: a block speeding up at 6-40% (>= GAIN_SHARE: counts as following; open, as at main)", 1.0,
                yielding("creep2", False), "<=")]  # fmt: skip
    return out + expert_goals(rows, "creep2", "(deploy pipeline, 2 cubes 2 pads, seeds 0-19)", actions_may_differ=False)


def expert_goals(rows: list[dict], label: str, how: str, actions_may_differ: bool) -> list[dict]:
    """The scripted experts' runs of ``label`` against its ``-null`` rows (main's code), per pick-and-place config:
    seeds whose steps to success differ (must be none) and seeds whose action sequence differs (none, or counted
    against all 20 where the change may alter actions)."""
    runs = {(r["label"], r["config"]): r for r in rows if r["kind"] == "expert_actions"}
    out = []
    for config in ("pickplace_demo.yaml", "pickplace_demo_fr3.yaml"):
        main, now = runs.get((f"{label}-null", config)), runs.get((label, config))
        actions = "(counted; may differ)" if actions_may_differ else ""
        out += [goal(f"{label}, {config} scripted expert {how}: seeds whose steps to success differ from main's", 0,
                     seeds_differ(main, now, "first_success_steps"), "<="),
                goal(f"{label}, {config}: seeds whose action sequence differs from main's {actions}".rstrip(),
                     20 if actions_may_differ else 0, seeds_differ(main, now, "action_digests"), "<=")]  # fmt: skip
    return out


def creep_goals(rows: list[dict]) -> list[dict]:
    """The creeping joint (label ``creep``; ``creep-null``: this script's rows at main 2ad0a7b): the creep sweep
    below 10% of the allowed speed under 0.9 x the data sheet (null: over 1.0, the instrument sees the hole);
    at 10% and above reported against 1.0 (open); the held sweep as stall2's; every record set's actions under 0.9
    and none over the stop; the experts' action sequences: seeds whose actions differ from main's."""
    worst = functools.partial(worst_of, rows)

    out = [goal("creep: every FR3 joint creeping at 0-8% of its allowed speed 0.05-0.4 s, freed: highest speed / "
                "data sheet", 0.9, worst("creep", "creep", "max_ratio_lt10"), "<="),
           goal("creep-null: the same at main 2ad0a7b", 1.0, worst("creep-null", "creep", "max_ratio_lt10"), ">"),
           goal("creep: the same at 10-50% (held back while moving at FOLLOW_MIN_SHARE or faster; open, as at main)", 1.0,
                worst("creep", "creep", "max_ratio_ge10"), "<="),
           goal("creep, held: FR3 wrist held still 0.05-0.3 s from rest and freed: highest speed / data sheet", 0.9,
                worst("creep", "held"), "<="),
           goal("creep, actions (every record set): highest joint speed / data-sheet speed", 0.9,
                worst("creep", "actions"), "<="),
           goal("creep, actions (every record set): episodes whose joints pass the twin's stop", 0,
                worst("creep", "actions", "episodes_over_stop", sum), "<=")]  # fmt: skip
    steps = {(r["label"], r["config"]): r["first_success_steps"] for r in rows if r["kind"] == "expert"}
    for config in ("demo.yaml", "pickplace_demo.yaml", "pickplace_demo_fr3.yaml"):
        before, now = steps.get(("creep-null", config)), steps.get(("creep", config))
        changed = sum(a != b for a, b in zip(before, now)) if before and now else None
        out.append(goal(f"creep, {config} scripted expert (seeds 5000-5019, 120 steps): seeds whose steps to success "
                        "differ from main's (of 20; main has moved since stall2's rows)", 0, changed, "<="))  # fmt: skip
    digests = {(r["label"], r["config"]): r["action_digests"] for r in rows if r["kind"] == "expert_actions"}
    for config in ("pickplace_demo.yaml", "pickplace_demo_fr3.yaml"):
        main, now = digests.get(("creep-null", config)), digests.get(("creep", config))
        changed = sum(a != b for a, b in zip(main, now)) if main and now else None
        out.append(goal(f"creep, {config} scripted expert (deploy pipeline, 2 cubes 2 pads): seeds whose action "
                        "sequence differs from main's (of 20)", 0, changed, "<="))  # fmt: skip
    return out


def stall2_goals(rows: list[dict], experts: dict) -> list[dict]:
    """A joint held still bounded by its servo (label ``stall2``): the held-still sweep under 0.9 x the data
    sheet (and, label ``stall2-null``, the same sweep at the code before it over 1.0: the instrument sees the
    hole), every record set's actions under 0.9 and none over the stop, experts' steps as at the stall judged
    by time (label ``stalltime``) on every seed."""
    worst = functools.partial(worst_of, rows)

    out = [goal("stall2, held: FR3 wrist held still 0.05-0.3 s from rest and freed: highest speed / data sheet", 0.9,
                worst("stall2", "held"), "<="),
           goal("stall2-null, held: the same sweep at the code before (main 2e597c2): highest speed / data sheet", 1.0,
                worst("stall2-null", "held"), ">"),
           goal("stall2, actions (every record set): highest joint speed / data-sheet speed", 0.9,
                worst("stall2", "actions"), "<="),
           goal("stall2, actions (every record set): episodes whose joints pass the twin's stop", 0,
                worst("stall2", "actions", "episodes_over_stop", sum), "<=")]  # fmt: skip
    for config in ("demo.yaml", "pickplace_demo.yaml", "pickplace_demo_fr3.yaml"):
        before, now = experts.get(("stalltime", config)), experts.get(("stall2", config))
        changed = sum(a != b for a, b in zip(before, now)) if before and now else None
        out.append(goal(f"stall2, {config} scripted expert: seeds whose steps to success differ from stalltime's (of 20)",
                        0, changed, "<="))  # fmt: skip
    return out


def stalltime_goals(rows: list[dict], experts: dict) -> list[dict]:
    """The stall judged by time (labels ``stalltime*``): every record set's actions through its command path
    a clear margin under the data sheet (<= 0.9), none over the stop; scripted experts no slower per seed
    than before the fix."""
    mine = [r for r in rows if r["label"].startswith("stalltime") and r["kind"] == "actions"]
    out = [goal("stalltime, actions (every record set): highest joint speed / data-sheet speed", 0.9,
                max(r["max_ratio"] for r in mine) if mine else None, "<="),
           goal("stalltime, actions (every record set): episodes whose joints pass the twin's stop", 0,
                sum(r["episodes_over_stop"] for r in mine) if mine else None, "<=")]  # fmt: skip
    loop = [r for r in rows if r["label"] == "stalltime-loop" and r["kind"] == "replay"]
    out.append(goal("stalltime-loop, replay (the FR3 loops' own twin episodes at this code): highest joint speed / "
                    "data-sheet speed", 0.9, max(r["max_ratio"] for r in loop) if loop else None, "<="))  # fmt: skip
    for config in ("demo.yaml", "pickplace_demo.yaml", "pickplace_demo_fr3.yaml"):
        before, now = experts.get(("before", config)), experts.get(("stalltime", config))
        slower = sum(a is None or (b is not None and a > b) for b, a in zip(before, now)) if before and now else None
        out.append(goal(f"stalltime, {config} scripted expert: seeds slower to success than before the fix (of 20)",
                        0, slower, "<="))  # fmt: skip
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="A trained FR3 pick-and-place run folder.")
    parser.add_argument("--records", action="append", default=[], help="Recorded twin episodes (a records folder).")
    parser.add_argument("--expert", action="append", default=[], help="An experiment YAML whose scripted expert "
                                                                      "is timed through its env's command path.")
    parser.add_argument("--hidden", default=None, help="The twin's hidden-parameter YAML for replay rows "
                                                         "(default: the nominal twin).")
    parser.add_argument("--held", action="store_true", help="Add the held-still-then-freed FR3 wrist sweep row.")
    parser.add_argument("--creep", action="store_true", help="Add the creeping-then-freed sweep row (every FR3 joint).")
    parser.add_argument("--yield", dest="yield_sweep", action="store_true",
                        help="Add the yielding-block sweep row (every FR3 joint held by a block that speeds up).")
    parser.add_argument("--expert-actions", action="append", default=[],
                        help="An experiment YAML whose scripted expert's action sequences (seeds 0-19) are digested.")
    parser.add_argument("--expert-actions-declared", action="append", default=[],
                        help="The same with each episode's randomized command latency declared to its safety limits.")
    parser.add_argument("--fast", action="store_true", help="Add the held-back-at-60-95%%-then-freed sweep row.")
    parser.add_argument("--follow", action="store_true", help="Add the normal-following (no block) clamp count row.")
    parser.add_argument("--trace", action="store_true", help="Add the per-tick trace row of the yield sweep's worst case "
                                                             "in the 0.8-1.0 x band (TRACE_CASE).")
    parser.add_argument("--declared-latency", type=float, default=None,
                        help="Yield / fast / follow rows with this command latency declared (s; default: undeclared).")
    parser.add_argument("--wired", action="store_true",
                        help="Yield / fast rows declare what the deployment declares (configs/deploy/fr3.yaml's "
                             "command_latency_s), follow rows each case's own latency (overrides --declared-latency).")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2_000_000, help="First held-out env seed (the loop's sim eval's).")
    parser.add_argument("--label", required=True, help="Row label, e.g. before / after.")
    parser.add_argument("--name", default="fr3_overspeed")
    parser.add_argument("--merge", default=None, help="Earlier results JSON whose rows are kept.")
    return parser.parse_args()


NOTES = ("FR3 pick-and-place: per-joint peak |qvel| over every physics step (2 ms), rad/s; peak_over_limit: "
         "peak / data-sheet speed per joint; episodes_over_stop: episodes with a joint above the twin's "
         "protective-stop threshold (data sheet x 1.05). sim rows: the run's policy in its env with the "
         "deploy pipeline at the safety module of the label's commit; replay rows: recorded twin commands "
         "replayed in the twin's sim (no ROS); actions rows: recorded policy actions through the command "
         "path of the label's code into the twin's sim. 'before' rows: this script run at commit 3e15b36 "
         "(the safety module before the fix; a detached worktree, merged here with --merge); their "
         "lead_clamps_per_episode count a reason that then fired on float rounding (~all ticks), not real "
         "clamps. Policies: round 0 of last session's FR3 nominal loop (/tmp/ppd, trained before the fix, "
         "80-step episodes) and, label 'after-loop', round 0 of this session's loop (trained with the fix, "
         "100-step episodes), whose replay rows are the twin's own episodes of rounds 0 and 1 deployed with the "
         "fix. Labels '*-share0.5': the same at commit 56b818e (STALL_SHARE 0.5; relabelled when 0.35 replaced "
         "it), whose loop wrist reached 4.06 rad/s. Labels 'stalltime*': the stall judged by time (branch stalltime: "
         "full lead until a joint has lagged a command ahead of it for 0.2 s or is pushed away from it, then "
         "STALL_SHARE 0.35), actions rows of the same record sets: 'stalltime' /tmp/ppd (the 'before'/'after' "
         "episodes), 'stalltime-w2' the share-0.5 loop's (after-loop-share0.5), 'stalltime-w3' the 0.35 loop's "
         "(after-loop). Label 'main-share0.5-w3': the w3 record sets through main's command path at 53b9aba "
         "(STALL_SHARE 0.5, judged by speed; this script run in a detached worktree, merged here). Label "
         "'stalltime-loop': replay rows of the twin episodes that the FR3 loops of sim2real_pickplace_fr3_stalltime "
         "recorded at this code (nominal seed 0 rounds 0-1, seed 1 round 0; gripper force x0.3 seed 0 round 0, "
         "replayed with that twin's hidden parameters, --hidden). Label 'stall2': a joint held still under a command ahead of it "
         "(blocked or not yet) led only as far as its servo, freed, closes under 0.8 x the data sheet (branch stall2, "
         "SafetyLimits.freed_lead): actions rows of the 5 record sets above, the experts, and a held row (--held: the FR3 "
         "wrist held still from rest 6-38 ticks, then freed; peaks per hold); 'stall2-null': the held row at main 2e597c2 "
         "(this script in a detached worktree, merged here). Label 'creep': a joint creeping towards its command (slower "
         "than 10% of its allowed speed, not gaining speed) led only by freed_lead, K per joint (branch creep): creep rows "
         "(--creep: every FR3 joint driven by the filter while a kinematic block moves it towards its target at 0-50% of "
         "its allowed speed for 6-50 ticks, then freed, speed stop off), the held row, expert_actions rows (--expert-actions: "
         "seeds 0-19 in one env, digests of the action sequences), expert rows (steps to success, seeds 5000-5019) and actions rows of the nominal FR3 loop this branch ran "
         "(its loop folder); 'creep-null': the same creep, expert and expert_actions rows at main 2ad0a7b (this script in "
         "a git archive of main, merged here). Label 'creep2': a joint held back while it moves towards its command at 10% of "
         "its allowed speed or faster without gaining speed led by its servo's lag at that speed + freed_lead of the lead "
         "beyond (branch creep2, SafetyLimits.held_lead, SERVO_LAG_S + LAG_ALLOWANCE_S 0.05 s): creep, held, yield (--yield: "
         "a block that speeds up at 3-40% of the acceleration limit from 0-30% of the allowed speed), expert_actions and "
         "actions rows (the s8 nominal FR3 loop's round-0 policy and twin records, RUNS/loop_fr3); 'creep2-null': "
         "the creep, yield and expert_actions rows at main e4b57f4 (this script in a git archive of main, merged here). Label "
         "'yield': a joint gaining speed towards a command ahead of it led by the servo model at its speed and acceleration "
         "(branch yield, SafetyLimits.held_lead with accel, ACCEL_LEAD_SHARE 2, the command latency undeclared: "
         "LAG_ALLOWANCE_S 0.05 s): yield rows (worst_per_accel_valid: the cases whose block itself left the joint under 0.8 x "
         "its data sheet), fast rows (--fast: every FR3 joint held back at a steady 60-95% of its allowed speed for up to "
         "0.6 s, travel cut at 0.7 rad, then freed), follow rows (--follow: every FR3 joint following steps of 0.05-0.5 rad "
         "and ramps at 20-100% of its allowed speed, no block, latency 0 / 40 ms, actuator gain 0.8-1.2: ticks clamped by the "
         "lead window), creep, held and expert_actions rows; 'yield-declared0': the yield, fast and follow rows with command "
         "latency 0 declared (SafetyLimits.from_robot(command_latency_s=0): LAG_MARGIN_S 0.01 s in place of the allowance; "
         "follow at latency 0 only) and expert_actions rows with each episode's randomized latency declared (--expert-actions-"
         "declared); 'yield-null': the yield, fast and expert_actions rows at main 29ff978 (this script in a git archive of "
         "main, merged here); 'yield-allowance0': expert_actions rows with LAG_ALLOWANCE_S 0 (--lag-allowance 0, a flag removed once the declared latency was wired; the "
         "allowance removed for every deployment, env included). The yield* rows were measured in separate runs at load 5.4-10.9 "
         "(2 shared cores; uptime read before and after each run), merged here. Label 'yield-loop': replay, actions and sim rows of this "
         "branch's nominal FR3 loop (sim2real pickplace_demo_fr3.yaml, 1 round, hidden {}, domain 171: sim 93%, real 9/10, "
         "gap +3 [-13, +34], nothing named; its round-0 policy and twin records). Label 'wired': the declared command latency wired "
         "(branch latwire): the deployment declares configs/deploy/fr3.yaml's command_latency_s (null: undeclared, the strict "
         "filter, as 0), the pipeline env each episode's randomized latency: yield and fast rows (--wired), follow rows with each "
         "case's latency declared, expert_actions rows (the env as it is now: each episode declares its own); 'wired-null': the "
         "yield and fast rows with arm.PRE_DECLARATION_LATENCY_S 0.04 s declared (the filter of before: LAG_ALLOWANCE_S for "
         "all), the expert_actions rows at main 3e9857a (this script in a git archive of main, merged here); 'wired-undeclared': "
         "follow rows with no latency declared (the strict filter) behind 0 / 40 ms. Measured 2026-12-07 15:49-15:55 UTC in "
         "separate runs at load 4.0-7.0 (2 shared cores; uptime before and after each run in RUNS/RUNS/uptime.txt), "
         "merged here. Label 'wired-loop': replay, actions and sim rows of this branch's nominal FR3 loop (sim2real "
         "pickplace_demo_fr3.yaml --rounds 1 --hidden {} --domain 142, RUNS/loops/loop_fr3, 8.7 min at load 6-12: "
         "sim 80% (n=30), real 6/10, gap +20 [-9, +51], the real episodes replayed within the 1e-6 rad noise floor, nothing "
         "named or retuned; its round-0 policy on 100 held-out seeds: 89/100 with each episode's latency declared and 89/100 "
         "with the grant of before for all, no episode's outcome differs); the nominal UR5e loop (pickplace_demo.yaml, domain "
         "141): sim 87%, real 10/10, gap -13 [-30, +16], nothing named; make demo's config (demo.yaml, 2 rounds, domain 143): "
         "100% / 100% both rounds, latency 3 and actuator gain 0.35 named, as before. Label 'dragsafe': a command "
         "left behind a joint dragged faster than the allowed speed walks back at the joint's measured speed + one tick of "
         "its acceleration limit, at most the data sheet (branch dragsafe, SafetyLimits.walk_steps): yield, fast, follow "
         "(--wired), trace (--trace: per tick around the release of the yield sweep's worst 0.8-1.0 x case, joint 4 from "
         "0.3 x its allowed speed gaining 0.4 x its acceleration limit for 0.4 s; lead = command - trusted measured "
         "position, window = the lead window's edges around it, qvel = the joint's true speed at the tick's start; "
         "freed_bound_rad = (FREED_SPEED_SHARE x V)^2 / K), creep, held and expert_actions rows; yield rows' "
         "command_speed_max: the fastest command step / period / data sheet over every case; 'dragsafe-null': the yield, "
         "fast, follow, trace and expert_actions rows at main 2bc48ba (this branch's script in a git archive of main, "
         "merged here); 'dragsafe-undeclared': follow rows with no latency declared; 'dragsafe-loop': replay, actions and "
         "sim rows of the nominal FR3 loop of 'wired-loop' (RUNS/loops/loop_fr3 round 0, 30 sim episodes from seed "
         "2000000) at this code (walk at the speed both of the last two measured intervals show). Measured 2026-12-07 "
         "18:19-18:35 UTC in separate runs (uptime before / after: the null 7.4 / 6.1, the dragsafe rows 4.4 / 6.0, "
         "undeclared 6.0 / 6.0, loop 6.0 / 5.7; 2 shared cores; <= 0.5 GB RSS; RUNS/: the helpers' data folders on that machine), "
         "merged here.")  # fmt: skip


def deployed_latency() -> float | None:
    """The command latency the FR3's deployment declares (configs/deploy/fr3.yaml), as PolicyRunner.for_robot reads it."""
    from ast_robot.deploy.robot_io import load_robot_io

    return load_robot_io("fr3").command_latency_s


def main() -> None:
    args = parse_args()
    rows = json.loads(Path(args.merge).read_text())["rows"] if args.merge else []
    rows += [replay_row(Path(r), args.label, Path(args.hidden) if args.hidden else None) for r in args.records]
    rows += [actions_row(Path(args.run[0]), Path(r), args.label) for r in args.records if args.run]
    rows += [sim_row(Path(r), args.episodes, args.seed, args.label) for r in args.run if args.episodes]
    rows += [expert_row(Path(c), 20, args.label) for c in args.expert]
    rows += [held_row(args.label)] if args.held else []
    rows += [creep_row(args.label)] if args.creep else []
    declared = deployed_latency() if args.wired else args.declared_latency
    rows += [yield_row(args.label, declared)] if args.yield_sweep else []
    rows += [fast_row(args.label, declared)] if args.fast else []
    rows += [trace_row(args.label, command_latency_s=declared)] if args.trace else []
    follow = (0.0, 0.04) if args.wired or declared != 0.0 else (0.0,)
    rows += [follow_row(args.label, follow, declared, declare_each=args.wired)] if args.follow else []
    rows += [expert_actions_row(Path(c), args.label) for c in args.expert_actions]
    rows += [expert_actions_row(Path(c), args.label, declare_latency=True) for c in args.expert_actions_declared]
    for row in rows:
        print(row)
    print(write_results(args.name, rows, goals(rows), NOTES))


if __name__ == "__main__":
    main()
